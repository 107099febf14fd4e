//! Domain types: Connection, Job, Execution, RecordError, DeadLetter, Alert, AuditEntry (SPEC §2).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mapping::FieldMapping;
use crate::policy::RecordState;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }
        impl $name {
            /// The stored and wire spelling.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(Error::invalid(
                    stringify!($name),
                    format!("'{s}' is not one of: {}", [$($text),+].join(", ")),
                )) }
            }
        }
    };
}

string_enum!(
    /// Health of a provider account.
    ConnectionStatus { Active = "active", Expired = "expired", Error = "error" }
);
string_enum!(
    /// What an engine sharing a store is: the desktop app, or a headless `syncdesk worker`.
    WorkerRole { App = "app", Worker = "worker" }
);
string_enum!(
    /// Which way records flow.
    Direction { Pull = "pull", Push = "push" }
);
string_enum!(
    /// Whether a run fetches everything or only what changed since the last successful run.
    Mode { Full = "full", Incremental = "incremental" }
);
string_enum!(
    /// Why an execution ran.
    Trigger { Manual = "manual", Scheduled = "scheduled", Retry = "retry", RecordRetry = "record_retry" }
);
string_enum!(
    /// Where an execution is in its life.
    ExecutionStatus {
        Queued = "queued",
        Running = "running",
        Completed = "completed",
        CompletedWithErrors = "completed_with_errors",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
    }
);
string_enum!(
    /// Why an execution failed as a whole.
    FailureKind {
        /// 401 after one refresh, or the refresh itself failed (R-E1).
        Auth = "auth",
        /// 5xx / network / request timeouts after every retry (R-E2).
        ProviderUnavailable = "provider_unavailable",
        /// Too many 429s (R-E3).
        RateLimited = "rate_limited",
        /// Another 4xx.
        Rejected = "rejected",
        /// A response that is not the documented shape.
        Malformed = "malformed",
        /// The execution timeout passed (R-E4).
        TimedOut = "timed_out",
        /// The circuit breaker halted the run (R-B2).
        CircuitBreaker = "circuit_breaker",
        /// The process running it died (SPEC §9).
        Interrupted = "interrupted",
        /// Stopped by the admin or shutdown.
        Cancelled = "cancelled",
        /// A local failure (store, keychain, configuration).
        Internal = "internal",
    }
);
string_enum!(
    /// What went wrong with one record (SPEC §3–§4).
    RecordErrorKind {
        /// Required field missing or invalid (R-R1).
        ValidationError = "ValidationError",
        /// The record already exists at the target (R-R2); counted as skipped.
        DuplicateConflict = "DuplicateConflict",
        /// A foreign key points at nothing (R-R3).
        ReferenceNotFound = "ReferenceNotFound",
        /// A mapping transform failed with no default (R-R4).
        TransformError = "TransformError",
        /// The record's structure does not match the mappings (R-E5).
        SchemaMismatch = "SchemaMismatch",
    }
);
impl RecordErrorKind {
    /// The kind in plain words, as the admin reads it.
    pub fn label(self) -> &'static str {
        match self {
            RecordErrorKind::ValidationError => "Missing required value",
            RecordErrorKind::SchemaMismatch => "Wrong field type",
            RecordErrorKind::TransformError => "Could not convert value",
            RecordErrorKind::DuplicateConflict => "Duplicate",
            RecordErrorKind::ReferenceNotFound => "Unknown reference",
        }
    }

    /// The short name a filter takes (`--kind missing-value`).
    pub fn short_name(self) -> &'static str {
        match self {
            RecordErrorKind::ValidationError => "missing-value",
            RecordErrorKind::SchemaMismatch => "wrong-type",
            RecordErrorKind::TransformError => "conversion",
            RecordErrorKind::DuplicateConflict => "duplicate",
            RecordErrorKind::ReferenceNotFound => "unknown-reference",
        }
    }

    /// A kind as a person types it: the short name, the plain label or the stored name, in
    /// any case, with spaces, dashes or underscores (`missing-value`, `Missing required
    /// value`, `ValidationError`, `validation`). An unknown name is refused with the short
    /// names, never the type names.
    pub fn parse_user(s: &str) -> Result<Self> {
        let key: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let squash = |t: &str| -> String {
            t.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let short = |k: RecordErrorKind| match k {
            RecordErrorKind::ValidationError => "validation",
            RecordErrorKind::SchemaMismatch => "schema",
            RecordErrorKind::TransformError => "transform",
            RecordErrorKind::DuplicateConflict => "duplicate",
            RecordErrorKind::ReferenceNotFound => "reference",
        };
        RecordErrorKind::ALL
            .iter()
            .copied()
            .find(|k| {
                !key.is_empty()
                    && [k.short_name(), k.label(), k.as_str(), short(*k)]
                        .iter()
                        .any(|n| squash(n) == key)
            })
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!(
                        "'{s}' is not a kind of record error; use one of: {}",
                        RecordErrorKind::ALL
                            .iter()
                            .map(|k| format!("{} ({})", k.short_name(), k.label()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

string_enum!(
    /// What an alert is about.
    AlertKind {
        CircuitBreaker = "circuit_breaker",
        RetriesExhausted = "retries_exhausted",
        ConnectionExpired = "connection_expired",
        ExecutionFailed = "execution_failed",
        CompletedWithErrors = "completed_with_errors",
        DeadLetters = "dead_letters",
    }
);

impl ExecutionStatus {
    /// Whether the execution is over.
    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
    /// Whether it counts as a successful run (R-A3 watermark, R-A1 reset).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Completed | ExecutionStatus::CompletedWithErrors
        )
    }
}

string_enum!(
    /// How a connection authenticates.
    AuthKind {
        /// OAuth2 client credentials grant; refresh by a new grant (or refresh token when given).
        Oauth2ClientCredentials = "oauth2_client_credentials",
        /// OAuth2 authorization code (+PKCE, done by the desktop shell): a stored refresh token.
        Oauth2RefreshToken = "oauth2_refresh_token",
        /// A static bearer token.
        Bearer = "bearer",
        /// A static key sent in a header.
        ApiKey = "api_key",
        /// No authentication.
        None = "none",
    }
);

/// A provider account.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub base_url: String,
    pub auth_kind: AuthKind,
    pub status: ConnectionStatus,
    pub status_note: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Values chosen when connecting (the spec's `[values.*]`, e.g. a Xero organisation),
    /// by name. Not secret.
    pub values: std::collections::BTreeMap<String, String>,
}

/// One of a connection's values (`[values.<name>]`): what the spec asks for and what the
/// connection holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionValue {
    pub name: String,
    /// What the admin is asked for ("Xero organisation").
    pub label: String,
    pub help: Option<String>,
    /// `None` until chosen.
    pub value: Option<String>,
    /// Whether the provider lists the possible values ([`crate::Engine::value_choices`]).
    pub listed: bool,
}

/// One possible value of a connection-level value, as the provider lists it (a Xero
/// organisation: its tenant id and its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueChoice {
    pub value: String,
    /// What the admin sees.
    pub label: String,
}

/// The top-level fields a provider sent for one entity of a connection, and its last change
/// (R-E5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedFields {
    /// Sorted; every field any record of the last run carried.
    pub fields: Vec<String>,
    pub observed_at: DateTime<Utc>,
    /// The fields before the last change; `None` until the set has changed once.
    pub previous: Option<Vec<String>>,
    /// The end of the first run that saw the current set, when it differs from the one before.
    pub changed_at: Option<DateTime<Utc>>,
}

