//! The `audit_log` table: who did what, when (R-D5).

use chrono::{DateTime, Utc};

use super::{page_of, parse_cursor, Store};
use crate::clock::{from_millis, to_millis};
use crate::error::Result;
use crate::model::{AuditEntry, Page, PageRequest};

impl Store {
    pub async fn insert_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, note) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(to_millis(now))
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(note)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// The audit log newest first.
    pub async fn audit(&self, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let before = parse_cursor(&page.cursor)?.unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, at, actor, action, subject, note FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before)
        .bind(page.limit() + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .into_iter()
            .map(|(id, at, actor, action, subject, note)| AuditEntry {
                id,
                at: from_millis(at),
                actor,
                action,
                subject,
                note,
            })
            .collect();
        Ok(page_of(items, page.limit(), |a| a.id.to_string()))
    }
}
