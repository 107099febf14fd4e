//! The store: SQLite (WAL, the embedded default) or PostgreSQL (team mode: several
//! desktops and workers on one database), through sqlx with embedded migrations per backend;
//! one module per table. Every list is paginated in SQL by a keyset cursor and backed by an
//! index.

/// The condition of the partial indexes on failed references (`external_refs_state`,
/// `external_refs_failed`), for queries on them to repeat. SQLite uses a partial index only
/// when the query states its condition word for word: `state = 'dead_letter'` alone does not
/// count, and each Failed Records page then sorted all of the job's references (1 s at 100k).
macro_rules! failed_refs {
    () => {
        "state <> 'ok'"
    };
}

/// Run `$body` with `$c` bound to the value of the backend in use (a pool, a connection),
/// compiled once per backend: each statement is written once, and sqlx checks it against
/// each driver's types. In `$body`, `sql(text)` gives PostgreSQL its `$n` placeholders.
macro_rules! on {
    ($e:expr, |$c:ident| $body:expr) => {
        match $e {
            $crate::store::Backend::Sqlite($c) => {
                #[allow(unused_imports)]
                use $crate::store::dialect::sqlite::sql;
                $body
            }
            $crate::store::Backend::Pg($c) => {
                #[allow(unused_imports)]
                use $crate::store::dialect::pg::sql;
                $body
            }
        }
    };
}

mod alerts;
mod audit;
mod connections;
mod copy;
pub(crate) mod dialect;
mod executions;
mod jobs;
mod pause;
mod postgres;
mod record_errors;
mod refs;
mod team;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Postgres, QueryBuilder, SqliteConnection, SqlitePool};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::model::{HealthSummary, SyncPause};

pub use alerts::{AlertScope, NewAlert};
pub use audit::NewAudit;
pub use connections::NewConnectionRow;
pub use copy::TableSum;
pub use executions::{
    Ended, ExecutionEnd, ExecutionFinish, NewExecution, Progress, RunningExecution,
};
pub use postgres::redacted as redacted_url;
pub use refs::{ErrorInsert, PageWrite, RecordUpsert, RefRow, RefUpsert};
pub use team::{SharedRow, WorkerRow};

/// One value per backend: a pool, a connection, a writer. [`on!`] runs the same statements
/// on either.
#[derive(Debug, Clone)]
pub(crate) enum Backend<S, P> {
    Sqlite(S),
    Pg(P),
}

/// A connection to write on (or to read what a write is about to decide), of either backend.
pub(crate) type Conn<'a> = Backend<&'a mut SqliteConnection, &'a mut PgConnection>;

impl<'a> From<&'a mut SqliteConnection> for Conn<'a> {
    fn from(c: &'a mut SqliteConnection) -> Self {
        Backend::Sqlite(c)
    }
}

impl<'a> From<&'a mut PgConnection> for Conn<'a> {
    fn from(c: &'a mut PgConnection) -> Self {
        Backend::Pg(c)
    }
}

/// Which database a store is on, for what differs beyond placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded file (one desktop).
    Sqlite,
    /// A shared PostgreSQL database (team mode).
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Backend<Local, PgPool>,
    /// Set when the database file or its directory cannot be written: reads work, every
    /// write is refused with this path in the message.
    read_only: Option<Arc<str>>,
}

/// The SQLite store's connections.
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
///
/// PostgreSQL needs none of this: it is one pool, whose connections write concurrently and
/// whose transactions, row locks and unique indexes keep several processes' writes apart.
#[derive(Debug, Clone)]
struct Local {
    read: SqlitePool,
    write: Arc<Mutex<Option<SqliteConnection>>>,
    /// [`Store::lock_records`]: one lock per connection and entity, for this process.
    records: RecordLocks,
}

/// One lock per connection and entity, made on first use.
type RecordLocks =
    Arc<std::sync::Mutex<std::collections::HashMap<(String, String), Arc<Mutex<()>>>>>;

/// The connection a write holds: the SQLite writer (others wait) or a pooled PostgreSQL one.
pub(crate) type Writer<'a> =
    Backend<MappedMutexGuard<'a, SqliteConnection>, PoolConnection<Postgres>>;

/// The writer held by a page write in a task of its own (`Store::page_writer`).
pub(crate) type PageWriter = Backend<
    OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>,
    PoolConnection<Postgres>,
>;

