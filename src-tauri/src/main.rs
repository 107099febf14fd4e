//! The `syncdesk-desktop` binary: see the library for what it does.
// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // Answered before anything graphical starts, so a package check (scripts/test-package.sh)
    // can run the installed binary with no display.
    if std::env::args_os().nth(1).is_some_and(|a| a == "--version") {
        #[allow(clippy::print_stdout, reason = "--version prints to stdout")]
        {
            println!("syncdesk-desktop {}", env!("CARGO_PKG_VERSION"));
        }
        return std::process::ExitCode::SUCCESS;
    }
    syncdesk_desktop::run()
}
