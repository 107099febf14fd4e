//! The shell's managed state: the engine, the built-in sandbox, and what the app knows about
//! its surroundings (keychain, notification daemon, worker). Each method is one command of
//! docs/desktop.md: one engine call, mapped to a DTO. No Tauri types here, so tests drive it
//! without a window.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use syncdesk_dto::*;
use syncdesk_engine::{
    self as engine, AuthKind, ConnectorSpec, Database, Engine, EngineOptions, NewConnection,
    NewJob, NewSetup, PageRequest, RecordErrorKind, RunOptions, Secret, SecretKind, SecretStore,
    SystemClock,
};
use syncdesk_sandbox::{Entity, Faults, RetryAfter, Sandbox, SandboxConfig, SchemaDrift};
use tokio_util::sync::CancellationToken;

use crate::error::{DesktopError, Result};
use crate::settings::{Settings, Theme};

/// Where the app writes its log, under the data directory.
pub const LOGS_DIR: &str = "logs";

/// The keychain service the app's secrets are filed under (the CLI uses the same one, so both
/// see the same connections).
pub const KEYRING_SERVICE: &str = "syncdesk";
/// The name of the connection `sandbox_start` creates.
pub const SANDBOX_CONNECTION: &str = "sandbox";
/// The database in use when it is the file in the data directory, in the app's words.
pub const THIS_COMPUTER: &str = "this computer";
/// Rows per page of every list command.
const PAGE: u32 = 50;

/// Where the app keeps its database, and where its secrets go.
#[derive(Debug, Clone)]
pub struct DesktopOptions {
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    /// A database chosen outside Settings (`SYNCDESK_DATABASE`, as for the CLI); `None`: the
    /// shared database chosen in Settings, else the file in the data directory.
    pub database: Option<Database>,
}

impl DesktopOptions {
    /// `SYNCDESK_DATA_DIR`, else the OS data directory (`~/.local/share/syncdesk`); secrets
    /// in the OS keychain.
    pub fn from_env() -> Result<Self> {
        let data_dir = match std::env::var_os("SYNCDESK_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => dirs::data_dir()
                .map(|d| d.join("syncdesk"))
                .ok_or_else(|| {
                    DesktopError::Startup(
                        "no OS data directory is known here; set SYNCDESK_DATA_DIR".into(),
                    )
                })?,
        };
        Ok(DesktopOptions {
            data_dir,
            secrets: Arc::new(engine::KeyringSecretStore::new(KEYRING_SERVICE)),
            database: std::env::var("SYNCDESK_DATABASE")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .map(Database::Url),
        })
    }
}

/// Whether something the app depends on outside itself works, and if not, why.
#[derive(Debug, Clone, Default)]
struct Availability {
    ok: bool,
    message: Option<String>,
}

/// The running sandbox and the faults last applied through the panel.
#[derive(Debug)]
struct SandboxSlot {
    sandbox: Sandbox,
    faults: SandboxFaultsDto,
}

/// The app's state, managed by Tauri and shared by every command.
#[derive(Debug)]
pub struct Desktop {
    engine: Engine,
    data_dir: PathBuf,
    sandbox: tokio::sync::Mutex<Option<SandboxSlot>>,
    notifications: Mutex<Availability>,
    keychain: Mutex<Availability>,
    worker_running: AtomicBool,
    /// The browser sign-in in progress, if any: cancelling it ends its wait.
    sign_in: Mutex<Option<CancellationToken>>,
    /// Native notifications on screen, withdrawn when their alerts resolve.
    shown: crate::notify::Shown,
    /// The desktop's preferences, and why its file could not be read, if it could not.
    settings: Mutex<(Settings, Option<String>)>,
    secrets: Arc<dyn SecretStore>,
    /// The database in use, in words (`this computer`, or the shared one's address), and
    /// why the shared one chosen is not, if it is not.
    database_in_use: (String, Option<String>),
    /// The shared database Settings named when the app opened (`None` when the environment
    /// chose the database: Settings do not apply then).
    chosen_at_start: Option<Option<String>>,
}

/// Where the desktop keeps its place in the events other workers share (team mode), so a
/// restart hears nothing twice.
const SHARED_CURSOR: &str = "shared-events.cursor";

/// How long a browser sign-in may take before the app stops listening for it.
const SIGN_IN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "admin".into())
}

