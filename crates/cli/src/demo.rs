//! `syncdesk demo`: a guided tour of every failure rule against the built-in sandbox, on
//! simulated time (backoffs and retry delays pass instantly), ending in a table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use syncdesk_engine::{
    self as engine, ConnectorSpec, Engine, EngineOptions, Execution, ManualClock, NewConnection,
    NewJob, PageRequest, RunOptions, Secret, SecretKind, SecretStore,
};
use syncdesk_sandbox::{
    BadKind, BadRecord, Entity, RetryAfter, Sandbox, SandboxConfig, SchemaDrift,
};

use crate::table::Table;
use crate::{print_json, CliError, CliResult};

#[derive(Debug, Serialize)]
struct Row {
    step: String,
    job: String,
    trigger: String,
    attempt: u32,
    status: String,
    processed: u64,
    created: u64,
    updated: u64,
    skipped: u64,
    failed: u64,
    what_happened: String,
}

struct Demo {
    engine: Engine,
    sandbox: Sandbox,
    clock: Arc<ManualClock>,
    rows: Vec<Row>,
}

impl Demo {
    async fn record(&mut self, step: &str, e: &Execution) -> CliResult<()> {
        let d = self.engine.execution_detail(&e.id).await?;
        let mut what = Vec::new();
        // Every wait this run asked the clock for (simulated time: they passed instantly).
        let waits: Vec<String> = self
            .clock
            .take_sleeps()
            .iter()
            .map(|d| format!("{}s", d.as_secs()))
            .collect();
        if e.request_retries > 0 {
            what.push(format!(
                "{} request(s) retried (waited {})",
                e.request_retries,
                waits.join(", ")
            ));
        } else if e.rate_limit_waits > 0 {
            what.push(format!(
                "paused as the provider asked ({})",
                waits.join(", ")
            ));
        }
        if let Some(k) = e.failure_kind {
            what.push(crate::failure_label(k).to_string());
        }
        if e.excluded > 0 {
            what.push(format!(
                "{} record(s) in Failed Records left out",
                e.excluded
            ));
        }
        if !d.error_counts.is_empty() {
            let parts: Vec<String> = d
                .error_counts
                .iter()
                .map(|(k, n)| format!("{n} {}", k.label().to_lowercase()))
                .collect();
            what.push(parts.join(", "));
        }
        if let Some(first) = d.diagnosis.first() {
            what.push(format!("diagnosis: {}", first.title));
        }
        if let Some(c) = d.schema_change.as_ref().filter(|c| !c.missing.is_empty()) {
            let new = if c.added.is_empty() {
                String::new()
            } else {
                format!(", sends {} instead", c.added.join(", "))
            };
            what.push(format!("provider dropped {}{new}", c.missing.join(", ")));
        }
        match &e.retry {
            engine::RetryState::Pending { at, .. } => what.push(format!(
                "retry in {} min",
                (*at - self.engine.now()).num_minutes()
            )),
            engine::RetryState::WaitingForReauth { .. } => {
                what.push("retry waits for re-authentication".into())
            }
            engine::RetryState::Exhausted => what.push("retries exhausted, admin alerted".into()),
            _ => {}
        }
        if e.trigger == engine::Trigger::RecordRetry
            && e.status == engine::ExecutionStatus::Completed
        {
            what.push("record recovered and left Failed Records".into());
        }
        let job = self.engine.job(&e.job_id).await?;
        self.rows.push(Row {
            step: step.into(),
            job: job.name,
            trigger: e.trigger.to_string(),
            attempt: e.attempt,
            status: e.status.to_string(),
            processed: e.counts.processed,
            created: e.counts.created,
            updated: e.counts.updated,
            skipped: e.counts.skipped,
            failed: e.counts.failed,
            what_happened: what.join("; "),
        });
        Ok(())
    }

    async fn run(&mut self, step: &str, job: &str, full: bool) -> CliResult<Execution> {
        let e = self.engine.run_job(job, RunOptions { full }).await?;
        self.record(step, &e).await?;
        Ok(e)
    }

    async fn due(&mut self, step: &str, wait: Duration) -> CliResult<()> {
        self.clock.advance(wait);
        for e in self.engine.run_due().await? {
            self.record(step, &e).await?;
        }
        Ok(())
    }
}

fn bad(entity: Entity, id: &str, kind: BadKind) -> BadRecord {
    BadRecord {
        entity,
        id: id.into(),
        kind,
    }
}

