//! Runs one execution of a pull job: streams pages, maps and writes records under every
//! record-level rule (R-R1–R-R4, R-E5), keeps the breaker (R-B), the failure memory (R-D)
//! and the counts, and decides what follows (R-A).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::connector::spec::{normalised, TimeFormat};
use crate::connector::{
    record_id, ChangeTime, Connector, FetchedPage, Pager, RequestPolicy, RequestStats,
};
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::mapping::{natural_key, serialize_and_hash, Mapped, MappingPlan, RecordFailure};
use crate::model::{
    AlertKind, Connection, ConnectionStatus, Execution, ExecutionStatus, FailureKind, Job, Mode,
    RecordErrorKind, Trigger,
};
use crate::policy::{Backoff, Breaker, RecordState, RetryDecision, RetrySchedule};
use crate::record::{Fields, Record};
use crate::store::{
    AlertScope, ErrorInsert, ExecutionEnd, ExecutionFinish, NewAlert, NewAudit, NewExecution,
    PageWrite, Progress, RecordUpsert, RefRow, RefUpsert, Store,
};

/// How long a running execution's owner may go without renewing its lease before another
/// machine's worker counts it as dead. A run renews it with every page it commits and, while
/// it waits (a long Retry-After, a slow provider), every third of it ([`Engine::drive`]).
pub(crate) const LEASE: Duration = Duration::from_secs(60);

/// Most failing records re-attempted by id in one incremental run.
const REATTEMPT_LIMIT: i64 = 1000;

enum End {
    Completed,
    Tripped(String),
}

/// What one record became.
enum Outcome {
    Created,
    Updated,
    Skipped,
    Failed(RecordFailure),
    Excluded,
}

/// A mapped record, with its stored form when nothing a lookup finds can change it.
struct Prepared {
    mapped: Mapped,
    encoded: Option<Encoded>,
}

impl Prepared {
    /// Records without references are serialised and hashed at once, before the page's
    /// lookups; a resolved reference is written into the fields, so those wait.
    fn new(mapped: Mapped, natural_keys: &[String]) -> Self {
        let encoded = mapped
            .references
            .is_empty()
            .then(|| Encoded::of(&mapped.fields, natural_keys));
        Prepared { mapped, encoded }
    }

    /// The natural key the record would be stored under (its references not yet resolved).
    fn natural_key(&self, natural_keys: &[String]) -> Option<String> {
        match &self.encoded {
            Some(e) => e.key.clone(),
            None => natural_key(&self.mapped.fields, natural_keys),
        }
    }

    /// The stored form, once any references are resolved into the fields.
    fn into_encoded(self, natural_keys: &[String]) -> Encoded {
        self.encoded
            .unwrap_or_else(|| Encoded::of(&self.mapped.fields, natural_keys))
    }
}

/// A mapped record as stored: its text, content hash and natural key.
struct Encoded {
    data: String,
    hash: String,
    key: Option<String>,
}

impl Encoded {
    fn of(fields: &serde_json::Map<String, Value>, natural_keys: &[String]) -> Self {
        let (data, hash) = serialize_and_hash(fields);
        Encoded {
            data,
            hash,
            key: natural_key(fields, natural_keys),
        }
    }
}

/// The next page being fetched. Dropping it (the run stopped early) cancels the fetch's
/// request and waits; a token refresh already under way is not cancellable and completes.
struct NextPage {
    task: tokio::task::JoinHandle<(Pager, RequestStats, Result<Option<FetchedPage>>)>,
    stop: CancellationToken,
}

impl Drop for NextPage {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) struct Run {
    inner: Arc<Inner>,
    exec: Execution,
    job: Job,
    conn: Connection,
    /// Shared with the task that fetches the next page while this one is written.
    connector: Arc<Connector>,
    plan: MappingPlan,
    policy: RequestPolicy,
    stats: RequestStats,
    progress: Progress,
    breaker: Breaker,
    cancel: CancellationToken,
    /// What `cancel` descends from: the worker's stop or the engine's shutdown. When it is
    /// what stopped the run, the process is going away and the run ends as after a crash
    /// (interrupted, retried), not as the admin's cancel.
    stopping: CancellationToken,
    id_field: String,
    /// Where a record fetched by id holds its change time (when the listed item is the
    /// record), and in what format; listed pages bring their records' times themselves.
    change_field: Option<(String, TimeFormat)>,
    watermark: Option<(DateTime<Utc>, String)>,
    observed: BTreeSet<String>,
    /// Dead-letter retry (R-D4): the records that run even though they are dead letters,
    /// all in this one execution.
    force: Vec<String>,
    /// How each of them failed this time, for its audit entry.
    forced_errors: HashMap<String, String>,
    /// Records this run moved to Failed Records.
    dead_lettered_total: u64,
    /// Records that became dead letters in the page being decided (announced once committed).
    dead_lettered: Vec<String>,
    /// The page write still under way, at most one: its task holds the store's writer, and
    /// gives back the progress it stored.
    writing: Option<tokio::task::JoinHandle<Result<Progress>>>,
    /// Pages this run has sent to be written.
    pages_written: u64,
    /// The progress the last settled write stored: after a failed page write the run goes
    /// back to it, so its counts never include records that were not stored.
    committed: Progress,
}