/// The engine's new connection from the form: the spec (`"sandbox"` names the built-in
/// one, at `sandbox_url` unless the form gives a base URL) and the secrets given, empty
/// fields left out.
fn new_connection(input: NewConnectionDto, sandbox_url: Option<String>) -> Result<NewConnection> {
    let mut base_url = input.base_url.filter(|u| !u.trim().is_empty());
    let spec = if input.spec.trim() == "sandbox" {
        base_url = base_url.or(sandbox_url);
        ConnectorSpec::parse(syncdesk_sandbox::CONNECTOR_SPEC)?
    } else {
        ConnectorSpec::parse(&input.spec)?
    };
    let secrets = [
        (SecretKind::ClientSecret, input.client_secret),
        (SecretKind::ApiKey, input.api_key),
        (SecretKind::RefreshToken, input.refresh_token),
        (SecretKind::AccessToken, input.access_token),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, Secret::new(v))))
    .collect();
    let auth_kind = input
        .auth_kind
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            k.parse::<engine::AuthKind>()
                .map_err(|_| DesktopError::Invalid {
                    field: "auth_kind",
                    message: format!("'{k}' is not a way to sign in"),
                })
        })
        .transpose()?;
    Ok(NewConnection {
        name: input.name,
        spec,
        base_url,
        client_id: input.client_id.filter(|c| !c.trim().is_empty()),
        secrets,
        auth_base_url: input.auth_base_url.filter(|u| !u.trim().is_empty()),
        auth_kind,
        values: input.values.unwrap_or_default(),
    })
}

/// The engine's connection and first jobs from the wizard: a built-in connector's spec
/// (copied into the connection), the auth kind chosen (the connector's usual one when
/// omitted), the secret that kind takes, values, addresses; empty fields left out.
fn new_setup(input: ConnectDto) -> Result<NewSetup> {
    let entry = engine::catalog::get(&input.connector)?;
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let auth_kind = match given(input.auth_kind) {
        Some(k) => k.parse::<AuthKind>().map_err(|_| DesktopError::Invalid {
            field: "auth_kind",
            message: format!("'{k}' is not a way to sign in"),
        })?,
        None => entry.spec.auth.kind,
    };
    let mut secrets = Vec::new();
    if let Some(secret) = given(input.secret) {
        let kind = match auth_kind {
            AuthKind::Bearer => SecretKind::AccessToken,
            AuthKind::ApiKey => SecretKind::ApiKey,
            AuthKind::Oauth2ClientCredentials => SecretKind::ClientSecret,
            AuthKind::Oauth2RefreshToken => SecretKind::RefreshToken,
            AuthKind::None => {
                return Err(DesktopError::Invalid {
                    field: "secret",
                    message: format!("{} needs no secret", entry.spec.name),
                })
            }
        };
        secrets.push((kind, Secret::new(secret.trim())));
    }
    if let Some(secret) = given(input.client_secret) {
        secrets.push((SecretKind::ClientSecret, Secret::new(secret)));
    }
    Ok(NewSetup {
        connection: NewConnection {
            base_url: given(input.base_url).map(|u| u.trim().to_string()),
            auth_base_url: given(input.auth_base_url).map(|u| u.trim().to_string()),
            auth_kind: Some(auth_kind),
            client_id: given(input.client_id).map(|c| c.trim().to_string()),
            secrets,
            values: input.values.unwrap_or_default(),
            ..NewConnection::new(input.name, entry.spec.clone())
        },
        entities: input.entities.unwrap_or_default(),
        schedule: given(input.schedule),
    })
}

fn page_req(cursor: Option<String>) -> PageRequest {
    PageRequest {
        cursor,
        limit: PAGE,
    }
}

fn page<T, D>(p: &engine::Page<T>) -> PageDto<D>
where
    D: for<'a> From<&'a T>,
{
    PageDto {
        items: p.items.iter().map(D::from).collect(),
        next_cursor: p.next_cursor.clone(),
    }
}

fn parse<T: std::str::FromStr<Err = engine::Error>>(v: Option<&str>) -> Result<Option<T>> {
    Ok(v.map(str::parse).transpose()?)
}

impl Desktop {
    /// The native notifications on screen.
    pub fn shown(&self) -> &crate::notify::Shown {
        &self.shown
    }

