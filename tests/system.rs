//! System tests: the real `syncdesk` binary against the sandbox over loopback, the real OS
//! keychain (gnome-keyring on a private D-Bus session), and real process kills.

use syncdesk_engine::{ExecutionStatus, FailureKind, RecordState, Store, Trigger};
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
    let running = wait_for_execution(&store, "the run under way", |e| {
        e.status == ExecutionStatus::Running && e.counts.processed >= 50
    })
    .await;
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
    let retry = wait_for_execution(&store, "the worker ran the retry", |e| {
        e.trigger == Trigger::Retry && e.status.is_final()
    })
    .await;
    let status = interrupt(&mut worker).await;
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

/// Run `syncdesk` and expect `want`; stdout as text.
async fn ok_out(dir: &std::path::Path, args: &[&str], want: i32) -> String {
    expect_status(&syncdesk(dir, args, &[], None).await, want)
}

/// Issue 16: `syncs pause` holds back what the worker would start, `syncs status` says so in
/// the words the desktop uses, `run-due` is refused while paused, and `resume` lets it run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_pause_status_run_due_and_resume_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = ok_out(d, &["syncs", "status"], 0).await;
    assert!(
        status.contains("Syncs                  running"),
        "{status}"
    );
    let paused = ok_out(d, &["syncs", "pause"], 0).await;
    assert!(paused.starts_with("all syncs paused since"), "{paused}");
    let status = ok_out(d, &["syncs", "status"], 0).await;
    assert!(
        status.contains("paused since") && status.contains(" by "),
        "{status}"
    );
    let refused = syncdesk(d, &["syncs", "run-due"], &[], None).await;
    expect_status(&refused, 1);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("paused"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let resumed = ok_out(d, &["syncs", "resume"], 0).await;
    assert!(resumed.contains("resumed"), "{resumed}");
    assert!(ok_out(d, &["syncs", "resume"], 0)
        .await
        .contains("not paused"));
    let ran = ok_out(d, &["syncs", "run-due"], 0).await;
    assert!(ran.starts_with("0 job(s) due"), "{ran}");
    let audit = ok_out(d, &["audit"], 0).await;
    assert!(
        audit.contains("syncs.pause") && audit.contains("syncs.resume"),
        "{audit}"
    );
}

/// Issue 14: `job run --json` prints the execution's JSON and nothing else on stdout, when
/// the run stops early (events such as the breaker's go nowhere) and when it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i14_job_run_json_stdout_is_only_json_when_the_breaker_trips_and_when_it_completes() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 120,
        faults: Faults {
            bad_record_rate: 1.0,
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
        &["--mode", "full", "--batch-size", "20"],
    )
    .await;
    let out = syncdesk(
        dir.path(),
        &["job", "run", "customers", "--json"],
        &[],
        None,
    )
    .await;
    let stdout = expect_status(&out, 1);
    let detail = json(&stdout);
    assert_eq!(detail["failure_kind"], "circuit_breaker", "{stdout}");
    let id = detail["id"].as_str().unwrap().to_string();

    // The text view says it plainly, found by an id prefix.
    let text = ok_out(dir.path(), &["execution", "show", &id[..8]], 0).await;
    assert!(
        text.contains("Stopped early: most records were failing"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("circuit"), "{text}");
    for rust in ["ValidationError", "SchemaMismatch", "TransformError", "(!)"] {
        assert!(!text.contains(rust), "{rust} in:\n{text}");
    }

    // Without --json, the events of the run are shown (all of them, before the result),
    // in plain words.
    let text = ok_out(dir.path(), &["job", "run", "customers"], 1).await;
    assert!(
        text.starts_with("stopped   customers: Stopped early: "),
        "{text}"
    );
    assert!(!text.contains("BREAKER"), "{text}");

    sandbox.update_faults(|f| f.bad_record_rate = 0.0);
    let out = syncdesk(
        dir.path(),
        &["job", "run", "customers", "--json"],
        &[],
        None,
    )
    .await;
    let detail = json(&expect_status(&out, 0));
    assert_eq!(detail["status"], "completed");
    sandbox.shutdown().await;
}