impl ObservedFields {
    /// Fields sent now that were not sent before the last change; none before any change.
    pub fn added(&self) -> Vec<String> {
        let Some(before) = &self.previous else {
            return Vec::new();
        };
        self.fields
            .iter()
            .filter(|f| !before.contains(f))
            .cloned()
            .collect()
    }

    /// Fields sent before the last change that are no longer sent.
    pub fn removed(&self) -> Vec<String> {
        let Some(before) = &self.previous else {
            return Vec::new();
        };
        before
            .iter()
            .filter(|f| !self.fields.contains(f))
            .cloned()
            .collect()
    }
}

/// When a job runs on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Manual,
    Interval {
        seconds: u64,
    },
    Cron {
        expr: String,
    },
}

impl Schedule {
    /// Parse `manual`, `every 15m` / `every 2h` / `every 90s`, or `cron <5 or 6 fields>`.
    pub fn parse(s: &str) -> Result<Schedule> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("manual") || s.is_empty() {
            return Ok(Schedule::Manual);
        }
        if let Some(rest) = s.strip_prefix("every ") {
            let d = parse_duration(rest).map_err(|m| Error::invalid("schedule", m))?;
            if d < Duration::from_secs(60) {
                return Err(Error::invalid(
                    "schedule",
                    "intervals shorter than 1m are not allowed",
                ));
            }
            if d.as_secs() > MAX_INTERVAL_SECS {
                return Err(Error::invalid(
                    "schedule",
                    format!(
                        "'every {}' is too long; at most {} days (use cron for rarer runs)",
                        rest.trim(),
                        MAX_INTERVAL_SECS / 86400
                    ),
                ));
            }
            return Ok(Schedule::Interval {
                seconds: d.as_secs(),
            });
        }
        if let Some(expr) = s.strip_prefix("cron ") {
            let expr = expr.trim();
            let cron = croner::Cron::new(expr)
                .parse()
                .map_err(|e| Error::invalid("schedule", format!("bad cron expression: {e}")))?;
            // An expression that parses may still never match (`0 0 30 2 *`): a job that
            // would silently never run is refused now.
            let from = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_454); // 2026-01-01
            if cron.find_next_occurrence(&from, false).is_err() {
                return Err(Error::invalid(
                    "schedule",
                    format!("cron expression '{expr}' never matches a date"),
                ));
            }
            return Ok(Schedule::Cron {
                expr: expr.to_string(),
            });
        }
        Err(Error::invalid(
            "schedule",
            format!("'{s}': use 'manual', 'every 15m' or 'cron 0 * * * *'"),
        ))
    }

    /// The first run time strictly after `after`, or `None` for manual jobs and for a
    /// stored schedule with no representable next time (an interval beyond the calendar, a
    /// cron expression that no longer parses or never matches).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Manual => None,
            Schedule::Interval { seconds } => {
                // A stored value is not trusted to be in range: no overflow panics here.
                let secs = i64::try_from(*seconds).ok()?;
                after.checked_add_signed(chrono::Duration::try_seconds(secs)?)
            }
            Schedule::Cron { expr } => {
                // croner searches no further than the year 5000, and at the calendar's edges
                // its day steps overflow a date and panic (found by tests/properties.rs).
                if !(1..CRON_LAST_YEAR).contains(&after.year()) {
                    return None;
                }
                let cron = croner::Cron::new(expr).parse().ok()?;
                cron.find_next_occurrence(&after, false).ok()
            }
        }
    }
}

