//! The engine against the sandbox provider over real HTTP on 127.0.0.1, one test (at least)
//! per SPEC requirement, named after it. Time is a ManualClock: every backoff, Retry-After
//! and retry delay is recorded and passes instantly.

mod common;

use std::sync::Arc;
use std::time::Duration;

use syncdesk_engine::{
    policy::RecordState, Action, AlertKind, ConnectorSpec, Engine, EngineOptions, Event,
    ExecutionStatus, FailureKind, Job, ManualClock, MemorySecretStore, NewConnection, NewJob,
    PageRequest, RecordErrorKind, RunOptions, Secret, SecretKind, SecretStore, Trigger,
};
use syncdesk_sandbox::{
    BadKind, BadRecord, Entity, Faults, RetryAfter, Sandbox, SandboxConfig, SchemaDrift,
};

const SPEC: &str = include_str!("../../sandbox/connector.toml");

struct H {
    sandbox: Sandbox,
    engine: Engine,
    clock: Arc<ManualClock>,
    secrets: Arc<MemorySecretStore>,
    /// Holds the SQLite store while the test runs.
    _dir: tempfile::TempDir,
    database: syncdesk_engine::Database,
}

fn start_time() -> chrono::DateTime<chrono::Utc> {
    // Real "now" to the second: HTTP-date Retry-After values are computed by the sandbox
    // from the real clock.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap()
}

async fn harness(config: SandboxConfig) -> H {
    let sandbox = Sandbox::start(config).await.expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let secrets = Arc::new(MemorySecretStore::default());
    let database = common::database(dir.path()).await;
    let engine = Engine::open(EngineOptions {
        database: database.clone(),
        secrets: secrets.clone(),
        clock: clock.clone(),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    let h = H {
        sandbox,
        engine,
        clock,
        secrets,
        _dir: dir,
        database,
    };
    h.connect("sandbox", SPEC.to_string()).await;
    h
}

async fn small() -> H {
    harness(SandboxConfig {
        customers: 40,
        products: 20,
        invoices: 60,
        payments: 30,
        ..Default::default()
    })
    .await
}

impl H {
    /// A connection of the test's own to the engine's database, for what no API does
    /// (triggers that make a write fail).
    async fn db(&self) -> sqlx::AnyConnection {
        common::connect(&self.database).await
    }

    async fn connect(&self, name: &str, spec: String) {
        self.engine
            .create_connection(NewConnection {
                name: name.into(),
                spec: ConnectorSpec::parse(&spec).unwrap(),
                base_url: Some(self.sandbox.base_url()),
                client_id: Some("sandbox-client".into()),
                secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
                auth_base_url: None,
                auth_kind: None,
                values: Default::default(),
            })
            .await
            .unwrap();
    }

    async fn job_on(
        &self,
        conn: &str,
        name: &str,
        entity: &str,
        f: impl FnOnce(&mut NewJob),
    ) -> Job {
        let mut j = NewJob {
            name: name.into(),
            connection: conn.into(),
            entity: entity.into(),
            direction: syncdesk_engine::Direction::Pull,
            mode: syncdesk_engine::Mode::Incremental,
            schedule: None,
            enabled: true,
            settings: Default::default(),
        };
        j.settings.batch_size = 10;
        f(&mut j);
        self.engine.create_job(j).await.unwrap()
    }

    async fn job(&self, entity: &str, f: impl FnOnce(&mut NewJob)) -> Job {
        self.job_on("sandbox", entity, entity, f).await
    }

    async fn run(&self, job: &Job) -> syncdesk_engine::Execution {
        let e = self
            .engine
            .run_job(&job.id, RunOptions::default())
            .await
            .unwrap();
        let c = e.counts;
        assert_eq!(
            c.processed,
            c.created + c.updated + c.skipped + c.failed,
            "count invariant"
        );
        e
    }

    fn faults(&self, f: impl FnOnce(&mut Faults)) {
        self.sandbox.update_faults(f);
    }

    fn sleeps_secs(&self) -> Vec<u64> {
        self.clock
            .take_sleeps()
            .iter()
            .map(|d| d.as_secs())
            .collect()
    }

    async fn errors(&self, exec: &str) -> Vec<syncdesk_engine::RecordError> {
        self.engine
            .record_errors(exec, None, &PageRequest::first(500))
            .await
            .unwrap()
            .items
    }

    /// A job on `entity` whose one run failed on 503s: its automatic retry (R-A1) is queued
    /// for 5 minutes later. The provider answers again afterwards.
    async fn failed_with_a_retry(&self, entity: &str) -> Job {
        let job = self.job(entity, |_| {}).await;
        self.faults(|f| f.error_rate = 1.0);
        assert_eq!(self.run(&job).await.status, ExecutionStatus::Failed);
        self.faults(|f| f.error_rate = 0.0);
        job
    }

    async fn dead(&self, job: &Job) -> Vec<syncdesk_engine::DeadLetter> {
        self.engine
            .dead_letters(&job.id, &PageRequest::first(500))
            .await
            .unwrap()
            .items
    }
}

fn bad(entity: Entity, id: &str, kind: BadKind) -> BadRecord {
    BadRecord {
        entity,
        id: id.into(),
        kind,
    }
}

/// Customers 1..=n with a null email.
fn null_emails(n: u32) -> Vec<BadRecord> {
    (1..=n)
        .map(|i| {
            bad(
                Entity::Customers,
                &format!("cus_{i:08}"),
                BadKind::NullRequired,
            )
        })
        .collect()
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

// ---- a clean run, breakdown (R-I2), idempotency ------------------------------------------

#[tokio::test]
async fn r_i2_clean_runs_create_then_skip_unchanged_then_update_changed() {
    let h = small().await;
    let job = h
        .job("customers", |j| j.mode = syncdesk_engine::Mode::Full)
        .await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!((e.counts.processed, e.counts.created), (40, 40));
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        40
    );

    let e = h.run(&job).await;
    assert_eq!(
        (e.counts.created, e.counts.updated, e.counts.skipped),
        (0, 0, 40),
        "unchanged records are skipped"
    );

    assert!(h.sandbox.patch_record(
        Entity::Customers,
        "cus_00000003",
        serde_json::json!({"name": "Renamed Person"})
    ));
    let e = h.run(&job).await;
    assert_eq!(
        (e.counts.created, e.counts.updated, e.counts.skipped),
        (0, 1, 39)
    );
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        40,
        "nothing duplicated"
    );
}

/// A page's write finishes in a task while the next page is mapped (R-I2's counts stay
/// exact): each page's progress is announced only once its records are stored, in page
/// order, every one before the run's end; and the end counts what was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_i2_page_writes_overlap_mapping_yet_progress_follows_each_commit() {
    let h = small().await;
    let job = h.job("customers", |j| j.settings.batch_size = 5).await;
    let mut rx = h.engine.subscribe();
    let store = h.engine.store().clone();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match rx.recv().await.unwrap() {
                Event::ExecutionProgress { counts, .. } => {
                    let stored = store.count_records("customers").await.unwrap();
                    assert!(
                        stored >= counts.created,
                        "progress announced {} created with {stored} stored",
                        counts.created
                    );
                    seen.push(counts.processed);
                }
                Event::ExecutionFinished { .. } => return seen,
                _ => {}
            }
        }
    });
    let e = h.run(&job).await;
    let seen = watcher.await.unwrap();
    assert_eq!(seen, (1..=8).map(|p| p * 5).collect::<Vec<u64>>());
    assert_eq!((e.counts.processed, e.counts.created), (40, 40));
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        40
    );
}

/// A page whose write fails (here a trigger refuses one record's reference, as a full disk
/// or a corrupt page would) fails the run, and the run counts only what was stored, although
/// the next page was already mapped and decided while that write was under way.
#[tokio::test]
async fn r_i2_a_failed_page_write_fails_the_run_and_counts_only_what_was_stored() {
    use sqlx::Connection;
    let h = small().await;
    let job = h.job("customers", |j| j.settings.batch_size = 5).await;
    let mut db = h.db().await;
    common::add_fault(
        &mut db,
        "external_refs",
        "NEW.external_id = 'cus_00000017'",
        "the disk said no",
    )
    .await;
    db.close().await.unwrap();
    let e = h.run(&job).await;
    assert_eq!(
        (e.status, e.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Internal))
    );
    assert!(
        e.note.as_deref().unwrap_or("").contains("the disk said no"),
        "{:?}",
        e.note
    );
    assert_eq!((e.counts.processed, e.counts.created), (15, 15));
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        15
    );
}

// ---- R-E1 credentials ---------------------------------------------------------------------

#[tokio::test]
async fn r_e1_expired_token_is_refreshed_once_and_the_request_repeated() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.run(&job).await;
    let grants = h.sandbox.stats().token_grants;
    h.sandbox.expire_tokens();
    h.sandbox.reset_stats();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    let s = h.sandbox.stats();
    assert_eq!(
        s.token_grants, 1,
        "exactly one refresh (was {grants} before)"
    );
    assert_eq!(
        s.by_status.get(&401).copied(),
        Some(1),
        "one 401, then the same request again"
    );
    let conn = h.engine.connection("sandbox").await.unwrap();
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);
    assert!(conn.token_expires_at.is_some());
}

#[tokio::test]
async fn r_e1_refresh_failure_fails_execution_and_expires_connection() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.run(&job).await;
    let mut rx = h.engine.subscribe();
    h.sandbox.revoke_tokens();
    h.sandbox.set_credentials_revoked(true);
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.failure_kind, Some(FailureKind::Auth));
    assert!(
        e.note.as_deref().unwrap().contains("invalid_client"),
        "{:?}",
        e.note
    );
    let conn = h.engine.connection("sandbox").await.unwrap();
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Expired);
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ConnectionExpired { .. })),
        "admin notified"
    );
    let alerts = h
        .engine
        .alerts(true, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(alerts.iter().any(|a| a.kind == AlertKind::ConnectionExpired
        && a.connection_id.as_deref() == Some(conn.id.as_str())));
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert_eq!(d.diagnosis[0].pattern, "auth");
    assert_eq!(d.diagnosis[0].actions, vec![Action::Reauthenticate]);
    // Re-authenticating makes it work again.
    h.sandbox.set_credentials_revoked(false);
    h.engine
        .set_connection_secret(
            "sandbox",
            SecretKind::ClientSecret,
            Secret::new("sandbox-secret"),
        )
        .await
        .unwrap();
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn r_e1_rotating_refresh_token_is_stored_before_use_and_refresh_is_single_flight() {
    let h = small().await;
    // An authorization-code style connection: only a refresh token is stored.
    let http = reqwest::Client::new();
    let grant: serde_json::Value = http
        .post(format!("{}/oauth/token", h.sandbox.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_rt = grant["refresh_token"].as_str().unwrap().to_string();
    let spec = SPEC.replace("oauth2_client_credentials", "oauth2_refresh_token");
    h.engine
        .create_connection(NewConnection {
            name: "oauth".into(),
            spec: ConnectorSpec::parse(&spec).unwrap(),
            base_url: Some(h.sandbox.base_url()),
            client_id: Some("sandbox-client".into()),
            secrets: vec![(SecretKind::RefreshToken, Secret::new(first_rt.clone()))],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await
        .unwrap();
    let conn = h.engine.connection("oauth").await.unwrap();
    let a = h.job_on("oauth", "c", "customers", |_| {}).await;
    let b = h.job_on("oauth", "p", "products", |_| {}).await;
    // Creating the connection verified it with a refresh; the provider now forgets that
    // access token, so both runs meet a 401 at once.
    h.sandbox.expire_tokens();
    h.sandbox.reset_stats();
    let (ea, eb) = tokio::join!(h.run(&a), h.run(&b));
    assert_eq!(
        (ea.status, eb.status),
        (ExecutionStatus::Completed, ExecutionStatus::Completed)
    );
    assert_eq!(
        h.sandbox.stats().refresh_grants,
        1,
        "two executions, one refresh"
    );
    let rotated = h
        .secrets
        .get(&conn.id, SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    assert_ne!(
        rotated.expose(),
        first_rt,
        "the rotated refresh token was stored"
    );
    // The old refresh token is now invalid at the provider; the stored one still works.
    h.sandbox.expire_tokens();
    assert_eq!(h.run(&a).await.status, ExecutionStatus::Completed);
    assert_eq!(h.sandbox.stats().refresh_grants, 2);
}

#[tokio::test]
async fn r_e1_token_is_refreshed_before_a_known_expiry() {
    let h = harness(SandboxConfig {
        customers: 20,
        token_ttl_secs: 600,
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |_| {}).await;
    h.run(&job).await;
    h.clock.advance(Duration::from_secs(590)); // inside the early-refresh window
    h.sandbox.reset_stats();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    let s = h.sandbox.stats();
    assert_eq!(s.token_grants, 1);
    assert_eq!(
        s.by_status.get(&401),
        None,
        "refreshed before the provider had to refuse"
    );
}

// ---- R-E2 provider down -------------------------------------------------------------------

#[tokio::test]
async fn r_e2_5xx_is_retried_after_1_5_15_seconds_then_resumes() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.error_burst = 3);
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.counts.created, 40);
    assert_eq!(e.request_retries, 3);
    assert_eq!(h.sleeps_secs(), vec![1, 5, 15]);
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert!(d
        .diagnosis
        .iter()
        .any(|d| d.pattern == "provider_instability" && d.actions == vec![Action::WaitForRetry]));
}

#[tokio::test]
async fn r_e2_all_retries_failing_marks_execution_failed() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.error_burst = 4);
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.failure_kind, Some(FailureKind::ProviderUnavailable));
    assert!(
        e.note.as_deref().unwrap().contains("HTTP 503"),
        "{:?}",
        e.note
    );
    assert_eq!(h.sleeps_secs(), vec![1, 5, 15]);
}

#[tokio::test]
async fn r_e2_connection_refused_is_retried_like_a_5xx() {
    let h = small().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    h.engine
        .create_connection(NewConnection {
            name: "down".into(),
            spec: ConnectorSpec::parse(SPEC).unwrap(),
            base_url: Some(format!("http://127.0.0.1:{port}")),
            client_id: Some("sandbox-client".into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await
        .unwrap();
    let job = h.job_on("down", "down", "customers", |_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.failure_kind, Some(FailureKind::ProviderUnavailable));
    assert!(
        e.note.as_deref().unwrap().contains("could not connect"),
        "{:?}",
        e.note
    );
    assert_eq!(
        h.sleeps_secs(),
        vec![1, 5, 15],
        "the token request is retried like any other"
    );
}

// ---- R-E3 rate limits ---------------------------------------------------------------------

#[tokio::test]
async fn r_e3_429_honours_retry_after_seconds() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.rate_limit_burst = 2;
        f.retry_after = RetryAfter::Seconds(7);
    });
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.rate_limit_waits, 2);
    assert_eq!(h.sleeps_secs(), vec![7, 7]);
}

