//! The worker: runs due scheduled jobs and due retry executions, and on start turns runs
//! whose owner died into `failed` ("interrupted") executions that follow R-A (SPEC §9).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, RunOptions};
use crate::error::{Error, Result};
use crate::model::{Execution, Trigger};
use crate::runner::{schedule_retry, LEASE};

/// How often the worker looks at the database even when nothing woke it (other processes
/// may have queued work).
const POLL: Duration = Duration::from_secs(30);

/// At most this many executions run at once in one worker.
const CONCURRENCY: usize = 4;

impl Engine {
    /// Mark `running` executions whose owner is gone as interrupted, and schedule their
    /// retries. Returns the executions marked.
    pub async fn recover_interrupted(&self) -> Result<Vec<Execution>> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut out = Vec::new();
        for (id, owner, lease) in inner.store.running_executions().await? {
            if owner.as_deref() == Some(inner.owner.as_str()) {
                continue;
            }
            let dead = match (&owner, lease) {
                (None, _) => true,
                (_, Some(l)) if l < now => true,
                (Some(o), _) => owner_process_gone(o),
            };
            if !dead {
                continue;
            }
            let note = "Interrupted: the process running this execution stopped before it finished";
            if inner.store.mark_interrupted(&id, note, now).await? {
                let exec = inner.store.execution(&id).await?;
                tracing::warn!(execution = %id, "marked interrupted");
                let job = inner.store.job(&exec.job_id).await?;
                let exec = if exec.trigger == Trigger::RecordRetry {
                    exec
                } else {
                    schedule_retry(inner, &job, exec).await?
                };
                out.push(exec);
            }
        }
        Ok(out)
    }

    /// One pass: start every due queued execution and every due scheduled job, and wait
    /// for them. Returns the finished executions.
    pub async fn run_due(&self) -> Result<Vec<Execution>> {
        let inner = &self.inner;
        let mut handles = tokio::task::JoinSet::new();
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        loop {
            let now = inner.clock.now();
            let lease = now + chrono::Duration::from_std(LEASE).expect("lease fits");
            let Some(exec) = inner
                .store
                .claim_due_execution(now, &inner.owner, lease)
                .await?
            else {
                break;
            };
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Cancelled)?;
            let engine = self.clone();
            handles.spawn(async move {
                let _permit = permit;
                engine.drive(exec).await
            });
        }
        let now = inner.clock.now();
        for job in inner.store.due_jobs(now).await? {
            // Move the schedule first: a crash mid-run must not make the job due forever.
            inner
                .store
                .set_job_next_run(&job.id, job.schedule.next_after(now))
                .await?;
            let mode = Engine::mode_for(&job, RunOptions::default());
            let exec = match self.start_row(&job, Trigger::Scheduled, mode, None).await {
                Ok(e) => e,
                Err(Error::Conflict(msg)) => {
                    tracing::info!(job = %job.name, "{msg}; skipping this scheduled run");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Cancelled)?;
            let engine = self.clone();
            handles.spawn(async move {
                let _permit = permit;
                engine.drive(exec).await
            });
        }
        let mut done = Vec::new();
        while let Some(r) = handles.join_next().await {
            match r {
                Ok(Ok(e)) => done.push(e),
                Ok(Err(e)) => tracing::error!(error = %e, "execution could not be recorded"),
                Err(e) => tracing::error!(error = %e, "execution task panicked"),
            }
        }
        Ok(done)
    }

    /// Run the worker until `stop` (or engine shutdown): recover, then run due work as it
    /// becomes due.
    pub async fn run_worker(&self, stop: CancellationToken) -> Result<()> {
        let recovered = self.recover_interrupted().await?;
        if !recovered.is_empty() {
            tracing::warn!(count = recovered.len(), "recovered interrupted executions");
        }
        let inner = self.inner.clone();
        loop {
            if stop.is_cancelled() || inner.shutdown.is_cancelled() {
                return Ok(());
            }
            let ran = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = inner.shutdown.cancelled() => return Ok(()),
                r = self.run_due() => r?,
            };
            if !ran.is_empty() {
                continue;
            }
            let now = inner.clock.now();
            let wait = match inner.store.next_due().await? {
                Some(t) if t <= now => Duration::from_millis(200),
                Some(t) => (t - now).to_std().unwrap_or(POLL).min(POLL),
                None => POLL,
            };
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = inner.shutdown.cancelled() => return Ok(()),
                _ = inner.clock.sleep(wait) => {}
                _ = inner.worker_wake.notified() => {}
            }
        }
    }
}

/// Whether the process named in an owner tag (`host:pid:uuid`) is certainly gone.
fn owner_process_gone(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return true;
    };
    let here = hostname();
    if host != here {
        return false; // another machine: only its lease can tell
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => true,
    }
}

/// This machine's name, for owner tags.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
