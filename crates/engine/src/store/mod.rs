//! The local store: SQLite (WAL) through sqlx with embedded migrations; one module per table.
//! Every list is paginated in SQL by a keyset cursor and backed by an index.

/// The condition of the partial indexes on failed references (`external_refs_state`,
/// `external_refs_failed`), for queries on them to repeat. SQLite uses a partial index only
/// when the query states its condition word for word: `state = 'dead_letter'` alone does not
/// count, and each Failed Records page then sorted all of the job's references (1 s at 100k).
macro_rules! failed_refs {
    () => {
        "state <> 'ok'"
    };
}

mod alerts;
mod audit;
mod connections;
mod executions;
mod jobs;
mod record_errors;
mod refs;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, SqliteConnection, SqlitePool};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::model::HealthSummary;

pub use alerts::{AlertScope, NewAlert};
pub use audit::NewAudit;
pub use connections::NewConnectionRow;
pub use executions::{
    Ended, ExecutionEnd, ExecutionFinish, NewExecution, Progress, RunningExecution,
};
pub use refs::{ErrorInsert, PageWrite, RecordUpsert, RefRow, RefUpsert};

/// The database the store runs on (PostgreSQL joins through this alias and the queries,
/// which stick to SQL both accept).
pub(crate) type Db = sqlx::Sqlite;

/// Handle to the local database; cheap to clone.
///
/// One connection writes and a few read. SQLite runs one write at a time whatever the
/// connections do, so a single writer loses nothing, and gains three things: writes queue here
/// in order instead of polling on `busy_timeout` (or failing at once when a read transaction
/// tries to upgrade); its page cache stays valid from one page of a run to the next, since in
/// WAL mode a connection drops its cache whenever *another* connection wrote; and only it keeps
/// the large prepared multi-row statements of page writes (with four pooled connections each
/// kept its own: 51 MB peak at 100k records, against 32 MB). The writer is a plain connection
/// behind a lock, not a pool of one: a pool pings each connection on its way back, so
/// back-to-back writes would wait on that round trip. Readers are `query_only`, so a write
/// sent to one fails loudly.
#[derive(Debug, Clone)]
pub struct Store {
    read: SqlitePool,
    write: Arc<Mutex<Option<SqliteConnection>>>,
}