#[tokio::test]
async fn r_e3_429_honours_retry_after_http_date() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.rate_limit_burst = 1;
        f.retry_after = RetryAfter::HttpDate(30);
    });
    // The sandbox dates its Retry-After from the real clock: line ours up with it.
    h.clock.set(start_time());
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    let s = h.sleeps_secs();
    assert_eq!(s.len(), 1);
    assert!(
        (27..=31).contains(&s[0]),
        "waited {s:?} for a date 30 s ahead"
    );
}

#[tokio::test]
async fn r_e3_429_without_retry_after_uses_the_backoff_schedule() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.rate_limit_burst = 2);
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);
    assert_eq!(h.sleeps_secs(), vec![1, 5]);
}

#[tokio::test]
async fn r_e3_pause_past_the_timeout_ends_timed_out() {
    let h = small().await;
    let job = h.job("customers", |j| j.settings.timeout_secs = 300).await;
    h.faults(|f| {
        f.rate_limit_burst = 1;
        f.retry_after = RetryAfter::Seconds(600);
    });
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::TimedOut);
    assert!(e
        .note
        .as_deref()
        .unwrap()
        .contains("would pass the execution timeout"));
    assert!(h.sleeps_secs().is_empty(), "it did not wait for nothing");
}

#[tokio::test]
async fn r_e3_persistent_429_fails_as_rate_limited_and_is_diagnosed() {
    let h = small().await;
    let job = h
        .job("customers", |j| j.settings.max_rate_limit_waits = 3)
        .await;
    h.faults(|f| {
        f.rate_limit_burst = 10;
        f.retry_after = RetryAfter::Seconds(1);
    });
    let e = h.run(&job).await;
    assert_eq!(e.failure_kind, Some(FailureKind::RateLimited));
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert_eq!(d.diagnosis[0].pattern, "rate_limit");
    assert!(d.diagnosis[0]
        .resolution
        .contains("Reduce the sync frequency or the batch size"));
}

// ---- R-E4 timeout -------------------------------------------------------------------------

#[tokio::test]
async fn r_e4_hang_past_the_timeout_marks_timed_out_with_counts_and_batch() {
    let h = harness(SandboxConfig {
        customers: 100,
        ..Default::default()
    })
    .await;
    let job = h
        .job("customers", |j| {
            j.settings.timeout_secs = 60;
            j.settings.request_timeout_secs = 300;
            j.settings.batch_size = 25;
        })
        .await;
    h.faults(|f| {
        f.hang_after = Some(2);
        f.hang_ms = 3_600_000;
    });
    // Everything is set up; from here tokio's timers are virtual too, so the hour-long hang
    // and the 60 s deadline race instantly and deterministically.
    tokio::time::pause();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::TimedOut);
    assert_eq!(e.failure_kind, Some(FailureKind::TimedOut));
    assert_eq!(e.counts.processed, 50, "counts kept as they were");
    assert_eq!(
        e.batch_in_progress.as_deref(),
        Some("page 3 (after cus_00000050)")
    );
    // The rest is reads: on real time again, so no virtual jump past the store's own
    // timeouts while SQLite's thread answers (the sandbox still holds an hour-long timer).
    tokio::time::resume();
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert_eq!(d.diagnosis[0].pattern, "timeout");
}

// ---- R-E5 schema --------------------------------------------------------------------------

#[tokio::test]
async fn r_e5_schema_mismatch_is_logged_skipped_and_the_rest_continue() {
    let h = small().await;
    let job = h.job("products", |_| {}).await;
    h.faults(|f| f.bad_records = vec![bad(Entity::Products, "prod_00000004", BadKind::WrongType)]);
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::CompletedWithErrors);
    assert_eq!((e.counts.created, e.counts.failed), (19, 1));
    let errs = h.errors(&e.id).await;
    assert_eq!(errs[0].kind, RecordErrorKind::SchemaMismatch);
    assert_eq!(errs[0].record_id, "prod_00000004");
    assert_eq!(
        errs[0].message,
        "Field 'price_cents' is string, expected integer"
    );
}

#[tokio::test]
async fn r_e5_renamed_field_trips_the_breaker_and_the_connection_remembers_fields() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.schema_drift = vec![SchemaDrift {
            entity: Entity::Customers,
            rename: Some(("email".into(), "email_address".into())),
            retype: None,
        }]
    });
    let e = h.run(&job).await;
    assert_eq!(e.failure_kind, Some(FailureKind::CircuitBreaker));
    assert!(h
        .errors(&e.id)
        .await
        .iter()
        .all(|r| r.kind == RecordErrorKind::SchemaMismatch
            && r.message == "Expected field 'email' is missing"));
    let observed = h.engine.observed_fields("sandbox").await.unwrap();
    assert!(observed["customers"]
        .fields
        .contains(&"email_address".to_string()));
    assert!(!observed["customers"].fields.contains(&"email".to_string()));
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert_eq!(d.diagnosis[0].pattern, "schema_change");
    assert_eq!(d.diagnosis[0].title, "All records fail with a schema error");
    assert_eq!(d.diagnosis[0].actions, vec![Action::EditMappings]);
    let change = d.schema_change.expect("the change is shown");
    assert_eq!(change.missing, vec!["email".to_string()]);
    assert_eq!(
        (change.changed_at, change.added.len()),
        (None, 0),
        "the first run ever seen has nothing to compare with"
    );
}

#[tokio::test]
async fn r_e5_the_connection_shows_what_changed_between_runs() {
    let h = small().await;
    // Full runs, so every run reads every record whatever the watermark says.
    let job = h
        .job("customers", |j| j.mode = syncdesk_engine::Mode::Full)
        .await;
    let clean = h.run(&job).await;
    assert_eq!(clean.status, ExecutionStatus::Completed);
    let before = h.engine.observed_fields("sandbox").await.unwrap()["customers"].clone();
    assert!(before.fields.contains(&"email".to_string()));
    assert_eq!((before.previous, before.changed_at), (None, None));

    h.clock.advance(std::time::Duration::from_secs(3600));
    h.faults(|f| {
        f.schema_drift = vec![SchemaDrift {
            entity: Entity::Customers,
            rename: Some(("email".into(), "email_address".into())),
            retype: None,
        }]
    });
    let drifted = h.run(&job).await;
    assert_eq!(drifted.failure_kind, Some(FailureKind::CircuitBreaker));
    let change = h
        .engine
        .execution_detail(&drifted.id)
        .await
        .unwrap()
        .schema_change
        .expect("a schema diagnosis carries the change");
    assert_eq!(change.entity, "customers");
    assert_eq!(change.missing, vec!["email".to_string()]);
    assert_eq!(change.added, vec!["email_address".to_string()]);
    assert_eq!(change.removed, vec!["email".to_string()]);
    let changed_at = change.changed_at.expect("stamped");
    assert!(changed_at > before.observed_at);

    // The same drift again is no new change: the stamp stays on the run that first saw it.
    h.clock.advance(std::time::Duration::from_secs(3600));
    let again = h.run(&job).await;
    let now = h.engine.observed_fields("sandbox").await.unwrap()["customers"].clone();
    assert_eq!(now.changed_at, Some(changed_at));
    assert!(now.observed_at > changed_at);
    assert_eq!(
        h.engine
            .execution_detail(&again.id)
            .await
            .unwrap()
            .schema_change
            .map(|c| c.added),
        Some(vec!["email_address".to_string()])
    );

    // The provider reverts; a clean run records that as the latest change and shows none.
    h.faults(|f| f.schema_drift.clear());
    let reverted = h.run(&job).await;
    assert_eq!(reverted.status, ExecutionStatus::Completed);
    let back = h.engine.observed_fields("sandbox").await.unwrap()["customers"].clone();
    assert_eq!(back.added(), vec!["email".to_string()]);
    assert_eq!(back.removed(), vec!["email_address".to_string()]);
    let detail = h.engine.execution_detail(&reverted.id).await.unwrap();
    assert!(
        detail.schema_change.is_none(),
        "a clean run has no schema diagnosis"
    );
}

// ---- R-R record-level ---------------------------------------------------------------------

#[tokio::test]
async fn r_r1_validation_error_is_logged_counted_and_the_batch_continues() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000002",
            BadKind::NullRequired,
        )]
    });
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::CompletedWithErrors);
    assert_eq!(
        (e.counts.processed, e.counts.created, e.counts.failed),
        (40, 39, 1)
    );
    let errs = h.errors(&e.id).await;
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].summary(),
        "ValidationError - Required field 'email' is null"
    );
    assert_eq!(
        (errs[0].record_id.as_str(), errs[0].entity.as_str()),
        ("cus_00000002", "customers")
    );
}

#[tokio::test]
async fn r_r2_duplicate_is_skipped_with_detection_on_and_created_with_it_off() {
    let h = small().await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000005",
            BadKind::DuplicateKey,
        )]
    });
    let on = h.job("customers", |_| {}).await;
    let e = h.run(&on).await;
    assert_eq!(
        (e.counts.created, e.counts.skipped, e.counts.failed),
        (39, 1, 0)
    );
    assert_eq!(e.status, ExecutionStatus::Completed);
    let errs = h.errors(&e.id).await;
    assert_eq!(errs[0].kind, RecordErrorKind::DuplicateConflict);
    assert_eq!(errs[0].record_id, "cus_00000005");

    h.connect("sandbox2", SPEC.to_string()).await;
    let off = h
        .job_on("sandbox2", "off", "customers", |j| {
            j.settings.duplicate_detection = false
        })
        .await;
    let e = h.run(&off).await;
    assert_eq!(
        (e.counts.created, e.counts.skipped),
        (40, 0),
        "created when detection is off"
    );
}

#[tokio::test]
async fn r_r3_reference_not_found_fails_the_record_and_continues() {
    let h = small().await;
    let customers = h.job("customers", |_| {}).await;
    h.run(&customers).await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Invoices,
            "in_00000007",
            BadKind::DanglingReference,
        )]
    });
    let invoices = h.job("invoices", |_| {}).await;
    let e = h.run(&invoices).await;
    assert_eq!((e.counts.created, e.counts.failed), (59, 1));
    let errs = h.errors(&e.id).await;
    assert_eq!(errs[0].kind, RecordErrorKind::ReferenceNotFound);
    assert_eq!(
        errs[0].message,
        "Referenced customer 'cus_99999999' does not exist at the target"
    );
    // References resolve to local ids.
    let store = h.engine.store();
    let refs = store
        .refs_for(
            &invoices.connection_id,
            "invoices",
            &["in_00000001".to_string()],
        )
        .await
        .unwrap();
    let local = store
        .local_record(refs["in_00000001"].local_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let cust = local["customer_id"].as_str().unwrap();
    assert!(
        store.local_record(cust).await.unwrap().is_some(),
        "customer_id is a local id"
    );
}

#[tokio::test]
async fn r_r4_transform_error_uses_default_else_fails() {
    let h = small().await;
    h.run(&h.job("customers", |_| {}).await).await;
    h.faults(|f| f.bad_records = vec![bad(Entity::Invoices, "in_00000003", BadKind::InvalidDate)]);
    let strict = h.job("invoices", |_| {}).await;
    let e = h.run(&strict).await;
    assert_eq!(e.counts.failed, 1);
    assert_eq!(
        h.errors(&e.id).await[0].kind,
        RecordErrorKind::TransformError
    );

    h.connect("lenient", SPEC.to_string()).await;
    // Its own customers (detection off: the first connection already created them locally).
    h.run(
        &h.job_on("lenient", "lc", "customers", |j| {
            j.settings.duplicate_detection = false
        })
        .await,
    )
    .await;
    let lenient = h
        .job_on("lenient", "li", "invoices", |j| {
            let spec = ConnectorSpec::parse(SPEC).unwrap();
            let mut m = spec.entities["invoices"].mappings.clone();
            let issued = m.iter_mut().find(|m| m.target == "issued_on").unwrap();
            issued.default = Some(serde_json::json!("1970-01-01"));
            j.settings.mappings = m;
            j.settings.duplicate_detection = false;
        })
        .await;
    let e = h.run(&lenient).await;
    assert_eq!((e.counts.created, e.counts.failed), (60, 0), "default used");
    let refs = h
        .engine
        .store()
        .refs_for(
            &lenient.connection_id,
            "invoices",
            &["in_00000003".to_string()],
        )
        .await
        .unwrap();
    let local = h
        .engine
        .store()
        .local_record(refs["in_00000003"].local_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(local["issued_on"], "1970-01-01");
}

// ---- R-B circuit breaker ------------------------------------------------------------------

#[tokio::test]
async fn r_b1_breaker_trips_after_ten_with_majority_failed() {
    let h = harness(SandboxConfig {
        customers: 200,
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.bad_records = null_emails(6));
    let mut rx = h.engine.subscribe();
    let e = h.run(&job).await;
    // R-B2: halted at the 10th record (6 of 10 failed), the rest never processed.
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.failure_kind, Some(FailureKind::CircuitBreaker));
    assert_eq!(
        (e.counts.processed, e.counts.failed, e.counts.created),
        (10, 6, 4)
    );
    assert!(e
        .note
        .as_deref()
        .unwrap()
        .starts_with("Stopped early: 6 of 10"));
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        4
    );
    assert!(drain(&mut rx)
        .iter()
        .any(|e| matches!(e, Event::BreakerTripped { .. })));
    let alerts = h
        .engine
        .alerts(true, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(alerts
        .iter()
        .any(|a| a.kind == AlertKind::CircuitBreaker
            && a.execution_id.as_deref() == Some(e.id.as_str())));
}

#[tokio::test]
async fn r_b1_half_failed_does_not_trip() {
    let h = harness(SandboxConfig {
        customers: 30,
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.bad_records = null_emails(5));
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::CompletedWithErrors);
    assert_eq!((e.counts.processed, e.counts.failed), (30, 5));
}

#[tokio::test]
async fn r_b3_breaker_resets_on_the_next_execution() {
    let h = small().await;
    let job = h
        .job("customers", |j| j.settings.retry_on_failure = false)
        .await;
    h.faults(|f| f.bad_record_rate = 1.0);
    assert_eq!(
        h.run(&job).await.failure_kind,
        Some(FailureKind::CircuitBreaker)
    );
    h.faults(|f| f.bad_record_rate = 0.0);
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.counts.processed, 40);
}

// ---- R-D dead letters ---------------------------------------------------------------------

#[tokio::test]
async fn r_d1_record_failing_in_three_executions_becomes_dead_letter_and_r_d2_is_excluded() {
    let h = small().await;
    let job = h
        .job("customers", |j| j.mode = syncdesk_engine::Mode::Full)
        .await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000007",
            BadKind::NullRequired,
        )]
    });
    let mut rx = h.engine.subscribe();
    for attempt in 1..=3u32 {
        h.run(&job).await;
        let failing = h
            .engine
            .failing_records(&job.id, &PageRequest::first(10))
            .await
            .unwrap()
            .items;
        let dead = h.dead(&job).await;
        if attempt < 3 {
            assert_eq!(failing.len(), 1);
            assert_eq!(failing[0].attempts, attempt);
            assert!(dead.is_empty());
        } else {
            assert!(failing.is_empty());
            assert_eq!(dead.len(), 1);
        }
    }
    assert!(drain(&mut rx).iter().any(
        |e| matches!(e, Event::DeadLettered { record_id, .. } if record_id == "cus_00000007")
    ));
    // R-D2: the next run leaves it out entirely.
    let e = h.run(&job).await;
    assert_eq!(
        (e.counts.processed, e.counts.failed, e.excluded),
        (39, 0, 1)
    );
    assert_eq!(e.status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn r_d1_incremental_runs_reattempt_failed_records_by_id() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await; // incremental
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000007",
            BadKind::NullRequired,
        )]
    });
    h.run(&job).await; // full (no watermark yet): strike 1
    for strikes in 2..=3u32 {
        let e = h.run(&job).await;
        assert_eq!(e.mode, syncdesk_engine::Mode::Incremental);
        assert_eq!(e.counts.failed, 1, "re-attempted although unchanged");
        let _ = strikes;
    }
    let dead = h.dead(&job).await;
    assert_eq!((dead.len(), dead[0].attempts), (1, 3));
}

