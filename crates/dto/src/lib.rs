//! The wire shapes of Syncdesk's shells: the CLI's `--json` (docs/cli.md) and the desktop's IPC
//! (TypeScript bindings in `ui/src/bindings`, checked for drift by this crate's tests). Engine
//! types are converted here, so the engine can change without breaking scripts or the UI.

use serde::{Deserialize, Serialize};
use syncdesk_engine as engine;
use ts_rs::TS;

fn ts(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// When all syncs were paused and by whom, as `HealthDto` carries it.
pub fn pause_fields(p: Option<&engine::SyncPause>) -> (Option<String>, Option<String>) {
    (ts(p.map(|p| p.since)), p.map(|p| p.by.clone()))
}

#[derive(Debug, Serialize, TS)]
pub struct ConnectionDto {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub base_url: String,
    pub auth_kind: String,
    pub status: String,
    pub status_note: Option<String>,
    pub token_expires_at: Option<String>,
    pub refresh_expires_at: Option<String>,
    pub last_checked_at: Option<String>,
    /// Values chosen when connecting (a Xero organisation's id), by name. Not secret.
    pub values: std::collections::BTreeMap<String, String>,
}

impl From<&engine::Connection> for ConnectionDto {
    fn from(c: &engine::Connection) -> Self {
        ConnectionDto {
            id: c.id.clone(),
            name: c.name.clone(),
            provider: c.provider.clone(),
            base_url: c.base_url.clone(),
            auth_kind: c.auth_kind.as_str().to_string(),
            status: c.status.to_string(),
            status_note: c.status_note.clone(),
            token_expires_at: ts(c.token_expires_at),
            refresh_expires_at: ts(c.refresh_expires_at),
            last_checked_at: ts(c.last_checked_at),
            values: c.values.clone(),
        }
    }
}

/// One of a connection's values: what the connector asks for and what the connection holds.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionValueDto {
    pub name: String,
    pub label: String,
    pub help: Option<String>,
    pub value: Option<String>,
    /// Whether the provider lists the possible values (`connection_value_choices`).
    pub listed: bool,
}

impl From<&engine::ConnectionValue> for ConnectionValueDto {
    fn from(v: &engine::ConnectionValue) -> Self {
        ConnectionValueDto {
            name: v.name.clone(),
            label: v.label.clone(),
            help: v.help.clone(),
            value: v.value.clone(),
            listed: v.listed,
        }
    }
}

/// A possible value as the provider lists it (a Xero organisation).
#[derive(Debug, Clone, Serialize, TS)]
pub struct ValueChoiceDto {
    pub value: String,
    pub label: String,
}

