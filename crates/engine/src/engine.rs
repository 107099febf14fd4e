//! The engine's one API: every shell (CLI, desktop) calls these methods and nothing else.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::connector::{spec::check_base_url, Auth, AuthConfig, Connector, ConnectorSpec};
use crate::diagnosis::{self, Diagnosis, SchemaChange};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::model::*;
use crate::policy::RecordState;
use crate::runner::{Run, LEASE};
use crate::secrets::{Secret, SecretKind, SecretStore};
use crate::store::{AlertScope, NewConnectionRow, NewExecution, RefRow, Store};
use crate::worker::hostname;

/// Where the store is.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file: one desktop, the default.
    File(PathBuf),
    /// A shared database by URL, `postgres://…` (team mode: several desktops and workers).
    Url(String),
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::File(path)
    }
}

/// Shown without a URL's password, so it can go into logs and messages.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::File(path) => write!(f, "{}", path.display()),
            Database::Url(url) => f.write_str(&crate::store::redacted_url(url)),
        }
    }
}

impl Database {
    /// Under which name the keychain keeps a shared database's password
    /// ([`SecretKind::DatabasePassword`]): `database:postgres://user@host:port/name`, the URL
    /// without password or options. `None` for a file.
    pub fn secret_id(&self) -> Option<String> {
        let Database::Url(url) = self else {
            return None;
        };
        let mut u = url::Url::parse(url).ok()?;
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        Some(format!("database:{u}"))
    }

    /// The URL to connect with: its own password, else (without `PGPASSWORD`) the one the
    /// keychain keeps for it. In memory only: shown, it is redacted like any URL.
    pub async fn with_keychain_password(&self, secrets: &Arc<dyn SecretStore>) -> Result<Database> {
        let (Database::Url(url), Some(id)) = (self, self.secret_id()) else {
            return Ok(self.clone());
        };
        let Ok(mut u) = url::Url::parse(url) else {
            return Ok(self.clone());
        };
        if u.password().is_some() {
            return Ok(self.clone());
        }
        if std::env::var_os("PGPASSWORD").is_some() {
            return Ok(self.clone());
        }
        let secrets = secrets.clone();
        let found =
            tokio::task::spawn_blocking(move || secrets.get(&id, SecretKind::DatabasePassword))
                .await
                .map_err(|e| Error::Keychain(format!("keychain task failed: {e}")))?;
        // A headless server may have no keychain at all; the server then says whether it
        // wanted a password.
        match found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no database password from the keychain");
            None
        }) {
            Some(p) => {
                u.set_password(Some(p.expose())).map_err(|()| {
                    Error::invalid("database url", "this URL cannot carry a password")
                })?;
                Ok(Database::Url(u.to_string()))
            }
            None => Ok(self.clone()),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({self})")
    }
}

/// Where the engine keeps its data and secrets, and what time it is.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub database: Database,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// Who acts, for the audit log (the OS user by default).
    pub actor: String,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
    events: broadcast::Sender<Event>,
    /// One token cache per connection, shared by its executions (single-flight refresh).
    auths: Mutex<HashMap<String, Arc<Auth>>>,
    /// `host:pid:uuid`: who runs an execution, in its row.
    pub(crate) owner: String,
    /// How long this engine's runs hold their lease between renewals ([`LEASE`]).
    pub(crate) lease: std::time::Duration,
    running: Mutex<HashMap<String, CancellationToken>>,
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    pub(crate) worker_wake: tokio::sync::Notify,
    pub(crate) actor: String,
    /// The desktop app, or a headless worker ([`Engine::as_worker`]).
    pub(crate) role: WorkerRole,
    /// The queue of events shared with the other engines on the store, and the task that
    /// writes it (`team::publish`), started with the first one.
    shared: Mutex<Option<(crate::team::SharedQueue, tokio::task::JoinHandle<()>)>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub(crate) fn emit(&self, e: Event) {
        tracing::debug!(event = ?e, "event");
        if e.shared() {
            self.share(&e);
        }
        let _ = self.events.send(e);
    }

    /// An event another engine shared, for this engine's subscribers (not shared again).
    pub(crate) fn hear(&self, e: Event) {
        tracing::debug!(event = ?e, "event heard");
        let _ = self.events.send(e);
    }

    fn share(&self, e: &Event) {
        let mut slot = self.shared.lock().expect("shared events lock");
        if slot.is_none() {
            if tokio::runtime::Handle::try_current().is_err() {
                return;
            }
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            // Not on the tracker: [`Engine::shutdown`] waits for the runs first (their last
            // events are shared too), then closes this queue and waits for it to be written.
            let task = tokio::spawn(crate::team::publish(
                self.store.clone(),
                self.owner.clone(),
                rx,
            ));
            *slot = Some((tx, task));
        }
        if let Some((tx, _)) = slot.as_ref() {
            let _ = tx.send((self.clock.now(), e.clone()));
        }
    }

    pub(crate) fn wake_worker(&self) {
        self.worker_wake.notify_one();
    }

    /// When a lease taken at `now` runs out.
    pub(crate) fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(chrono::Duration::from_std(self.lease).unwrap_or_default())
            .unwrap_or(now)
    }

    /// The connector for a connection, with its shared token cache.
    pub(crate) async fn connector(self: &Arc<Self>, conn: &Connection) -> Result<Connector> {
        let (spec, client_id) = self.store.connection_spec(&conn.id).await?;
        let base = check_base_url(&conn.base_url)?;
        let auth = {
            let mut auths = self.auths.lock().expect("auth cache lock");
            match auths.get(&conn.id) {
                Some(a) => a.clone(),
                None => {
                    // The client secret and refresh token go there only (the connection's
                    // origin, or the provider's sign-in server), over https unless on this
                    // machine; the access token only to the base URL's origin.
                    let token_url = match &spec.auth.token_url {
                        Some(u) => Some(crate::connector::spec::resolve_auth_url(
                            "auth.token_url",
                            u,
                            &base,
                        )?),
                        None => None,
                    };
                    let a = Arc::new(Auth::new(
                        AuthConfig {
                            connection_id: conn.id.clone(),
                            connection_name: conn.name.clone(),
                            kind: conn.auth_kind,
                            token_url,
                            client_id,
                            scope: spec.auth.scope.clone(),
                            api_key_header: spec.auth.header.clone(),
                            api_key_query: spec.auth.query.clone(),
                            token_expires_at: conn.token_expires_at,
                        },
                        self.secrets.clone(),
                    )?);
                    auths.insert(conn.id.clone(), a.clone());
                    a
                }
            }
        };
        let store = self.store.clone();
        let clock = self.clock.clone();
        let conn_id = conn.id.clone();
        let tracker = self.tracker.clone();
        let on_tokens: crate::connector::TokenSink = Arc::new(move |t| {
            let store = store.clone();
            let id = conn_id.clone();
            let now = clock.now();
            tracker.spawn(async move {
                if let Err(e) = store.set_connection_tokens(&id, t, now).await {
                    tracing::error!(error = %e, "could not store token expiry");
                }
            });
        });
        Ok(Connector::new(
            self.http.clone(),
            base,
            Arc::new(spec),
            auth,
            self.clock.clone(),
            on_tokens,
        )
        .with_values(conn.values.clone()))
    }
}

/// A connection to create. Secrets go to the keychain, never to the database.
/// [`NewConnection::new`] leaves every optional part out:
/// `NewConnection { base_url: Some(url), ..NewConnection::new("name", spec) }`.
#[derive(Debug)]
pub struct NewConnection {
    pub name: String,
    pub spec: ConnectorSpec,
    /// Overrides the spec's base URL.
    pub base_url: Option<String>,
    /// Where the provider's sign-in server is, when not where the spec says: replaces the
    /// scheme, host and port of the spec's absolute `auth.token_url` and
    /// `auth.authorize_url` (relative ones follow the base URL). The connection keeps the
    /// spec with its sign-in URLs so moved.
    pub auth_base_url: Option<String>,
    /// How the connection authenticates: the spec's `auth.kind` when `None`, or one of its
    /// `auth.alternatives`.
    pub auth_kind: Option<AuthKind>,
    pub client_id: Option<String>,
    pub secrets: Vec<(SecretKind, Secret)>,
    /// The spec's connection-level values (`[values.<name>]`), by name. Not secret.
    pub values: std::collections::BTreeMap<String, String>,
}

impl NewConnection {
    /// A connection named `name` to the provider `spec` describes, with the spec's own base
    /// URL and auth kind, and no client id, secrets or values yet.
    pub fn new(name: impl Into<String>, spec: ConnectorSpec) -> NewConnection {
        NewConnection {
            name: name.into(),
            spec,
            base_url: None,
            auth_base_url: None,
            auth_kind: None,
            client_id: None,
            secrets: Vec::new(),
            values: Default::default(),
        }
    }
}

