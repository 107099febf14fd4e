//! List latency of the queries the UI pages through (executions, an execution's error log,
//! Failed Records) at a given number of rows, through the engine's public API.

use std::time::Instant;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use syncdesk_engine::{Engine, PageRequest, RecordErrorKind};

use crate::phases::{create_job, open_engine};

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

/// A database at `db` with the `customers` job and `rows` executions, error rows and dead
/// letters (what the list benchmark reads; also what the desktop measurement opens).
pub async fn seed(db: &std::path::Path, rows: usize) -> Result<(), String> {
    let engine = open_engine(db).await?;
    // Nothing is pulled: the rows are written straight to the file below.
    let job = create_job(&engine, "http://127.0.0.1:9").await?;
    let conn_id = engine
        .connection("sandbox")
        .await
        .map_err(|e| e.to_string())?
        .id;
    engine.shutdown().await;
    fill(db, &job.id, &conn_id, rows).await
}

pub async fn measure(dir: &std::path::Path, rows: usize) -> Result<Vec<ListFigure>, String> {
    let db = dir.join("lists.db");
    seed(&db, rows).await?;
    let engine = open_engine(&db).await?;
    let mut out = Vec::new();
    for list in List::ALL {
        // The first page, repeated: what opening the view costs.
        let mut first = Vec::with_capacity(200);
        for _ in 0..200 {
            let t = Instant::now();
            list.page(&engine, PageRequest::first(PAGE)).await?;
            first.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.push(figure(list.name(), rows, "first page", first));
        // Every page to the end: deep pages cost what the first does (keyset pagination).
        let mut samples = Vec::new();
        let mut cursor = None;
        loop {
            let t = Instant::now();
            cursor = list
                .page(
                    &engine,
                    PageRequest {
                        cursor,
                        limit: PAGE,
                    },
                )
                .await?;
            samples.push(t.elapsed().as_secs_f64() * 1e3);
            if cursor.is_none() {
                break;
            }
        }
        let deep = samples.split_off(samples.len() / 2);
        out.push(figure(list.name(), rows, "deep pages (second half)", deep));
    }
    engine.shutdown().await;
    Ok(out)
}

/// The lists the UI pages through.
#[derive(Debug, Clone, Copy)]
enum List {
    Executions,
    ErrorLog,
    ErrorLogByKind,
    FailedRecords,
}

/// The execution `fill` gives every error row to.
const BIG_EXECUTION: &str = "exec_0000000000";

impl List {
    const ALL: [List; 4] = [
        List::Executions,
        List::ErrorLog,
        List::ErrorLogByKind,
        List::FailedRecords,
    ];

    fn name(self) -> &'static str {
        match self {
            List::Executions => "executions",
            List::ErrorLog => "error log",
            List::ErrorLogByKind => "error log, kind filter",
            List::FailedRecords => "failed records",
        }
    }

    /// Fetch one page; the cursor of the next.
    async fn page(self, engine: &Engine, page: PageRequest) -> Result<Option<String>, String> {
        let next = match self {
            List::Executions => engine
                .executions(Some("customers"), &page)
                .await
                .map(|p| p.next_cursor),
            List::ErrorLog => engine
                .record_errors(BIG_EXECUTION, None, &page)
                .await
                .map(|p| p.next_cursor),
            List::ErrorLogByKind => engine
                .record_errors(
                    BIG_EXECUTION,
                    Some(RecordErrorKind::ReferenceNotFound),
                    &page,
                )
                .await
                .map(|p| p.next_cursor),
            List::FailedRecords => engine
                .dead_letters("customers", &page)
                .await
                .map(|p| p.next_cursor),
        };
        next.map_err(|e| e.to_string())
    }
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
            b.push_bind(BIG_EXECUTION)
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
