//! The state one running sandbox shares between its HTTP handlers and its Rust handle: faults,
//! tokens, statistics and the record store, each behind its own short-lived lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::hash::{hash3, salt};
use crate::store::Store;
use crate::{SandboxConfig, Stats};

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent,
/// so a panic in one handler must not take the whole sandbox down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
pub(crate) struct FaultState {
    pub(crate) faults: Arc<Faults>,
    /// Authenticated data requests let through since `hang_after` last changed.
    pub(crate) since_hang_set: u64,
}

#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub(crate) access: HashMap<String, Instant>,
    pub(crate) refresh: HashMap<String, Instant>,
    issued: u64,
    pub(crate) credentials_revoked: bool,
    /// Authorization codes not yet exchanged, by code.
    pub(crate) codes: HashMap<String, PendingCode>,
    /// The consent fault: the "user" refuses at the authorization page.
    pub(crate) consent_denied: bool,
}

/// What an authorization code was issued for (RFC 6749 §4.1, RFC 7636 PKCE).
#[derive(Debug)]
pub(crate) struct PendingCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)), without padding.
    pub(crate) challenge: String,
    pub(crate) expires: Instant,
}

/// Why a data request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    /// An API key the provider no longer accepts (the revoked-credentials fault).
    Revoked,
}

/// A freshly issued access/refresh token pair.
#[derive(Debug)]
pub(crate) struct TokenPair {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl AuthState {
    /// Issues a token pair; token strings come from hash(seed, counter) so runs reproduce.
    pub(crate) fn issue(&mut self, config: &SandboxConfig) -> TokenPair {
        let now = Instant::now();
        if self.access.len() + self.refresh.len() > 8_192 {
            // Long runs keep refreshing; forget tokens that died long ago so memory stays flat.
            let horizon = Duration::from_secs(86_400);
            self.access.retain(|_, exp| *exp + horizon > now);
            self.refresh.retain(|_, exp| *exp + horizon > now);
        }
        let c = self.issued;
        self.issued += 1;
        let seed = config.seed;
        let access = format!(
            "at_{:016x}{:016x}",
            hash3(seed, salt::TOKEN_A, c),
            hash3(seed, salt::TOKEN_B, c)
        );
        let refresh = format!(
            "rt_{:016x}{:016x}",
            hash3(!seed, salt::TOKEN_A, c),
            hash3(!seed, salt::TOKEN_B, c)
        );
        self.access.insert(
            access.clone(),
            now + Duration::from_secs(config.token_ttl_secs),
        );
        self.refresh.insert(
            refresh.clone(),
            now + Duration::from_secs(config.refresh_ttl_secs),
        );
        TokenPair { access, refresh }
    }

    /// Issues a single-use authorization code, valid for a minute.
    pub(crate) fn issue_code(
        &mut self,
        config: &SandboxConfig,
        client_id: &str,
        redirect_uri: &str,
        challenge: &str,
    ) -> String {
        let now = Instant::now();
        self.codes.retain(|_, c| c.expires > now);
        let c = self.issued;
        self.issued += 1;
        let code = format!(
            "ac_{:016x}{:016x}",
            hash3(config.seed ^ 0xac, salt::TOKEN_A, c),
            hash3(config.seed ^ 0xac, salt::TOKEN_B, c)
        );
        self.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge: challenge.to_owned(),
                expires: now + Duration::from_secs(60),
            },
        );
        code
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) store: Store,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) stats: Mutex<Stats>,
    /// Authenticated data requests so far; rate-based faults hash it so they replay exactly.
    pub(crate) request_counter: AtomicU64,
    /// The exchange log, when it is on.
    pub(crate) exchanges: Option<crate::exchange::ExchangeLog>,
    /// A persona's rate-limit window.
    pub(crate) window: Mutex<crate::persona::RateWindow>,
    pub(crate) cancel: CancellationToken,
}

impl Shared {
    pub(crate) fn faults(&self) -> Arc<Faults> {
        lock(&self.faults).faults.clone()
    }

    pub(crate) fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        let mut state = lock(&self.faults);
        let before = state.faults.hang_after;
        f(Arc::make_mut(&mut state.faults));
        if state.faults.hang_after != before {
            state.since_hang_set = 0;
        }
    }

    pub(crate) fn authorize(&self, headers: &axum::http::HeaderMap) -> Result<(), AuthFailure> {
        let auth = lock(&self.auth);
        if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            let configured = self.config.api_key.as_deref();
            if configured == Some(key) && !auth.credentials_revoked {
                return Ok(());
            }
            if headers.get(axum::http::header::AUTHORIZATION).is_none() {
                return Err(AuthFailure::Invalid);
            }
        }
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthFailure::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AuthFailure::Invalid)?;
        match auth.access.get(token) {
            None => Err(AuthFailure::Invalid),
            Some(&expires) if Instant::now() >= expires => Err(AuthFailure::Expired),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
        if let Some(log) = &self.exchanges {
            log.clear();
        }
    }

    pub(crate) fn next_request(&self) -> u64 {
        self.request_counter.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn record_request(&self, status: u16, records: u64) {
        let mut stats = lock(&self.stats);
        stats.data_requests += 1;
        *stats.by_status.entry(status).or_default() += 1;
        stats.records_served += records;
    }

    pub(crate) fn expire_tokens(&self) {
        let now = Instant::now();
        for expires in lock(&self.auth).access.values_mut() {
            *expires = (*expires).min(now);
        }
    }

    pub(crate) fn revoke_tokens(&self) {
        let mut auth = lock(&self.auth);
        auth.access.clear();
        auth.refresh.clear();
    }

    pub(crate) fn set_credentials_revoked(&self, revoked: bool) {
        lock(&self.auth).credentials_revoked = revoked;
    }

    pub(crate) fn set_consent_denied(&self, denied: bool) {
        lock(&self.auth).consent_denied = denied;
    }
}

/// Record operations shared by the Rust handle and the admin endpoints.
impl Shared {
    pub(crate) fn record(&self, entity: crate::Entity, id: &str) -> Option<serde_json::Value> {
        let n = self.store.lookup(entity, id)?;
        let faults = self.faults();
        let rf = crate::faults::RecordFaults::new(&faults, entity, self.config.seed);
        Some(
            self.store
                .with_view(entity, None, |view| view.value(n, &rf)),
        )
    }

    pub(crate) fn patch_record(
        &self,
        entity: crate::Entity,
        id: &str,
        patch: serde_json::Value,
    ) -> bool {
        let Some(n) = self.store.lookup(entity, id) else {
            return false;
        };
        let patch = match patch {
            serde_json::Value::Object(map) => map,
            // A non-object patch has no keys to merge but still counts as an update.
            _ => serde_json::Map::new(),
        };
        self.store.patch(entity, n, patch);
        true
    }

    pub(crate) fn touch(&self, entity: crate::Entity, ids: &[String]) {
        let numbers: Vec<u64> = ids
            .iter()
            .filter_map(|id| self.store.lookup(entity, id))
            .collect();
        self.store.touch(entity, &numbers);
    }

    pub(crate) fn touch_fraction(&self, entity: crate::Entity, fraction: f64) -> Vec<String> {
        self.store
            .touch_fraction(entity, fraction)
            .into_iter()
            .map(|n| entity.id(n as usize))
            .collect()
    }
}
