//! The `workers` and `shared_events` tables: which engines run syncs on this store, and the
//! events each shares with the others (team mode: every desktop hears of a breaker that
//! tripped on a headless worker).

use chrono::{DateTime, Utc};
use sqlx::Connection;

use super::{Backend, Store};
use crate::clock::to_millis;
use crate::error::Result;

/// How long an event stays for desktops that were not running when it was shared.
const EVENTS_KEPT: chrono::Duration = chrono::Duration::days(7);
/// How long a worker that stopped without saying so stays listed.
const WORKERS_KEPT: chrono::Duration = chrono::Duration::days(1);

/// A worker's row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkerRow {
    pub owner: String,
    pub name: String,
    pub host: String,
    pub role: String,
    pub started_at: i64,
    pub seen_at: i64,
}

/// A shared event: its place in the order, when, who shared it, and its JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SharedRow {
    pub id: i64,
    pub at: i64,
    pub origin: String,
    pub body: String,
}

impl Store {
    /// Say that `w` is alive at `now` (its first beat records when it started), and forget
    /// workers silent for a day.
    pub async fn beat_worker(&self, w: &WorkerRow, now: DateTime<Utc>) -> Result<()> {
        let at = to_millis(now);
        on!(self.writer().await?.conn(), |c| {
            let mut tx = c.begin().await?;
            sqlx::query(sql(
                "INSERT INTO workers (owner, name, host, role, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
            ))
            .bind(&w.owner)
            .bind(&w.name)
            .bind(&w.host)
            .bind(&w.role)
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sql("DELETE FROM workers WHERE seen_at < ?"))
                .bind(to_millis(now - WORKERS_KEPT))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A worker stopped cleanly: it is no longer listed.
    pub async fn remove_worker(&self, owner: &str) -> Result<()> {
        on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "DELETE FROM workers WHERE owner = ?"
        ))
        .bind(owner)
        .execute(c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Every listed worker, the most recently seen first.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>> {
        Ok(on!(self.reader(), |c| {
            sqlx::query_as(
            "SELECT owner, name, host, role, started_at, seen_at FROM workers ORDER BY seen_at DESC, name"
        )
        .fetch_all(c)
        .await
        })?)
    }

    /// Append events (`(at, JSON)`) shared by `origin`, in order, and drop those older than
    /// a week.
    pub async fn share_events(
        &self,
        origin: &str,
        events: &[(DateTime<Utc>, String)],
    ) -> Result<()> {
        let Some((newest, _)) = events.last() else {
            return Ok(());
        };
        let mut w = self.writer().await?;
        let conn = w.conn();
        let pg = matches!(conn, Backend::Pg(_));
        on!(conn, |c| {
            let mut tx = c.begin().await?;
            if pg {
                // Ids become visible in the order they are drawn: the next writer draws its
                // id only after this one commits, so a reader's cursor never skips one.
                sqlx::query(
                    "SELECT pg_advisory_xact_lock(hashtextextended('syncdesk.shared_events', 0))",
                )
                .execute(&mut *tx)
                .await?;
            }
            for (at, body) in events {
                sqlx::query(sql(
                    "INSERT INTO shared_events (at, origin, body) VALUES (?, ?, ?)",
                ))
                .bind(to_millis(*at))
                .bind(origin)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(sql("DELETE FROM shared_events WHERE at < ?"))
                .bind(to_millis(*newest - EVENTS_KEPT))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Up to `limit` shared events after `cursor`, in order (a follower's own among them, so
    /// its cursor moves past those too).
    pub async fn shared_events_after(&self, cursor: i64, limit: i64) -> Result<Vec<SharedRow>> {
        Ok(on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT id, at, origin, body FROM shared_events WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(cursor)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// The newest shared event's id (0 when none): where a new follower starts.
    pub async fn shared_events_head(&self) -> Result<i64> {
        let (head,): (Option<i64>,) = on!(self.reader(), |c| sqlx::query_as(
            "SELECT MAX(id) FROM shared_events"
        )
        .fetch_one(c)
        .await)?;
        Ok(head.unwrap_or(0))
    }
}