#[tokio::test]
async fn r_d1_success_resets_and_execution_level_failures_do_not_count() {
    let h = small().await;
    let job = h
        .job("customers", |j| {
            j.mode = syncdesk_engine::Mode::Full;
            j.settings.retry_on_failure = false;
        })
        .await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000007",
            BadKind::NullRequired,
        )]
    });
    h.run(&job).await;
    h.run(&job).await;
    // An execution-level failure on the first page: no strike for anyone.
    h.faults(|f| f.error_burst = 10);
    assert_eq!(
        h.run(&job).await.failure_kind,
        Some(FailureKind::ProviderUnavailable)
    );
    h.faults(|f| f.error_burst = 0);
    let failing = h
        .engine
        .failing_records(&job.id, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(failing[0].attempts, 2);
    // Fixed at the source: one success resets it.
    h.faults(|f| f.bad_records.clear());
    h.run(&job).await;
    assert!(h
        .engine
        .failing_records(&job.id, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let store = h.engine.store();
    assert_eq!(
        store
            .count_refs(&job.connection_id, "customers", RecordState::Ok)
            .await
            .unwrap(),
        40
    );
}

async fn dead_letter_setup() -> (H, Job) {
    let h = small().await;
    let job = h
        .job("customers", |j| j.mode = syncdesk_engine::Mode::Full)
        .await;
    h.faults(|f| {
        f.bad_records = vec![
            bad(Entity::Customers, "cus_00000007", BadKind::NullRequired),
            bad(Entity::Customers, "cus_00000009", BadKind::InvalidDate),
        ]
    });
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(60));
        h.run(&job).await;
    }
    (h, job)
}

#[tokio::test]
async fn r_d3_failed_records_tab_has_the_spec_columns() {
    let (h, job) = dead_letter_setup().await;
    let dead = h.dead(&job).await;
    assert_eq!(dead.len(), 2);
    let d = dead.iter().find(|d| d.record_id == "cus_00000007").unwrap();
    assert_eq!(d.entity, "customers");
    assert_eq!(d.attempts, 3);
    assert!(d.first_failed_at.unwrap() < d.last_failed_at.unwrap());
    assert_eq!(
        d.last_error.as_deref(),
        Some("ValidationError - Required field 'email' is null")
    );
    assert!(
        d.last_payload.as_ref().unwrap()["email"].is_null(),
        "the stored payload is the one that failed"
    );
    let (_, history) = h
        .engine
        .record_history(&job.id, "cus_00000007")
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
    // Paginated: one per page, cursor walks both.
    let p1 = h
        .engine
        .dead_letters(&job.id, &PageRequest::first(1))
        .await
        .unwrap();
    let p2 = h
        .engine
        .dead_letters(
            &job.id,
            &PageRequest {
                cursor: p1.next_cursor.clone(),
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(p1.items.len() + p2.items.len(), 2);
    assert_ne!(p1.items[0].record_id, p2.items[0].record_id);
    assert!(p2.next_cursor.is_none());
}

#[tokio::test]
async fn r_d4_retry_failure_updates_attempts_and_success_leaves_the_queue() {
    let (h, job) = dead_letter_setup().await;
    h.clock.advance(Duration::from_secs(60));
    let out = h
        .engine
        .retry_dead_letters(&job.id, &["cus_00000007".to_string()])
        .await
        .unwrap();
    assert!(!out[0].succeeded);
    let d = h
        .dead(&job)
        .await
        .into_iter()
        .find(|d| d.record_id == "cus_00000007")
        .unwrap();
    assert_eq!(d.attempts, 4);
    assert_eq!(d.last_failed_at, Some(h.engine.now()));
    let exec = h.engine.execution(&out[0].execution_id).await.unwrap();
    assert_eq!(exec.trigger, Trigger::RecordRetry);

    h.faults(|f| f.bad_records.retain(|b| b.id != "cus_00000007"));
    let out = h
        .engine
        .retry_dead_letters(&job.id, &["cus_00000007".to_string()])
        .await
        .unwrap();
    assert!(out[0].succeeded, "{:?}", out[0].error);
    let dead = h.dead(&job).await;
    assert_eq!(dead.len(), 1, "only the other record is left");
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        39,
        "the record now exists locally"
    );
    // Retrying something that is not a dead letter is a clear error.
    let err = h
        .engine
        .retry_dead_letters(&job.id, &["cus_00000007".to_string()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, syncdesk_engine::Error::NotFound { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn r_d5_dismiss_hides_never_retries_and_audits_who_when_note() {
    let (h, job) = dead_letter_setup().await;
    assert!(matches!(
        h.engine
            .dismiss_dead_letters(&job.id, &["cus_00000009".to_string()], "  ")
            .await
            .unwrap_err(),
        syncdesk_engine::Error::Invalid { .. }
    ));
    let done = h
        .engine
        .dismiss_dead_letters(
            &job.id,
            &["cus_00000009".to_string(), "cus_00000007".to_string()],
            "test data, ignore",
        )
        .await
        .unwrap();
    assert_eq!(done.len(), 2, "bulk dismiss");
    assert!(h.dead(&job).await.is_empty());
    let audit: Vec<_> = h
        .engine
        .audit(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.action == "dead_letter.dismiss")
        .collect();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|a| a.actor == "admin@test"
        && a.action == "dead_letter.dismiss"
        && a.note.as_deref() == Some("test data, ignore")
        && a.at == h.engine.now()));
    h.faults(|f| f.bad_records.clear());
    let e = h.run(&job).await;
    assert_eq!(
        e.excluded, 2,
        "dismissed records are never retried automatically"
    );
}

// ---- R-A automatic retries ----------------------------------------------------------------

#[tokio::test]
async fn r_a1_r_a2_r_a4_failed_execution_is_retried_after_5m_30m_2h_as_a_chain_then_alerts() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.error_rate = 1.0);
    let mut rx = h.engine.subscribe();
    let first = h.run(&job).await;
    assert_eq!(first.status, ExecutionStatus::Failed);
    let mut last = first.clone();
    for (n, delay) in [(2u32, 300u64), (3, 1800), (4, 7200)] {
        let finished = last.finished_at.unwrap();
        let last_row = h.engine.execution(&last.id).await.unwrap();
        assert_eq!(
            last_row.next_retry_at,
            Some(finished + chrono::Duration::seconds(delay as i64)),
            "retry {n} due after {delay}s"
        );
        // Not yet due.
        h.clock.advance(
            Duration::from_secs(delay)
                - (h.engine.now() - finished).to_std().unwrap()
                - Duration::from_secs(1),
        );
        assert!(h.engine.run_due().await.unwrap().is_empty());
        h.clock.advance(Duration::from_secs(1));
        let ran = h.engine.run_due().await.unwrap();
        assert_eq!(ran.len(), 1);
        let r = &ran[0];
        assert_eq!(
            (r.trigger, r.attempt, r.retry_of.as_deref()),
            (Trigger::Retry, n, Some(last.id.as_str()))
        );
        last = r.clone();
    }
    assert_eq!(last.next_retry_at, None, "no more automatic retries");
    let detail = h.engine.execution_detail(&last.id).await.unwrap();
    assert_eq!(detail.chain.len(), 4, "R-A2: the whole chain stays visible");
    assert_eq!(detail.chain[0], first.id);
    assert!(drain(&mut rx)
        .iter()
        .any(|e| matches!(e, Event::RetriesExhausted { attempts: 4, .. })));
    let alerts = h
        .engine
        .alerts(true, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(alerts.iter().any(|a| a.kind == AlertKind::RetriesExhausted));
    let all = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].id, last.id, "R-I4: newest first");
}

#[tokio::test]
async fn r_a1_completed_with_errors_is_not_retried_and_success_cancels_pending_retries() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.bad_records = vec![bad(
            Entity::Customers,
            "cus_00000002",
            BadKind::NullRequired,
        )]
    });
    let e = h.run(&job).await;
    assert_eq!(
        (e.status, e.next_retry_at),
        (ExecutionStatus::CompletedWithErrors, None)
    );
    h.faults(|f| f.error_rate = 1.0);
    let failed = h.run(&job).await;
    assert!(h
        .engine
        .execution(&failed.id)
        .await
        .unwrap()
        .next_retry_at
        .is_some());
    h.faults(|f| f.error_rate = 0.0);
    assert!(h.run(&job).await.status.is_success());
    let queued = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(
        queued.iter().all(|e| e.status != ExecutionStatus::Queued),
        "a success supersedes pending retries"
    );
    h.clock.advance(Duration::from_secs(3600));
    assert!(h.engine.run_due().await.unwrap().is_empty());
}

#[tokio::test]
async fn r_a3_retry_of_an_incremental_job_fetches_only_what_changed() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.run(&job).await;
    let changed = h.sandbox.touch_fraction(Entity::Customers, 0.1);
    assert_eq!(changed.len(), 4);
    for id in &changed {
        h.sandbox.patch_record(
            Entity::Customers,
            id,
            serde_json::json!({"name": format!("Changed {id}")}),
        );
    }
    h.faults(|f| f.error_burst = 4);
    let failed = h.run(&job).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    h.clock.advance(Duration::from_secs(300));
    let ran = h.engine.run_due().await.unwrap();
    let retry = &ran[0];
    assert_eq!(
        (retry.trigger, retry.mode, retry.status),
        (
            Trigger::Retry,
            syncdesk_engine::Mode::Incremental,
            ExecutionStatus::Completed
        )
    );
    // `updated_since` is inclusive, so the record at the high-water mark comes back too
    // (unchanged, skipped): ties within one timestamp are never lost.
    assert_eq!(
        (
            retry.counts.updated,
            retry.counts.skipped,
            retry.counts.processed
        ),
        (4, 1, 5),
        "only the changed records"
    );
}

#[tokio::test]
async fn r_a_interrupted_execution_is_failed_and_retried_after_restart() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    // A run whose process died: running, owned by a pid that does not exist.
    let now = h.engine.now();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let dead = h
        .engine
        .store()
        .insert_execution(
            syncdesk_engine::store::NewExecution {
                id: "dead-run".into(),
                job_id: job.id.clone(),
                trigger: Trigger::Manual,
                attempt: 1,
                retry_of: None,
                status: ExecutionStatus::Running,
                mode: syncdesk_engine::Mode::Full,
                record_id: None,
                due_at: now,
                owner: Some((
                    format!("{host}:4194303:gone"),
                    now + chrono::Duration::minutes(15),
                )),
                waits_for_reauth: false,
            },
            now,
        )
        .await
        .unwrap();
    let recovered = h.engine.recover_interrupted().await.unwrap();
    assert_eq!(recovered.len(), 1);
    let e = h.engine.execution(&dead.id).await.unwrap();
    assert_eq!(
        (e.status, e.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Interrupted))
    );
    assert!(e.next_retry_at.is_some(), "follows R-A");
    h.clock.advance(Duration::from_secs(300));
    let ran = h.engine.run_due().await.unwrap();
    assert_eq!(ran[0].status, ExecutionStatus::Completed);
}

// ---- R-I investigation --------------------------------------------------------------------