/// Beyond this year a cron schedule has no next run (croner's own search limit is 5000).
const CRON_LAST_YEAR: i32 = 5000;

/// The longest `every …` interval: a year (rarer runs are what cron is for).
pub const MAX_INTERVAL_SECS: u64 = 366 * 86400;

/// The longest duration [`parse_duration`] accepts, in days; every setting it feeds has a
/// smaller bound of its own, this one keeps the arithmetic in range.
pub const MAX_DURATION_DAYS: u64 = 3660;

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Manual => f.write_str("manual"),
            Schedule::Interval { seconds } => write!(f, "every {}", format_duration(*seconds)),
            Schedule::Cron { expr } => write!(f, "cron {expr}"),
        }
    }
}

/// Parse `90s`, `15m`, `2h`, `1d` or plain seconds, up to [`MAX_DURATION_DAYS`].
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if num.is_empty() {
        return Err(format!("'{s}' is not a duration like 30s, 15m, 2h"));
    }
    let mult: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{s}' (use s, m, h, d)"
            ))
        }
    };
    let too_long = || format!("'{s}' is too long; at most {MAX_DURATION_DAYS} days");
    // All digits: a parse failure can only be a number beyond u64.
    let n: u64 = num.parse().map_err(|_| too_long())?;
    match n.checked_mul(mult) {
        Some(secs) if secs <= MAX_DURATION_DAYS * 86400 => Ok(Duration::from_secs(secs)),
        _ => Err(too_long()),
    }
}