/// Issue 14: names and id prefixes wherever ids are taken; job names where ids were shown;
/// `--kind` takes the plain names and the old ones, and refuses others with the plain names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i14_names_prefixes_and_plain_kinds_in_the_cli() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 40,
        faults: Faults {
            bad_record_rate: 0.1,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &sandbox.base_url(), &["--mode", "full"]).await;
    let job = json(&ok_out(dir.path(), &["job", "show", "customers", "--json"], 0).await);
    let job_id = job["id"].as_str().unwrap().to_string();
    // The job by a prefix of its id.
    let shown = ok_out(dir.path(), &["job", "show", &job_id[..6]], 0).await;
    assert!(shown.starts_with("customers ("), "{shown}");
    let out = syncdesk(
        dir.path(),
        &["job", "run", &job_id[..6], "--json"],
        &[],
        None,
    )
    .await;
    let detail = json(&String::from_utf8_lossy(&out.stdout));
    let exec = detail["id"].as_str().unwrap().to_string();

    // The executions table names the job; --json keeps the id.
    let table = ok_out(dir.path(), &["executions"], 0).await;
    let row = table.lines().nth(2).unwrap();
    assert!(row.contains(" customers "), "{table}");
    assert!(!table.contains(&job_id[..8]), "{table}");
    let page = json(&ok_out(dir.path(), &["executions", "--json"], 0).await);
    assert_eq!(page["items"][0]["job_id"], job_id.as_str());

    // Kinds: plain names, old names, any case.
    for kind in [
        "missing-value",
        "Missing required value",
        "ValidationError",
        "wrong-type",
        "conversion",
        "duplicate",
        "UNKNOWN-REFERENCE",
    ] {
        ok_out(dir.path(), &["errors", &exec[..8], "--kind", kind], 0).await;
    }
    let out = syncdesk(
        dir.path(),
        &["errors", &exec, "--kind", "validaton"],
        &[],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("missing-value") && err.contains("unknown-reference"),
        "{err}"
    );
    assert!(
        !err.contains("RecordErrorKind") && !err.contains("ValidationError"),
        "{err}"
    );
    let errors = ok_out(dir.path(), &["errors", &exec], 0).await;
    for rust in [
        "ValidationError",
        "SchemaMismatch",
        "TransformError",
        "ReferenceNotFound",
        "DuplicateConflict",
    ] {
        assert!(!errors.contains(rust), "{rust} in:\n{errors}");
    }
    // Too short a prefix is no prefix.
    let out = syncdesk(
        dir.path(),
        &["execution", "show", &exec[..3], "--json"],
        &[],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        json(String::from_utf8_lossy(&out.stderr).trim())["error"]["code"],
        "not_found"
    );
    sandbox.shutdown().await;
}

/// Issue 14: `job edit|pause|resume|delete` and `connection delete`; deleting asks for
/// --yes first (exit 2, saying what would go) and a used connection is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i14_job_edit_pause_resume_delete_and_connection_delete() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 20,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, &sandbox.base_url(), &[]).await;
    ok_out(
        d,
        &[
            "job",
            "edit",
            "customers",
            "--schedule",
            "every 15m",
            "--batch-size",
            "25",
            "--no-retry",
            "--retry-delays",
            "1m,2m",
        ],
        0,
    )
    .await;
    let job = json(&ok_out(d, &["job", "show", "customers", "--json"], 0).await);
    assert_eq!(job["settings"]["batch_size"], 25);
    assert_eq!(job["settings"]["retry_on_failure"], false);
    assert_eq!(
        job["settings"]["retry_delays_secs"],
        serde_json::json!([60, 120])
    );
    assert!(
        job["schedule"].to_string().contains("15"),
        "{}",
        job["schedule"]
    );
    // A bad value changes nothing and exits 2.
    let out = syncdesk(
        d,
        &["job", "edit", "customers", "--batch-size", "0"],
        &[],
        None,
    )
    .await;
    expect_status(&out, 2);
    let audit = ok_out(d, &["audit", "--json"], 0).await;
    assert!(audit.contains("job.update"), "{audit}");

    ok_out(d, &["job", "pause", "customers"], 0).await;
    let job = json(&ok_out(d, &["job", "show", "customers", "--json"], 0).await);
    assert_eq!(job["enabled"], false);
    ok_out(d, &["job", "resume", "customers"], 0).await;
    let job = json(&ok_out(d, &["job", "show", "customers", "--json"], 0).await);
    assert_eq!(job["enabled"], true);

    expect_status(
        &syncdesk(d, &["job", "run", "customers", "--json"], &[], None).await,
        0,
    );
    let conn = json(&ok_out(d, &["connection", "show", "sb", "--json"], 0).await);
    let conn_id = conn["id"].as_str().unwrap().to_string();

    // Used by a job: refused, naming it.
    let out = syncdesk(d, &["connection", "delete", "sb", "--yes"], &[], None).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("customers"), "{err}");

    // Without --yes: what would go, exit 2, nothing deleted.
    let preview = ok_out(d, &["job", "delete", "customers"], 2).await;
    assert!(
        preview.contains("would delete job customers with 1 execution"),
        "{preview}"
    );
    ok_out(d, &["job", "show", "customers"], 0).await;
    let done = ok_out(d, &["job", "delete", "customers", "--yes"], 0).await;
    assert!(done.contains("job customers deleted"), "{done}");
    expect_status(
        &syncdesk(d, &["job", "show", "customers"], &[], None).await,
        1,
    );
    let page = json(&ok_out(d, &["executions", "--json"], 0).await);
    assert_eq!(page["items"], serde_json::json!([]));

    let preview = ok_out(d, &["connection", "delete", "sb"], 2).await;
    assert!(preview.contains("would delete connection sb"), "{preview}");
    assert!(secret_tool_values("syncdesk")
        .iter()
        .any(|(u, _)| u.starts_with(&conn_id)));
    ok_out(d, &["connection", "delete", &conn_id[..8], "--yes"], 0).await;
    assert!(
        !secret_tool_values("syncdesk")
            .iter()
            .any(|(u, _)| u.starts_with(&conn_id)),
        "its secrets left the keychain"
    );
    expect_status(
        &syncdesk(d, &["connection", "show", "sb"], &[], None).await,
        1,
    );
    let audit = ok_out(d, &["audit"], 0).await;
    assert!(
        audit.contains("job.delete") && audit.contains("connection.delete"),
        "{audit}"
    );
    sandbox.shutdown().await;
}