/// A job to create, as a user writes it (TOML/JSON or CLI flags).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    pub name: String,
    pub connection: String,
    pub entity: String,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    #[serde(default = "default_mode")]
    pub mode: Mode,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Settings; empty mappings/natural keys take the connector's defaults for the entity.
    #[serde(default)]
    pub settings: JobSettings,
}

fn default_direction() -> Direction {
    Direction::Pull
}
fn default_mode() -> Mode {
    Mode::Incremental
}
fn yes() -> bool {
    true
}

/// How to run a job now.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Fetch everything even for an incremental job.
    pub full: bool,
}

/// An execution with what explains it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutionDetail {
    pub execution: Execution,
    pub job_name: String,
    pub entity: String,
    pub error_counts: Vec<(RecordErrorKind, u64)>,
    pub diagnosis: Vec<Diagnosis>,
    /// What changed in the provider's fields, when the diagnosis is a schema change (R-E5).
    pub schema_change: Option<SchemaChange>,
    /// The retry chain this execution belongs to, oldest first.
    pub chain: Vec<String>,
}

/// What a single dead-letter retry did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordRetryOutcome {
    pub record_id: String,
    pub execution_id: String,
    pub succeeded: bool,
    pub state: RecordState,
    pub error: Option<String>,
}

/// The Syncdesk engine. Cheap to clone; all clones share one store and one task tracker.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// Open the store (migrating it) and build the engine.
    pub async fn open(opts: EngineOptions) -> Result<Engine> {
        let store = match opts.database.with_keychain_password(&opts.secrets).await? {
            Database::File(path) => Store::open(&path).await?,
            Database::Url(url) => Store::open_url(&url).await?,
        };
        Self::with_store(store, opts.secrets, opts.clock, opts.actor)
    }

    /// Build on an already open store.
    pub fn with_store(
        store: Store,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        actor: String,
    ) -> Result<Engine> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("syncdesk/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            // Same origin only, at most 5 hops: credentials never follow a redirect away.
            .redirect(crate::connector::redirect_policy())
            .build()
            .map_err(|e| Error::Store(format!("cannot build the HTTP client: {e}")))?;
        let (events, _) = broadcast::channel(1024);
        let owner = owner_tag(&hostname());
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                secrets,
                clock,
                http,
                events,
                auths: Mutex::new(HashMap::new()),
                owner,
                lease: LEASE,
                running: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                worker_wake: tokio::sync::Notify::new(),
                actor,
                role: WorkerRole::App,
                shared: Mutex::new(None),
            }),
        })
    }

    /// Run as a named worker of a shared store (team mode), with its own lease. A named
    /// worker counts as another machine even beside a process of this one: its runs are
    /// taken over when its lease lapses, not when its process is found gone. Call before the
    /// engine is cloned or used.
    pub fn as_worker(
        mut self,
        name: Option<&str>,
        lease: Option<std::time::Duration>,
    ) -> Result<Engine> {
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| Error::Conflict("the engine is already in use".into()))?;
        if let Some(name) = name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(Error::invalid(
                    "worker name",
                    format!("'{name}' must be 1 to 64 letters, digits, '-', '_' or '.'"),
                ));
            }
            inner.owner = owner_tag(name);
        }
        inner.role = WorkerRole::Worker;
        if let Some(lease) = lease {
            if !(std::time::Duration::from_secs(3)..=std::time::Duration::from_secs(3600))
                .contains(&lease)
            {
                return Err(Error::invalid(
                    "lease",
                    "must be between 3 seconds and 1 hour",
                ));
            }
            inner.lease = lease;
        }
        Ok(self)
    }

    /// This engine's owner tag (`host:pid:uuid`), as executions it runs record it.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The store, for read-only queries the API does not wrap (tests, benchmarks).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    // ---- connections ----------------------------------------------------------------

    /// Create a connection; its secrets go to the keychain first, so a keychain failure
    /// leaves nothing half-created.
    pub async fn create_connection(&self, c: NewConnection) -> Result<Connection> {
        self.create_verified(c, Probe::Credentials).await
    }

    /// [`Engine::create_connection`], checked with `probe`: the catalog's connections are
    /// checked with a real data request, since a pasted key is only known good once the
    /// provider has answered one.
    async fn create_verified(&self, c: NewConnection, probe: Probe<'_>) -> Result<Connection> {
        let kind = Self::new_connection_auth_kind(&c)?;
        check_secret_given(&c, kind)?;
        let secrets: Vec<SecretKind> = c.secrets.iter().map(|(k, _)| *k).collect();
        let conn = self.insert_connection(c, kind).await?;
        // Verified before it is called active (issue 14): credentials the provider refuses
        // leave nothing stored; a provider that cannot be reached leaves the connection in
        // `error`, saying why, until a test or a run gets through. OAuth2 is verified by its
        // token request; a pasted key or token only by a request that uses it.
        let probe = match probe {
            Probe::Credentials if matches!(kind, AuthKind::ApiKey | AuthKind::Bearer) => {
                Probe::Page(None)
            }
            p => p,
        };
        match self.verify(&conn, probe).await {
            Ok(()) => self.inner.store.connection(&conn.id).await,
            Err(e) if e.class() == crate::ErrorClass::Auth => {
                self.forget_token(&conn.id);
                self.inner.store.delete_unused_connection(&conn.id).await?;
                for kind in secrets {
                    let _ = self.delete_secret(&conn.id, kind).await;
                }
                Err(refused(e))
            }
            Err(e) => self.unverified(&conn, &e).await,
        }
    }

    /// Store a connection without asking its provider first: for moving a store, where the
    /// provider is not to be contacted, and for tests of how runs meet a provider's refusals.
    /// Its first run or `test_connection` checks it.
    pub async fn add_connection_unchecked(&self, c: NewConnection) -> Result<Connection> {
        let kind = Self::new_connection_auth_kind(&c)?;
        self.insert_connection(c, kind).await
    }

    /// Check a connection now: its credentials (a token request for OAuth2) and one small
    /// page of its first entity. Its status says what was found; the answer is the
    /// connection as it now stands, or why the provider refused.
    pub async fn test_connection(&self, connection: &str) -> Result<Connection> {
        let conn = self.inner.store.connection(connection).await?;
        self.forget_token(&conn.id);
        let now = self.inner.clock.now();
        match self.verify(&conn, Probe::Page(None)).await {
            Ok(()) => {
                self.inner
                    .store
                    .set_connection_status(&conn.id, ConnectionStatus::Active, None, now)
                    .await?;
                self.inner.store.connection(&conn.id).await
            }
            Err(e) if e.class() == crate::ErrorClass::Auth => {
                let note = e.to_string();
                self.inner
                    .store
                    .set_connection_status(&conn.id, ConnectionStatus::Expired, Some(&note), now)
                    .await?;
                Err(refused(e))
            }
            Err(e) => self.unverified(&conn, &e).await,
        }
    }

    /// Get a credential (and, with [`Probe::Page`], one page of one record of an entity)
    /// under a short policy: no retries, no waits.
    async fn verify(&self, conn: &Connection, probe: Probe<'_>) -> Result<()> {
        let connector = self.inner.connector(conn).await?;
        connector.verify_credentials().await?;
        let Probe::Page(entity) = probe else {
            return Ok(());
        };
        // A data request may need a value the provider lists once signed in (the Xero
        // organisation): until it is chosen, listing the choices is the request that uses
        // the credentials.
        let unchosen = connector
            .spec()
            .values
            .iter()
            .find(|(name, v)| v.choices.is_some() && !conn.values.contains_key(*name))
            .map(|(name, _)| name.clone());
        if let Some(name) = unchosen {
            self.value_choices(&conn.id, &name).await?;
            return Ok(());
        }
        let Some(entity) = entity
            .map(str::to_string)
            .or_else(|| connector.spec().entities.keys().next().cloned())
        else {
            return Ok(());
        };
        let now = self.inner.clock.now();
        let policy = crate::connector::RequestPolicy {
            backoff: crate::policy::Backoff(Vec::new()),
            request_timeout: std::time::Duration::from_secs(15),
            max_rate_limit_waits: 0,
            deadline: now + chrono::Duration::seconds(60),
        };
        let mut pager = connector.pager(&entity, None, 1)?;
        pager
            .next_page(
                &connector,
                &policy,
                &mut Default::default(),
                &CancellationToken::new(),
            )
            .await?;
        Ok(())
    }

    /// A connection whose check could not reach a verdict (provider down, rate limited):
    /// kept, in `error`, saying why.
    async fn unverified(&self, conn: &Connection, e: &Error) -> Result<Connection> {
        let note = format!("Could not check the connection: {e}");
        self.inner
            .store
            .set_connection_status(
                &conn.id,
                ConnectionStatus::Error,
                Some(&note),
                self.inner.clock.now(),
            )
            .await?;
        self.inner.store.connection(&conn.id).await
    }

    /// Check a new connection and make its spec the one it will keep: its sign-in URLs
    /// moved to `auth_base_url` (which is then spent), the spec valid, the sign-in URLs
    /// allowed for the base URL, the secrets sendable, the values the spec declares.
    /// Returns the base URL it will use.
    pub(crate) fn prepare_new_connection(c: &mut NewConnection) -> Result<String> {
        if c.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        if let Some(auth_base) = c.auth_base_url.take() {
            move_sign_in(&mut c.spec, &auth_base)?;
        }
        c.spec.validate()?;
        let base_url = c
            .base_url
            .clone()
            .or_else(|| c.spec.base_url.clone())
            .ok_or_else(|| {
                Error::invalid("base_url", "the connector spec has no base_url; give one")
            })?;
        // Relative token and authorize URLs resolve on this connection's origin; absolute
        // ones may be on the provider's sign-in server; either way https (or this machine).
        let base = check_base_url(&base_url)?;
        for (field, url) in [
            ("auth.token_url", &c.spec.auth.token_url),
            ("auth.authorize_url", &c.spec.auth.authorize_url),
        ] {
            if let Some(url) = url {
                crate::connector::spec::resolve_auth_url(field, url, &base)?;
            }
        }
        for (kind, value) in &c.secrets {
            crate::secrets::check_secret_value(*kind, value)?;
        }
        // A value pasted with a space or a line break around it is the value.
        for v in c.values.values_mut() {
            *v = v.trim().to_string();
        }
        check_values(&c.spec, &c.values)?;
        Ok(base_url)
    }

    /// The auth kind a new connection asks for, if its spec allows it: its own `auth.kind`,
    /// or one of its `auth.alternatives`.
    pub(crate) fn new_connection_auth_kind(c: &NewConnection) -> Result<AuthKind> {
        let Some(kind) = c.auth_kind else {
            return Ok(c.spec.auth.kind);
        };
        let allowed = allowed_auth_kinds(&c.spec);
        if allowed.contains(&kind) {
            return Ok(kind);
        }
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        Err(Error::invalid(
            "auth_kind",
            format!(
                "{} connections cannot use {kind}; they can use {}",
                c.spec.name,
                names.join(" or ")
            ),
        ))
    }

    /// Store a connection authenticating as `auth_kind` (a browser sign-in turns a spec's
    /// OAuth2 connection into a refresh-token one).
    pub(crate) async fn insert_connection(
        &self,
        mut c: NewConnection,
        auth_kind: AuthKind,
    ) -> Result<Connection> {
        let base_url = Self::prepare_new_connection(&mut c)?;
        let id = uuid::Uuid::new_v4().to_string();
        for (kind, value) in &c.secrets {
            self.put_secret(&id, *kind, value.clone()).await?;
        }
        let now = self.inner.clock.now();
        let row = NewConnectionRow {
            id: id.clone(),
            name: c.name.trim().to_string(),
            provider: c.spec.name.clone(),
            base_url,
            auth_kind,
            client_id: c.client_id,
            spec: c.spec,
            values: c.values,
            now,
        };
        match self.inner.store.insert_connection(row).await {
            Ok(conn) => {
                self.inner
                    .store
                    .insert_audit(
                        &self.inner.actor,
                        "connection.create",
                        &format!("connection {}", conn.name),
                        Some(&format!("{} at {}", conn.provider, conn.base_url)),
                        now,
                    )
                    .await?;
                Ok(conn)
            }
            Err(e) => {
                for (kind, _) in &c.secrets {
                    let _ = self.delete_secret(&id, *kind).await;
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn put_secret(
        &self,
        connection_id: &str,
        kind: SecretKind,
        value: Secret,
    ) -> Result<()> {
        let s = self.inner.secrets.clone();
        let id = connection_id.to_string();
        tokio::task::spawn_blocking(move || s.set(&id, kind, &value))
            .await
            .map_err(|e| Error::Keychain(e.to_string()))?
    }

    pub(crate) async fn get_secret(
        &self,
        connection_id: &str,
        kind: SecretKind,
    ) -> Result<Option<Secret>> {
        let s = self.inner.secrets.clone();
        let id = connection_id.to_string();
        tokio::task::spawn_blocking(move || s.get(&id, kind))
            .await
            .map_err(|e| Error::Keychain(e.to_string()))?
    }

    async fn delete_secret(&self, connection_id: &str, kind: SecretKind) -> Result<()> {
        let s = self.inner.secrets.clone();
        let id = connection_id.to_string();
        tokio::task::spawn_blocking(move || s.delete(&id, kind))
            .await
            .map_err(|e| Error::Keychain(e.to_string()))?
    }

    /// The values the connection's spec declares, with what the connection holds.
    pub async fn connection_values(&self, connection: &str) -> Result<Vec<ConnectionValue>> {
        let conn = self.inner.store.connection(connection).await?;
        let (spec, _) = self.inner.store.connection_spec(&conn.id).await?;
        Ok(spec
            .values
            .iter()
            .map(|(name, v)| ConnectionValue {
                name: name.clone(),
                label: v.label.clone(),
                help: v.help.clone(),
                value: conn.values.get(name).cloned(),
                listed: v.choices.is_some(),
            })
            .collect())
    }

    /// What the connection's value `name` may be (`[values.<name>].choices`), as the
    /// provider lists it for the connection's credentials: the Xero organisations its
    /// sign-in allowed. Sent without the spec's `[request]` headers and query, which may
    /// need the very value being chosen.
    pub async fn value_choices(&self, connection: &str, name: &str) -> Result<Vec<ValueChoice>> {
        let conn = self.inner.store.connection(connection).await?;
        let connector = self.inner.connector(&conn).await?;
        let spec = connector.spec();
        let field = format!("values.{name}");
        let declared = declared_value(spec, name)?;
        if declared.choices.is_none() {
            return Err(Error::invalid(
                field,
                format!(
                    "{} does not list the possible values of the {}; type it",
                    spec.name, declared.label
                ),
            ));
        }
        let policy = crate::connector::RequestPolicy {
            backoff: crate::policy::Backoff(Vec::new()),
            request_timeout: std::time::Duration::from_secs(15),
            max_rate_limit_waits: 0,
            deadline: self.inner.clock.now() + chrono::Duration::seconds(60),
        };
        let listed = connector
            .list_choices(
                name,
                &policy,
                &mut Default::default(),
                &CancellationToken::new(),
            )
            .await?;
        Ok(listed
            .into_iter()
            .map(|c| ValueChoice {
                value: c.value,
                label: c.label,
            })
            .collect())
    }

    /// Set one of the connection's values (`[values.<name>]`). A value the provider lists
    /// (`choices`) must be one it lists now for this connection. Audited, before and after.
    pub async fn set_connection_value(
        &self,
        connection: &str,
        name: &str,
        value: &str,
    ) -> Result<Connection> {
        let conn = self.inner.store.connection(connection).await?;
        let (spec, _) = self.inner.store.connection_spec(&conn.id).await?;
        let value = value.trim();
        let declared = check_value(&spec, name, value)?;
        if declared.choices.is_some() {
            let choices = self.value_choices(&conn.id, name).await?;
            if !choices.iter().any(|c| c.value == value) {
                let listed: Vec<String> = choices
                    .iter()
                    .map(|c| format!("{} ({})", c.label, c.value))
                    .collect();
                return Err(Error::invalid(
                    format!("values.{name}"),
                    if listed.is_empty() {
                        format!(
                            "{} lists no {} for this connection",
                            spec.name, declared.label
                        )
                    } else {
                        format!(
                            "'{value}' is not a {} this connection can use; choose one of: {}",
                            declared.label,
                            listed.join(", ")
                        )
                    },
                ));
            }
        }
        let now = self.inner.clock.now();
        self.inner
            .store
            .set_connection_value(&conn.id, name, Some(value), now)
            .await?;
        let before = conn.values.get(name).map_or("(none)", String::as_str);
        self.inner
            .store
            .insert_audit(
                &self.inner.actor,
                "connection.value",
                &format!("connection {}", conn.name),
                Some(&format!("{}: {before} → {value}", declared.label)),
                now,
            )
            .await?;
        self.inner.store.connection(&conn.id).await
    }

    /// Replace a connection's secret (re-authentication); the connection becomes active
    /// again and its cached token is dropped.
    pub async fn set_connection_secret(
        &self,
        connection: &str,
        kind: SecretKind,
        value: Secret,
    ) -> Result<Connection> {
        crate::secrets::check_secret_value(kind, &value)?;
        let conn = self.inner.store.connection(connection).await?;
        let before = self.get_secret(&conn.id, kind).await?;
        self.put_secret(&conn.id, kind, value).await?;
        if kind != SecretKind::AccessToken {
            // A new client secret / refresh token makes the old access token moot.
            self.delete_secret(&conn.id, SecretKind::AccessToken)
                .await?;
        }
        self.forget_token(&conn.id);
        // The new secret must work before the connection is called active again: one the
        // provider refuses is taken back and nothing changes. A pasted key or token is only
        // known good once a request that uses it has been answered.
        let probe = match conn.auth_kind {
            AuthKind::ApiKey | AuthKind::Bearer => Probe::Page(None),
            _ => Probe::Credentials,
        };
        if let Err(e) = self.verify(&conn, probe).await {
            if e.class() == crate::ErrorClass::Auth {
                self.forget_token(&conn.id);
                match before {
                    Some(old) => self.put_secret(&conn.id, kind, old).await?,
                    None => self.delete_secret(&conn.id, kind).await?,
                }
                return Err(refused(e));
            }
        }
        let now = self.inner.clock.now();
        self.inner
            .store
            .set_connection_status(&conn.id, ConnectionStatus::Active, None, now)
            .await?;
        self.reauthenticated(&conn.id, &conn.name, kind.label(), now)
            .await?;
        self.inner.store.connection(&conn.id).await
    }

    /// After new credentials are stored: drop the cached token, so the next request reads
    /// the keychain again, and audit who re-authenticated with what.
    pub(crate) async fn reauthenticated(
        &self,
        connection_id: &str,
        name: &str,
        with: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.forget_token(connection_id);
        self.inner
            .store
            .insert_audit(
                &self.inner.actor,
                "connection.reauthenticate",
                &format!("connection {name}"),
                Some(with),
                now,
            )
            .await?;
        // What waited for new credentials goes on now: the alerts that asked for them are
        // resolved, and the retries held for them are due.
        self.resolve_alerts(
            &AlertScope::Connection(connection_id.to_string()),
            "The connection was re-authenticated",
            now,
        )
        .await?;
        if !self
            .inner
            .store
            .release_reauth_retries(connection_id, now)
            .await?
            .is_empty()
        {
            self.inner.wake_worker();
        }
        Ok(())
    }

    /// Resolve the open alerts a cleared cause covers, and say so to the shells (their
    /// notifications are withdrawn).
    async fn resolve_alerts(
        &self,
        scope: &AlertScope,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let resolved = self.inner.store.resolve_alerts(scope, why, now).await?;
        if !resolved.is_empty() {
            let (job_id, connection_id) = scope.subject();
            self.inner.emit(Event::AlertsResolved {
                alert_ids: resolved,
                job_id: job_id.map(str::to_string),
                connection_id: connection_id.map(str::to_string),
            });
        }
        Ok(())
    }

    /// Drop a connection's cached token, so the next request reads the keychain again.
    pub(crate) fn forget_token(&self, connection_id: &str) {
        self.inner
            .auths
            .lock()
            .expect("auth cache lock")
            .remove(connection_id);
    }

    pub async fn connections(&self) -> Result<Vec<Connection>> {
        self.inner.store.connections().await
    }

    pub async fn connection(&self, id_or_name: &str) -> Result<Connection> {
        self.inner.store.connection(id_or_name).await
    }

    // ---- jobs -----------------------------------------------------------------------

    /// Create a job; nothing is stored unless every setting is valid.
    pub async fn create_job(&self, j: NewJob) -> Result<Job> {
        let conn = self.inner.store.connection(&j.connection).await?;
        let (spec, _) = self.inner.store.connection_spec(&conn.id).await?;
        let entity = spec.entity(&j.entity)?;
        if j.direction == Direction::Push {
            return Err(Error::invalid(
                "direction",
                "push jobs are not supported yet; use pull",
            ));
        }
        if j.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let mut settings = j.settings;
        if settings.mappings.is_empty() {
            settings.mappings = entity.mappings.clone();
        }
        if settings.natural_keys.is_empty() {
            settings.natural_keys = entity.natural_keys.clone();
        }
        if settings.natural_keys.is_empty() {
            // Nothing identifies a duplicate of this entity (payments have no natural key):
            // detection is off, and the stored settings say so.
            settings.duplicate_detection = false;
        }
        settings.validate()?;
        settings.check_references(spec.entities.keys().map(String::as_str))?;
        if j.mode == Mode::Incremental && !entity.filters_changes() {
            return Err(Error::invalid(
                "mode",
                format!(
                    "the connector cannot filter {} by update time; use full",
                    j.entity
                ),
            ));
        }
        let schedule = Schedule::parse(j.schedule.as_deref().unwrap_or("manual"))?;
        let now = self.inner.clock.now();
        let job = Job {
            id: uuid::Uuid::new_v4().to_string(),
            name: j.name.trim().to_string(),
            connection_id: conn.id,
            entity: j.entity,
            direction: j.direction,
            mode: j.mode,
            next_run_at: schedule.next_after(now),
            schedule,
            settings,
            enabled: j.enabled,
            watermark: None,
            created_at: now,
        };
        let job = self.inner.store.insert_job(&job, now).await?;
        self.audit_settings("job.create", &format!("job {}", job.name), None, &job, now)
            .await?;
        self.inner.wake_worker();
        Ok(job)
    }

    /// Change a job's mode, schedule, settings or enabled flag (validated as a whole).
    pub async fn update_job(
        &self,
        job: &str,
        f: impl FnOnce(&mut Job) -> Result<()>,
    ) -> Result<Job> {
        let mut j = self.inner.store.job(job).await?;
        let before = j.clone();
        f(&mut j)?;
        j.settings.validate()?;
        let (spec, _) = self.inner.store.connection_spec(&j.connection_id).await?;
        j.settings
            .check_references(spec.entities.keys().map(String::as_str))?;
        let now = self.inner.clock.now();
        if j.schedule != before.schedule || j.next_run_at.is_none() {
            j.next_run_at = j.schedule.next_after(now);
        }
        let j = self.inner.store.update_job(&j, now).await?;
        self.audit_settings(
            "job.update",
            &format!("job {}", j.name),
            Some(&before),
            &j,
            now,
        )
        .await?;
        self.inner.wake_worker();
        Ok(j)
    }

    /// Audit a settings change with what changed, before → after (nothing when nothing did).
    async fn audit_settings<T: serde::Serialize>(
        &self,
        action: &str,
        subject: &str,
        before: Option<&T>,
        after: &T,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let value = |t: &T| serde_json::to_value(t).unwrap_or_default();
        let note = match before {
            Some(b) => {
                let changes = crate::diff::changes(&value(b), &value(after));
                if changes.is_empty() {
                    return Ok(());
                }
                changes.join("; ")
            }
            None => "created".to_string(),
        };
        self.inner
            .store
            .insert_audit(&self.inner.actor, action, subject, Some(&note), now)
            .await
    }

    pub async fn job(&self, id_or_name: &str) -> Result<Job> {
        self.inner.store.job(id_or_name).await
    }

    pub async fn jobs(&self, page: &PageRequest) -> Result<Page<Job>> {
        self.inner.store.jobs(page).await
    }

    /// Prevention hints for a job (R-I5).
    pub async fn job_hints(&self, job: &str) -> Result<Vec<String>> {
        let job = self.inner.store.job(job).await?;
        let conn = self.inner.store.connection(&job.connection_id).await?;
        let days = conn
            .refresh_expires_at
            .map(|t| (t - self.inner.clock.now()).num_days());
        Ok(diagnosis::hints(&job, days))
    }

    // ---- executions -----------------------------------------------------------------

    pub(crate) fn mode_for(job: &Job, opts: RunOptions) -> Mode {
        match (job.mode, &job.watermark, opts.full) {
            (Mode::Incremental, Some(_), false) => Mode::Incremental,
            _ => Mode::Full,
        }
    }

    /// Start a `running` execution of a job, owned by this engine. The store lets one run
    /// per job exist (issue 13 D1); a run left by a process that is gone is ended as
    /// interrupted first (H3), so a crash never blocks the job until a worker comes by.
    pub(crate) async fn start_row(
        &self,
        job: &Job,
        trigger: Trigger,
        mode: Mode,
        record: Option<String>,
    ) -> Result<Execution> {
        let now = self.inner.clock.now();
        let lease = self.inner.lease_from(now);
        let row = NewExecution {
            id: uuid::Uuid::new_v4().to_string(),
            job_id: job.id.clone(),
            trigger,
            attempt: 1,
            retry_of: None,
            status: ExecutionStatus::Running,
            mode,
            record_id: record,
            due_at: now,
            owner: Some((self.inner.owner.clone(), lease)),
            waits_for_reauth: false,
        };
        // Twice at most: a dead owner's run is ended between the tries.
        for _ in 0..2 {
            if let Some(e) = self
                .inner
                .store
                .insert_running_execution(row.clone(), now)
                .await?
            {
                return Ok(e);
            }
            let Some(running) = self.inner.store.running_execution_of(&job.id).await? else {
                continue; // it ended between the insert and the look
            };
            if !self.interrupt_if_dead(&running).await? {
                return Err(Error::Conflict(format!(
                    "job '{}' is already running: execution {}{}, {}",
                    job.name,
                    running.id,
                    running
                        .started_at
                        .map(|t| format!(" started {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default(),
                    crate::worker::describe_owner(running.owner.as_deref(), &self.inner.owner),
                )));
            }
        }
        Err(Error::Conflict(format!(
            "job '{}' is already running",
            job.name
        )))
    }

    /// Run an execution row that is already `running` and owned by us, to its end.
    pub(crate) async fn drive(&self, exec: Execution) -> Result<Execution> {
        let shutdown = self.inner.shutdown.clone();
        self.drive_under(exec, &shutdown).await
    }

    /// [`Engine::drive`], cancelled when `parent` is (a worker's stop).
    pub(crate) async fn drive_under(
        &self,
        exec: Execution,
        parent: &CancellationToken,
    ) -> Result<Execution> {
        let cancel = self.cancellable(&exec, parent);
        self.drive_records(exec, cancel, parent.clone(), None).await
    }

    /// Register a run's cancel token, so `cancel_execution` reaches it from now on.
    fn cancellable(&self, exec: &Execution, parent: &CancellationToken) -> CancellationToken {
        let cancel = parent.child_token();
        self.inner
            .running
            .lock()
            .expect("running lock")
            .insert(exec.id.clone(), cancel.clone());
        cancel
    }

    /// Drive a run (`cancel` from [`Engine::cancellable`] under `stopping`); a dead-letter
    /// retry of several records names them (one execution).
    async fn drive_records(
        &self,
        exec: Execution,
        cancel: CancellationToken,
        stopping: CancellationToken,
        records: Option<Vec<String>>,
    ) -> Result<Execution> {
        let id = exec.id.clone();
        let work = async {
            let prepared =
                Run::prepare(self.inner.clone(), exec.clone(), cancel, stopping, records).await;
            let run = match prepared {
                Ok(r) => r,
                Err(e) => return self.fail_unprepared(exec, e).await,
            };
            run.run().await
        };
        let result = tokio::select! {
            r = work => r,
            never = self.keep_lease(&id) => match never {},
        };
        self.inner.running.lock().expect("running lock").remove(&id);
        result
    }

    /// Renew the lease of a running execution every third of it, for as long as the run
    /// goes on (this future never ends; the run's end drops it). Real time, not the engine's
    /// clock: the lease only has to outlast the gaps between renewals.
    async fn keep_lease(&self, id: &str) -> std::convert::Infallible {
        let every = self.inner.lease / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let until = self.inner.lease_from(self.inner.clock.now());
            if let Err(e) = self
                .inner
                .store
                .renew_lease(id, &self.inner.owner, until)
                .await
            {
                tracing::warn!(execution = %id, error = %e, "could not renew the run's lease");
            }
        }
    }

    /// A run that could not even start (bad stored settings, missing connection) still ends
    /// with a status and a note.
    async fn fail_unprepared(&self, exec: Execution, e: Error) -> Result<Execution> {
        let now = self.inner.clock.now();
        let finish = crate::store::ExecutionFinish {
            status: ExecutionStatus::Failed,
            failure_kind: Some(FailureKind::Internal),
            note: Some(e.to_string()),
            progress: crate::store::Progress {
                counts: exec.counts,
                ..Default::default()
            },
            finished_at: now,
        };
        let end = crate::store::ExecutionEnd {
            finish: Some(finish),
            ..Default::default()
        };
        self.inner
            .store
            .end_execution(&exec.id, &end)
            .await?
            .map(|e| e.execution)
            .ok_or_else(|| Error::Store("the execution had already ended".into()))
    }

    /// Run a job now and wait for the execution to end.
    pub async fn run_job(&self, job: &str, opts: RunOptions) -> Result<Execution> {
        let job = self.inner.store.job(job).await?;
        let exec = self
            .start_row(&job, Trigger::Manual, Self::mode_for(&job, opts), None)
            .await?;
        self.drive(exec).await
    }

    /// Start a job in the background (tracked, cancellable) and return its execution at once.
    pub async fn start_job(&self, job: &str, opts: RunOptions) -> Result<Execution> {
        let job = self.inner.store.job(job).await?;
        let exec = self
            .start_row(&job, Trigger::Manual, Self::mode_for(&job, opts), None)
            .await?;
        // Cancellable before this returns: the caller may cancel at once.
        let cancel = self.cancellable(&exec, &self.inner.shutdown);
        let engine = self.clone();
        let e = exec.clone();
        self.inner.tracker.spawn(async move {
            let stopping = engine.inner.shutdown.clone();
            if let Err(err) = engine.drive_records(e, cancel, stopping, None).await {
                tracing::error!(error = %err, "background execution failed");
            }
        });
        Ok(exec)
    }

    /// Cancel a running or queued execution.
    pub async fn cancel_execution(&self, id: &str) -> Result<Execution> {
        let token = self
            .inner
            .running
            .lock()
            .expect("running lock")
            .get(id)
            .cloned();
        match token {
            Some(t) => t.cancel(),
            None => {
                if !self
                    .inner
                    .store
                    .cancel_if_queued(id, self.inner.clock.now())
                    .await?
                {
                    let e = self.inner.store.execution(id).await?;
                    if e.status == ExecutionStatus::Running {
                        return Err(Error::Conflict(
                            "the execution runs in another process; stop it there".into(),
                        ));
                    }
                }
            }
        }
        self.inner.store.execution(id).await
    }

    pub async fn executions(
        &self,
        job: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Execution>> {
        let job_id = match job {
            Some(j) => Some(self.inner.store.job(j).await?.id),
            None => None,
        };
        self.inner.store.executions(job_id.as_deref(), page).await
    }

    pub async fn execution(&self, id: &str) -> Result<Execution> {
        self.inner.store.execution(id).await
    }

    /// An execution with its error counts, diagnosis (R-I3) and retry chain (R-A2).
    pub async fn execution_detail(&self, id: &str) -> Result<ExecutionDetail> {
        let execution = self.inner.store.execution(id).await?;
        let job = self.inner.store.job(&execution.job_id).await?;
        let counts = self.inner.store.error_counts(id).await?;
        let observed = self.inner.store.observed_fields(&job.connection_id).await?;
        let observed = observed.get(&job.entity);
        let fields = self.inner.store.error_fields(id, 10).await?;
        let fields_changed = match (observed.and_then(|o| o.changed_at), execution.started_at) {
            (Some(changed), Some(started)) => {
                changed >= started && execution.finished_at.is_none_or(|f| changed <= f)
            }
            _ => false,
        };
        let diagnosis = diagnosis::diagnose(
            &execution,
            &job,
            &diagnosis::Evidence {
                errors: &counts,
                fields: &fields,
                fields_changed,
            },
        );
        let schema_change = diagnosis::schema_change(&job, &diagnosis, observed);
        let mut chain = vec![execution.id.clone()];
        let mut cursor = execution.retry_of.clone();
        while let Some(prev) = cursor {
            if chain.len() > 50 {
                break;
            }
            chain.push(prev.clone());
            cursor = self.inner.store.execution(&prev).await?.retry_of;
        }
        chain.reverse();
        Ok(ExecutionDetail {
            job_name: job.name,
            entity: job.entity,
            error_counts: counts.into_iter().collect(),
            diagnosis,
            schema_change,
            execution,
            chain,
        })
    }

    /// An execution's error log (R-I1).
    pub async fn record_errors(
        &self,
        execution: &str,
        kind: Option<RecordErrorKind>,
        page: &PageRequest,
    ) -> Result<Page<RecordError>> {
        self.inner.store.execution(execution).await?;
        self.inner.store.record_errors(execution, kind, page).await
    }

    // ---- dead letters ---------------------------------------------------------------

    /// A job's Failed Records (R-D3): dead letters, most recently failed first.
    pub async fn dead_letters(&self, job: &str, page: &PageRequest) -> Result<Page<DeadLetter>> {
        let job = self.inner.store.job(job).await?;
        self.inner
            .store
            .failed_records(
                &job.connection_id,
                &job.entity,
                RecordState::DeadLetter,
                page,
            )
            .await
    }

    /// Records failing but not yet dead letters.
    pub async fn failing_records(&self, job: &str, page: &PageRequest) -> Result<Page<DeadLetter>> {
        let job = self.inner.store.job(job).await?;
        self.inner
            .store
            .failed_records(&job.connection_id, &job.entity, RecordState::Failing, page)
            .await
    }

    /// One record's stored payload and error history (the Failed Records drawer).
    pub async fn record_history(
        &self,
        job: &str,
        record: &str,
    ) -> Result<(DeadLetter, Vec<RecordError>)> {
        let job = self.inner.store.job(job).await?;
        let dl = self
            .inner
            .store
            .failed_record(&job.connection_id, &job.entity, record)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "record",
                id: record.to_string(),
            })?;
        let history = self
            .inner
            .store
            .record_history(&job.connection_id, &job.entity, record, 100)
            .await?;
        Ok((dl, history))
    }

    /// R-D4: retry dead-letter records one by one, now. Success removes a record from the
    /// queue; failure updates its attempts, last failed time and error.
    pub async fn retry_dead_letters(
        &self,
        job: &str,
        records: &[String],
    ) -> Result<Vec<RecordRetryOutcome>> {
        let job = self.inner.store.job(job).await?;
        // The whole list is checked before anything runs, in one batched read: a bad id
        // among good ones retries nothing and says which id is wrong.
        let before = self
            .inner
            .store
            .refs_for(&job.connection_id, &job.entity, records)
            .await?;
        if let Some(bad) = records.iter().find(|r| {
            before
                .get(*r)
                .is_none_or(|x| x.state() != RecordState::DeadLetter)
        }) {
            return Err(Error::NotFound {
                what: "dead letter",
                id: bad.clone(),
            });
        }
        // One execution for the whole list, so the history shows one retry with its counts;
        // it writes each record's audit entry in the transaction that ends it.
        let single = (records.len() == 1).then(|| records[0].clone());
        let exec = self
            .start_row(&job, Trigger::RecordRetry, Mode::Full, single)
            .await?;
        let cancel = self.cancellable(&exec, &self.inner.shutdown);
        let exec = self
            .drive_records(
                exec,
                cancel,
                self.inner.shutdown.clone(),
                Some(records.to_vec()),
            )
            .await?;
        let after = self
            .inner
            .store
            .refs_for(&job.connection_id, &job.entity, records)
            .await?;
        Ok(records
            .iter()
            .map(|record| {
                let now = after.get(record);
                let state = now.map(RefRow::state).unwrap_or_default();
                let error = if state == RecordState::Ok {
                    None
                } else {
                    now.and_then(|r| r.last_error.clone()).or(exec.note.clone())
                };
                RecordRetryOutcome {
                    record_id: record.clone(),
                    execution_id: exec.id.clone(),
                    succeeded: state == RecordState::Ok,
                    state,
                    error,
                }
            })
            .collect())
    }

    /// R-D5: dismiss dead letters: never retried automatically, gone from the view, one
    /// audit entry each with who, when and the note. Returns the ids dismissed.
    pub async fn dismiss_dead_letters(
        &self,
        job: &str,
        records: &[String],
        note: &str,
    ) -> Result<Vec<String>> {
        let note = note.trim();
        if note.is_empty() {
            return Err(Error::invalid("note", "say why the record is dismissed"));
        }
        let job = self.inner.store.job(job).await?;
        let done = self
            .inner
            .store
            .set_record_state(
                &job.connection_id,
                &job.entity,
                records,
                &[RecordState::DeadLetter],
                RecordState::Dismissed,
            )
            .await?;
        if done.is_empty() {
            let id = records.first().cloned().unwrap_or_default();
            return Err(Error::NotFound {
                what: "dead letter",
                id,
            });
        }
        let now = self.inner.clock.now();
        for r in &done {
            self.inner
                .store
                .insert_audit(
                    &self.inner.actor,
                    "dead_letter.dismiss",
                    &format!("{} {r} (job {})", job.entity, job.name),
                    Some(note),
                    now,
                )
                .await?;
        }
        self.resolve_alerts(
            &AlertScope::DeadLettersCleared(job.id.clone(), job.connection_id, job.entity),
            "No records wait in Failed Records",
            now,
        )
        .await?;
        Ok(done)
    }

    // ---- alerts and audit -----------------------------------------------------------

    pub async fn alerts(&self, unread_only: bool, page: &PageRequest) -> Result<Page<Alert>> {
        self.inner.store.alerts(unread_only, page).await
    }

    pub async fn mark_alert_read(&self, id: i64) -> Result<()> {
        self.inner
            .store
            .mark_alert_read(id, self.inner.clock.now())
            .await
    }

    /// Mark every unread alert read; returns how many were.
    pub async fn mark_all_alerts_read(&self) -> Result<u64> {
        self.inner
            .store
            .mark_all_alerts_read(self.inner.clock.now())
            .await
    }

    pub async fn audit(&self, page: &PageRequest) -> Result<Page<AuditEntry>> {
        self.inner.store.audit(page).await
    }

    /// Entity → the fields the provider last sent and their last change, for a connection (R-E5).
    pub async fn observed_fields(
        &self,
        connection: &str,
    ) -> Result<std::collections::BTreeMap<String, ObservedFields>> {
        let c = self.inner.store.connection(connection).await?;
        self.inner.store.observed_fields(&c.id).await
    }

    // ---- lifecycle ------------------------------------------------------------------

    /// Stop everything this engine started and wait for it, then close the store.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        // Runs have ended and said so: write what they shared, then close the store.
        let publisher = self.inner.shared.lock().expect("shared events lock").take();
        if let Some((queue, task)) = publisher {
            drop(queue);
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the shared events writer panicked");
            }
        }
        self.inner.store.close().await;
    }

    /// How many runs this engine is driving now (any trigger): what quitting would stop.
    pub fn runs_in_progress(&self) -> usize {
        self.inner.running.lock().expect("running lock").len()
    }

    /// The current time of the engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    // ---- desktop summaries ----------------------------------------------------------

    /// Jobs with their newest run and the number of records in their Failed Records tab:
    /// the dashboard in one call, three queries per page whatever its length.
    pub async fn job_summaries(&self, page: &PageRequest) -> Result<Page<JobSummary>> {
        let store = &self.inner.store;
        let jobs = store.jobs(page).await?;
        let ids: Vec<String> = jobs.items.iter().map(|j| j.id.clone()).collect();
        let pairs: Vec<(String, String)> = jobs
            .items
            .iter()
            .map(|j| (j.connection_id.clone(), j.entity.clone()))
            .collect();
        let mut last = store.latest_executions(&ids).await?;
        let dead = store.dead_letter_counts(&pairs).await?;
        let items = jobs
            .items
            .into_iter()
            .zip(&pairs)
            .map(|(job, pair)| {
                let last_execution = last.remove(&job.id);
                let dead_letters = dead.get(pair).copied().unwrap_or(0);
                JobSummary {
                    health: JobHealth::of(last_execution.as_ref(), dead_letters),
                    last_execution,
                    dead_letters,
                    job,
                }
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: jobs.next_cursor,
        })
    }

    /// What the tray and dashboard show at a glance.
    pub async fn health(&self) -> Result<HealthSummary> {
        self.inner.store.health().await
    }

    /// Point a connection at a new base URL (the desktop's sandbox gets a new port every
    /// start). Its cached token goes: tokens belong to the old server.
    pub async fn set_connection_base_url(
        &self,
        connection: &str,
        base_url: &str,
    ) -> Result<Connection> {
        let conn = self.inner.store.connection(connection).await?;
        let (spec, _) = self.inner.store.connection_spec(&conn.id).await?;
        spec.check_for_base(base_url)?;
        let now = self.inner.clock.now();
        self.inner
            .store
            .set_connection_base_url(&conn.id, base_url, now)
            .await?;
        if conn.base_url != base_url {
            self.inner
                .store
                .insert_audit(
                    &self.inner.actor,
                    "connection.update",
                    &format!("connection {}", conn.name),
                    Some(&format!("base_url: {} → {base_url}", conn.base_url)),
                    now,
                )
                .await?;
        }
        self.inner
            .auths
            .lock()
            .expect("auth cache lock")
            .remove(&conn.id);
        self.inner.store.connection(&conn.id).await
    }

    // ---- deleting and pausing (issue 14) --------------------------------------------

    /// Delete a job with its executions and their error log, or with `dry_run` only say
    /// what that would remove. Refused while the job runs. The records it synced and their
    /// external references stay in the local store (another job of the same connection and
    /// entity shares them, and they are the admin's data); its open alerts are resolved.
    /// Audited.
    pub async fn delete_job(&self, job: &str, dry_run: bool) -> Result<JobDeletion> {
        let job = self.inner.store.job(job).await?;
        let now = self.inner.clock.now();
        let (footprint, resolved) = self.inner.store.delete_job(&job.id, dry_run, now).await?;
        let out = JobDeletion {
            job_id: job.id.clone(),
            job_name: job.name.clone(),
            executions: footprint.executions,
            record_errors: footprint.record_errors,
            deleted: !dry_run,
        };
        if dry_run {
            return Ok(out);
        }
        self.inner
            .store
            .insert_audit(
                &self.inner.actor,
                "job.delete",
                &format!("job {}", job.name),
                Some(&format!(
                    "{} {} from connection {}; {} execution(s) and {} error log entries deleted; records kept",
                    job.mode, job.entity, job.connection_id, out.executions, out.record_errors
                )),
                now,
            )
            .await?;
        if !resolved.is_empty() {
            self.inner.emit(Event::AlertsResolved {
                alert_ids: resolved,
                job_id: Some(job.id),
                connection_id: None,
            });
        }
        self.inner.wake_worker();
        Ok(out)
    }

    /// Delete a connection, or with `dry_run` only say what that would remove: its secrets
    /// in the keychain and the fields last seen from its provider. Refused while a job uses
    /// it, naming the jobs. Audited.
    pub async fn delete_connection(
        &self,
        connection: &str,
        dry_run: bool,
    ) -> Result<ConnectionDeletion> {
        let conn = self.inner.store.connection(connection).await?;
        let jobs = self.inner.store.jobs_using_connection(&conn.id).await?;
        if !jobs.is_empty() {
            return Err(Error::Conflict(format!(
                "connection {} is used by {} {}; delete {} first",
                conn.name,
                if jobs.len() == 1 { "job" } else { "jobs" },
                jobs.join(", "),
                if jobs.len() == 1 {
                    "that job"
                } else {
                    "those jobs"
                },
            )));
        }
        let observed = self.inner.store.observed_fields(&conn.id).await?;
        let out = ConnectionDeletion {
            connection_id: conn.id.clone(),
            connection_name: conn.name.clone(),
            observed_entities: observed.into_keys().collect(),
            deleted: !dry_run,
        };
        if dry_run {
            return Ok(out);
        }
        if !self.inner.store.delete_unused_connection(&conn.id).await? {
            return Err(Error::Conflict(format!(
                "connection {} got a job while it was being deleted; delete that job first",
                conn.name
            )));
        }
        self.forget_token(&conn.id);
        // The row goes first: a keychain that fails now leaves unused secrets behind (said
        // in the error), never a connection without its secrets.
        for kind in [
            SecretKind::ClientSecret,
            SecretKind::AccessToken,
            SecretKind::RefreshToken,
            SecretKind::ApiKey,
        ] {
            self.delete_secret(&conn.id, kind).await.map_err(|e| {
                Error::Keychain(format!(
                    "connection {} was deleted, but its {} could not be removed from the keychain: {e}",
                    conn.name,
                    kind.label()
                ))
            })?;
        }
        let now = self.inner.clock.now();
        self.inner
            .store
            .insert_audit(
                &self.inner.actor,
                "connection.delete",
                &format!("connection {}", conn.name),
                Some(&format!(
                    "{} at {}; secrets removed from the keychain",
                    conn.provider, conn.base_url
                )),
                now,
            )
            .await?;
        self.resolve_alerts(
            &AlertScope::Connection(conn.id.clone()),
            "The connection was deleted",
            now,
        )
        .await?;
        Ok(out)
    }

    /// Pause (`enabled = false`) or resume a job: a paused job is not run by its schedule;
    /// a manual run still works. Audited as a job change.
    pub async fn set_job_enabled(&self, job: &str, enabled: bool) -> Result<Job> {
        self.update_job(job, |j| {
            j.enabled = enabled;
            Ok(())
        })
        .await
    }
}

// ---- deleting and pausing (issue 14) ------------------------------------------------

/// What [`Engine::delete_job`] removed, or would remove.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobDeletion {
    pub job_id: String,
    pub job_name: String,
    pub executions: u64,
    pub record_errors: u64,
    /// False for a dry run.
    pub deleted: bool,
}