#[tokio::test]
async fn r_i1_error_log_lists_every_failed_record_filterable_and_paginated() {
    let h = harness(SandboxConfig {
        customers: 60,
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| {
        f.bad_records = vec![
            bad(Entity::Customers, "cus_00000011", BadKind::NullRequired),
            bad(Entity::Customers, "cus_00000022", BadKind::InvalidDate),
            bad(Entity::Customers, "cus_00000033", BadKind::WrongType),
            bad(Entity::Customers, "cus_00000044", BadKind::NullRequired),
        ]
    });
    let e = h.run(&job).await;
    assert_eq!(e.counts.failed, 4);
    let p1 = h
        .engine
        .record_errors(&e.id, None, &PageRequest::first(3))
        .await
        .unwrap();
    let p2 = h
        .engine
        .record_errors(
            &e.id,
            None,
            &PageRequest {
                cursor: p1.next_cursor.clone(),
                limit: 3,
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = p1
        .items
        .iter()
        .chain(&p2.items)
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "cus_00000011",
            "cus_00000022",
            "cus_00000033",
            "cus_00000044"
        ]
    );
    let validation = h
        .engine
        .record_errors(
            &e.id,
            Some(RecordErrorKind::ValidationError),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(validation.items.len(), 2);
    assert!(p1
        .items
        .iter()
        .all(|r| r.at == h.engine.now() && r.entity == "customers"));
    let bad_cursor = h
        .engine
        .record_errors(
            &e.id,
            None,
            &PageRequest {
                cursor: Some("x".into()),
                limit: 3,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(bad_cursor, syncdesk_engine::Error::Invalid { .. }));
    let d = h.engine.execution_detail(&e.id).await.unwrap();
    assert!(d
        .diagnosis
        .iter()
        .any(|d| d.pattern == "validation" && d.actions.contains(&Action::OpenFailedRecords)));
}

// ---- bad responses, bad input, pagination styles, secrets -------------------------------

#[tokio::test]
async fn malformed_page_fails_with_a_specific_message() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.malformed_burst = 1);
    let e = h.run(&job).await;
    assert_eq!(e.failure_kind, Some(FailureKind::Malformed));
    let note = e.note.unwrap();
    assert!(
        note.starts_with("malformed response from /v1/customers: not valid JSON"),
        "{note}"
    );
}

/// A provider on 127.0.0.1 that issues tokens and answers every other request with `page`.
async fn provider_answering(page: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // The whole request, body included, before answering.
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = if head.starts_with("post /oauth/token") {
                    r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#
                } else {
                    page
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Records are kept as text, but a page is still checked as strictly as parsing it into
/// values would: a number out of range, an escape that does not decode, fail the page with
/// the same message as any JSON error, not a record later with a misleading one.
#[tokio::test]
async fn a_page_with_json_values_cannot_hold_fails_as_malformed() {
    let h = small().await;
    for (name, page) in [
        (
            "huge",
            r#"{"object":"list","has_more":false,"data":[{"id":"cus_1","email":"a@example.com","name":"A","amount":1e400}]}"#,
        ),
        (
            "surrogate",
            r#"{"object":"list","has_more":false,"data":[{"id":"cus_1","email":"a@example.com","name":"\ud800"}]}"#,
        ),
    ] {
        h.engine
            .create_connection(NewConnection {
                name: name.into(),
                spec: ConnectorSpec::parse(SPEC).unwrap(),
                base_url: Some(provider_answering(page).await),
                client_id: Some("sandbox-client".into()),
                secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
                auth_base_url: None,
                auth_kind: None,
                values: Default::default(),
            })
            .await
            .unwrap();
        let job = h.job_on(name, name, "customers", |_| {}).await;
        let e = h.run(&job).await;
        assert_eq!(e.failure_kind, Some(FailureKind::Malformed), "{name}");
        let note = e.note.unwrap();
        assert!(
            note.starts_with("malformed response from /v1/customers: not valid JSON"),
            "{name}: {note}"
        );
        assert_eq!(e.counts.processed, 0, "{name}");
    }
}

#[tokio::test]
async fn other_4xx_fails_with_status_path_and_excerpt() {
    let h = small().await;
    h.connect(
        "wrong",
        SPEC.replace("path = \"/v1/customers\"", "path = \"/v1/customerz\""),
    )
    .await;
    let job = h.job_on("wrong", "w", "customers", |_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.failure_kind, Some(FailureKind::Rejected));
    let note = e.note.unwrap();
    assert!(
        note.starts_with("provider rejected /v1/customerz with HTTP 404"),
        "{note}"
    );
    assert!(!note.contains("limit="), "no query string in messages");
}

#[tokio::test]
async fn invalid_job_settings_are_rejected_by_field_and_nothing_is_stored() {
    let h = small().await;
    let mk = |f: fn(&mut NewJob)| {
        let mut j = NewJob {
            name: "bad".into(),
            connection: "sandbox".into(),
            entity: "customers".into(),
            direction: syncdesk_engine::Direction::Pull,
            mode: syncdesk_engine::Mode::Incremental,
            schedule: None,
            enabled: true,
            settings: Default::default(),
        };
        f(&mut j);
        j
    };
    let cases: Vec<(NewJob, &str)> = vec![
        (mk(|j| j.settings.batch_size = 0), "invalid batch_size"),
        (
            mk(|j| j.schedule = Some("every 5 parsecs".into())),
            "invalid schedule",
        ),
        (mk(|j| j.entity = "widgets".into()), "invalid entity"),
        (
            mk(|j| j.settings.natural_keys = vec!["nope".into()]),
            "invalid natural_keys",
        ),
        (
            mk(|j| j.connection = "nowhere".into()),
            "connection not found",
        ),
    ];
    for (j, want) in cases {
        let err = h.engine.create_job(j).await.unwrap_err().to_string();
        assert!(err.starts_with(want), "{err} should start with {want}");
    }
    assert!(h
        .engine
        .jobs(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn every_pagination_style_fetches_each_record_exactly_once() {
    let h = harness(SandboxConfig {
        customers: 47,
        ..Default::default()
    })
    .await;
    let styles = [
        (
            "next",
            "/alt/next-cursor/customers",
            "records = \"items\"",
            "{ style = \"next_cursor\" }",
        ),
        (
            "page",
            "/alt/page/customers",
            "records = \"results\"",
            "{ style = \"page\" }",
        ),
        (
            "offset",
            "/alt/offset/customers",
            "records = \"records\"",
            "{ style = \"offset\" }",
        ),
        (
            "link",
            "/alt/link/customers",
            "records = \"\"",
            "{ style = \"link\" }",
        ),
    ];
    for (name, path, records, pagination) in styles {
        let spec = SPEC
            .replacen("path = \"/v1/customers\"", &format!("path = \"{path}\""), 1)
            .replacen("records = \"data\"", records, 1)
            .replacen(
                "pagination = { style = \"cursor\", limit_param = \"limit\", cursor_param = \"starting_after\", has_more = \"has_more\" }",
                &format!("pagination = {pagination}"),
                1,
            );
        h.connect(name, spec).await;
        let job = h
            .job_on(name, name, "customers", |j| {
                j.settings.duplicate_detection = false
            })
            .await;
        let e = h.run(&job).await;
        assert_eq!(
            (e.status, e.counts.created),
            (ExecutionStatus::Completed, 47),
            "style {name}"
        );
    }
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        47 * 4
    );
}

#[tokio::test]
async fn secrets_never_reach_the_database_file() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.sandbox.expire_tokens();
    h.run(&job).await;
    let conn = h.engine.connection("sandbox").await.unwrap();
    let token = h
        .secrets
        .get(&conn.id, SecretKind::AccessToken)
        .unwrap()
        .unwrap();
    let rt = h
        .secrets
        .get(&conn.id, SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    h.engine.shutdown().await;
    let bytes = common::stored_bytes(&h.database).await;
    assert!(bytes.len() > 10_000);
    for secret in [token.expose(), rt.expose(), "sandbox-secret"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret is in the database"
        );
    }
}

#[tokio::test]
async fn a_running_execution_can_be_cancelled_and_keeps_its_counts() {
    let h = harness(SandboxConfig {
        customers: 200,
        faults: Faults {
            latency_ms: 20,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |_| {}).await;
    let mut rx = h.engine.subscribe();
    let started = h
        .engine
        .start_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(started.status, ExecutionStatus::Running);
    while !matches!(rx.recv().await.unwrap(), Event::ExecutionProgress { .. }) {}
    h.engine.cancel_execution(&started.id).await.unwrap();
    let status = loop {
        if let Event::ExecutionFinished { status, .. } = rx.recv().await.unwrap() {
            break status;
        }
    };
    assert_eq!(status, ExecutionStatus::Cancelled);
    let e = h.engine.execution(&started.id).await.unwrap();
    assert_eq!(
        (e.status, e.failure_kind),
        (ExecutionStatus::Cancelled, Some(FailureKind::Cancelled))
    );
    assert!(
        e.counts.processed >= 10 && e.counts.processed < 200,
        "stopped part way: {:?}",
        e.counts
    );
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        e.counts.created,
        "what was counted was kept"
    );
    assert_eq!(e.next_retry_at, None, "a cancelled run is not retried");
}

#[tokio::test]
async fn r_b2_tripped_breaker_halts_before_the_next_page() {
    let h = harness(SandboxConfig {
        customers: 100,
        ..Default::default()
    })
    .await;
    let job = h.job("customers", |j| j.settings.batch_size = 20).await;
    h.run(&h.job("products", |_| {}).await).await; // warm the token so only data requests count
    h.faults(|f| f.bad_records = null_emails(20));
    h.sandbox.reset_stats();
    let e = h.run(&job).await;
    assert_eq!((e.counts.processed, e.counts.failed), (10, 10));
    assert_eq!(
        h.sandbox.stats().data_requests,
        1,
        "no further page was requested"
    );
    assert_eq!(h.errors(&e.id).await.len(), 10, "10 error entries, not 100");
    assert_eq!(e.batch_in_progress.as_deref(), Some("page 1"));
}

#[tokio::test]
async fn r_i4_history_is_newest_first_and_paginated() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(h.run(&job).await.id);
    }
    let p1 = h
        .engine
        .executions(Some("customers"), &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(
        p1.items.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
    let p2 = h
        .engine
        .executions(
            Some(&job.id),
            &PageRequest {
                cursor: p1.next_cursor,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].id, ids[0]);
    assert!(p2.next_cursor.is_none());
    assert!(p1
        .items
        .iter()
        .all(|e| e.duration().is_some() && e.trigger == Trigger::Manual && e.attempt == 1));
}

#[tokio::test]
async fn r_d3_r_i4_job_summaries_show_the_newest_run_and_failed_record_counts() {
    let h = small().await;
    let customers = h
        .job("customers", |j| j.mode = syncdesk_engine::Mode::Full)
        .await;
    let products = h.job("products", |_| {}).await;
    let never = h.job_on("sandbox", "invoices", "invoices", |_| {}).await;
    h.faults(|f| {
        f.bad_records = vec![
            bad(Entity::Customers, "cus_00000003", BadKind::NullRequired),
            bad(Entity::Customers, "cus_00000009", BadKind::NullRequired),
        ]
    });
    let mut last = None;
    for _ in 0..3 {
        last = Some(h.run(&customers).await);
    }
    h.faults(|f| f.error_burst = 4);
    let failed = h.run(&products).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);

    let page = h
        .engine
        .job_summaries(&PageRequest::first(50))
        .await
        .unwrap();
    let of = |id: &str| page.items.iter().find(|s| s.job.id == id).unwrap();
    let c = of(&customers.id);
    let newest = c.last_execution.as_ref().unwrap();
    assert_eq!(newest.id, last.unwrap().id);
    assert_eq!(newest.status, ExecutionStatus::CompletedWithErrors);
    assert_eq!(c.dead_letters, 2, "both bad records failed three times");
    assert_eq!(
        c.health,
        syncdesk_engine::JobHealth::NeedsAttention,
        "records wait in Failed Records"
    );
    // A failed run is the newest run, not its queued retry (which has not run): the job
    // is failing with a retry scheduled (R-A1).
    let p = of(&products.id);
    let newest = p.last_execution.as_ref().unwrap();
    assert_eq!(newest.id, failed.id);
    assert!(
        matches!(newest.retry, syncdesk_engine::RetryState::Pending { .. }),
        "{:?}",
        newest.retry
    );
    assert_eq!(p.health, syncdesk_engine::JobHealth::Retrying);
    assert_eq!(p.dead_letters, 0);
    let n = of(&never.id);
    assert!(n.last_execution.is_none());
    assert_eq!(n.health, syncdesk_engine::JobHealth::NeverRun);

    let health = h.engine.health().await.unwrap();
    assert_eq!(
        (
            health.jobs,
            health.failing_jobs,
            health.dead_letters,
            health.expired_connections
        ),
        (3, 1, 2, 0)
    );
}

// ---- browser sign-in (R-E1: authorization code + PKCE, RFC 8252 loopback redirect) ----

/// A new connection named `name` to sign in to: a public client (no secret), as a desktop
/// app registered with a provider is.
fn sign_in_connection(h: &H, name: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        spec: ConnectorSpec::parse(SPEC).unwrap(),
        base_url: Some(h.sandbox.base_url()),
        client_id: Some("sandbox-client".into()),
        secrets: vec![],
        auth_base_url: None,
        auth_kind: None,
        values: Default::default(),
    }
}

/// The user's browser: opens the sign-in page and follows the provider's redirect to the
/// app's loopback listener; returns the page the user ends up on.
async fn browse(url: String) -> (u16, String) {
    let resp = reqwest::get(url)
        .await
        .expect("the browser reaches the pages");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn sign_in(
    h: &H,
    s: syncdesk_engine::SignIn,
) -> syncdesk_engine::Result<syncdesk_engine::Connection> {
    let browser = tokio::spawn(browse(s.url().to_string()));
    let out = h
        .engine
        .finish_sign_in(s, &tokio_util::sync::CancellationToken::new())
        .await;
    let (status, page) = browser.await.unwrap();
    assert_eq!(status == 200, out.is_ok(), "{status} {page} {out:?}");
    if out.is_ok() {
        assert!(page.contains("Signed in"), "{page}");
    }
    out
}

#[tokio::test]
async fn r_e1_browser_sign_in_with_pkce_creates_a_connection_that_syncs_and_signs_in_again() {
    let h = small().await;
    let s = h
        .engine
        .begin_sign_in(sign_in_connection(&h, "signed-in"))
        .await
        .unwrap();
    assert!(s.url().starts_with(&h.sandbox.base_url()), "{}", s.url());
    let conn = sign_in(&h, s).await.unwrap();
    assert_eq!(
        conn.auth_kind,
        syncdesk_engine::AuthKind::Oauth2RefreshToken
    );
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);
    assert!(conn.token_expires_at.is_some() && conn.refresh_expires_at.is_some());
    assert_eq!(h.sandbox.stats().code_grants, 1);
    // Both tokens are in the keychain; there was no client secret to store.
    for kind in [SecretKind::RefreshToken, SecretKind::AccessToken] {
        assert!(h.secrets.get(&conn.id, kind).unwrap().is_some(), "{kind:?}");
    }
    assert!(h
        .secrets
        .get(&conn.id, SecretKind::ClientSecret)
        .unwrap()
        .is_none());

    let job = h
        .job_on("signed-in", "signed-in customers", "customers", |_| {})
        .await;
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);

    // The provider revokes everything: the refresh fails, the connection expires, and
    // signing in again on the same connection brings it back with its jobs.
    h.sandbox.revoke_tokens();
    let e = h.run(&job).await;
    assert_eq!(e.failure_kind, Some(FailureKind::Auth));
    let expired = h.engine.connection("signed-in").await.unwrap();
    assert_eq!(expired.status, syncdesk_engine::ConnectionStatus::Expired);
    let s = h.engine.begin_sign_in_again("signed-in").await.unwrap();
    let again = sign_in(&h, s).await.unwrap();
    assert_eq!(again.id, conn.id);
    assert_eq!(again.status, syncdesk_engine::ConnectionStatus::Active);
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);
    let actions: Vec<String> = h
        .engine
        .audit(&PageRequest::first(50))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.subject == "connection signed-in")
        .map(|a| a.action)
        .collect();
    assert!(
        actions.contains(&"connection.sign_in".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"connection.reauthenticate".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn r_e1_a_refused_forged_or_abandoned_sign_in_stores_nothing() {
    let h = small().await;
    let before = h.engine.connections().await.unwrap().len();

    // The user clicks "Deny" at the provider.
    h.sandbox.set_consent_denied(true);
    let s = h
        .engine
        .begin_sign_in(sign_in_connection(&h, "x"))
        .await
        .unwrap();
    let e = sign_in(&h, s).await.unwrap_err();
    assert!(matches!(e, syncdesk_engine::Error::SignInFailed(_)), "{e}");
    assert!(e.to_string().contains("access_denied"), "{e}");
    h.sandbox.set_consent_denied(false);

    // Another page sends the browser to the listener with its own code: the state differs.
    // The browser's favicon request before it is answered 404 and does not end the wait.
    let s = h
        .engine
        .begin_sign_in(sign_in_connection(&h, "x"))
        .await
        .unwrap();
    let redirect = url::Url::parse(s.url())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let favicon = redirect.replace("/callback", "/favicon.ico");
    let forged = format!("{redirect}?code=attacker&state=guess");
    let browser = tokio::spawn(async move {
        let f = browse(favicon).await.0;
        (f, browse(forged).await)
    });
    let e = h
        .engine
        .finish_sign_in(s, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    let (favicon_status, (status, page)) = browser.await.unwrap();
    assert_eq!(favicon_status, 404);
    assert_eq!(status, 400);
    assert!(page.contains("did not complete"), "{page}");
    assert!(matches!(e, syncdesk_engine::Error::SignInFailed(_)), "{e}");
    assert!(e.to_string().contains("state"), "{e}");

    // The user closes the browser tab; the app gives up waiting.
    let s = h
        .engine
        .begin_sign_in(sign_in_connection(&h, "x"))
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let e = h.engine.finish_sign_in(s, &cancel).await.unwrap_err();
    assert!(matches!(e, syncdesk_engine::Error::Cancelled), "{e}");

    // A provider without an authorization endpoint cannot be signed in to.
    let mut no_browser = sign_in_connection(&h, "x");
    no_browser.spec.auth.authorize_url = None;
    let e = h.engine.begin_sign_in(no_browser).await.unwrap_err();
    assert_eq!(e.field(), Some("auth.authorize_url"));
    // A name already taken is refused before the browser opens.
    let e = h
        .engine
        .begin_sign_in(sign_in_connection(&h, "sandbox"))
        .await
        .unwrap_err();
    assert!(matches!(e, syncdesk_engine::Error::Conflict(_)), "{e}");

    assert_eq!(h.engine.connections().await.unwrap().len(), before);
    assert_eq!(h.sandbox.stats().code_grants, 0);
}

// ---- Engine trust (issue 13) --------------------------------------------------------------

/// A `running` row for `job`, owned by `owner` with a lease until `lease`.
async fn running_row(
    h: &H,
    job: &Job,
    id: &str,
    owner: String,
    lease: chrono::DateTime<chrono::Utc>,
) -> syncdesk_engine::Result<syncdesk_engine::Execution> {
    let now = h.engine.now();
    h.engine
        .store()
        .insert_execution(
            syncdesk_engine::store::NewExecution {
                id: id.into(),
                job_id: job.id.clone(),
                trigger: Trigger::Manual,
                attempt: 1,
                retry_of: None,
                status: ExecutionStatus::Running,
                mode: syncdesk_engine::Mode::Full,
                record_id: None,
                due_at: now,
                owner: Some((owner, lease)),
                waits_for_reauth: false,
            },
            now,
        )
        .await
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Wait (bounded) for the event `pick` selects.
async fn next_event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("the event came")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_two_starts_of_one_job_at_the_same_moment_make_one_run() {
    let h = small().await;
    let job = h
        .job("customers", |j| j.settings.request_timeout_secs = 3600)
        .await;
    // Every data request stalls, so a started run is still running when the other starts.
    h.faults(|f| {
        f.hang_after = Some(0);
        f.hang_ms = 600_000;
    });
    // A second engine on the same database file: another process, as far as the store knows.
    let other = Engine::open(EngineOptions {
        database: h.database.clone(),
        secrets: h.secrets.clone(),
        clock: h.clock.clone(),
        actor: "other@test".into(),
    })
    .await
    .unwrap();
    let mut rx = h.engine.subscribe();
    let mut rx_other = other.subscribe();
    for trial in 0..10 {
        let (a, b) = tokio::join!(
            h.engine.start_job(&job.id, RunOptions::default()),
            other.start_job(&job.id, RunOptions::default())
        );
        let (winner, loser, rx) = match (a, b) {
            (Ok(e), Err(l)) => (&h.engine, (e, l), &mut rx),
            (Err(l), Ok(e)) => (&other, (e, l), &mut rx_other),
            (a, b) => panic!("trial {trial}: exactly one start must win: {a:?} / {b:?}"),
        };
        let (exec, err) = loser;
        assert!(
            matches!(err, syncdesk_engine::Error::Conflict(_)),
            "trial {trial}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("already running") && msg.contains(&exec.id),
            "the loser names the running execution: {msg}"
        );
        winner.cancel_execution(&exec.id).await.unwrap();
        let id = exec.id.clone();
        let status = next_event(rx, |e| match e {
            Event::ExecutionFinished {
                execution_id,
                status,
                ..
            } if *execution_id == id => Some(*status),
            _ => None,
        })
        .await;
        assert_eq!(status, ExecutionStatus::Cancelled);
    }
    let all = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 10, "one execution per trial");
    // The store itself refuses a second running row of one job.
    let now = h.engine.now();
    running_row(&h, &job, "first", "x:1:a".into(), now)
        .await
        .unwrap();
    let err = running_row(&h, &job, "second", "x:1:b".into(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, syncdesk_engine::Error::Conflict(_)), "{err}");
    other.shutdown().await;
}

#[tokio::test]
async fn h3_a_run_left_by_a_dead_process_is_interrupted_by_the_next_start() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    let now = h.engine.now();
    // Owned by a pid that does not exist on this machine, lease still valid.
    let dead = running_row(
        &h,
        &job,
        "dead-run",
        format!("{}:4194303:gone", hostname()),
        now + chrono::Duration::minutes(15),
    )
    .await
    .unwrap();
    let e = h.run(&job).await;
    assert_eq!(
        e.status,
        ExecutionStatus::Completed,
        "the start was not refused"
    );
    let d = h.engine.execution(&dead.id).await.unwrap();
    assert_eq!(
        (d.status, d.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Interrupted))
    );
    assert!(d.next_retry_at.is_some(), "the interrupted run follows R-A");
    let history = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let retry = history
        .iter()
        .find(|x| x.trigger == Trigger::Retry)
        .unwrap_or_else(|| panic!("its retry was queued: {history:#?}"));
    assert_eq!(
        retry.status,
        ExecutionStatus::Cancelled,
        "and superseded by the successful run"
    );

    // Another machine's run with a lapsed lease is recovered too; one whose lease holds is not.
    running_row(
        &h,
        &job,
        "lapsed",
        "elsewhere:12:x".into(),
        h.engine.now() - chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);
    running_row(
        &h,
        &job,
        "alive",
        "elsewhere:12:y".into(),
        h.engine.now() + chrono::Duration::minutes(15),
    )
    .await
    .unwrap();
    let err = h
        .engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("already running") && msg.contains("alive") && msg.contains("on elsewhere"),
        "{msg}"
    );
    // A live process of this machine (this one, another engine) is never interrupted.
    h.engine
        .store()
        .end_execution(
            "alive",
            &syncdesk_engine::store::ExecutionEnd {
                finish: Some(syncdesk_engine::store::ExecutionFinish {
                    status: ExecutionStatus::Cancelled,
                    failure_kind: None,
                    note: None,
                    progress: Default::default(),
                    finished_at: h.engine.now(),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    running_row(
        &h,
        &job,
        "mine",
        format!("{}:{}:other-engine", hostname(), std::process::id()),
        h.engine.now(),
    )
    .await
    .unwrap();
    h.clock.advance(Duration::from_secs(60));
    let err = h
        .engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("by process"),
        "a live process keeps its run past its lease: {err}"
    );
}

/// A provider on 127.0.0.1 that answers every request with `body` (one page, no paging).
async fn fixed_provider(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

const FIXED_SPEC: &str = r#"
name = "Fixed"
[auth]
kind = "none"
[entities.customers]
path = "/v1/customers"
records = "data"
id = "id"
pagination = { style = "none" }
natural_keys = ["email"]
mappings = [
  { source = "email", target = "email", required = true, type = "string" },
  { source = "name", target = "name", type = "string" },
]
"#;

#[tokio::test]
async fn d2_a_page_that_repeats_an_id_stores_one_record_and_logs_the_repeat() {
    let h = small().await;
    let page = serde_json::json!({"data": [
        {"id": "c1", "email": "a@example.com", "name": "A"},
        {"id": "c2", "email": "b@example.com", "name": "B"},
        {"id": "c1", "email": "a2@example.com", "name": "A again"},
        {"id": "c3", "email": "c@example.com", "name": "C"},
    ]});
    let base = fixed_provider(page.to_string()).await;
    h.engine
        .create_connection(NewConnection {
            name: "fixed".into(),
            spec: ConnectorSpec::parse(FIXED_SPEC).unwrap(),
            base_url: Some(base),
            client_id: None,
            secrets: vec![],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await
        .unwrap();
    let job = h
        .job_on("fixed", "fixed-customers", "customers", |j| {
            j.mode = syncdesk_engine::Mode::Full;
        })
        .await;
    let first = h.run(&job).await;
    assert_eq!(first.status, ExecutionStatus::Completed);
    assert_eq!(
        (
            first.counts.created,
            first.counts.skipped,
            first.counts.failed
        ),
        (3, 1, 0)
    );
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        3,
        "one local record per external id"
    );
    let errors = h.errors(&first.id).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, RecordErrorKind::DuplicateConflict);
    assert_eq!(errors[0].record_id, "c1");
    assert!(errors[0].message.contains("more than once in one page"));
    // The next run does not flip between the two copies.
    let again = h.run(&job).await;
    assert_eq!(
        (
            again.counts.updated,
            again.counts.created,
            again.counts.skipped
        ),
        (0, 0, 4)
    );
}

#[tokio::test]
async fn r_a1_a_runs_end_is_one_transaction_with_its_retry_and_alerts() {
    use sqlx::Connection;
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.error_rate = 1.0);
    let mut db = h.db().await;
    // The retry row cannot be written: nothing else of the end may be either.
    common::add_fault(
        &mut db,
        "executions",
        "NEW.status = 'queued'",
        "the disk said no",
    )
    .await;
    let err = h
        .engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the disk said no"), "{err}");
    let (status, next_retry): (String, Option<i64>) =
        sqlx::query_as("SELECT status, next_retry_at FROM executions")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), next_retry),
        ("running", None),
        "the run is left for crash recovery, not ended without its retry"
    );
    common::remove_fault(&mut db, "executions").await;
    db.close().await.unwrap();
    // Without the fault in the store, the same end commits whole: status and retry row.
    h.engine
        .store()
        .end_execution(
            &h.engine
                .executions(Some(&job.id), &PageRequest::first(100))
                .await
                .unwrap()
                .items[0]
                .id,
            &syncdesk_engine::store::ExecutionEnd {
                finish: Some(syncdesk_engine::store::ExecutionFinish {
                    status: ExecutionStatus::Cancelled,
                    failure_kind: None,
                    note: None,
                    progress: Default::default(),
                    finished_at: h.engine.now(),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert!(e.next_retry_at.is_some());
    let queued = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|x| x.status == ExecutionStatus::Queued)
        .count();
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn r_d4_a_partly_bad_retry_list_retries_nothing_and_each_retry_is_audited() {
    let (h, job) = dead_letter_setup().await;
    let before = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .len();
    let err = h
        .engine
        .retry_dead_letters(
            &job.id,
            &["cus_00000007".to_string(), "cus_nope".to_string()],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cus_nope"), "{err}");
    let after = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(before, after, "nothing ran");
    h.engine
        .retry_dead_letters(&job.id, &["cus_00000007".to_string()])
        .await
        .unwrap();
    let audit = h
        .engine
        .audit(&PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let entry = audit
        .iter()
        .find(|a| a.action == "dead_letter.retry")
        .expect("the retry is audited");
    assert!(entry.subject.contains("cus_00000007"));
    assert!(entry.note.is_some(), "with why it failed again");
}

/// A clock whose sleeps end only when the test moves time past them: the worker idles
/// without spinning through virtual time while runs are in flight.
#[derive(Debug)]
struct WatchClock(tokio::sync::watch::Sender<chrono::DateTime<chrono::Utc>>);

impl WatchClock {
    fn advance(&self, d: Duration) {
        self.0
            .send_modify(|t| *t += chrono::Duration::from_std(d).unwrap());
    }
}

impl syncdesk_engine::Clock for WatchClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.borrow()
    }
    fn sleep(&self, d: Duration) -> syncdesk_engine::clock::Sleep {
        let until = self.now() + chrono::Duration::from_std(d).unwrap();
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|t| *t >= until).await;
        })
    }
}

/// Move time on by 5 minutes until the event `pick` selects comes (the worker may be
/// between reading the time and going to sleep when time moves, and then sleeps from the
/// new time).
async fn advance_until<T>(
    clock: &WatchClock,
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    for _ in 0..200 {
        clock.advance(Duration::from_secs(300));
        let wait = tokio::time::timeout(Duration::from_millis(250), async {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if let Some(t) = pick(&e) {
                            return t;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        });
        if let Ok(t) = wait.await {
            return t;
        }
    }
    panic!("the event never came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_a1_worker_runs_jobs_independently_and_its_stop_ends_runs_interrupted_with_a_retry() {
    let fast = Sandbox::start(SandboxConfig {
        products: 20,
        ..Default::default()
    })
    .await
    .unwrap();
    let held = Sandbox::start(SandboxConfig {
        customers: 20,
        ..Default::default()
    })
    .await
    .unwrap();
    held.update_faults(|f| {
        f.hang_after = Some(0);
        f.hang_ms = 600_000;
    });
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(WatchClock(tokio::sync::watch::channel(start_time()).0));
    let engine = Engine::open(EngineOptions {
        database: common::database(dir.path()).await,
        secrets: Arc::new(MemorySecretStore::default()),
        clock: clock.clone(),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    for (name, sb) in [("fast", &fast), ("held", &held)] {
        engine
            .create_connection(NewConnection {
                name: name.into(),
                spec: ConnectorSpec::parse(SPEC).unwrap(),
                base_url: Some(sb.base_url()),
                client_id: Some("sandbox-client".into()),
                secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
                auth_base_url: None,
                auth_kind: None,
                values: Default::default(),
            })
            .await
            .unwrap();
    }
    let job = |name: &str, entity: &str| NewJob {
        name: name.into(),
        connection: name.into(),
        entity: entity.into(),
        direction: syncdesk_engine::Direction::Pull,
        mode: syncdesk_engine::Mode::Full,
        schedule: Some("every 5m".into()),
        enabled: true,
        settings: syncdesk_engine::JobSettings {
            request_timeout_secs: 3600,
            ..Default::default()
        },
    };
    let held_job = engine.create_job(job("held", "customers")).await.unwrap();
    let fast_job = engine.create_job(job("fast", "products")).await.unwrap();
    let mut rx = engine.subscribe();
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move { engine.run_worker(stop).await })
    };
    let held_exec = advance_until(&clock, &mut rx, |e| match e {
        Event::ExecutionStarted {
            execution_id,
            job_id,
            ..
        } if *job_id == held_job.id => Some(execution_id.clone()),
        _ => None,
    })
    .await;
    // The held run never answers; the other job keeps its 5-minute schedule meanwhile.
    for round in 0..3 {
        let status = advance_until(&clock, &mut rx, |e| match e {
            Event::ExecutionFinished { job_id, status, .. } if *job_id == fast_job.id => {
                Some(*status)
            }
            _ => None,
        })
        .await;
        assert_eq!(status, ExecutionStatus::Completed, "round {round}");
    }
    assert_eq!(
        engine.execution(&held_exec).await.unwrap().status,
        ExecutionStatus::Running
    );
    stop.cancel();
    worker.await.unwrap().unwrap();
    let held_end = engine.execution(&held_exec).await.unwrap();
    // Stopping the worker is the app going away (issue 16: a confirmed quit), not the admin
    // cancelling this run: it ends as after a crash, interrupted, and R-A1 retries it.
    assert_eq!(
        (held_end.status, held_end.failure_kind),
        (ExecutionStatus::Failed, Some(FailureKind::Interrupted)),
        "stop waited for the run to record how it ended"
    );
    let runs = engine
        .executions(Some(&held_job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let statuses: Vec<_> = runs.iter().map(|e| (e.status, e.trigger)).collect();
    assert_eq!(
        statuses,
        [
            (ExecutionStatus::Queued, syncdesk_engine::Trigger::Retry),
            (ExecutionStatus::Failed, syncdesk_engine::Trigger::Scheduled),
        ],
        "a running job's schedule is skipped, not stacked; the interrupted run's retry waits"
    );
    engine.shutdown().await;
}

/// Issue 16: "Pause all syncs" holds back scheduled runs and automatic retries in every
/// worker on the store, keeps "Run now", is audited and shown in the health summary; on
/// resume what fell due meanwhile runs once.
#[tokio::test]
async fn r_a1_pause_all_syncs_holds_schedules_and_retries_and_resume_runs_them_once() {
    let h = small().await;
    let scheduled = h
        .job("customers", |j| j.schedule = Some("every 15m".into()))
        .await;
    let failing = h.failed_with_a_retry("products").await;

    let pause = h.engine.pause_syncs().await.unwrap();
    assert_eq!(pause.by, "admin@test");
    assert_eq!(pause.since, h.engine.now());
    assert_eq!(h.engine.health().await.unwrap().paused, Some(pause.clone()));
    // Pausing twice keeps the first pause.
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(h.engine.pause_syncs().await.unwrap(), pause);

    // Hours pass: the schedule and the retry are due many times over, and nothing starts.
    h.clock.advance(Duration::from_secs(3 * 3600));
    assert!(h.engine.run_due().await.unwrap().is_empty());
    assert_eq!(h.engine.store().next_due().await.unwrap(), None);
    let err = h.engine.run_due_now().await.unwrap_err();
    assert!(matches!(err, syncdesk_engine::Error::Conflict(_)), "{err}");
    // The admin's own "Run now" still runs.
    let manual = h.run(&scheduled).await;
    assert_eq!(manual.status, ExecutionStatus::Completed);

    assert!(h.engine.resume_syncs().await.unwrap());
    assert!(
        !h.engine.resume_syncs().await.unwrap(),
        "not paused any more"
    );
    assert_eq!(h.engine.health().await.unwrap().paused, None);
    // Once each, not once per missed slot.
    let ran = h.engine.run_due().await.unwrap();
    let mut jobs: Vec<_> = ran.iter().map(|e| (e.job_id.clone(), e.trigger)).collect();
    jobs.sort();
    let mut want = vec![
        (scheduled.id.clone(), syncdesk_engine::Trigger::Scheduled),
        (failing.id.clone(), syncdesk_engine::Trigger::Retry),
    ];
    want.sort();
    assert_eq!(jobs, want);
    assert!(h.engine.run_due().await.unwrap().is_empty());

    let actions: Vec<_> = h
        .engine
        .audit(&PageRequest::first(20))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.starts_with("syncs."))
        .collect();
    assert_eq!(
        actions,
        ["syncs.resume", "syncs.pause"],
        "newest first, once each"
    );
}

/// Issue 16: "Run due jobs now" brings every scheduled job and waiting automatic retry
/// forward to now, and nothing else (manual jobs, disabled jobs).
#[tokio::test]
async fn r_a1_run_due_now_brings_schedules_and_retries_forward() {
    let h = small().await;
    let scheduled = h
        .job("customers", |j| j.schedule = Some("every 1h".into()))
        .await;
    let _manual = h.job("invoices", |_| {}).await;
    let _disabled = h
        .job("payments", |j| {
            j.schedule = Some("every 1h".into());
            j.enabled = false;
        })
        .await;
    let failing = h.failed_with_a_retry("products").await;
    assert!(
        h.engine.run_due().await.unwrap().is_empty(),
        "nothing due yet"
    );

    assert_eq!(h.engine.run_due_now().await.unwrap(), 2);
    let mut ran: Vec<_> = h
        .engine
        .run_due()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.job_id, e.trigger, e.status))
        .collect();
    ran.sort();
    let mut want = vec![
        (
            scheduled.id.clone(),
            syncdesk_engine::Trigger::Scheduled,
            ExecutionStatus::Completed,
        ),
        (
            failing.id.clone(),
            syncdesk_engine::Trigger::Retry,
            ExecutionStatus::Completed,
        ),
    ];
    want.sort();
    assert_eq!(ran, want);
    // The schedule goes on from now: the next run is an hour away again.
    assert!(h.engine.run_due().await.unwrap().is_empty());
    assert_eq!(h.engine.run_due_now().await.unwrap(), 1);
}

// ---- What the admin is shown (issue 14) ---------------------------------------------------

#[tokio::test]
async fn r_e1_r_a1_an_auth_failure_waits_for_reauthentication_and_its_alert_resolves_with_it() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.run(&job).await;
    h.sandbox.revoke_tokens();
    h.sandbox.set_credentials_revoked(true);
    let first = h.run(&job).await;
    assert_eq!(first.failure_kind, Some(FailureKind::Auth));
    let retry_id = match &first.retry {
        syncdesk_engine::RetryState::WaitingForReauth { execution_id } => execution_id.clone(),
        other => panic!("an auth failure waits for re-authentication, not a timer: {other:?}"),
    };
    assert_eq!(first.next_retry_at, None, "no retry time to show");
    // Time passing does not run it: a retry cannot help until the admin re-authenticates.
    h.clock.advance(Duration::from_secs(3 * 3600));
    assert!(h.engine.run_due().await.unwrap().is_empty());
    // The same news again updates the one alert.
    let second = h
        .engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(second.failure_kind, Some(FailureKind::Auth));
    let open: Vec<_> = h
        .engine
        .alerts(true, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.kind == AlertKind::ConnectionExpired)
        .collect();
    assert_eq!(open.len(), 1, "one alert per open condition: {open:#?}");
    assert_eq!(open[0].occurrences, 2);

    let mut rx = h.engine.subscribe();
    h.sandbox.set_credentials_revoked(false);
    h.engine
        .set_connection_secret(
            "sandbox",
            SecretKind::ClientSecret,
            Secret::new("sandbox-secret"),
        )
        .await
        .unwrap();
    assert!(drain(&mut rx).iter().any(
        |e| matches!(e, Event::AlertsResolved { alert_ids, .. } if alert_ids.contains(&open[0].id))
    ));
    let alert = h
        .engine
        .alerts(false, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|a| a.id == open[0].id)
        .unwrap();
    assert!(alert.resolved_at.is_some() && alert.resolution.is_some());
    assert_eq!(h.engine.health().await.unwrap().unread_alerts, 0);
    // The held retry runs right after re-authentication.
    let ran = h.engine.run_due().await.unwrap();
    assert!(
        ran.iter()
            .any(|e| e.id != retry_id && e.status == ExecutionStatus::Completed)
            || ran
                .iter()
                .any(|e| e.id == retry_id && e.status.is_success()),
        "{ran:#?}"
    );
}

#[tokio::test]
async fn r_a1_r_a4_retry_state_is_pending_then_superseded_or_exhausted() {
    let h = small().await;
    let job = h.job("customers", |j| j.settings.max_retries = 1).await;
    h.faults(|f| f.error_rate = 1.0);
    let failed = h.run(&job).await;
    let syncdesk_engine::RetryState::Pending { at, .. } = &failed.retry else {
        panic!("{:?}", failed.retry)
    };
    assert_eq!(
        *at,
        failed.finished_at.unwrap() + chrono::Duration::minutes(5)
    );
    h.faults(|f| f.error_rate = 0.0);
    h.run(&job).await;
    let again = h.engine.execution(&failed.id).await.unwrap();
    assert!(
        matches!(again.retry, syncdesk_engine::RetryState::Superseded { .. }),
        "a superseded retry is never shown as pending: {:?}",
        again.retry
    );
    // With its one retry used, the next failure says retries are exhausted.
    h.faults(|f| f.error_rate = 1.0);
    h.run(&job).await;
    h.clock.advance(Duration::from_secs(300));
    let ran = h.engine.run_due().await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].retry, syncdesk_engine::RetryState::Exhausted);
}

