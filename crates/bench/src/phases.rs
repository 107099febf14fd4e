//! The measured phases, each run in a child process: the provider ceiling, the store ceiling
//! and real engine pulls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use syncdesk_engine::clock::Sleep;
use syncdesk_engine::connector::{record_id, take_records};
use syncdesk_engine::record::{read_json, Fields};
use syncdesk_engine::{
    Clock, ConnectorSpec, Direction, Engine, EngineOptions, Job, MemorySecretStore, Mode,
    NewConnection, NewJob, RunOptions, Secret, SecretKind, Store, SystemClock,
};
use syncdesk_sandbox::{Entity, Sandbox, SandboxConfig, CONNECTOR_SPEC};

use crate::{Args, PhaseResult};

pub(crate) const CLIENT_ID: &str = "sandbox-client";
pub(crate) const CLIENT_SECRET: &str = "sandbox-secret";

pub async fn run(phase: &str, args: &Args) -> Result<PhaseResult, String> {
    let url = args.url.clone().ok_or("--url is required with --phase")?;
    let dir = args.dir.clone().ok_or("--dir is required with --phase")?;
    let mut r = match phase {
        "provider" => provider(&url, args.page).await?,
        "store" => store(&dir, args.n, args.page).await?,
        // A clean or fault-profile full pull, each repetition on an empty database of its own.
        "engine-full" | "engine-faults" => {
            let faults = phase == "engine-faults";
            let db = dir.join(db_name(if faults { "faults" } else { "engine" }, args.run));
            engine(&url, &db, args.page, true, faults).await?
        }
        // A full pull against short-lived tokens (the parent counts the token requests).
        "engine-tokens" => engine(&url, &dir.join("tokens.db"), args.page, true, false).await?,
        "engine-incremental" => {
            engine(&url, &dir.join("engine.db"), args.page, false, false).await?
        }
        other => return Err(format!("unknown phase '{other}'")),
    };
    r.peak_rss_kb = peak_rss_kb();
    Ok(r)
}

/// CPU time (user + system, every thread) this process has used, in ms. A VM's stalls and
/// its neighbours stretch wall time but not this, so it is the steadier of the two figures.
/// `/proc/self/stat` counts in USER_HZ ticks, which Linux fixes at 100 per second.
pub fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces:
            // utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
            let rest = &s[s.rfind(')')? + 1..];
            let mut f = rest.split_whitespace().skip(11);
            let user: f64 = f.next()?.parse().ok()?;
            let system: f64 = f.next()?.parse().ok()?;
            Some((user + system) * 10.0)
        })
        .unwrap_or(0.0)
}

/// Each repetition of a full pull starts from an empty database of its own; the
/// incremental run continues the first one (`engine.db`).
fn db_name(stem: &str, run: u32) -> String {
    match run {
        0 => format!("{stem}.db"),
        n => format!("{stem}-{n}.db"),
    }
}