/// What [`Engine::delete_connection`] removed, or would remove.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionDeletion {
    pub connection_id: String,
    pub connection_name: String,
    /// The entities whose last-seen fields go with it.
    pub observed_entities: Vec<String>,
    pub deleted: bool,
}

// ---- connecting a provider with its jobs (issue 15, the connection wizard) ------------

/// How much of a connection [`Engine::verify`] checks.
#[derive(Debug, Clone, Copy)]
enum Probe<'a> {
    /// Get a credential (a token request for OAuth2; nothing for a static key).
    Credentials,
    /// And read one small page of this entity (the spec's first when `None`).
    Page(Option<&'a str>),
}

/// The schedule of jobs the wizard creates when the admin does not choose one.
pub const DEFAULT_SCHEDULE: &str = "every 1h";

/// A connection and its first jobs, made in one go (the connection wizard, `connection add
/// --connector … --jobs …`). The connection's spec is usually a catalog entry's
/// ([`crate::catalog::get`]), copied into the connection like any spec.
#[derive(Debug)]
pub struct NewSetup {
    pub connection: NewConnection,
    /// Entities to make a pull job for, each with the spec's default mappings and natural
    /// keys, incremental when the spec can filter the entity by change time. May be empty
    /// (the jobs are chosen later, [`Engine::create_default_jobs`]).
    pub entities: Vec<String>,
    /// The jobs' schedule (`manual`, `every 15m`, `cron …`); [`DEFAULT_SCHEDULE`] if `None`.
    pub schedule: Option<String>,
}

