//! Real surroundings for the desktop tests: a private D-Bus session bus (no auto-started
//! services), a virtual X display, a real notification daemon (dunst). Every process started
//! here is killed by its own handle when the test ends, never by name.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use syncdesk_desktop::desktop::Desktop;
use syncdesk_dto::{NavigateDto, NewJobDto};
use syncdesk_engine::Event;
use tokio_util::sync::CancellationToken;

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read the first line a child prints on stdout (an address, a display number).
fn first_line(child: &mut Child, what: &str) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let line = line.trim().to_string();
    assert!(!line.is_empty(), "{what} printed nothing");
    line
}

/// A session bus of our own with no service directories, so nothing is auto-started: a
/// notification daemon exists only when a test starts one.
pub fn session_bus(dir: &Path) -> (Proc, String) {
    let conf = dir.join("session.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (apt: dbus-daemon) starts");
    let addr = first_line(&mut child, "dbus-daemon");
    (Proc(child), addr)
}

/// Xvfb on a display number it picks itself (`-displayfd`: another process may hold `:99`).
pub fn xvfb() -> (Proc, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x1024x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (apt: xvfb) starts");
    let n = first_line(&mut child, "Xvfb");
    (Proc(child), format!(":{n}"))
}

/// Poll `cond` until it holds or `timeout` passes.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(10);
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// Run a command with the test's bus and display; its stdout.
pub fn run(bus: &str, display: &str, cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("DISPLAY", display)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} runs: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dunst on `display`, owning org.freedesktop.Notifications on `bus` once this returns.
pub async fn dunst(dir: &Path, bus: &str, display: &str) -> Proc {
    let rc: PathBuf = dir.join("dunstrc");
    std::fs::write(&rc, "[global]\n    font = Monospace 8\n").unwrap();
    let child = Command::new("dunst")
        .arg("-config")
        .arg(&rc)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dunst (apt: dunst) starts");
    let p = Proc(child);
    wait_until(
        "dunst to own org.freedesktop.Notifications",
        Duration::from_secs(20),
        || {
            run(
                bus,
                display,
                "dbus-send",
                &[
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ],
            )
            .contains("boolean true")
        },
    )
    .await;
    p
}

/// A job named after `entity`, pulling it over `connection` with the engine's defaults.
pub fn pull_job(connection: &str, entity: &str) -> NewJobDto {
    NewJobDto {
        name: entity.into(),
        connection: connection.into(),
        entity: entity.into(),
        direction: None,
        mode: None,
        schedule: None,
        enabled: None,
        settings: None,
    }
}

/// Raise the native notification for `event` as the app does (a task of its own, waiting for
/// a click), once dunst shows it. The task ends with the view the notification asks to open.
pub async fn notify_on_screen(
    desktop: &std::sync::Arc<Desktop>,
    event: &Event,
    cancel: &CancellationToken,
    bus: &str,
    display: &str,
) -> tokio::task::JoinHandle<Option<NavigateDto>> {
    let task = {
        let (d, ev, cancel) = (desktop.clone(), event.clone(), cancel.clone());
        tokio::spawn(async move { syncdesk_desktop::notify::on_event(&d, &ev, &cancel).await })
    };
    wait_until(
        "the notification on screen",
        Duration::from_secs(20),
        || run(bus, display, "dunstctl", &["count", "displayed"]).trim() == "1",
    )
    .await;
    task
}

/// Click the notification on screen (its default action, as dunst does for a click); the view
/// its task asks to open.
pub async fn click_notification(
    task: tokio::task::JoinHandle<Option<NavigateDto>>,
    bus: &str,
    display: &str,
) -> Option<NavigateDto> {
    run(bus, display, "dunstctl", &["action", "0"]);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the click arrives")
        .unwrap()
}
