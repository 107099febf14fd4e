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
    occurrences: i64,
    last_seen_at: Option<i64>,
    resolved_at: Option<i64>,
    resolution: Option<String>,
}

const COLUMNS: &str = "id, kind, title, body, job_id, execution_id, connection_id, created_at, read_at, occurrences, last_seen_at, resolved_at, resolution";

impl Row {
    fn into_model(self) -> Result<Alert> {
        Ok(Alert {
            kind: self.kind.parse()?,
            id: self.id,
            title: self.title,
            body: self.body,
            job_id: self.job_id,
            execution_id: self.execution_id,
            connection_id: self.connection_id,
            created_at: from_millis(self.created_at),
            read_at: self.read_at.map(from_millis),
            occurrences: u32::try_from(self.occurrences).unwrap_or(u32::MAX),
            last_seen_at: from_millis(self.last_seen_at.unwrap_or(self.created_at)),
            resolved_at: self.resolved_at.map(from_millis),
            resolution: self.resolution,
        })
    }
}

/// Which open alerts a cleared cause resolves.
#[derive(Debug, Clone)]
pub enum AlertScope {
    /// A job ran cleanly: its failure alerts (breaker, failed, retries exhausted, completed
    /// with errors).
    JobClean(String),
    /// A job's run got through, with record errors: its run-failure alerts, not the
    /// completed-with-errors one.
    JobRan(String),
    /// The connection's credentials work again.
    Connection(String),
    /// Nothing waits in a job's Failed Records any more: job, connection, entity.
    DeadLettersCleared(String, String, String),
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
    /// Raise an alert: a repeat of an open one (same kind and subject) updates it.
    pub async fn insert_alert(&self, a: &NewAlert, now: DateTime<Utc>) -> Result<Alert> {
        let id = raise_alert_on(self.writer().await?.conn(), a, now).await?;
        self.alert(id).await
    }

    pub async fn alert(&self, id: i64) -> Result<Alert> {
        let row: Option<Row> = on!(self.reader(), |c| sqlx::query_as(sql(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(c)
        .await)?;
        row.ok_or_else(|| crate::error::Error::NotFound {
            what: "alert",
            id: id.to_string(),
        })?
        .into_model()
    }

    /// Alerts newest first; `open_only`: unread and unresolved.
    pub async fn alerts(&self, open_only: bool, page: &PageRequest) -> Result<Page<Alert>> {
        let before = parse_cursor(&page.cursor)?.unwrap_or(i64::MAX);
        let filter = if open_only {
            "AND read_at IS NULL AND resolved_at IS NULL"
        } else {
            ""
        };
        let rows: Vec<Row> = on!(self.reader(), |c| sqlx::query_as(sql(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE id < ? {filter} ORDER BY id DESC LIMIT ?"
        )))
        .bind(before)
        .bind(page.limit() + 1)
        .fetch_all(c)
        .await)?;
        let items = rows
            .into_iter()
            .map(Row::into_model)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit(), |a| a.id.to_string()))
    }

    pub async fn mark_alert_read(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let r = on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE alerts SET read_at = COALESCE(read_at, ?) WHERE id = ?"
        ))
        .bind(to_millis(now))
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        if r == 0 {
            return Err(crate::error::Error::NotFound {
                what: "alert",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Mark every unread alert read; returns how many were.
    pub async fn mark_all_alerts_read(&self, now: DateTime<Utc>) -> Result<u64> {
        let r = on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE alerts SET read_at = ? WHERE read_at IS NULL"
        ))
        .bind(to_millis(now))
        .execute(c)
        .await?
        .rows_affected());
        Ok(r)
    }

    /// Resolve the open alerts a cleared cause covers; returns their ids.
    pub async fn resolve_alerts(
        &self,
        scope: &AlertScope,
        resolution: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        resolve_alerts_on(self.writer().await?.conn(), scope, resolution, now).await
    }
}

