//! Native notifications against a real daemon (dunst under Xvfb, on a private session bus):
//! a run that stops early raises a notification whose click becomes a request to open that
//! execution, and one whose alert resolves is withdrawn; with no daemon the app says so and
//! the alert is still recorded.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use syncdesk_desktop::desktop::{Desktop, DesktopOptions};
use syncdesk_desktop::notify;
use syncdesk_dto::{NavigateDto, SandboxFaultsDto};
use syncdesk_engine::{Event, MemorySecretStore};
use tokio_util::sync::CancellationToken;

/// Run the job to its end; the breaker-tripped event it raised on the way.
async fn trip(desktop: &Desktop, job: &str) -> Event {
    let mut rx = desktop.engine().subscribe();
    desktop.job_run(job.to_string()).await.expect("job starts");
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut tripped = None;
        loop {
            match rx.recv().await.expect("events") {
                e @ Event::BreakerTripped { .. } => tripped = Some(e),
                Event::ExecutionFinished { .. } => return tripped.expect("the breaker tripped"),
                _ => continue,
            }
        }
    })
    .await
    .expect("the run ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_b2_a_tripped_breaker_notifies_and_a_click_opens_its_execution() {
    let dir = tempfile::tempdir().unwrap();
    let (_bus, bus) = session_bus(dir.path());
    let (_x, display) = xvfb();
    // notify-rust talks to the session bus named in the environment; this test binary has
    // one test, so nothing else reads it concurrently.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus);
    std::env::set_var("DISPLAY", &display);

    let desktop = Desktop::open(DesktopOptions {
        data_dir: dir.path().join("data"),
        secrets: Arc::new(MemorySecretStore::default()),
        database: None,
    })
    .await
    .unwrap();
    let sb = desktop.sandbox_start().await.unwrap();
    let conn = sb.connection_id.expect("sandbox connection");
    let job = desktop
        .job_create(pull_job(&conn, "customers"))
        .await
        .unwrap();
    // Every customer arrives without `email`: all fail, the breaker trips at 10 (R-B1).
    desktop
        .sandbox_set_faults(SandboxFaultsDto {
            schema_drift: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let cancel = CancellationToken::new();

    // 1. No notification daemon on the bus: logged, said in health, alert still recorded.
    let tripped = trip(&desktop, &job.id).await;
    assert_eq!(notify::on_event(&desktop, &tripped, &cancel).await, None);
    let health = desktop.health().await.unwrap();
    assert!(!health.notifications_available);
    let why = health.notifications_message.expect("a reason");
    assert!(why.contains("org.freedesktop.Notifications"), "{why}");
    let alerts = desktop.alerts_list(true, None).await.unwrap();
    assert!(
        alerts.items.iter().any(|a| a.kind == "circuit_breaker"),
        "{:?}",
        alerts.items
    );

    // 2. With dunst: the notification shows; its default action (a click) opens the execution.
    let _dunst = dunst(dir.path(), &bus, &display).await;
    assert!(notify::probe().await.unwrap().contains("dunst"));
    let tripped = trip(&desktop, &job.id).await;
    let Event::BreakerTripped { execution_id, .. } = &tripped else {
        unreachable!()
    };
    let desktop = Arc::new(desktop);
    let shown = notify_on_screen(&desktop, &tripped, &cancel, &bus, &display).await;
    let target = click_notification(shown, &bus, &display).await;
    assert_eq!(
        target,
        Some(NavigateDto {
            view: "execution".into(),
            id: Some(execution_id.clone()),
        })
    );
    assert!(desktop.health().await.unwrap().notifications_available);
    // What was on screen: dunst lists a notification in its history once it is closed.
    run(&bus, &display, "dunstctl", &["close"]);
    let mut history = String::new();
    wait_until(
        "the notification in dunst's history",
        Duration::from_secs(20),
        || {
            history = run(&bus, &display, "dunstctl", &["history"]);
            history.contains("stopped early, most records were failing")
        },
    )
    .await;
    assert!(history.contains("Click to investigate"), "{history}");

    // 3. A notification whose alert resolves is withdrawn from the screen.
    let tripped = trip(&desktop, &job.id).await;
    let task = notify_on_screen(&desktop, &tripped, &cancel, &bus, &display).await;
    assert_eq!(desktop.shown().withdraw(Some(&job.id), None), 1);
    let target = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the withdrawn notice ends its wait")
        .unwrap();
    assert_eq!(target, None, "nothing to open");
    wait_until(
        "the notification withdrawn from the screen",
        Duration::from_secs(20),
        || run(&bus, &display, "dunstctl", &["count", "displayed"]).trim() == "0",
    )
    .await;
    cancel.cancel();
    desktop.stop_sandbox().await;
    desktop.engine().shutdown().await;
}
