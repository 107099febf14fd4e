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

#[derive(Debug, FromRow)]
struct Ranked {
    rank: i64,
    #[sqlx(flatten)]
    row: Row,
}

const COLUMNS: &str = "rowid, id, name, connection_id, entity, direction, mode, schedule, settings, enabled, watermark, next_run_at, created_at";

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Store(e.to_string()))
}

impl Store {
    pub async fn insert_job(&self, job: &Job, now: DateTime<Utc>) -> Result<Job> {
        let res = on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql("INSERT INTO jobs (id, name, connection_id, entity, direction, mode, schedule, settings, enabled, watermark, next_run_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)"))
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
        .execute(c).await.map(|r| r.rows_affected())
        });
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
        on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql("UPDATE jobs SET mode = ?, schedule = ?, settings = ?, enabled = ?, next_run_at = ?, updated_at = ? WHERE id = ?"))
        .bind(job.mode.as_str())
        .bind(json(&job.schedule)?)
        .bind(json(&job.settings)?)
        .bind(job.enabled)
        .bind(job.next_run_at.map(to_millis))
        .bind(to_millis(now))
        .bind(&job.id)
        .execute(c).await?.rows_affected()
        });
        self.job(&job.id).await
    }

    /// A job by id, name, or a unique id prefix of at least [`MIN_PREFIX`] characters.
    pub async fn job(&self, id_or_name: &str) -> Result<Job> {
        let rows: Vec<Ranked> = on!(self.reader(), |c| {
            sqlx::query_as(sql(&format!(
            "SELECT CAST(0 AS BIGINT) AS rank, {COLUMNS} FROM jobs WHERE id = ?1
             UNION ALL SELECT CAST(1 AS BIGINT) AS rank, {COLUMNS} FROM jobs WHERE name = ?1
             UNION ALL SELECT CAST(2 AS BIGINT) AS rank, {COLUMNS} FROM jobs WHERE length(?1) >= ?3 AND id >= ?1 AND id < ?2
             ORDER BY rank LIMIT 6"
        )))
        .bind(id_or_name)
        .bind(prefix_end(id_or_name))
        .bind(MIN_PREFIX as i64)
        .fetch_all(c).await
        })?;
        pick(
            "job",
            id_or_name,
            rows.into_iter().map(|r| (r.rank, r.row)).collect(),
            |r| format!("{} ({})", r.id, r.name),
        )?
        .into_model()
    }

    /// Whether a job has exactly this name.
    pub async fn job_name_taken(&self, name: &str) -> Result<bool> {
        let row: Option<(String,)> = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT id FROM jobs WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(c)
        .await)?;
        Ok(row.is_some())
    }

    /// Jobs in creation order.
    pub async fn jobs(&self, page: &PageRequest) -> Result<Page<Job>> {
        let after = parse_cursor(&page.cursor)?.unwrap_or(0);
        let rows: Vec<Row> = on!(self.reader(), |c| sqlx::query_as(sql(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )))
        .bind(after)
        .bind(page.limit() + 1)
        .fetch_all(c)
        .await)?;
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
        set_job_watermark_on(self.writer().await?.conn(), id, watermark).await
    }

    pub async fn set_job_next_run(&self, id: &str, at: Option<DateTime<Utc>>) -> Result<()> {
        on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE jobs SET next_run_at = ? WHERE id = ?"
        ))
        .bind(at.map(to_millis))
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Enabled jobs whose schedule is due.
    pub async fn due_jobs(
        &self,
        now: DateTime<Utc>,
        connections: Option<&[String]>,
    ) -> Result<Vec<Job>> {
        let only = super::only_connections("connection_id", connections);
        let text = format!(
            "SELECT {COLUMNS} FROM jobs WHERE next_run_at IS NOT NULL AND enabled = TRUE AND next_run_at <= ?
             AND NOT EXISTS (SELECT 1 FROM sync_pause){only} ORDER BY next_run_at LIMIT 100"
        );
        let rows: Vec<Row> = on!(self.reader(), |c| {
            let mut q = sqlx::query_as(sql(&text)).bind(to_millis(now));
            for id in connections.unwrap_or_default() {
                q = q.bind(id);
            }
            q.fetch_all(c).await?
        });
        rows.into_iter().map(Row::into_model).collect()
    }

    /// The earliest time a scheduled job or queued execution becomes due; none while syncs
    /// are paused.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let (a,): (Option<i64>,) = on!(self.reader(), |c| {
            sqlx::query_as(sql("SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM jobs WHERE enabled = TRUE
             UNION ALL SELECT MIN(due_at) FROM executions WHERE status = 'queued' AND waiting_for IS NULL) AS due
             WHERE NOT EXISTS (SELECT 1 FROM sync_pause)"))
        .fetch_one(c).await
        })?;
        Ok(a.map(from_millis))
    }
}