/// What [`Engine::create_setup`] made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setup {
    pub connection: Connection,
    pub jobs: Vec<Job>,
}

impl Engine {
    /// Create a connection and a job per chosen entity. The connection is checked with a
    /// real request first (its credentials, then one record of the first chosen entity):
    /// credentials the provider refuses store nothing, no connection and no job. Every
    /// job setting is checked before anything is stored, so a bad entity or schedule stores
    /// nothing either.
    pub async fn create_setup(&self, s: NewSetup) -> Result<Setup> {
        let plans = plan_jobs(
            &s.connection.spec,
            &s.connection.name,
            &s.entities,
            s.schedule.as_deref(),
        )?;
        let probe = Probe::Page(s.entities.first().map(String::as_str));
        let connection = self.create_verified(s.connection, probe).await?;
        match self.insert_planned_jobs(&connection, plans).await {
            Ok(jobs) => Ok(Setup { connection, jobs }),
            Err(e) => {
                // Nothing half-made: the connection goes with the jobs that could not all be
                // made (a name taken meanwhile, the store failing).
                let _ = self.delete_connection(&connection.id, false).await;
                Err(e)
            }
        }
    }

    /// A pull job for each of `entities` on an existing connection, with its spec's default
    /// mappings and natural keys, incremental where the spec allows, on `schedule`
    /// ([`DEFAULT_SCHEDULE`] if `None`): the wizard's last step. All or nothing: the names
    /// and settings are checked first, and jobs made before a failure are deleted again.
    pub async fn create_default_jobs(
        &self,
        connection: &str,
        entities: &[String],
        schedule: Option<&str>,
    ) -> Result<Vec<Job>> {
        let conn = self.inner.store.connection(connection).await?;
        let (spec, _) = self.inner.store.connection_spec(&conn.id).await?;
        if entities.is_empty() {
            return Err(Error::invalid("entities", "choose at least one"));
        }
        let plans = plan_jobs(&spec, &conn.name, entities, schedule)?;
        self.insert_planned_jobs(&conn, plans).await
    }