/// Issue 14, live progress: a run that pauses says what it waits for and until when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i14_job_run_says_what_a_paused_run_waits_for() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 20,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &sandbox.base_url(),
        &["--mode", "full", "--backoff", "0"],
    )
    .await;
    // The provider's next answer is an error: the run waits (0 s, as configured) and tries again.
    sandbox.update_faults(|f| f.error_burst = 1);
    let out = syncdesk(dir.path(), &["job", "run", "customers"], &[], None).await;
    expect_status(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "waiting   provider error (HTTP 503 from /v1/customers), retry 1 of 1; resuming "
        ),
        "{err}"
    );
}

/// Issue 15: `connection add --value/--auth`, `connection values` and `connection set-value`
/// through the real binary, against the sandbox, with clear refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_connection_values_and_auth_kind_from_the_cli() {
    let sandbox = Sandbox::start(SandboxConfig {
        customers: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = d.join("with-values.toml");
    std::fs::write(
        &spec,
        format!(
            "{}\n[values.region]\nlabel = \"Data region\"\nhelp = \"Where the records are kept.\"\n",
            syncdesk_sandbox::CONNECTOR_SPEC
        ),
    )
    .unwrap();
    let base = sandbox.base_url();
    let add = |extra: &'static [&'static str]| {
        let mut args: Vec<String> = [
            "--secret-store",
            "memory",
            "connection",
            "add",
            "--name",
            "sb",
            "--spec",
            spec.to_str().unwrap(),
            "--base-url",
            &base,
            "--client-id",
            "sandbox-client",
            "--client-secret-env",
            "SB_SECRET",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        syncdesk(d, &args, &[("SB_SECRET", "sandbox-secret")], None).await
    };
    // A declared value left out, an unknown one, a way to sign in the connector does not
    // offer: each refused with what to do, nothing stored.
    let out = run(add(&[])).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Data region") && err.contains("region="),
        "{err}"
    );
    let out = run(add(&["--value", "region=eu", "--value", "tenant=x"])).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no value named 'tenant'"), "{err}");
    let out = run(add(&["--value", "region=eu", "--auth", "bearer"])).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("oauth2_client_credentials"), "{err}");
    let out = run(add(&["--value", "region"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=VALUE"));

    let out = run(add(&["--value", "region=eu", "--json"])).await;
    let conn = json(&expect_status(&out, 0));
    assert_eq!(conn["values"]["region"], "eu");
    let text = expect_status(
        &syncdesk(
            d,
            &["--secret-store", "memory", "connection", "values", "sb"],
            &[],
            None,
        )
        .await,
        0,
    );
    assert!(text.contains("Data region (region): eu"), "{text}");
    assert!(text.contains("Where the records are kept."), "{text}");
    let conn = json(&expect_status(
        &syncdesk(
            d,
            &[
                "--secret-store",
                "memory",
                "connection",
                "set-value",
                "sb",
                "region=us",
                "--json",
            ],
            &[],
            None,
        )
        .await,
        0,
    ));
    assert_eq!(conn["values"]["region"], "us");
    let listed = json(&expect_status(
        &syncdesk(
            d,
            &[
                "--secret-store",
                "memory",
                "connection",
                "values",
                "sb",
                "--json",
            ],
            &[],
            None,
        )
        .await,
        0,
    ));
    assert_eq!(listed[0]["value"]["value"], "us");
    assert_eq!(listed[0]["choices"], serde_json::Value::Null);
    sandbox.shutdown().await;
}