#[tokio::test]
async fn r_d1_records_moving_to_failed_records_raise_an_alert_that_resolves_when_they_are_handled()
{
    let (h, job) = dead_letter_setup().await;
    let alerts = h
        .engine
        .alerts(true, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    let dl = alerts
        .iter()
        .find(|a| a.kind == AlertKind::DeadLetters)
        .expect("on by default");
    assert!(dl.title.starts_with("2 records"), "{}", dl.title);
    h.engine
        .dismiss_dead_letters(&job.id, &["cus_00000007".to_string()], "test data")
        .await
        .unwrap();
    let open = |h: &H| {
        let e = h.engine.clone();
        async move {
            e.alerts(true, &PageRequest::first(10))
                .await
                .unwrap()
                .items
                .into_iter()
                .any(|a| a.kind == AlertKind::DeadLetters)
        }
    };
    assert!(open(&h).await, "one record still waits");
    h.engine
        .dismiss_dead_letters(&job.id, &["cus_00000009".to_string()], "test data")
        .await
        .unwrap();
    assert!(
        !open(&h).await,
        "Failed Records is empty: the alert is resolved"
    );
    h.run(&job).await;
    h.engine.mark_all_alerts_read().await.unwrap();
    assert_eq!(h.engine.health().await.unwrap().unread_alerts, 0);
    assert_eq!(h.engine.mark_all_alerts_read().await.unwrap(), 0);
}

#[tokio::test]
async fn settings_changes_are_audited_before_to_after() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.engine
        .update_job(&job.id, |j| {
            j.settings.batch_size = 50;
            j.settings.alerts.on_failure = true;
            Ok(())
        })
        .await
        .unwrap();
    // Saving without a change writes nothing.
    h.engine.update_job(&job.id, |_| Ok(())).await.unwrap();
    let audit = h.engine.audit(&PageRequest::first(20)).await.unwrap().items;
    let updates: Vec<_> = audit.iter().filter(|a| a.action == "job.update").collect();
    assert_eq!(updates.len(), 1, "{audit:#?}");
    let note = updates[0].note.as_deref().unwrap();
    assert!(note.contains("settings.batch_size: 10 → 50"), "{note}");
    assert!(
        note.contains("settings.alerts.on_failure: false → true"),
        "{note}"
    );
    assert!(audit.iter().any(|a| a.action == "job.create"));
    assert!(audit.iter().any(|a| a.action == "connection.create"));
}

