//! Opening a shared PostgreSQL store (team mode): the pool, the migrations, and refusing a
//! database that belongs to something else.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use crate::error::{Error, Result};

/// Connections per process: runs write pages while the scheduler, heartbeats and the UI read.
pub(super) const CONNECTIONS: u32 = 8;
/// How long opening the store waits for the server to answer at all.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// The embedded PostgreSQL migrations, in order.
pub(super) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/postgres")
}

/// Whether `url` names a PostgreSQL database.
pub(crate) fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the PostgreSQL URL".into(),
    }
}

/// Connect, refuse another application's database, and migrate. Several processes may do
/// this at once: the migrator holds an advisory lock while it runs.
pub(super) async fn open(url: &str) -> Result<PgPool> {
    let shown = redacted(url);
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database url", format!("{shown}: {}", first_line(&e))))?
        .application_name("syncdesk")
        // Plan each statement for its values. A generic plan, which PostgreSQL switches to
        // after five runs of a prepared statement, is made from the statistics of a table
        // a run is still filling: the lookup of a page's references then scanned the whole
        // table (450 ms per page at 30k records, the pull's throughput falling with its size).
        .options([("plan_cache_mode", "force_custom_plan")]);
    let unreachable =
        |e: sqlx::Error| Error::Store(format!("cannot reach {shown}: {}", first_line(&e)));
    // As with SQLite's readers, every connection is opened here and kept: never opened in
    // the middle of a run, where it would be a wait that the run's own timers can race
    // (under tokio's paused time, one that lets the acquire timeout fire). A connection the
    // server dropped (a restart) fails its statement and is replaced on the next acquire.
    // One plain connection first: the pool retries a refused or unresolved server until its
    // acquire timeout, and an admin who mistyped a port should hear so at once.
    match tokio::time::timeout(CONNECT_PATIENCE, PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
        }
        Ok(Err(e)) => return Err(unreachable(e)),
        Err(_) => {
            return Err(Error::Store(format!(
                "cannot reach {shown}: no answer within {} s",
                CONNECT_PATIENCE.as_secs()
            )))
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_with(opts)
        .await
        .map_err(unreachable)?;
    let mut held = Vec::with_capacity(CONNECTIONS as usize);
    for _ in 0..CONNECTIONS {
        held.push(pool.acquire().await.map_err(unreachable)?);
    }
    drop(held);
    let (tables, ours): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE table_name = '_sqlx_migrations')
         FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(&pool)
    .await?;
    if tables > 0 && ours == 0 {
        pool.close().await;
        return Err(Error::Store(format!(
            "{shown} is not a Syncdesk database (it holds another application's tables); \
             create an empty database for Syncdesk"
        )));
    }
    migrator().run(&pool).await?;
    Ok(pool)
}

/// The driver's message without what follows its first line (it can quote the server).
fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The tables a run fills, whose statistics decide how its lookups are planned.
const PLANNED: &[&str] = &["external_refs", "records"];

/// `ANALYZE` the tables a run fills that have more than doubled (and passed 64 KB) since their
/// statistics were gathered, read from their size on disk, which is current, unlike the
/// activity counters a backend reports up to seconds later. Without statistics PostgreSQL
/// takes `connection_id = … AND entity = …` for a rare pair and plans a page's lookup as a
/// walk over all of that pair's references with the ids as a filter: 27 ms per lookup at
/// 100,000 records instead of under 2 (the pull fell from 18,000 to 5,500 records/s as it
/// grew). Autovacuum would gather them only a minute later.
pub(super) async fn refresh_stats(pool: &PgPool) -> Result<()> {
    let grown: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::TEXT FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
           AND pg_relation_size(c.oid) / current_setting('block_size')::BIGINT
               > GREATEST(2 * c.relpages, 8)",
    )
    .bind(PLANNED)
    .fetch_all(pool)
    .await?;
    for (table,) in grown {
        // Only names from PLANNED reach here.
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}