impl Store {
    /// Open (creating if needed) the SQLite file at `path` and run migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Store(format!(
                    "cannot create data directory {}: {}",
                    dir.display(),
                    e.kind()
                ))
            })?;
        }
        let opts = SqliteConnectOptions::new().filename(path);
        Self::open_with(opts).await
    }

    /// Open from a `sqlite:` URL (`sqlite::memory:` for throwaway stores).
    pub async fn open_url(url: &str) -> Result<Store> {
        let opts =
            SqliteConnectOptions::from_str(url).map_err(|e| Error::invalid("database url", e))?;
        Self::open_with(opts).await
    }

    async fn open_with(opts: SqliteConnectOptions) -> Result<Store> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Switching a new file to WAL takes an exclusive lock: do it (and the migrations) on
        // the writer before the readers open.
        let mut write = SqliteConnection::connect_with(&opts)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut write)
            .await?;
        // A local file: connections are opened once and kept. No pings, no idle reaping:
        // they buy nothing here, and each would be a wait on another thread (which also
        // keeps tests under tokio's paused time deterministic).
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(READERS)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(opts.pragma("query_only", "true"))
            .await
            .map_err(open_error)?;
        let write = Arc::new(Mutex::new(Some(write)));
        Ok(Store { read, write })
    }

    /// What the tray and dashboard show at a glance, in one statement of indexed counts.
    pub async fn health(&self) -> Result<HealthSummary> {
        // A job is failing when its newest run (queued retries and record retries aside)
        // failed or timed out.
        let row: (i64, i64, i64, i64, i64) = sqlx::query_as(concat!(
            "SELECT
               (SELECT COUNT(*) FROM jobs),
               (SELECT COUNT(*) FROM jobs j WHERE (
                  SELECT e.status FROM executions e
                  WHERE e.job_id = j.id AND e.trigger <> 'record_retry' AND e.status <> 'queued'
                  ORDER BY e.seq DESC LIMIT 1) IN ('failed', 'timed_out')),
               (SELECT COUNT(*) FROM alerts WHERE read_at IS NULL AND resolved_at IS NULL),
               (SELECT COUNT(*) FROM connections WHERE status <> 'active'),
               (SELECT COUNT(*) FROM external_refs WHERE state = 'dead_letter' AND ",
            failed_refs!(),
            ")"
        ))
        .fetch_one(self.reader())
        .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(HealthSummary {
            jobs: n(row.0),
            failing_jobs: n(row.1),
            unread_alerts: n(row.2),
            expired_connections: n(row.3),
            dead_letters: n(row.4),
        })
    }

    /// Close the connections (last step of shutdown); later writes fail with "closed".
    pub async fn close(&self) {
        self.read.close().await;
        if let Some(conn) = self.write.lock().await.take() {
            // Closing checkpoints the WAL; a failure here leaves it for the next open.
            if let Err(e) = conn.close().await {
                tracing::warn!(error = %e, "closing the database writer failed");
            }
        }
    }

    /// For reads that only show what is stored (lists, details, counts).
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// The one writing connection, for every write and for the reads a run makes to decide
    /// its next write (its references and keys): on the writer's page cache they find what the
    /// last page wrote. Waits while another write is under way.
    pub(crate) async fn writer(&self) -> Result<MappedMutexGuard<'_, SqliteConnection>> {
        MutexGuard::try_map(self.write.lock().await, Option::as_mut).map_err(|_| closed())
    }

    /// The writer, taken for a page write that a task finishes while its run maps the next
    /// page. Whoever asks for the writer after this returns waits for that write.
    pub(crate) async fn page_writer(&self) -> Result<PageWriter> {
        OwnedMutexGuard::try_map(self.write.clone().lock_owned().await, Option::as_mut)
            .map_err(|_| closed())
    }
}

/// The writer held by a page write in a task of its own (`Store::page_writer`).
pub(crate) type PageWriter = OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>;

fn closed() -> Error {
    Error::Store("the database is closed".into())
}

/// Reading connections beside the one writer: the UI's lists and the scheduler read at once.
const READERS: u32 = 3;

fn open_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) => {
            Error::Store(format!("cannot open the database: {}", db.message()))
        }
        other => Error::Store(format!("cannot open the database: {other}")),
    }
}

/// Most rows (or list items) one statement binds: refs have 13 columns, and SQLite allows
/// 32766 parameters.
pub(crate) const CHUNK: usize = 512;

/// `items` in slices whose lengths are powers of two up to [`CHUNK`], largest first.
///
/// A multi-row statement's SQL depends on its row count, and the driver keeps every distinct
/// statement prepared per connection (up to 100). Arbitrary lengths (a page of 983 rows after
/// 17 failed) filled that cache with large one-off statements: peak RSS grew by 15–40 MB
/// in the bench's fault profile. With these lengths each statement has at most
/// log2(CHUNK) + 1 = 10 shapes.
pub(crate) fn shaped_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(CHUNK);
        let (head, tail) = rest.split_at(1 << n.ilog2());
        rest = tail;
        Some(head)
    })
}

/// Append `(?, ?, …)` binding each item.
pub(crate) fn push_list<'a, T>(q: &mut QueryBuilder<'a, Db>, items: impl IntoIterator<Item = T>)
where
    T: 'a + sqlx::Encode<'a, Db> + sqlx::Type<Db> + Send,
{
    q.push("(");
    let mut sep = q.separated(", ");
    for item in items {
        sep.push_bind(item);
    }
    q.push(")");
}

/// Parse a keyset cursor the store itself produced; a tampered one is bad input.
pub(crate) fn parse_cursor(cursor: &Option<String>) -> Result<Option<i64>> {
    cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Error::invalid("cursor", format!("'{c}' is not a cursor from this list"))
            })
        })
        .transpose()
}