fn secrets(memory_only: bool) -> (Arc<dyn SecretStore>, String) {
    if memory_only {
        return (
            Arc::new(engine::MemorySecretStore::default()),
            "memory (--secret-store memory)".into(),
        );
    }
    let keyring = engine::KeyringSecretStore::new("syncdesk-demo");
    match keyring.probe() {
        Ok(()) => (
            Arc::new(keyring),
            "the OS keychain (service syncdesk-demo)".into(),
        ),
        Err(e) => (
            Arc::new(engine::MemorySecretStore::default()),
            format!("memory only, because the OS keychain is not usable here ({e})"),
        ),
    }
}

pub async fn run(data_dir: PathBuf, memory_only: bool, customers: usize, json: bool) -> CliResult {
    if customers < 20 {
        return Err(CliError::Usage("--customers must be at least 20".into()));
    }
    let dir = data_dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| CliError::Io(format!("cannot reset {}: {e}", dir.display())))?;
    }
    let sandbox = Sandbox::start(SandboxConfig {
        customers,
        products: (customers / 5).max(20),
        invoices: customers * 8 / 5,
        payments: customers * 6 / 5,
        ..Default::default()
    })
    .await
    .map_err(|e| CliError::Io(format!("cannot start the sandbox: {e}")))?;
    let (store, store_note) = secrets(memory_only);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(now as i64, 0).unwrap_or_default(),
    ));
    let engine = Engine::open(EngineOptions {
        database: dir.join("syncdesk.db").into(),
        secrets: store,
        clock: clock.clone(),
        actor: crate::actor(),
    })
    .await?;
    if !json {
        println!(
            "Syncdesk demo: sandbox provider on {}, database {}",
            sandbox.base_url(),
            dir.join("syncdesk.db").display()
        );
        println!("Secrets are kept in {store_note}. Time is simulated: backoffs and retry delays pass instantly.\n");
    }
    engine
        .create_connection(NewConnection {
            name: "Sandbox".into(),
            spec: ConnectorSpec::parse(syncdesk_sandbox::CONNECTOR_SPEC)?,
            base_url: Some(sandbox.base_url()),
            client_id: Some("sandbox-client".into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new("sandbox-secret"))],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await?;
    for entity in ["customers", "products", "invoices", "payments"] {
        let mut j = NewJob {
            name: entity.into(),
            connection: "Sandbox".into(),
            entity: entity.into(),
            direction: engine::Direction::Pull,
            mode: engine::Mode::Incremental,
            schedule: None,
            enabled: true,
            settings: Default::default(),
        };
        j.settings.batch_size = 100;
        j.settings.alerts.on_completed_with_errors = true;
        engine.create_job(j).await?;
    }
    let mut d = Demo {
        engine: engine.clone(),
        sandbox,
        clock,
        rows: Vec::new(),
    };
    let result = tour(&mut d).await;
    let rows = std::mem::take(&mut d.rows);
    let dead = engine
        .dead_letters("invoices", &PageRequest::first(20))
        .await?;
    let alerts = engine.alerts(false, &PageRequest::first(50)).await?;
    d.sandbox.shutdown().await;
    engine.shutdown().await;
    result?;
    if json {
        return print_json(&serde_json::json!({
            "steps": rows,
            "dead_letters": dead.items.iter().map(syncdesk_dto::DeadLetterDto::from).collect::<Vec<_>>(),
            "alerts": alerts.items.iter().map(syncdesk_dto::AlertDto::from).collect::<Vec<_>>(),
        }));
    }
    let mut t = Table::new(&[
        "STEP",
        "JOB",
        "TRIGGER",
        "STATUS",
        "PROC",
        "CREATED",
        "UPDATED",
        "SKIPPED",
        "FAILED",
        "WHAT HAPPENED",
    ]);
    for r in &rows {
        let trigger = if r.attempt > 1 {
            format!("{} #{}", r.trigger, r.attempt)
        } else {
            r.trigger.clone()
        };
        t.row(vec![
            r.step.clone(),
            r.job.clone(),
            trigger,
            r.status
                .parse::<engine::ExecutionStatus>()
                .map(|s| crate::status_label(s).to_string())
                .unwrap_or_else(|_| r.status.clone()),
            r.processed.to_string(),
            r.created.to_string(),
            r.updated.to_string(),
            r.skipped.to_string(),
            r.failed.to_string(),
            r.what_happened.clone(),
        ]);
    }
    print!("{}", t.render());
    println!(
        "\nFailed Records (invoices): {} record(s)",
        dead.items.len()
    );
    for x in &dead.items {
        println!(
            "  {}  attempts {}  {}",
            x.record_id,
            x.attempts,
            crate::plain_error(&x.last_error.clone().unwrap_or_default())
        );
    }
    println!("\nAlerts ({}):", alerts.items.len());
    for a in alerts.items.iter().rev() {
        println!("  {}", crate::plain_note(&a.title));
    }
    println!(
        "\nExplore it: syncdesk --data-dir {} executions",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn tour(d: &mut Demo) -> CliResult<()> {
    for job in ["customers", "products", "invoices", "payments"] {
        d.run("1 clean first sync", job, false).await?;
    }
    d.sandbox.touch_fraction(Entity::Customers, 0.05);
    d.run("2 nothing changed but 5%: incremental", "customers", false)
        .await?;

    d.sandbox.touch_fraction(Entity::Customers, 0.02);
    d.sandbox.update_faults(|f| f.error_burst = 2);
    d.run("3 provider 503 twice", "customers", false).await?;

    d.sandbox.touch_fraction(Entity::Products, 0.1);
    d.sandbox.update_faults(|f| {
        f.rate_limit_burst = 2;
        f.retry_after = RetryAfter::Seconds(3);
    });
    d.run("4 rate limited, Retry-After 3", "products", false)
        .await?;

    d.sandbox.expire_tokens();
    d.sandbox.touch_fraction(Entity::Payments, 0.05);
    let grants = d.sandbox.stats().token_grants;
    d.run("5 token expired mid-sync", "payments", false).await?;
    let refreshed = d.sandbox.stats().token_grants - grants;
    if let Some(last) = d.rows.last_mut() {
        last.what_happened = format!("401, token refreshed ({refreshed} grant), request repeated");
    }

    d.sandbox.update_faults(|f| {
        f.bad_records = vec![
            bad(Entity::Invoices, "in_00000002", BadKind::NullRequired),
            bad(Entity::Invoices, "in_00000005", BadKind::InvalidDate),
            bad(Entity::Invoices, "in_00000009", BadKind::DanglingReference),
        ]
    });
    d.run("6 bad records, full run", "invoices", true).await?;
    d.clock.advance(Duration::from_secs(3600));
    d.run("7 same records fail again", "invoices", false)
        .await?;
    d.clock.advance(Duration::from_secs(3600));
    d.run("8 third failure: dead letters", "invoices", false)
        .await?;
    d.clock.advance(Duration::from_secs(3600));
    d.run("9 dead letters excluded", "invoices", true).await?;
    // The admin fixes one record at the source and retries it; dismisses another.
    d.sandbox
        .update_faults(|f| f.bad_records.retain(|b| b.id != "in_00000002"));
    let out = d
        .engine
        .retry_dead_letters("invoices", &["in_00000002".to_string()])
        .await?;
    let retried = d.engine.execution(&out[0].execution_id).await?;
    d.record("10 fixed at source, Retry", &retried).await?;
    d.engine
        .dismiss_dead_letters(
            "invoices",
            &["in_00000009".to_string()],
            "customer deleted upstream; not worth syncing",
        )
        .await?;

    d.sandbox.update_faults(|f| {
        f.schema_drift = vec![SchemaDrift {
            entity: Entity::Products,
            rename: Some(("price_cents".into(), "unit_amount".into())),
            retype: None,
        }]
    });
    d.run("11 provider renamed a field", "products", true)
        .await?;
    d.sandbox.update_faults(|f| f.schema_drift.clear());
    d.due("12 automatic retry after 5 min", Duration::from_secs(300))
        .await?;

    d.sandbox.update_faults(|f| f.error_rate = 1.0);
    d.run("13 provider down", "customers", false).await?;
    d.due("14 retry after 5 min", Duration::from_secs(300))
        .await?;
    d.due("15 retry after 30 min", Duration::from_secs(1800))
        .await?;
    d.due("16 retry after 2 h: exhausted", Duration::from_secs(7200))
        .await?;
    d.sandbox.update_faults(|f| f.error_rate = 0.0);

    d.sandbox.revoke_tokens();
    d.sandbox.set_credentials_revoked(true);
    d.run("17 credentials revoked", "payments", false).await?;
    Ok(())
}