#[tokio::test]
async fn r_e1_verify_before_active_wrong_credentials_save_nothing_and_change_nothing() {
    let h = small().await;
    // A new connection with a secret the provider refuses is not created.
    let err = h
        .engine
        .create_connection(NewConnection {
            name: "wrong".into(),
            spec: ConnectorSpec::parse(SPEC).unwrap(),
            base_url: Some(h.sandbox.base_url()),
            client_id: Some("sandbox-client".into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new("not-the-secret"))],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, syncdesk_engine::Error::AuthExpired { .. })
            && err.to_string().contains("refused these credentials"),
        "{err}"
    );
    assert!(h.engine.connection("wrong").await.is_err(), "nothing saved");
    assert_eq!(h.engine.connections().await.unwrap().len(), 1);

    // Re-authenticating with a refused secret changes nothing: the old one still works.
    let job = h.job("customers", |_| {}).await;
    let err = h
        .engine
        .set_connection_secret(
            "sandbox",
            SecretKind::ClientSecret,
            Secret::new("not-the-secret"),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refused these credentials"),
        "{err}"
    );
    assert_eq!(
        h.engine.connection("sandbox").await.unwrap().status,
        syncdesk_engine::ConnectionStatus::Active
    );
    assert_eq!(h.run(&job).await.status, ExecutionStatus::Completed);

    // A provider that cannot be reached at creation: saved, but not called active.
    h.faults(|f| f.error_rate = 1.0);
    assert_eq!(
        h.engine.test_connection("sandbox").await.unwrap().status,
        syncdesk_engine::ConnectionStatus::Error,
        "the probe page failed: not verified"
    );
    h.faults(|f| f.error_rate = 0.0);
    let tested = h.engine.test_connection("sandbox").await.unwrap();
    assert_eq!(tested.status, syncdesk_engine::ConnectionStatus::Active);
    // Credentials revoked at the provider: the test says so and marks it expired.
    h.sandbox.revoke_tokens();
    h.sandbox.set_credentials_revoked(true);
    assert!(h.engine.test_connection("sandbox").await.is_err());
    assert_eq!(
        h.engine.connection("sandbox").await.unwrap().status,
        syncdesk_engine::ConnectionStatus::Expired
    );
}

