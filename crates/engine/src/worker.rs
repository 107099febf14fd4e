//! The worker: a supervisor that starts due retry executions and scheduled jobs as they come
//! due, each run on its own tracked task, and ends runs whose owner died as `failed`
//! ("interrupted") executions that follow R-A (SPEC §9).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, RunOptions};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::model::{
    AuthKind, Connection, Execution, ExecutionStatus, FailureKind, SyncPause, Trigger,
};
use crate::runner::retry_plan;
use crate::secrets::SecretKind;
use crate::store::StoreKind;
use crate::store::{ExecutionEnd, ExecutionFinish, NewAudit, Progress, RunningExecution};

/// How often the worker looks at the database even when nothing woke it (other processes
/// may have queued work, or died leaving runs to recover).
const POLL: Duration = Duration::from_secs(30);

/// At most this many executions run at once in one worker.
const CONCURRENCY: usize = 4;

/// Why a dead owner's run ended, in the execution's note.
pub(crate) const INTERRUPTED: &str =
    "Interrupted: the process running this execution stopped before it finished";

impl Engine {
    /// Pause all syncs: no worker on this store (in any process) starts a scheduled run or
    /// an automatic retry until [`Engine::resume_syncs`]. Runs under way finish; "Run now"
    /// still runs; what falls due meanwhile runs once on resume. Audited. The pause in
    /// force, an earlier one kept as it was.
    pub async fn pause_syncs(&self) -> Result<SyncPause> {
        let inner = &self.inner;
        if inner
            .store
            .pause_syncs(&inner.actor, inner.clock.now())
            .await?
        {
            tracing::info!("all syncs paused");
            inner.emit(Event::SyncsPaused { paused: true });
        }
        inner
            .store
            .sync_pause()
            .await?
            .ok_or_else(|| Error::Conflict("syncs were resumed meanwhile".into()))
    }

    /// Resume all syncs; `false` when they were not paused. Workers in this process look
    /// at once, those of other processes within [`POLL`].
    pub async fn resume_syncs(&self) -> Result<bool> {
        let inner = &self.inner;
        let resumed = inner
            .store
            .resume_syncs(&inner.actor, inner.clock.now())
            .await?;
        if resumed {
            tracing::info!("all syncs resumed");
            inner.wake_worker();
            inner.emit(Event::SyncsPaused { paused: false });
        }
        Ok(resumed)
    }

    /// "Run due jobs now": every enabled scheduled job and every waiting automatic retry
    /// becomes due now, and the worker starts them (at most [`CONCURRENCY`] at once). How
    /// many jobs are due. Refused while syncs are paused: resuming is the admin's call.
    pub async fn run_due_now(&self) -> Result<u64> {
        let inner = &self.inner;
        if inner.store.sync_pause().await?.is_some() {
            return Err(Error::Conflict(
                "all syncs are paused; resume them to run due jobs".into(),
            ));
        }
        let due = inner.store.bring_due_forward(inner.clock.now()).await?;
        inner.wake_worker();
        Ok(due)
    }

    /// End `running` executions whose owner is gone as interrupted, and schedule their
    /// retries. Returns the executions ended.
    pub async fn recover_interrupted(&self) -> Result<Vec<Execution>> {
        let mut out = Vec::new();
        for running in self.inner.store.running_executions().await? {
            if self.interrupt_if_dead(&running).await? {
                out.push(self.inner.store.execution(&running.id).await?);
            }
        }
        Ok(out)
    }