    /// Open the database (migrating it) under the data directory.
    pub async fn open(opts: DesktopOptions) -> Result<Desktop> {
        std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
            DesktopError::Startup(format!(
                "cannot create the data directory {}: {}",
                opts.data_dir.display(),
                e.kind()
            ))
        })?;
        let settings = Settings::load(&opts.data_dir);
        if let Some(why) = &settings.1 {
            tracing::warn!("{why}");
        }
        let local = Database::File(opts.data_dir.join("syncdesk.db"));
        let chosen_at_start = opts
            .database
            .is_none()
            .then(|| settings.0.shared_database.clone());
        let chosen = opts.database.clone().or_else(|| {
            settings
                .0
                .shared_database
                .as_ref()
                .map(|u| Database::Url(u.clone()))
        });
        let engine_opts = |database| EngineOptions {
            database,
            secrets: opts.secrets.clone(),
            clock: Arc::new(SystemClock),
            actor: actor(),
        };
        let (engine, database_in_use) = match chosen {
            None => (
                Engine::open(engine_opts(local)).await?,
                (THIS_COMPUTER.to_string(), None),
            ),
            Some(shared) => match Engine::open(engine_opts(shared.clone())).await {
                Ok(e) => (e, (shared.to_string(), None)),
                // The app still opens, on this computer's database, and says why: an
                // unreachable server must not leave the admin with no app at all.
                Err(e) if opts.database.is_none() => {
                    let why = format!(
                        "The shared database {shared} could not be opened ({e}); Syncdesk is \
                         using this computer's database until it can."
                    );
                    tracing::error!("{why}");
                    (
                        Engine::open(engine_opts(local)).await?,
                        (THIS_COMPUTER.to_string(), Some(why)),
                    )
                }
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Desktop {
            settings: Mutex::new(settings),
            engine,
            data_dir: opts.data_dir,
            sandbox: tokio::sync::Mutex::new(None),
            notifications: Mutex::new(Availability {
                ok: true,
                message: None,
            }),
            keychain: Mutex::new(Availability {
                ok: true,
                message: None,
            }),
            worker_running: AtomicBool::new(false),
            sign_in: Mutex::new(None),
            shown: Default::default(),
            secrets: opts.secrets,
            database_in_use,
            chosen_at_start,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The desktop's preferences now.
    pub fn settings(&self) -> Settings {
        self.settings.lock().expect("settings lock").0.clone()
    }

    /// The Settings view, with the OS's start-at-login state as the shell read it.
    pub fn settings_dto(&self, start_at_login: std::result::Result<bool, String>) -> SettingsDto {
        let (s, problem) = self.settings.lock().expect("settings lock").clone();
        let (start_at_login, start_at_login_message) = match start_at_login {
            Ok(on) => (on, None),
            Err(why) => (false, Some(why)),
        };
        SettingsDto {
            start_at_login,
            start_at_login_message,
            start_at_login_offered: s.start_at_login_offered,
            notify_circuit_breaker: s.notify.circuit_breaker,
            notify_retries_exhausted: s.notify.retries_exhausted,
            notify_connection_expired: s.notify.connection_expired,
            notify_dead_letters: s.notify.dead_letters,
            notify_completed_with_errors: s.notify.completed_with_errors,
            theme: s.theme.as_str().to_string(),
            data_dir: self.data_dir.display().to_string(),
            logs_dir: self.data_dir.join(LOGS_DIR).display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            problem: problem.or_else(|| self.database_in_use.1.clone()),
            shared_database: s.shared_database.clone(),
            database_in_use: self.database_in_use.0.clone(),
            database_restart_needed: self
                .chosen_at_start
                .as_ref()
                .is_some_and(|at_start| *at_start != s.shared_database),
        }
    }

    /// "Use a shared database": check that `input` opens (reachable, the password right, a
    /// Syncdesk database or an empty one, which it sets up), file its password in the
    /// keychain, and remember it; the app uses it from its next start. Nothing changes when
    /// any step fails.
    pub async fn shared_database_use(&self, input: SharedDatabaseDto) -> Result<Settings> {
        let given = input.url.trim();
        let mut url = url::Url::parse(given)
            .ok()
            .filter(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.has_host())
            .ok_or_else(|| DesktopError::Invalid {
                field: "url",
                message: "a shared database's address looks like \
                          postgres://user@server:5432/syncdesk"
                    .into(),
            })?;
        let password = input
            .password
            .filter(|p| !p.is_empty())
            .or_else(|| url.password().map(str::to_string));
        let _ = url.set_password(None);
        let bare = url.to_string();
        let db = Database::Url(bare.clone());
        // Without a new password, the one already in the keychain for it (if any) is used.
        let with_password = match &password {
            Some(p) => {
                let mut u = url.clone();
                let _ = u.set_password(Some(p));
                u.to_string()
            }
            None => match db.with_keychain_password(&self.secrets).await? {
                Database::Url(u) => u,
                Database::File(_) => bare.clone(),
            },
        };
        // Opening it is the check (and sets up an empty database). On a blocking thread of
        // its own: the migrator's future is not `Send` in the way an IPC command must be.
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            rt.block_on(async {
                engine::Store::open_url(&with_password).await?.close().await;
                Ok::<_, engine::Error>(())
            })
        })
        .await
        .map_err(|e| DesktopError::Io(format!("the database check failed: {e}")))??;
        if let Some(p) = password {
            let id = db.secret_id().expect("a URL has a keychain name");
            let secrets = self.secrets.clone();
            let r = tokio::task::spawn_blocking(move || {
                secrets.set(&id, SecretKind::DatabasePassword, &Secret::new(p))
            })
            .await
            .map_err(|e| DesktopError::Io(format!("keychain task failed: {e}")))?;
            if let Err(e) = &r {
                self.note_keychain(e);
            }
            r?;
        }
        self.save_settings(|s| s.shared_database = Some(bare))
    }

    /// Stop using the shared database: from its next start the app uses this computer's
    /// database again (its password stays in the keychain, for a way back).
    pub async fn shared_database_stop(&self) -> Result<Settings> {
        self.save_settings(|s| s.shared_database = None)
    }

    /// Change the settings with `f` and save them.
    fn save_settings(&self, f: impl FnOnce(&mut Settings)) -> Result<Settings> {
        let mut guard = self.settings.lock().expect("settings lock");
        let mut s = guard.0.clone();
        f(&mut s);
        s.save(&self.data_dir).map_err(|e| {
            DesktopError::Io(format!(
                "the settings could not be saved in {}: {e}",
                self.data_dir.display()
            ))
        })?;
        *guard = (s.clone(), None);
        Ok(s)
    }

    /// The apps and headless workers that run syncs on this database.
    pub async fn workers_list(&self) -> Result<Vec<WorkerDto>> {
        Ok(self
            .engine
            .workers()
            .await?
            .iter()
            .map(WorkerDto::from)
            .collect())
    }

    /// Hear what other apps and workers on this database share (a breaker that tripped on
    /// a headless worker) as this app's own events, until `stop`: they notify and refresh
    /// like the app's own. The place reached is kept in the data directory, so a restart
    /// hears nothing twice.
    pub async fn follow_shared_events(&self, stop: CancellationToken) -> Result<()> {
        let path = self.data_dir.join(SHARED_CURSOR);
        let cursor = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok());
        Ok(self
            .engine
            .follow_shared_events(cursor, stop, move |c| {
                if let Err(e) = std::fs::write(&path, c.to_string()) {
                    tracing::warn!(error = %e, "could not keep the shared events' place");
                }
            })
            .await?)
    }

    /// Change the preferences the update names, checked as a whole and saved (start at login
    /// is the shell's, through the OS). Nothing changes when a value is wrong.
    pub fn settings_update(&self, u: &SettingsUpdateDto) -> Result<Settings> {
        let mut guard = self.settings.lock().expect("settings lock");
        let mut s = guard.0.clone();
        if let Some(t) = &u.theme {
            s.theme = Theme::parse(t).ok_or_else(|| DesktopError::Invalid {
                field: "theme",
                message: format!("'{t}' is not a theme (system, light or dark)"),
            })?;
        }
        let n = &mut s.notify;
        for (v, slot) in [
            (u.notify_circuit_breaker, &mut n.circuit_breaker),
            (u.notify_retries_exhausted, &mut n.retries_exhausted),
            (u.notify_connection_expired, &mut n.connection_expired),
            (u.notify_dead_letters, &mut n.dead_letters),
            (u.notify_completed_with_errors, &mut n.completed_with_errors),
        ] {
            if let Some(v) = v {
                *slot = v;
            }
        }
        if let Some(v) = u.start_at_login_offered {
            s.start_at_login_offered = v;
        }
        // Asking for start at login is an answer to the offer too.
        if u.start_at_login.is_some() {
            s.start_at_login_offered = true;
        }
        if s != guard.0 || guard.1.is_some() {
            s.save(&self.data_dir).map_err(|e| {
                DesktopError::Io(format!(
                    "the settings could not be saved in {}: {e}",
                    self.data_dir.display()
                ))
            })?;
        }
        *guard = (s.clone(), None);
        Ok(s)
    }

    /// Record whether native notifications work; `Err` carries why not, for the UI.
    pub fn set_notifications(&self, r: std::result::Result<(), String>) {
        *self.notifications.lock().expect("availability lock") = availability(r);
    }

    /// Record whether the keychain works; `Err` carries why not, for the UI.
    pub fn set_keychain(&self, r: std::result::Result<(), String>) {
        *self.keychain.lock().expect("availability lock") = availability(r);
    }

    pub fn set_worker_running(&self, running: bool) {
        self.worker_running.store(running, Ordering::SeqCst);
    }

    /// Stop the sandbox (app exit).
    pub async fn stop_sandbox(&self) {
        if let Some(slot) = self.sandbox.lock().await.take() {
            slot.sandbox.shutdown().await;
        }
    }

    // ---- commands (docs/desktop.md) -----------------------------------------------------

    pub async fn health(&self) -> Result<HealthDto> {
        let h = self.engine.health().await?;
        let n = self
            .notifications
            .lock()
            .expect("availability lock")
            .clone();
        let k = self.keychain.lock().expect("availability lock").clone();
        let (paused_since, paused_by) = pause_fields(h.paused.as_ref());
        Ok(HealthDto {
            jobs: h.jobs,
            failing_jobs: h.failing_jobs,
            unread_alerts: h.unread_alerts,
            expired_connections: h.expired_connections,
            dead_letters: h.dead_letters,
            notifications_available: n.ok,
            notifications_message: n.message,
            keychain_available: k.ok,
            keychain_message: k.message,
            worker_running: self.worker_running.load(Ordering::SeqCst),
            paused_since,
            paused_by,
        })
    }

    /// "Pause all syncs" (the tray, the dashboard); the health it leaves.
    pub async fn syncs_pause(&self) -> Result<HealthDto> {
        self.engine.pause_syncs().await?;
        self.health().await
    }

    /// "Resume"; the health it leaves.
    pub async fn syncs_resume(&self) -> Result<HealthDto> {
        self.engine.resume_syncs().await?;
        self.health().await
    }

    /// "Run due jobs now": how many jobs are due and start.
    pub async fn syncs_run_due(&self) -> Result<u64> {
        Ok(self.engine.run_due_now().await?)
    }

    pub async fn connections_list(&self) -> Result<Vec<ConnectionDto>> {
        let list = self.engine.connections().await?;
        Ok(list.iter().map(ConnectionDto::from).collect())
    }

    pub async fn connection_get(&self, id: String) -> Result<ConnectionDto> {
        Ok((&self.engine.connection(&id).await?).into())
    }

    /// The built-in sandbox's address while it runs: its port changes with every start, so
    /// the spec's default address would point at nothing.
    async fn sandbox_url(&self) -> Option<String> {
        self.sandbox
            .lock()
            .await
            .as_ref()
            .map(|s| s.sandbox.base_url())
    }

    pub async fn connection_create(&self, input: NewConnectionDto) -> Result<ConnectionDto> {
        let new = new_connection(input, self.sandbox_url().await)?;
        let c = self
            .engine
            .create_connection(new)
            .await
            .inspect_err(|e| self.note_keychain(e))?;
        Ok((&c).into())
    }

    /// Create a connection by signing in through the system browser (authorization code +
    /// PKCE); resolves once the browser came back and the tokens are in the keychain.
    pub async fn connection_sign_in(&self, input: NewConnectionDto) -> Result<ConnectionDto> {
        let new = new_connection(input, self.sandbox_url().await)?;
        let s = self.engine.begin_sign_in(new).await?;
        self.sign_in(s).await
    }

    /// The built-in connectors, for the connection wizard.
    pub async fn connectors_list(&self) -> Result<Vec<ConnectorDto>> {
        Ok(engine::catalog::all().iter().map(Into::into).collect())
    }

    /// The wizard's sign-in with a pasted key: the connection is checked with a real request
    /// before it is stored (a refused key stores nothing); jobs for `input.entities` too.
    pub async fn connection_connect(&self, input: ConnectDto) -> Result<SetupDto> {
        let setup = new_setup(input)?;
        let made = self
            .engine
            .create_setup(setup)
            .await
            .inspect_err(|e| self.note_keychain(e))?;
        Ok((&made).into())
    }

    /// The wizard's browser sign-in (OAuth2 authorization code + PKCE) to a built-in
    /// connector; resolves once the browser came back and the tokens are in the keychain.
    pub async fn connection_connect_sign_in(&self, input: ConnectDto) -> Result<ConnectionDto> {
        let setup = new_setup(input)?;
        let s = self.engine.begin_sign_in(setup.connection).await?;
        self.sign_in(s).await
    }

    /// What a connection-level value may be, as the provider lists it (Xero organisations).
    pub async fn connection_value_choices(
        &self,
        id: String,
        name: String,
    ) -> Result<Vec<ValueChoiceDto>> {
        let choices = self.engine.value_choices(&id, &name).await?;
        Ok(choices.iter().map(ValueChoiceDto::from).collect())
    }

    pub async fn connection_set_value(
        &self,
        id: String,
        name: String,
        value: String,
    ) -> Result<ConnectionDto> {
        Ok((&self.engine.set_connection_value(&id, &name, &value).await?).into())
    }

    /// The wizard's last step: a job per chosen entity with the connector's defaults.
    pub async fn jobs_create_defaults(
        &self,
        connection: String,
        entities: Vec<String>,
        schedule: Option<String>,
    ) -> Result<Vec<JobDto>> {
        let jobs = self
            .engine
            .create_default_jobs(&connection, &entities, schedule.as_deref())
            .await?;
        Ok(jobs.iter().map(JobDto::from).collect())
    }

    /// Sign in again on an existing connection (its refresh token expired or was revoked).
    pub async fn connection_sign_in_again(&self, id: String) -> Result<ConnectionDto> {
        let s = self.engine.begin_sign_in_again(&id).await?;
        self.sign_in(s).await
    }

    /// Stop waiting for the browser (the user closed the tab or changed their mind).
    pub async fn sign_in_cancel(&self) -> Result<()> {
        if let Some(c) = self.sign_in.lock().expect("sign-in lock").take() {
            c.cancel();
        }
        Ok(())
    }

    async fn sign_in(&self, s: engine::SignIn) -> Result<ConnectionDto> {
        let cancel = CancellationToken::new();
        // One sign-in at a time: a new one supersedes a forgotten one.
        if let Some(old) = self
            .sign_in
            .lock()
            .expect("sign-in lock")
            .replace(cancel.clone())
        {
            old.cancel();
        }
        // Not the URL: its `state` is what stops a forged redirect, so it stays out of logs.
        tracing::info!("opening the system browser for sign-in");
        open::that_detached(s.url()).map_err(|e| DesktopError::Browser(e.kind().to_string()))?;
        let finished = tokio::select! {
            r = self.engine.finish_sign_in(s, &cancel) => r,
            () = tokio::time::sleep(SIGN_IN_PATIENCE) => Err(engine::Error::TimedOut(
                "the browser did not come back within 10 minutes; sign in again".into(),
            )),
        };
        let c = finished.inspect_err(|e| self.note_keychain(e))?;
        Ok((&c).into())
    }

    pub async fn connection_reauth(&self, id: String, input: ReauthDto) -> Result<ConnectionDto> {
        let given: Vec<_> = [
            (SecretKind::ClientSecret, input.client_secret),
            (SecretKind::ApiKey, input.api_key),
            (SecretKind::RefreshToken, input.refresh_token),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        let [(mut kind, value)] = <[_; 1]>::try_from(given).map_err(|_| DesktopError::Invalid {
            field: "input",
            message: "give exactly one of client secret, API key or refresh token".into(),
        })?;
        // The form's one pasted key is a bearer connection's access token (a Stripe key,
        // a HubSpot private app token).
        if kind == SecretKind::ApiKey
            && self.engine.connection(&id).await?.auth_kind == AuthKind::Bearer
        {
            kind = SecretKind::AccessToken;
        }
        let c = self
            .engine
            .set_connection_secret(&id, kind, Secret::new(value))
            .await
            .inspect_err(|e| self.note_keychain(e))?;
        Ok((&c).into())
    }

    pub async fn jobs_list(&self) -> Result<Vec<JobSummaryDto>> {
        // The dashboard shows every job; 500 is the engine's page cap and far beyond what a
        // small business configures.
        let p = self.engine.job_summaries(&PageRequest::first(500)).await?;
        Ok(p.items.iter().map(JobSummaryDto::from).collect())
    }

    pub async fn job_get(&self, id: String) -> Result<JobDto> {
        Ok((&self.engine.job(&id).await?).into())
    }

    pub async fn job_create(&self, input: NewJobDto) -> Result<JobDto> {
        let j = self.engine.create_job(new_job(input)?).await?;
        Ok((&j).into())
    }

    pub async fn job_update(&self, id: String, input: NewJobDto) -> Result<JobDto> {
        let j = self
            .engine
            .update_job(&id, |job| apply_job_update(job, input))
            .await?;
        Ok((&j).into())
    }

    pub async fn job_run(&self, id: String) -> Result<ExecutionDto> {
        let e = self.engine.start_job(&id, RunOptions::default()).await?;
        Ok((&e).into())
    }

    pub async fn executions_list(
        &self,
        job_id: String,
        cursor: Option<String>,
    ) -> Result<PageDto<ExecutionDto>> {
        let p = self
            .engine
            .executions(Some(&job_id), &page_req(cursor))
            .await?;
        Ok(page(&p))
    }

    pub async fn execution_get(&self, id: String) -> Result<ExecutionDetailDto> {
        Ok((&self.engine.execution_detail(&id).await?).into())
    }

    pub async fn execution_cancel(&self, id: String) -> Result<ExecutionDto> {
        Ok((&self.engine.cancel_execution(&id).await?).into())
    }

    pub async fn record_errors(
        &self,
        execution_id: String,
        kind: Option<String>,
        cursor: Option<String>,
    ) -> Result<PageDto<RecordErrorDto>> {
        let kind: Option<RecordErrorKind> = parse(kind.as_deref().filter(|k| !k.is_empty()))?;
        let p = self
            .engine
            .record_errors(&execution_id, kind, &page_req(cursor))
            .await?;
        Ok(page(&p))
    }

    pub async fn failed_records(
        &self,
        job_id: String,
        cursor: Option<String>,
    ) -> Result<PageDto<DeadLetterDto>> {
        let p = self.engine.dead_letters(&job_id, &page_req(cursor)).await?;
        Ok(page(&p))
    }

    /// Records that failed but are not in Failed Records yet: the next run tries them again.
    pub async fn failing_records(
        &self,
        job_id: String,
        cursor: Option<String>,
    ) -> Result<PageDto<DeadLetterDto>> {
        let p = self
            .engine
            .failing_records(&job_id, &page_req(cursor))
            .await?;
        Ok(page(&p))
    }

    pub async fn record_history(
        &self,
        job_id: String,
        record_id: String,
    ) -> Result<Vec<RecordErrorDto>> {
        let (_, history) = self.engine.record_history(&job_id, &record_id).await?;
        Ok(history.iter().map(RecordErrorDto::from).collect())
    }

    pub async fn failed_records_retry(
        &self,
        job_id: String,
        record_ids: Vec<String>,
    ) -> Result<Vec<RecordRetryDto>> {
        let out = self.engine.retry_dead_letters(&job_id, &record_ids).await?;
        Ok(out.iter().map(RecordRetryDto::from).collect())
    }

    pub async fn failed_records_dismiss(
        &self,
        job_id: String,
        record_ids: Vec<String>,
        note: String,
    ) -> Result<usize> {
        let done = self
            .engine
            .dismiss_dead_letters(&job_id, &record_ids, &note)
            .await?;
        Ok(done.len())
    }

    pub async fn alerts_list(
        &self,
        unread_only: bool,
        cursor: Option<String>,
    ) -> Result<PageDto<AlertDto>> {
        let p = self.engine.alerts(unread_only, &page_req(cursor)).await?;
        Ok(page(&p))
    }

    pub async fn alert_mark_read(&self, id: i64) -> Result<()> {
        Ok(self.engine.mark_alert_read(id).await?)
    }

    /// Check a connection now (credentials and one small page); a refusal is the error.
    pub async fn connection_test(&self, id: String) -> Result<ConnectionDto> {
        Ok(ConnectionDto::from(
            &self.engine.test_connection(&id).await?,
        ))
    }

    pub async fn alerts_mark_all_read(&self) -> Result<u64> {
        Ok(self.engine.mark_all_alerts_read().await?)
    }

    pub async fn audit_list(&self, cursor: Option<String>) -> Result<PageDto<AuditDto>> {
        let p = self.engine.audit(&page_req(cursor)).await?;
        Ok(page(&p))
    }

    pub async fn sandbox_status(&self) -> Result<SandboxDto> {
        let slot = self.sandbox.lock().await;
        let connection_id = match self.engine.connection(SANDBOX_CONNECTION).await {
            Ok(c) => Some(c.id),
            Err(engine::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(sandbox_dto(slot.as_ref(), connection_id))
    }

    /// Start the built-in sandbox on a free loopback port (once), and make the `sandbox`
    /// connection point at it, creating it the first time.
    pub async fn sandbox_start(&self) -> Result<SandboxDto> {
        let mut slot = self.sandbox.lock().await;
        if slot.is_none() {
            let sandbox = Sandbox::start(SandboxConfig::default())
                .await
                .map_err(|e| DesktopError::Sandbox(format!("cannot start: {e}")))?;
            *slot = Some(SandboxSlot {
                sandbox,
                faults: SandboxFaultsDto::default(),
            });
        }
        let base_url = slot.as_ref().expect("sandbox started").sandbox.base_url();
        let conn = match self.engine.connection(SANDBOX_CONNECTION).await {
            // The port changes with every start: follow it, with every connection that was
            // made on the sandbox's last address (the form's "sandbox" spec defaults to it).
            // One typed to point elsewhere keeps its address.
            Ok(c) if c.base_url != base_url => {
                for other in self.engine.connections().await? {
                    if other.id != c.id && other.base_url == c.base_url {
                        self.engine
                            .set_connection_base_url(&other.id, &base_url)
                            .await?;
                    }
                }
                self.engine
                    .set_connection_base_url(&c.id, &base_url)
                    .await?
            }
            Ok(c) => c,
            Err(engine::Error::NotFound { .. }) => {
                let cfg = SandboxConfig::default();
                self.engine
                    .create_connection(NewConnection {
                        name: SANDBOX_CONNECTION.into(),
                        spec: ConnectorSpec::parse(syncdesk_sandbox::CONNECTOR_SPEC)?,
                        base_url: Some(base_url),
                        client_id: Some(cfg.client_id),
                        secrets: vec![(SecretKind::ClientSecret, Secret::new(cfg.client_secret))],
                        auth_base_url: None,
                        auth_kind: None,
                        values: Default::default(),
                    })
                    .await
                    .inspect_err(|e| self.note_keychain(e))?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(sandbox_dto(slot.as_ref(), Some(conn.id)))
    }

    /// Switch the sandbox's faults while it runs.
    pub async fn sandbox_set_faults(&self, faults: SandboxFaultsDto) -> Result<SandboxDto> {
        check_faults(&faults)?;
        let mut guard = self.sandbox.lock().await;
        let slot = guard
            .as_mut()
            .ok_or_else(|| DesktopError::Sandbox("not running; start it first".into()))?;
        let sb = &slot.sandbox;
        let f = faults.clone();
        sb.update_faults(|x| apply_faults(x, &f));
        if faults.credentials_revoked != slot.faults.credentials_revoked {
            sb.set_credentials_revoked(faults.credentials_revoked);
            if faults.credentials_revoked {
                // Tokens already issued die too, so the very next request needs a refresh,
                // which the provider then refuses (R-E1's failure path).
                sb.revoke_tokens();
            }
        }
        slot.faults = faults;
        drop(guard);
        self.sandbox_status().await
    }

    /// A keychain failure seen by a command also turns the health flag off, so the UI can
    /// explain it outside the form that hit it.
    fn note_keychain(&self, e: &engine::Error) {
        if let engine::Error::Keychain(m) = e {
            tracing::warn!(error = %m, "keychain unavailable");
            self.set_keychain(Err(e.to_string()));
        }
    }
}

fn availability(r: std::result::Result<(), String>) -> Availability {
    match r {
        Ok(()) => Availability {
            ok: true,
            message: None,
        },
        Err(m) => Availability {
            ok: false,
            message: Some(m),
        },
    }
}

fn new_job(input: NewJobDto) -> Result<NewJob> {
    Ok(NewJob {
        name: input.name,
        connection: input.connection,
        entity: input.entity,
        direction: parse(input.direction.as_deref())?.unwrap_or(engine::Direction::Pull),
        mode: parse(input.mode.as_deref())?.unwrap_or(engine::Mode::Incremental),
        schedule: input.schedule,
        enabled: input.enabled.unwrap_or(true),
        settings: input.settings.unwrap_or_default(),
    })
}

/// The editor sends the whole job; connection, entity and direction are fixed once created
/// (records already linked belong to them), the rest may change.
fn apply_job_update(job: &mut engine::Job, input: NewJobDto) -> engine::Result<()> {
    let same = |field: &str, have: &str, want: &str| {
        if have == want {
            Ok(())
        } else {
            Err(engine::Error::Invalid {
                field: field.into(),
                message: "cannot change once the job exists; create a new job".into(),
            })
        }
    };
    if !input.connection.is_empty() {
        same("connection", &job.connection_id, &input.connection)?;
    }
    same("entity", &job.entity, &input.entity)?;
    if let Some(d) = input.direction.as_deref() {
        same("direction", job.direction.as_str(), d)?;
    }
    if input.name.trim().is_empty() {
        return Err(engine::Error::Invalid {
            field: "name".into(),
            message: "must not be empty".into(),
        });
    }
    job.name = input.name.trim().to_string();
    if let Some(m) = input.mode.as_deref() {
        job.mode = m.parse()?;
    }
    if let Some(s) = input.schedule.as_deref() {
        job.schedule = engine::Schedule::parse(s)?;
    }
    if let Some(e) = input.enabled {
        job.enabled = e;
    }
    if let Some(s) = input.settings {
        job.settings = s;
    }
    Ok(())
}

fn check_faults(f: &SandboxFaultsDto) -> Result<()> {
    for (field, v) in [
        ("error_rate", f.error_rate),
        ("bad_record_rate", f.bad_record_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(DesktopError::Invalid {
                field,
                message: "must be between 0 and 1".into(),
            });
        }
    }
    Ok(())
}

/// The panel's switches onto the sandbox's full fault set; faults the panel does not show
/// are left as they are.
fn apply_faults(x: &mut Faults, f: &SandboxFaultsDto) {
    x.error_rate = f.error_rate;
    x.error_burst = f.error_burst;
    x.rate_limit_burst = f.rate_limit_burst;
    x.retry_after = match f.retry_after_secs {
        Some(s) => RetryAfter::Seconds(s),
        None => RetryAfter::None,
    };
    x.latency_ms = f.latency_ms;
    x.bad_record_rate = f.bad_record_rate;
    x.schema_drift = if f.schema_drift {
        vec![SchemaDrift {
            entity: Entity::Customers,
            rename: Some(("email".into(), "email_address".into())),
            retype: None,
        }]
    } else {
        Vec::new()
    };
}

fn sandbox_dto(slot: Option<&SandboxSlot>, connection_id: Option<String>) -> SandboxDto {
    match slot {
        Some(s) => SandboxDto {
            running: true,
            base_url: Some(s.sandbox.base_url()),
            connection_id,
            faults: s.faults.clone(),
            data_requests: s.sandbox.stats().data_requests,
        },
        None => SandboxDto {
            running: false,
            base_url: None,
            connection_id,
            faults: SandboxFaultsDto::default(),
            data_requests: 0,
        },
    }
}
