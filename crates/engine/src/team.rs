//! What engines sharing one store tell each other (team mode, SPEC §9): that they are alive
//! (a heartbeat, read back as the workers list), and the events each shares so that every
//! desktop hears of a breaker that tripped on a headless worker, once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::from_millis;
use crate::engine::Engine;
use crate::error::Result;
use crate::events::Event;
use crate::model::{owner_name, Worker};
use crate::store::{Store, WorkerRow};

/// How often a running worker says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A worker is alive while its last beat is at most this old: three beats, so one slow
/// write does not make it look stopped.
pub const ALIVE_WITHIN: Duration = Duration::from_secs(45);
/// How often a follower looks for events other engines shared: the latency with which a
/// desktop hears of them.
pub const SHARED_POLL: Duration = Duration::from_secs(2);
/// A follower that was not running skips what is older than this when it starts again: the
/// alerts are in the app; a burst of hour-old notifications would only repeat them.
pub const REPLAY_WITHIN: Duration = Duration::from_secs(3600);
/// Events read per query.
const BATCH: i64 = 200;

impl Engine {
    /// The apps and headless workers that run syncs on this store, the most recently seen
    /// first, each said alive or not here (so every view agrees).
    pub async fn workers(&self) -> Result<Vec<Worker>> {
        let now = self.inner.clock.now();
        let alive = chrono::Duration::from_std(ALIVE_WITHIN).unwrap_or_default();
        let rows = self.inner.store.workers().await?;
        rows.into_iter()
            .map(|r| {
                let seen = from_millis(r.seen_at);
                Ok(Worker {
                    role: r.role.parse()?,
                    this_engine: r.owner == self.inner.owner,
                    alive: now - seen <= alive,
                    name: r.name,
                    host: r.host,
                    started_at: from_millis(r.started_at),
                    last_seen_at: seen,
                })
            })
            .collect()
    }

    /// Say this engine is alive every [`HEARTBEAT`] until `stop`, then take it off the list.
    /// Paced by the runtime's timer, not the engine's clock: a test clock returns every
    /// sleep at once, and this loop would spin.
    pub(crate) async fn heartbeat(&self, stop: CancellationToken) {
        let inner = &self.inner;
        let row = WorkerRow {
            owner: inner.owner.clone(),
            name: owner_name(&inner.owner).to_string(),
            host: crate::worker::hostname(),
            role: inner.role.as_str().to_string(),
            started_at: 0,
            seen_at: 0,
        };
        let mut beats = tokio::time::interval(HEARTBEAT);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = beats.tick() => {}
            }
            if let Err(e) = inner.store.beat_worker(&row, inner.clock.now()).await {
                tracing::warn!(error = %e, "could not say this worker is alive");
            }
        }
        if let Err(e) = inner.store.remove_worker(&inner.owner).await {
            tracing::warn!(error = %e, "could not take this worker off the list");
        }
    }

    /// Where a new follower of the shared events starts: after the newest one.
    pub async fn shared_events_head(&self) -> Result<i64> {
        self.inner.store.shared_events_head().await
    }

    /// Hear the events other engines on this store share (a headless worker's breaker, a
    /// run another desktop started), from after `cursor` (from now when `None`), as events
    /// of this engine: [`Engine::subscribe`] gets them as it gets its own. Looks every
    /// [`SHARED_POLL`] until `stop`; `on_cursor` gets each new cursor, for the caller to keep
    /// so that after a restart nothing is heard twice. Events older than [`REPLAY_WITHIN`]
    /// are passed over, and ones this version cannot read are skipped with a warning.
    pub async fn follow_shared_events(
        &self,
        cursor: Option<i64>,
        stop: CancellationToken,
        mut on_cursor: impl FnMut(i64) + Send,
    ) -> Result<()> {
        let inner = &self.inner;
        let mut cursor = match cursor {
            Some(c) => c,
            None => {
                let head = inner.store.shared_events_head().await?;
                on_cursor(head);
                head
            }
        };
        let oldest = chrono::Duration::from_std(REPLAY_WITHIN).unwrap_or_default();
        loop {
            match inner.store.shared_events_after(cursor, BATCH).await {
                Ok(rows) => {
                    let full = rows.len() as i64 == BATCH;
                    let now = inner.clock.now();
                    let moved = !rows.is_empty();
                    for r in rows {
                        cursor = r.id;
                        // Its own events this engine sent when it raised them.
                        if r.origin == inner.owner || now - from_millis(r.at) > oldest {
                            continue;
                        }
                        match serde_json::from_str::<Event>(&r.body) {
                            Ok(e) => inner.hear(e),
                            Err(e) => {
                                tracing::warn!(id = r.id, error = %e, "a shared event this version cannot read was skipped");
                            }
                        }
                    }
                    if moved {
                        on_cursor(cursor);
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the events other workers shared")
                }
            }
            // The runtime's timer, as for the heartbeat: a test clock would spin this loop.
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = inner.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(SHARED_POLL) => {}
            }
        }
    }
}

/// Where the engine queues the events it shares, with when each happened.
pub(crate) type SharedQueue = mpsc::UnboundedSender<(DateTime<Utc>, Event)>;

/// Write what `rx` brings to the store, in order and in batches, until the queue closes
/// ([`Engine::shutdown`], or the engine dropped).
pub(crate) async fn publish(
    store: Store,
    origin: String,
    mut rx: mpsc::UnboundedReceiver<(DateTime<Utc>, Event)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH as usize {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let rows: Vec<(DateTime<Utc>, String)> = batch
            .into_iter()
            .filter_map(|(at, e)| serde_json::to_string(&e).ok().map(|b| (at, b)))
            .collect();
        if let Err(e) = store.share_events(&origin, &rows).await {
            tracing::warn!(error = %e, count = rows.len(), "could not share events with the other workers on this store");
        }
    }
}