    /// End a running execution as interrupted if its owner is certainly gone (see
    /// [`owner_is_gone`]). Its retry (R-A) or, for a dead-letter retry, its audit entry
    /// commits with it. `true` when it was ended here.
    pub(crate) async fn interrupt_if_dead(&self, running: &RunningExecution) -> Result<bool> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if !owner_is_gone(
            running.owner.as_deref(),
            running.lease_until,
            now,
            &inner.owner,
        ) {
            return Ok(false);
        }
        let exec = inner.store.execution(&running.id).await?;
        let job = inner.store.job(&exec.job_id).await?;
        let finish = ExecutionFinish {
            status: ExecutionStatus::Failed,
            failure_kind: Some(FailureKind::Interrupted),
            note: Some(INTERRUPTED.into()),
            progress: Progress {
                counts: exec.counts,
                excluded: exec.excluded,
                batch_in_progress: exec.batch_in_progress.clone(),
                request_retries: exec.request_retries,
                rate_limit_waits: exec.rate_limit_waits,
                lease_until: None,
            },
            finished_at: now,
        };
        let mut end = ExecutionEnd::default();
        let mut events = Vec::new();
        if exec.trigger == Trigger::RecordRetry {
            // A dead-letter retry is not retried automatically; its entry says it stopped.
            let records = exec.record_id.as_deref().unwrap_or("records");
            end.audit.push(NewAudit {
                actor: inner.actor.clone(),
                action: "dead_letter.retry",
                subject: format!("{} {records} (job {})", job.entity, job.name),
                note: Some(INTERRUPTED.into()),
            });
        } else {
            retry_plan(&job, &exec, &finish).into_end(&mut end, &mut events);
        }
        end.finish = Some(finish);
        end.only_if_running = true;
        if inner.store.end_execution(&exec.id, &end).await?.is_none() {
            return Ok(false); // its owner ended it meanwhile
        }
        tracing::warn!(execution = %exec.id, job = %job.name, "marked interrupted");
        if end.retry.is_some() {
            inner.wake_worker();
        }
        for e in events {
            inner.emit(e);
        }
        Ok(true)
    }

    /// Which connections this engine can run: those whose secret is in its keychain, and
    /// the others with the secret each lacks.
    pub async fn runnable_connections(&self) -> Result<Runnable> {
        let mut out = Runnable::default();
        for c in self.inner.store.connections().await? {
            let needs: &[SecretKind] = match c.auth_kind {
                AuthKind::None => &[],
                // A client-credentials connection signed in with a refresh token needs either.
                AuthKind::Oauth2ClientCredentials => {
                    &[SecretKind::ClientSecret, SecretKind::RefreshToken]
                }
                AuthKind::Oauth2RefreshToken => &[SecretKind::RefreshToken],
                AuthKind::Bearer => &[SecretKind::AccessToken],
                AuthKind::ApiKey => &[SecretKind::ApiKey],
            };
            let mut has = needs.is_empty();
            for kind in needs {
                let (secrets, id, kind) = (self.inner.secrets.clone(), c.id.clone(), *kind);
                let found = tokio::task::spawn_blocking(move || secrets.get(&id, kind))
                    .await
                    .map_err(|e| Error::Keychain(format!("keychain task failed: {e}")))??;
                has |= found.is_some();
            }
            match needs.first() {
                Some(kind) if !has => out.cannot.push((c, kind.label())),
                _ => out.can.push(c),
            }
        }
        Ok(out)
    }

    /// The connections whose runs this engine may claim: on a shared store, those it has the
    /// secret of (another machine may hold the rest); on its own store, all of them (a
    /// missing secret there is the admin's to fix, and the run says so).
    async fn claim_scope(&self) -> Result<Option<Vec<String>>> {
        if self.inner.store.kind() == StoreKind::Sqlite {
            return Ok(None);
        }
        let r = self.runnable_connections().await?;
        Ok(Some(r.can.into_iter().map(|c| c.id).collect()))
    }

    /// Claim the next piece of due work, as a `running` execution owned by this engine: a
    /// due queued execution (an automatic retry) first, else a due scheduled job; only of
    /// the connections in `scope` when given.
    async fn claim_next(&self, scope: Option<&[String]>) -> Result<Option<Execution>> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let lease = inner.lease_from(now);
        if let Some(exec) = inner
            .store
            .claim_due_execution(now, &inner.owner, lease, scope)
            .await?
        {
            return Ok(Some(exec));
        }
        for job in inner.store.due_jobs(now, scope).await? {
            // Move the schedule first: a crash mid-run must not make the job due forever.
            inner
                .store
                .set_job_next_run(&job.id, job.schedule.next_after(now))
                .await?;
            let mode = Engine::mode_for(&job, RunOptions::default());
            match self.start_row(&job, Trigger::Scheduled, mode, None).await {
                Ok(e) => return Ok(Some(e)),
                Err(Error::Conflict(msg)) => {
                    tracing::info!(job = %job.name, "{msg}; skipping this scheduled run");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Run `exec` on the engine's tracker, holding `permit` until it ends; `runs` tracks it
    /// too, so its starter can wait for its own runs only.
    fn spawn_run(
        &self,
        exec: Execution,
        permit: OwnedSemaphorePermit,
        stop: &CancellationToken,
        runs: &TaskTracker,
        ended: &Arc<Notify>,
    ) -> tokio::task::JoinHandle<Option<Execution>> {
        let engine = self.clone();
        let stop = stop.clone();
        let ended = ended.clone();
        self.inner.tracker.spawn(runs.track_future(async move {
            let done = match engine.drive_under(exec, &stop).await {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::error!(error = %e, "execution could not be recorded");
                    None
                }
            };
            drop(permit);
            ended.notify_one();
            done
        }))
    }

    /// One pass: start everything due now (at most [`CONCURRENCY`] at once) and wait for
    /// those runs. Returns the finished executions.
    pub async fn run_due(&self) -> Result<Vec<Execution>> {
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        let stop = self.inner.shutdown.child_token();
        let runs = TaskTracker::new();
        let ended = Arc::new(Notify::new());
        let mut handles = Vec::new();
        let scope = self.claim_scope().await?;
        loop {
            // A permit before a claim: a claimed row never waits for a slot.
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Cancelled)?;
            let Some(exec) = self.claim_next(scope.as_deref()).await? else {
                break;
            };
            handles.push(self.spawn_run(exec, permit, &stop, &runs, &ended));
        }
        let mut done = Vec::new();
        for h in handles {
            match h.await {
                Ok(Some(e)) => done.push(e),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "execution task panicked"),
            }
        }
        Ok(done)
    }

    /// Run the worker until `stop` (or engine shutdown). A supervisor: it takes a slot,
    /// claims one due piece of work and starts it on its own task, so runs of different
    /// jobs proceed independently (a long run never delays another job's schedule). On stop
    /// it cancels its runs and waits until each has recorded how it ended.
    pub async fn run_worker(&self, stop: CancellationToken) -> Result<()> {
        let recovered = self.recover_interrupted().await?;
        if !recovered.is_empty() {
            tracing::warn!(count = recovered.len(), "recovered interrupted executions");
        }
        let inner = self.inner.clone();
        // Runs stop with the worker, and with the engine even if this future is dropped.
        let stop = stop.child_token();
        {
            let (stop, shutdown) = (stop.clone(), inner.shutdown.clone());
            inner.tracker.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        // Beats while the worker runs; it takes itself off the list before this returns.
        let beats = {
            let (engine, stop) = (self.clone(), stop.clone());
            inner
                .tracker
                .spawn(async move { engine.heartbeat(stop).await })
        };
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        let runs = TaskTracker::new();
        let ended = Arc::new(Notify::new());
        let mut last_recovery = inner.clock.now();
        // Another machine's run is taken over once its lease lapses: look as often as that.
        let look = POLL.min(inner.lease);
        // Which connections' runs to take; looked at again as often (a secret stored on this
        // machine meanwhile, a connection added on another).
        let mut scope = self.claim_scope().await?;
        let result = loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                p = limit.clone().acquire_owned() => p.map_err(|_| Error::Cancelled)?,
            };
            let claimed = match self.claim_next(scope.as_deref()).await {
                Ok(c) => c,
                Err(e) => {
                    // A busy or briefly unreadable store must not end the worker: say so
                    // and look again at the next poll.
                    tracing::error!(error = %e, "could not claim due work; trying again");
                    None
                }
            };
            if let Some(exec) = claimed {
                self.spawn_run(exec, permit, &stop, &runs, &ended);
                continue;
            }
            drop(permit);
            let now = inner.clock.now();
            if now - last_recovery >= chrono::Duration::from_std(look).unwrap_or_default() {
                // Another process may have died holding a run since the last look.
                last_recovery = now;
                if let Err(e) = self.recover_interrupted().await {
                    tracing::error!(error = %e, "could not recover interrupted executions");
                }
                match self.claim_scope().await {
                    Ok(s) => scope = s,
                    Err(e) => tracing::error!(error = %e, "could not read this machine's secrets"),
                }
            }
            let wait = match inner.store.next_due().await {
                Ok(Some(t)) if t <= now => Duration::from_millis(200),
                Ok(Some(t)) => until(t, now).min(look),
                Ok(None) | Err(_) => look,
            };
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                _ = inner.clock.sleep(wait) => {}
                _ = inner.worker_wake.notified() => {}
                _ = ended.notified() => {}
            }
        };
        stop.cancel();
        runs.close();
        runs.wait().await;
        let _ = beats.await;
        result
    }
}