pub(crate) async fn set_job_watermark_on(
    conn: super::Conn<'_>,
    id: &str,
    watermark: &str,
) -> Result<()> {
    on!(conn, |c| sqlx::query(sql(
        "UPDATE jobs SET watermark = ? WHERE id = ?"
    ))
    .bind(watermark)
    .bind(id)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// The fewest characters of an id that are taken as its prefix (`syncdesk job run 3f2a`).
pub(crate) const MIN_PREFIX: usize = 4;

/// The upper bound of the ids starting with `prefix`: `id >= prefix AND id < prefix_end`
/// matches them by range, which the primary key index answers (a `LIKE` on a binary-collated
/// column would scan the table) and where `%` and `_` are plain characters.
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// The one row a lookup means, from rows ranked 0 (exact id), 1 (name) and 2 (id prefix),
/// lowest rank first: an exact id or name wins; a prefix must match one row only, else the
/// answer names up to five candidates.
pub(crate) fn pick<R>(
    what: &'static str,
    key: &str,
    rows: Vec<(i64, R)>,
    label: impl Fn(&R) -> String,
) -> Result<R> {
    let mut rows = rows.into_iter().peekable();
    let Some((rank, first)) = rows.next() else {
        return Err(Error::NotFound {
            what,
            id: key.to_string(),
        });
    };
    if rank < 2 || rows.peek().is_none() {
        return Ok(first);
    }
    let rest: Vec<R> = rows.map(|(_, r)| r).collect();
    let mut shown: Vec<String> = std::iter::once(&first)
        .chain(&rest)
        .take(5)
        .map(&label)
        .collect();
    if rest.len() + 1 > 5 {
        shown.push("…".into());
    }
    Err(Error::Invalid {
        field: what.to_string(),
        message: format!(
            "'{key}' is the start of more than one {what} id: {}; give more of the id, or the name",
            shown.join(", ")
        ),
    })
}

/// What deleting a job removes (or would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobFootprint {
    pub executions: u64,
    pub record_errors: u64,
}

impl Store {
    /// The names of the jobs that use a connection, in creation order.
    pub async fn jobs_using_connection(&self, connection_id: &str) -> Result<Vec<String>> {
        let names: Vec<(String,)> = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT name FROM jobs WHERE connection_id = ? ORDER BY rowid"
        ))
        .bind(connection_id)
        .fetch_all(c)
        .await)?;
        Ok(names.into_iter().map(|(n,)| n).collect())
    }

    /// Delete a job with its executions and their error log rows, unless it is running;
    /// with `dry_run`, only count them. Records and external references stay: they are the
    /// local store's data, shared by any job of the same connection and entity. The job's
    /// open alerts are resolved (`resolved_at = now`); their ids are returned.
    pub async fn delete_job(
        &self,
        id: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<(JobFootprint, Vec<i64>)> {
        on!(self.writer().await?.conn(), |c| {
            let mut tx = sqlx::Connection::begin(c).await?;
            // Checked in the transaction that deletes: a run cannot start in between, since
            // starting one writes too.
            let running: Option<(String,)> = sqlx::query_as(sql(
                "SELECT id FROM executions WHERE job_id = ? AND status = 'running' LIMIT 1",
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((exec,)) = running {
                return Err(Error::Conflict(format!(
                "the job is running (execution {exec}); cancel it or wait for it to end, then delete the job"
            )));
            }
            let (executions, record_errors): (i64, i64) = sqlx::query_as(sql(
            "SELECT (SELECT COUNT(*) FROM executions WHERE job_id = ?1),
                    (SELECT COUNT(*) FROM record_errors WHERE execution_id IN (SELECT id FROM executions WHERE job_id = ?1))",
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
            let footprint = JobFootprint {
                executions: executions as u64,
                record_errors: record_errors as u64,
            };
            if dry_run {
                return Ok((footprint, Vec::new()));
            }
            sqlx::query(sql(
            "DELETE FROM record_errors WHERE execution_id IN (SELECT id FROM executions WHERE job_id = ?)",
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
            sqlx::query(sql("DELETE FROM executions WHERE job_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let resolved: Vec<(i64,)> = sqlx::query_as(sql(
                "UPDATE alerts SET resolved_at = ?, resolution = 'The job was deleted'
             WHERE job_id = ? AND resolved_at IS NULL RETURNING id",
            ))
            .bind(to_millis(now))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(sql("DELETE FROM jobs WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((footprint, resolved.into_iter().map(|(i,)| i).collect()))
        })
    }
}