    async fn insert_planned_jobs(&self, conn: &Connection, plans: Vec<NewJob>) -> Result<Vec<Job>> {
        let mut jobs: Vec<Job> = Vec::with_capacity(plans.len());
        for mut plan in plans {
            plan.name = self.free_job_name(&plan.name).await?;
            plan.connection = conn.id.clone();
            match self.create_job(plan).await {
                Ok(j) => jobs.push(j),
                Err(e) => {
                    for j in &jobs {
                        let _ = self.delete_job(&j.id, false).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(jobs)
    }

    /// `name`, or `name 2`, `name 3`, … when a job already has it.
    async fn free_job_name(&self, name: &str) -> Result<String> {
        for n in 1..1000 {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                format!("{name} {n}")
            };
            if !self.inner.store.job_name_taken(&candidate).await? {
                return Ok(candidate);
            }
        }
        Err(Error::Conflict(format!("too many jobs are named '{name}'")))
    }
}

/// The jobs for `entities` of `spec`, checked as far as they can be without the connection:
/// entities the spec has (each once), a schedule that parses, mappings that validate.
fn plan_jobs(
    spec: &ConnectorSpec,
    connection_name: &str,
    entities: &[String],
    schedule: Option<&str>,
) -> Result<Vec<NewJob>> {
    let schedule = schedule.unwrap_or(DEFAULT_SCHEDULE).to_string();
    Schedule::parse(&schedule)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut plans = Vec::with_capacity(entities.len());
    for name in entities {
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid(
                "entities",
                format!("'{name}' is chosen twice"),
            ));
        }
        let entity = spec.entity(name)?;
        let mut settings = JobSettings {
            mappings: entity.mappings.clone(),
            natural_keys: entity.natural_keys.clone(),
            ..JobSettings::default()
        };
        if settings.natural_keys.is_empty() {
            settings.duplicate_detection = false;
        }
        settings.validate()?;
        settings.check_references(spec.entities.keys().map(String::as_str))?;
        plans.push(NewJob {
            name: format!("{} {}", connection_name.trim(), name),
            connection: String::new(),
            entity: name.clone(),
            direction: Direction::Pull,
            mode: if entity.filters_changes() {
                Mode::Incremental
            } else {
                Mode::Full
            },
            schedule: Some(schedule.clone()),
            enabled: true,
            settings,
        });
    }
    Ok(plans)
}

/// The auth kinds connections of `spec` may use: its own first, then its alternatives.
pub fn allowed_auth_kinds(spec: &ConnectorSpec) -> Vec<AuthKind> {
    spec.auth.kinds()
}

/// The secret a connection authenticating as `kind` cannot work without, when it is not
/// given: said before anything is stored or sent, in the spec's words when it has them.
fn check_secret_given(c: &NewConnection, kind: AuthKind) -> Result<()> {
    let needed = match kind {
        AuthKind::ApiKey => SecretKind::ApiKey,
        AuthKind::Bearer => SecretKind::AccessToken,
        AuthKind::Oauth2RefreshToken => SecretKind::RefreshToken,
        AuthKind::Oauth2ClientCredentials => SecretKind::ClientSecret,
        AuthKind::None => return Ok(()),
    };
    let no_client_id = c.client_id.as_deref().is_none_or(|id| id.trim().is_empty());
    if kind == AuthKind::Oauth2RefreshToken && no_client_id {
        // A public client (no secret) is only known to the token endpoint by its id.
        return Err(Error::invalid(
            "client_id",
            format!(
                "the client id of your {} app is needed to refresh its tokens",
                c.spec.name
            ),
        ));
    }
    if c.secrets.iter().any(|(k, _)| *k == needed) {
        return Ok(());
    }
    let label = match &c.spec.auth.secret_label {
        Some(l) if kind == c.spec.auth.kind && needed != SecretKind::RefreshToken => l.clone(),
        _ => needed.label().to_string(),
    };
    Err(Error::invalid(
        needed.as_str(),
        format!("the {label} is needed to connect to {}", c.spec.name),
    ))
}

/// Move the spec's absolute sign-in URLs (`auth.token_url`, `auth.authorize_url`) to the
/// scheme, host and port of `auth_base`, keeping their paths and queries. Relative ones
/// already follow the connection's base URL.
fn move_sign_in(spec: &mut ConnectorSpec, auth_base: &str) -> Result<()> {
    let field = "auth_base_url";
    let to = check_base_url(auth_base).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid(field, message),
        e => e,
    })?;
    if to.path() != "/" || to.query().is_some() || to.fragment().is_some() {
        return Err(Error::invalid(
            field,
            format!(
                "'{auth_base}' must be only a scheme, host and port (like https://login.example.com); the paths come from the connector"
            ),
        ));
    }
    for url in [&mut spec.auth.token_url, &mut spec.auth.authorize_url]
        .into_iter()
        .flatten()
    {
        let Ok(mut moved) = url::Url::parse(url) else {
            continue;
        };
        let ok = moved.set_scheme(to.scheme()).is_ok()
            && moved.set_host(to.host_str()).is_ok()
            && moved.set_port(to.port()).is_ok();
        if !ok {
            return Err(Error::invalid(
                field,
                format!("cannot move {url} to {auth_base}"),
            ));
        }
        *url = moved.to_string();
    }
    Ok(())
}

