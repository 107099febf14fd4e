//! System tests: the real `syncdesk` binary against the sandbox over loopback, the real OS
//! keychain (gnome-keyring on a private D-Bus session), and real process kills.

use std::time::Duration;

use syncdesk_engine::{
    Execution, ExecutionStatus, FailureKind, PageRequest, RecordState, Store, Trigger,
};
use syncdesk_sandbox::{Faults, Sandbox, SandboxConfig};
use syncdesk_system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keychain_holds_the_secrets_and_the_database_does_not() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &sandbox.base_url(), &[]).await;
    let out = syncdesk(
        dir.path(),
        &["job", "run", "customers", "--json"],
        &[],
        None,
    )
    .await;
    let detail = json(&expect_status(&out, 0));
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["counts"]["created"], 30);

    let conn = json(&expect_status(
        &syncdesk(
            dir.path(),
            &["connection", "show", "sb", "--json"],
            &[],
            None,
        )
        .await,
        0,
    ));
    let id = conn["id"].as_str().unwrap();
    let stored = secret_tool_values("syncdesk");
    let token = stored
        .iter()
        .find(|(u, _)| u == &format!("{id}/access_token"))
        .map(|(_, s)| s.clone())
        .expect("access token in the keychain");
    assert!(token.starts_with("at_"), "{token}");
    assert!(stored
        .iter()
        .any(|(u, s)| u == &format!("{id}/client_secret") && s == "sandbox-secret"));
    assert!(
        !database_contains(dir.path(), &token),
        "the access token is in the database"
    );
    assert!(
        !database_contains(dir.path(), "sandbox-secret"),
        "the client secret is in the database"
    );
    // Nor in anything the CLI prints.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_stdin_or_env_never_from_arguments() {
    require_keyring();
    let dir = tempfile::tempdir().unwrap();
    let out = syncdesk(
        dir.path(),
        &[
            "connection",
            "add",
            "--name",
            "x",
            "--spec",
            "sandbox",
            "--client-secret",
            "oops",
        ],
        &[],
        None,
    )
    .await;
    expect_status(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--client-secret"),
        "clap names the unknown flag"
    );
    let out = syncdesk(
        dir.path(),
        &[
            "connection",
            "add",
            "--name",
            "x",
            "--spec",
            "sandbox",
            "--client-secret-env",
            "NOPE_UNSET",
        ],
        &[],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("NOPE_UNSET"), "{err}");
    let out = syncdesk(
        dir.path(),
        &[
            "connection",
            "add",
            "--name",
            "piped",
            "--spec",
            "sandbox",
            "--client-id",
            "c",
            "--client-secret-stdin",
        ],
        &[],
        Some("from-stdin-secret\n"),
    )
    .await;
    expect_status(&out, 0);
    let conn = json(&expect_status(
        &syncdesk(
            dir.path(),
            &["connection", "show", "piped", "--json"],
            &[],
            None,
        )
        .await,
        0,
    ));
    let id = conn["id"].as_str().unwrap();
    assert!(secret_tool_values("syncdesk")
        .iter()
        .any(|(u, s)| u == &format!("{id}/client_secret") && s == "from-stdin-secret"));
    assert!(!database_contains(dir.path(), "from-stdin-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_spec_files_get_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    std::fs::write(
        &spec,
        "name = \"x\"\n[auth]\nkind = \"oauth2_client_credentials\"\n[entities.a]\npath = \"/a\"\n",
    )
    .unwrap();
    let out = syncdesk(
        dir.path(),
        &[
            "--secret-store",
            "memory",
            "connection",
            "add",
            "--name",
            "x",
            "--spec",
            spec.to_str().unwrap(),
            "--base-url",
            "http://127.0.0.1:1",
        ],
        &[],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("auth.token_url") && err.contains("bad.toml"),
        "{err}"
    );
    let out = syncdesk(
        dir.path(),
        &[
            "job",
            "add",
            "--name",
            "j",
            "--connection",
            "nope",
            "--entity",
            "customers",
            "--timeout",
            "5 parsecs",
        ],
        &[],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--timeout"), "{err}");
    let out = syncdesk(
        dir.path(),
        &["executions", "--json", "--cursor", "zz"],
        &[],
        None,
    )
    .await;
    let err = json(String::from_utf8_lossy(&out.stderr).trim());
    assert_eq!(err["error"]["code"], "invalid");
}

/// Poll (bounded: 30 s) the newest executions of another process until one matches.
async fn wait_for(store: &Store, pred: impl Fn(&Execution) -> bool) -> Option<Execution> {
    for _ in 0..600 {
        let page = store
            .executions(None, &PageRequest::first(5))
            .await
            .unwrap();
        if let Some(e) = page.items.into_iter().find(|e| pred(e)) {
            return Some(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// SPEC §9: after a kill, a `running` execution with no live owner becomes `failed`
/// ("interrupted") and is retried; nothing is duplicated or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_a_killed_run_is_marked_interrupted_and_retried_without_duplicates() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 400,
        faults: Faults {
            latency_ms: 40,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    setup(
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
    )
    .await;

    let mut run = tokio::process::Command::new(syncdesk_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["job", "run", "customers"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the run has committed some pages, then kill it without warning.
    let store = Store::open(&dir.path().join("syncdesk.db")).await.unwrap();
    let running = wait_for(&store, |e| {
        e.status == ExecutionStatus::Running && e.counts.processed >= 50
    })
    .await
    .expect("the run got under way within 30 s");
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    let killed = running.id;
    let row = store.execution(&killed).await.unwrap();
    assert_eq!(
        row.status,
        ExecutionStatus::Running,
        "a killed process cannot record its end"
    );
    let done_before = row.counts.processed;
    assert!(done_before < 400);

    // A worker starting afterwards recovers it and runs the retry, then stops cleanly on SIGINT.
    let mut worker = tokio::process::Command::new(syncdesk_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("worker")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let retry = wait_for(&store, |e| {
        e.trigger == Trigger::Retry && e.status.is_final()
    })
    .await
    .expect("the worker ran the retry within 30 s");
    let pid = worker.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), worker.wait())
        .await
        .expect("worker stops on SIGINT")
        .unwrap();
    assert!(status.success(), "clean shutdown: {status:?}");

    let interrupted = store.execution(&killed).await.unwrap();
    assert_eq!(
        (interrupted.status, interrupted.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Interrupted))
    );
    assert_eq!(retry.retry_of.as_deref(), Some(killed.as_str()));
    assert_eq!(retry.status, ExecutionStatus::Completed);
    // Nothing lost, nothing duplicated: every customer exactly once, all linked.
    assert_eq!(store.count_records("customers").await.unwrap(), 400);
    let conn = store.connection("sb").await.unwrap();
    assert_eq!(
        store
            .count_refs(&conn.id, "customers", RecordState::Ok)
            .await
            .unwrap(),
        400
    );
    assert_eq!(
        retry.counts.created + done_before,
        400,
        "the retry created exactly what the killed run had not committed"
    );
    store.close().await;
    sandbox.shutdown().await;
}