impl From<&engine::ValueChoice> for ValueChoiceDto {
    fn from(c: &engine::ValueChoice) -> Self {
        ValueChoiceDto {
            value: c.value.clone(),
            label: c.label.clone(),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct JobDto {
    pub id: String,
    pub name: String,
    pub connection_id: String,
    pub entity: String,
    pub direction: String,
    pub mode: String,
    pub schedule: String,
    pub enabled: bool,
    pub next_run_at: Option<String>,
    pub watermark: Option<String>,
    pub settings: engine::JobSettings,
}

impl From<&engine::Job> for JobDto {
    fn from(j: &engine::Job) -> Self {
        JobDto {
            id: j.id.clone(),
            name: j.name.clone(),
            connection_id: j.connection_id.clone(),
            entity: j.entity.clone(),
            direction: j.direction.to_string(),
            mode: j.mode.to_string(),
            schedule: j.schedule.to_string(),
            enabled: j.enabled,
            next_run_at: ts(j.next_run_at),
            watermark: j.watermark.clone(),
            settings: j.settings.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, TS)]
pub struct CountsDto {
    pub processed: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize, TS)]
pub struct ExecutionDto {
    pub id: String,
    pub job_id: String,
    pub trigger: String,
    pub attempt: u32,
    pub retry_of: Option<String>,
    pub status: String,
    pub mode: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub counts: CountsDto,
    pub excluded: u64,
    pub batch_in_progress: Option<String>,
    pub failure_kind: Option<String>,
    pub note: Option<String>,
    /// What follows this run under the automatic retry rule, decided in the engine.
    pub retry: RetryDto,
    /// While it runs: what it waits for and until when.
    pub waiting: Option<WaitingDto>,
    pub request_retries: u32,
    pub rate_limit_waits: u32,
    pub record_id: Option<String>,
    /// The app or worker that ran it (its computer's name, or the worker's name).
    pub ran_by: Option<String>,
}

/// A running execution's pause: in words, and until when.
#[derive(Debug, Clone, Serialize, TS)]
pub struct WaitingDto {
    pub reason: String,
    pub until: Option<String>,
}

/// Where an execution stands with its automatic retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    /// No automatic retry follows (the run did not fail, or it is still going).
    None,
    /// A retry is queued for `at`.
    Pending,
    /// A retry runs as soon as the connection is re-authenticated.
    WaitingForReauth,
    /// The retry is running.
    Running,
    /// The retry ran (`execution_id`).
    Retried,
    /// A later run succeeded first; no retry was needed.
    Superseded,
    /// Every automatic retry was used.
    Exhausted,
    /// The job does not retry failed runs.
    Off,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct RetryDto {
    pub state: RetryKind,
    /// The retry's own execution, when there is one.
    pub execution_id: Option<String>,
    /// When a pending retry is due.
    pub at: Option<String>,
}

impl From<&engine::RetryState> for RetryDto {
    fn from(r: &engine::RetryState) -> Self {
        use engine::RetryState as R;
        let (state, execution_id, at) = match r {
            R::None => (RetryKind::None, None, None),
            R::Pending { execution_id, at } => (
                RetryKind::Pending,
                Some(execution_id.clone()),
                ts(Some(*at)),
            ),
            R::WaitingForReauth { execution_id } => (
                RetryKind::WaitingForReauth,
                Some(execution_id.clone()),
                None,
            ),
            R::Running { execution_id } => (RetryKind::Running, Some(execution_id.clone()), None),
            R::Retried { execution_id } => (RetryKind::Retried, Some(execution_id.clone()), None),
            R::Superseded { execution_id } => {
                (RetryKind::Superseded, Some(execution_id.clone()), None)
            }
            R::Exhausted => (RetryKind::Exhausted, None, None),
            R::Off => (RetryKind::Off, None, None),
        };
        RetryDto {
            state,
            execution_id,
            at,
        }
    }
}

impl From<&engine::Execution> for ExecutionDto {
    fn from(e: &engine::Execution) -> Self {
        ExecutionDto {
            id: e.id.clone(),
            job_id: e.job_id.clone(),
            trigger: e.trigger.to_string(),
            attempt: e.attempt,
            retry_of: e.retry_of.clone(),
            status: e.status.to_string(),
            mode: e.mode.to_string(),
            created_at: ts(Some(e.created_at)),
            started_at: ts(e.started_at),
            finished_at: ts(e.finished_at),
            duration_ms: e.duration().map(|d| d.num_milliseconds()),
            counts: e.counts.into(),
            excluded: e.excluded,
            batch_in_progress: e.batch_in_progress.clone(),
            failure_kind: e.failure_kind.map(|k| k.to_string()),
            note: e.note.clone(),
            retry: (&e.retry).into(),
            waiting: e.waiting.as_ref().map(|w| WaitingDto {
                reason: w.reason.clone(),
                until: ts(Some(w.until)),
            }),
            request_retries: e.request_retries,
            rate_limit_waits: e.rate_limit_waits,
            record_id: e.record_id.clone(),
            ran_by: e.ran_by.clone(),
        }
    }
}

/// An app or headless worker that runs syncs on this database (team mode).
#[derive(Debug, Clone, Serialize, TS)]
pub struct WorkerDto {
    pub name: String,
    pub host: String,
    /// `app` (the desktop app) or `worker` (a headless `syncdesk worker`).
    pub role: String,
    pub started_at: Option<String>,
    pub last_seen_at: Option<String>,
    /// It said it was alive within the last 45 seconds (decided in the engine).
    pub alive: bool,
    /// It is the app (or command) asking.
    pub this_one: bool,
}

impl From<&engine::Worker> for WorkerDto {
    fn from(w: &engine::Worker) -> Self {
        WorkerDto {
            name: w.name.clone(),
            host: w.host.clone(),
            role: w.role.to_string(),
            started_at: ts(Some(w.started_at)),
            last_seen_at: ts(Some(w.last_seen_at)),
            alive: w.alive,
            this_one: w.this_engine,
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct DiagnosisDto {
    pub pattern: String,
    pub title: String,
    pub likely_cause: String,
    pub resolution: String,
    pub actions: Vec<String>,
}

/// What changed in the provider's fields for the job's entity; beside a
/// `schema_change` diagnosis.
#[derive(Debug, Serialize, TS)]
pub struct SchemaChangeDto {
    pub entity: String,
    /// Fields the mappings read that the provider no longer sends: the ones to remap.
    pub missing: Vec<String>,
    /// Sent now, not before the last change.
    pub added: Vec<String>,
    /// Sent before the last change, not now.
    pub removed: Vec<String>,
    /// When the current field set was first seen; null if it never changed.
    pub changed_at: Option<String>,
    pub observed_at: String,
}

impl From<&engine::SchemaChange> for SchemaChangeDto {
    fn from(c: &engine::SchemaChange) -> Self {
        SchemaChangeDto {
            entity: c.entity.clone(),
            missing: c.missing.clone(),
            added: c.added.clone(),
            removed: c.removed.clone(),
            changed_at: ts(c.changed_at),
            observed_at: ts(Some(c.observed_at)).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct ExecutionDetailDto {
    #[serde(flatten)]
    pub execution: ExecutionDto,
    pub job_name: String,
    pub entity: String,
    pub error_counts: std::collections::BTreeMap<String, u64>,
    pub diagnosis: Vec<DiagnosisDto>,
    pub schema_change: Option<SchemaChangeDto>,
    pub chain: Vec<String>,
}

impl From<&engine::ExecutionDetail> for ExecutionDetailDto {
    fn from(d: &engine::ExecutionDetail) -> Self {
        ExecutionDetailDto {
            execution: (&d.execution).into(),
            job_name: d.job_name.clone(),
            entity: d.entity.clone(),
            error_counts: d
                .error_counts
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            diagnosis: d
                .diagnosis
                .iter()
                .map(|x| DiagnosisDto {
                    pattern: x.pattern.to_string(),
                    title: x.title.clone(),
                    likely_cause: x.likely_cause.clone(),
                    resolution: x.resolution.clone(),
                    actions: x
                        .actions
                        .iter()
                        .map(|a| {
                            serde_json::to_value(a)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        })
                        .collect(),
                })
                .collect(),
            schema_change: d.schema_change.as_ref().map(Into::into),
            chain: d.chain.clone(),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct RecordErrorDto {
    pub id: i64,
    pub execution_id: String,
    pub record_id: String,
    pub entity: String,
    pub kind: String,
    pub message: String,
    pub field: Option<String>,
    pub at: Option<String>,
}

impl From<&engine::RecordError> for RecordErrorDto {
    fn from(e: &engine::RecordError) -> Self {
        RecordErrorDto {
            id: e.id,
            execution_id: e.execution_id.clone(),
            record_id: e.record_id.clone(),
            entity: e.entity.clone(),
            kind: e.kind.to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
            at: ts(Some(e.at)),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct DeadLetterDto {
    pub record_id: String,
    pub entity: String,
    pub state: String,
    pub first_failed_at: Option<String>,
    pub last_failed_at: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    pub payload: Option<serde_json::Value>,
}

impl From<&engine::DeadLetter> for DeadLetterDto {
    fn from(d: &engine::DeadLetter) -> Self {
        DeadLetterDto {
            record_id: d.record_id.clone(),
            entity: d.entity.clone(),
            state: d.state.as_str().to_string(),
            first_failed_at: ts(d.first_failed_at),
            last_failed_at: ts(d.last_failed_at),
            attempts: d.attempts,
            error: d.last_error.clone(),
            payload: d.last_payload.clone(),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct AlertDto {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub job_id: Option<String>,
    pub execution_id: Option<String>,
    pub connection_id: Option<String>,
    pub created_at: Option<String>,
    pub read: bool,
    /// How many times the same open condition was raised.
    pub occurrences: u32,
    pub last_seen_at: Option<String>,
    /// When its cause cleared, and how; a resolved alert needs nothing more.
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
}

impl From<&engine::Alert> for AlertDto {
    fn from(a: &engine::Alert) -> Self {
        AlertDto {
            id: a.id,
            kind: a.kind.to_string(),
            title: a.title.clone(),
            body: a.body.clone(),
            job_id: a.job_id.clone(),
            execution_id: a.execution_id.clone(),
            connection_id: a.connection_id.clone(),
            created_at: ts(Some(a.created_at)),
            read: a.read_at.is_some(),
            occurrences: a.occurrences,
            last_seen_at: ts(Some(a.last_seen_at)),
            resolved_at: ts(a.resolved_at),
            resolution: a.resolution.clone(),
        }
    }
}

#[derive(Debug, Serialize, TS)]
pub struct AuditDto {
    pub id: i64,
    pub at: Option<String>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub note: Option<String>,
}

impl From<&engine::AuditEntry> for AuditDto {
    fn from(a: &engine::AuditEntry) -> Self {
        AuditDto {
            id: a.id,
            at: ts(Some(a.at)),
            actor: a.actor.clone(),
            action: a.action.clone(),
            subject: a.subject.clone(),
            note: a.note.clone(),
        }
    }
}

/// A list with the cursor of its next page.
#[derive(Debug, Serialize, TS)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The one vocabulary of error codes both shells send: the CLI in `--json` errors (and its exit
/// status, docs/cli.md), the desktop in every rejected IPC call (docs/desktop.md). Codes group
/// failures by what the admin can do about them, not by where they happened; the message says
/// the rest. The TypeScript type in `ui/src/bindings/ErrorCode.ts` is what the UI matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A setting, argument, spec or file is not valid; `field` names it when known.
    Invalid,
    /// The command line is misused (a required flag or value is missing). CLI only.
    Usage,
    /// A connection, job, execution or record that does not exist.
    NotFound,
    /// Conflicts with what is stored: a name already taken, a job already running.
    Conflict,
    /// Credentials are missing, expired or refused: re-authenticate the connection.
    Auth,
    /// The OS keychain could not be reached or refused access.
    KeychainUnavailable,
    /// The provider was down, rate limiting, refused the request or answered nonsense.
    Provider,
    /// A browser sign-in did not complete; nothing was stored.
    SignInFailed,
    /// Ran out of its configured time.
    TimedOut,
    /// Stopped by the admin or by shutdown.
    Cancelled,
    /// The local database failed, is read-only, or is not a Syncdesk database.
    Store,
    /// A local file or stream could not be read or written (the CLI's files; the desktop's
    /// settings, log folder and start-at-login entry).
    Io,
    /// The built-in sandbox could not start or is not running. Desktop only.
    Sandbox,
    /// A native notification could not be shown. Desktop only.
    NotificationsUnavailable,
    /// The system browser could not be opened for a sign-in. Desktop only.
    BrowserUnavailable,
    /// No update could be looked for or fetched: this copy has no update address, or the
    /// update server could not be reached or answered nonsense. Desktop only.
    UpdateUnavailable,
    /// An update was refused: its signature does not match Syncdesk's release key, or it is
    /// not the version announced. Nothing was installed. Desktop only.
    UpdateRefused,
    /// The desktop backend did not answer the UI (no such command, the shell stopped). Made by
    /// the UI itself, never sent by a shell.
    Ipc,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::Usage => "usage",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Auth => "auth",
            ErrorCode::KeychainUnavailable => "keychain_unavailable",
            ErrorCode::Provider => "provider",
            ErrorCode::SignInFailed => "sign_in_failed",
            ErrorCode::TimedOut => "timed_out",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Store => "store",
            ErrorCode::Io => "io",
            ErrorCode::Sandbox => "sandbox",
            ErrorCode::NotificationsUnavailable => "notifications_unavailable",
            ErrorCode::BrowserUnavailable => "browser_unavailable",
            ErrorCode::UpdateUnavailable => "update_unavailable",
            ErrorCode::UpdateRefused => "update_refused",
            ErrorCode::Ipc => "ipc",
        }
    }

    /// Whether the input was at fault (the CLI exits with status 2).
    pub fn is_bad_input(self) -> bool {
        matches!(self, ErrorCode::Invalid | ErrorCode::Usage)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&engine::Error> for ErrorCode {
    fn from(e: &engine::Error) -> Self {
        use engine::Error as E;
        match e {
            E::Invalid { .. } => ErrorCode::Invalid,
            E::NotFound { .. } => ErrorCode::NotFound,
            E::Conflict(_) => ErrorCode::Conflict,
            E::Keychain(_) => ErrorCode::KeychainUnavailable,
            E::MissingSecret { .. } | E::AuthExpired { .. } => ErrorCode::Auth,
            E::ProviderUnavailable { .. }
            | E::RateLimited { .. }
            | E::ProviderRejected { .. }
            | E::MalformedResponse { .. } => ErrorCode::Provider,
            E::SignInFailed(_) => ErrorCode::SignInFailed,
            E::TimedOut(_) => ErrorCode::TimedOut,
            E::Cancelled => ErrorCode::Cancelled,
            E::Store(_) => ErrorCode::Store,
        }
    }
}

/// An error as a shell reports it: the CLI prints `{"error": {"code", "message"}}` on stderr
/// with `--json`; the desktop rejects an IPC call with it. Callers match on `code`.
#[derive(Debug, Serialize, TS)]
pub struct ErrorDto {
    pub code: ErrorCode,
    pub message: String,
    /// For `invalid` errors: the input field at fault (engine spelling: `batch_size`,
    /// `mappings[2].target`), so the UI puts the message next to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub field: Option<String>,
}

impl From<&engine::Error> for ErrorDto {
    fn from(e: &engine::Error) -> Self {
        ErrorDto {
            code: e.into(),
            message: e.to_string(),
            field: e.field().map(str::to_string),
        }
    }
}

// ---- desktop IPC (docs/desktop.md) ----------------------------------------------------------

/// The app's health, shown on the dashboard and in the tray menu. The `*_message` fields
/// explain, in words an admin can act on, why a capability is off.
#[derive(Debug, Clone, Serialize, TS)]
pub struct HealthDto {
    pub jobs: u64,
    /// Jobs whose newest run failed or timed out.
    pub failing_jobs: u64,
    pub unread_alerts: u64,
    pub expired_connections: u64,
    pub dead_letters: u64,
    /// Whether native notifications can be shown (a notification daemon answered).
    pub notifications_available: bool,
    pub notifications_message: Option<String>,
    /// Whether the OS keychain can store secrets.
    pub keychain_available: bool,
    pub keychain_message: Option<String>,
    pub worker_running: bool,
    /// When all syncs were paused ("Pause all syncs"), `None` while they run.
    pub paused_since: Option<String>,
    /// Who paused them (the audit actor).
    pub paused_by: Option<String>,
}

/// A connection to create. Secrets travel only in this direction (UI → shell → keychain).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct NewConnectionDto {
    pub name: String,
    /// `"sandbox"` for the built-in sandbox's connector spec, or a spec document (TOML or
    /// JSON, docs/connectors.md).
    pub spec: String,
    #[serde(default)]
    #[ts(optional)]
    pub base_url: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub client_id: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub client_secret: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub api_key: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub refresh_token: Option<String>,
    /// A pasted bearer token (a HubSpot private app's access token).
    #[serde(default)]
    #[ts(optional)]
    pub access_token: Option<String>,
    /// How the connection authenticates when not the connector's first way: one of the
    /// connector's `auth.alternatives` (`"oauth2_refresh_token"`).
    #[serde(default)]
    #[ts(optional)]
    pub auth_kind: Option<String>,
    /// Where the provider's sign-in server is when not where the connector says (tests).
    #[serde(default)]
    #[ts(optional)]
    pub auth_base_url: Option<String>,
    /// The connector's values (`[values.<name>]`) by name.
    #[serde(default)]
    #[ts(optional)]
    pub values: Option<std::collections::BTreeMap<String, String>>,
}

/// A built-in connector (issue 15): what the connection wizard offers and `syncdesk
/// connector list|show --json` prints. Holds no spec text; `connector show --spec` does.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectorDto {
    /// Stable id: `stripe`, `xero`, `hubspot`.
    pub key: String,
    /// The provider's name ("Stripe").
    pub name: String,
    /// One line: what it syncs.
    pub summary: Option<String>,
    /// What the admin must do at the provider before connecting.
    pub setup: Option<String>,
    pub base_url: Option<String>,
    /// How a connection may sign in, the usual way first: `bearer` / `api_key` (paste a
    /// secret), `oauth2_refresh_token` (browser sign-in), `oauth2_client_credentials`, `none`.
    pub auth_kinds: Vec<String>,
    /// What the pasted secret is called at the provider ("Private app access token").
    pub secret_label: Option<String>,
    /// Whether a browser sign-in is possible (the spec gives an authorization URL).
    pub browser_sign_in: bool,
    pub entities: Vec<ConnectorEntityDto>,
    /// Connection-level values chosen when connecting (the Xero organisation).
    pub values: Vec<ConnectorValueDto>,
}

/// One entity a built-in connector syncs.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectorEntityDto {
    /// Its key (`customers`), what a job names.
    pub name: String,
    /// Singular display name ("Customer").
    pub label: String,
    /// Whether the provider can be asked for changes only (a job starts incremental).
    pub incremental: bool,
    /// The fields a new job stores (the default mappings' targets).
    pub fields: Vec<String>,
    /// The fields that identify a duplicate, if any.
    pub natural_keys: Vec<String>,
}

/// A connection-level value chosen when connecting.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectorValueDto {
    pub name: String,
    pub label: String,
    pub help: Option<String>,
    /// Whether the provider lists the possible values once signed in (`connection_value_choices`).
    pub has_choices: bool,
}

impl From<&engine::catalog::CatalogEntry> for ConnectorDto {
    fn from(e: &engine::catalog::CatalogEntry) -> Self {
        let spec = &e.spec;
        ConnectorDto {
            key: e.key.to_string(),
            name: spec.name.clone(),
            summary: spec.about.as_ref().and_then(|a| a.summary.clone()),
            setup: spec.about.as_ref().and_then(|a| a.setup.clone()),
            base_url: spec.base_url.clone(),
            auth_kinds: spec
                .auth
                .kinds()
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            secret_label: spec.auth.secret_label.clone(),
            browser_sign_in: spec.auth.authorize_url.is_some(),
            entities: spec
                .entities
                .iter()
                .map(|(name, x)| ConnectorEntityDto {
                    name: name.clone(),
                    label: x.label.clone().unwrap_or_else(|| name.clone()),
                    incremental: x.filters_changes(),
                    fields: x.mappings.iter().map(|m| m.target.clone()).collect(),
                    natural_keys: x.natural_keys.clone(),
                })
                .collect(),
            values: spec
                .values
                .iter()
                .map(|(name, v)| ConnectorValueDto {
                    name: name.clone(),
                    label: v.label.clone(),
                    help: v.help.clone(),
                    has_choices: v.choices.is_some(),
                })
                .collect(),
        }
    }
}

/// The connection wizard's input: a built-in connector, how to sign in, and optionally the
/// entities to make jobs for. Secrets travel inward only.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ConnectDto {
    /// The built-in connector's key (`ConnectorDto.key`).
    pub connector: String,
    pub name: String,
    /// One of the connector's `auth_kinds`; the first when omitted.
    #[serde(default)]
    #[ts(optional)]
    pub auth_kind: Option<String>,
    /// The pasted API key or access token (`bearer`, `api_key`), or the client secret
    /// (`oauth2_client_credentials`).
    #[serde(default)]
    #[ts(optional)]
    pub secret: Option<String>,
    /// The provider app's client id (browser sign-in, client credentials).
    #[serde(default)]
    #[ts(optional)]
    pub client_id: Option<String>,
    /// A browser sign-in's client secret, for providers whose apps have one (HubSpot).
    #[serde(default)]
    #[ts(optional)]
    pub client_secret: Option<String>,
    /// "Advanced: server address": where the provider's API is, when not its usual address.
    #[serde(default)]
    #[ts(optional)]
    pub base_url: Option<String>,
    /// Where the provider's sign-in server is, when not its usual address.
    #[serde(default)]
    #[ts(optional)]
    pub auth_base_url: Option<String>,
    /// Connection-level values already known (`ConnectorValueDto.name` → value).
    #[serde(default)]
    #[ts(optional)]
    pub values: Option<std::collections::BTreeMap<String, String>>,
    /// Entities to make a job for (`connection_connect` only).
    #[serde(default)]
    #[ts(optional)]
    pub entities: Option<Vec<String>>,
    /// The jobs' schedule; every hour when omitted.
    #[serde(default)]
    #[ts(optional)]
    pub schedule: Option<String>,
}

/// A connection and the jobs made with it (`connection_connect`, `connection add --jobs`).
#[derive(Debug, Serialize, TS)]
pub struct SetupDto {
    pub connection: ConnectionDto,
    pub jobs: Vec<JobDto>,
}

impl From<&engine::Setup> for SetupDto {
    fn from(s: &engine::Setup) -> Self {
        SetupDto {
            connection: (&s.connection).into(),
            jobs: s.jobs.iter().map(JobDto::from).collect(),
        }
    }
}

/// New credentials for a connection (re-authenticate): give exactly one.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ReauthDto {
    #[serde(default)]
    #[ts(optional)]
    pub client_secret: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub api_key: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub refresh_token: Option<String>,
}

/// How a job is doing (the engine's `JobHealth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum JobHealthDto {
    NeverRun,
    Running,
    Ok,
    /// Completed with failed records, cancelled, or records wait in Failed Records.
    NeedsAttention,
    /// Failed; its automatic retry is queued.
    Retrying,
    /// Failed on the connection's credentials; the retry waits for re-authentication.
    NeedsReauth,
    /// Failed; no automatic retry follows.
    Failing,
}

impl From<engine::JobHealth> for JobHealthDto {
    fn from(h: engine::JobHealth) -> Self {
        use engine::JobHealth as H;
        match h {
            H::NeverRun => JobHealthDto::NeverRun,
            H::Running => JobHealthDto::Running,
            H::Ok => JobHealthDto::Ok,
            H::NeedsAttention => JobHealthDto::NeedsAttention,
            H::Retrying => JobHealthDto::Retrying,
            H::NeedsReauth => JobHealthDto::NeedsReauth,
            H::Failing => JobHealthDto::Failing,
        }
    }
}

impl From<&engine::JobSummary> for JobSummaryDto {
    fn from(s: &engine::JobSummary) -> Self {
        JobSummaryDto {
            job: (&s.job).into(),
            last_execution: s.last_execution.as_ref().map(ExecutionDto::from),
            health: s.health.into(),
            dead_letters: s.dead_letters,
        }
    }
}

/// A job on the dashboard: the job, its newest run and how it is doing.
#[derive(Debug, Serialize, TS)]
pub struct JobSummaryDto {
    pub job: JobDto,
    pub last_execution: Option<ExecutionDto>,
    /// How the job is doing, decided in the engine.
    pub health: JobHealthDto,
    /// Records in the job's Failed Records tab.
    pub dead_letters: u64,
}

/// A job as the editor submits it (create and update). Omitted fields take the engine's
/// defaults on create (incremental pull, manual schedule, enabled, default settings).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct NewJobDto {
    pub name: String,
    /// Connection id or name.
    pub connection: String,
    pub entity: String,
    #[serde(default)]
    #[ts(optional)]
    pub direction: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub mode: Option<String>,
    /// `manual`, `every 15m`, `cron 0 * * * *`.
    #[serde(default)]
    #[ts(optional)]
    pub schedule: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub settings: Option<engine::JobSettings>,
}

/// What retrying one failed record did.
#[derive(Debug, Clone, Serialize, TS)]
pub struct RecordRetryDto {
    pub record_id: String,
    pub execution_id: String,
    pub succeeded: bool,
    /// `ok`, `failing`, `dead_letter` or `dismissed` after the retry.
    pub state: String,
    pub error: Option<String>,
}

impl From<&engine::RecordRetryOutcome> for RecordRetryDto {
    fn from(o: &engine::RecordRetryOutcome) -> Self {
        RecordRetryDto {
            record_id: o.record_id.clone(),
            execution_id: o.execution_id.clone(),
            succeeded: o.succeeded,
            state: o.state.as_str().to_string(),
            error: o.error.clone(),
        }
    }
}

/// The sandbox's fault switches as the Sandbox panel edits them (docs/sandbox.md has the
/// full set; these are the ones that demonstrate each failure rule).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct SandboxFaultsDto {
    /// Fraction of data requests answered 503.
    pub error_rate: f64,
    /// The next N data requests fail with 503 (request retries recover).
    pub error_burst: u32,
    /// The next N data requests are answered 429.
    pub rate_limit_burst: u32,
    /// `Retry-After` seconds sent with those 429s; none uses the backoff schedule.
    #[ts(optional)]
    pub retry_after_secs: Option<u64>,
    /// Delay before every data response (with a short job timeout, the run times out).
    pub latency_ms: u64,
    /// Fraction of every entity's records served invalid (record errors, then Failed Records).
    pub bad_record_rate: f64,
    /// Customers' `email` renamed to `email_address` (a schema change; trips the breaker).
    pub schema_drift: bool,
    /// The token endpoint refuses the client and every issued token is revoked: the next
    /// run fails with the connection expired.
    pub credentials_revoked: bool,
}

/// The built-in sandbox provider.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SandboxDto {
    pub running: bool,
    pub base_url: Option<String>,
    /// The `sandbox` connection, once created.
    pub connection_id: Option<String>,
    pub faults: SandboxFaultsDto,
    /// Data requests served since start.
    pub data_requests: u64,
}

/// An engine event, as the UI receives it on `syncdesk://event`. Never carries a secret.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventDto {
    ExecutionStarted {
        execution_id: String,
        job_id: String,
        job_name: String,
    },
    ExecutionWaiting {
        execution_id: String,
        job_id: String,
        reason: String,
        until: String,
    },
    ExecutionProgress {
        execution_id: String,
        job_id: String,
        counts: CountsDto,
        batch: String,
    },
    ExecutionFinished {
        execution_id: String,
        job_id: String,
        job_name: String,
        status: String,
        counts: CountsDto,
        note: Option<String>,
    },
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
    RetriesExhausted {
        execution_id: String,
        job_id: String,
        job_name: String,
        attempts: u32,
    },
    ConnectionExpired {
        connection_id: String,
        connection_name: String,
        detail: String,
    },
    DeadLettered {
        job_id: String,
        record_id: String,
    },
    /// Records of a job moved to Failed Records in one run.
    RecordsDeadLettered {
        execution_id: String,
        job_id: String,
        job_name: String,
        count: u64,
    },
    /// Alerts whose cause cleared: the UI drops them from what needs attention and the
    /// desktop withdraws their notifications.
    AlertsResolved {
        alert_ids: Vec<i64>,
        job_id: Option<String>,
        connection_id: Option<String>,
    },
    /// All syncs were paused (`true`) or resumed.
    SyncsPaused {
        paused: bool,
    },
}

impl From<engine::Counts> for CountsDto {
    fn from(c: engine::Counts) -> Self {
        CountsDto {
            processed: c.processed,
            created: c.created,
            updated: c.updated,
            skipped: c.skipped,
            failed: c.failed,
        }
    }
}

impl From<&engine::Event> for EventDto {
    fn from(e: &engine::Event) -> Self {
        use engine::Event as E;
        match e.clone() {
            E::ExecutionStarted {
                execution_id,
                job_id,
                job_name,
            } => EventDto::ExecutionStarted {
                execution_id,
                job_id,
                job_name,
            },
            E::ExecutionWaiting {
                execution_id,
                job_id,
                reason,
                until,
            } => EventDto::ExecutionWaiting {
                execution_id,
                job_id,
                reason,
                until,
            },
            E::ExecutionProgress {
                execution_id,
                job_id,
                counts,
                batch,
            } => EventDto::ExecutionProgress {
                execution_id,
                job_id,
                counts: counts.into(),
                batch,
            },
            E::ExecutionFinished {
                execution_id,
                job_id,
                job_name,
                status,
                counts,
                note,
            } => EventDto::ExecutionFinished {
                execution_id,
                job_id,
                job_name,
                status: status.to_string(),
                counts: counts.into(),
                note,
            },
            E::BreakerTripped {
                execution_id,
                job_id,
                job_name,
                note,
            } => EventDto::BreakerTripped {
                execution_id,
                job_id,
                job_name,
                note,
            },
            E::RetryScheduled {
                execution_id,
                job_id,
                retry_execution_id,
                attempt,
                due_at,
            } => EventDto::RetryScheduled {
                execution_id,
                job_id,
                retry_execution_id,
                attempt,
                due_at,
            },
            E::RetriesExhausted {
                execution_id,
                job_id,
                job_name,
                attempts,
            } => EventDto::RetriesExhausted {
                execution_id,
                job_id,
                job_name,
                attempts,
            },
            E::ConnectionExpired {
                connection_id,
                connection_name,
                detail,
            } => EventDto::ConnectionExpired {
                connection_id,
                connection_name,
                detail,
            },
            E::DeadLettered { job_id, record_id } => EventDto::DeadLettered { job_id, record_id },
            E::RecordsDeadLettered {
                execution_id,
                job_id,
                job_name,
                count,
            } => EventDto::RecordsDeadLettered {
                execution_id,
                job_id,
                job_name,
                count,
            },
            E::AlertsResolved {
                alert_ids,
                job_id,
                connection_id,
            } => EventDto::AlertsResolved {
                alert_ids,
                job_id,
                connection_id,
            },
            E::SyncsPaused { paused } => EventDto::SyncsPaused { paused },
        }
    }
}

/// A request to open a view, sent on `syncdesk://navigate` when the admin clicks a native
/// notification or a tray entry. Only ever a request to show something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct NavigateDto {
    /// `execution`, `connection`, `job` or `alerts`.
    pub view: String,
    pub id: Option<String>,
}

/// The desktop's Settings view: start at login (the OS's autostart entry), which events raise
/// a native notification, the theme, and where things are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SettingsDto {
    /// Whether the OS starts Syncdesk at login (in the background, window hidden).
    pub start_at_login: bool,
    /// Why start at login cannot be read or changed here, if it cannot.
    pub start_at_login_message: Option<String>,
    /// Start at login was offered once, after the first successful sync.
    pub start_at_login_offered: bool,
    pub notify_circuit_breaker: bool,
    pub notify_retries_exhausted: bool,
    pub notify_connection_expired: bool,
    pub notify_dead_letters: bool,
    pub notify_completed_with_errors: bool,
    /// `system`, `light` or `dark`.
    pub theme: String,
    pub data_dir: String,
    pub logs_dir: String,
    pub version: String,
    /// The settings file could not be read: why, and that the defaults are in use.
    pub problem: Option<String>,
    /// The shared database chosen in Settings (team mode), its password never included.
    pub shared_database: Option<String>,
    /// The database the app uses now: `this computer`, or the shared one's address. It
    /// differs from `shared_database` until the app restarts.
    pub database_in_use: String,
    /// The database chosen in Settings is not the one the app opened: a restart switches.
    pub database_restart_needed: bool,
}

/// "Use a shared database": its address, and the password, which goes to the OS keychain
/// and travels only this way (UI → shell).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct SharedDatabaseDto {
    /// `postgres://user@host:port/database`; a password written in it is moved to the
    /// keychain too.
    pub url: String,
    #[serde(default)]
    #[ts(optional)]
    pub password: Option<String>,
}

/// A change to the settings: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct SettingsUpdateDto {
    #[serde(default)]
    #[ts(optional)]
    pub start_at_login: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub start_at_login_offered: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub notify_circuit_breaker: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub notify_retries_exhausted: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub notify_connection_expired: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub notify_dead_letters: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub notify_completed_with_errors: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub theme: Option<String>,
}

/// What the update check found (docs/desktop.md, Updates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct UpdateDto {
    pub current_version: String,
    /// The newer version on offer, if any.
    pub version: Option<String>,
    /// Its release notes and date, as the update server gave them.
    pub notes: Option<String>,
    pub date: Option<String>,
    /// Downloaded and its signature verified: ready to install when the admin says so.
    pub verified: bool,
}

/// The admin asked to quit while runs are in progress, sent on `syncdesk://quit-request`: the
/// window asks before they stop (they end interrupted and are retried as after a crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct QuitRequestDto {
    pub runs_in_progress: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Point 10: one vocabulary. The engine's errors land on the desktop's groups (the CLI
    /// used to say `invalid_input` where the desktop said `invalid`), and the serde spelling
    /// is the one `as_str` and the docs give.
    #[test]
    fn one_error_code_vocabulary_for_both_shells() {
        use engine::Error as E;
        let cases: Vec<(E, &str)> = vec![
            (
                E::Invalid {
                    field: "batch_size".into(),
                    message: "too big".into(),
                },
                "invalid",
            ),
            (
                E::NotFound {
                    what: "job",
                    id: "x".into(),
                },
                "not_found",
            ),
            (E::Conflict("already running".into()), "conflict"),
            (E::Store("the database is read-only".into()), "store"),
            (E::Keychain("locked".into()), "keychain_unavailable"),
            (
                E::MissingSecret {
                    connection: "c".into(),
                    what: "client secret",
                },
                "auth",
            ),
            (
                E::AuthExpired {
                    detail: "refused".into(),
                },
                "auth",
            ),
            (
                E::ProviderUnavailable {
                    attempts: 4,
                    detail: "503".into(),
                },
                "provider",
            ),
            (
                E::RateLimited {
                    detail: "429".into(),
                },
                "provider",
            ),
            (
                E::ProviderRejected {
                    status: 400,
                    path: "/x".into(),
                    excerpt: String::new(),
                },
                "provider",
            ),
            (
                E::MalformedResponse {
                    path: "/x".into(),
                    detail: "not JSON".into(),
                },
                "provider",
            ),
            (E::SignInFailed("refused".into()), "sign_in_failed"),
            (E::TimedOut("1h".into()), "timed_out"),
            (E::Cancelled, "cancelled"),
        ];
        for (e, want) in &cases {
            let dto = ErrorDto::from(e);
            let v = serde_json::to_value(&dto).unwrap();
            assert_eq!(v["code"], *want, "{e:?}");
            assert_eq!(dto.code.as_str(), *want);
            assert_eq!(v["message"], e.to_string());
            assert_eq!(dto.code.is_bad_input(), *want == "invalid", "{e:?}");
        }
        let v = serde_json::to_value(ErrorDto::from(&cases[0].0)).unwrap();
        assert_eq!(v["field"], "batch_size");
        for code in [
            ErrorCode::Usage,
            ErrorCode::Io,
            ErrorCode::NotificationsUnavailable,
            ErrorCode::Ipc,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        assert!(ErrorCode::Usage.is_bad_input());
    }
}

#[cfg(test)]
mod bindings {
    //! The UI imports these types from `ui/src/bindings`; a DTO change that is not
    //! regenerated there fails here instead of at runtime in the webview.

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use ts_rs::{Config, TS};

    use super::*;

    fn render(dir: &Path) {
        let cfg = Config::new().with_out_dir(dir).with_large_int("number");
        ConnectionDto::export_all(&cfg).unwrap();
        JobDto::export_all(&cfg).unwrap();
        ExecutionDto::export_all(&cfg).unwrap();
        ExecutionDetailDto::export_all(&cfg).unwrap();
        SchemaChangeDto::export_all(&cfg).unwrap();
        RecordErrorDto::export_all(&cfg).unwrap();
        DeadLetterDto::export_all(&cfg).unwrap();
        AlertDto::export_all(&cfg).unwrap();
        AuditDto::export_all(&cfg).unwrap();
        PageDto::<ExecutionDto>::export_all(&cfg).unwrap();
        ErrorDto::export_all(&cfg).unwrap();
        ErrorCode::export_all(&cfg).unwrap();
        HealthDto::export_all(&cfg).unwrap();
        NewConnectionDto::export_all(&cfg).unwrap();
        ConnectorDto::export_all(&cfg).unwrap();
        SetupDto::export_all(&cfg).unwrap();
        ConnectDto::export_all(&cfg).unwrap();
        ConnectionValueDto::export_all(&cfg).unwrap();
        ValueChoiceDto::export_all(&cfg).unwrap();
        ReauthDto::export_all(&cfg).unwrap();
        JobSummaryDto::export_all(&cfg).unwrap();
        NewJobDto::export_all(&cfg).unwrap();
        RecordRetryDto::export_all(&cfg).unwrap();
        SandboxFaultsDto::export_all(&cfg).unwrap();
        SandboxDto::export_all(&cfg).unwrap();
        EventDto::export_all(&cfg).unwrap();
        NavigateDto::export_all(&cfg).unwrap();
        QuitRequestDto::export_all(&cfg).unwrap();
        SettingsDto::export_all(&cfg).unwrap();
        SettingsUpdateDto::export_all(&cfg).unwrap();
        UpdateDto::export_all(&cfg).unwrap();
        WorkerDto::export_all(&cfg).unwrap();
        SharedDatabaseDto::export_all(&cfg).unwrap();
    }

    fn read_dir(dir: &Path) -> BTreeMap<PathBuf, String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if p.extension().is_some_and(|x| x == "ts") {
                    let rel = p.strip_prefix(root).unwrap().to_path_buf();
                    out.insert(rel, std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    #[test]
    fn typescript_bindings_in_ui_are_current() {
        // Cargo sets the variable at run time too; prefer it, because a test binary reused from a
        // shared target dir may have been compiled in another checkout of the repository.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let committed = manifest_dir.join("../../ui/src/bindings");
        if std::env::var_os("SYNCDESK_BLESS_BINDINGS").is_some() {
            let _ = std::fs::remove_dir_all(&committed);
            render(&committed);
        }
        let fresh = tempfile::tempdir().unwrap();
        render(fresh.path());
        let want = read_dir(fresh.path());
        let have = read_dir(&committed);
        let stale: Vec<_> = want
            .iter()
            .filter(|(p, text)| have.get(*p) != Some(text))
            .map(|(p, _)| p.display().to_string())
            .chain(
                have.keys()
                    .filter(|p| !want.contains_key(*p))
                    .map(|p| format!("{} (no longer generated)", p.display())),
            )
            .collect();
        assert!(
            stale.is_empty(),
            "ui/src/bindings is out of date: {stale:?}; run \
             `SYNCDESK_BLESS_BINDINGS=1 cargo test -p syncdesk-dto` and commit the result"
        );
    }
}