/// The values given for a new connection against those its spec declares: none unknown,
/// and every declared one given, except those listed from the provider after sign-in
/// (`choices`), which may be chosen later ([`Engine::set_connection_value`]).
fn check_values(
    spec: &ConnectorSpec,
    values: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    for (name, value) in values {
        check_value(spec, name, value)?;
    }
    for (name, v) in &spec.values {
        let given = values.get(name).is_some_and(|v| !v.trim().is_empty());
        if !given && v.choices.is_none() {
            return Err(Error::invalid(
                format!("values.{name}"),
                format!("the {} is needed (give {name}=…)", v.label),
            ));
        }
    }
    Ok(())
}

/// The spec's value `name`, or an error saying which values it has.
fn declared_value<'s>(
    spec: &'s ConnectorSpec,
    name: &str,
) -> Result<&'s crate::connector::spec::ValueSpec> {
    spec.values.get(name).ok_or_else(|| {
        let names: Vec<&str> = spec.values.keys().map(String::as_str).collect();
        Error::invalid(
            format!("values.{name}"),
            if names.is_empty() {
                format!("{} connections take no values", spec.name)
            } else {
                format!(
                    "{} connections take no value named '{name}'; they take {}",
                    spec.name,
                    names.join(", ")
                )
            },
        )
    })
}

