//! The `syncdesk` command line: a thin shell over the engine (one engine call per command,
//! JSON shapes in `dto`), plus the sandbox server and the guided demo.
// A command line's interface is its standard output.
#![allow(clippy::print_stdout)]

mod demo;
mod table;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use syncdesk_engine::{
    self as engine, ConnectionStatus, ConnectorSpec, Engine, EngineOptions, Error, ExecutionStatus,
    NewConnection, NewJob, PageRequest, RecordErrorKind, RunOptions, Secret, SecretKind,
    SecretStore, SystemClock,
};
use syncdesk_sandbox::{Faults, Sandbox, SandboxConfig};

use crate::table::Table;
use syncdesk_dto::*;

/// Exit status of a command refused for bad input (as clap's own usage errors).
const EXIT_BAD_INPUT: u8 = 2;

/// Exit status of `job run` when the execution completed with record errors.
const EXIT_COMPLETED_WITH_ERRORS: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "syncdesk",
    version,
    about = "Sync business records with provider APIs, and survive their failures"
)]
struct Cli {
    /// Where the database lives (default: the OS data directory, e.g. ~/.local/share/syncdesk).
    #[arg(long, global = true, env = "SYNCDESK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A shared PostgreSQL database instead of the data directory's own file (team mode),
    /// e.g. postgres://syncdesk@db.example/syncdesk. Its password comes from PGPASSWORD or
    /// the URL; secrets of provider accounts stay in this machine's keychain.
    #[arg(
        long,
        global = true,
        env = "SYNCDESK_DATABASE",
        hide_env_values = true,
        value_name = "URL"
    )]
    database: Option<String>,
    /// Where secrets live: the OS keychain, or memory (gone when the command ends).
    #[arg(long, global = true, value_enum, default_value_t = SecretStoreKind::Keyring, env = "SYNCDESK_SECRET_STORE")]
    secret_store: SecretStoreKind,
    /// Log more (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SecretStoreKind {
    Keyring,
    Memory,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the sandbox, create a connection and a job per entity, run them clean and with faults, and show what happened.
    Demo(DemoArgs),
    /// The built-in provider simulator.
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// The built-in connectors: providers Syncdesk connects to without a spec file.
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Provider accounts.
    #[command(subcommand)]
    Connection(ConnectionCmd),
    /// Sync jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Execution history, newest first.
    Executions(ExecutionsArgs),
    /// One execution.
    #[command(subcommand)]
    Execution(ExecutionCmd),
    /// The error log of an execution.
    Errors(ErrorsArgs),
    /// Records that failed in three executions (a job's Failed Records).
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLetterCmd),
    /// Alerts, newest first.
    Alerts(AlertsArgs),
    /// The audit log, newest first.
    Audit(ListArgs),
    /// Run scheduled jobs and automatic retries until interrupted.
    Worker(WorkerArgs),
    /// The apps and workers that run syncs on this database, and whether each is alive.
    Workers {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// How things stand, and all syncs at once: pause, resume, run what is due now.
    #[command(subcommand)]
    Syncs(SyncsCmd),
    /// The database as a whole: its tables' counts and checksums, and copying it to another
    /// (this computer's file ↔ a shared PostgreSQL database).
    #[command(subcommand)]
    Store(StoreCmd),
}