/// VmHWM: the most resident memory this process has had.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Every page fetched over HTTP and parsed into JSON values; nothing stored.
async fn provider(url: &str, page: u32) -> Result<PhaseResult, String> {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let cpu = cpu_ms();
    let token: Value = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let bearer = token["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_string();
    let mut after: Option<String> = None;
    let mut records = 0u64;
    loop {
        let mut req = http
            .get(format!("{url}/v1/customers"))
            .bearer_auth(&bearer)
            .query(&[("limit", page.to_string())]);
        if let Some(a) = &after {
            req = req.query(&[("starting_after", a)]);
        }
        let body = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        // Read with the engine's own page reading: the strict check, one JSON text per
        // record, each record's fields and id.
        let page = read_json(&body).map_err(|e| e.to_string())?;
        let top = Fields::of(&page);
        let data = take_records(&top, "data", "/v1/customers").map_err(|e| e.to_string())?;
        after = None;
        for record in &data {
            after = record_id(&record.fields(), "id", "").ok();
        }
        records += data.len() as u64;
        if top.at("has_more") != Some(Value::Bool(true)) || after.is_none() {
            break;
        }
    }
    Ok(PhaseResult {
        records,
        elapsed_ms: t.elapsed().as_secs_f64() * 1e3,
        cpu_ms: cpu_ms() - cpu,
        peak_rss_kb: 0,
        waited_ms: 0.0,
        note: String::new(),
    })
}

/// The same rows (a record and its external reference each) written straight to the engine's
/// schema with multi-row inserts, one transaction per page. Only the writes are timed.
async fn store(dir: &std::path::Path, n: usize, page: u32) -> Result<PhaseResult, String> {
    let path = dir.join("store.db");
    Store::open(&path)
        .await
        .map_err(|e| e.to_string())?
        .close()
        .await;
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| e.to_string())?;
    // The generator the sandbox serves from, without HTTP.
    let sandbox = Sandbox::start(SandboxConfig {
        customers: n,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut spent = std::time::Duration::ZERO;
    let mut spent_cpu = 0.0;
    let mut written = 0u64;
    let now = 1_767_225_600_000i64;
    for start in (1..=n).step_by(page as usize) {
        let end = (start + page as usize).min(n + 1);
        let rows: Vec<(String, String, String)> = (start..end)
            .map(|i| {
                let id = Entity::Customers.id(i);
                let v = sandbox
                    .record(Entity::Customers, &id)
                    .unwrap_or(Value::Null);
                let email = v["email"].as_str().unwrap_or_default().to_string();
                (id, email, v.to_string())
            })
            .collect();
        let t = Instant::now();
        let cpu = cpu_ms();
        let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
        for chunk in rows.chunks(500) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO records (id, entity, natural_key, data, content_hash, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, (id, email, data)| {
                b.push_bind(format!("loc_{id}"))
                    .push_bind("customers")
                    .push_bind(email)
                    .push_bind(data)
                    .push_bind("0123456789abcdef")
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO external_refs (connection_id, entity, external_id, local_id, content_hash, last_synced_at) ",
            );
            q.push_values(chunk, |mut b, (id, _, _)| {
                b.push_bind("conn")
                    .push_bind("customers")
                    .push_bind(id)
                    .push_bind(format!("loc_{id}"))
                    .push_bind("0123456789abcdef")
                    .push_bind(now);
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        spent += t.elapsed();
        spent_cpu += cpu_ms() - cpu;
        written += rows.len() as u64;
    }
    sandbox.shutdown().await;
    Ok(PhaseResult {
        records: written,
        elapsed_ms: spent.as_secs_f64() * 1e3,
        cpu_ms: spent_cpu,
        peak_rss_kb: 0,
        waited_ms: 0.0,
        note: String::new(),
    })
}

/// A real pull job through the engine. `first` creates the connection and job; later calls
/// run the same incremental job again on the same database.
async fn engine(
    url: &str,
    db: &std::path::Path,
    page: u32,
    first: bool,
    faults: bool,
) -> Result<PhaseResult, String> {
    let clock = Arc::new(WaitTally::default());
    let engine = open_engine_with(db, clock.clone()).await?;
    if first {
        let job = create_job(&engine, url).await?;
        engine
            .update_job(&job.id, |j| {
                j.settings.batch_size = page;
                if faults {
                    // The fault profile shortens the waits by configuration, as an admin could.
                    j.settings.backoff_secs = vec![0];
                    j.settings.max_rate_limit_waits = 1000;
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
    } else {
        // Secrets live in memory only: give this process its own copy.
        engine
            .set_connection_secret(
                "sandbox",
                SecretKind::ClientSecret,
                Secret::new(CLIENT_SECRET),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let t = Instant::now();
    let cpu = cpu_ms();
    let exec = engine
        .run_job("customers", RunOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let elapsed_ms = t.elapsed().as_secs_f64() * 1e3;
    let cpu_ms = cpu_ms() - cpu;
    engine.shutdown().await;
    let c = exec.counts;
    let waited_ms = clock.waited().as_secs_f64() * 1e3;
    Ok(PhaseResult {
        records: c.processed,
        elapsed_ms,
        cpu_ms,
        peak_rss_kb: 0,
        waited_ms,
        note: format!(
            "{}: created {} updated {} skipped {} failed {}; {} request retries, {} rate-limit waits, {:.0} ms waited",
            exec.status, c.created, c.updated, c.skipped, c.failed, exec.request_retries, exec.rate_limit_waits, waited_ms
        ),
    })
}

/// An engine on `db` with secrets in memory and the real clock.
pub async fn open_engine(db: &std::path::Path) -> Result<Engine, String> {
    open_engine_with(db, Arc::new(SystemClock)).await
}

async fn open_engine_with(db: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Engine, String> {
    Engine::open(EngineOptions {
        database: db.to_path_buf().into(),
        secrets: Arc::new(MemorySecretStore::default()),
        clock,
        actor: "bench".into(),
    })
    .await
    .map_err(|e| e.to_string())
}

/// The real clock, adding up the waits the engine asks of it (backoff, Retry-After, pacing to
/// rate-limit headers): the fault profile's overhead is what it costs beyond them.
#[derive(Debug, Default)]
struct WaitTally {
    waited_us: AtomicU64,
}

impl WaitTally {
    fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }
}

impl Clock for WaitTally {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        SystemClock.now()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(us, Ordering::Relaxed);
        SystemClock.sleep(d)
    }
}

/// The `sandbox` connection to `url` and an incremental pull job `customers` on it, with
/// default settings; returns the job as created.
pub async fn create_job(engine: &Engine, url: &str) -> Result<Job, String> {
    engine
        .create_connection(NewConnection {
            name: "sandbox".into(),
            spec: ConnectorSpec::parse(CONNECTOR_SPEC).map_err(|e| e.to_string())?,
            base_url: Some(url.to_string()),
            client_id: Some(CLIENT_ID.into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new(CLIENT_SECRET))],
            auth_base_url: None,
            auth_kind: None,
            values: Default::default(),
        })
        .await
        .map_err(|e| e.to_string())?;
    engine
        .create_job(NewJob {
            name: "customers".into(),
            connection: "sandbox".into(),
            entity: "customers".into(),
            direction: Direction::Pull,
            mode: Mode::Incremental,
            schedule: None,
            enabled: true,
            settings: Default::default(),
        })
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tally adds up every wait asked of it, and each wait still takes its time.
    #[tokio::test(start_paused = true)]
    async fn the_wait_tally_adds_up_the_waits_it_makes() {
        let tally = WaitTally::default();
        let start = tokio::time::Instant::now();
        tally.sleep(Duration::from_millis(1500)).await;
        tally.sleep(Duration::ZERO).await;
        tally.sleep(Duration::from_secs(2)).await;
        assert_eq!(tally.waited(), Duration::from_millis(3500));
        assert_eq!(start.elapsed(), Duration::from_millis(3500));
    }
}
