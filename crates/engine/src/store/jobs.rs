//! The `jobs` table.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{page_of, parse_cursor, Store};
use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::model::{Job, JobSettings, Page, PageRequest, Schedule};

#[derive(Debug, FromRow)]
struct Row {
    rowid: i64,
    id: String,
    name: String,
    connection_id: String,
    entity: String,
    direction: String,
    mode: String,
    schedule: String,
    settings: String,
    enabled: bool,
    watermark: Option<String>,
    next_run_at: Option<i64>,
    created_at: i64,
}

impl Row {
    fn into_model(self) -> Result<Job> {
        let schedule: Schedule = serde_json::from_str(&self.schedule).map_err(|e| {
            Error::Store(format!(
                "job '{}' has an unreadable schedule: {e}",
                self.name
            ))
        })?;
        let settings: JobSettings = serde_json::from_str(&self.settings).map_err(|e| {
            Error::Store(format!("job '{}' has unreadable settings: {e}", self.name))
        })?;
        Ok(Job {
            direction: self.direction.parse()?,
            mode: self.mode.parse()?,
            id: self.id,
            name: self.name,
            connection_id: self.connection_id,
            entity: self.entity,
            schedule,
            settings,
            enabled: self.enabled,
            watermark: self.watermark,
            next_run_at: self.next_run_at.map(from_millis),
            created_at: from_millis(self.created_at),
        })
    }
}

const COLUMNS: &str = "rowid, id, name, connection_id, entity, direction, mode, schedule, settings, enabled, watermark, next_run_at, created_at";

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Store(e.to_string()))
}

impl Store {
    pub async fn insert_job(&self, job: &Job, now: DateTime<Utc>) -> Result<Job> {
        let res = sqlx::query(
            "INSERT INTO jobs (id, name, connection_id, entity, direction, mode, schedule, settings, enabled, watermark, next_run_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.connection_id)
        .bind(&job.entity)
        .bind(job.direction.as_str())
        .bind(job.mode.as_str())
        .bind(json(&job.schedule)?)
        .bind(json(&job.settings)?)
        .bind(job.enabled)
        .bind(job.next_run_at.map(to_millis))
        .bind(to_millis(now))
        .bind(to_millis(now))
        .execute(&mut *self.writer().await?)
        .await;
        match res {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(Error::Conflict(format!(
                    "a job named '{}' already exists",
                    job.name
                )))
            }
            other => other?,
        };
        self.job(&job.id).await
    }

    /// Replace a job's editable parts (mode, schedule, settings, enabled).
    pub async fn update_job(&self, job: &Job, now: DateTime<Utc>) -> Result<Job> {
        sqlx::query(
            "UPDATE jobs SET mode = ?, schedule = ?, settings = ?, enabled = ?, next_run_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(job.mode.as_str())
        .bind(json(&job.schedule)?)
        .bind(json(&job.settings)?)
        .bind(job.enabled)
        .bind(job.next_run_at.map(to_millis))
        .bind(to_millis(now))
        .bind(&job.id)
        .execute(&mut *self.writer().await?)
        .await?;
        self.job(&job.id).await
    }

    /// A job by id or name.
    pub async fn job(&self, id_or_name: &str) -> Result<Job> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE id = ? OR name = ? LIMIT 1"
        ))
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(self.reader())
        .await?;
        row.ok_or_else(|| Error::NotFound {
            what: "job",
            id: id_or_name.to_string(),
        })?
        .into_model()
    }

    /// Jobs in creation order.
    pub async fn jobs(&self, page: &PageRequest) -> Result<Page<Job>> {
        let after = parse_cursor(&page.cursor)?.unwrap_or(0);
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE rowid > ? ORDER BY rowid LIMIT ?"
        ))
        .bind(after)
        .bind(page.limit() + 1)
        .fetch_all(self.reader())
        .await?;
        let limit = page.limit();
        let with_ids: Vec<(i64, Job)> = rows
            .into_iter()
            .map(|r| Ok((r.rowid, r.into_model()?)))
            .collect::<Result<_>>()?;
        let p = page_of(with_ids, limit, |(rowid, _)| rowid.to_string());
        Ok(Page {
            items: p.items.into_iter().map(|(_, j)| j).collect(),
            next_cursor: p.next_cursor,
        })
    }

    pub async fn set_job_watermark(&self, id: &str, watermark: &str) -> Result<()> {
        set_job_watermark_on(&mut *self.writer().await?, id, watermark).await
    }

    pub async fn set_job_next_run(&self, id: &str, at: Option<DateTime<Utc>>) -> Result<()> {
        sqlx::query("UPDATE jobs SET next_run_at = ? WHERE id = ?")
            .bind(at.map(to_millis))
            .bind(id)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// Enabled jobs whose schedule is due.
    pub async fn due_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE next_run_at IS NOT NULL AND enabled = 1 AND next_run_at <= ? ORDER BY next_run_at LIMIT 100"
        ))
        .bind(to_millis(now))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Row::into_model).collect()
    }

    /// The earliest time a scheduled job or queued execution becomes due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let (a,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM jobs WHERE enabled = 1
             UNION ALL SELECT MIN(due_at) FROM executions WHERE status = 'queued' AND waiting_for IS NULL)",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(a.map(from_millis))
    }
}

pub(crate) async fn set_job_watermark_on(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    watermark: &str,
) -> Result<()> {
    sqlx::query("UPDATE jobs SET watermark = ? WHERE id = ?")
        .bind(watermark)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