/// Inverse of [`parse_duration`] for display.
pub fn format_duration(secs: u64) -> String {
    match secs {
        s if s % 86400 == 0 && s > 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Which events raise an alert (and so a notification in the desktop shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    pub on_circuit_breaker: bool,
    pub on_retries_exhausted: bool,
    pub on_connection_expired: bool,
    pub on_failure: bool,
    pub on_completed_with_errors: bool,
    /// Records that failed in three runs moved to Failed Records.
    pub on_dead_letters: bool,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            on_circuit_breaker: true,
            on_retries_exhausted: true,
            on_connection_expired: true,
            on_failure: false,
            on_completed_with_errors: false,
            on_dead_letters: true,
        }
    }
}

/// A sync job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub connection_id: String,
    pub entity: String,
    pub direction: Direction,
    pub mode: Mode,
    pub schedule: Schedule,
    pub settings: JobSettings,
    pub enabled: bool,
    /// The provider's `updated_at` high-water mark of the last successful run (R-A3).
    pub watermark: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A job's tunables, stored together as one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Records per page requested from the provider.
    pub batch_size: u32,
    /// Whole-execution timeout.
    pub timeout_secs: u64,
    /// One HTTP request's timeout; a timeout is retried like a 5xx.
    pub request_timeout_secs: u64,
    pub retry_on_failure: bool,
    pub max_retries: u32,
    /// Waits between attempts of a failing request (default 1, 5, 15).
    pub backoff_secs: Vec<u64>,
    /// Waits before automatic retry executions (default 300, 1800, 7200).
    pub retry_delays_secs: Vec<u64>,
    /// The longest 429 pause the engine accepts before giving up on a request.
    pub max_rate_limit_waits: u32,
    pub duplicate_detection: bool,
    /// Target fields whose values identify a record (e.g. `email`, `number`).
    pub natural_keys: Vec<String>,
    pub mappings: Vec<FieldMapping>,
    pub alerts: AlertSettings,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            batch_size: 100,
            timeout_secs: 3600,
            request_timeout_secs: 30,
            retry_on_failure: true,
            max_retries: 3,
            backoff_secs: vec![1, 5, 15],
            retry_delays_secs: vec![300, 1800, 7200],
            max_rate_limit_waits: 20,
            duplicate_detection: true,
            natural_keys: Vec::new(),
            mappings: Vec::new(),
            alerts: AlertSettings::default(),
        }
    }
}