/// What a worker of a shared store can run ([`Engine::runnable_connections`]).
#[derive(Debug, Clone, Default)]
pub struct Runnable {
    /// Connections whose secret is in this machine's keychain (or that need none).
    pub can: Vec<Connection>,
    /// The others, each with the secret it lacks here ("client secret", …).
    pub cannot: Vec<(Connection, &'static str)>,
}

fn until(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (t - now).to_std().unwrap_or(Duration::ZERO)
}

/// Whether the owner of a running execution is certainly gone: none recorded, a process of
/// this machine that no longer exists, or, for another machine's process, a lease that
/// lapsed. A live process of this machine keeps its run even past its lease (it may be
/// waiting out a long Retry-After). Never this engine itself.
pub(crate) fn owner_is_gone(
    owner: Option<&str>,
    lease_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    me: &str,
) -> bool {
    let Some(owner) = owner else {
        return true;
    };
    if owner == me {
        return false;
    }
    match owner_parts(owner) {
        None => true,
        Some((host, pid)) if host == hostname() => match pid {
            Some(pid) if pid == std::process::id() => false,
            Some(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            None => true,
        },
        Some(_) => lease_until.is_none_or(|l| l < now),
    }
}

fn owner_parts(owner: &str) -> Option<(&str, Option<u32>)> {
    let mut parts = owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return None;
    };
    Some((host, pid.parse().ok()))
}

/// Who runs an execution, for "already running" messages.
pub(crate) fn describe_owner(owner: Option<&str>, me: &str) -> String {
    match owner {
        Some(o) if o == me => "in this process".into(),
        Some(o) => match owner_parts(o) {
            Some((host, Some(pid))) if host == hostname() => format!("by process {pid}"),
            Some((host, Some(pid))) => format!("by process {pid} on {host}"),
            _ => "by another process".into(),
        },
        None => "by an unknown process".into(),
    }
}

/// This machine's name, for owner tags.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