/// One value against the spec: declared, and text that fits a header or a URL.
fn check_value<'s>(
    spec: &'s ConnectorSpec,
    name: &str,
    value: &str,
) -> Result<&'s crate::connector::spec::ValueSpec> {
    let field = format!("values.{name}");
    let declared = declared_value(spec, name)?;
    if value.trim().is_empty() {
        return Err(Error::invalid(
            field,
            format!("the {} must not be empty", declared.label),
        ));
    }
    // Values go into headers and URLs as they are: no line breaks or other controls.
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!(
                "the {} must be one line without control characters",
                declared.label
            ),
        ));
    }
    Ok(declared)
}

/// The provider's refusal of credentials, as said to whoever just entered them.
fn refused(e: Error) -> Error {
    Error::AuthExpired {
        detail: format!("the provider refused these credentials ({e}); nothing was saved"),
    }
}

/// An owner tag: the host (or worker name), this process, and this engine.
fn owner_tag(host: &str) -> String {
    format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i15_auth_base_url_moves_absolute_sign_in_urls_and_keeps_their_paths() {
        let mut spec = ConnectorSpec::parse(
            r#"
name = "Books"
base_url = "https://api.books.test"
[auth]
kind = "oauth2_refresh_token"
authorize_url = "https://login.books.test/identity/connect/authorize?prompt=login"
token_url = "/connect/token"
[entities.contacts]
path = "/contacts"
"#,
        )
        .unwrap();
        move_sign_in(&mut spec, "http://127.0.0.1:8790").unwrap();
        assert_eq!(
            spec.auth.authorize_url.as_deref(),
            Some("http://127.0.0.1:8790/identity/connect/authorize?prompt=login")
        );
        assert_eq!(
            spec.auth.token_url.as_deref(),
            Some("/connect/token"),
            "a relative URL follows the base URL"
        );
        // A default port is dropped, not kept from the old URL.
        move_sign_in(&mut spec, "https://sign-in.books.test").unwrap();
        assert_eq!(
            spec.auth.authorize_url.as_deref(),
            Some("https://sign-in.books.test/identity/connect/authorize?prompt=login")
        );
        for bad in [
            "https://sign-in.books.test/oauth",
            "https://sign-in.books.test/?x=1",
            "mailto:x@y.z",
            "https://user:pw@sign-in.books.test",
        ] {
            let e = move_sign_in(&mut spec, bad).unwrap_err();
            assert_eq!(e.field(), Some("auth_base_url"), "{bad}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
