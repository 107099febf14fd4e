//! The `executions` table: runs of a job, the retry queue (queued rows with a due time) and
//! the owner lease that tells a live run from an interrupted one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow, QueryBuilder};

use super::jobs::{pick, prefix_end, MIN_PREFIX};
use super::{page_of, parse_cursor, push_list, Backend, Store, StoreKind};
use super::{AlertScope, NewAlert, NewAudit};
use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::model::{
    ConnectionStatus, Counts, Execution, ExecutionStatus, FailureKind, Mode, Page, PageRequest,
    RetryState, Trigger, Waiting,
};

#[derive(Debug, FromRow)]
struct Row {
    id: String,
    job_id: String,
    seq: i64,
    trigger: String,
    attempt: i64,
    retry_of: Option<String>,
    status: String,
    mode: String,
    record_id: Option<String>,
    created_at: i64,
    due_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    processed: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
    excluded: i64,
    batch_in_progress: Option<String>,
    failure_kind: Option<String>,
    note: Option<String>,
    next_retry_at: Option<i64>,
    request_retries: i64,
    rate_limit_waits: i64,
    retry_outcome: Option<String>,
    /// The row retrying this one: `status|waiting_for|due_at|id`.
    retry_row: Option<String>,
    wait_reason: Option<String>,
    wait_until: Option<i64>,
    ran_by: Option<String>,
}

#[derive(Debug, FromRow)]
struct Ranked {
    rank: i64,
    #[sqlx(flatten)]
    row: Row,
}

const COLUMNS: &str = "id, job_id, seq, trigger, attempt, retry_of, status, mode, record_id, created_at, due_at, started_at, finished_at, processed, created, updated, skipped, failed, excluded, batch_in_progress, failure_kind, note, next_retry_at, request_retries, rate_limit_waits, retry_outcome, wait_reason, wait_until, ran_by, \
    (SELECT r.status || '|' || COALESCE(r.waiting_for, '') || '|' || r.due_at || '|' || r.id FROM executions r WHERE r.retry_of = executions.id ORDER BY r.seq DESC LIMIT 1) AS retry_row";

/// Where an execution stands with its retry, from its own row and the row retrying it.
fn retry_state(outcome: Option<&str>, retry_row: Option<&str>) -> Result<RetryState> {
    if let Some(r) = retry_row {
        let mut parts = r.splitn(4, '|');
        let (Some(status), Some(waiting), Some(due), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Store(format!("stored retry row is unreadable: {r}")));
        };
        let execution_id = id.to_string();
        return Ok(match status.parse::<ExecutionStatus>()? {
            ExecutionStatus::Queued if waiting == "reauth" => {
                RetryState::WaitingForReauth { execution_id }
            }
            ExecutionStatus::Queued => RetryState::Pending {
                execution_id,
                at: from_millis(due.parse().unwrap_or_default()),
            },
            ExecutionStatus::Running => RetryState::Running { execution_id },
            ExecutionStatus::Cancelled => RetryState::Superseded { execution_id },
            _ => RetryState::Retried { execution_id },
        });
    }
    Ok(match outcome {
        Some("exhausted") => RetryState::Exhausted,
        Some("off") => RetryState::Off,
        _ => RetryState::None,
    })
}

impl Row {
    fn into_model(self) -> Result<Execution> {
        Ok(Execution {
            trigger: self.trigger.parse()?,
            status: self.status.parse()?,
            mode: self.mode.parse()?,
            failure_kind: self.failure_kind.as_deref().map(str::parse).transpose()?,
            id: self.id,
            job_id: self.job_id,
            attempt: self.attempt as u32,
            retry_of: self.retry_of,
            record_id: self.record_id,
            created_at: from_millis(self.created_at),
            due_at: from_millis(self.due_at),
            started_at: self.started_at.map(from_millis),
            finished_at: self.finished_at.map(from_millis),
            counts: Counts {
                processed: self.processed as u64,
                created: self.created as u64,
                updated: self.updated as u64,
                skipped: self.skipped as u64,
                failed: self.failed as u64,
            },
            excluded: self.excluded as u64,
            batch_in_progress: self.batch_in_progress,
            note: self.note,
            next_retry_at: self.next_retry_at.map(from_millis),
            request_retries: self.request_retries as u32,
            rate_limit_waits: self.rate_limit_waits as u32,
            retry: retry_state(self.retry_outcome.as_deref(), self.retry_row.as_deref())?,
            waiting: match (self.status.as_str(), self.wait_reason, self.wait_until) {
                ("running", Some(reason), Some(until)) => Some(Waiting {
                    reason,
                    until: from_millis(until),
                }),
                _ => None,
            },
            ran_by: self
                .ran_by
                .as_deref()
                .map(|o| crate::model::owner_name(o).to_string()),
        })
    }
}

