//! Team mode's figures (issue 17, docs/performance.md "Team mode"): the same full pull into
//! SQLite and into PostgreSQL, and the throughput of 1, 2 and 4 workers sharing one
//! PostgreSQL database. Needs a PostgreSQL server (`--team URL`; scripts/bench-team.sh starts
//! a private one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};
use syncdesk_engine::{
    ConnectorSpec, Database, Direction, Engine, EngineOptions, ExecutionStatus, MemorySecretStore,
    Mode, NewConnection, NewJob, PageRequest, RunOptions, Secret, SecretKind, SystemClock,
};
use syncdesk_sandbox::{Faults, Sandbox, SandboxConfig, CONNECTOR_SPEC};

use crate::phases::{CLIENT_ID, CLIENT_SECRET};

/// What `--team` measures.
pub struct TeamArgs {
    pub server: String,
    /// Records of the single full pull on each store.
    pub pull_records: usize,
    /// Jobs the workers share, each its own connection (runs of one connection's entity
    /// take turns), and the records each pulls.
    pub jobs: usize,
    pub job_records: usize,
    pub workers: Vec<usize>,
}

async fn new_database(server: &str) -> Result<String, String> {
    let name = format!("bench_{}", uuid_like());
    let mut c = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| format!("--team {server}: {e}"))?;
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.close().await;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or("--team: a URL such as postgres://user@host:port/postgres")?;
    Ok(format!("{base}/{name}"))
}

fn uuid_like() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// An engine on `database`, with `secrets` as its keychain (one machine's: the workers of
/// the shared-database figure run on one machine, so they share it).
async fn engine(database: Database, secrets: &Arc<MemorySecretStore>) -> Result<Engine, String> {
    Engine::open(EngineOptions {
        database,
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        actor: "bench".into(),
    })
    .await
    .map_err(|e| e.to_string())
}

async fn connect(e: &Engine, name: &str, url: &str) -> Result<(), String> {
    e.create_connection(NewConnection {
        name: name.into(),
        spec: ConnectorSpec::parse(CONNECTOR_SPEC).map_err(|e| e.to_string())?,
        base_url: Some(url.to_string()),
        client_id: Some(CLIENT_ID.into()),
        secrets: vec![(SecretKind::ClientSecret, Secret::new(CLIENT_SECRET))],
        auth_base_url: None,
        auth_kind: None,
        values: Default::default(),
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// A full pull job, scheduled hourly (the shared-workers figure makes every job due at once).
fn job(name: &str, connection: &str) -> NewJob {
    let mut j = NewJob {
        name: name.into(),
        connection: connection.into(),
        entity: "customers".into(),
        direction: Direction::Pull,
        mode: Mode::Full,
        schedule: Some("every 1h".into()),
        enabled: true,
        settings: Default::default(),
    };
    j.settings.batch_size = 1000;
    j
}

/// A full pull of `records` on a store: records/s.
async fn pull(database: Database, url: &str, records: usize) -> Result<f64, String> {
    let e = engine(database, &Arc::default()).await?;
    connect(&e, "sandbox", url).await?;
    e.create_job(job("customers", "sandbox"))
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let exec = e
        .run_job("customers", RunOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    e.shutdown().await;
    if exec.status != ExecutionStatus::Completed || exec.counts.processed as usize != records {
        return Err(format!("the pull ended {}: {:?}", exec.status, exec.counts));
    }
    Ok(records as f64 / secs)
}

/// `workers` engines (each a worker with its own pool, as separate processes would be) run
/// every job of a fresh database once: seconds, executions/s, records/s.
async fn shared(args: &TeamArgs, url: &str, workers: usize) -> Result<(f64, f64, f64), String> {
    let db = Database::Url(new_database(&args.server).await?);
    let secrets = Arc::new(MemorySecretStore::default());
    let setup = engine(db.clone(), &secrets).await?;
    for j in 0..args.jobs {
        let conn = format!("sandbox-{j}");
        connect(&setup, &conn, url).await?;
        setup
            .create_job(job(&format!("job-{j}"), &conn))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut engines = Vec::new();
    for w in 0..workers {
        let e = engine(db.clone(), &secrets)
            .await?
            .as_worker(Some(&format!("bench-{w}")), None)
            .map_err(|e| e.to_string())?;
        engines.push(e);
    }
    let t = Instant::now();
    setup.run_due_now().await.map_err(|e| e.to_string())?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for e in &engines {
        let (e, stop) = (e.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { e.run_worker(stop).await }));
    }
    loop {
        let mut open = 0;
        let mut done = 0;
        let mut page = PageRequest::first(500);
        loop {
            let p = setup
                .executions(None, &page)
                .await
                .map_err(|e| e.to_string())?;
            for e in &p.items {
                match e.status {
                    ExecutionStatus::Queued | ExecutionStatus::Running => open += 1,
                    ExecutionStatus::Completed => done += 1,
                    other => return Err(format!("an execution ended {other}: {:?}", e.note)),
                }
            }
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        if open == 0 && done == args.jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    stop.cancel();
    for t in tasks {
        t.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    for e in engines {
        e.shutdown().await;
    }
    setup.shutdown().await;
    let runs = args.jobs as f64;
    Ok((secs, runs / secs, runs * args.job_records as f64 / secs))
}

/// Measure and print the team figures.
#[allow(clippy::print_stdout)]
pub async fn run(args: TeamArgs) -> Result<(), String> {
    let big = Sandbox::start(SandboxConfig {
        customers: args.pull_records,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite = pull(
        dir.path().join("pull.db").into(),
        &big.base_url(),
        args.pull_records,
    )
    .await?;
    let pg = pull(
        Database::Url(new_database(&args.server).await?),
        &big.base_url(),
        args.pull_records,
    )
    .await?;
    big.shutdown().await;
    println!(
        "full pull of {} records (page 1000): SQLite {:.0} records/s, PostgreSQL {:.0} records/s (x{:.2} of SQLite)",
        args.pull_records,
        sqlite,
        pg,
        pg / sqlite
    );

    // A provider with some latency, as a real one has: workers overlap its waits.
    let small = Sandbox::start(SandboxConfig {
        customers: args.job_records,
        faults: Faults {
            latency_ms: 20,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut base = None;
    println!(
        "{} jobs of {} records each, one PostgreSQL database, 20 ms provider latency:",
        args.jobs, args.job_records
    );
    println!("| workers | seconds | executions/s | records/s | vs 1 worker |");
    println!("|---|---|---|---|---|");
    for &w in &args.workers {
        let (secs, execs, records) = shared(&args, &small.base_url(), w).await?;
        let one = *base.get_or_insert(records);
        println!(
            "| {w} | {secs:.2} | {execs:.1} | {records:.0} | x{:.2} |",
            records / one
        );
    }
    small.shutdown().await;
    Ok(())
}