impl<S, P> Backend<S, P>
where
    S: std::ops::DerefMut<Target = SqliteConnection>,
    P: std::ops::DerefMut<Target = PgConnection>,
{
    /// The connection a [`Writer`] or a [`PageWriter`] holds.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Backend::Sqlite(c) => Backend::Sqlite(&mut **c),
            Backend::Pg(c) => Backend::Pg(&mut **c),
        }
    }
}

/// The embedded migrations, in order.
fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/sqlite")
}

impl Store {
    /// Open the SQLite file at `path`, creating it (and its directory) if needed, and run
    /// migrations.
    ///
    /// The store is private (S4): the directory is made 0700 and the database files 0600,
    /// looser permissions found on an existing store are fixed with a warning. A file that
    /// exists but is empty or not a Syncdesk database is refused, never migrated over. A
    /// store that cannot be written (read-only file, directory or file system) opens for
    /// reading when it needs no migration; its writes fail with "the database is read-only".
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private::create_dir(dir)?;
            private::fix_mode(dir, private::DIR_MODE, "data directory");
        }
        let existed = check_existing(path)?;
        if !existed {
            private::create_file(path)?;
        }
        let opts = SqliteConnectOptions::new().filename(path);
        let writable = !existed || private::can_write(path);
        let store = if writable {
            match Self::open_with(opts.clone(), existed).await {
                Ok(store) => Ok(store),
                // The file is writable but its directory is not (no room for the WAL).
                Err(OpenFailure::ReadOnly(_)) if existed => Self::open_read_only(opts, path).await,
                Err(e) => Err(e.into_error(path)),
            }
        } else {
            Self::open_read_only(opts, path).await
        }?;
        if store.read_only.is_none() {
            for file in private::database_files(path) {
                private::fix_mode(&file, private::FILE_MODE, "database file");
            }
        }
        Ok(store)
    }

    /// Open from a URL: `postgres://…` for a shared PostgreSQL database (team mode), or
    /// `sqlite:…` (`sqlite::memory:` for throwaway stores).
    pub async fn open_url(url: &str) -> Result<Store> {
        if postgres::is_url(url) {
            return Ok(Store {
                db: Backend::Pg(postgres::open(url).await?),
                read_only: None,
            });
        }
        let opts =
            SqliteConnectOptions::from_str(url).map_err(|e| Error::invalid("database url", e))?;
        Self::open_with(opts, true)
            .await
            .map_err(|e| e.into_error(Path::new(url)))
    }

    async fn open_with(
        opts: SqliteConnectOptions,
        existed: bool,
    ) -> std::result::Result<Store, OpenFailure> {
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
            .map_err(OpenFailure::from)?;
        if existed {
            is_syncdesk(&mut write).await?;
        }
        migrator()
            .run(&mut write)
            .await
            .map_err(OpenFailure::from)?;
        // A local file: connections are opened once and kept. No pings, no idle reaping:
        // they buy nothing here, and each would be a wait on another thread (which also
        // keeps tests under tokio's paused time deterministic).
        let read = readers(opts.pragma("query_only", "true"))
            .await
            .map_err(OpenFailure::from)?;
        let write = Arc::new(Mutex::new(Some(write)));
        Ok(Store {
            db: Backend::Sqlite(Local {
                read,
                write,
                records: Default::default(),
            }),
            read_only: None,
        })
    }

    /// Open a store this process cannot write: readers only, and only when every migration
    /// this version knows is already applied (migrating is a write).
    async fn open_read_only(opts: SqliteConnectOptions, path: &Path) -> Result<Store> {
        let shown: Arc<str> = path.display().to_string().into();
        let opts = opts
            .read_only(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // A WAL database is read through its `-shm` index, which a read-only directory may
        // not let SQLite create; the file is then opened as immutable (what it is, to us).
        let opts = if can_read(&opts).await {
            opts
        } else {
            opts.immutable(true)
        };
        let mut conn = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| OpenFailure::from(e).into_error(path))?;
        is_syncdesk(&mut conn)
            .await
            .map_err(|e| e.into_error(path))?;
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&mut conn)
                .await?;
        if let Some(m) = migrator()
            .iter()
            .find(|m| !applied.iter().any(|(v,)| *v == m.version))
        {
            return Err(Error::Store(format!(
                "the database is read-only ({shown}) and needs an upgrade ({}); open it once \
                 where it can be written",
                m.description
            )));
        }
        let _ = conn.close().await;
        tracing::warn!(path = %shown, "the database is read-only: reads work, changes are refused");
        let read = readers(opts)
            .await
            .map_err(|e| OpenFailure::from(e).into_error(path))?;
        Ok(Store {
            db: Backend::Sqlite(Local {
                read,
                write: Arc::new(Mutex::new(None)),
                records: Default::default(),
            }),
            read_only: Some(shown),
        })
    }

    /// Whether the store was opened read-only (its file or directory cannot be written).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// What the tray and dashboard show at a glance, in one statement of indexed counts.
    pub async fn health(&self) -> Result<HealthSummary> {
        // A job is failing when its newest run (queued retries and record retries aside)
        // failed or timed out.
        const HEALTH: &str = concat!(
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
            "),
               (SELECT paused_at FROM sync_pause WHERE id = 1),
               (SELECT actor FROM sync_pause WHERE id = 1)"
        );
        #[allow(clippy::type_complexity)]
        let row: (i64, i64, i64, i64, i64, Option<i64>, Option<String>) =
            on!(self.reader(), |c| sqlx::query_as(sql(HEALTH))
                .fetch_one(c)
                .await)?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(HealthSummary {
            jobs: n(row.0),
            failing_jobs: n(row.1),
            unread_alerts: n(row.2),
            expired_connections: n(row.3),
            dead_letters: n(row.4),
            paused: row.5.zip(row.6).map(|(at, by)| SyncPause {
                since: crate::clock::from_millis(at),
                by,
            }),
        })
    }

    /// Close the connections (last step of shutdown); later writes fail with "closed".
    pub async fn close(&self) {
        match &self.db {
            Backend::Sqlite(local) => {
                local.read.close().await;
                if let Some(conn) = local.write.lock().await.take() {
                    // Closing checkpoints the WAL; a failure here leaves it for the next open.
                    if let Err(e) = conn.close().await {
                        tracing::warn!(error = %e, "closing the database writer failed");
                    }
                }
            }
            Backend::Pg(pool) => pool.close().await,
        }
    }

    /// Which database this store is on.
    pub fn kind(&self) -> StoreKind {
        match &self.db {
            Backend::Sqlite(_) => StoreKind::Sqlite,
            Backend::Pg(_) => StoreKind::Postgres,
        }
    }

    /// For reads that only show what is stored (lists, details, counts).
    pub(crate) fn reader(&self) -> Backend<&SqlitePool, &PgPool> {
        match &self.db {
            Backend::Sqlite(local) => Backend::Sqlite(&local.read),
            Backend::Pg(pool) => Backend::Pg(pool),
        }
    }

    /// Gather planner statistics for the tables a run fills if they grew much since
    /// (PostgreSQL; SQLite plans these lookups by its indexes alone).
    pub(crate) async fn refresh_planner_stats(&self) -> Result<()> {
        match &self.db {
            Backend::Sqlite(_) => Ok(()),
            Backend::Pg(pool) => postgres::refresh_stats(pool).await,
        }
    }

    /// The SQLite readers, for tests of what only SQLite has (plans, pragmas).
    #[cfg(test)]
    pub(crate) fn sqlite_reader(&self) -> &SqlitePool {
        match &self.db {
            Backend::Sqlite(local) => &local.read,
            Backend::Pg(_) => panic!("not an SQLite store"),
        }
    }

    /// A connection to write on, and for the reads a run makes to decide its next write (its
    /// references and keys). On SQLite it is the one writer, whose page cache holds what the
    /// last page wrote; it waits while another write is under way.
    pub(crate) async fn writer(&self) -> Result<Writer<'_>> {
        match &self.db {
            Backend::Sqlite(local) => MutexGuard::try_map(local.write.lock().await, Option::as_mut)
                .map(Backend::Sqlite)
                .map_err(|_| self.closed()),
            Backend::Pg(pool) => Ok(Backend::Pg(pool.acquire().await?)),
        }
    }

    /// The writer, taken for a page write that a task finishes while its run maps the next
    /// page. On SQLite whoever asks for the writer after this returns waits for that write.
    pub(crate) async fn page_writer(&self) -> Result<PageWriter> {
        match &self.db {
            Backend::Sqlite(local) => {
                OwnedMutexGuard::try_map(local.write.clone().lock_owned().await, Option::as_mut)
                    .map(Backend::Sqlite)
                    .map_err(|_| self.closed())
            }
            Backend::Pg(pool) => Ok(Backend::Pg(pool.acquire().await?)),
        }
    }

    /// Hold the local records of a connection's entity for one run: runs of two jobs that
    /// share them (same connection and entity) take turns, so neither decides "new record"
    /// for a provider id the other is about to store (two local copies of one record). On
    /// PostgreSQL the lock is the database's (an advisory lock), so it holds across workers;
    /// on SQLite it holds within this process.
    pub(crate) async fn lock_records(
        &self,
        connection_id: &str,
        entity: &str,
    ) -> Result<RecordsLock> {
        match &self.db {
            Backend::Sqlite(local) => {
                let lock = local
                    .records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry((connection_id.to_string(), entity.to_string()))
                    .or_default()
                    .clone();
                Ok(RecordsLock::Local(lock.lock_owned().await))
            }
            Backend::Pg(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
                    .bind(format!("records:{connection_id}:{entity}"))
                    .execute(&mut *conn)
                    .await?;
                Ok(RecordsLock::Shared(Some(conn)))
            }
        }
    }

    /// Why there is no writer: the store is read-only, or closed.
    fn closed(&self) -> Error {
        match &self.read_only {
            Some(path) => Error::Store(format!("the database is read-only ({path})")),
            None => Error::Store("the database is closed".into()),
        }
    }
}

