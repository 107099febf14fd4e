//! The `syncdesk-desktop` binary: see the library for what it does.
// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    syncdesk_desktop::run()
}
