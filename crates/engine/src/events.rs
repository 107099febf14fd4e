//! Typed events from the engine (execution lifecycle, breaker, retries, connections). The
//! desktop shell turns some into native notifications; the CLI prints them.

use serde::{Deserialize, Serialize};

use crate::model::{Counts, ExecutionStatus};

/// Something that happened, with the ids needed to open the view about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ExecutionStarted {
        execution_id: String,
        job_id: String,
        job_name: String,
    },
    /// A running execution pauses: what for (in words) and until when (RFC 3339).
    ExecutionWaiting {
        execution_id: String,
        job_id: String,
        reason: String,
        until: String,
    },
    /// After every committed page.
    ExecutionProgress {
        execution_id: String,
        job_id: String,
        counts: Counts,
        batch: String,
    },
    ExecutionFinished {
        execution_id: String,
        job_id: String,
        job_name: String,
        status: ExecutionStatus,
        counts: Counts,
        note: Option<String>,
    },
    /// R-B2: the admin is notified.
    BreakerTripped {
        execution_id: String,
        job_id: String,
        job_name: String,
        note: String,
    },
    RetryScheduled {
        execution_id: String,
        job_id: String,
        retry_execution_id: String,
        attempt: u32,
        due_at: String,
    },
    /// R-A4: the admin is notified.
    RetriesExhausted {
        execution_id: String,
        job_id: String,
        job_name: String,
        attempts: u32,
    },
    /// R-E1: the admin must re-authenticate.
    ConnectionExpired {
        connection_id: String,
        connection_name: String,
        detail: String,
    },
    /// A record entered the dead letter queue (R-D1).
    DeadLettered { job_id: String, record_id: String },
    /// Records of a job moved to Failed Records in one run: the admin is notified.
    RecordsDeadLettered {
        execution_id: String,
        job_id: String,
        job_name: String,
        count: u64,
    },
    /// Their cause cleared (re-authenticated, a clean run, Failed Records emptied): the
    /// alerts are resolved and their native notifications withdrawn.
    AlertsResolved {
        alert_ids: Vec<i64>,
        job_id: Option<String>,
        connection_id: Option<String>,
    },
    /// All syncs were paused or resumed (by this process, or by another on the store whose
    /// events this engine follows; [`crate::Engine::health`] says how things stand).
    SyncsPaused { paused: bool },
}

impl Event {
    /// Whether other engines on the store hear of it (team mode: each desktop notifies and
    /// refreshes for runs a headless worker makes). Per-page progress and per-record events
    /// stay in the process: too many, and only the run's own views want them.
    pub fn shared(&self) -> bool {
        !matches!(
            self,
            Event::ExecutionProgress { .. }
                | Event::ExecutionWaiting { .. }
                | Event::DeadLettered { .. }
        )
    }

    /// Whether the desktop shell should raise a native notification for it.
    pub fn notifies(&self) -> bool {
        matches!(
            self,
            Event::BreakerTripped { .. }
                | Event::RetriesExhausted { .. }
                | Event::ConnectionExpired { .. }
                | Event::RecordsDeadLettered { .. }
        )
    }
}