#[derive(Debug, Subcommand)]
enum StoreCmd {
    /// Each table's rows and checksum: two databases that say the same hold the same.
    Summary {
        /// Print the tables as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy jobs, connections (their secrets stay in this computer's keychain), executions,
    /// error logs, Failed Records, alerts, the audit log and records into a new, empty
    /// database, checked table by table (rows and checksums) before it is committed. Stop the
    /// app and workers on this database first, so nothing changes under the copy.
    Copy {
        /// Where to: a PostgreSQL URL (postgres://user@host/database), or the path of a new
        /// SQLite file.
        #[arg(long)]
        to: String,
        /// Print the tables as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SyncsCmd {
    /// Jobs, failing jobs, unread alerts, connections to re-authenticate, Failed Records,
    /// and whether syncs are paused (the desktop's dashboard and tray, in words).
    Status,
    /// Pause all syncs: no scheduled run or automatic retry starts, in the app or any
    /// worker on this data, until `syncdesk syncs resume`. Runs under way finish.
    Pause,
    /// Resume all syncs; what fell due while paused runs once.
    Resume,
    /// Make every scheduled job and waiting automatic retry due now, and run them.
    RunDue,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Customers in the sandbox (products, invoices and payments scale with it).
    #[arg(long, default_value_t = 250)]
    customers: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum SandboxCmd {
    /// Serve the sandbox provider on 127.0.0.1 until interrupted.
    Serve {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Seed of the generated data (the same seed gives the same records).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many customers to serve.
        #[arg(long, default_value_t = 250)]
        customers: usize,
        /// How many products to serve.
        #[arg(long, default_value_t = 50)]
        products: usize,
        /// How many invoices to serve.
        #[arg(long, default_value_t = 400)]
        invoices: usize,
        /// How many payments to serve.
        #[arg(long, default_value_t = 300)]
        payments: usize,
        /// Faults to start with (JSON, see docs/sandbox.md); change them at runtime with PUT /_admin/faults.
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Play a real provider's API: stripe, xero or hubspot (default: the sandbox's own API).
        #[arg(long)]
        persona: Option<syncdesk_sandbox::Persona>,
        /// Append every request and response (credentials redacted) to this file as JSON lines.
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Print the connector spec of the sandbox (TOML).
    Spec,
}

#[derive(Debug, Args)]
struct SecretArgs {
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Read the client secret from standard input.
    #[arg(long)]
    client_secret_stdin: bool,
    /// Read an API key from this environment variable.
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// Read an API key from standard input.
    #[arg(long)]
    api_key_stdin: bool,
    /// Read a refresh token from this environment variable.
    #[arg(long, value_name = "VAR")]
    refresh_token_env: Option<String>,
    /// Read a bearer token from this environment variable.
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ConnectorCmd {
    /// Every built-in connector: its key, its name and what it syncs.
    List {
        /// Print the connectors as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One built-in connector: what it syncs, how it signs in, what to set up at the provider.
    Show {
        /// The connector's key (`syncdesk connector list`), e.g. stripe.
        key: String,
        /// Print its connector spec (TOML) instead: a start for a custom connector.
        #[arg(long, conflicts_with = "json")]
        spec: bool,
        /// Print the connector as JSON.
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum ConnectionCmd {
    /// Create a connection from a built-in connector or a connector spec file, checked with the provider first. Secrets are read from stdin or an environment variable, never from arguments.
    Add {
        /// A name of your choice, used wherever the connection is named.
        #[arg(long)]
        name: String,
        /// A built-in connector by key (`syncdesk connector list`), e.g. stripe.
        #[arg(
            long,
            value_name = "KEY",
            required_unless_present = "spec",
            conflicts_with = "spec"
        )]
        connector: Option<String>,
        /// Connector spec (TOML or JSON); `sandbox` for the built-in sandbox's spec.
        #[arg(long, value_name = "FILE")]
        spec: Option<String>,
        /// Also create a pull job for each of these entities (comma-separated, or `all`), with the connector's default mappings and natural keys, incremental where the provider allows. A job is named after the connection and its entity.
        #[arg(long, value_name = "ENTITY,…|all", value_delimiter = ',')]
        jobs: Vec<String>,
        /// The schedule of the jobs --jobs creates: `manual`, `every 15m`, `cron 0 * * * *`.
        #[arg(long, requires = "jobs", default_value = engine::DEFAULT_SCHEDULE)]
        schedule: String,
        /// The provider's API address, when it is not the spec's own.
        #[arg(long)]
        base_url: Option<String>,
        /// The OAuth2 client id the provider gave you.
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        secrets: SecretArgs,
        /// Sign in another way than the connector's first one, when it offers one
        /// (e.g. oauth2_refresh_token for a connector that takes a pasted token first).
        #[arg(long = "auth", value_name = "KIND")]
        auth_kind: Option<String>,
        /// Where the provider's sign-in server is, when not where the connector says
        /// (scheme, host and port only; for a test server).
        #[arg(long, value_name = "URL")]
        auth_base_url: Option<String>,
        /// A value the connector asks for, as NAME=VALUE (repeat for each), e.g.
        /// --value tenant_id=… ; `connection values` shows which.
        #[arg(long = "value", value_name = "NAME=VALUE")]
        values: Vec<String>,
        /// Print the connection as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The values a connection's connector asks for (a Xero organisation), what the
    /// connection holds, and the possible ones the provider lists.
    Values {
        /// The connection's name, id or id prefix.
        connection: String,
        /// Print the values as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set one of a connection's values; a value the provider lists must be one it lists.
    SetValue {
        /// The connection's name, id or id prefix.
        connection: String,
        /// NAME=VALUE, e.g. tenant_id=… (`connection values` lists the possible ones).
        #[arg(value_name = "NAME=VALUE")]
        value: String,
        /// Print the connection as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a connection now: its credentials, and one small page of its first entity.
    /// Exit status 0 when it works.
    Test {
        /// The connection's name, id or id prefix.
        connection: String,
        /// Print the connection as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store new credentials for a connection (re-authenticate).
    Reauth {
        /// The connection's name, id or id prefix.
        connection: String,
        #[command(flatten)]
        secrets: SecretArgs,
    },
    /// Every connection with its status.
    List {
        /// Print the connections as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One connection: status, token expiry and the fields its provider last sent.
    Show {
        /// The connection's name, id or id prefix.
        connection: String,
        /// Print the connection as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a connection that no job uses: its secrets leave the keychain. Without --yes,
    /// says what would be deleted and exits 2.
    Delete {
        /// The connection's name, id or id prefix.
        connection: String,
        /// Really delete it.
        #[arg(long)]
        yes: bool,
        /// Print what was (or would be) deleted as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JobCmd {
    /// Create a job from flags, or from a job file (TOML/JSON, docs/cli.md).
    Add(JobAddArgs),
    /// Change a job's schedule, mode or settings (audited, before → after).
    Edit(JobEditArgs),
    /// Stop running a job on its schedule (a manual `job run` still works).
    Pause {
        /// The job's name, id or id prefix.
        job: String,
    },
    /// Run a paused job on its schedule again.
    Resume {
        /// The job's name, id or id prefix.
        job: String,
    },
    /// Delete a job with its execution history and error log (the records it synced stay).
    /// Without --yes, says what would be deleted and exits 2.
    Delete {
        /// The job's name, id or id prefix.
        job: String,
        /// Really delete it.
        #[arg(long)]
        yes: bool,
        /// Print what was (or would be) deleted as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Jobs with their schedule and last status.
    List(ListArgs),
    /// A job's settings, mappings and prevention hints.
    Show {
        /// The job's name, id or id prefix.
        job: String,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a job now and wait. Exit status: 0 completed, 3 completed with errors, 1 failed / timed out / cancelled.
    Run {
        /// The job's name, id or id prefix.
        job: String,
        /// Fetch everything, even for an incremental job.
        #[arg(long)]
        full: bool,
        /// Print the execution as JSON (nothing else on standard output).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct JobAddArgs {
    /// Job file; flags below override it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// A name of your choice, used wherever the job is named.
    #[arg(long)]
    name: Option<String>,
    /// The connection to sync with (name, id or id prefix).
    #[arg(long)]
    connection: Option<String>,
    /// The provider's entity, e.g. `customers`.
    #[arg(long)]
    entity: Option<String>,
    /// `full` fetches everything each run; `incremental` only what changed since the last success.
    #[arg(long, value_parser = ["full", "incremental"])]
    mode: Option<String>,
    /// `manual`, `every 15m`, or `cron 0 * * * *`.
    #[arg(long)]
    schedule: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct JobEditArgs {
    /// The job's name, id or id prefix.
    job: String,
    /// `full` fetches everything each run; `incremental` only what changed since the last success.
    #[arg(long, value_parser = ["full", "incremental"])]
    mode: Option<String>,
    /// `manual`, `every 15m`, or `cron 0 * * * *`.
    #[arg(long)]
    schedule: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// The job settings `job add` and `job edit` both take.
#[derive(Debug, Args)]
struct SettingsArgs {
    /// Records per page, 1 to 1000.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Execution timeout, e.g. `30m`.
    #[arg(long, value_parser = parse_secs)]
    timeout: Option<u64>,
    /// Automatic retries of a failed execution (each after the next of --retry-delays).
    #[arg(long)]
    max_retries: Option<u32>,
    /// Do not retry failed executions automatically.
    #[arg(long, conflicts_with = "retry")]
    no_retry: bool,
    /// Retry failed executions automatically (while `syncdesk worker` or the desktop app runs).
    #[arg(long)]
    retry: bool,
    /// Waits before automatic retries, e.g. `5m,30m,2h`.
    #[arg(long, value_parser = parse_secs_list)]
    retry_delays: Option<SecsList>,
    /// Waits between attempts of a failing request, e.g. `1s,5s,15s`.
    #[arg(long, value_parser = parse_secs_list)]
    backoff: Option<SecsList>,
    /// Look for records that already exist under another id.
    #[arg(long, conflicts_with = "no_duplicate_detection")]
    duplicate_detection: bool,
    /// Do not look for records that already exist under another id.
    #[arg(long)]
    no_duplicate_detection: bool,
}

impl SettingsArgs {
    /// Apply the flags given to `s`; the others leave it as it is.
    fn apply(&self, s: &mut engine::JobSettings) {
        if let Some(v) = self.batch_size {
            s.batch_size = v;
        }
        if let Some(v) = self.timeout {
            s.timeout_secs = v;
        }
        if let Some(v) = self.max_retries {
            s.max_retries = v;
        }
        if self.no_retry {
            s.retry_on_failure = false;
        }
        if self.retry {
            s.retry_on_failure = true;
        }
        if let Some(v) = &self.retry_delays {
            s.retry_delays_secs = v.0.clone();
        }
        if let Some(v) = &self.backoff {
            s.backoff_secs = v.0.clone();
        }
        if self.duplicate_detection {
            s.duplicate_detection = true;
        }
        if self.no_duplicate_detection {
            s.duplicate_detection = false;
        }
    }
}

fn parse_secs(s: &str) -> Result<u64, String> {
    engine::model::parse_duration(s).map(|d| d.as_secs())
}

/// A comma-separated list of durations, in seconds (one clap value, not many).
#[derive(Debug, Clone)]
struct SecsList(Vec<u64>);

fn parse_secs_list(s: &str) -> Result<SecsList, String> {
    s.split(',')
        .map(parse_secs)
        .collect::<Result<_, _>>()
        .map(SecsList)
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Items per page, 1 to 500 (a value outside is refused, not clamped).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(engine::model::MAX_PAGE_LIMIT)))]
    limit: u32,
    /// Continue after this cursor (printed as next_cursor).
    #[arg(long)]
    cursor: Option<String>,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExecutionsArgs {
    /// Only this job's executions (name, id or id prefix).
    #[arg(long)]
    job: Option<String>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Subcommand)]
enum ExecutionCmd {
    /// Status, counts, diagnosis and retry chain of an execution.
    Show {
        /// The execution's id or a unique prefix of it (4 characters or more).
        id: String,
        /// Print the execution as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a running or queued execution.
    Cancel {
        /// The execution's id or a unique prefix of it (4 characters or more).
        id: String,
    },
}

#[derive(Debug, Args)]
struct ErrorsArgs {
    /// The execution's id or a unique prefix of it (4 characters or more).
    execution: String,
    /// Only this kind: missing-value, wrong-type, conversion, duplicate or unknown-reference
    /// (the plain names in any case, and the older ValidationError, SchemaMismatch,
    /// TransformError, DuplicateConflict, ReferenceNotFound).
    #[arg(long)]
    kind: Option<String>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Subcommand)]
enum DeadLetterCmd {
    /// A job's Failed Records, most recently failed first.
    List {
        /// The job's name, id or id prefix.
        job: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Re-process records now (fresh from the source).
    Retry {
        /// The job's name, id or id prefix.
        job: String,
        /// The provider's record ids, as `dead-letters list` shows them.
        records: Vec<String>,
        /// Every dead letter of the job.
        #[arg(long, conflicts_with = "records")]
        all: bool,
        /// Print the outcomes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark records intentionally skipped (audited).
    Dismiss {
        /// The job's name, id or id prefix.
        job: String,
        /// The provider's record ids, as `dead-letters list` shows them.
        records: Vec<String>,
        /// Every dead letter of the job.
        #[arg(long, conflicts_with = "records")]
        all: bool,
        /// Why (recorded in the audit log).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AlertsArgs {
    #[command(subcommand)]
    action: Option<AlertsAction>,
    /// Only alerts that are unread and not resolved.
    #[arg(long)]
    unread: bool,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Subcommand)]
enum AlertsAction {
    /// Mark alerts read: one by its id, or every unread one with --all.
    Read {
        /// The alert's id, as `syncdesk alerts` shows it.
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every unread alert.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// Recover, run what is due now, and exit.
    #[arg(long)]
    once: bool,
    /// How this worker is shown and recorded (default: this machine's name). A named worker
    /// is taken for another machine: if it stops answering, other workers take over its
    /// runs once its lease lapses.
    #[arg(long)]
    name: Option<String>,
    /// Seconds a run's lease lasts between renewals (renewed every third of it): how long
    /// other workers wait before they take over a run of a worker that stopped answering.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    lease: u64,
}

/// A failure of the command, with its exit status.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Engine(#[from] Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
}

impl CliError {
    fn code(&self) -> ErrorCode {
        match self {
            CliError::Engine(e) => e.into(),
            CliError::Usage(_) => ErrorCode::Usage,
            CliError::Io(_) => ErrorCode::Io,
        }
    }

    /// The `--json` form, in the vocabulary the desktop uses too.
    fn to_dto(&self) -> ErrorDto {
        match self {
            CliError::Engine(e) => e.into(),
            other => ErrorDto {
                code: other.code(),
                message: other.to_string(),
                field: None,
            },
        }
    }

    /// 2 for bad input (docs/cli.md), 1 for any other failure.
    fn exit_status(&self) -> u8 {
        if self.code().is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            1
        }
    }
}

type CliResult<T = ExitCode> = Result<T, CliError>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = wants_json(&cli.command);
    let filter = match cli.verbose {
        // With --json, stderr carries the error object: warnings (a store made private, a
        // read-only store) would break a script reading it, so only -v shows them.
        0 if json => "error",
        0 => "warn",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info,hyper=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SYNCDESK_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            if json {
                eprintln!("{}", serde_json::json!({"error": e.to_dto()}));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_status())
        }
    }
}

fn wants_json(c: &Command) -> bool {
    match c {
        Command::Demo(a) => a.json,
        Command::Connector(ConnectorCmd::List { json } | ConnectorCmd::Show { json, .. }) => *json,
        Command::Connection(
            ConnectionCmd::Add { json, .. }
            | ConnectionCmd::Test { json, .. }
            | ConnectionCmd::List { json }
            | ConnectionCmd::Show { json, .. }
            | ConnectionCmd::Values { json, .. }
            | ConnectionCmd::SetValue { json, .. }
            | ConnectionCmd::Delete { json, .. },
        ) => *json,
        Command::Job(JobCmd::Add(a)) => a.json,
        Command::Job(JobCmd::Edit(a)) => a.json,
        Command::Job(JobCmd::Delete { json, .. }) => *json,
        Command::Job(JobCmd::List(l)) => l.json,
        Command::Job(JobCmd::Show { json, .. } | JobCmd::Run { json, .. }) => *json,
        Command::Executions(a) => a.list.json,
        Command::Execution(ExecutionCmd::Show { json, .. }) => *json,
        Command::Errors(a) => a.list.json,
        Command::DeadLetters(DeadLetterCmd::List { list, .. }) => list.json,
        Command::DeadLetters(DeadLetterCmd::Retry { json, .. }) => *json,
        Command::Alerts(a) => a.list.json,
        Command::Audit(l) => l.json,
        Command::Workers { json } => *json,
        Command::Store(StoreCmd::Summary { json } | StoreCmd::Copy { json, .. }) => *json,
        _ => false,
    }
}

fn data_dir(cli: &Cli) -> CliResult<PathBuf> {
    match &cli.data_dir {
        Some(d) => Ok(d.clone()),
        None => dirs::data_dir().map(|d| d.join("syncdesk")).ok_or_else(|| {
            CliError::Usage("no OS data directory is known here; pass --data-dir".into())
        }),
    }
}

fn secret_store(kind: SecretStoreKind) -> Arc<dyn SecretStore> {
    match kind {
        SecretStoreKind::Keyring => Arc::new(engine::KeyringSecretStore::new("syncdesk")),
        SecretStoreKind::Memory => Arc::new(engine::MemorySecretStore::default()),
    }
}

fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "admin".into())
}

/// The store the command works on: `--database`, else the data directory's file.
fn database(cli: &Cli) -> CliResult<engine::Database> {
    match &cli.database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(engine::Database::Url(url.clone()))
        }
        Some(_) => Err(CliError::Usage(
            "--database takes a PostgreSQL URL (postgres://user@host/database); without it the \
             data directory's own database is used"
                .into(),
        )),
        None => Ok(data_dir(cli)?.join("syncdesk.db").into()),
    }
}

async fn open(cli: &Cli) -> CliResult<Engine> {
    open_at(cli, database(cli)?).await
}

async fn open_at(cli: &Cli, database: engine::Database) -> CliResult<Engine> {
    Ok(Engine::open(EngineOptions {
        database,
        secrets: secret_store(cli.secret_store),
        clock: Arc::new(SystemClock),
        actor: actor(),
    })
    .await?)
}

fn print_json<T: Serialize>(v: &T) -> CliResult {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Io(e.to_string()))?;
    println!("{s}");
    Ok(ExitCode::SUCCESS)
}

fn page<T, D>(p: &engine::Page<T>) -> PageDto<D>
where
    D: Serialize + for<'a> From<&'a T>,
{
    PageDto {
        items: p.items.iter().map(D::from).collect(),
        next_cursor: p.next_cursor.clone(),
    }
}

fn req(l: &ListArgs) -> PageRequest {
    PageRequest {
        cursor: l.cursor.clone(),
        limit: l.limit,
    }
}

fn fmt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
    .unwrap_or_else(|| "-".into())
}

fn more(next: &Option<String>) {
    if let Some(c) = next {
        println!("(more: --cursor {c})");
    }
}

/// Read one secret from the flags: stdin or a named environment variable, never argv.
/// `NAME=VALUE` from `--value` / `set-value`.
fn parse_value(arg: &str) -> CliResult<(String, String)> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(CliError::Usage(format!(
            "'{arg}' is not NAME=VALUE (e.g. tenant_id=…)"
        ))),
    }
}

/// `--auth KIND`.
fn parse_auth_kind(kind: &str) -> CliResult<engine::AuthKind> {
    kind.trim().parse().map_err(|_| {
        CliError::Usage(format!(
            "'{kind}' is not a way to sign in; use one of: oauth2_client_credentials, oauth2_refresh_token, bearer, api_key, none"
        ))
    })
}

/// A connection's values, each with the possible ones when the provider lists them.
async fn connection_values(
    e: &Engine,
    connection: &str,
) -> CliResult<Vec<(engine::ConnectionValue, Option<Vec<engine::ValueChoice>>)>> {
    let mut out = Vec::new();
    for v in e.connection_values(connection).await? {
        let choices = if v.listed {
            Some(e.value_choices(connection, &v.name).await?)
        } else {
            None
        };
        out.push((v, choices));
    }
    Ok(out)
}

fn read_secrets(a: &SecretArgs) -> CliResult<Vec<(SecretKind, Secret)>> {
    let mut out = Vec::new();
    let mut stdin_used = false;
    let mut from_stdin = |what: &str| -> CliResult<Secret> {
        if stdin_used {
            return Err(CliError::Usage(
                "only one secret can be read from standard input".into(),
            ));
        }
        stdin_used = true;
        if std::io::stdin().is_terminal() {
            eprint!("{what}: ");
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Io(format!("reading {what} from stdin: {e}")))?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        if s.is_empty() {
            return Err(CliError::Usage(format!(
                "{what} read from standard input is empty"
            )));
        }
        Ok(Secret::new(s))
    };
    let from_env = |var: &str, what: &str| -> CliResult<Secret> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(CliError::Usage(format!(
                "environment variable {var} (for the {what}) is not set or empty"
            ))),
        }
    };
    if let Some(v) = &a.client_secret_env {
        out.push((SecretKind::ClientSecret, from_env(v, "client secret")?));
    }
    if a.client_secret_stdin {
        out.push((SecretKind::ClientSecret, from_stdin("client secret")?));
    }
    if let Some(v) = &a.api_key_env {
        out.push((SecretKind::ApiKey, from_env(v, "API key")?));
    }
    if a.api_key_stdin {
        out.push((SecretKind::ApiKey, from_stdin("API key")?));
    }
    if let Some(v) = &a.refresh_token_env {
        out.push((SecretKind::RefreshToken, from_env(v, "refresh token")?));
    }
    if let Some(v) = &a.token_env {
        out.push((SecretKind::AccessToken, from_env(v, "bearer token")?));
    }
    Ok(out)
}

fn read_spec(spec: &str) -> CliResult<ConnectorSpec> {
    if spec == "sandbox" {
        return Ok(ConnectorSpec::parse(syncdesk_sandbox::CONNECTOR_SPEC)?);
    }
    let text = std::fs::read_to_string(spec)
        .map_err(|e| CliError::Usage(format!("cannot read spec file {spec}: {e}")))?;
    ConnectorSpec::parse(&text).map_err(|e| match e {
        Error::Invalid { field, message } => CliError::Engine(Error::Invalid {
            field: format!("{field} in {spec}"),
            message,
        }),
        other => other.into(),
    })
}

async fn run(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Demo(a) => {
            demo::run(
                data_dir(&cli)?,
                cli.secret_store == SecretStoreKind::Memory,
                a.customers,
                a.json,
            )
            .await
        }
        Command::Sandbox(SandboxCmd::Spec) => {
            print!("{}", syncdesk_sandbox::CONNECTOR_SPEC);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox(SandboxCmd::Serve {
            port,
            seed,
            customers,
            products,
            invoices,
            payments,
            faults,
            persona,
            record,
        }) => {
            let faults: Faults = match faults {
                Some(p) => {
                    let text = std::fs::read_to_string(p).map_err(|e| {
                        CliError::Usage(format!("cannot read {}: {e}", p.display()))
                    })?;
                    serde_json::from_str(&text).map_err(|e| {
                        CliError::Usage(format!("invalid faults file {}: {e}", p.display()))
                    })?
                }
                None => Faults::default(),
            };
            let config = SandboxConfig {
                seed: *seed,
                customers: *customers,
                products: *products,
                invoices: *invoices,
                payments: *payments,
                faults,
                persona: *persona,
                record: record.clone(),
                ..Default::default()
            };
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
            let sandbox = Sandbox::start_on(addr, config)
                .await
                .map_err(|e| CliError::Io(format!("cannot listen on {addr}: {e}")))?;
            match sandbox.persona() {
                None => println!("sandbox listening on {} (client id sandbox-client, secret sandbox-secret); Ctrl-C stops it", sandbox.base_url()),
                Some(persona) => {
                    let key = sandbox
                        .config()
                        .api_key
                        .as_deref()
                        .map(|k| format!(", API key {k}"))
                        .unwrap_or_default();
                    println!("{persona} persona listening on {} (OAuth client id sandbox-client, secret sandbox-secret{key}); Ctrl-C stops it", sandbox.base_url());
                }
            }
            let _ = tokio::signal::ctrl_c().await;
            sandbox.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(c) => connector(c),
        Command::Connection(c) => connection(&cli, c).await,
        Command::Job(j) => job(&cli, j).await,
        Command::Executions(a) => {
            let e = open(&cli).await?;
            let p = e.executions(a.job.as_deref(), &req(&a.list)).await;
            let names = match &p {
                Ok(p) if !a.list.json => {
                    job_names(&e, p.items.iter().map(|x| x.job_id.as_str())).await
                }
                _ => Default::default(),
            };
            e.shutdown().await;
            let p = p?;
            if a.list.json {
                return print_json(&page::<_, ExecutionDto>(&p));
            }
            let mut t = Table::new(&[
                "ID",
                "JOB",
                "STATUS",
                "TRIGGER",
                "ATTEMPT",
                "STARTED",
                "DURATION",
                "PROCESSED",
                "CREATED",
                "UPDATED",
                "SKIPPED",
                "FAILED",
            ]);
            for x in &p.items {
                t.row(vec![
                    x.id.clone(),
                    names
                        .get(&x.job_id)
                        .cloned()
                        .unwrap_or_else(|| x.job_id.clone()),
                    status_label(x.status).to_string(),
                    x.trigger.to_string(),
                    x.attempt.to_string(),
                    fmt_time(x.started_at),
                    x.duration()
                        .map(|d| format!("{:.1}s", d.num_milliseconds() as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    x.counts.processed.to_string(),
                    x.counts.created.to_string(),
                    x.counts.updated.to_string(),
                    x.counts.skipped.to_string(),
                    x.counts.failed.to_string(),
                ]);
            }
            print!("{}", t.render());
            more(&p.next_cursor);
            Ok(ExitCode::SUCCESS)
        }
        Command::Execution(ExecutionCmd::Show { id, json }) => {
            let e = open(&cli).await?;
            // The engine takes a prefix too; its detail queries want the whole id.
            let d = match e.execution(id).await {
                Ok(x) => e.execution_detail(&x.id).await,
                Err(err) => Err(err),
            };
            e.shutdown().await;
            let d = d?;
            if *json {
                return print_json(&ExecutionDetailDto::from(&d));
            }
            print_detail(&d);
            Ok(ExitCode::SUCCESS)
        }
        Command::Execution(ExecutionCmd::Cancel { id }) => {
            let e = open(&cli).await?;
            let x = match e.execution(id).await {
                Ok(x) => e.cancel_execution(&x.id).await,
                Err(err) => Err(err),
            };
            e.shutdown().await;
            let x = x?;
            println!("execution {} is {}", x.id, status_label(x.status));
            Ok(ExitCode::SUCCESS)
        }
        Command::Errors(a) => {
            let kind = a
                .kind
                .as_deref()
                .map(RecordErrorKind::parse_user)
                .transpose()?;
            let e = open(&cli).await?;
            let p = match e.execution(&a.execution).await {
                Ok(x) => e.record_errors(&x.id, kind, &req(&a.list)).await,
                Err(err) => Err(err),
            };
            e.shutdown().await;
            let p = p?;
            if a.list.json {
                return print_json(&page::<_, RecordErrorDto>(&p));
            }
            for r in &p.items {
                println!(
                    "Record:    {}\nEntity:    {}\nError:     {} - {}\nTimestamp: {}\n",
                    r.record_id,
                    r.entity,
                    r.kind.label(),
                    r.message,
                    fmt_time(Some(r.at))
                );
            }
            if p.items.is_empty() {
                println!("no record errors");
            }
            more(&p.next_cursor);
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters(d) => dead_letters(&cli, d).await,
        Command::Alerts(AlertsArgs {
            action: Some(AlertsAction::Read { id, all }),
            ..
        }) => {
            let e = open(&cli).await?;
            let n = match id {
                Some(id) if !all => e.mark_alert_read(*id).await.map(|()| 1),
                _ => e.mark_all_alerts_read().await,
            };
            e.shutdown().await;
            let n = n?;
            println!("{n} alert{} marked read", if n == 1 { "" } else { "s" });
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts(a) => {
            let e = open(&cli).await?;
            let p = e.alerts(a.unread, &req(&a.list)).await?;
            e.shutdown().await;
            if a.list.json {
                return print_json(&page::<_, AlertDto>(&p));
            }
            let mut t = Table::new(&["ID", "LAST SEEN", "STATE", "TITLE", "EXECUTION"]);
            for x in &p.items {
                let state = match (x.resolved_at, x.read_at) {
                    (Some(_), _) => "resolved",
                    (None, None) => "unread",
                    (None, Some(_)) => "read",
                };
                let times = if x.occurrences > 1 {
                    format!(" (×{})", x.occurrences)
                } else {
                    String::new()
                };
                t.row(vec![
                    x.id.to_string(),
                    fmt_time(Some(x.last_seen_at)),
                    state.to_string(),
                    format!("{}{times}", plain_note(&x.title)),
                    x.execution_id.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
            more(&p.next_cursor);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(l) => {
            let e = open(&cli).await?;
            let p = e.audit(&req(l)).await?;
            e.shutdown().await;
            if l.json {
                return print_json(&page::<_, AuditDto>(&p));
            }
            let mut t = Table::new(&["WHEN", "WHO", "ACTION", "SUBJECT", "NOTE"]);
            for x in &p.items {
                t.row(vec![
                    fmt_time(Some(x.at)),
                    x.actor.clone(),
                    x.action.clone(),
                    x.subject.clone(),
                    x.note.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
            more(&p.next_cursor);
            Ok(ExitCode::SUCCESS)
        }
        Command::Syncs(c) => syncs(&cli, c).await,
        Command::Store(c) => store(&cli, c).await,
        Command::Workers { json } => {
            let e = open(&cli).await?;
            let list = e.workers().await;
            e.shutdown().await;
            let list = list?;
            if *json {
                return print_json(&list.iter().map(WorkerDto::from).collect::<Vec<_>>());
            }
            if list.is_empty() {
                println!("no app or worker is running syncs on this database");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["NAME", "KIND", "HOST", "STATE", "STARTED"]);
            for w in &list {
                t.row(vec![
                    w.name.clone(),
                    match w.role {
                        engine::WorkerRole::App => "Syncdesk app".into(),
                        engine::WorkerRole::Worker => "background worker".into(),
                    },
                    w.host.clone(),
                    if w.alive {
                        "active".into()
                    } else {
                        format!("not heard from since {}", fmt_time(Some(w.last_seen_at)))
                    },
                    fmt_time(Some(w.started_at)),
                ]);
            }
            print!("{}", t.render());
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(w) => {
            let e = open(&cli)
                .await?
                .as_worker(w.name.as_deref(), Some(Duration::from_secs(w.lease)))?;
            if w.once {
                let rec = e.recover_interrupted().await?;
                let ran = e.run_due().await?;
                println!(
                    "recovered {} interrupted execution(s); ran {} due execution(s)",
                    rec.len(),
                    ran.len()
                );
                e.shutdown().await;
                return Ok(ExitCode::SUCCESS);
            }
            let stop = tokio_util::sync::CancellationToken::new();
            let s = stop.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                s.cancel();
            });
            let mut events = e.subscribe();
            let printer = tokio::spawn(async move {
                while let Ok(ev) = events.recv().await {
                    print_event(&ev);
                }
            });
            if e.store().kind() == engine::StoreKind::Postgres {
                // A shared store: this worker takes only the runs it has the secrets for.
                let r = e.runnable_connections().await?;
                let names: Vec<&str> = r.can.iter().map(|c| c.name.as_str()).collect();
                eprintln!(
                    "worker {} on {}: runs jobs of {}",
                    e.owner().split(':').next().unwrap_or_default(),
                    database(&cli)?,
                    if names.is_empty() {
                        "no connection".into()
                    } else {
                        names.join(", ")
                    }
                );
                for (c, what) in &r.cannot {
                    eprintln!(
                        "  not {}: no {what} in this machine's keychain; run `syncdesk connection reauth {}` here to run its jobs",
                        c.name, c.name
                    );
                }
            }
            eprintln!("worker running (Ctrl-C stops it)");
            let r = e.run_worker(stop).await;
            e.shutdown().await;
            printer.abort();
            r?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn syncs(cli: &Cli, c: &SyncsCmd) -> CliResult<ExitCode> {
    let e = open(cli).await?;
    let r = match c {
        SyncsCmd::Status => e.health().await.map(|h| {
            let paused = match &h.paused {
                Some(p) => format!("paused since {} by {}", fmt_time(Some(p.since)), p.by),
                None => "running".into(),
            };
            println!("Syncs                  {paused}");
            println!("Jobs                   {}", h.jobs);
            println!("Failing jobs           {}", h.failing_jobs);
            println!("Unread alerts          {}", h.unread_alerts);
            println!("Need re-authentication {}", h.expired_connections);
            println!("Failed records         {}", h.dead_letters);
        }),
        SyncsCmd::Pause => e.pause_syncs().await.map(|p| {
            println!(
                "all syncs paused since {}: no scheduled run or automatic retry starts until \
                 `syncdesk syncs resume`",
                fmt_time(Some(p.since))
            );
        }),
        SyncsCmd::Resume => e.resume_syncs().await.map(|resumed| {
            if resumed {
                println!("all syncs resumed; what fell due meanwhile runs now");
            } else {
                println!("syncs were not paused");
            }
        }),
        SyncsCmd::RunDue => match e.run_due_now().await {
            Ok(due) => e.run_due().await.map(|ran| {
                println!("{due} job(s) due; ran {} execution(s)", ran.len());
                for x in &ran {
                    println!("  {} {}", x.id, status_label(x.status));
                }
            }),
            Err(err) => Err(err),
        },
    };
    e.shutdown().await;
    r?;
    Ok(ExitCode::SUCCESS)
}

/// `syncdesk store …`.
async fn store(cli: &Cli, c: &StoreCmd) -> CliResult {
    let e = open(cli).await?;
    let r = match c {
        StoreCmd::Summary { .. } => e.store().table_sums().await.map_err(CliError::from),
        StoreCmd::Copy { to, .. } => {
            let target = if to.starts_with("postgres://") || to.starts_with("postgresql://") {
                engine::Database::Url(to.clone())
            } else {
                engine::Database::File(std::path::PathBuf::from(to))
            };
            match open_at(cli, target.clone()).await {
                Ok(t) => {
                    let r = e.store().copy_to(t.store()).await;
                    t.shutdown().await;
                    r.map_err(CliError::from).inspect(|sums| {
                        let rows: u64 = sums.iter().map(|s| s.rows).sum();
                        eprintln!(
                            "copied {rows} rows to {target}; every table's rows and checksum match"
                        );
                    })
                }
                Err(err) => Err(err),
            }
        }
    };
    e.shutdown().await;
    let sums = r?;
    if matches!(
        c,
        StoreCmd::Summary { json: true } | StoreCmd::Copy { json: true, .. }
    ) {
        return print_json(&sums);
    }
    let mut t = Table::new(&["TABLE", "ROWS", "CHECKSUM"]);
    for s in &sums {
        t.row(vec![
            s.table.to_string(),
            s.rows.to_string(),
            s.checksum.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(ExitCode::SUCCESS)
}

fn print_event(ev: &engine::Event) {
    use engine::Event as E;
    match ev {
        E::ExecutionStarted { job_name, execution_id, .. } => println!("started   {job_name} ({execution_id})"),
        E::ExecutionFinished { job_name, status, counts, note, .. } => println!(
            "finished  {job_name}: {} — processed {}, created {}, updated {}, skipped {}, failed {}{}",
            status_label(*status), counts.processed, counts.created, counts.updated, counts.skipped, counts.failed,
            note.as_ref().map(|n| format!(" — {n}")).unwrap_or_default()
        ),
        E::BreakerTripped { job_name, note, .. } => println!("stopped   {job_name}: {}", plain_note(note)),
        E::RetryScheduled { attempt, due_at, .. } => println!(
            "retry     attempt {attempt} due at {due_at} (it runs while `syncdesk worker` or the desktop app is running)"
        ),
        E::RetriesExhausted { job_name, attempts, .. } => println!("EXHAUSTED {job_name}: failed after {attempts} attempts; no more automatic retries"),
        E::ConnectionExpired { connection_name, detail, .. } => println!("EXPIRED   connection {connection_name}: {detail} — run `syncdesk connection reauth {connection_name}`"),
        E::DeadLettered { record_id, .. } => println!("failed    record {record_id} failed three times and moved to Failed Records"),
        E::RecordsDeadLettered { job_name, count, .. } => println!("failed    {job_name}: {count} record(s) failed in three runs in a row and moved to Failed Records (`syncdesk dead-letters list {job_name}`)"),
        E::ExecutionWaiting { reason, until, .. } => eprintln!("waiting   {reason}; resuming {until}"),
        E::SyncsPaused { paused: true } => println!("paused    all syncs"),
        E::SyncsPaused { paused: false } => println!("resumed   all syncs"),
        E::ExecutionProgress { .. } | E::AlertsResolved { .. } => {}
    }
}

/// The retry state in words; the CLI has no worker of its own, so a pending retry says what
/// runs it.
fn retry_line(r: &engine::RetryState) -> Option<String> {
    use engine::RetryState as R;
    Some(match r {
        R::None => return None,
        R::Pending { at, .. } => format!(
            "automatic retry at {} (it runs while `syncdesk worker` or the desktop app is running)",
            fmt_time(Some(*at))
        ),
        R::WaitingForReauth { .. } => "waits for the connection to be re-authenticated (`syncdesk connection reauth NAME`); then it is due at once and runs while `syncdesk worker` or the desktop app is running".into(),
        R::Running { execution_id } => format!("running now ({execution_id})"),
        R::Retried { execution_id } => format!("ran as {execution_id}"),
        R::Superseded { .. } => "not needed: a later run succeeded".into(),
        R::Exhausted => "every automatic retry was used; run the job again when the cause is fixed".into(),
        R::Off => "automatic retries are off for this job".into(),
    })
}

fn print_detail(d: &engine::ExecutionDetail) {
    let x = &d.execution;
    println!("Execution   {}", x.id);
    println!("Job         {} ({})", d.job_name, d.entity);
    println!(
        "Status      {}{}",
        status_label(x.status),
        x.failure_kind
            .map(|k| format!(": {}", failure_label(k)))
            .unwrap_or_default()
    );
    println!(
        "Trigger     {} (attempt {}){}",
        x.trigger,
        x.attempt,
        x.retry_of
            .as_ref()
            .map(|r| format!(", retry of {r}"))
            .unwrap_or_default()
    );
    println!("Mode        {}", x.mode);
    if let Some(by) = &x.ran_by {
        println!("Ran by      {by}");
    }
    println!("Started     {}", fmt_time(x.started_at));
    println!("Finished    {}", fmt_time(x.finished_at));
    let c = x.counts;
    println!(
        "Records     processed {} = created {} + updated {} + skipped {} + failed {}",
        c.processed, c.created, c.updated, c.skipped, c.failed
    );
    if x.excluded > 0 {
        println!("Excluded    {} dead-letter/dismissed record(s)", x.excluded);
    }
    if let Some(b) = &x.batch_in_progress {
        println!("Batch       {b}");
    }
    if let Some(n) = &x.note {
        println!("Note        {}", plain_note(n));
    }
    if let Some(line) = retry_line(&x.retry) {
        println!("Retry       {line}");
    }
    if x.request_retries + x.rate_limit_waits > 0 {
        println!(
            "Requests    {} retried after errors, {} rate-limit pauses",
            x.request_retries, x.rate_limit_waits
        );
    }
    if !d.error_counts.is_empty() {
        let parts: Vec<String> = d
            .error_counts
            .iter()
            .map(|(k, n)| format!("{}: {n}", k.label()))
            .collect();
        println!("Errors      {}", parts.join(", "));
    }
    if d.chain.len() > 1 {
        println!("Retry chain {}", d.chain.join(" → "));
    }
    for g in &d.diagnosis {
        println!(
            "\nDiagnosis   {}\n  Likely cause: {}\n  Resolution:   {}",
            g.title, g.likely_cause, g.resolution
        );
        // A resolution that says to wait for the automatic retry is only true while
        // something runs it: say what the retry state is, and what runs it.
        if g.actions.contains(&engine::Action::WaitForRetry) {
            if let Some(line) = retry_line(&x.retry) {
                println!("  Retry:        {line}");
            }
        }
    }
    if let Some(c) = &d.schema_change {
        println!(
            "\nWhat changed in {} (fields last seen {})",
            c.entity,
            fmt_time(Some(c.observed_at))
        );
        if !c.missing.is_empty() {
            println!(
                "  No longer sent, read by the mappings: {}",
                c.missing.join(", ")
            );
        }
        if let Some(at) = c.changed_at {
            println!(
                "  Since {}: new {}; gone {}",
                fmt_time(Some(at)),
                list_or_none(&c.added),
                list_or_none(&c.removed)
            );
        }
    }
}

/// An execution status in plain words.
fn status_label(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Queued => "queued",
        ExecutionStatus::Running => "running",
        ExecutionStatus::Completed => "completed",
        ExecutionStatus::CompletedWithErrors => "completed with errors",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::TimedOut => "timed out",
        ExecutionStatus::Cancelled => "cancelled",
    }
}

/// Why an execution failed, in plain words.
fn failure_label(k: engine::FailureKind) -> &'static str {
    use engine::FailureKind as F;
    match k {
        F::Auth => "the provider refused the credentials",
        F::ProviderUnavailable => "the provider could not be reached",
        F::RateLimited => "the provider kept asking to slow down",
        F::Rejected => "the provider rejected a request",
        F::Malformed => "the provider sent an answer that could not be read",
        F::TimedOut => "it ran longer than the job's timeout",
        F::CircuitBreaker => "Stopped early: most records were failing",
        F::Interrupted => "interrupted (the process running it stopped)",
        F::Cancelled => "cancelled",
        F::Internal => "a local failure (database, keychain or configuration)",
    }
}

/// An execution note or alert title, with the breaker's name that stores written before
/// 2026-12-02 hold put in plain words (the engine now writes "Stopped early: …" itself).
fn plain_note(note: &str) -> String {
    if let Some(rest) = note.strip_prefix("Circuit breaker tripped: ") {
        return format!("Stopped early: most records were failing ({rest})");
    }
    if let Some(rest) = note.strip_prefix("Circuit breaker tripped on ") {
        return format!("Stopped early on {rest}: most records were failing");
    }
    note.to_string()
}

/// A stored error line (`ValidationError - Required field …`) with its kind in plain words.
fn plain_error(line: &str) -> String {
    for k in RecordErrorKind::ALL {
        if let Some(rest) = line.strip_prefix(&format!("{} - ", k.as_str())) {
            return format!("{} - {rest}", k.label());
        }
    }
    line.to_string()
}

/// Job id → name for the jobs of a page of executions (a job deleted meanwhile keeps its id).
async fn job_names<'a>(
    e: &Engine,
    ids: impl Iterator<Item = &'a str>,
) -> std::collections::HashMap<String, String> {
    let mut names = std::collections::HashMap::new();
    for id in ids {
        if !names.contains_key(id) {
            if let Ok(j) = e.job(id).await {
                names.insert(id.to_string(), j.name);
            }
        }
    }
    names
}

fn list_or_none(xs: &[String]) -> String {
    if xs.is_empty() {
        "none".into()
    } else {
        xs.join(", ")
    }
}

fn connector(c: &ConnectorCmd) -> CliResult {
    match c {
        ConnectorCmd::List { json } => {
            let list: Vec<ConnectorDto> = engine::catalog::all().iter().map(Into::into).collect();
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&["KEY", "NAME", "SYNCS"]);
            for c in &list {
                t.row(vec![
                    c.key.clone(),
                    c.name.clone(),
                    c.summary.clone().unwrap_or_else(|| {
                        c.entities
                            .iter()
                            .map(|e| e.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }),
                ]);
            }
            print!("{}", t.render());
            println!("(details: syncdesk connector show KEY; connect: syncdesk connection add --connector KEY)");
            Ok(ExitCode::SUCCESS)
        }
        ConnectorCmd::Show { key, spec, json } => {
            let entry = engine::catalog::get(key)?;
            if *spec {
                print!("{}", entry.source);
                return Ok(ExitCode::SUCCESS);
            }
            let c = ConnectorDto::from(entry);
            if *json {
                return print_json(&c);
            }
            print_connector(&c);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_connector(c: &ConnectorDto) {
    println!("{} ({})", c.name, c.key);
    if let Some(s) = &c.summary {
        println!("  {s}");
    }
    if let Some(url) = &c.base_url {
        println!("  address  {url}");
    }
    let how: Vec<String> = c
        .auth_kinds
        .iter()
        .map(|k| match k.as_str() {
            "bearer" => format!(
                "a {} (--token-env VAR)",
                c.secret_label.as_deref().unwrap_or("token")
            ),
            "api_key" => format!(
                "a {} (--api-key-env VAR or --api-key-stdin)",
                c.secret_label.as_deref().unwrap_or("API key")
            ),
            "oauth2_refresh_token" => {
                "browser sign-in in the desktop app (or --client-id with --refresh-token-env)"
                    .to_string()
            }
            "oauth2_client_credentials" => {
                "client id and secret (--client-id, --client-secret-env)".to_string()
            }
            other => other.to_string(),
        })
        .collect();
    println!("  sign in  {}", how.join("; or "));
    for v in &c.values {
        println!(
            "  value    {} ({}){}: --value {}=…",
            v.label,
            v.name,
            v.help
                .as_ref()
                .map(|h| format!(" — {h}"))
                .unwrap_or_default(),
            v.name
        );
    }
    println!();
    let mut t = Table::new(&["ENTITY", "INCREMENTAL", "NATURAL KEYS", "FIELDS"]);
    for e in &c.entities {
        t.row(vec![
            e.name.clone(),
            if e.incremental { "yes" } else { "no (full)" }.to_string(),
            list_or_none(&e.natural_keys),
            e.fields.join(", "),
        ]);
    }
    print!("{}", t.render());
    if let Some(s) = &c.setup {
        println!("  set up at {}: {s}", c.name);
    }
    println!(
        "  (docs/providers.md has more; the spec: syncdesk connector show {} --spec)",
        c.key
    );
}

async fn connection(cli: &Cli, c: &ConnectionCmd) -> CliResult {
    match c {
        ConnectionCmd::Add {
            name,
            connector,
            spec,
            jobs,
            schedule,
            base_url,
            client_id,
            secrets,
            auth_kind,
            auth_base_url,
            values,
            json,
        } => {
            let spec = match (connector, spec) {
                (Some(key), _) => engine::catalog::get(key)?.spec.clone(),
                (None, Some(spec)) => read_spec(spec)?,
                (None, None) => {
                    return Err(CliError::Usage(
                        "give --connector KEY or --spec FILE".into(),
                    ))
                }
            };
            let entities: Vec<String> = if jobs.iter().any(|j| j.trim() == "all") {
                spec.entities.keys().cloned().collect()
            } else {
                jobs.iter().map(|j| j.trim().to_string()).collect()
            };
            let auth_kind = auth_kind.as_deref().map(parse_auth_kind).transpose()?;
            let values = values
                .iter()
                .map(|v| parse_value(v))
                .collect::<CliResult<std::collections::BTreeMap<_, _>>>()?;
            let secrets = read_secrets(secrets)?;
            let new = NewConnection {
                base_url: base_url.clone(),
                client_id: client_id.clone(),
                secrets,
                auth_base_url: auth_base_url.clone(),
                auth_kind,
                values,
                ..NewConnection::new(name.clone(), spec)
            };
            let e = open(cli).await?;
            // A built-in connector's connection, and one made with jobs, is checked with a
            // real data request: a pasted key is only known good once the provider answered.
            let made = if connector.is_some() || !entities.is_empty() {
                e.create_setup(engine::NewSetup {
                    connection: new,
                    entities,
                    schedule: Some(schedule.clone()),
                })
                .await
            } else {
                e.create_connection(new)
                    .await
                    .map(|connection| engine::Setup {
                        connection,
                        jobs: Vec::new(),
                    })
            };
            let unchosen = match &made {
                Ok(m) => e
                    .connection_values(&m.connection.id)
                    .await
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            e.shutdown().await;
            let made = made?;
            let conn = &made.connection;
            if *json {
                return if jobs.is_empty() {
                    print_json(&ConnectionDto::from(conn))
                } else {
                    print_json(&SetupDto::from(&made))
                };
            }
            println!(
                "connection {} created ({}); secrets are in the {} store",
                conn.name,
                conn.id,
                if cli.secret_store == SecretStoreKind::Keyring {
                    "OS keychain"
                } else {
                    "memory"
                }
            );
            match conn.status {
                ConnectionStatus::Active => println!("the provider accepted its credentials"),
                _ => println!(
                    "not verified yet: {} (check again with `syncdesk connection test {}`)",
                    conn.status_note
                        .as_deref()
                        .unwrap_or("the provider could not be reached"),
                    conn.name
                ),
            }
            for j in &made.jobs {
                println!(
                    "job {} created ({}): {} {}, {}",
                    j.name, j.id, j.mode, j.entity, j.schedule
                );
            }
            for v in unchosen.iter().filter(|v| v.value.is_none()) {
                println!(
                    "choose the {}: `syncdesk connection values {}` lists them; then `syncdesk connection set-value {} {}=…`",
                    v.label, conn.name, conn.name, v.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCmd::Values { connection, json } => {
            let e = open(cli).await?;
            let listed = connection_values(&e, connection).await;
            e.shutdown().await;
            let listed = listed?;
            if *json {
                let out: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|(v, choices)| {
                        serde_json::json!({
                            "value": ConnectionValueDto::from(v),
                            "choices": choices.as_ref().map(|c| c.iter().map(ValueChoiceDto::from).collect::<Vec<_>>()),
                        })
                    })
                    .collect();
                return print_json(&out);
            }
            if listed.is_empty() {
                println!("this connection's connector asks for no values");
            }
            for (v, choices) in &listed {
                println!(
                    "{} ({}): {}",
                    v.label,
                    v.name,
                    v.value.as_deref().unwrap_or("not chosen yet")
                );
                if let Some(help) = &v.help {
                    println!("  {help}");
                }
                for c in choices.iter().flatten() {
                    let mark = if v.value.as_deref() == Some(c.value.as_str()) {
                        "*"
                    } else {
                        " "
                    };
                    println!("  {mark} {}  {}", c.value, c.label);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCmd::SetValue {
            connection,
            value,
            json,
        } => {
            let (name, value) = parse_value(value)?;
            let e = open(cli).await?;
            let conn = e.set_connection_value(connection, &name, &value).await;
            e.shutdown().await;
            let conn = conn?;
            if *json {
                return print_json(&ConnectionDto::from(&conn));
            }
            println!("connection {}: {name} is now {value}", conn.name);
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCmd::Test { connection, json } => {
            let e = open(cli).await?;
            let tested = e.test_connection(connection).await;
            e.shutdown().await;
            let conn = tested?;
            if *json {
                print_json(&ConnectionDto::from(&conn))?;
            } else if conn.status == ConnectionStatus::Active {
                println!(
                    "connection {} works: the provider accepted its credentials and answered a request",
                    conn.name
                );
            } else {
                println!(
                    "connection {} is {}: {}",
                    conn.name,
                    conn.status,
                    conn.status_note.as_deref().unwrap_or("")
                );
            }
            Ok(if conn.status == ConnectionStatus::Active {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        ConnectionCmd::Reauth {
            connection,
            secrets,
        } => {
            let secrets = read_secrets(secrets)?;
            if secrets.is_empty() {
                return Err(CliError::Usage("give the new credential with --client-secret-env/--client-secret-stdin, --api-key-env/--api-key-stdin, --refresh-token-env or --token-env".into()));
            }
            let e = open(cli).await?;
            let mut last = None;
            for (k, v) in secrets {
                last = Some(e.set_connection_secret(connection, k, v).await);
            }
            e.shutdown().await;
            let conn = last.expect("at least one")?;
            println!("connection {} is {} again", conn.name, conn.status);
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCmd::Delete {
            connection,
            yes,
            json,
        } => {
            let e = open(cli).await?;
            let r = e.delete_connection(connection, !*yes).await;
            e.shutdown().await;
            let d = r?;
            let fields = if d.observed_entities.is_empty() {
                String::new()
            } else {
                format!(
                    " and the fields last seen for {}",
                    d.observed_entities.join(", ")
                )
            };
            if *json {
                print_json(&d)?;
            } else if d.deleted {
                println!(
                    "connection {} deleted: its secrets are gone from the keychain{fields}",
                    d.connection_name
                );
            } else {
                println!(
                    "would delete connection {} with its secrets in the keychain{fields}; run again with --yes to delete it",
                    d.connection_name
                );
            }
            Ok(if d.deleted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BAD_INPUT)
            })
        }
        ConnectionCmd::List { json } => {
            let e = open(cli).await?;
            let list = e.connections().await?;
            e.shutdown().await;
            if *json {
                return print_json(&list.iter().map(ConnectionDto::from).collect::<Vec<_>>());
            }
            let mut t = Table::new(&["NAME", "PROVIDER", "STATUS", "TOKEN EXPIRES", "BASE URL"]);
            for c in &list {
                t.row(vec![
                    c.name.clone(),
                    c.provider.clone(),
                    c.status.to_string(),
                    fmt_time(c.token_expires_at),
                    c.base_url.clone(),
                ]);
            }
            print!("{}", t.render());
            Ok(ExitCode::SUCCESS)
        }
        ConnectionCmd::Show { connection, json } => {
            let e = open(cli).await?;
            let c = e.connection(connection).await?;
            let fields = e.observed_fields(connection).await?;
            e.shutdown().await;
            if *json {
                return print_json(&ConnectionDto::from(&c));
            }
            println!(
                "{} ({})\n  provider {}\n  status   {}{}\n  token expires {}\n  base url {}",
                c.name,
                c.id,
                c.provider,
                c.status,
                c.status_note
                    .as_ref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default(),
                fmt_time(c.token_expires_at),
                c.base_url
            );
            for (name, value) in &c.values {
                println!("  value    {name} = {value}");
            }
            for (entity, f) in fields {
                println!(
                    "  {entity} fields last seen {}: {}",
                    fmt_time(Some(f.observed_at)),
                    f.fields.join(", ")
                );
                if let Some(at) = f.changed_at {
                    println!(
                        "    changed {}: new {}; gone {}",
                        fmt_time(Some(at)),
                        list_or_none(&f.added()),
                        list_or_none(&f.removed())
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn job(cli: &Cli, j: &JobCmd) -> CliResult {
    match j {
        JobCmd::Add(a) => {
            let mut nj: NewJob = match &a.file {
                Some(p) => {
                    let text = std::fs::read_to_string(p).map_err(|e| {
                        CliError::Usage(format!("cannot read {}: {e}", p.display()))
                    })?;
                    let parsed = if text.trim_start().starts_with('{') {
                        serde_json::from_str(&text).map_err(|e| e.to_string())
                    } else {
                        toml::from_str(&text).map_err(|e| e.message().to_string())
                    };
                    parsed.map_err(|e| Error::Invalid {
                        field: format!("job file {}", p.display()),
                        message: e,
                    })?
                }
                None => NewJob {
                    name: a
                        .name
                        .clone()
                        .ok_or_else(|| CliError::Usage("--name is required (or --file)".into()))?,
                    connection: a.connection.clone().ok_or_else(|| {
                        CliError::Usage("--connection is required (or --file)".into())
                    })?,
                    entity: a.entity.clone().ok_or_else(|| {
                        CliError::Usage("--entity is required (or --file)".into())
                    })?,
                    direction: engine::Direction::Pull,
                    mode: engine::Mode::Incremental,
                    schedule: None,
                    enabled: true,
                    settings: Default::default(),
                },
            };
            if let Some(v) = &a.name {
                nj.name = v.clone();
            }
            if let Some(v) = &a.connection {
                nj.connection = v.clone();
            }
            if let Some(v) = &a.entity {
                nj.entity = v.clone();
            }
            if let Some(v) = &a.mode {
                nj.mode = v.parse()?;
            }
            if let Some(v) = &a.schedule {
                nj.schedule = Some(v.clone());
            }
            a.settings.apply(&mut nj.settings);
            let e = open(cli).await?;
            let r = e.create_job(nj).await;
            let conn = match &r {
                Ok(j) => e.connection(&j.connection_id).await.map(|c| c.name).ok(),
                Err(_) => None,
            };
            e.shutdown().await;
            let job = r?;
            if a.json {
                return print_json(&JobDto::from(&job));
            }
            println!(
                "job {} created ({}): {} {} from connection {}, {}",
                job.name,
                job.id,
                job.mode,
                job.entity,
                conn.unwrap_or(job.connection_id),
                job.schedule
            );
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Edit(a) => {
            let mode = a
                .mode
                .as_deref()
                .map(str::parse::<engine::Mode>)
                .transpose()?;
            let schedule = a
                .schedule
                .as_deref()
                .map(engine::Schedule::parse)
                .transpose()?;
            let e = open(cli).await?;
            let r = e
                .update_job(&a.job, |j| {
                    if let Some(m) = mode {
                        j.mode = m;
                    }
                    if let Some(s) = schedule {
                        j.schedule = s;
                    }
                    a.settings.apply(&mut j.settings);
                    Ok(())
                })
                .await;
            e.shutdown().await;
            let job = r?;
            if a.json {
                return print_json(&JobDto::from(&job));
            }
            println!(
                "job {} updated: {} {}, {}; next run {}",
                job.name,
                job.mode,
                job.entity,
                job.schedule,
                fmt_time(job.next_run_at)
            );
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Pause { job } | JobCmd::Resume { job } => {
            let enabled = matches!(j, JobCmd::Resume { .. });
            let e = open(cli).await?;
            let r = e.set_job_enabled(job, enabled).await;
            e.shutdown().await;
            let job = r?;
            if enabled {
                println!(
                    "job {} resumed: {}; next run {} (scheduled runs happen while `syncdesk worker` or the desktop app is running)",
                    job.name,
                    job.schedule,
                    fmt_time(job.next_run_at)
                );
            } else {
                println!(
                    "job {} paused: its schedule does not run it until `syncdesk job resume {}`",
                    job.name, job.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Delete { job, yes, json } => {
            let e = open(cli).await?;
            let r = e.delete_job(job, !*yes).await;
            e.shutdown().await;
            let d = r?;
            if *json {
                print_json(&d)?;
            } else if d.deleted {
                println!(
                    "job {} deleted with {} execution(s) and {} error log entries; the records it synced stay in the local store",
                    d.job_name, d.executions, d.record_errors
                );
            } else {
                println!(
                    "would delete job {} with {} execution(s) and {} error log entries (the records it synced stay in the local store); run again with --yes to delete it",
                    d.job_name, d.executions, d.record_errors
                );
            }
            Ok(if d.deleted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BAD_INPUT)
            })
        }
        JobCmd::List(l) => {
            let e = open(cli).await?;
            let p = e.job_summaries(&req(l)).await?;
            e.shutdown().await;
            let (jobs, last): (Vec<_>, Vec<_>) = p
                .items
                .into_iter()
                .map(|s| (s.job, s.last_execution))
                .unzip();
            let p = engine::Page {
                items: jobs,
                next_cursor: p.next_cursor,
            };
            if l.json {
                return print_json(&page::<_, JobDto>(&p));
            }
            let mut t = Table::new(&[
                "NAME",
                "ENTITY",
                "MODE",
                "SCHEDULE",
                "NEXT RUN",
                "LAST STATUS",
            ]);
            for (j, x) in p.items.iter().zip(last) {
                t.row(vec![
                    j.name.clone(),
                    j.entity.clone(),
                    j.mode.to_string(),
                    j.schedule.to_string(),
                    fmt_time(j.next_run_at),
                    x.map(|x| x.status.to_string())
                        .unwrap_or_else(|| "never run".into()),
                ]);
            }
            print!("{}", t.render());
            more(&p.next_cursor);
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Show { job, json } => {
            let e = open(cli).await?;
            let j = e.job(job).await?;
            let hints = e.job_hints(job).await?;
            e.shutdown().await;
            if *json {
                return print_json(&JobDto::from(&j));
            }
            let s = &j.settings;
            println!("{} ({})\n  {} {} {}, {}\n  batch {} · timeout {} · retries {} (max {}) · duplicate detection {}{}",
                j.name, j.id, j.direction, j.mode, j.entity, j.schedule, s.batch_size,
                engine::model::format_duration(s.timeout_secs),
                if s.retry_on_failure { "on" } else { "off" }, s.max_retries,
                if s.duplicate_detection { "on" } else { "off" },
                if s.natural_keys.is_empty() { String::new() } else { format!(" ({})", s.natural_keys.join(", ")) });
            for m in &s.mappings {
                println!(
                    "  {} → {}{}{}{}",
                    m.source,
                    m.target,
                    m.transform
                        .as_ref()
                        .map(|t| format!(" [{t}]"))
                        .unwrap_or_default(),
                    m.default
                        .as_ref()
                        .map(|d| format!(" default {d}"))
                        .unwrap_or_default(),
                    if m.required { " required" } else { "" }
                );
            }
            for h in hints {
                println!("  hint: {h}");
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Run { job, full, json } => {
            let e = open(cli).await?;
            let job = e.job(job).await?;
            let bar = (!json && std::io::stderr().is_terminal()).then(|| {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .expect("valid template"),
                );
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            });
            let mut events = e.subscribe();
            let b2 = bar.clone();
            // With --json, standard output is the execution's JSON and nothing else.
            let quiet = *json;
            let done = tokio_util::sync::CancellationToken::new();
            let ended = done.clone();
            let show = move |ev: &engine::Event| match (&b2, ev) {
                (Some(b), engine::Event::ExecutionProgress { counts, batch, .. }) => {
                    b.set_message(format!(
                        "{batch}: processed {} (created {}, updated {}, skipped {}, failed {})",
                        counts.processed,
                        counts.created,
                        counts.updated,
                        counts.skipped,
                        counts.failed
                    ));
                }
                // A paused run says what it waits for, not a bare spinner.
                (Some(b), engine::Event::ExecutionWaiting { reason, until, .. }) => {
                    b.set_message(format!("waiting: {reason}; resuming {until}"));
                }
                (None, engine::Event::ExecutionWaiting { .. }) if !quiet => print_event(ev),
                (None, _) if !quiet && ev.notifies() => print_event(ev),
                _ => {}
            };
            let printer = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Ok(ev) => show(&ev),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => break,
                        },
                        () = ended.cancelled() => {
                            // What the run said before it ended is shown, then the result.
                            while let Ok(ev) = events.try_recv() {
                                show(&ev);
                            }
                            break;
                        }
                    }
                }
            });
            let r = e.run_job(&job.id, RunOptions { full: *full }).await;
            done.cancel();
            let _ = printer.await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let x = r?;
            let d = e.execution_detail(&x.id).await?;
            e.shutdown().await;
            if *json {
                print_json(&ExecutionDetailDto::from(&d))?;
            } else {
                print_detail(&d);
            }
            Ok(match x.status {
                ExecutionStatus::Completed => ExitCode::SUCCESS,
                ExecutionStatus::CompletedWithErrors => ExitCode::from(EXIT_COMPLETED_WITH_ERRORS),
                _ => ExitCode::from(1),
            })
        }
    }
}

async fn dead_letters(cli: &Cli, d: &DeadLetterCmd) -> CliResult {
    let e = open(cli).await?;
    let all_ids = |job: String| {
        let e = e.clone();
        async move {
            let mut ids = Vec::new();
            let mut cursor = None;
            loop {
                let p = e
                    .dead_letters(&job, &PageRequest { cursor, limit: 500 })
                    .await?;
                ids.extend(p.items.into_iter().map(|d| d.record_id));
                match p.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => return Ok::<_, Error>(ids),
                }
            }
        }
    };
    let r = match d {
        DeadLetterCmd::List { job, list } => {
            let p = e.dead_letters(job, &req(list)).await?;
            if list.json {
                print_json(&page::<_, DeadLetterDto>(&p))
            } else {
                let mut t = Table::new(&[
                    "RECORD ID",
                    "ENTITY TYPE",
                    "FIRST FAILED",
                    "LAST FAILED",
                    "ATTEMPTS",
                    "ERROR",
                    "ACTIONS",
                ]);
                for x in &p.items {
                    t.row(vec![
                        x.record_id.clone(),
                        x.entity.clone(),
                        fmt_time(x.first_failed_at),
                        fmt_time(x.last_failed_at),
                        x.attempts.to_string(),
                        x.last_error.as_deref().map(plain_error).unwrap_or_default(),
                        "retry | dismiss".into(),
                    ]);
                }
                print!("{}", t.render());
                if p.items.is_empty() {
                    println!("no dead letters");
                }
                more(&p.next_cursor);
                Ok(ExitCode::SUCCESS)
            }
        }
        DeadLetterCmd::Retry {
            job,
            records,
            all,
            json,
        } => {
            let ids = if *all {
                all_ids(job.clone()).await?
            } else {
                records.clone()
            };
            if ids.is_empty() {
                return Err(CliError::Usage(
                    "name the records to retry, or --all".into(),
                ));
            }
            let out = e.retry_dead_letters(job, &ids).await?;
            if *json {
                let v: Vec<_> = out.iter().map(|o| serde_json::json!({"record_id": o.record_id, "execution_id": o.execution_id, "succeeded": o.succeeded, "state": o.state.as_str(), "error": o.error})).collect();
                print_json(&v)
            } else {
                for o in &out {
                    match &o.error {
                        None => println!("{}: succeeded, removed from the queue", o.record_id),
                        Some(err) => println!("{}: failed again ({err})", o.record_id),
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
        DeadLetterCmd::Dismiss {
            job,
            records,
            all,
            note,
        } => {
            let ids = if *all {
                all_ids(job.clone()).await?
            } else {
                records.clone()
            };
            if ids.is_empty() {
                return Err(CliError::Usage(
                    "name the records to dismiss, or --all".into(),
                ));
            }
            let done = e.dismiss_dead_letters(job, &ids, note).await?;
            println!("dismissed {} record(s): {}", done.len(), done.join(", "));
            Ok(ExitCode::SUCCESS)
        }
    };
    e.shutdown().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str]) -> clap::Error {
        let argv = std::iter::once("syncdesk").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect_err("refused")
    }

    #[test]
    fn u_limit_outside_1_to_500_is_refused_with_the_range_not_clamped() {
        for bad in ["0", "501", "4294967296"] {
            let e = refused(&["job", "list", "--limit", bad]);
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(text.contains("--limit"), "{text}");
            if bad != "4294967296" {
                assert!(text.contains("1..=500"), "{text}");
            }
        }
        for ok in ["1", "500"] {
            let cli = Cli::try_parse_from(["syncdesk", "audit", "--limit", ok]).unwrap();
            let Command::Audit(l) = cli.command else {
                panic!("audit")
            };
            assert_eq!(l.limit.to_string(), ok);
        }
    }

    #[test]
    fn p1_overflowing_durations_are_bad_input_not_a_panic() {
        let e = refused(&[
            "job",
            "add",
            "--name",
            "n",
            "--timeout",
            "5000000000000000000h",
        ]);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("is too long; at most"), "{e}");
        let e = refused(&["job", "add", "--retry-delays", "5m,99999999999999999999d"]);
        assert!(e.to_string().contains("is too long; at most"), "{e}");
    }

    /// Issue 15: values as NAME=VALUE, an auth kind by its name, both refused clearly.
    #[test]
    fn i15_connection_add_takes_values_an_auth_kind_and_a_sign_in_server() {
        let cli = Cli::try_parse_from([
            "syncdesk",
            "connection",
            "add",
            "--name",
            "books",
            "--spec",
            "x.toml",
            "--auth",
            "oauth2_refresh_token",
            "--auth-base-url",
            "http://127.0.0.1:9",
            "--value",
            "tenant_id=t-1",
            "--value",
            "region=eu=west",
        ])
        .unwrap();
        let Command::Connection(ConnectionCmd::Add {
            auth_kind,
            auth_base_url,
            values,
            ..
        }) = cli.command
        else {
            panic!("connection add")
        };
        assert_eq!(
            parse_auth_kind(auth_kind.as_deref().unwrap()).unwrap(),
            engine::AuthKind::Oauth2RefreshToken
        );
        assert_eq!(auth_base_url.as_deref(), Some("http://127.0.0.1:9"));
        let parsed: Vec<(String, String)> =
            values.iter().map(|v| parse_value(v).unwrap()).collect();
        assert_eq!(
            parsed,
            [
                ("tenant_id".to_string(), "t-1".to_string()),
                ("region".to_string(), "eu=west".to_string())
            ]
        );
        for bad in ["tenant_id", "=x", ""] {
            let e = parse_value(bad).unwrap_err();
            assert_eq!(e.exit_status(), 2);
            assert!(e.to_string().contains("NAME=VALUE"), "{e}");
        }
        let e = parse_auth_kind("oauth").unwrap_err().to_string();
        assert!(e.contains("oauth2_refresh_token"), "{e}");
        let cli = Cli::try_parse_from([
            "syncdesk",
            "connection",
            "set-value",
            "books",
            "tenant_id=t",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Connection(ConnectionCmd::SetValue { .. })
        ));
    }

    /// Issue 14 item 9: every subcommand and every flag or argument says what it is for.
    #[test]
    fn i14_every_subcommand_and_argument_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help"
                    && sub
                        .get_about()
                        .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "syncdesk", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn i15_connection_add_takes_a_built_in_connector_or_a_spec_file_not_both() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("syncdesk").chain(args.iter().copied()))
        };
        let ok = parse(&[
            "connection",
            "add",
            "--name",
            "Stripe",
            "--connector",
            "stripe",
            "--token-env",
            "STRIPE_KEY",
            "--jobs",
            "customers,invoices",
            "--schedule",
            "every 15m",
        ])
        .unwrap();
        let Command::Connection(ConnectionCmd::Add {
            connector,
            jobs,
            schedule,
            spec,
            ..
        }) = ok.command
        else {
            panic!("connection add");
        };
        assert_eq!(connector.as_deref(), Some("stripe"));
        assert_eq!(spec, None);
        assert_eq!(jobs, ["customers", "invoices"]);
        assert_eq!(schedule, "every 15m");
        for bad in [
            &["connection", "add", "--name", "x"][..],
            &[
                "connection",
                "add",
                "--name",
                "x",
                "--connector",
                "stripe",
                "--spec",
                "f.toml",
            ],
            &[
                "connection",
                "add",
                "--name",
                "x",
                "--connector",
                "stripe",
                "--schedule",
                "manual",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["connector", "list", "--json"]).is_ok());
        assert!(parse(&["connector", "show", "xero", "--spec"]).is_ok());
        assert!(parse(&["connector", "show", "xero", "--spec", "--json"]).is_err());
    }

    #[test]
    fn i15_an_unknown_connector_is_bad_input_naming_the_known_ones() {
        let err = CliError::from(engine::catalog::get("quickbooks").unwrap_err());
        assert_eq!(err.exit_status(), EXIT_BAD_INPUT);
        let dto = err.to_dto();
        assert_eq!(dto.field.as_deref(), Some("connector"));
        assert!(
            dto.message.contains("stripe, xero, hubspot"),
            "{}",
            dto.message
        );
    }

    #[test]
    fn i14_kind_names_plain_and_old_are_accepted_and_unknown_lists_plain_names() {
        for (given, want) in [
            ("missing-value", RecordErrorKind::ValidationError),
            ("Missing required value", RecordErrorKind::ValidationError),
            ("validation", RecordErrorKind::ValidationError),
            ("VALIDATIONERROR", RecordErrorKind::ValidationError),
            ("wrong-type", RecordErrorKind::SchemaMismatch),
            ("SchemaMismatch", RecordErrorKind::SchemaMismatch),
            ("conversion", RecordErrorKind::TransformError),
            ("transform_error", RecordErrorKind::TransformError),
            ("duplicate", RecordErrorKind::DuplicateConflict),
            ("unknown-reference", RecordErrorKind::ReferenceNotFound),
            ("ReferenceNotFound", RecordErrorKind::ReferenceNotFound),
        ] {
            assert_eq!(RecordErrorKind::parse_user(given).unwrap(), want, "{given}");
        }
        let err = RecordErrorKind::parse_user("typo").unwrap_err().to_string();
        assert!(
            err.contains("missing-value") && err.contains("unknown-reference"),
            "{err}"
        );
        for rust in [
            "RecordErrorKind",
            "ValidationError",
            "SchemaMismatch",
            "TransformError",
        ] {
            assert!(!err.contains(rust), "{err}");
        }
        assert_eq!(
            plain_error("ValidationError - Required field 'email' is null"),
            "Missing required value - Required field 'email' is null"
        );
    }

    /// Point 10: the CLI speaks the desktop's codes, and bad input exits 2.
    #[test]
    fn errors_use_the_shared_codes_and_bad_input_exits_2() {
        let invalid = CliError::Engine(Error::Invalid {
            field: "schedule".into(),
            message: "'every 100000000000d' is too long".into(),
        });
        let v = serde_json::to_value(invalid.to_dto()).unwrap();
        assert_eq!(v["code"], "invalid");
        assert_eq!(v["field"], "schedule");
        assert_eq!(invalid.exit_status(), 2);
        let usage = CliError::Usage("--name is required (or --file)".into());
        assert_eq!(
            serde_json::to_value(usage.to_dto()).unwrap()["code"],
            "usage"
        );
        assert_eq!(usage.exit_status(), 2);
        let store = CliError::Engine(Error::Store("the database is read-only".into()));
        assert_eq!(
            serde_json::to_value(store.to_dto()).unwrap()["code"],
            "store"
        );
        assert_eq!(store.exit_status(), 1);
        let provider = CliError::Engine(Error::RateLimited {
            detail: "429".into(),
        });
        assert_eq!(provider.code(), ErrorCode::Provider);
        assert_eq!(provider.exit_status(), 1);
    }
}
