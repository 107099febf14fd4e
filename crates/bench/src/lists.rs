//! List latency of the queries the UI pages through (executions, an execution's error log,
//! Failed Records) at a given number of rows, through the engine's public API.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use syncdesk_engine::{
    ConnectorSpec, Direction, Engine, EngineOptions, MemorySecretStore, Mode, NewConnection,
    NewJob, PageRequest, RecordErrorKind, Secret, SecretKind, SystemClock,
};
use syncdesk_sandbox::CONNECTOR_SPEC;

/// One list query's latency.
#[derive(Debug, Clone, Serialize)]
pub struct ListFigure {
    pub list: String,
    pub rows: usize,
    pub case: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

const PAGE: u32 = 50;

pub async fn measure(dir: &std::path::Path, rows: usize) -> Result<Vec<ListFigure>, String> {
    let db = dir.join("lists.db");
    let engine = open(&db).await?;
    engine
        .create_connection(NewConnection {
            name: "sandbox".into(),
            spec: ConnectorSpec::parse(CONNECTOR_SPEC).map_err(|e| e.to_string())?,
            base_url: Some("http://127.0.0.1:9".into()),
            client_id: Some("c".into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new("s"))],
        })
        .await
        .map_err(|e| e.to_string())?;
    let job = engine
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
        .map_err(|e| e.to_string())?;
    let conn_id = engine
        .connection("sandbox")
        .await
        .map_err(|e| e.to_string())?
        .id;
    engine.shutdown().await;
    fill(&db, &job.id, &conn_id, rows).await?;

    let engine = open(&db).await?;
    let mut out = Vec::new();
    let big_exec = "exec_0000000000".to_string();

    // First pages, repeated: what opening a view costs.
    let first = |name: &str| (name.to_string(), Vec::<f64>::new());
    let (n1, mut s1) = first("executions");
    let (n2, mut s2) = first("error log");
    let (n3, mut s3) = first("error log, kind filter");
    let (n4, mut s4) = first("failed records");
    for _ in 0..200 {
        s1.push(time(engine.executions(Some("customers"), &PageRequest::first(PAGE))).await?);
        s2.push(time(engine.record_errors(&big_exec, None, &PageRequest::first(PAGE))).await?);
        s3.push(
            time(engine.record_errors(
                &big_exec,
                Some(RecordErrorKind::ReferenceNotFound),
                &PageRequest::first(PAGE),
            ))
            .await?,
        );
        s4.push(time(engine.dead_letters("customers", &PageRequest::first(PAGE))).await?);
    }
    for (name, s) in [
        (n1.clone(), s1),
        (n2.clone(), s2),
        (n3.clone(), s3),
        (n4.clone(), s4),
    ] {
        out.push(figure(&name, rows, "first page", s));
    }

    // Every page to the end: deep pages cost what the first does (keyset pagination).
    macro_rules! walk {
        ($name:expr, $call:expr) => {{
            let mut samples = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = PageRequest {
                    cursor: cursor.clone(),
                    limit: PAGE,
                };
                let t = Instant::now();
                let p = $call(page).await.map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_secs_f64() * 1e3);
                cursor = p.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let deep = samples.split_off(samples.len() / 2);
            out.push(figure($name, rows, "deep pages (second half)", deep));
        }};
    }
    walk!(&n1, |p: PageRequest| {
        let e = engine.clone();
        async move { e.executions(Some("customers"), &p).await }
    });
    walk!(&n2, |p: PageRequest| {
        let e = engine.clone();
        let x = big_exec.clone();
        async move { e.record_errors(&x, None, &p).await }
    });
    walk!(&n3, |p: PageRequest| {
        let e = engine.clone();
        let x = big_exec.clone();
        async move {
            e.record_errors(&x, Some(RecordErrorKind::ReferenceNotFound), &p)
                .await
        }
    });
    walk!(&n4, |p: PageRequest| {
        let e = engine.clone();
        async move { e.dead_letters("customers", &p).await }
    });
    engine.shutdown().await;
    Ok(out)
}

async fn open(db: &std::path::Path) -> Result<Engine, String> {
    Engine::open(EngineOptions {
        database: db.to_path_buf(),
        secrets: Arc::new(MemorySecretStore::default()),
        clock: Arc::new(SystemClock),
        actor: "bench".into(),
    })
    .await
    .map_err(|e| e.to_string())
}

async fn time<T>(
    f: impl std::future::Future<Output = syncdesk_engine::Result<T>>,
) -> Result<f64, String> {
    let t = Instant::now();
    f.await.map_err(|e| e.to_string())?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn figure(list: &str, rows: usize, case: &str, mut samples: Vec<f64>) -> ListFigure {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i]
    };
    ListFigure {
        list: list.into(),
        rows,
        case: case.into(),
        samples: samples.len(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
    }
}

/// `rows` executions of one job, `rows` error rows in one execution (five kinds), and `rows`
/// dead letters, written straight to the file.
async fn fill(db: &std::path::Path, job: &str, conn_id: &str, rows: usize) -> Result<(), String> {
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal);
    let mut c = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| e.to_string())?;
    let base = 1_767_225_600_000i64;
    let mut tx = c.begin().await.map_err(|e| e.to_string())?;
    let idx: Vec<usize> = (0..rows).collect();
    for chunk in idx.chunks(1000) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO executions (id, job_id, seq, trigger, status, mode, created_at, due_at, started_at, finished_at, processed, created, failed) ",
        );
        q.push_values(chunk, |mut b, &i| {
            let at = base + i as i64 * 60_000;
            b.push_bind(format!("exec_{i:010}"))
                .push_bind(job)
                .push_bind(i as i64 + 1)
                .push_bind("scheduled")
                .push_bind(if i % 10 == 0 {
                    "completed_with_errors"
                } else {
                    "completed"
                })
                .push_bind("incremental")
                .push_bind(at)
                .push_bind(at)
                .push_bind(at)
                .push_bind(at + 1500)
                .push_bind(100i64)
                .push_bind(if i % 10 == 0 { 97i64 } else { 100 })
                .push_bind(if i % 10 == 0 { 3i64 } else { 0 });
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;

        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO record_errors (execution_id, connection_id, entity, record_id, kind, message, field, at) ",
        );
        q.push_values(chunk, |mut b, &i| {
            let kind = RecordErrorKind::ALL[i % RecordErrorKind::ALL.len()];
            b.push_bind("exec_0000000000")
                .push_bind(conn_id)
                .push_bind("customers")
                .push_bind(format!("cus_{i:08}"))
                .push_bind(kind.as_str())
                .push_bind("Required field 'email' is null")
                .push_bind("email")
                .push_bind(base + i as i64);
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;

        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO external_refs (connection_id, entity, external_id, state, strikes, first_failed_at, last_failed_at, last_error, last_payload) ",
        );
        q.push_values(chunk, |mut b, &i| {
            b.push_bind(conn_id)
                .push_bind("customers")
                .push_bind(format!("cus_{i:08}"))
                .push_bind("dead_letter")
                .push_bind(3i64)
                .push_bind(base + i as i64)
                .push_bind(base + 2 * i as i64)
                .push_bind("ValidationError - Required field 'email' is null")
                .push_bind(r#"{"id":"x","email":null}"#);
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    c.close().await.map_err(|e| e.to_string())?;
    Ok(())
}