/// A run's hold on the local records of a connection's entity ([`Store::lock_records`]).
pub(crate) enum RecordsLock {
    /// Held, never read: dropping it lets the next run in.
    Local(#[allow(dead_code)] OwnedMutexGuard<()>),
    /// The connection whose session holds the advisory lock.
    Shared(Option<PoolConnection<Postgres>>),
}

impl RecordsLock {
    /// Let the next run in.
    pub(crate) async fn release(mut self) {
        if let RecordsLock::Shared(conn) = &mut self {
            if let Some(mut c) = conn.take() {
                let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()")
                    .execute(&mut *c)
                    .await;
                if unlocked.is_err() {
                    // Its session may still hold the lock: end it rather than pool it.
                    drop(c.detach());
                }
            }
        }
    }
}

impl Drop for RecordsLock {
    /// Not released (the run was dropped halfway): the session ends, and the lock with it.
    fn drop(&mut self) {
        if let RecordsLock::Shared(conn) = self {
            if let Some(c) = conn.take() {
                drop(c.detach());
            }
        }
    }
}

/// Reading connections beside the one writer: the UI's lists and the scheduler read at once.
const READERS: u32 = 3;

async fn readers(opts: SqliteConnectOptions) -> std::result::Result<SqlitePool, sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(READERS)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    // Every reader is opened here, once, and kept: never by the pool's background task
    // (`min_connections`), which can be connecting, or connect again, while the store
    // closes, so that reader outlives the writer and leaves the WAL behind; and never in
    // the middle of a run, where it would be a wait on another thread (under tokio's paused
    // time, one that lets the acquire timeout fire).
    let mut held = Vec::with_capacity(READERS as usize);
    for _ in 0..READERS {
        held.push(pool.acquire().await?);
    }
    drop(held);
    Ok(pool)
}

