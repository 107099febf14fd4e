//! The `audit_log` table: who did what, when (R-D5).

use chrono::{DateTime, Utc};

use super::{page_of, parse_cursor, Store};
use crate::clock::{from_millis, to_millis};
use crate::error::Result;
use crate::model::{AuditEntry, Page, PageRequest};

/// An audit entry written in the same transaction as what it records.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
    pub note: Option<String>,
}

impl Store {
    pub async fn insert_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        insert_audit_on(
            self.writer().await?.conn(),
            actor,
            action,
            subject,
            note,
            now,
        )
        .await
    }

    /// The audit log newest first.
    pub async fn audit(&self, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let before = parse_cursor(&page.cursor)?.unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String, String, String, Option<String>)> = on!(
            self.reader(),
            |c| {
                sqlx::query_as(sql(
                "SELECT id, at, actor, action, subject, note FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
            ))
            .bind(before)
            .bind(page.limit() + 1)
            .fetch_all(c)
            .await
            }
        )?;
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

pub(crate) async fn insert_audit_on(
    conn: super::Conn<'_>,
    actor: &str,
    action: &str,
    subject: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on!(conn, |c| sqlx::query(sql(
        "INSERT INTO audit_log (at, actor, action, subject, note) VALUES (?, ?, ?, ?, ?)"
    ))
    .bind(to_millis(now))
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(note)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}