#[tokio::test]
async fn r_e2_live_progress_a_run_says_what_it_waits_for_and_until_when() {
    let h = small().await;
    let job = h.job("customers", |_| {}).await;
    h.faults(|f| f.error_burst = 2);
    let mut rx = h.engine.subscribe();
    let start = h.engine.now();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    let waits: Vec<(String, String)> = drain(&mut rx)
        .into_iter()
        .filter_map(|ev| match ev {
            Event::ExecutionWaiting { reason, until, .. } => Some((reason, until)),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        waits[0].0.starts_with("provider error (HTTP 503") && waits[0].0.ends_with("retry 1 of 3"),
        "{waits:?}"
    );
    assert!(waits[1].0.ends_with("retry 2 of 3"), "{waits:?}");
    // The first pause is the 1 s backoff from when it began.
    assert_eq!(
        waits[0].1,
        (start + chrono::Duration::seconds(1)).to_rfc3339()
    );
    assert_eq!(e.waiting, None, "an ended run waits for nothing");
}

#[tokio::test]
async fn r_d4_retrying_several_records_is_one_execution_with_an_audit_entry_each() {
    let (h, job) = dead_letter_setup().await;
    h.faults(|f| f.bad_records.retain(|b| b.id != "cus_00000009"));
    let before = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .len();
    let out = h
        .engine
        .retry_dead_letters(
            &job.id,
            &["cus_00000007".to_string(), "cus_00000009".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].execution_id, out[1].execution_id, "one execution");
    assert!(!out[0].succeeded, "007 is still bad");
    assert!(out[1].succeeded, "009 was mended");
    let runs = h
        .engine
        .executions(Some(&job.id), &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    assert_eq!(runs.len(), before + 1);
    let e = &runs[0];
    assert_eq!(e.trigger, Trigger::RecordRetry);
    assert_eq!((e.counts.processed, e.counts.failed), (2, 1));
    let audit: Vec<_> = h
        .engine
        .audit(&PageRequest::first(20))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.action == "dead_letter.retry")
        .collect();
    assert_eq!(audit.len(), 2, "{audit:#?}");
    assert!(audit
        .iter()
        .any(|a| a.subject.contains("cus_00000007") && a.note.is_some()));
    assert!(audit
        .iter()
        .any(|a| a.subject.contains("cus_00000009") && a.note.is_none()));
}

// ---- issue 14 item 9: names, id prefixes, deleting and pausing ---------------------------

use syncdesk_engine::Error;

#[tokio::test]
async fn i14_jobs_connections_and_executions_are_found_by_name_id_or_unique_prefix() {
    use sqlx::Executor;
    let h = small().await;
    let a = h.job_on("sandbox", "alpha", "customers", |_| {}).await;
    let b = h.job_on("sandbox", "beta", "products", |_| {}).await;
    // Two ids sharing a prefix (no executions refer to them yet).
    let mut db = h.db().await;
    db.execute("UPDATE jobs SET id = 'abcd1111-0000-4000-8000-000000000001' WHERE name = 'alpha'")
        .await
        .unwrap();
    db.execute("UPDATE jobs SET id = 'abcd2222-0000-4000-8000-000000000002' WHERE name = 'beta'")
        .await
        .unwrap();
    drop(db);
    let _ = (a, b);
    assert_eq!(h.engine.job("alpha").await.unwrap().name, "alpha");
    assert_eq!(h.engine.job("abcd1").await.unwrap().name, "alpha");
    assert_eq!(
        h.engine
            .job("abcd2222-0000-4000-8000-000000000002")
            .await
            .unwrap()
            .name,
        "beta"
    );
    let err = h.engine.job("abcd").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Invalid { .. }), "{text}");
    assert!(
        text.contains("abcd1111-0000-4000-8000-000000000001 (alpha)")
            && text.contains("abcd2222-0000-4000-8000-000000000002 (beta)"),
        "{text}"
    );
    // Shorter than four characters, or a wildcard, is no prefix.
    for miss in ["abc", "ab%", "abcd_", "%"] {
        let e = h.engine.job(miss).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{miss}: {e}");
    }
    // More than five candidates: five are named, then "…".
    let mut db = h.db().await;
    for i in 0..6 {
        let name = format!("extra{i}");
        h.job_on("sandbox", &name, "customers", |_| {}).await;
        db.execute(
            format!("UPDATE jobs SET id = 'ffff{i}000-0000-4000-8000-00000000000{i}' WHERE name = '{name}'")
                .as_str(),
        )
        .await
        .unwrap();
    }
    drop(db);
    let text = h.engine.job("ffff").await.unwrap_err().to_string();
    assert_eq!(text.matches("(extra").count(), 5, "{text}");
    assert!(
        text.ends_with("…; give more of the id, or the name"),
        "{text}"
    );

    let conn = h.engine.connection("sandbox").await.unwrap();
    assert_eq!(
        h.engine.connection(&conn.id[..6]).await.unwrap().name,
        "sandbox"
    );
    let job = h.engine.job("alpha").await.unwrap();
    let exec = h.run(&job).await;
    assert_eq!(h.engine.execution(&exec.id[..8]).await.unwrap().id, exec.id);
    assert!(matches!(
        h.engine.execution(&exec.id[..3]).await.unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[tokio::test]
async fn i14_delete_job_keeps_records_refuses_while_running_and_is_audited() {
    use sqlx::Executor;
    let h = small().await;
    let job = h
        .job("customers", |j| {
            j.settings.natural_keys = vec![];
        })
        .await;
    h.faults(|f| f.bad_records = null_emails(3));
    let exec = h.run(&job).await;
    assert!(exec.counts.failed > 0);
    let records = h.engine.store().count_records("customers").await.unwrap();
    assert!(records > 0);

    let mut db = h.db().await;
    db.execute(
        format!(
            "UPDATE executions SET status = 'running' WHERE id = '{}'",
            exec.id
        )
        .as_str(),
    )
    .await
    .unwrap();
    let err = h.engine.delete_job("customers", false).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("running"), "{err}");
    db.execute(
        format!(
            "UPDATE executions SET status = 'completed_with_errors' WHERE id = '{}'",
            exec.id
        )
        .as_str(),
    )
    .await
    .unwrap();

    let preview = h.engine.delete_job("customers", true).await.unwrap();
    assert!(!preview.deleted);
    assert_eq!(preview.executions, 1);
    assert_eq!(preview.record_errors, h.errors(&exec.id).await.len() as u64);
    assert!(
        h.engine.job("customers").await.is_ok(),
        "a dry run deletes nothing"
    );

    // The connection is in use: refused, naming the job.
    let err = h
        .engine
        .delete_connection("sandbox", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("customers"), "{err}");

    let done = h.engine.delete_job("customers", false).await.unwrap();
    assert!(done.deleted);
    assert!(matches!(
        h.engine.job("customers").await.unwrap_err(),
        Error::NotFound { .. }
    ));
    assert!(matches!(
        h.engine.execution(&exec.id).await.unwrap_err(),
        Error::NotFound { .. }
    ));
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM record_errors")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        h.engine.store().count_records("customers").await.unwrap(),
        records,
        "the local store's records stay"
    );
    let audit = h.engine.audit(&PageRequest::first(10)).await.unwrap();
    assert!(audit
        .items
        .iter()
        .any(|a| a.action == "job.delete" && a.subject == "job customers"));

    // Now unused: the connection goes with its secrets and observed fields.
    let conn = h.engine.connection("sandbox").await.unwrap();
    assert!(h
        .secrets
        .get(&conn.id, SecretKind::ClientSecret)
        .unwrap()
        .is_some());
    let preview = h.engine.delete_connection("sandbox", true).await.unwrap();
    assert_eq!(preview.observed_entities, vec!["customers".to_string()]);
    assert!(h.engine.connection("sandbox").await.is_ok());
    h.engine
        .delete_connection(&conn.id[..5], false)
        .await
        .unwrap();
    assert!(h
        .secrets
        .get(&conn.id, SecretKind::ClientSecret)
        .unwrap()
        .is_none());
    assert!(h
        .secrets
        .get(&conn.id, SecretKind::AccessToken)
        .unwrap()
        .is_none());
    let (fields,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM observed_fields")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(fields, 0);
    let audit = h.engine.audit(&PageRequest::first(10)).await.unwrap();
    assert!(audit.items.iter().any(|a| a.action == "connection.delete"));
}

#[tokio::test]
async fn i14_pause_and_resume_go_through_update_job_and_are_audited() {
    let h = small().await;
    h.job("customers", |j| j.schedule = Some("every 15m".into()))
        .await;
    let paused = h.engine.set_job_enabled("customers", false).await.unwrap();
    assert!(!paused.enabled);
    assert!(h
        .engine
        .store()
        .due_jobs(h.engine.now() + chrono::Duration::hours(1), None)
        .await
        .unwrap()
        .is_empty());
    let resumed = h.engine.set_job_enabled("customers", true).await.unwrap();
    assert!(resumed.enabled);
    assert_eq!(
        h.engine
            .store()
            .due_jobs(h.engine.now() + chrono::Duration::hours(1), None)
            .await
            .unwrap()
            .len(),
        1
    );
    let audit = h.engine.audit(&PageRequest::first(10)).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .filter(
                |a| a.action == "job.update" && a.note.as_deref().unwrap_or("").contains("enabled")
            )
            .count()
            == 2,
        "{:?}",
        audit.items
    );
}

// ---- issue 15: the spec language real APIs fit -----------------------------------------------

/// Specs shaped like Stripe's, Xero's and HubSpot's APIs, run by the engine against a
/// provider on 127.0.0.1 that answers each request from a closure and keeps what it got.
mod i15 {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::{json, Value};
    use syncdesk_engine::{
        ConnectorSpec, Engine, EngineOptions, Execution, ExecutionStatus, FailureKind, Job,
        ManualClock, MemorySecretStore, Mode, NewConnection, NewJob, PageRequest, RunOptions,
        Secret, SecretKind,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A request as the provider saw it.
    #[derive(Debug, Clone)]
    pub(super) struct Req {
        pub method: String,
        /// Path and query exactly as sent.
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Req {
        pub fn path(&self) -> &str {
            self.target.split('?').next().unwrap_or("")
        }
        pub fn raw_query(&self) -> &str {
            self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
        }
        pub fn query(&self) -> HashMap<String, String> {
            url::form_urlencoded::parse(self.raw_query().as_bytes())
                .into_owned()
                .collect()
        }
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
        pub fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap_or(Value::Null)
        }
    }

    /// An answer: status, extra headers, JSON body.
    pub(super) struct Resp(u16, Vec<(String, String)>, String);

    pub(super) fn ok(body: Value) -> Resp {
        Resp(200, Vec::new(), body.to_string())
    }

    impl Resp {
        fn header(mut self, k: &str, v: &str) -> Resp {
            self.1.push((k.into(), v.into()));
            self
        }
    }

    type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

    pub(super) struct Provider {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Req>>>,
    }

    impl Provider {
        pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Provider {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let handler: Handler = Arc::new(handler);
            let s = seen.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (handler, seen) = (handler.clone(), s.clone());
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let mut lines = head.split("\r\n");
                        let mut first = lines.next().unwrap_or("").split(' ');
                        let method = first.next().unwrap_or("").to_string();
                        let target = first.next().unwrap_or("").to_string();
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        let len: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = buf[head_end..].to_vec();
                        while body.len() < len {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => body.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let req = Req {
                            method,
                            target,
                            headers,
                            body: String::from_utf8_lossy(&body).to_string(),
                        };
                        seen.lock().unwrap().push(req.clone());
                        let Resp(status, extra, body) = handler(&req);
                        let mut out = format!(
                            "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                            body.len()
                        );
                        for (k, v) in extra {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        let _ = stream.write_all(out.as_bytes()).await;
                        let _ = stream.flush().await;
                    });
                }
            });
            Provider { addr, seen }
        }

        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// The requests so far, and forget them.
        pub fn take(&self) -> Vec<Req> {
            std::mem::take(&mut *self.seen.lock().unwrap())
        }
    }

    pub(super) struct H {
        pub engine: Engine,
        pub clock: Arc<ManualClock>,
        /// Holds the SQLite store while the test runs.
        pub _dir: tempfile::TempDir,
        pub database: syncdesk_engine::Database,
    }

    pub(super) async fn engine() -> H {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        let database = super::common::database(dir.path()).await;
        let engine = Engine::open(EngineOptions {
            database: database.clone(),
            secrets: Arc::new(MemorySecretStore::default()),
            clock: clock.clone(),
            actor: "admin@test".into(),
        })
        .await
        .unwrap();
        H {
            engine,
            clock,
            _dir: dir,
            database,
        }
    }

    impl H {
        pub async fn connect(&self, spec: &str, base: &str) {
            self.engine
                .add_connection_unchecked(NewConnection {
                    base_url: Some(base.to_string()),
                    secrets: vec![(SecretKind::ApiKey, Secret::new("key_0123456789"))],
                    ..NewConnection::new("p", ConnectorSpec::parse(spec).unwrap())
                })
                .await
                .unwrap();
        }

        pub async fn job(&self, entity: &str) -> Job {
            self.job_in(entity, Mode::Incremental).await
        }

        pub async fn job_in(&self, entity: &str, mode: Mode) -> Job {
            let mut j = NewJob {
                name: entity.into(),
                connection: "p".into(),
                entity: entity.into(),
                direction: syncdesk_engine::Direction::Pull,
                mode,
                schedule: None,
                enabled: true,
                settings: Default::default(),
            };
            j.settings.batch_size = 10;
            self.engine.create_job(j).await.unwrap()
        }

        pub async fn run(&self, job: &Job) -> Execution {
            let e = self
                .engine
                .run_job(&job.id, RunOptions::default())
                .await
                .unwrap();
            let c = e.counts;
            assert_eq!(
                c.processed,
                c.created + c.updated + c.skipped + c.failed,
                "count invariant"
            );
            e
        }

        pub async fn watermark(&self, job: &Job) -> Option<String> {
            self.engine.job(&job.id).await.unwrap().watermark
        }

        pub async fn error_count(&self, exec: &Execution) -> usize {
            self.engine
                .record_errors(&exec.id, None, &PageRequest::first(100))
                .await
                .unwrap()
                .items
                .len()
        }

        /// The stored records of an entity, as JSON, in no particular order.
        pub async fn records(&self, entity: &str) -> Vec<Value> {
            let mut db = super::common::connect(&self.database).await;
            let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM records WHERE entity = $1")
                .bind(entity)
                .fetch_all(&mut db)
                .await
                .unwrap();
            rows.iter()
                .map(|(d,)| serde_json::from_str(d).unwrap())
                .collect()
        }
    }

    fn completed(e: &Execution) {
        assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    }

    fn event(id: &str, created: i64, object: Value) -> Value {
        json!({ "id": id, "object": "event", "type": "customer.updated", "created": created, "data": { "object": object } })
    }

    fn customer(id: &str, name: &str, created: i64) -> Value {
        json!({ "id": id, "object": "customer", "name": name, "created": created })
    }

    const STRIPE_LIKE: &str = r#"
name = "Stripe-like"
[auth]
kind = "api_key"
[entities.customers]
path = "/v1/customers"
records = "data"
get = "/v1/customers/{id}"
pagination = { style = "cursor", limit_param = "limit", cursor_param = "starting_after", has_more = "has_more" }
mappings = [
  { source = "name", target = "name", required = true },
  { source = "created", target = "since", transform = "unix_seconds|date", type = "integer" },
]
[entities.customers.incremental]
path = "/v1/events"
query = { type = "customer.*" }
records = "data"
only = { "data.object.object" = "customer" }
record = "data.object"
field = "created"
field_format = "unix"
send = { in = "query", name = "created[gte]", format = "unix" }
pagination = { style = "cursor" }
"#;

    /// Stripe: the list pages by `starting_after`; changes come from the event list,
    /// filtered by `created[gte]` (unix seconds, deepObject name) and by type, each
    /// event carrying the record. A record changed twice is written once, newest first.
    #[tokio::test]
    async fn i15_stripe_shape_event_feed_query_filter_and_newest_listing_wins() {
        const T: i64 = 1_800_000_000;
        let p = Provider::start(|r| {
            let q = r.query();
            match (r.path(), q.get("starting_after").map(String::as_str)) {
                ("/v1/customers", None) => ok(
                    json!({"object": "list", "has_more": true, "url": "/v1/customers",
                    "data": [customer("cus_1", "Ann", T), customer("cus_2", "Bo", T + 100)]}),
                ),
                ("/v1/customers", Some("cus_2")) => ok(
                    json!({"object": "list", "has_more": false, "url": "/v1/customers",
                    "data": [customer("cus_3", "Cy", T + 200)]}),
                ),
                ("/v1/events", None) => ok(
                    json!({"object": "list", "has_more": true, "url": "/v1/events", "data": [
                        event("evt_5", T + 500, customer("cus_1", "Ann v3", T)),
                        event("evt_3", T + 300, customer("cus_1", "Ann v2", T)),
                        // Not a customer (a card of one): skipped, though it pages the feed.
                        event("evt_2", T + 400, json!({"id": "card_1", "object": "card"})),
                    ]}),
                ),
                ("/v1/events", Some("evt_2")) => ok(
                    json!({"object": "list", "has_more": false, "url": "/v1/events", "data": [
                        event("evt_1", T + 250, customer("cus_2", "Bo v2", T + 100)),
                        event("evt_0", T + 210, customer("cus_1", "Ann v1.5", T)),
                    ]}),
                ),
                _ => Resp(404, Vec::new(), "{}".into()),
            }
        })
        .await;
        let h = engine().await;
        h.connect(STRIPE_LIKE, &p.url()).await;
        let job = h.job("customers").await;

        let full = h.run(&job).await;
        completed(&full);
        assert_eq!(full.counts.created, 3);
        let reqs = p.take();
        assert_eq!(reqs[0].target, "/v1/customers?limit=10");
        assert_eq!(
            reqs[1].target,
            "/v1/customers?limit=10&starting_after=cus_2"
        );
        // The watermark is the newest change time, stored as RFC 3339 UTC.
        assert_eq!(
            h.watermark(&job).await.as_deref(),
            Some("2027-01-15T08:03:20Z")
        );

        let inc = h.run(&job).await;
        completed(&inc);
        assert_eq!(inc.mode, Mode::Incremental);
        assert_eq!(
            (inc.counts.processed, inc.counts.updated, inc.counts.failed),
            (2, 2, 0),
            "cus_1 once (its newest listing), cus_2 once; the card skipped"
        );
        assert_eq!(
            h.error_count(&inc).await,
            0,
            "a repeated listing is not a duplicate error"
        );
        let reqs = p.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(reqs[0].path(), "/v1/events");
        // deepObject name sent literally, percent-encoded as a URL does.
        assert_eq!(
            reqs[0].raw_query(),
            "type=customer.*&limit=10&created%5Bgte%5D=1800000200"
        );
        // The feed pages by the last listed item's (event's) id, not the record's.
        assert_eq!(reqs[1].query()["starting_after"], "evt_2");
        let names: Vec<String> = h
            .records("customers")
            .await
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        assert!(names.contains(&"Ann v3".to_string()), "{names:?}");
        assert!(names.contains(&"Bo v2".to_string()), "{names:?}");
        assert_eq!(
            h.records("customers")
                .await
                .iter()
                .filter(|r| r["since"] == "2027-01-15")
                .count(),
            3
        );
        assert_eq!(
            h.watermark(&job).await.as_deref(),
            Some("2027-01-15T08:08:20Z")
        );
    }

    const HUBSPOT_LIKE: &str = r#"