impl AlertScope {
    /// The job and the connection the scope is about, for the event that announces it.
    pub fn subject(&self) -> (Option<&str>, Option<&str>) {
        match self {
            AlertScope::JobClean(job)
            | AlertScope::JobRan(job)
            | AlertScope::DeadLettersCleared(job, _, _) => (Some(job), None),
            AlertScope::Connection(c) => (None, Some(c)),
        }
    }
}

/// The kinds a job's scopes resolve.
const JOB_FAILURES: &str = "'circuit_breaker', 'retries_exhausted', 'execution_failed'";

pub(crate) async fn resolve_alerts_on(
    conn: super::Conn<'_>,
    scope: &AlertScope,
    resolution: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let (condition, subject, extra): (String, &str, Option<(&str, &str)>) = match scope {
        AlertScope::JobClean(job) => (
            format!("kind IN ({JOB_FAILURES}, 'completed_with_errors') AND job_id = ?"),
            job,
            None,
        ),
        AlertScope::JobRan(job) => (
            format!("kind IN ({JOB_FAILURES}) AND job_id = ?"),
            job,
            None,
        ),
        AlertScope::Connection(c) => (
            "kind = 'connection_expired' AND connection_id = ?".into(),
            c,
            None,
        ),
        AlertScope::DeadLettersCleared(job, c, entity) => (
            "kind = 'dead_letters' AND job_id = ? AND NOT EXISTS (SELECT 1 FROM external_refs
               WHERE connection_id = ? AND entity = ? AND state = 'dead_letter')"
                .into(),
            job,
            Some((c, entity)),
        ),
    };
    let text = format!(
        "UPDATE alerts SET resolved_at = ?, resolution = ? WHERE resolved_at IS NULL AND {condition} RETURNING id"
    );
    let ids = on!(conn, |conn| {
        let mut q = sqlx::query_as::<_, (i64,)>(sql(&text))
            .bind(to_millis(now))
            .bind(resolution)
            .bind(subject);
        if let Some((c, entity)) = extra {
            q = q.bind(c).bind(entity);
        }
        q.fetch_all(conn).await?
    });
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Raise an alert, or count a repeat on the open one about the same thing: a connection's
/// expiry is one piece of news whichever job ran into it; the rest are per job.
pub(crate) async fn raise_alert_on(
    mut conn: super::Conn<'_>,
    a: &NewAlert,
    now: DateTime<Utc>,
) -> Result<i64> {
    let same = if a.kind == AlertKind::ConnectionExpired {
        "connection_id IS NOT DISTINCT FROM ?"
    } else {
        "job_id IS NOT DISTINCT FROM ?"
    };
    let subject = if a.kind == AlertKind::ConnectionExpired {
        &a.connection_id
    } else {
        &a.job_id
    };
    let update = format!(
        "UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = ?, title = ?, body = ?, execution_id = ?
         WHERE id = (SELECT id FROM alerts WHERE resolved_at IS NULL AND kind = ? AND {same} ORDER BY id DESC LIMIT 1)
         RETURNING id"
    );
    on!(&mut conn, |c| {
        let repeated: Option<(i64,)> = sqlx::query_as(sql(&update))
            .bind(to_millis(now))
            .bind(&a.title)
            .bind(&a.body)
            .bind(&a.execution_id)
            .bind(a.kind.as_str())
            .bind(subject)
            .fetch_optional(&mut **c)
            .await?;
        if let Some((id,)) = repeated {
            return Ok(id);
        }
        let (id,): (i64,) = sqlx::query_as(sql(
        "INSERT INTO alerts (kind, title, body, job_id, execution_id, connection_id, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(a.kind.as_str())
    .bind(&a.title)
    .bind(&a.body)
    .bind(&a.job_id)
    .bind(&a.execution_id)
    .bind(&a.connection_id)
    .bind(to_millis(now))
    .bind(to_millis(now))
    .fetch_one(&mut **c)
    .await?;
        Ok(id)
    })
}
