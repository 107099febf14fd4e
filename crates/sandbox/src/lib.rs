//! Syncdesk sandbox: a real HTTP server on loopback that simulates an accounting/payments
//! provider (OAuth2, several pagination styles, incremental filters, switchable faults) so the
//! sync engine can be tested and demoed deterministically. See `docs/sandbox.md`.

mod admin;
mod api;
mod emit;
mod exchange;
mod faults;
mod hash;
mod model;
mod oauth;
pub mod persona;
mod state;
mod store;
mod time;
mod util;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use exchange::Exchange;
pub use faults::{BadKind, BadRecord, Faults, RetryAfter, SchemaDrift};
pub use model::{Entity, UnknownEntity};
pub use persona::{Persona, UnknownPersona};

/// The connector spec describing this sandbox to the engine's generic connector.
pub const CONNECTOR_SPEC: &str = include_str!("../connector.toml");

use state::{lock, AuthState, FaultState, Shared};

/// How the sandbox is populated and which credentials it accepts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    pub seed: u64,
    pub customers: usize,
    pub products: usize,
    pub invoices: usize,
    pub payments: usize,
    pub client_id: String,
    pub client_secret: String,
    /// If set, data endpoints also accept `X-Api-Key: <key>`.
    pub api_key: Option<String>,
    /// Access token lifetime.
    pub token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_ttl_secs: u64,
    /// Faults active from the start.
    pub faults: Faults,
    /// Serve this provider's API instead of the sandbox's own (see docs/sandbox.md, "Personas").
    pub persona: Option<Persona>,
    /// Keep an exchange log ([`Sandbox::exchanges`]); always on with a persona.
    pub log_exchanges: bool,
    /// Also append every exchange to this file as JSON lines (implies `log_exchanges`).
    pub record: Option<std::path::PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            customers: 250,
            products: 50,
            invoices: 400,
            payments: 300,
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            api_key: None,
            token_ttl_secs: 3_600,
            refresh_ttl_secs: 30 * 86_400,
            faults: Faults::default(),
            persona: None,
            log_exchanges: false,
            record: None,
        }
    }
}

impl SandboxConfig {
    /// The configured size of `entity`.
    pub fn count(&self, entity: Entity) -> usize {
        match entity {
            Entity::Customers => self.customers,
            Entity::Products => self.products,
            Entity::Invoices => self.invoices,
            Entity::Payments => self.payments,
        }
    }
}

/// Counters over what the sandbox has served since start (or the last reset).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Stats {
    /// Requests to `/v1/...` and `/alt/...`, whatever their outcome.
    pub data_requests: u64,
    /// Data requests by response status.
    pub by_status: BTreeMap<u16, u64>,
    /// Records in successful data responses (list pages and get-by-id).
    pub records_served: u64,
    /// Successful client-credentials grants.
    pub token_grants: u64,
    /// Successful refresh-token grants.
    pub refresh_grants: u64,
    /// Successful authorization-code grants (browser sign-in with PKCE).
    pub code_grants: u64,
    /// Token requests refused for any reason.
    pub failed_grants: u64,
    /// Get-by-id requests that reached the handler (past auth and faults).
    pub get_by_id: u64,
}