/// Whether a connection with `opts` opens and reads the schema.
async fn can_read(opts: &SqliteConnectOptions) -> bool {
    let Ok(mut c) = SqliteConnection::connect_with(opts).await else {
        return false;
    };
    let ok = sqlx::query("SELECT COUNT(*) FROM sqlite_master")
        .execute(&mut c)
        .await
        .is_ok();
    let _ = c.close().await;
    ok
}

/// Why an open failed, before it becomes an [`Error`] naming the file.
#[derive(Debug)]
enum OpenFailure {
    /// SQLite could not write the file or create its WAL beside it.
    ReadOnly(String),
    /// The file is SQLite's but not ours (why).
    NotSyncdesk(&'static str),
    Other(Error),
}

impl OpenFailure {
    fn into_error(self, path: &Path) -> Error {
        match self {
            OpenFailure::ReadOnly(detail) => Error::Store(format!(
                "the database is read-only ({}): {detail}",
                path.display()
            )),
            OpenFailure::NotSyncdesk(why) => not_syncdesk(path, why),
            OpenFailure::Other(e) => e,
        }
    }
}

/// SQLite's own word that the file or its directory cannot be written (primary result codes
/// SQLITE_PERM 3, SQLITE_READONLY 8, SQLITE_CANTOPEN 14), or the OS's.
fn read_only_detail(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            matches!(primary, Some(3 | 8 | 14)).then(|| db.message().to_string())
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            Some(io.kind().to_string())
        }
        _ => None,
    }
}