/// Build a [`crate::Page`] from rows fetched with `limit + 1`.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> crate::Page<T> {
    let more = items.len() as i64 > limit;
    if more {
        items.truncate(limit as usize);
    }
    let next_cursor = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    crate::Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[test]
    fn shaped_chunks_cover_everything_in_order_with_few_statement_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for n in 0..=3 * CHUNK {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = shaped_chunks(&items).collect();
            assert_eq!(chunks.concat(), items, "n = {n}");
            for c in &chunks {
                assert!(
                    c.len().is_power_of_two() && c.len() <= CHUNK,
                    "n = {n}: {}",
                    c.len()
                );
            }
            shapes.extend(chunks.iter().map(|c| c.len()));
        }
        assert_eq!(shapes.len(), CHUNK.ilog2() as usize + 1);
    }

    /// A database created before `external_refs` was clustered keeps every reference and
    /// its failure memory through the migration.
    #[tokio::test]
    async fn clustering_external_refs_keeps_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let mut first = sqlx::migrate!("./migrations/sqlite");
        first.migrations = first.migrations[..1].to_vec().into();
        first.run(&mut c).await.unwrap();
        sqlx::query(
            "INSERT INTO records (id, entity, natural_key, data, content_hash, created_at, updated_at)
             VALUES ('loc1', 'customers', 'a@x', '{}', 'h1', 1, 1)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO external_refs (connection_id, entity, external_id, local_id, content_hash, state, strikes, last_error, last_payload)
             VALUES ('c', 'customers', 'cus_1', 'loc1', 'h1', 'ok', 0, NULL, NULL),
                    ('c', 'customers', 'cus_2', NULL, NULL, 'dead_letter', 3, 'ValidationError - x', '{\"id\":\"cus_2\"}')",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();

        let store = Store::open(&path).await.unwrap();
        let refs = store
            .refs_for("c", "customers", &["cus_1".into(), "cus_2".into()])
            .await
            .unwrap();
        assert_eq!(refs["cus_1"].local_id.as_deref(), Some("loc1"));
        assert_eq!(refs["cus_2"].state(), crate::RecordState::DeadLetter);
        assert_eq!(
            refs["cus_2"].last_payload.as_deref(),
            Some("{\"id\":\"cus_2\"}")
        );
        let (clustered,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pragma_table_list WHERE name = 'external_refs' AND wr = 1",
        )
        .fetch_one(store.reader())
        .await
        .unwrap();
        assert_eq!(clustered, 1, "external_refs is WITHOUT ROWID");
        store.close().await;
    }

    /// R-D3 at scale: Failed Records pages walk `external_refs_failed` (first and deep
    /// pages alike) instead of sorting every reference of the job.
    #[tokio::test]
    async fn r_d3_failed_records_pages_read_the_failed_index_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db")).await.unwrap();
        for state in [crate::RecordState::DeadLetter, crate::RecordState::Failing] {
            for after in [None, Some((1_767_225_600_000, "cus_9".to_string()))] {
                let plan = refs::failed_records_plan(&store, state, after).await;
                let text = plan.join(" | ");
                assert!(text.contains("external_refs_failed"), "{state:?}: {text}");
                assert!(!text.contains("TEMP B-TREE"), "{state:?}: {text}");
            }
        }
        store.close().await;
    }

    /// Writes from many tasks at once queue on the one writer and all land, while reads go
    /// on beside them; a write sent to a reader is refused, not silently applied; and once
    /// the store is closed a write fails with a clear message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_writer_takes_concurrent_writes_and_readers_refuse_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).await.unwrap();
        let now = crate::clock::from_millis(1_767_225_600_000);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let s = store.clone();
            tasks.spawn(async move {
                if i % 4 == 0 {
                    s.audit(&crate::PageRequest::default()).await.map(|_| ())
                } else {
                    s.insert_audit("t", "write", &format!("s{i}"), None, now)
                        .await
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(n, 30);

        let refused = sqlx::query("DELETE FROM audit_log")
            .execute(store.reader())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
        store.close().await;
        let err = store
            .insert_audit("t", "write", "late", None, now)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            Error::Store("the database is closed".into()).to_string()
        );
    }
}
