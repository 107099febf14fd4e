//! Team mode (issue 17): the shared PostgreSQL server restarts in the middle of a run. A
//! test binary of its own, since the restart cuts every session on the server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use syncdesk_engine::{
    Database, ExecutionStatus, FailureKind, MemorySecretStore, RecordState, RunOptions,
};
use syncdesk_sandbox::{Faults, Sandbox, SandboxConfig};

/// Restart the test server (scripts/with-postgres.sh): a fast shutdown ends every session.
fn restart_server() {
    let bin = std::env::var("PGBIN").expect("PGBIN from scripts/with-postgres.sh");
    let data = std::env::var("SYNCDESK_TEST_PGDATA").expect("the server's data directory");
    let mut cmd = if nix_is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.arg(format!("{bin}/pg_ctl"));
        c
    } else {
        std::process::Command::new(format!("{bin}/pg_ctl"))
    };
    let root = std::env::var("SYNCDESK_TEST_PGROOT").expect("the server's directory");
    // The server's output goes to its log: a pipe would hold this call open as long as the
    // server runs.
    let status = cmd
        .args(["-D", &data, "-m", "fast", "-w", "-t", "30", "-l"])
        .arg(format!("{root}/server.log"))
        .arg("restart")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "the server restarts: {status}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// SPEC §9 and R-A1: the database goes away under a run. The run fails and gets its retry
/// (or, if even its end cannot be written, stays for recovery); once the server is back the
/// retry completes, and every record is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_fails_the_run_and_its_retry_completes_it() {
    let server = common::postgres_server()
        .expect("team mode tests need PostgreSQL: run them through scripts/with-postgres.sh");
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
    let db = Database::Url(common::new_postgres_database(&server).await);
    let engine = common::engine(&db, &Arc::new(MemorySecretStore::default())).await;
    engine
        .create_connection(common::sandbox_connection(sandbox.base_url()))
        .await
        .unwrap();
    let mut job = common::full_pull_job("customers");
    job.settings.batch_size = 10;
    job.settings.retry_delays_secs = vec![0];
    let job = engine.create_job(job).await.unwrap();

    let run = {
        let e = engine.clone();
        let id = job.id.clone();
        tokio::spawn(async move { e.run_job(&id, RunOptions::default()).await })
    };
    // Some pages in, the server restarts under the run.
    loop {
        let p = engine
            .executions(Some(&job.id), &syncdesk_engine::PageRequest::first(1))
            .await
            .unwrap();
        if p.items.first().is_some_and(|e| e.counts.processed >= 50) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restart_server();
    let first = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends")
        .unwrap();
    let first = match first {
        Ok(e) => e,
        Err(e) => panic!("the run's end was not recorded: {e}"),
    };
    assert_eq!(first.status, ExecutionStatus::Failed, "{:?}", first.note);
    assert_eq!(first.failure_kind, Some(FailureKind::Internal));
    let done_before = first.counts.processed;
    assert!((50..300).contains(&done_before), "{done_before}");

    // The retry (due at once) runs on the server that is back, and completes the job.
    let ran = engine.run_due().await.unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");
    let retry = &ran[0];
    assert_eq!(retry.retry_of.as_deref(), Some(first.id.as_str()));
    assert_eq!(retry.status, ExecutionStatus::Completed, "{:?}", retry.note);
    let store = engine.store();
    assert_eq!(store.count_records("customers").await.unwrap(), 300);
    let conn = store.connection("sandbox").await.unwrap();
    assert_eq!(
        store
            .count_refs(&conn.id, "customers", RecordState::Ok)
            .await
            .unwrap(),
        300
    );
    engine.shutdown().await;
    sandbox.shutdown().await;
}