/// A running sandbox server. Dropping it stops the server; [`Sandbox::shutdown`] also waits
/// for it to finish.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on an ephemeral port of 127.0.0.1.
    pub async fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        Sandbox::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts a sandbox on `addr`, which must be a loopback address: the admin endpoints have
    /// no authentication.
    pub async fn start_on(addr: SocketAddr, mut config: SandboxConfig) -> io::Result<Sandbox> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the sandbox only binds loopback addresses, not {addr}"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let counts = Entity::ALL.map(|e| config.count(e) as u64);
        if let Some(persona) = config.persona {
            if config.api_key.is_none() {
                config.api_key = persona.default_api_key().map(str::to_owned);
            }
        }
        let exchanges =
            if config.log_exchanges || config.record.is_some() || config.persona.is_some() {
                Some(exchange::ExchangeLog::new(config.record.as_deref())?)
            } else {
                None
            };
        let shared = Arc::new(Shared {
            store: store::Store::new(model::Generator {
                seed: config.seed,
                counts,
            }),
            faults: Mutex::new(FaultState {
                faults: Arc::new(config.faults.clone()),
                since_hang_set: 0,
            }),
            auth: Mutex::new(AuthState::default()),
            stats: Mutex::new(Stats::default()),
            request_counter: AtomicU64::new(0),
            exchanges,
            window: Mutex::new(persona::RateWindow::default()),
            cancel: CancellationToken::new(),
            addr,
            config,
        });
        let app = router(shared.clone());
        let cancel = shared.cancel.clone();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let serve = axum::serve(listener, service)
                .with_graceful_shutdown(async move { cancel.cancelled().await });
            if let Err(err) = serve.await {
                tracing::error!(%err, "sandbox server failed");
            }
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn faults(&self) -> Faults {
        (*self.shared.faults()).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.update_faults(|f| *f = faults);
    }

    /// Edits the faults in place (bursts already counted down stay counted down).
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        self.shared.update_faults(f);
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Zeroes the statistics and clears the exchange log.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// The requests answered so far (oldest first, at most the last 10 000), if the log is on
    /// (`log_exchanges`, `record` or a persona); empty otherwise. [`Sandbox::reset_stats`]
    /// clears it.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared
            .exchanges
            .as_ref()
            .map(exchange::ExchangeLog::snapshot)
            .unwrap_or_default()
    }

    /// Expires every access token issued so far; refresh tokens keep working.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// Invalidates every access and refresh token.
    pub fn revoke_tokens(&self) {
        self.shared.revoke_tokens();
    }

    /// While true, client-credentials grants and the API key are refused.
    pub fn set_credentials_revoked(&self, revoked: bool) {
        self.shared.set_credentials_revoked(revoked);
    }

    /// Makes the authorization page refuse consent (`error=access_denied`), as a user who
    /// clicks "Deny" in the browser would.
    pub fn set_consent_denied(&self, denied: bool) {
        self.shared.set_consent_denied(denied);
    }

    /// Shallow-merges the top-level keys of `patch` into the record and gives it a new latest
    /// `updated_at`. `false` if there is no such record.
    pub fn patch_record(&self, entity: Entity, id: &str, patch: serde_json::Value) -> bool {
        self.shared.patch_record(entity, id, patch)
    }

    /// Gives the records new latest `updated_at` values; unknown ids are ignored.
    pub fn touch(&self, entity: Entity, ids: &[String]) {
        self.shared.touch(entity, ids);
    }

    /// Touches an evenly spread, deterministic `fraction` of the entity's records (at least
    /// one if `fraction > 0`) and returns their ids in order.
    pub fn touch_fraction(&self, entity: Entity, fraction: f64) -> Vec<String> {
        self.shared.touch_fraction(entity, fraction)
    }

    /// The record as get-by-id would serve it now, with bad-record and drift faults applied.
    pub fn record(&self, entity: Entity, id: &str) -> Option<serde_json::Value> {
        self.shared.record(entity, id)
    }

    pub fn count(&self, entity: Entity) -> usize {
        self.shared.config.count(entity)
    }

    /// The persona this sandbox plays, if any.
    pub fn persona(&self) -> Option<Persona> {
        self.shared.config.persona
    }

    /// The id record `n` (1-based) of `entity` is served under: the sandbox's own id
    /// (`cus_00000001`), or the persona's (`ch_00000001`, a Xero UUID, a HubSpot number).
    pub fn served_id(&self, entity: Entity, n: usize) -> String {
        match self.shared.config.persona {
            None => entity.id(n),
            Some(p) => p.served_id(self.shared.config.seed, entity, n),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Cancelling this token stops the server (e.g. on ctrl-c).
    pub fn cancel_token(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Stops accepting connections, lets in-flight requests finish (stalled ones wake up
    /// early) and waits for the server task.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::error!(%err, "sandbox server task panicked");
            }
        }
    }

    /// Waits until the server stops, e.g. after [`Sandbox::cancel_token`] was cancelled.
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = match shared.config.persona {
        Some(persona) => persona::router(persona, shared.clone()),
        None => Router::new()
            .route("/v1/{entity}", get(api::list_v1))
            .route("/v1/{entity}/{id}", get(api::get_one))
            .route("/alt/next-cursor/{entity}", get(api::list_next_cursor))
            .route("/alt/page/{entity}", get(api::list_page))
            .route("/alt/offset/{entity}", get(api::list_offset))
            .route("/alt/link/{entity}", get(api::list_link))
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                api::data_layer,
            ))
            .route("/oauth/token", post(oauth::token))
            .route("/oauth/authorize", get(oauth::authorize))
            .fallback(api::fallback),
    };
    api.nest("/_admin", admin::router())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            exchange::record,
        ))
        .with_state(shared)
}