impl From<sqlx::Error> for OpenFailure {
    fn from(e: sqlx::Error) -> Self {
        if let Some(detail) = read_only_detail(&e) {
            return OpenFailure::ReadOnly(detail);
        }
        match e {
            // SQLITE_NOTADB: the header was SQLite's but the rest is not a database.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("26") => {
                OpenFailure::NotSyncdesk("the file is not an SQLite database")
            }
            sqlx::Error::Database(db) => OpenFailure::Other(Error::Store(format!(
                "cannot open the database: {}",
                db.message()
            ))),
            other => OpenFailure::Other(Error::Store(format!("cannot open the database: {other}"))),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for OpenFailure {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        if let sqlx::migrate::MigrateError::Execute(inner) = &e {
            if let Some(detail) = read_only_detail(inner) {
                return OpenFailure::ReadOnly(detail);
            }
        }
        OpenFailure::Other(e.into())
    }
}

fn not_syncdesk(path: &Path, why: &str) -> Error {
    Error::Store(format!(
        "{} is not a Syncdesk database ({why}); move it away or choose another --data-dir",
        path.display()
    ))
}

/// Whether `path` already exists, refusing a file that cannot be a database we made: empty
/// (a new store is never left empty: it is created, switched to WAL and migrated at once) or
/// without SQLite's header.
fn check_existing(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::Store(format!(
                "cannot read the database {}: {}",
                path.display(),
                e.kind()
            )))
        }
    };
    let meta = file.metadata().map_err(|e| {
        Error::Store(format!(
            "cannot read the database {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    if meta.is_dir() {
        return Err(not_syncdesk(path, "it is a directory"));
    }
    if meta.len() == 0 {
        return Err(not_syncdesk(path, "the file is empty"));
    }
    let mut header = [0u8; 16];
    let n = file.read(&mut header).unwrap_or(0);
    if n < header.len() || &header != b"SQLite format 3\0" {
        return Err(not_syncdesk(path, "the file is not SQLite"));
    }
    Ok(true)
}

/// Refuse an SQLite file that has tables but never had Syncdesk's migrations: it belongs to
/// something else, and migrating would write our tables into it.
async fn is_syncdesk(conn: &mut SqliteConnection) -> std::result::Result<(), OpenFailure> {
    let (tables, ours): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = '_sqlx_migrations')
         FROM sqlite_master WHERE type = 'table'",
    )
    .fetch_one(conn)
    .await
    .map_err(OpenFailure::from)?;
    if tables > 0 && ours == 0 {
        return Err(OpenFailure::NotSyncdesk(
            "it holds another application's tables",
        ));
    }
    Ok(())
}

/// S4: the store is readable by its owner only.
mod private {
    use std::path::{Path, PathBuf};

    use crate::error::{Error, Result};

    pub(super) const DIR_MODE: u32 = 0o700;
    pub(super) const FILE_MODE: u32 = 0o600;

    /// The database and the WAL files SQLite keeps beside it.
    pub(super) fn database_files(db: &Path) -> Vec<PathBuf> {
        let name = db.as_os_str();
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let mut n = name.to_os_string();
                n.push(suffix);
                PathBuf::from(n)
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// The data directory, created 0700 (its missing parents get the usual mode).
    pub(super) fn create_dir(dir: &Path) -> Result<()> {
        let failed = |e: std::io::Error| {
            Error::Store(format!(
                "cannot create data directory {}: {}",
                dir.display(),
                e.kind()
            ))
        };
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
        match b.create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(failed(e)),
            _ => Ok(()),
        }
    }