impl JobSettings {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.batch_size) {
            return Err(Error::invalid("batch_size", "must be between 1 and 1000"));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 7 * 86400 {
            return Err(Error::invalid("timeout", "must be between 1s and 7d"));
        }
        if self.request_timeout_secs == 0 || self.request_timeout_secs > 3600 {
            return Err(Error::invalid(
                "request_timeout",
                "must be between 1s and 1h",
            ));
        }
        if self.max_retries > 20 {
            return Err(Error::invalid("max_retries", "must be at most 20"));
        }
        if self.backoff_secs.len() > 10 || self.backoff_secs.iter().any(|s| *s > 3600) {
            return Err(Error::invalid(
                "backoff",
                "at most 10 waits of at most 1h each",
            ));
        }
        if self.retry_delays_secs.is_empty()
            || self.retry_delays_secs.iter().any(|s| *s > 7 * 86400)
        {
            return Err(Error::invalid(
                "retry_delays",
                "one to many waits of at most 7d each",
            ));
        }
        if self.mappings.is_empty() {
            return Err(Error::invalid(
                "mappings",
                "a job needs at least one field mapping",
            ));
        }
        let mut targets = std::collections::HashSet::new();
        for (i, m) in self.mappings.iter().enumerate() {
            m.validate().map_err(|e| match e {
                Error::Invalid { field, message } => {
                    Error::invalid(format!("mappings[{i}].{field}"), message)
                }
                other => other,
            })?;
            if !targets.insert(m.target.as_str()) {
                return Err(Error::invalid(
                    format!("mappings[{i}].target"),
                    format!("'{}' is mapped twice", m.target),
                ));
            }
        }
        for k in &self.natural_keys {
            if !targets.contains(k.as_str()) {
                return Err(Error::invalid(
                    "natural_keys",
                    format!("'{k}' is not the target of any mapping"),
                ));
            }
        }
        if self.duplicate_detection && self.natural_keys.is_empty() {
            return Err(Error::invalid(
                "natural_keys",
                "duplicate detection needs at least one natural key (or turn it off)",
            ));
        }
        Ok(())
    }

    /// Check that every `reference:<entity>` transform names an entity of the connector
    /// (`known`): a typo such as `reference:nope` would otherwise pass validation and fail
    /// every record of every run as ReferenceNotFound.
    pub fn check_references<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let known: Vec<&str> = known.into_iter().collect();
        for (i, m) in self.mappings.iter().enumerate() {
            for entity in m.referenced_entities() {
                if !known.contains(&entity.as_str()) {
                    return Err(Error::invalid(
                        format!("mappings[{i}].transform"),
                        format!(
                            "'reference:{entity}' names no entity of this connection; known: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Counts of one execution. Invariant: `processed = created + updated + skipped + failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub processed: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    /// Add another page's counts; saturating, since one side may come from a damaged store.
    pub fn add(&mut self, other: Counts) {
        self.processed = self.processed.saturating_add(other.processed);
        self.created = self.created.saturating_add(other.created);
        self.updated = self.updated.saturating_add(other.updated);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.failed = self.failed.saturating_add(other.failed);
    }
}

/// One run of a job.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub id: String,
    pub job_id: String,
    pub trigger: Trigger,
    pub attempt: u32,
    pub retry_of: Option<String>,
    pub status: ExecutionStatus,
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// Records of dead-letter or dismissed state that this run left out (R-D2).
    pub excluded: u64,
    /// The page being processed (or the last one) — for timeouts, R-E4.
    pub batch_in_progress: Option<String>,
    pub failure_kind: Option<FailureKind>,
    pub note: Option<String>,
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Requests repeated after 5xx / network errors / timeouts (R-E2), for diagnosis.
    pub request_retries: u32,
    /// Pauses for 429 (R-E3), for diagnosis.
    pub rate_limit_waits: u32,
    /// For a single dead-letter retry, the record retried.
    pub record_id: Option<String>,
    /// What follows this execution under the automatic retry rule (R-A), decided in the
    /// engine so every view shows the same.
    pub retry: RetryState,
    /// While it runs: what it is waiting for and until when (a backoff after a provider
    /// error, a rate-limit pause), so a paused run is not mistaken for a stuck one.
    pub waiting: Option<Waiting>,
    /// The name of the app or worker that ran it (its host, or `syncdesk worker --name`),
    /// once started: in team mode several share the store.
    pub ran_by: Option<String>,
}

/// An app or headless worker that runs syncs on this store (team mode: several share one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Worker {
    /// Its host, or the name `syncdesk worker --name` gave it.
    pub name: String,
    pub host: String,
    pub role: WorkerRole,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// It said it was alive recently enough (three heartbeats): decided here, so every view
    /// says the same.
    pub alive: bool,
    /// It is the engine asking.
    pub this_engine: bool,
}

/// The name part of an owner tag (`name:pid:uuid`): the host, or the worker's `--name`.
pub fn owner_name(owner: &str) -> &str {
    owner.split(':').next().unwrap_or(owner)
}

/// A running execution's pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// In words: "provider error (HTTP 503 from /v1/customers), retry 2 of 3".
    pub reason: String,
    pub until: DateTime<Utc>,
}

/// Where an execution stands with its automatic retry (R-A1–R-A4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RetryState {
    /// No automatic retry follows (the run did not fail, or it is still going).
    #[default]
    None,
    /// A retry is queued for `at`.
    Pending {
        execution_id: String,
        at: DateTime<Utc>,
    },
    /// A retry is queued and runs as soon as the connection is re-authenticated: retrying
    /// an authentication failure on a timer cannot help.
    WaitingForReauth { execution_id: String },
    /// The retry is running now.
    Running { execution_id: String },
    /// The retry ran; its own execution tells how it went.
    Retried { execution_id: String },
    /// The retry was not needed: a later run succeeded first.
    Superseded { execution_id: String },
    /// Every automatic retry was used.
    Exhausted,
    /// The job does not retry failed runs automatically.
    Off,
}

impl Execution {
    /// Wall time from start to finish.
    pub fn duration(&self) -> Option<chrono::Duration> {
        Some(self.finished_at? - self.started_at?)
    }
}

/// One row of an execution's error log (R-I1).
#[derive(Debug, Clone, Serialize)]
pub struct RecordError {
    pub id: i64,
    pub execution_id: String,
    pub record_id: String,
    pub entity: String,
    pub kind: RecordErrorKind,
    pub message: String,
    pub field: Option<String>,
    pub at: DateTime<Utc>,
}

impl RecordError {
    /// The spec's one-line form: `ValidationError - Required field 'email' is null`.
    pub fn summary(&self) -> String {
        format!("{} - {}", self.kind, self.message)
    }
}

/// A record's failure memory as shown in Failed Records (R-D3).
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub record_id: String,
    pub local_id: Option<String>,
    pub entity: String,
    pub state: RecordState,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_payload: Option<serde_json::Value>,
}

