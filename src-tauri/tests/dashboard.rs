//! What the dashboard and the connections page say and do, through the commands the window
//! calls, on a real database and a real sandbox provider on 127.0.0.1.

mod support;

use std::sync::Arc;

use support::pull_job;
use syncdesk_desktop::desktop::{Desktop, DesktopOptions};
use syncdesk_dto::{JobHealthDto, NewConnectionDto, RetryKind};
use syncdesk_engine::{MemorySecretStore, RunOptions};
use syncdesk_sandbox::{Sandbox, SandboxConfig};

/// The desktop on a fresh database in `dir`, secrets in memory.
async fn desktop(dir: &tempfile::TempDir) -> Desktop {
    Desktop::open(DesktopOptions {
        data_dir: dir.path().to_path_buf(),
        secrets: Arc::new(MemorySecretStore::default()),
        database: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_a1_a_failed_job_waiting_for_its_automatic_retry_is_failing_not_running() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desktop = desktop(&dir).await;
    desktop
        .connection_create(NewConnectionDto {
            name: "sandbox".into(),
            spec: "sandbox".into(),
            base_url: Some(sandbox.base_url()),
            client_id: Some("sandbox-client".into()),
            client_secret: Some("sandbox-secret".into()),
            api_key: None,
            refresh_token: None,
            access_token: None,
            auth_kind: None,
            auth_base_url: None,
            values: None,
        })
        .await
        .unwrap();
    let job = desktop
        .job_create(pull_job("sandbox", "customers"))
        .await
        .unwrap();
    let engine = desktop.engine();
    // Backoff shortened by configuration (as an admin could), so the real clock waits 0 s.
    engine
        .update_job(&job.id, |j| {
            j.settings.backoff_secs = vec![0];
            Ok(())
        })
        .await
        .unwrap();
    let health = || async {
        let jobs = desktop.jobs_list().await.unwrap();
        assert_eq!(jobs.len(), 1);
        jobs[0].health
    };
    assert_eq!(health().await, JobHealthDto::NeverRun);
    assert_eq!(
        engine
            .run_job(&job.id, RunOptions::default())
            .await
            .unwrap()
            .status
            .as_str(),
        "completed"
    );
    assert_eq!(health().await, JobHealthDto::Ok);

    // The provider is down for longer than the retries last: the run fails and an automatic
    // retry is queued for later (R-A1).
    sandbox.update_faults(|f| f.error_burst = 1_000);
    let failed = engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(failed.status.as_str(), "failed");
    // The newest run is the failed one (its queued retry has not run); the job is failing
    // with its retry pending.
    let jobs = desktop.jobs_list().await.unwrap();
    let last = jobs[0].last_execution.as_ref().unwrap();
    assert_eq!(last.id, failed.id);
    assert_eq!(last.retry.state, RetryKind::Pending);
    assert_eq!(health().await, JobHealthDto::Retrying);

    // Without automatic retries the same failure is plainly failing.
    engine
        .cancel_execution(last.retry.execution_id.as_deref().unwrap())
        .await
        .unwrap();
    engine
        .update_job(&job.id, |j| {
            j.settings.retry_on_failure = false;
            Ok(())
        })
        .await
        .unwrap();
    engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(health().await, JobHealthDto::Failing);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_the_built_in_sandbox_spec_points_at_the_running_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let desktop = desktop(&dir).await;
    let running = desktop.sandbox_start().await.unwrap();
    let form = |name: &str, base_url: Option<String>| NewConnectionDto {
        name: name.into(),
        spec: "sandbox".into(),
        base_url,
        client_id: Some("sandbox-client".into()),
        client_secret: Some("sandbox-secret".into()),
        api_key: None,
        refresh_token: None,
        access_token: None,
        auth_kind: None,
        auth_base_url: None,
        values: None,
    };
    // The form's "sandbox" spec with no base URL: the sandbox's port is new on every start,
    // so the spec's default address would refuse every request.
    let c = desktop.connection_create(form("acme", None)).await.unwrap();
    assert_eq!(Some(c.base_url.clone()), running.base_url);
    assert_ne!(c.base_url, "http://127.0.0.1:8787");
    // A base URL the admin typed wins.
    let typed = desktop
        .connection_create(form("typed", Some("http://127.0.0.1:9".into())))
        .await
        .unwrap();
    assert_eq!(typed.base_url, "http://127.0.0.1:9");

    // The next start (the app restarted) takes another port: the connections made on the
    // sandbox's address follow it, the typed one stays.
    desktop.stop_sandbox().await;
    let _busy = std::net::TcpListener::bind(
        running
            .base_url
            .as_deref()
            .unwrap()
            .trim_start_matches("http://"),
    )
    .ok(); // keep the old port taken, so the restart cannot land on it again
    let restarted = desktop.sandbox_start().await.unwrap();
    assert_ne!(restarted.base_url, running.base_url);
    let engine = desktop.engine();
    let url_of =
        |name: &'static str| async move { engine.connection(name).await.unwrap().base_url };
    assert_eq!(Some(url_of("acme").await), restarted.base_url);
    assert_eq!(Some(url_of("sandbox").await), restarted.base_url);
    assert_eq!(url_of("typed").await, "http://127.0.0.1:9");
    desktop.stop_sandbox().await;
    desktop.engine().shutdown().await;
}

/// Issue 15: the connection wizard's commands against the Stripe persona: the catalog, a
/// wrong key (code `auth`, nothing saved), the right one (checked, saved, no jobs yet), then
/// the jobs chosen afterwards with the catalog's defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_the_wizard_connects_stripe_from_the_catalog_and_makes_its_jobs() {
    use syncdesk_dto::{ConnectDto, ErrorCode};
    let stripe = Sandbox::start(SandboxConfig {
        customers: 20,
        persona: Some(syncdesk_sandbox::Persona::Stripe),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desktop = desktop(&dir).await;
    let catalog = desktop.connectors_list().await.unwrap();
    let keys: Vec<&str> = catalog.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["stripe", "xero", "hubspot"]);
    assert_eq!(
        catalog[0].secret_label.as_deref(),
        Some("Stripe restricted or secret key")
    );
    let input = |key: &str| ConnectDto {
        connector: "stripe".into(),
        name: "Stripe".into(),
        auth_kind: None,
        secret: Some(key.into()),
        client_id: None,
        client_secret: None,
        base_url: Some(stripe.base_url()),
        auth_base_url: None,
        values: None,
        entities: Some(Vec::new()),
        schedule: None,
    };
    let refused = desktop
        .connection_connect(input("sk_test_wrong"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Auth);
    assert!(desktop.connections_list().await.unwrap().is_empty());

    let made = desktop
        .connection_connect(input("sk_test_syncdesk_sandbox"))
        .await
        .unwrap();
    assert_eq!(made.connection.status, "active");
    assert!(made.jobs.is_empty());
    let jobs = desktop
        .jobs_create_defaults(
            made.connection.id.clone(),
            vec!["customers".into(), "invoices".into()],
            None,
        )
        .await
        .unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["Stripe customers", "Stripe invoices"]);
    assert!(jobs
        .iter()
        .all(|j| j.mode == "incremental" && j.schedule == "every 1h"));
    assert_eq!(jobs[0].settings.natural_keys, ["email"]);
}
