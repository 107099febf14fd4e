//! The `sync_pause` row: "Pause all syncs" for every worker on this store (issue 16).

use chrono::{DateTime, Utc};
use sqlx::Connection;

use super::audit::insert_audit_on;
use super::Store;
use crate::clock::{from_millis, to_millis};
use crate::error::Result;
use crate::model::SyncPause;

impl Store {
    /// Pause all syncs, with its audit entry in the same transaction. An existing pause is
    /// kept as it is (its time and who paused); `false` then.
    pub async fn pause_syncs(&self, actor: &str, now: DateTime<Utc>) -> Result<bool> {
        on!(self.writer().await?.conn(), |c| {
            let mut tx = c.begin().await?;
            let added = sqlx::query(sql(
                "INSERT INTO sync_pause (id, paused_at, actor) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
            ))
            .bind(to_millis(now))
            .bind(actor)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if added {
                insert_audit_on(
                    (&mut *tx).into(),
                    actor,
                    "syncs.pause",
                    "all syncs",
                    None,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Resume all syncs, audited; `false` when they were not paused.
    pub async fn resume_syncs(&self, actor: &str, now: DateTime<Utc>) -> Result<bool> {
        on!(self.writer().await?.conn(), |c| {
            let mut tx = c.begin().await?;
            let removed = sqlx::query("DELETE FROM sync_pause")
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if removed {
                insert_audit_on(
                    (&mut *tx).into(),
                    actor,
                    "syncs.resume",
                    "all syncs",
                    None,
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// The pause in force, if any.
    pub async fn sync_pause(&self) -> Result<Option<SyncPause>> {
        let row: Option<(i64, String)> = on!(self.reader(), |c| sqlx::query_as(
            "SELECT paused_at, actor FROM sync_pause WHERE id = 1"
        )
        .fetch_optional(c)
        .await)?;
        Ok(row.map(|(at, actor)| SyncPause {
            since: from_millis(at),
            by: actor,
        }))
    }

    /// Bring every enabled scheduled job and every waiting automatic retry forward to `now`
    /// ("Run due jobs now"); how many jobs that makes due.
    pub async fn bring_due_forward(&self, now: DateTime<Utc>) -> Result<u64> {
        let at = to_millis(now);
        let due: i64 = on!(self.writer().await?.conn(), |c| {
            let mut tx = c.begin().await?;
            sqlx::query(sql("UPDATE executions SET due_at = ?
                 WHERE status = 'queued' AND waiting_for IS NULL AND due_at > ?"))
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sql(
                "UPDATE jobs SET next_run_at = ? WHERE enabled = TRUE AND next_run_at > ?
                   AND NOT EXISTS (SELECT 1 FROM executions q WHERE q.job_id = jobs.id AND q.status = 'queued' AND q.waiting_for IS NULL)",
            ))
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let (due,): (i64,) = sqlx::query_as(sql(
                "SELECT COUNT(*) FROM jobs j WHERE j.enabled = TRUE AND (j.next_run_at <= ?
                   OR EXISTS (SELECT 1 FROM executions q WHERE q.job_id = j.id AND q.status = 'queued'
                              AND q.waiting_for IS NULL AND q.due_at <= ?))",
            ))
            .bind(at)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            due
        });
        Ok(u64::try_from(due).unwrap_or(0))
    }
}