/// Something the admin should know about.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub title: String,
    pub body: String,
    pub job_id: Option<String>,
    pub execution_id: Option<String>,
    pub connection_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// How many times the same open condition was raised (one alert, not one per run).
    pub occurrences: u32,
    pub last_seen_at: DateTime<Utc>,
    /// When its cause cleared (re-authenticated, a clean run, Failed Records emptied).
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

/// Who did what, when (R-D5).
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub note: Option<String>,
}

/// A page of a list, with the cursor of the next page when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Where a list starts and how long a page is.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest {
            cursor: None,
            limit,
        }
    }
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_PAGE_LIMIT))
    }
}

/// The longest page a list returns; shells refuse a larger `limit` (the engine clamps).
pub const MAX_PAGE_LIMIT: u32 = 500;

/// A job on the dashboard ([`crate::Engine::job_summaries`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobSummary {
    pub job: Job,
    /// The newest run that started (a queued retry is not a run yet; record retries aside).
    pub last_execution: Option<Execution>,
    pub dead_letters: u64,
    /// How the job is doing, decided here so the dashboard, the tray and the CLI agree.
    pub health: JobHealth,
}

/// How a job is doing, from its newest run, that run's retry and its Failed Records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobHealth {
    NeverRun,
    Running,
    /// The newest run completed and nothing waits in Failed Records.
    Ok,
    /// It completed with failed records, was cancelled, or records wait in Failed Records.
    NeedsAttention,
    /// It failed and its automatic retry is queued.
    Retrying,
    /// It failed on the connection's credentials; the retry waits for re-authentication.
    NeedsReauth,
    /// It failed and no automatic retry follows.
    Failing,
}

impl JobHealth {
    /// From the newest started run and the number of records in Failed Records.
    pub fn of(last: Option<&Execution>, dead_letters: u64) -> JobHealth {
        let Some(e) = last else {
            return JobHealth::NeverRun;
        };
        match e.status {
            ExecutionStatus::Running | ExecutionStatus::Queued => JobHealth::Running,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut => match e.retry {
                RetryState::Pending { .. } | RetryState::Running { .. } => JobHealth::Retrying,
                RetryState::WaitingForReauth { .. } => JobHealth::NeedsReauth,
                _ => JobHealth::Failing,
            },
            ExecutionStatus::Completed if dead_letters == 0 => JobHealth::Ok,
            ExecutionStatus::Completed
            | ExecutionStatus::CompletedWithErrors
            | ExecutionStatus::Cancelled => JobHealth::NeedsAttention,
        }
    }
}

/// Counts for the tray and dashboard ([`crate::Engine::health`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealthSummary {
    pub jobs: u64,
    pub failing_jobs: u64,
    pub unread_alerts: u64,
    pub expired_connections: u64,
    pub dead_letters: u64,
    /// "Pause all syncs" in force: no scheduled run or automatic retry starts.
    pub paused: Option<SyncPause>,
}