/// A new execution row: `running` when it starts at once, `queued` when it waits for `due_at`.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub job_id: String,
    pub trigger: Trigger,
    pub attempt: u32,
    pub retry_of: Option<String>,
    pub status: ExecutionStatus,
    pub mode: Mode,
    pub record_id: Option<String>,
    pub due_at: DateTime<Utc>,
    /// For running rows: the owner and its lease.
    pub owner: Option<(String, DateTime<Utc>)>,
    /// A queued retry that waits for re-authentication rather than for `due_at`.
    pub waits_for_reauth: bool,
}

/// Counters written with every committed page.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub counts: Counts,
    pub excluded: u64,
    pub batch_in_progress: Option<String>,
    pub request_retries: u32,
    pub rate_limit_waits: u32,
    pub lease_until: Option<DateTime<Utc>>,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct ExecutionFinish {
    pub status: ExecutionStatus,
    pub failure_kind: Option<FailureKind>,
    pub note: Option<String>,
    pub progress: Progress,
    pub finished_at: DateTime<Utc>,
}

/// The running execution of a job, with who runs it.
#[derive(Debug, Clone)]
pub struct RunningExecution {
    pub id: String,
    /// `host:pid:uuid` of the engine that runs it.
    pub owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Debug, FromRow)]
struct RunningRow {
    id: String,
    owner: Option<String>,
    lease_until: Option<i64>,
    started_at: Option<i64>,
}

impl RunningRow {
    fn into_model(self) -> RunningExecution {
        RunningExecution {
            id: self.id,
            owner: self.owner,
            lease_until: self.lease_until.map(from_millis),
            started_at: self.started_at.map(from_millis),
        }
    }
}

/// Everything a run's end writes, in one transaction (issue 13, "a run's end is one
/// transaction"): a crash leaves either the run still `running` (recovered as interrupted)
/// or all of it, never an ended run without its retry row, watermark or alert.
#[derive(Debug, Default)]
pub struct ExecutionEnd {
    pub finish: Option<ExecutionFinish>,
    /// Only end the row if it is still `running` (recovery of a dead owner's run: someone
    /// else may have ended it meanwhile).
    pub only_if_running: bool,
    /// The job's new watermark (R-A3: since the last successful run).
    pub watermark: Option<(String, String)>,
    /// Cancel the job's queued executions: a successful run supersedes pending retries.
    pub supersede_queued: Option<String>,
    /// Connection, entity, and the fields its records carried (R-E5).
    pub observed: Option<(String, String, Vec<String>)>,
    pub connection_status: Option<(String, ConnectionStatus, Option<String>)>,
    pub alerts: Vec<NewAlert>,
    /// Open alerts whose cause this end clears, with why.
    pub resolve: Vec<(AlertScope, String)>,
    pub audit: Vec<NewAudit>,
    /// The automatic retry (R-A1): a queued row, and the ended row's `next_retry_at`.
    pub retry: Option<NewExecution>,
    /// With no retry row: `exhausted` or `off`, so the retry state can say which.
    pub retry_outcome: Option<&'static str>,
}

/// An ended execution and the alerts its end resolved.
#[derive(Debug)]
pub struct Ended {
    pub execution: Execution,
    pub resolved_alerts: Vec<i64>,
}

impl Store {
    /// Insert a queued execution; `seq` gives it its place in the history.
    pub async fn insert_execution(&self, e: NewExecution, now: DateTime<Utc>) -> Result<Execution> {
        if !insert_execution_on(self.writer().await?.conn(), &e, now).await? {
            return Err(Error::Conflict(
                "the job already has a running execution".into(),
            ));
        }
        self.execution(&e.id).await
    }