    /// A new database file, created 0600 before SQLite writes a byte to it (SQLite gives the
    /// `-wal` and `-shm` files the database's own mode).
    pub(super) fn create_file(path: &Path) -> Result<()> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, FILE_MODE);
        match o.open(path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::Store(format!(
                "cannot create the database {}: {}",
                path.display(),
                e.kind()
            ))),
        }
    }

    /// Whether this process may write the file (its mode, ownership, immutability, a
    /// read-only mount). Opening for writing changes nothing.
    pub(super) fn can_write(path: &Path) -> bool {
        std::fs::OpenOptions::new().write(true).open(path).is_ok()
    }

    /// Take group and other permissions away from `path`, saying so when it had any.
    #[cfg(unix)]
    pub(super) fn fix_mode(path: &Path, mode: u32, what: &str) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let was = meta.permissions().mode() & 0o7777;
        if was & 0o077 == 0 {
            return;
        }
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                "the {what} was open to other users (mode {was:o}); made it private ({mode:o})"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e.kind(),
                "the {what} is open to other users (mode {was:o}) and could not be made private"
            ),
        }
    }

    #[cfg(not(unix))]
    pub(super) fn fix_mode(_path: &Path, _mode: u32, _what: &str) {}
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

/// `AND <column> IN (?, …)` for a claim limited to some connections (`None`: any), with the
/// values to bind in order. An empty list matches nothing.
pub(crate) fn only_connections(column: &str, connections: Option<&[String]>) -> String {
    match connections {
        None => String::new(),
        Some([]) => " AND 1 = 0".into(),
        Some(ids) => format!(" AND {column} IN ({})", vec!["?"; ids.len()].join(", ")),
    }
}

/// Append `(?, ?, …)` binding each item.
pub(crate) fn push_list<'a, DB, T>(q: &mut QueryBuilder<'a, DB>, items: impl IntoIterator<Item = T>)
where
    DB: sqlx::Database,
    T: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB> + Send,
{
    q.push("(");
    let mut sep = q.separated(", ");
    for item in items {
        sep.push_bind(item);
    }
    q.push(")");
}

