//! Team mode with real processes (issue 17): `syncdesk worker`s on one PostgreSQL database
//! (the private server of scripts/with-postgres.sh), one killed with SIGKILL in the middle of
//! a run. Secrets come from the real keychain both workers share (scripts/with-keyring.sh).

use std::path::Path;

use syncdesk_engine::{ExecutionStatus, FailureKind, RecordState, Store, Trigger};
use syncdesk_sandbox::{Faults, Sandbox, SandboxConfig};
use syncdesk_system_tests::*;

fn worker(dir: &Path, url: &str, name: &str) -> tokio::process::Child {
    tokio::process::Command::new(syncdesk_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["worker", "--name", name, "--lease", "3"])
        .env("SYNCDESK_DATABASE", url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("syncdesk worker starts")
}

/// SPEC §9: a worker killed in the middle of a run loses its lease; another worker ends that
/// run as interrupted once the lease lapses, and runs its retry; every record is stored
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_recovered_by_another_after_its_lease_lapses() {
    require_keyring();
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 300,
        faults: Faults {
            latency_ms: 20,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let url = new_postgres_database("team").await;
    let dir = tempfile::tempdir().unwrap();
    setup_with(
        dir.path(),
        &sandbox.base_url(),
        &[
            "--mode",
            "full",
            "--batch-size",
            "10",
            "--retry-delays",
            "0s",
        ],
        &[("SYNCDESK_DATABASE", &url)],
    )
    .await;
    // Nothing in the SQLite data directory: the store is the shared database.
    assert!(!dir.path().join("syncdesk.db").exists());

    let store = Store::open_url(&url).await.unwrap();
    let mut a = worker(dir.path(), &url, "worker-a");
    let job = store.job("customers").await.unwrap();
    queue_run_now(&store, &job.id, &format!("team-run-{}", std::process::id())).await;
    // Worker a takes the run; once it has committed some pages, it is killed without warning.
    let running = wait_for_execution(&store, "worker a's run under way", |e| {
        e.status == ExecutionStatus::Running && e.counts.processed >= 50
    })
    .await;
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    // Its last word: who held the run, and until when.
    let held = store
        .running_execution_of(&running.job_id)
        .await
        .unwrap()
        .expect("a killed worker cannot record the run's end");
    assert!(
        held.owner
            .as_deref()
            .is_some_and(|o| o.starts_with("worker-a:")),
        "worker a owned the run: {:?}",
        held.owner
    );
    let killed = running.id.clone();
    let done_before = store.execution(&killed).await.unwrap().counts.processed;
    assert!(done_before < 300);

    // Worker b starts at once, while a's lease still holds: it takes the run over only when
    // the lease lapses, then runs the retry.
    let mut b = worker(dir.path(), &url, "worker-b");
    let retry = wait_for_execution(&store, "worker b ran the retry", |e| {
        e.trigger == Trigger::Retry && e.status.is_final()
    })
    .await;
    let interrupted = store.execution(&killed).await.unwrap();
    assert_eq!(
        (interrupted.status, interrupted.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Interrupted))
    );
    assert!(
        interrupted.finished_at >= held.lease_until,
        "taken over only after the lease lapsed: ended {:?}, lease until {:?}",
        interrupted.finished_at,
        held.lease_until
    );
    assert_eq!(retry.retry_of.as_deref(), Some(killed.as_str()));
    assert_eq!(retry.status, ExecutionStatus::Completed, "{:?}", retry.note);
    // Nothing lost, nothing duplicated.
    assert_eq!(store.count_records("customers").await.unwrap(), 300);
    let conn = store.connection("sb").await.unwrap();
    assert_eq!(
        store
            .count_refs(&conn.id, "customers", RecordState::Ok)
            .await
            .unwrap(),
        300
    );
    assert_eq!(retry.counts.created + done_before, 300);

    let status = interrupt(&mut b).await;
    assert!(status.success(), "clean shutdown: {status:?}");
    store.close().await;
    sandbox.shutdown().await;
}

/// Issue 17: `syncdesk store copy` moves this computer's store to a shared PostgreSQL
/// database and back, every table's rows and checksum the same, and refuses a target that
/// already holds data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_desktop_store_to_postgres_and_back() {
    require_keyring();
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 60,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desk = dir.path().join("desk");
    setup(&desk, &sandbox.base_url(), &["--mode", "full"]).await;
    expect_status(
        &syncdesk(&desk, &["job", "run", "customers"], &[], None).await,
        0,
    );
    let sums = |out: &std::process::Output| json(&expect_status(out, 0));
    let before = sums(&syncdesk(&desk, &["store", "summary", "--json"], &[], None).await);
    let rows = |v: &serde_json::Value, table: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((rows(&before, "jobs"), rows(&before, "records")), (1, 60));

    let url = new_postgres_database("copy").await;
    let copied = syncdesk(&desk, &["store", "copy", "--to", &url, "--json"], &[], None).await;
    assert!(
        String::from_utf8_lossy(&copied.stderr).contains("every table's rows and checksum match")
    );
    assert_eq!(sums(&copied), before);
    let shared = [("SYNCDESK_DATABASE", url.as_str())];
    assert_eq!(
        sums(&syncdesk(&desk, &["store", "summary", "--json"], &shared, None).await),
        before
    );
    let jobs = expect_status(&syncdesk(&desk, &["job", "list"], &shared, None).await, 0);
    assert!(jobs.contains("customers"), "{jobs}");

    // Again into the same database: refused, nothing changed.
    let again = syncdesk(&desk, &["store", "copy", "--to", &url], &[], None).await;
    assert_ne!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        sums(&syncdesk(&desk, &["store", "summary", "--json"], &shared, None).await),
        before
    );

    // And back, into a new computer's store.
    let back = dir.path().join("back");
    let file = back.join("syncdesk.db");
    let file = file.to_str().unwrap();
    let copied = syncdesk(
        &desk,
        &["store", "copy", "--to", file, "--json"],
        &shared,
        None,
    )
    .await;
    assert_eq!(sums(&copied), before);
    assert_eq!(
        sums(&syncdesk(&back, &["store", "summary", "--json"], &[], None).await),
        before
    );
    sandbox.shutdown().await;
}