    /// Insert a `running` execution unless its job already has one: the check and the insert
    /// are one statement, and a unique index backs it, so two starts of one job at the same
    /// moment (two processes, two desktops) make one run (issue 13 D1). `None`: the job is
    /// running.
    pub async fn insert_running_execution(
        &self,
        e: NewExecution,
        now: DateTime<Utc>,
    ) -> Result<Option<Execution>> {
        match insert_execution_on(self.writer().await?.conn(), &e, now).await {
            Ok(true) => Ok(Some(self.execution(&e.id).await?)),
            Ok(false) | Err(Error::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The running execution of a job, if any.
    pub async fn running_execution_of(&self, job_id: &str) -> Result<Option<RunningExecution>> {
        let row: Option<RunningRow> = on!(self.reader(), |c| {
            sqlx::query_as(sql("SELECT id, owner, lease_until, started_at FROM executions WHERE job_id = ? AND status = 'running'"))
        .bind(job_id)
        .fetch_optional(c).await
        })?;
        Ok(row.map(RunningRow::into_model))
    }

    /// What a running execution waits for and until when (cleared by its next page).
    pub async fn set_waiting(&self, id: &str, reason: &str, until: DateTime<Utc>) -> Result<()> {
        on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql("UPDATE executions SET wait_reason = ?, wait_until = ? WHERE id = ? AND status = 'running'"))
        .bind(reason)
        .bind(to_millis(until))
        .bind(id)
        .execute(c).await?.rows_affected()
        });
        Ok(())
    }