/// A record state as stored in `external_refs.state`. Text this version does not know (a
/// damaged or newer store) is an error, never read as `ok`: that would put a dead letter back
/// into every run.
pub fn stored_record_state(text: &str) -> Result<crate::RecordState> {
    use crate::RecordState as S;
    [S::Ok, S::Failing, S::DeadLetter, S::Dismissed]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| Error::Store(format!("stored record state '{text}' is not known")))
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
    use std::path::PathBuf;

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
        .fetch_one(store.sqlite_reader())
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

    #[test]
    fn u_unknown_stored_record_state_is_an_error_not_ok() {
        for s in [
            crate::RecordState::Ok,
            crate::RecordState::Failing,
            crate::RecordState::DeadLetter,
            crate::RecordState::Dismissed,
        ]
        .iter()
        {
            assert_eq!(stored_record_state(s.as_str()).unwrap(), *s);
        }
        let err = stored_record_state("dead-letter").unwrap_err();
        assert_eq!(
            err.to_string(),
            "local store error: stored record state 'dead-letter' is not known"
        );
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// S4: a new store is private from its first byte, and an existing one opened with
    /// looser permissions is made private again.
    #[tokio::test]
    async fn s4_data_dir_is_0700_and_database_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("syncdesk.db");
        let store = Store::open(&db).await.unwrap();
        let now = crate::clock::from_millis(1_767_225_600_000);
        store
            .insert_audit("t", "write", "s", None, now)
            .await
            .unwrap();
        assert_eq!(mode(&dir), 0o700);
        let files = private::database_files(&db);
        assert_eq!(files.len(), 3, "db, -wal and -shm: {files:?}");
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }

        // Someone (an older version, a restore, a umask 022 copy) opened it up.
        for f in &files {
            chmod(f, 0o644);
        }
        chmod(&dir, 0o755);
        let again = Store::open(&db).await.unwrap();
        assert_eq!(mode(&dir), 0o700);
        for f in private::database_files(&db) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert_eq!(
            again
                .audit(&crate::PageRequest::first(10))
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        again.close().await;
        store.close().await;
    }

    /// U: a file that exists but is empty, not SQLite, or another application's SQLite is
    /// refused by name, and left exactly as it was.
    #[tokio::test]
    async fn u_an_empty_or_foreign_file_is_not_a_syncdesk_database() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let err = Store::open(&empty).await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "local store error: {} is not a Syncdesk database (the file is empty); move it \
                 away or choose another --data-dir",
                empty.display()
            )
        );
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

        let text = dir.path().join("notes.db");
        std::fs::write(&text, "just some notes, long enough for a header\n").unwrap();
        let err = Store::open(&text).await.unwrap_err().to_string();
        assert!(
            err.contains("is not a Syncdesk database (the file is not SQLite)"),
            "{err}"
        );

        let foreign = dir.path().join("other.db");
        let opts = SqliteConnectOptions::new()
            .filename(&foreign)
            .create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("CREATE TABLE contacts (id INTEGER PRIMARY KEY)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        let err = Store::open(&foreign).await.unwrap_err().to_string();
        assert!(
            err.contains("not a Syncdesk database (it holds another application's tables)"),
            "{err}"
        );
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert_eq!(n, 1, "nothing was migrated into it");
        c.close().await.unwrap();
    }

    /// Makes files and directories unwritable for the test, even for root (which ignores
    /// modes: then `chattr +i`), and writable again on drop so the temp dir can go.
    struct ReadOnly(Vec<PathBuf>);

    impl ReadOnly {
        fn make(paths: &[PathBuf]) -> ReadOnly {
            for p in paths {
                chmod(p, if p.is_dir() { 0o500 } else { 0o400 });
            }
            let guard = ReadOnly(paths.to_vec());
            if paths.iter().any(|p| probe_writable(p)) {
                for p in paths {
                    let ok = std::process::Command::new("chattr")
                        .arg("+i")
                        .arg(p)
                        .status()
                        .is_ok_and(|s| s.success());
                    assert!(ok, "cannot make {} read-only (chattr +i)", p.display());
                }
            }
            assert!(paths.iter().all(|p| !probe_writable(p)));
            guard
        }
    }

    fn probe_writable(p: &Path) -> bool {
        if p.is_dir() {
            let probe = p.join(".probe");
            let ok = std::fs::write(&probe, b"").is_ok();
            let _ = std::fs::remove_file(&probe);
            ok
        } else {
            private::can_write(p)
        }
    }

    impl Drop for ReadOnly {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(p)
                    .status();
                chmod(p, if p.is_dir() { 0o700 } else { 0o600 });
            }
        }
    }

    /// U: commands that only read work on a store that cannot be written, and a write there
    /// says "the database is read-only (path)" instead of SQLite's text.
    #[tokio::test]
    async fn u_a_read_only_store_serves_reads_and_refuses_writes_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("syncdesk.db");
        let now = crate::clock::from_millis(1_767_225_600_000);
        let store = Store::open(&db).await.unwrap();
        store
            .insert_audit("t", "write", "kept", None, now)
            .await
            .unwrap();
        store.close().await;
        // Closed cleanly, the WAL is folded in and gone. Within this test process SQLite
        // can take this file for another test's deleted one that reused its inode and is
        // still open, and then keeps the WAL: fold it in by hand, then it is safe to drop.
        if private::database_files(&db).len() > 1 {
            let mut c = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db))
                .await
                .unwrap();
            let (busy,): (i64,) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(busy, 0, "the WAL was folded in");
            c.close().await.unwrap();
            for f in private::database_files(&db).into_iter().skip(1) {
                std::fs::remove_file(f).unwrap();
            }
        }
        assert_eq!(
            private::database_files(&db),
            vec![db.clone()],
            "closed cleanly"
        );

        for locked in [vec![dir.clone(), db.clone()], vec![dir.clone()]] {
            let _ro = ReadOnly::make(&locked);
            let store = Store::open(&db).await.unwrap();
            assert!(store.is_read_only(), "{locked:?}");
            let page = store.audit(&crate::PageRequest::first(10)).await.unwrap();
            assert_eq!(page.items[0].subject, "kept");
            let err = store
                .insert_audit("t", "write", "refused", None, now)
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "local store error: the database is read-only ({})",
                    db.display()
                )
            );
            store.close().await;
        }
    }

    /// A read-only store that this version would have to migrate is refused with the reason,
    /// not opened half-way.
    #[tokio::test]
    async fn u_a_read_only_store_that_needs_a_migration_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("old.db");
        let opts = SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let mut first = migrator();
        first.migrations = first.migrations[..1].to_vec().into();
        first.run(&mut c).await.unwrap();
        c.close().await.unwrap();
        let _ro = ReadOnly::make(&[dir.clone(), db.clone()]);
        let err = Store::open(&db).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "the database is read-only ({}) and needs an upgrade",
                db.display()
            )),
            "{err}"
        );
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
            .fetch_one(store.sqlite_reader())
            .await
            .unwrap();
        assert_eq!(n, 30);

        let refused = sqlx::query("DELETE FROM audit_log")
            .execute(store.sqlite_reader())
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