impl Run {
    /// Prepare a run of an execution already marked running.
    pub(crate) async fn prepare(
        inner: Arc<Inner>,
        mut exec: Execution,
        cancel: CancellationToken,
        stopping: CancellationToken,
        records: Option<Vec<String>>,
    ) -> Result<Run> {
        let job = inner.store.job(&exec.job_id).await?;
        if exec.mode == Mode::Incremental && job.watermark.is_none() {
            // Nothing to be incremental from yet (R-A3: since the last successful run).
            exec.mode = Mode::Full;
            inner.store.set_execution_mode(&exec.id, Mode::Full).await?;
        }
        let conn = inner.store.connection(&job.connection_id).await?;
        let connector = {
            let (shared, exec_id, job_id) = (inner.clone(), exec.id.clone(), job.id.clone());
            let sink: crate::connector::WaitSink = Arc::new(move |reason, until| {
                let inner = &shared;
                // Shown at once (event) and to whoever opens the run later (its row).
                inner.emit(Event::ExecutionWaiting {
                    execution_id: exec_id.clone(),
                    job_id: job_id.clone(),
                    reason: reason.clone(),
                    until: until.to_rfc3339(),
                });
                let (store, id) = (inner.store.clone(), exec_id.clone());
                inner.tracker.spawn(async move {
                    if let Err(e) = store.set_waiting(&id, &reason, until).await {
                        tracing::warn!(error = %e, "could not record what the run waits for");
                    }
                });
            });
            inner.connector(&conn).await?.with_wait_sink(sink)
        };
        let entity = connector.spec().entity(&job.entity)?.clone();
        let plan = MappingPlan::new(&job.settings.mappings)?;
        let now = inner.clock.now();
        let policy = RequestPolicy {
            backoff: Backoff(
                job.settings
                    .backoff_secs
                    .iter()
                    .map(|s| Duration::from_secs(*s))
                    .collect(),
            ),
            request_timeout: Duration::from_secs(job.settings.request_timeout_secs),
            max_rate_limit_waits: job.settings.max_rate_limit_waits,
            // A stored timeout too long for a date is no deadline at all.
            deadline: i64::try_from(job.settings.timeout_secs)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let force = match (exec.trigger, records) {
            (Trigger::RecordRetry, Some(records)) => records,
            (Trigger::RecordRetry, None) => exec.record_id.clone().into_iter().collect(),
            _ => Vec::new(),
        };
        let progress = Progress {
            counts: exec.counts,
            excluded: exec.excluded,
            ..Progress::default()
        };
        Ok(Run {
            progress: progress.clone(),
            inner,
            exec,
            job,
            conn,
            connector: Arc::new(connector),
            plan,
            policy,
            stats: RequestStats::default(),
            breaker: Breaker::default(),
            cancel,
            stopping,
            id_field: entity.id.clone(),
            change_field: entity
                .incremental_config()
                .filter(|i| i.record.is_none())
                .map(|i| (i.field, i.field_format)),
            watermark: None,
            observed: BTreeSet::new(),
            force,
            forced_errors: HashMap::new(),
            dead_lettered_total: 0,
            dead_lettered: Vec::new(),
            writing: None,
            pages_written: 0,
            committed: progress,
        })
    }

    /// Run to the end and record how it ended. Never returns an error for provider
    /// failures: those become the execution's status.
    pub(crate) async fn run(mut self) -> Result<Execution> {
        self.inner.emit(Event::ExecutionStarted {
            execution_id: self.exec.id.clone(),
            job_id: self.job.id.clone(),
            job_name: self.job.name.clone(),
        });
        // Held until the run has ended: its last page write settles in `finish`.
        let records = self
            .inner
            .store
            .lock_records(&self.conn.id, &self.job.entity)
            .await;
        let (result, records) = match records {
            Ok(records) => {
                let result = if self.force.is_empty() {
                    self.pull().await
                } else {
                    self.retry_records().await
                };
                (result, Some(records))
            }
            Err(e) => (Err(e), None),
        };
        let ended = self.finish(result).await;
        if let Some(records) = records {
            records.release().await;
        }
        ended
    }

    fn mode(&self) -> Mode {
        self.exec.mode
    }

    async fn pull(&mut self) -> Result<End> {
        let since = match self.mode() {
            Mode::Incremental => self.job.watermark.clone(),
            Mode::Full => None,
        };
        let pager = self.connector.pager(
            &self.job.entity,
            since.as_deref(),
            self.job.settings.batch_size,
        )?;
        // Page n+1 is fetched and parsed while page n is mapped and written, so the
        // provider's latency and SQLite's work overlap. The fetch is a task of its own: if
        // this run stops early it finishes on its own rather than being dropped halfway
        // through a token refresh whose rotated refresh token must still be stored.
        self.progress.batch_in_progress = Some(pager.position());
        let mut fetch = self.spawn_fetch(pager);
        loop {
            let (pager, stats, page) = (&mut fetch.task)
                .await
                .map_err(|e| Error::Store(format!("page fetch task failed: {e}")))?;
            self.stats = stats;
            let Some(page) = page? else { break };
            let upcoming = pager.position();
            // A run whose records are failing fetches no page ahead: if its breaker trips,
            // the provider has seen no request past the page that tripped it (R-B2).
            let healthy = {
                let c = self.progress.counts;
                c.processed > 0 && c.failed * 4 < c.processed
            };
            let ahead = if healthy {
                Ok(self.spawn_fetch(pager))
            } else {
                Err(pager)
            };
            if let Some(note) = self.process_page(page).await? {
                return Ok(End::Tripped(note));
            }
            self.check_time()?;
            self.progress.batch_in_progress = Some(upcoming);
            fetch = match ahead {
                Ok(f) => f,
                Err(pager) => self.spawn_fetch(pager),
            };
        }
        if self.mode() == Mode::Incremental && self.connector.can_fetch_one(&self.job.entity) {
            if let Some(note) = self.reattempt_failing().await? {
                return Ok(End::Tripped(note));
            }
        }
        Ok(End::Completed)
    }

    /// Fetch the pager's next page in a tracked task; the pager and the request statistics
    /// come back with the page.
    fn spawn_fetch(&self, mut pager: Pager) -> NextPage {
        let connector = self.connector.clone();
        let policy = self.policy.clone();
        let stop = self.cancel.child_token();
        let cancel = stop.clone();
        let mut stats = self.stats;
        let task = self.inner.tracker.spawn(async move {
            let page = pager
                .next_page(&connector, &policy, &mut stats, &cancel)
                .await;
            (pager, stats, page)
        });
        NextPage { task, stop }
    }

    fn check_time(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.inner.clock.now() >= self.policy.deadline {
            return Err(Error::TimedOut(format!(
                "the execution timeout ({}) passed",
                crate::model::format_duration(self.job.settings.timeout_secs)
            )));
        }
        Ok(())
    }

    /// Records that failed before and were not seen in this run: fetch each fresh and try
    /// again, so they can recover or reach the dead letter queue (R-D1 decision).
    async fn reattempt_failing(&mut self) -> Result<Option<String>> {
        // The failing ids are read on a reader: let the last page's write land first.
        self.settle().await?;
        let ids = self
            .inner
            .store
            .failing_ids(&self.conn.id, &self.job.entity, REATTEMPT_LIMIT)
            .await?;
        let pending: Vec<String> = {
            let refs = self
                .inner
                .store
                .refs_for(&self.conn.id, &self.job.entity, &ids)
                .await?;
            ids.into_iter()
                .filter(|id| {
                    refs.get(id)
                        .and_then(|r| r.last_failed_execution.as_deref())
                        != Some(self.exec.id.as_str())
                })
                .collect()
        };
        let batch = self.job.settings.batch_size as usize;
        for (i, chunk) in pending.chunks(batch.max(1)).enumerate() {
            let mut records = Vec::with_capacity(chunk.len());
            for id in chunk {
                self.check_time()?;
                if let Some(r) = self
                    .connector
                    .fetch_one(
                        &self.job.entity,
                        id,
                        &self.policy,
                        &mut self.stats,
                        &self.cancel,
                    )
                    .await?
                {
                    records.push(r);
                }
            }
            let position = format!("re-attempt of failed records, batch {}", i + 1);
            self.progress.batch_in_progress = Some(position.clone());
            if let Some(note) = self
                .process_page(FetchedPage {
                    records,
                    change_times: Vec::new(),
                    number: 0,
                    position,
                })
                .await?
            {
                return Ok(Some(note));
            }
        }
        Ok(None)
    }

    /// R-D4: the records asked for, one after the other, in this one execution.
    async fn retry_records(&mut self) -> Result<End> {
        for record in self.force.clone() {
            self.check_time()?;
            if let End::Tripped(note) = self.retry_one(&record).await? {
                return Ok(End::Tripped(note));
            }
        }
        Ok(End::Completed)
    }

    /// R-D4: one record, fresh from the source when the connector can fetch it by id,
    /// else from the payload stored when it last failed.
    async fn retry_one(&mut self, record: &str) -> Result<End> {
        let stored = self
            .inner
            .store
            .failed_record(&self.conn.id, &self.job.entity, record)
            .await?;
        let fresh = if self.connector.can_fetch_one(&self.job.entity) {
            self.connector
                .fetch_one(
                    &self.job.entity,
                    record,
                    &self.policy,
                    &mut self.stats,
                    &self.cancel,
                )
                .await?
        } else {
            stored
                .as_ref()
                .and_then(|s| s.last_payload.as_ref())
                .map(Record::from_value)
        };
        let page = match fresh {
            Some(r) => vec![r],
            None => {
                // The provider no longer has it: that is this attempt's failure.
                let mut w = PageWrite::default();
                let failure = RecordFailure::new(
                    RecordErrorKind::ReferenceNotFound,
                    None,
                    format!("Record '{record}' no longer exists at the provider"),
                );
                let refs = self
                    .inner
                    .store
                    .refs_for(&self.conn.id, &self.job.entity, &[record.to_string()])
                    .await?;
                self.progress.counts.processed += 1;
                self.fail(&mut w, record, refs.get(record), None, failure);
                self.write(w, None).await?;
                return Ok(End::Completed);
            }
        };
        self.progress.batch_in_progress = Some(format!("record {record}"));
        match self
            .process_page(FetchedPage {
                records: page,
                change_times: Vec::new(),
                number: 1,
                position: format!("record {record}"),
            })
            .await?
        {
            Some(note) => Ok(End::Tripped(note)),
            None => Ok(End::Completed),
        }
    }

    /// Commit a page (records, references, errors and progress in one transaction) in a task
    /// of its own, so the next page is mapped while SQLite writes this one. The writer is
    /// taken before this returns: the run's next lookups queue behind the write and see it.
    /// Its events go out once it has committed; `settle` reports how it ended.
    async fn write(&mut self, w: PageWrite, batch: Option<String>) -> Result<()> {
        self.settle().await?;
        let now = self.inner.clock.now();
        self.progress.request_retries = self.stats.retries;
        self.progress.rate_limit_waits = self.stats.rate_limit_waits;
        self.progress.lease_until = Some(self.inner.lease_from(now));
        let mut writer = self.inner.store.page_writer().await?;
        let inner = self.inner.clone();
        let progress = self.progress.clone();
        let dead_lettered = std::mem::take(&mut self.dead_lettered);
        let (conn_id, entity) = (self.conn.id.clone(), self.job.entity.clone());
        let (exec_id, job_id) = (self.exec.id.clone(), self.job.id.clone());
        self.pages_written += 1;
        // After pages 1, 4, 16, 64, …: a table this run is filling may need new planner
        // statistics (PostgreSQL), checked cheaply, gathered only when it grew.
        let check_stats =
            self.pages_written.is_power_of_two() && self.pages_written.trailing_zeros() % 2 == 0;
        let commit = async move {
            let written = Store::write_page(
                writer.conn(),
                &conn_id,
                &entity,
                &exec_id,
                now,
                &w,
                &progress,
            )
            .await;
            drop(writer);
            if let Err(e) = written {
                // Logged here too: a run stopped meanwhile may never settle this task.
                tracing::error!(execution = %exec_id, error = %e, "a page write failed");
                return Err(e);
            }
            if check_stats {
                if let Err(e) = inner.store.refresh_planner_stats().await {
                    tracing::warn!(error = %e, "planner statistics not refreshed");
                }
            }
            for record_id in dead_lettered {
                inner.emit(Event::DeadLettered {
                    job_id: job_id.clone(),
                    record_id,
                });
            }
            if let Some(batch) = batch {
                inner.emit(Event::ExecutionProgress {
                    execution_id: exec_id,
                    job_id,
                    counts: progress.counts,
                    batch,
                });
            }
            Ok(progress)
        };
        self.writing = Some(self.inner.tracker.spawn(commit));
        Ok(())
    }

    /// Wait for the page write under way, if any; its failure is the run's.
    async fn settle(&mut self) -> Result<()> {
        if let Some(task) = self.writing.take() {
            let written = task
                .await
                .map_err(|e| Error::Store(format!("page write task failed: {e}")));
            match written.and_then(|w| w) {
                Ok(progress) => self.committed = progress,
                Err(e) => {
                    // Pages decided after the one that failed were never stored: count only
                    // what the store holds.
                    self.progress.counts = self.committed.counts;
                    self.progress.excluded = self.committed.excluded;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Process one page; returns the breaker note if it tripped.
    async fn process_page(&mut self, page: FetchedPage) -> Result<Option<String>> {
        let store = &self.inner.store;
        let entity = self.job.entity.clone();
        // Each record's top-level fields, borrowed from its text: read for the id, the
        // observed field names, the mapping and the watermark.
        let fields: Vec<Fields<'_>> = page.records.iter().map(Record::fields).collect();
        // Ids first: one query for all the page's references.
        let mut ids = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            ids.push(
                record_id(f, &self.id_field, "")
                    .unwrap_or_else(|_| format!("#{}:{}", page.number, i + 1)),
            );
        }
        // Every record, not the first of each page, so a field only some records carry is seen
        // whenever any record of the run has it. Lookups before inserts keep this
        // allocation-free once the set is complete.
        for key in fields.iter().flat_map(Fields::keys) {
            if !self.observed.contains(key) {
                self.observed.insert(key.to_string());
            }
        }
        // Map every record before the lookups: the previous page's write may still hold the
        // store's writer, and this is the work that overlaps it.
        let keys = &self.job.settings.natural_keys;
        let prepared: Vec<std::result::Result<Prepared, RecordFailure>> = fields
            .iter()
            .zip(&ids)
            .map(|(f, id)| {
                if id.starts_with('#') {
                    Err(RecordFailure::new(
                        RecordErrorKind::SchemaMismatch,
                        Some(&self.id_field),
                        format!("Expected field '{}' is missing", self.id_field),
                    ))
                } else {
                    self.plan.apply(f).map(|m| Prepared::new(m, keys))
                }
            })
            .collect();
        let refs = store.refs_for(&self.conn.id, &entity, &ids).await?;

        // Set excluded records aside (R-D: dead letters and dismissed records are not touched);
        // gather references and natural keys to look up.
        let mut mapped: Vec<Option<std::result::Result<Prepared, RecordFailure>>> =
            Vec::with_capacity(ids.len());
        let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
        // A provider that lists one record twice in a page (issue 13 D2) must not get two
        // local records for one external id: the first copy is processed, each repeat is
        // skipped and logged.
        let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
        let mut repeats: HashSet<usize> = HashSet::new();
        for (i, (m, id)) in prepared.into_iter().zip(&ids).enumerate() {
            if !id.starts_with('#') && !seen.insert(id.as_str()) {
                repeats.insert(i);
                mapped.push(None);
                continue;
            }
            let excluded =
                refs.get(id).is_some_and(|x| x.state().excluded()) && !self.force.contains(id);
            if excluded {
                mapped.push(None);
                continue;
            }
            if let Ok(p) = &m {
                for r in &p.mapped.references {
                    wanted
                        .entry(r.entity.clone())
                        .or_default()
                        .push(r.external_id.clone());
                }
            }
            mapped.push(Some(m));
        }
        let mut resolved: HashMap<(String, String), String> = HashMap::new();
        for (ref_entity, ext_ids) in wanted {
            for (ext, local) in store
                .local_ids(&self.conn.id, &ref_entity, &ext_ids)
                .await?
            {
                resolved.insert((ref_entity.clone(), ext), local);
            }
        }
        let dup_on = self.job.settings.duplicate_detection;
        let mut existing_keys: HashSet<String> = HashSet::new();
        if dup_on {
            let candidates: Vec<String> = mapped
                .iter()
                .zip(&ids)
                .filter(|(_, id)| refs.get(*id).and_then(|r| r.local_id.as_ref()).is_none())
                .filter_map(|(m, _)| match m {
                    Some(Ok(p)) => p.natural_key(keys),
                    _ => None,
                })
                .collect();
            existing_keys = store.existing_natural_keys(&entity, &candidates).await?;
        }

        // Decide each record in order, checking the breaker after every one (R-B1).
        let mut w = PageWrite::default();
        let mut tripped = None;
        let records = page.records.iter().zip(&fields);
        for (i, (((raw, fields), id), m)) in records.zip(&ids).zip(mapped).enumerate() {
            let existing = refs.get(id);
            let outcome = match m {
                None if repeats.contains(&i) => {
                    w.errors.push(ErrorInsert {
                        record_id: id.clone(),
                        kind: RecordErrorKind::DuplicateConflict,
                        message: format!(
                            "The provider sent {} '{id}' more than once in one page; the first copy was used and this one skipped",
                            singular(&entity)
                        ),
                        field: Some(self.id_field.clone()),
                    });
                    Outcome::Skipped
                }
                None => Outcome::Excluded,
                Some(Err(f)) => Outcome::Failed(f),
                Some(Ok(mut prepared)) => {
                    let m = &mut prepared.mapped;
                    let mut missing = None;
                    for p in &m.references {
                        match resolved.get(&(p.entity.clone(), p.external_id.clone())) {
                            Some(local) => {
                                m.fields
                                    .insert(p.target.clone(), Value::String(local.clone()));
                            }
                            None => {
                                missing = Some(RecordFailure::new(
                                    RecordErrorKind::ReferenceNotFound,
                                    Some(&p.target),
                                    format!(
                                        "Referenced {} '{}' does not exist at the target",
                                        singular(&p.entity),
                                        p.external_id
                                    ),
                                ));
                                break;
                            }
                        }
                    }
                    match missing {
                        Some(f) => Outcome::Failed(f),
                        None => {
                            let e = prepared.into_encoded(&self.job.settings.natural_keys);
                            self.decide(&mut w, id, existing, e, &mut existing_keys, dup_on)
                        }
                    }
                }
            };
            match outcome {
                Outcome::Excluded => {
                    self.progress.excluded += 1;
                    continue;
                }
                Outcome::Failed(f) => {
                    self.fail(&mut w, id, existing, Some(raw), f);
                }
                Outcome::Created => self.progress.counts.created += 1,
                Outcome::Updated => self.progress.counts.updated += 1,
                Outcome::Skipped => self.progress.counts.skipped += 1,
            }
            self.progress.counts.processed += 1;
            self.track_watermark(fields, page.change_times.get(i).cloned().flatten());
            let c = self.progress.counts;
            if self.breaker.tripped(c.processed, c.failed) {
                tripped = Some(Breaker::note(c.processed, c.failed));
                break;
            }
        }
        self.write(w, Some(page.position)).await?;
        Ok(tripped)
    }

    /// Create, update or skip a mapped record whose references resolved.
    fn decide(
        &self,
        w: &mut PageWrite,
        id: &str,
        existing: Option<&RefRow>,
        encoded: Encoded,
        existing_keys: &mut HashSet<String>,
        dup_on: bool,
    ) -> Outcome {
        let now = self.inner.clock.now();
        let Encoded { data, hash, key } = encoded;
        let linked = existing.and_then(|r| r.local_id.clone());
        let was_failing = existing.is_some_and(|r| r.state() != RecordState::Ok);
        let ok_ref = |local_id: Option<String>, hash: Option<String>| RefUpsert {
            external_id: id.to_string(),
            local_id,
            content_hash: hash,
            last_synced_at: Some(now),
            strikes: Default::default(),
            first_failed_at: None,
            last_failed_at: None,
            last_error: None,
            last_payload: None,
        };
        match linked {
            Some(local)
                if existing.and_then(|r| r.content_hash.as_deref()) == Some(hash.as_str()) =>
            {
                if was_failing {
                    w.refs.push(ok_ref(Some(local), Some(hash)));
                }
                Outcome::Skipped
            }
            Some(local) => {
                w.records.push(RecordUpsert {
                    id: local.clone(),
                    natural_key: key,
                    data,
                    content_hash: hash.clone(),
                });
                w.refs.push(ok_ref(Some(local), Some(hash)));
                Outcome::Updated
            }
            None => {
                if let Some(k) = &key {
                    if dup_on && existing_keys.contains(k) {
                        w.errors.push(ErrorInsert {
                            record_id: id.to_string(),
                            kind: RecordErrorKind::DuplicateConflict,
                            message: format!(
                                "A {} with {} '{}' already exists at the target; skipped",
                                singular(&self.job.entity),
                                self.job.settings.natural_keys.join("+"),
                                k.replace('\u{1f}', "+")
                            ),
                            field: self.job.settings.natural_keys.first().cloned(),
                        });
                        if was_failing {
                            w.refs.push(ok_ref(None, None));
                        }
                        return Outcome::Skipped;
                    }
                    existing_keys.insert(k.clone());
                }
                // Time-ordered ids append to the records b-tree instead of landing at random pages.
                let local = uuid::Uuid::now_v7().to_string();
                w.records.push(RecordUpsert {
                    id: local.clone(),
                    natural_key: key,
                    data,
                    content_hash: hash.clone(),
                });
                w.refs.push(ok_ref(Some(local), Some(hash)));
                Outcome::Created
            }
        }
    }

    /// Count a failure against the record: error log row and its failure memory (R-D1).
    fn fail(
        &mut self,
        w: &mut PageWrite,
        id: &str,
        existing: Option<&RefRow>,
        raw: Option<&Record>,
        f: RecordFailure,
    ) {
        let now = self.inner.clock.now();
        self.progress.counts.failed += 1;
        let summary = format!("{} - {}", f.kind, f.message);
        if self.force.iter().any(|f| f == id) {
            self.forced_errors.insert(id.to_string(), summary.clone());
        }
        w.errors.push(ErrorInsert {
            record_id: id.to_string(),
            kind: f.kind,
            message: f.message,
            field: f.field,
        });
        if id.starts_with('#') {
            return; // no provider id: nothing to remember it by
        }
        let before = existing.map(RefRow::strikes).unwrap_or_default();
        let after = before.after_failure(&self.exec.id);
        if after.state == RecordState::DeadLetter && before.state != RecordState::DeadLetter {
            self.dead_lettered_total += 1;
            self.dead_lettered.push(id.to_string());
        }
        let first_failed = existing
            .and_then(|r| r.first_failed_at)
            .map(crate::clock::from_millis)
            .filter(|_| before.count > 0);
        w.refs.push(RefUpsert {
            external_id: id.to_string(),
            local_id: existing.and_then(|r| r.local_id.clone()),
            content_hash: existing.and_then(|r| r.content_hash.clone()),
            last_synced_at: existing
                .and_then(|r| r.last_synced_at)
                .map(crate::clock::from_millis),
            strikes: after,
            first_failed_at: Some(first_failed.unwrap_or(now)),
            last_failed_at: Some(now),
            last_error: Some(summary),
            last_payload: raw
                .map(|r| r.text().to_string())
                .or_else(|| existing.and_then(|r| r.last_payload.clone())),
        });
    }

    /// The watermark is the newest change time of the processed records: the one the page
    /// read from the listed item, else (records fetched by id) the record's own field.
    fn track_watermark(&mut self, fields: &Fields<'_>, listed: Option<ChangeTime>) {
        let time = listed.or_else(|| {
            let (field, format) = self.change_field.as_ref()?;
            let v = fields.at(field)?;
            let t = format.read(&v)?;
            Some(match (format, v) {
                (TimeFormat::Rfc3339, Value::String(s)) => (t, s),
                _ => (t, normalised(t)),
            })
        });
        let Some((t, text)) = time else {
            return;
        };
        if self.watermark.as_ref().is_none_or(|(w, _)| t > *w) {
            self.watermark = Some((t, text));
        }
    }

    async fn finish(mut self, result: Result<End>) -> Result<Execution> {
        // The last page's write must land before the run is recorded as ended; if it failed,
        // that is how the run ended.
        let result = match (self.settle().await, result) {
            (Ok(()), r) => r,
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(first)) => {
                tracing::warn!(execution = %self.exec.id, error = %e, "the last page write failed too");
                Err(first)
            }
        };
        let inner = self.inner.clone();
        let now = inner.clock.now();
        self.progress.request_retries = self.stats.retries;
        self.progress.rate_limit_waits = self.stats.rate_limit_waits;
        self.progress.lease_until = None;
        let (status, kind, note) = match &result {
            Ok(End::Completed) if self.progress.counts.failed > 0 => {
                (ExecutionStatus::CompletedWithErrors, None, None)
            }
            Ok(End::Completed) => (ExecutionStatus::Completed, None, None),
            Ok(End::Tripped(note)) => (
                ExecutionStatus::Failed,
                Some(FailureKind::CircuitBreaker),
                Some(note.clone()),
            ),
            Err(Error::Cancelled) if self.stopping.is_cancelled() => (
                ExecutionStatus::Failed,
                Some(FailureKind::Interrupted),
                Some(crate::worker::INTERRUPTED.to_string()),
            ),
            Err(e) => {
                let (status, kind) = classify(e);
                (status, Some(kind), Some(e.to_string()))
            }
        };
        // Where a failed or timed-out run stopped stays visible (R-E4); a finished run has
        // no batch in progress.
        if status.is_success() {
            self.progress.batch_in_progress = None;
        }
        let finish = ExecutionFinish {
            status,
            failure_kind: kind,
            note: note.clone(),
            progress: self.progress.clone(),
            finished_at: now,
        };
        // Everything the end decides is written in one transaction; events go out after it.
        let mut end = ExecutionEnd::default();
        let mut events = Vec::new();
        let record_retry = self.exec.trigger == Trigger::RecordRetry;
        if status.is_success() && !record_retry {
            if let Some((_, w)) = &self.watermark {
                end.watermark = Some((self.job.id.clone(), w.clone()));
            }
            end.supersede_queued = Some(self.job.id.clone());
        }
        if !self.observed.is_empty() {
            end.observed = Some((
                self.conn.id.clone(),
                self.job.entity.clone(),
                self.observed.iter().cloned().collect(),
            ));
        }
        let alerts = &self.job.settings.alerts;
        if let Err(e @ (Error::AuthExpired { .. } | Error::MissingSecret { .. })) = &result {
            let detail = e.to_string();
            end.connection_status = Some((
                self.conn.id.clone(),
                ConnectionStatus::Expired,
                Some(detail.clone()),
            ));
            if alerts.on_connection_expired {
                end.alerts.push(NewAlert {
                    kind: AlertKind::ConnectionExpired,
                    title: format!("Connection '{}' needs re-authentication", self.conn.name),
                    body: format!("{detail}. Job '{}' failed; re-authenticate the connection and run it again.", self.job.name),
                    job_id: Some(self.job.id.clone()),
                    execution_id: Some(self.exec.id.clone()),
                    connection_id: Some(self.conn.id.clone()),
                });
            }
            events.push(Event::ConnectionExpired {
                connection_id: self.conn.id.clone(),
                connection_name: self.conn.name.clone(),
                detail,
            });
        }
        if let Ok(End::Tripped(note)) = &result {
            if alerts.on_circuit_breaker {
                end.alerts.push(NewAlert {
                    kind: AlertKind::CircuitBreaker,
                    title: format!(
                        "'{}' stopped early: most records were failing",
                        self.job.name
                    ),
                    body: note.clone(),
                    job_id: Some(self.job.id.clone()),
                    execution_id: Some(self.exec.id.clone()),
                    connection_id: Some(self.conn.id.clone()),
                });
            }
            events.push(Event::BreakerTripped {
                execution_id: self.exec.id.clone(),
                job_id: self.job.id.clone(),
                job_name: self.job.name.clone(),
                note: note.clone(),
            });
        }
        if status == ExecutionStatus::CompletedWithErrors
            && alerts.on_completed_with_errors
            && !record_retry
        {
            end.alerts.push(NewAlert {
                kind: AlertKind::CompletedWithErrors,
                title: format!(
                    "'{}' completed with {} failed record(s)",
                    self.job.name, self.progress.counts.failed
                ),
                body: "Open the execution to see which records failed and why.".into(),
                job_id: Some(self.job.id.clone()),
                execution_id: Some(self.exec.id.clone()),
                connection_id: Some(self.conn.id.clone()),
            });
        }
        match status {
            ExecutionStatus::Completed if !record_retry => {
                end.resolve.push((
                    AlertScope::JobClean(self.job.id.clone()),
                    "A later run completed without errors".into(),
                ));
            }
            ExecutionStatus::CompletedWithErrors if !record_retry => {
                end.resolve.push((
                    AlertScope::JobRan(self.job.id.clone()),
                    "A later run completed".into(),
                ));
            }
            _ => {}
        }
        if status.is_success() {
            // The provider took its credentials: whatever said they had expired is over.
            end.resolve.push((
                AlertScope::Connection(self.conn.id.clone()),
                "The connection worked again".into(),
            ));
        }
        if self.dead_lettered_total > 0 {
            let n = self.dead_lettered_total;
            if alerts.on_dead_letters {
                end.alerts.push(NewAlert {
                    kind: AlertKind::DeadLetters,
                    title: format!(
                        "{n} {} of '{}' moved to Failed Records",
                        if n == 1 { "record" } else { "records" },
                        self.job.name
                    ),
                    body: "They failed in three runs in a row and are no longer tried automatically. Open Failed Records to retry or dismiss them.".into(),
                    job_id: Some(self.job.id.clone()),
                    execution_id: Some(self.exec.id.clone()),
                    connection_id: Some(self.conn.id.clone()),
                });
            }
            events.push(Event::RecordsDeadLettered {
                execution_id: self.exec.id.clone(),
                job_id: self.job.id.clone(),
                job_name: self.job.name.clone(),
                count: n,
            });
        }
        if !self.force.is_empty() {
            // R-D4's audit entries commit with the retry's effect, so a crash cannot leave a
            // retried record without its entry.
            for record in &self.force {
                let error = match &result {
                    Ok(End::Completed) => self.forced_errors.get(record).cloned(),
                    _ => self
                        .forced_errors
                        .get(record)
                        .cloned()
                        .or_else(|| note.clone()),
                };
                end.audit.push(NewAudit {
                    actor: inner.actor.clone(),
                    action: "dead_letter.retry",
                    subject: format!("{} {record} (job {})", self.job.entity, self.job.name),
                    note: error,
                });
            }
            end.resolve.push((
                AlertScope::DeadLettersCleared(
                    self.job.id.clone(),
                    self.conn.id.clone(),
                    self.job.entity.clone(),
                ),
                "No records wait in Failed Records".into(),
            ));
        } else {
            retry_plan(&self.job, &self.exec, &finish).into_end(&mut end, &mut events);
        }
        end.finish = Some(finish);
        // Only a row still running is ended here: if its lease lapsed and another machine
        // ended it as interrupted meanwhile, that end (and its retry) stands.
        end.only_if_running = true;
        let Some(ended) = inner.store.end_execution(&self.exec.id, &end).await? else {
            tracing::warn!(execution = %self.exec.id, "the execution was ended elsewhere while it ran");
            return inner.store.execution(&self.exec.id).await;
        };
        let exec = ended.execution;
        if !ended.resolved_alerts.is_empty() {
            events.push(Event::AlertsResolved {
                alert_ids: ended.resolved_alerts,
                job_id: Some(self.job.id.clone()),
                connection_id: Some(self.conn.id.clone()),
            });
        }
        // The note is what the execution page shows (errors never carry secrets), so a log
        // read without the app still says why a run failed.
        tracing::info!(execution = %exec.id, job = %self.job.name, status = %status, processed = exec.counts.processed, failed = exec.counts.failed, note = note.as_deref().unwrap_or(""), "execution finished");
        if end.retry.is_some() {
            inner.wake_worker();
        }
        for e in events {
            inner.emit(e);
        }
        inner.emit(Event::ExecutionFinished {
            execution_id: exec.id.clone(),
            job_id: self.job.id.clone(),
            job_name: self.job.name.clone(),
            status: exec.status,
            counts: exec.counts,
            note: exec.note.clone(),
        });
        Ok(exec)
    }
}

/// Status and failure kind for an execution-level error.
fn classify(e: &Error) -> (ExecutionStatus, FailureKind) {
    match e {
        Error::TimedOut(_) => (ExecutionStatus::TimedOut, FailureKind::TimedOut),
        Error::Cancelled => (ExecutionStatus::Cancelled, FailureKind::Cancelled),
        Error::AuthExpired { .. } | Error::MissingSecret { .. } => {
            (ExecutionStatus::Failed, FailureKind::Auth)
        }
        Error::ProviderUnavailable { .. } => {
            (ExecutionStatus::Failed, FailureKind::ProviderUnavailable)
        }
        Error::RateLimited { .. } => (ExecutionStatus::Failed, FailureKind::RateLimited),
        Error::ProviderRejected { .. } => (ExecutionStatus::Failed, FailureKind::Rejected),
        Error::MalformedResponse { .. } => (ExecutionStatus::Failed, FailureKind::Malformed),
        _ => (ExecutionStatus::Failed, FailureKind::Internal),
    }
}

/// What follows an execution's end under R-A1/R-A4: a queued retry, or an alert and an
/// event saying retries are exhausted (or that the run failed, with retries off).
#[derive(Debug, Default)]
pub(crate) struct RetryPlan {
    pub(crate) retry: Option<NewExecution>,
    pub(crate) outcome: Option<&'static str>,
    pub(crate) alert: Option<NewAlert>,
    pub(crate) event: Option<Event>,
}

impl RetryPlan {
    /// Add the plan to an end's transaction and its events.
    pub(crate) fn into_end(self, end: &mut ExecutionEnd, events: &mut Vec<Event>) {
        end.retry = self.retry;
        end.retry_outcome = self.outcome;
        end.alerts.extend(self.alert);
        events.extend(self.event);
    }
}

/// R-A1/R-A4: decide what follows an ended execution. Written by the caller in the same
/// transaction as the end itself. Used by runs and by crash recovery.
pub(crate) fn retry_plan(job: &Job, exec: &Execution, finish: &ExecutionFinish) -> RetryPlan {
    let retryable = matches!(
        finish.status,
        ExecutionStatus::Failed | ExecutionStatus::TimedOut
    );
    let schedule = RetrySchedule(
        job.settings
            .retry_delays_secs
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
    );
    let decision = schedule.decide(
        retryable,
        job.settings.retry_on_failure,
        job.settings.max_retries,
        exec.attempt,
    );
    let note = finish.note.clone();
    match decision {
        RetryDecision::None => RetryPlan {
            outcome: retryable.then_some("off"),
            alert: (retryable && job.settings.alerts.on_failure).then(|| NewAlert {
                kind: AlertKind::ExecutionFailed,
                title: format!("'{}' failed", job.name),
                body: note.unwrap_or_else(|| "The execution failed.".into()),
                job_id: Some(job.id.clone()),
                execution_id: Some(exec.id.clone()),
                connection_id: Some(job.connection_id.clone()),
            }),
            ..RetryPlan::default()
        },
        RetryDecision::Schedule { attempt, delay } => {
            // A delay too large for a date is a delay that never comes: the far future.
            let due = chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| finish.finished_at.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let retry = NewExecution {
                id: uuid::Uuid::new_v4().to_string(),
                job_id: job.id.clone(),
                trigger: Trigger::Retry,
                attempt,
                retry_of: Some(exec.id.clone()),
                status: ExecutionStatus::Queued,
                mode: job.mode,
                record_id: None,
                due_at: due,
                owner: None,
                // Retrying an authentication failure before new credentials cannot help.
                waits_for_reauth: finish.failure_kind == Some(FailureKind::Auth),
            };
            if retry.waits_for_reauth {
                return RetryPlan {
                    retry: Some(retry),
                    ..RetryPlan::default()
                };
            }
            RetryPlan {
                outcome: None,
                event: Some(Event::RetryScheduled {
                    execution_id: exec.id.clone(),
                    job_id: job.id.clone(),
                    retry_execution_id: retry.id.clone(),
                    attempt,
                    due_at: due.to_rfc3339(),
                }),
                retry: Some(retry),
                alert: None,
            }
        }
        RetryDecision::Exhausted => RetryPlan {
            outcome: Some("exhausted"),
            alert: job.settings.alerts.on_retries_exhausted.then(|| NewAlert {
                kind: AlertKind::RetriesExhausted,
                title: format!("'{}' failed after {} attempt(s)", job.name, exec.attempt),
                body: format!(
                    "No more automatic retries. Last failure: {}",
                    note.unwrap_or_else(|| finish.status.to_string())
                ),
                job_id: Some(job.id.clone()),
                execution_id: Some(exec.id.clone()),
                connection_id: Some(job.connection_id.clone()),
            }),
            event: Some(Event::RetriesExhausted {
                execution_id: exec.id.clone(),
                job_id: job.id.clone(),
                job_name: job.name.clone(),
                attempts: exec.attempt,
            }),
            retry: None,
        },
    }
}

/// "customers" → "customer", for messages.
fn singular(entity: &str) -> &str {
    entity.strip_suffix('s').unwrap_or(entity)
}