    /// Make the retries waiting for a connection's re-authentication due now; their ids.
    pub async fn release_reauth_retries(
        &self,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let ids: Vec<(String,)> = on!(self.writer().await?.conn(), |c| sqlx::query_as(sql(
            "UPDATE executions SET waiting_for = NULL, due_at = ?
             WHERE status = 'queued' AND waiting_for = 'reauth'
               AND job_id IN (SELECT id FROM jobs WHERE connection_id = ?)
             RETURNING id"
        ))
        .bind(to_millis(now))
        .bind(connection_id)
        .fetch_all(c)
        .await)?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Every running execution with its owner and lease, for crash recovery.
    pub async fn running_executions(&self) -> Result<Vec<RunningExecution>> {
        let rows: Vec<RunningRow> = on!(self.reader(), |c| {
            sqlx::query_as(sql(
            "SELECT id, owner, lease_until, started_at FROM executions WHERE status = 'running'"
        ))
        .fetch_all(c)
        .await
        })?;
        Ok(rows.into_iter().map(RunningRow::into_model).collect())
    }

    /// An execution by id, or a unique id prefix of at least
    /// [`MIN_PREFIX`](super::jobs::MIN_PREFIX) characters.
    pub async fn execution(&self, id: &str) -> Result<Execution> {
        let rows: Vec<Ranked> = on!(self.reader(), |c| {
            sqlx::query_as(sql(&format!(
            "SELECT CAST(0 AS BIGINT) AS rank, {COLUMNS} FROM executions WHERE id = ?1
             UNION ALL SELECT CAST(2 AS BIGINT) AS rank, {COLUMNS} FROM executions WHERE length(?1) >= ?3 AND id > ?1 AND id < ?2
             ORDER BY rank LIMIT 6"
        )))
        .bind(id)
        .bind(prefix_end(id))
        .bind(MIN_PREFIX as i64)
        .fetch_all(c).await
        })?;
        pick(
            "execution",
            id,
            rows.into_iter().map(|r| (r.rank, r.row)).collect(),
            |r| r.id.clone(),
        )?
        .into_model()
    }

    /// Executions newest first, of one job or of all.
    pub async fn executions(
        &self,
        job_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Execution>> {
        let before = parse_cursor(&page.cursor)?.unwrap_or(i64::MAX);
        let rows: Vec<Row> = match job_id {
            Some(job) => on!(self.reader(), |c| {
                sqlx::query_as(sql(&format!(
                "SELECT {COLUMNS} FROM executions WHERE job_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            )))
            .bind(job)
            .bind(before)
            .bind(page.limit() + 1)
            .fetch_all(c).await
            })?,
            None => on!(self.reader(), |c| sqlx::query_as(sql(&format!(
                "SELECT {COLUMNS} FROM executions WHERE seq < ? ORDER BY seq DESC LIMIT ?"
            )))
            .bind(before)
            .bind(page.limit() + 1)
            .fetch_all(c)
            .await)?,
        };
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let items = rows
            .into_iter()
            .map(Row::into_model)
            .collect::<Result<Vec<_>>>()?;
        let limit = page.limit();
        let paired: Vec<(i64, Execution)> = seqs.into_iter().zip(items).collect();
        let p = page_of(paired, limit, |(s, _)| s.to_string());
        Ok(Page {
            items: p.items.into_iter().map(|(_, e)| e).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// The newest started run (queued retries and record retries aside) of each of
    /// `job_ids`, in one query.
    pub async fn latest_executions(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, Execution>> {
        let mut out = HashMap::with_capacity(job_ids.len());
        for chunk in super::shaped_chunks(job_ids) {
            let rows: Vec<Row> = on!(self.reader(), |c| {
                let mut q = QueryBuilder::new(format!(
                    "SELECT {COLUMNS} FROM executions WHERE seq IN (SELECT MAX(seq) FROM executions \
                     WHERE trigger <> 'record_retry' AND status <> 'queued' AND job_id IN "
                ));
                push_list(&mut q, chunk);
                q.push(" GROUP BY job_id)");
                q.build_query_as().fetch_all(c).await?
            });
            for r in rows {
                let e = r.into_model()?;
                out.insert(e.job_id.clone(), e);
            }
        }
        Ok(out)
    }

    /// Atomically take the oldest due queued execution whose job is not already running.
    pub async fn claim_due_execution(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        connections: Option<&[String]>,
    ) -> Result<Option<Execution>> {
        // Two workers of a shared database never take one row: PostgreSQL skips the rows
        // another transaction is claiming (`FOR UPDATE SKIP LOCKED`), so each takes the next
        // free one; SQLite runs one write at a time. Two due rows of one job claimed at the
        // same moment meet the one-running index: the later claim is refused and takes
        // nothing this time.
        let lock = match self.kind() {
            StoreKind::Sqlite => "",
            StoreKind::Postgres => "FOR UPDATE OF q SKIP LOCKED",
        };
        let only = super::only_connections(
            "(SELECT j.connection_id FROM jobs j WHERE j.id = q.job_id)",
            connections,
        );
        let claim = format!(
            "UPDATE executions SET status = 'running', owner = ?, ran_by = ?, lease_until = ?, started_at = ?
             WHERE id = (
                SELECT q.id FROM executions q
                WHERE q.status = 'queued' AND q.due_at <= ? AND q.waiting_for IS NULL
                  AND NOT EXISTS (SELECT 1 FROM executions r WHERE r.job_id = q.job_id AND r.status = 'running')
                  AND NOT EXISTS (SELECT 1 FROM sync_pause){only}
                ORDER BY q.due_at, q.seq LIMIT 1 {lock})
             AND status = 'queued'
             RETURNING id"
        );
        let claimed: std::result::Result<Option<(String,)>, sqlx::Error> =
            on!(self.writer().await?.conn(), |c| {
                let mut q = sqlx::query_as(sql(&claim))
                    .bind(owner)
                    .bind(owner)
                    .bind(to_millis(lease_until))
                    .bind(to_millis(now))
                    .bind(to_millis(now));
                for id in connections.unwrap_or_default() {
                    q = q.bind(id);
                }
                q.fetch_optional(c).await
            });
        let id = match claimed {
            // Expected between workers, not an error to log.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => None,
            other => other?,
        };
        match id {
            Some((id,)) => Ok(Some(self.execution(&id).await?)),
            None => Ok(None),
        }
    }

    /// Extend the lease of a run `owner` still holds.
    pub async fn renew_lease(&self, id: &str, owner: &str, until: DateTime<Utc>) -> Result<()> {
        on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql(
            "UPDATE executions SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'running'"
        ))
        .bind(to_millis(until))
        .bind(id)
        .bind(owner)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Progress of a running execution, outside a page transaction.
    pub async fn update_progress(&self, id: &str, p: &Progress) -> Result<()> {
        write_progress(self.writer().await?.conn(), id, p).await
    }

    /// End an execution and write all that follows from it in one transaction. `None` when
    /// `only_if_running` was asked and the row had already ended.
    ///
    /// On PostgreSQL a failed end is tried again on another connection, up to one more time
    /// than the pool has connections: after a server restart each pooled connection fails
    /// once before it is replaced, and a run whose end is never written stays `running`
    /// until its process stops. A repeat only ends a row that is still running, so an end
    /// that committed but whose answer was lost is not written twice.
    pub async fn end_execution(&self, id: &str, end: &ExecutionEnd) -> Result<Option<Ended>> {
        let attempts = match self.kind() {
            StoreKind::Sqlite => 1,
            StoreKind::Postgres => super::postgres::CONNECTIONS + 1,
        };
        let mut attempt = 1;
        loop {
            match self.end_execution_once(id, end, attempt > 1).await {
                Err(Error::Store(why)) if attempt < attempts => {
                    tracing::warn!(execution = %id, attempt, error = %why, "ending the execution failed; trying again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn end_execution_once(
        &self,
        id: &str,
        end: &ExecutionEnd,
        repeat: bool,
    ) -> Result<Option<Ended>> {
        let mut writer = self.writer().await?;
        let resolved_alerts = on!(writer.conn(), |c| {
            let mut tx = c.begin().await?;
            if let Some(f) = &end.finish {
                write_progress((&mut *tx).into(), id, &f.progress).await?;
                let ended = sqlx::query(sql(
                "UPDATE executions SET status = ?, failure_kind = ?, note = ?, finished_at = ?, owner = NULL, lease_until = NULL,
                 wait_reason = NULL, wait_until = NULL
                 WHERE id = ? AND (NOT ? OR status = 'running')",
            ))
            .bind(f.status.as_str())
            .bind(f.failure_kind.map(FailureKind::as_str))
            .bind(&f.note)
            .bind(to_millis(f.finished_at))
            .bind(id)
            .bind(end.only_if_running || repeat)
            .execute(&mut *tx)
            .await?;
                if ended.rows_affected() == 0 {
                    return Ok(None); // the transaction rolls back on drop
                }
            }
            let now = end
                .finish
                .as_ref()
                .map(|f| f.finished_at)
                .unwrap_or_default();
            if let Some((job, w)) = &end.watermark {
                super::jobs::set_job_watermark_on((&mut *tx).into(), job, w).await?;
            }
            if let Some(job) = &end.supersede_queued {
                sqlx::query(sql(
                "UPDATE executions SET status = 'cancelled', note = 'superseded by a successful run', finished_at = ? WHERE job_id = ? AND status = 'queued'",
            ))
            .bind(to_millis(now))
            .bind(job)
            .execute(&mut *tx)
            .await?;
            }
            if let Some((conn_id, entity, fields)) = &end.observed {
                super::connections::set_observed_fields_on(
                    (&mut *tx).into(),
                    conn_id,
                    entity,
                    fields,
                    now,
                )
                .await?;
            }
            if let Some((conn_id, status, note)) = &end.connection_status {
                super::connections::set_connection_status_on(
                    (&mut *tx).into(),
                    conn_id,
                    *status,
                    note.as_deref(),
                    now,
                )
                .await?;
            }
            if let Some(retry) = &end.retry {
                insert_execution_on((&mut *tx).into(), retry, now).await?;
                sqlx::query(sql("UPDATE executions SET next_retry_at = ? WHERE id = ?"))
                    .bind((!retry.waits_for_reauth).then(|| to_millis(retry.due_at)))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(outcome) = end.retry_outcome {
                sqlx::query(sql("UPDATE executions SET retry_outcome = ? WHERE id = ?"))
                    .bind(outcome)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut resolved_alerts = Vec::new();
            for (scope, why) in &end.resolve {
                resolved_alerts.extend(
                    super::alerts::resolve_alerts_on((&mut *tx).into(), scope, why, now).await?,
                );
            }
            for a in &end.alerts {
                super::alerts::raise_alert_on((&mut *tx).into(), a, now).await?;
            }
            for a in &end.audit {
                super::audit::insert_audit_on(
                    (&mut *tx).into(),
                    &a.actor,
                    a.action,
                    &a.subject,
                    a.note.as_deref(),
                    now,
                )
                .await?;
            }
            tx.commit().await?;
            resolved_alerts
        });
        drop(writer); // let other writes go on while the row is read back
        Ok(Some(Ended {
            execution: self.execution(id).await?,
            resolved_alerts,
        }))
    }

    /// Record the mode a run actually uses (an incremental retry of a job that never
    /// succeeded runs full).
    pub async fn set_execution_mode(&self, id: &str, mode: Mode) -> Result<()> {
        on!(self.writer().await?.conn(), |c| sqlx::query(sql(
            "UPDATE executions SET mode = ? WHERE id = ?"
        ))
        .bind(mode.as_str())
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Cancel one queued execution.
    pub async fn cancel_if_queued(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = on!(self.writer().await?.conn(), |c| {
            sqlx::query(sql("UPDATE executions SET status = 'cancelled', note = 'cancelled before it started', finished_at = ? WHERE id = ? AND status = 'queued'"))
        .bind(to_millis(now))
        .bind(id)
        .execute(c).await?.rows_affected()
        });
        Ok(r == 1)
    }

    /// Count executions (all, for pagination tests and the dashboard).
    pub async fn count_executions(&self, job_id: &str) -> Result<u64> {
        let (n,): (i64,) = on!(self.reader(), |c| sqlx::query_as(sql(
            "SELECT COUNT(*) FROM executions WHERE job_id = ?"
        ))
        .bind(job_id)
        .fetch_one(c)
        .await)?;
        Ok(n as u64)
    }
}

pub(crate) async fn write_progress(conn: super::Conn<'_>, id: &str, p: &Progress) -> Result<()> {
    on!(conn, |c| {
        sqlx::query(sql(
        "UPDATE executions SET processed = ?, created = ?, updated = ?, skipped = ?, failed = ?, excluded = ?,
         batch_in_progress = ?, request_retries = ?, rate_limit_waits = ?, lease_until = COALESCE(?, lease_until),
         wait_reason = NULL, wait_until = NULL
         WHERE id = ?",
    ))
    .bind(p.counts.processed as i64)
    .bind(p.counts.created as i64)
    .bind(p.counts.updated as i64)
    .bind(p.counts.skipped as i64)
    .bind(p.counts.failed as i64)
    .bind(p.excluded as i64)
    .bind(&p.batch_in_progress)
    .bind(i64::from(p.request_retries))
    .bind(i64::from(p.rate_limit_waits))
    .bind(p.lease_until.map(to_millis))
    .bind(id)
    .execute(c)
    .await?
    .rows_affected()
    });
    Ok(())
}

/// Insert an execution row. A `running` row goes in only if its job has none running:
/// `false` when it did not.
async fn insert_execution_on(
    conn: super::Conn<'_>,
    e: &NewExecution,
    now: DateTime<Utc>,
) -> Result<bool> {
    let (owner, lease) = match &e.owner {
        Some((o, l)) => (Some(o.clone()), Some(to_millis(*l))),
        None => (None, None),
    };
    let running = e.status == ExecutionStatus::Running;
    let started = running.then(|| to_millis(now));
    // `seq` orders the history. SQLite's one writer can take the next number by MAX; writers
    // sharing a PostgreSQL database draw it from a sequence.
    let seq = match conn {
        Backend::Sqlite(_) => "(SELECT COALESCE(MAX(seq), 0) + 1 FROM executions)",
        Backend::Pg(_) => "nextval('execution_seq')",
    };
    let text = format!(
        "INSERT INTO executions (id, job_id, seq, trigger, attempt, retry_of, status, mode, record_id, created_at, due_at, started_at, owner, ran_by, lease_until, waiting_for)
         SELECT ?, ?, {seq}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         WHERE NOT ? OR NOT EXISTS (SELECT 1 FROM executions WHERE job_id = ? AND status = 'running')"
    );
    let r = on!(conn, |c| sqlx::query(sql(&text))
        .bind(&e.id)
        .bind(&e.job_id)
        .bind(e.trigger.as_str())
        .bind(i64::from(e.attempt))
        .bind(&e.retry_of)
        .bind(e.status.as_str())
        .bind(e.mode.as_str())
        .bind(&e.record_id)
        .bind(to_millis(now))
        .bind(to_millis(e.due_at))
        .bind(started)
        .bind(&owner)
        .bind(&owner)
        .bind(lease)
        .bind(e.waits_for_reauth.then_some("reauth"))
        .bind(running)
        .bind(&e.job_id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(r == 1)
}