/// All syncs paused: since when and by whom (the audit actor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncPause {
    pub since: DateTime<Utc>,
    pub by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_say_what_is_wrong() {
        assert_eq!(Schedule::parse("manual").unwrap(), Schedule::Manual);
        assert_eq!(
            Schedule::parse("every 15m").unwrap(),
            Schedule::Interval { seconds: 900 }
        );
        assert!(matches!(
            Schedule::parse("cron 0 */2 * * *").unwrap(),
            Schedule::Cron { .. }
        ));
        let err = Schedule::parse("every 15x").unwrap_err().to_string();
        assert!(err.contains("schedule") && err.contains("unit"), "{err}");
        let err = Schedule::parse("cron 99 * * * *").unwrap_err().to_string();
        assert!(err.contains("cron"), "{err}");
        let t = DateTime::parse_from_rfc3339("2026-03-01T14:07:00Z")
            .unwrap()
            .to_utc();
        let next = Schedule::parse("cron 0 * * * *")
            .unwrap()
            .next_after(t)
            .unwrap();
        assert_eq!(next.to_rfc3339(), "2026-03-01T15:00:00+00:00");
    }

    #[test]
    fn p1_durations_beyond_range_are_too_long_not_a_panic() {
        for s in [
            "5000000000000000000h",
            "99999999999999999999999s",
            "213503982336d",
        ] {
            let err = parse_duration(s).unwrap_err();
            assert_eq!(err, format!("'{s}' is too long; at most 3660 days"));
        }
        assert_eq!(
            parse_duration("3660d").unwrap(),
            Duration::from_secs(3660 * 86400)
        );
        assert!(parse_duration("3661d").unwrap_err().contains("too long"));
        assert!(parse_duration("h").unwrap_err().contains("not a duration"));
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn p2_schedules_beyond_range_are_invalid_not_a_panic() {
        let err = Schedule::parse("every 100000000000d").unwrap_err();
        assert_eq!(err.field(), Some("schedule"));
        assert!(err.to_string().contains("too long; at most"), "{err}");
        let err = Schedule::parse("every 400d").unwrap_err().to_string();
        assert!(err.contains("at most 366 days"), "{err}");
        let err = Schedule::parse("cron 0 0 30 2 *").unwrap_err().to_string();
        assert!(err.contains("never matches"), "{err}");
        assert!(
            Schedule::parse("cron 0 0 29 2 *").is_ok(),
            "leap days exist"
        );

        // Stored schedules are not trusted: out-of-range values have no next time.
        let t = DateTime::parse_from_rfc3339("2026-03-01T14:07:00Z")
            .unwrap()
            .to_utc();
        for seconds in [u64::MAX, i64::MAX as u64, 9_000_000_000_000_000] {
            assert_eq!(Schedule::Interval { seconds }.next_after(t), None);
        }
        let far = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(30);
        assert_eq!(Schedule::Interval { seconds: 60 }.next_after(far), None);
        assert_eq!(
            Schedule::Cron {
                expr: "not cron".into()
            }
            .next_after(t),
            None
        );
        assert_eq!(
            Schedule::Cron {
                expr: "* * * * *".into()
            }
            .next_after(far),
            None
        );
    }

    #[test]
    fn u_unknown_alert_settings_keys_are_rejected_with_their_name() {
        let err = toml::from_str::<JobSettings>("[alerts]\non_falure = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `on_falure`"), "{err}");
        let err = serde_json::from_str::<JobSettings>(
            r#"{"mappings": [{"source": "a", "target": "a", "requird": true}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `requird`"), "{err}");
        let ok: JobSettings = toml::from_str("[alerts]\non_failure = true\n").unwrap();
        assert!(ok.alerts.on_failure && ok.alerts.on_circuit_breaker);
    }

    #[test]
    fn u_reference_to_an_unknown_entity_is_refused_naming_the_mapping() {
        let mapping = |transform: &str| crate::FieldMapping {
            source: "customer".into(),
            target: "customer_id".into(),
            transform: Some(transform.into()),
            default: None,
            required: false,
            expect: None,
            optional: false,
        };
        let mut s = JobSettings {
            duplicate_detection: false,
            mappings: vec![mapping("trim"), mapping("trim|reference:nope")],
            ..Default::default()
        };
        s.mappings[0].target = "other".into();
        s.validate().unwrap();
        let err = s.check_references(["customers", "invoices"]).unwrap_err();
        assert_eq!(err.field(), Some("mappings[1].transform"));
        assert_eq!(
            err.to_string(),
            "invalid mappings[1].transform: 'reference:nope' names no entity of this \
             connection; known: customers, invoices"
        );
        s.mappings[1] = mapping("reference:customers");
        s.check_references(["customers", "invoices"]).unwrap();
        // Syntax errors stay the validator's: `reference:` with no entity.
        s.mappings[1] = mapping("reference:");
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("unknown transform"));
    }

    #[test]
    fn status_strings_round_trip() {
        for s in ExecutionStatus::ALL {
            assert_eq!(s.as_str().parse::<ExecutionStatus>().unwrap(), *s);
        }
        assert!("done".parse::<ExecutionStatus>().is_err());
    }
}