name = "HubSpot-like"
[auth]
kind = "api_key"
[rate_limit]
remaining = ["X-HubSpot-RateLimit-Remaining"]
reset = "X-HubSpot-RateLimit-Interval-Milliseconds"
reset_format = "milliseconds"
[entities.contacts]
path = "/crm/v3/objects/contacts"
records = "results"
get = "/crm/v3/objects/contacts/{id}"
query = { properties = "email,firstname", archived = "false" }
pagination = { style = "next_cursor", limit_param = "limit", cursor_param = "after", cursor_field = "paging.next.after" }
mappings = [{ source = "properties.email", target = "email", required = true }]
[entities.contacts.incremental]
path = "/crm/v3/objects/contacts/search"
method = "POST"
body = { filterGroups = [{ filters = [{ propertyName = "lastmodifieddate", operator = "GTE", value = "{since}" }] }], sorts = ["lastmodifieddate"] }
records = "results"
field = "updatedAt"
field_format = "rfc3339"
send = { in = "body", format = "unix_ms" }
pagination = { style = "next_cursor", limit_param = "limit", cursor_param = "after", cursor_field = "paging.next.after" }
"#;

    fn contact(id: &str, email: &str, updated: &str) -> Value {
        json!({ "id": id, "properties": { "email": email }, "updatedAt": updated, "archived": false })
    }

    /// HubSpot: the next cursor is nested (`paging.next.after`) and absent on the last
    /// page; changes come from a POST search whose body gets the time (unix ms) and the
    /// paging (`limit`, `after`); its own rate-limit headers pace the run.
    #[tokio::test]
    async fn i15_hubspot_shape_nested_cursor_post_search_and_own_rate_limit_headers() {
        let p = Provider::start(|r| {
            let q = r.query();
            match (r.method.as_str(), r.path()) {
                ("GET", "/crm/v3/objects/contacts") => match q.get("after").map(String::as_str) {
                    None => ok(json!({"results": [
                        contact("1", "a@x.test", "2026-12-01T10:00:00.000Z"),
                        contact("2", "b@x.test", "2026-12-01T11:00:00.000Z"),
                    ], "paging": {"next": {"after": "2", "link": "?after=2"}}}))
                    .header("X-HubSpot-RateLimit-Remaining", "0")
                    .header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
                    Some("2") => ok(
                        json!({"results": [contact("3", "c@x.test", "2026-12-01T12:00:00.500Z")]}),
                    ),
                    _ => Resp(400, Vec::new(), "{}".into()),
                },
                ("POST", "/crm/v3/objects/contacts/search") => {
                    match r.json().get("after").and_then(Value::as_str) {
                        None => ok(json!({"total": 2, "results": [
                            contact("2", "b2@x.test", "2026-12-01T13:00:00Z"),
                        ], "paging": {"next": {"after": "p2"}}})),
                        Some("p2") => ok(json!({"total": 2, "results": [
                            // Listed again with the same time: already written.
                            contact("2", "b2@x.test", "2026-12-01T13:00:00Z"),
                        ]})),
                        _ => Resp(400, Vec::new(), "{}".into()),
                    }
                }
                _ => Resp(404, Vec::new(), "{}".into()),
            }
        })
        .await;
        let h = engine().await;
        h.connect(HUBSPOT_LIKE, &p.url()).await;
        let job = h.job("contacts").await;

        let full = h.run(&job).await;
        completed(&full);
        assert_eq!(full.counts.created, 3);
        assert_eq!(
            h.clock.take_sleeps(),
            vec![Duration::from_secs(10)],
            "paced by its own headers"
        );
        let reqs = p.take();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].query()["properties"], "email,firstname");
        assert_eq!(reqs[0].query()["archived"], "false");
        assert_eq!(reqs[1].query()["after"], "2");
        // RFC 3339 change times are kept as the provider wrote them.
        assert_eq!(
            h.watermark(&job).await.as_deref(),
            Some("2026-12-01T12:00:00.500Z")
        );

        let inc = h.run(&job).await;
        completed(&inc);
        assert_eq!((inc.counts.processed, inc.counts.updated), (1, 1));
        assert_eq!(h.error_count(&inc).await, 0);
        let reqs = p.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        for r in &reqs {
            assert_eq!(r.method, "POST");
            assert_eq!(
                r.target, "/crm/v3/objects/contacts/search",
                "no list parameters on the search"
            );
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        let since = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00.500Z")
            .unwrap()
            .timestamp_millis()
            .to_string();
        let body = reqs[0].json();
        assert_eq!(
            body["filterGroups"][0]["filters"][0]["value"],
            since.as_str()
        );
        assert_eq!(body["sorts"], json!(["lastmodifieddate"]));
        assert_eq!(body["limit"], 10);
        assert!(body.get("after").is_none());
        assert_eq!(reqs[1].json()["after"], "p2");
        assert!(h
            .records("contacts")
            .await
            .iter()
            .any(|r| r["email"] == "b2@x.test"));
    }

    const XERO_LIKE: &str = r#"
name = "Xero-like"
[auth]
kind = "api_key"
[request]
headers = { Accept = "application/json" }
[rate_limit]
remaining = ["X-MinLimit-Remaining", "X-AppMinLimit-Remaining"]
window_secs = 60
[entities.contacts]
path = "/api.xro/2.0/Contacts"
records = "Contacts"
id = "ContactID"
get = "/api.xro/2.0/Contacts/{id}"
get_record = "Contacts.0"
query = { where = "IsCustomer==true" }
pagination = { style = "page", page_param = "page", page_size = 3 }
incremental = { field = "UpdatedDateUTC", field_format = "msjson", send = { in = "header", name = "If-Modified-Since", format = "rfc3339" } }
mappings = [
  { source = "Name", target = "name", required = true },
  { source = "Addresses.0.City", target = "city", optional = true },
  { source = "UpdatedDateUTC", target = "updated", transform = "msjson_date" },
]
"#;

    fn xcontact(id: &str, name: Option<&str>, ms: i64) -> Value {
        json!({ "ContactID": id, "Name": name, "Addresses": [{"AddressType": "POBOX", "City": format!("City {id}")}],
                "UpdatedDateUTC": format!("/Date({ms}+0000)/") })
    }

    /// Xero: fixed pages of a size the request does not name (a short page is the last),
    /// the change filter in an `If-Modified-Since` header, change times as `/Date(ms)/`,
    /// records wrapped in `{"Contacts": [...]}` also when fetched by id, array indices in
    /// mapping sources, and its per-minute limit headers pacing the run.
    #[tokio::test]
    async fn i15_xero_shape_fixed_pages_header_filter_msjson_and_wrapped_get() {
        let fixed = Arc::new(Mutex::new(false));
        let f = fixed.clone();
        let p = Provider::start(move |r| {
            let q = r.query();
            if let Some(id) = r.path().strip_prefix("/api.xro/2.0/Contacts/") {
                return ok(
                    json!({"Contacts": [xcontact(id, Some("Now named"), 1_573_755_040_000)]}),
                );
            }
            let since = r.header("if-modified-since").is_some();
            match (since, q.get("page").map(String::as_str)) {
                (false, Some("1")) => ok(json!({"Contacts": [
                    xcontact("C1", Some("One"), 1_573_755_038_314),
                    xcontact("C2", None, 1_573_755_000_000),
                    xcontact("C3", Some("Three"), 1_573_755_010_000),
                ]}))
                .header("X-MinLimit-Remaining", "12")
                .header("X-AppMinLimit-Remaining", "0"),
                (false, Some("2")) => {
                    ok(json!({"Contacts": [xcontact("C4", Some("Four"), 1_573_755_020_000)]}))
                }
                (true, Some("1")) => {
                    *f.lock().unwrap() = true;
                    ok(json!({"Contacts": [xcontact("C1", Some("One again"), 1_573_755_039_000)]}))
                }
                _ => ok(json!({"Contacts": []})),
            }
        })
        .await;
        let h = engine().await;
        h.connect(XERO_LIKE, &p.url()).await;
        let job = h.job("contacts").await;

        let full = h.run(&job).await;
        assert_eq!(
            full.status,
            ExecutionStatus::CompletedWithErrors,
            "{:?}",
            full.note
        );
        assert_eq!((full.counts.created, full.counts.failed), (3, 1));
        assert_eq!(
            h.clock.take_sleeps(),
            vec![Duration::from_secs(60)],
            "window_secs when none are left"
        );
        let reqs = p.take();
        assert_eq!(reqs.len(), 2, "a short second page is the last: {reqs:?}");
        assert_eq!(
            reqs[0].raw_query(),
            "where=IsCustomer%3D%3Dtrue&page=1",
            "no page size is sent"
        );
        assert_eq!(reqs[1].query()["page"], "2");
        assert_eq!(reqs[0].header("accept"), Some("application/json"));
        assert_eq!(
            h.watermark(&job).await.as_deref(),
            Some("2019-11-14T18:10:38.314Z")
        );
        let one = h
            .records("contacts")
            .await
            .into_iter()
            .find(|r| r["name"] == "One")
            .unwrap();
        assert_eq!(one["city"], "City C1");
        assert_eq!(one["updated"], "2019-11-14T18:10:38.314Z");

        let inc = h.run(&job).await;
        completed(&inc);
        assert!(*fixed.lock().unwrap());
        assert_eq!(
            (inc.counts.updated, inc.counts.created),
            (1, 1),
            "C1 changed; C2 re-fetched by id"
        );
        let reqs = p.take();
        assert_eq!(
            reqs[0].header("if-modified-since"),
            Some("2019-11-14T18:10:38.314Z")
        );
        assert_eq!(reqs[0].query()["where"], "IsCustomer==true");
        let get = reqs
            .iter()
            .find(|r| r.path() == "/api.xro/2.0/Contacts/C2")
            .unwrap();
        assert_eq!(get.header("accept"), Some("application/json"));
        assert!(h
            .records("contacts")
            .await
            .iter()
            .any(|r| r["name"] == "Now named"));
        assert_eq!(
            h.watermark(&job).await.as_deref(),
            Some("2019-11-14T18:10:40Z")
        );
    }

    /// A connection-level value the connection does not have: the run fails before any
    /// request, saying which value (by its label) to choose.
    #[tokio::test]
    async fn i15_a_missing_connection_value_fails_the_run_naming_its_label() {
        let p = Provider::start(|_| ok(json!({"Contacts": []}))).await;
        let h = engine().await;
        let spec = XERO_LIKE.replace(
            "[request]\nheaders = { Accept = \"application/json\" }",
            "[values.tenant_id]\nlabel = \"Xero organisation\"\nchoices = { path = \"/connections\", value = \"tenantId\", label = \"tenantName\" }\n[request]\nheaders = { \"xero-tenant-id\" = \"{values.tenant_id}\" }",
        );
        h.connect(&spec, &p.url()).await;
        let job = h.job("contacts").await;
        let e = h.run(&job).await;
        assert_eq!(e.status, ExecutionStatus::Failed);
        assert_eq!(e.failure_kind, Some(FailureKind::Internal));
        let note = e.note.unwrap_or_default();
        assert!(note.contains("no Xero organisation set"), "{note}");
        assert!(p.take().is_empty(), "nothing was sent");
    }

    /// Numbered pages that say how many there are stop at the last, full or not.
    #[tokio::test]
    async fn i15_total_pages_stops_at_the_last_page() {
        let p = Provider::start(|r| {
            let page: u64 = r.query()["page"].parse().unwrap();
            let items: Vec<Value> = (0..10)
                .map(|i| json!({"id": format!("{page}-{i}"), "n": i}))
                .collect();
            ok(json!({"items": items, "meta": {"pages": 2}}))
        })
        .await;
        let h = engine().await;
        h.connect(
            r#"
name = "Paged"
[auth]
kind = "api_key"
[entities.items]
path = "/items"
records = "items"
pagination = { style = "page", size_param = "pageSize", total_pages = "meta.pages" }
mappings = [{ source = "n", target = "n" }]
"#,
            &p.url(),
        )
        .await;
        let job = h.job_in("items", Mode::Full).await;
        let e = h.run(&job).await;
        completed(&e);
        assert_eq!(e.counts.created, 20);
        let reqs = p.take();
        assert_eq!(
            reqs.iter()
                .map(|r| r.raw_query().to_string())
                .collect::<Vec<_>>(),
            ["page=1&pageSize=10", "page=2&pageSize=10"]
        );
    }

    /// A 429 without Retry-After waits as long as the spec's rate-limit headers say (HubSpot
    /// sends its window's length), not the generic backoff.
    #[tokio::test]
    async fn i15_a_429_without_retry_after_waits_for_the_specs_reset_header() {
        let calls = Arc::new(Mutex::new(0u32));
        let n = calls.clone();
        let p = Provider::start(move |_| {
            let mut n = n.lock().unwrap();
            *n += 1;
            if *n == 1 {
                Resp(
                    429,
                    Vec::new(),
                    json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}).to_string(),
                )
                .header("X-HubSpot-RateLimit-Remaining", "0")
                .header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            } else {
                ok(json!({"results": [contact("1", "a@x.test", "2026-12-01T10:00:00Z")]}))
            }
        })
        .await;
        let h = engine().await;
        h.connect(HUBSPOT_LIKE, &p.url()).await;
        let job = h.job("contacts").await;
        let e = h.run(&job).await;
        completed(&e);
        assert_eq!(e.rate_limit_waits, 1);
        assert_eq!(h.clock.take_sleeps(), vec![Duration::from_secs(10)]);
    }
}
