//! The `alerts` table.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{page_of, parse_cursor, Store};
use crate::clock::{from_millis, to_millis};
use crate::error::Result;
use crate::model::{Alert, AlertKind, Page, PageRequest};

#[derive(Debug, FromRow)]
struct Row {
    id: i64,
    kind: String,
    title: String,
    body: String,
    job_id: Option<String>,
    execution_id: Option<String>,
    connection_id: Option<String>,
    created_at: i64,
    read_at: Option<i64>,
}

/// An alert about to be stored.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub title: String,
    pub body: String,
    pub job_id: Option<String>,
    pub execution_id: Option<String>,
    pub connection_id: Option<String>,
}

impl Store {
    pub async fn insert_alert(&self, a: &NewAlert, now: DateTime<Utc>) -> Result<Alert> {
        let id = insert_alert_on(&mut *self.writer().await?, a, now).await?;
        Ok(Alert {
            id,
            kind: a.kind,
            title: a.title.clone(),
            body: a.body.clone(),
            job_id: a.job_id.clone(),
            execution_id: a.execution_id.clone(),
            connection_id: a.connection_id.clone(),
            created_at: now,
            read_at: None,
        })
    }

    /// Alerts newest first.
    pub async fn alerts(&self, unread_only: bool, page: &PageRequest) -> Result<Page<Alert>> {
        let before = parse_cursor(&page.cursor)?.unwrap_or(i64::MAX);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, kind, title, body, job_id, execution_id, connection_id, created_at, read_at FROM alerts
             WHERE id < ? AND (? = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT ?",
        )
        .bind(before)
        .bind(unread_only)
        .bind(page.limit() + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(Alert {
                    kind: r.kind.parse()?,
                    id: r.id,
                    title: r.title,
                    body: r.body,
                    job_id: r.job_id,
                    execution_id: r.execution_id,
                    connection_id: r.connection_id,
                    created_at: from_millis(r.created_at),
                    read_at: r.read_at.map(from_millis),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit(), |a| a.id.to_string()))
    }

    pub async fn mark_alert_read(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE alerts SET read_at = COALESCE(read_at, ?) WHERE id = ?")
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }
}

pub(crate) async fn insert_alert_on(
    conn: &mut sqlx::SqliteConnection,
    a: &NewAlert,
    now: DateTime<Utc>,
) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO alerts (kind, title, body, job_id, execution_id, connection_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(a.kind.as_str())
    .bind(&a.title)
    .bind(&a.body)
    .bind(&a.job_id)
    .bind(&a.execution_id)
    .bind(&a.connection_id)
    .bind(to_millis(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}
