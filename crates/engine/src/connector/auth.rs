//! Credentials for one connection: OAuth2 client-credentials and refresh-token grants with
//! single-flight refresh and rotation (R-E1), static bearer tokens and API keys. Tokens come
//! from and go to the [`SecretStore`]; only their expiry times reach the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::RequestBuilder;
use serde::Deserialize;
use zeroize::Zeroize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::AuthKind;
use crate::secrets::{Secret, SecretKind, SecretStore};

/// Refresh at most this long before a known expiry instead of waiting for a 401 (R-E1
/// beyond); short-lived tokens refresh at 10 % of their lifetime before it.
const EARLY_REFRESH: chrono::Duration = chrono::Duration::seconds(60);
/// The longest lifetime believed: a provider's `expires_in: 9223372036854775807` is a year.
const MAX_LIFETIME_SECS: i64 = 365 * 24 * 60 * 60;
/// Largest token endpoint answer read.
const TOKEN_BODY_LIMIT: u64 = 1024 * 1024;
/// Token endpoint answers that mean the credential itself is refused (RFC 6749 §5.2):
/// only these (or a bare 401) expire the connection.
const REFUSED: [&str; 3] = ["invalid_client", "invalid_grant", "unauthorized_client"];

/// How long before expiry a token with this lifetime is refreshed: min(60 s, 10 % of it).
pub(crate) fn refresh_margin(lifetime: Option<chrono::Duration>) -> chrono::Duration {
    match lifetime {
        Some(l) => (l / 10).min(EARLY_REFRESH),
        None => EARLY_REFRESH,
    }
}

/// The instant `secs` after `now`, for a provider's `expires_in`: none for 0 or less (no
/// usable expiry; a 401 will tell), at most a year (no overflow whatever it says).
fn expiry(now: DateTime<Utc>, secs: i64) -> Option<DateTime<Utc>> {
    if secs <= 0 {
        return None;
    }
    let d = chrono::Duration::try_seconds(secs.min(MAX_LIFETIME_SECS))?;
    now.checked_add_signed(d)
}

/// New expiry times after a grant, for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct TokenState {
    access: Option<Secret>,
    expires_at: Option<DateTime<Utc>>,
    /// The current token's lifetime, when it came from a grant here (sets the margin).
    lifetime: Option<chrono::Duration>,
    /// Bumped on every grant: a request that failed with generation `g` only triggers a
    /// refresh if nobody refreshed since (single flight).
    generation: u64,
    loaded: bool,
    /// Secrets read from the keychain once and kept here (`None`: not read yet), so a
    /// request or a refresh does not wait on the keychain.
    api_key: Option<Option<Secret>>,
    client_secret: Option<Option<Secret>>,
    refresh_token: Option<Option<Secret>>,
}

/// A credential ready to put on a request: [`Credential::apply`] puts it there.
#[derive(Debug)]
pub struct Credential {
    pub header: Option<(HeaderName, HeaderValue)>,
    /// An API key sent as a query parameter (`auth.query`): name and value. Only
    /// [`Credential::apply`] adds it, at send time, so the URLs the connector keeps, hashes,
    /// logs or names in errors never hold the key.
    pub query: Option<(String, Secret)>,
    pub generation: u64,
}

impl Credential {
    /// The request with this credential on it.
    pub fn apply(&self, mut req: RequestBuilder) -> RequestBuilder {
        if let Some((k, v)) = &self.header {
            req = req.header(k.clone(), v.clone());
        }
        if let Some((name, key)) = &self.query {
            req = req.query(&[(name.as_str(), key.expose())]);
        }
        req
    }
}

/// How a connection authenticates, with its cached token.
#[derive(Debug)]
pub struct Auth {
    connection_id: String,
    connection_name: String,
    kind: AuthKind,
    token_url: Option<url::Url>,
    client_id: Option<String>,
    scope: Option<String>,
    api_key_header: HeaderName,
    /// Where an API key goes instead of the header (`auth.query`).
    api_key_query: Option<String>,
    secrets: Arc<dyn SecretStore>,
    state: tokio::sync::Mutex<TokenState>,
    /// Every credential value this connection has held in memory, for redacting provider
    /// text that echoes one.
    known: std::sync::Mutex<Vec<(SecretKind, Secret)>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<i64>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token_expires_in: Option<i64>,
}

impl TokenResponse {
    /// Expiry times as of `now`; a refresh token's only when one came with the response.
    pub(crate) fn times(&self, now: DateTime<Utc>) -> TokenTimes {
        TokenTimes {
            expires_at: self.expires_in.and_then(|s| expiry(now, s)),
            refresh_expires_at: self
                .refresh_token
                .as_ref()
                .and(self.refresh_token_expires_in)
                .and_then(|s| expiry(now, s)),
        }
    }

    /// The access token's lifetime as believed (at most a year).
    fn lifetime(&self) -> Option<chrono::Duration> {
        self.expires_in
            .filter(|s| *s > 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(MAX_LIFETIME_SECS)))
    }
}

#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Everything needed to build an [`Auth`].
#[derive(Debug)]
pub struct AuthConfig {
    pub connection_id: String,
    pub connection_name: String,
    pub kind: AuthKind,
    pub token_url: Option<url::Url>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub api_key_header: Option<String>,
    /// Query parameter carrying an API key instead of a header (`auth.query`).
    pub api_key_query: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl Auth {
    pub fn new(cfg: AuthConfig, secrets: Arc<dyn SecretStore>) -> Result<Self> {
        let header = cfg.api_key_header.as_deref().unwrap_or("x-api-key");
        let api_key_header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            Error::invalid("auth.header", format!("'{header}' is not a header name"))
        })?;
        if let Some(q) = &cfg.api_key_query {
            if q.trim().is_empty() {
                return Err(Error::invalid("auth.query", "must not be empty"));
            }
        }
        Ok(Auth {
            connection_id: cfg.connection_id,
            connection_name: cfg.connection_name,
            kind: cfg.kind,
            token_url: cfg.token_url,
            client_id: cfg.client_id,
            scope: cfg.scope,
            api_key_header,
            api_key_query: cfg.api_key_query,
            secrets,
            state: tokio::sync::Mutex::new(TokenState {
                expires_at: cfg.token_expires_at,
                ..TokenState::default()
            }),
            known: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Remember a value held in memory, so provider text echoing it can be redacted. The
    /// latest two of each kind are kept: a provider echoes what it was just sent, and a
    /// connection with short-lived tokens must not collect one per grant while it lives.
    fn know(&self, kind: SecretKind, s: &Secret) {
        const KEEP_PER_KIND: usize = 2;
        let mut known = self.known.lock().expect("known secrets lock");
        known.retain(|(_, k)| k != s);
        known.push((kind, s.clone()));
        let of_kind = known.iter().filter(|(k, _)| *k == kind).count();
        if of_kind > KEEP_PER_KIND {
            if let Some(oldest) = known.iter().position(|(k, _)| *k == kind) {
                known.remove(oldest);
            }
        }
    }

    /// `text` with every credential this connection sent (and anything shaped like an
    /// `Authorization` header or a bearer token) replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let known = self.known.lock().expect("known secrets lock");
        let values: Vec<&str> = known.iter().map(|(_, s)| s.expose()).collect();
        redact(text, &values)
    }

    /// A secret from the keychain, read once and then kept in `slot`.
    async fn cached(
        &self,
        slot: &mut Option<Option<Secret>>,
        kind: SecretKind,
    ) -> Result<Option<Secret>> {
        if slot.is_none() {
            let s = self.secret(kind).await?;
            if let Some(s) = &s {
                self.know(kind, s);
            }
            *slot = Some(s);
        }
        Ok(slot.clone().flatten())
    }

    /// Read `kind` from the keychain again; whether it changed since it was cached (another
    /// process stored a new one, or rotated a refresh token).
    async fn reload(&self, slot: &mut Option<Option<Secret>>, kind: SecretKind) -> Result<bool> {
        let fresh = self.secret(kind).await?;
        if let Some(s) = &fresh {
            self.know(kind, s);
        }
        let changed = slot.as_ref().is_some_and(|old| *old != fresh);
        *slot = Some(fresh);
        Ok(changed)
    }

    pub fn kind(&self) -> AuthKind {
        self.kind
    }

    async fn secret(&self, kind: SecretKind) -> Result<Option<Secret>> {
        let secrets = self.secrets.clone();
        let id = self.connection_id.clone();
        tokio::task::spawn_blocking(move || secrets.get(&id, kind))
            .await
            .map_err(|e| Error::Keychain(format!("keychain task failed: {e}")))?
    }

    async fn store_secret(&self, kind: SecretKind, value: Secret) -> Result<()> {
        let secrets = self.secrets.clone();
        let id = self.connection_id.clone();
        tokio::task::spawn_blocking(move || secrets.set(&id, kind, &value))
            .await
            .map_err(|e| Error::Keychain(format!("keychain task failed: {e}")))?
    }

    fn missing(&self, kind: SecretKind) -> Error {
        Error::MissingSecret {
            connection: self.connection_name.clone(),
            what: kind.label(),
        }
    }

    /// The header to send now. May run a grant first (no token yet, or one about to expire);
    /// the returned times, when present, must be saved on the connection.
    pub async fn credential(
        &self,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<(Credential, Option<TokenTimes>)> {
        match self.kind {
            AuthKind::None => Ok((
                Credential {
                    header: None,
                    query: None,
                    generation: 0,
                },
                None,
            )),
            AuthKind::ApiKey => {
                let mut st = self.state.lock().await;
                let key = self
                    .cached(&mut st.api_key, SecretKind::ApiKey)
                    .await?
                    .ok_or_else(|| self.missing(SecretKind::ApiKey))?;
                // Checked like a header value wherever it goes: no line breaks or controls.
                let v = header_value(key.expose(), SecretKind::ApiKey)?;
                let (header, query) = match &self.api_key_query {
                    Some(name) => (None, Some((name.clone(), key))),
                    None => (Some((self.api_key_header.clone(), v)), None),
                };
                Ok((
                    Credential {
                        header,
                        query,
                        generation: st.generation,
                    },
                    None,
                ))
            }
            AuthKind::Bearer => {
                let mut st = self.state.lock().await;
                if !st.loaded {
                    st.access = self.secret(SecretKind::AccessToken).await?;
                    st.loaded = true;
                }
                let t = st
                    .access
                    .clone()
                    .ok_or_else(|| self.missing(SecretKind::AccessToken))?;
                self.know(SecretKind::AccessToken, &t);
                Ok((
                    Credential {
                        header: Some(bearer(&t)?),
                        query: None,
                        generation: st.generation,
                    },
                    None,
                ))
            }
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken => {
                let mut st = self.state.lock().await;
                if !st.loaded {
                    st.access = self.secret(SecretKind::AccessToken).await?;
                    if let Some(a) = &st.access {
                        self.know(SecretKind::AccessToken, a);
                    }
                    st.loaded = true;
                }
                let margin = refresh_margin(st.lifetime);
                let expiring = st.expires_at.is_some_and(|at| {
                    clock
                        .now()
                        .checked_add_signed(margin)
                        .is_none_or(|soon| soon >= at)
                });
                let mut times = None;
                if st.access.is_none() || expiring {
                    times = Some(self.grant(&mut st, http, clock).await?);
                }
                let Some(token) = st.access.as_ref() else {
                    return Err(self.missing(SecretKind::AccessToken));
                };
                Ok((
                    Credential {
                        header: Some(bearer(token)?),
                        query: None,
                        generation: st.generation,
                    },
                    times,
                ))
            }
        }
    }

    /// React to a 401 on a request made with `generation`: refresh once unless another task
    /// already did. A static credential is read from the keychain again: if another process
    /// stored a new one, that one is tried; otherwise it cannot be refreshed.
    pub async fn refresh(
        &self,
        generation: u64,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<Option<TokenTimes>> {
        let mut st = self.state.lock().await;
        if st.generation != generation {
            return Ok(None);
        }
        let refused = || {
            Error::AuthExpired {
            detail: "the provider rejected the stored credential (HTTP 401); it cannot be refreshed automatically".into(),
        }
        };
        match self.kind {
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken => {
                match self.grant(&mut st, http, clock).await {
                    Ok(t) => Ok(Some(t)),
                    Err(e) => {
                        // A refresh that could not be made (the token endpoint down or
                        // busy) is retried: the next credential request grants anew.
                        if e.class() == crate::error::ErrorClass::Retryable {
                            st.access = None;
                        }
                        Err(e)
                    }
                }
            }
            AuthKind::ApiKey => {
                if self.reload(&mut st.api_key, SecretKind::ApiKey).await? {
                    st.generation += 1;
                    Ok(None)
                } else {
                    Err(refused())
                }
            }
            AuthKind::Bearer => {
                let fresh = self.secret(SecretKind::AccessToken).await?;
                if fresh.is_some() && fresh != st.access {
                    st.access = fresh;
                    st.generation += 1;
                    Ok(None)
                } else {
                    Err(refused())
                }
            }
            AuthKind::None => Err(refused()),
        }
    }

    /// Run a grant. When the provider refuses the credential, the keychain is read again
    /// first: another process may have stored a new client secret or rotated the refresh
    /// token since it was cached; only if nothing changed is the refusal final.
    async fn grant(
        &self,
        st: &mut TokenState,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<TokenTimes> {
        match self.grant_once(st, http, clock).await {
            Err(Error::AuthExpired { detail }) => {
                let secret_changed = self
                    .reload(&mut st.client_secret, SecretKind::ClientSecret)
                    .await?;
                let refresh_changed = self.kind == AuthKind::Oauth2RefreshToken
                    && self
                        .reload(&mut st.refresh_token, SecretKind::RefreshToken)
                        .await?;
                if secret_changed || refresh_changed {
                    self.grant_once(st, http, clock).await
                } else {
                    Err(Error::AuthExpired { detail })
                }
            }
            r => r,
        }
    }

    async fn grant_once(
        &self,
        st: &mut TokenState,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<TokenTimes> {
        let token_url = self
            .token_url
            .clone()
            .ok_or_else(|| Error::invalid("auth.token_url", "OAuth2 needs a token_url"))?;
        let client_secret = self
            .cached(&mut st.client_secret, SecretKind::ClientSecret)
            .await?;
        let mut form: Vec<(&str, String)> = Vec::new();
        let refresh_token = match self.kind {
            AuthKind::Oauth2RefreshToken => Some(
                self.cached(&mut st.refresh_token, SecretKind::RefreshToken)
                    .await?
                    .ok_or_else(|| self.missing(SecretKind::RefreshToken))?,
            ),
            _ => None,
        };
        match &refresh_token {
            Some(rt) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", rt.expose().to_string()));
            }
            None => {
                form.push(("grant_type", "client_credentials".into()));
                if client_secret.is_none() {
                    return Err(self.missing(SecretKind::ClientSecret));
                }
            }
        }
        if let Some(id) = &self.client_id {
            form.push(("client_id", id.clone()));
        }
        if let Some(s) = &client_secret {
            form.push(("client_secret", s.expose().to_string()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.clone()));
        }
        let what = if refresh_token.is_some() {
            "token refresh"
        } else {
            "token request"
        };
        let known: Vec<(SecretKind, Secret)> =
            self.known.lock().expect("known secrets lock").clone();
        let known: Vec<&str> = known.iter().map(|(_, s)| s.expose()).collect();
        let tr = post_token(http, &token_url, &form, what, &known).await;
        for (_, v) in &mut form {
            v.zeroize();
        }
        let tr = tr?;
        let times = tr.times(clock.now());
        // A rotated refresh token is stored before the new access token is used: if the
        // process dies in between, the next run still holds a valid refresh token.
        if let Some(rt) = &tr.refresh_token {
            let rt = Secret::new(rt.clone());
            self.know(SecretKind::RefreshToken, &rt);
            self.store_secret(SecretKind::RefreshToken, rt.clone())
                .await?;
            if self.kind == AuthKind::Oauth2RefreshToken {
                st.refresh_token = Some(Some(rt));
            }
        }
        let access = Secret::new(tr.access_token.clone());
        self.know(SecretKind::AccessToken, &access);
        self.store_secret(SecretKind::AccessToken, access.clone())
            .await?;
        st.access = Some(access);
        st.expires_at = times.expires_at;
        st.lifetime = tr.lifetime();
        st.generation += 1;
        tracing::info!(connection = %self.connection_name, "obtained a new access token");
        Ok(times)
    }
}

/// POST a grant to the token endpoint. Retryable: network failures, timeouts, 5xx
/// (`ProviderUnavailable`) and 429 (`RateLimited`). Only a refusal of the credential itself
/// (`invalid_client`, `invalid_grant`, `unauthorized_client`, or a bare 401) is
/// `AuthExpired`; another 4xx is `ProviderRejected`. A redirect to another origin is never
/// followed (the form holds the client secret). `secrets` are redacted from any provider
/// text kept in the error; `what` names the request in the message.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    token_url: &url::Url,
    form: &[(&str, String)],
    what: &str,
    secrets: &[&str],
) -> Result<TokenResponse> {
    let path = token_url.path().to_string();
    let sent = http
        .post(token_url.clone())
        .form(form)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            if let Some(why) = crate::connector::redirect_refusal(&e) {
                return Err(Error::MalformedResponse {
                    path,
                    detail: format!("{what}: {why}"),
                });
            }
            return Err(Error::ProviderUnavailable {
                attempts: 1,
                detail: format!(
                    "token endpoint {path}: {}",
                    crate::connector::reqwest_gist(&e)
                ),
            });
        }
    };
    let status = resp.status();
    let mut secrets: Vec<&str> = secrets.to_vec();
    secrets.extend(
        form.iter()
            .filter(|(k, _)| is_secret_field(k))
            .map(|(_, v)| v.as_str()),
    );
    let body = match crate::connector::read_body(&mut resp, TOKEN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(crate::connector::BodyError::TooLarge(limit)) => {
            return Err(Error::MalformedResponse {
                path,
                detail: format!(
                    "token response larger than {}",
                    crate::connector::megabytes(limit)
                ),
            })
        }
        Err(crate::connector::BodyError::Transport(e)) => {
            return Err(Error::ProviderUnavailable {
                attempts: 1,
                detail: format!(
                    "token endpoint {path}: {}",
                    crate::connector::reqwest_gist(&e)
                ),
            })
        }
    };
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Error::RateLimited {
            detail: format!("token endpoint {path} answered HTTP 429"),
        });
    }
    if status.is_server_error() {
        return Err(Error::ProviderUnavailable {
            attempts: 1,
            detail: format!("token endpoint answered HTTP {}", status.as_u16()),
        });
    }
    if !status.is_success() {
        let parsed = serde_json::from_slice::<TokenError>(&body).ok();
        let refused = match &parsed {
            Some(e) => REFUSED.contains(&e.error.as_str()) || status.as_u16() == 401,
            None => status.as_u16() == 401,
        };
        let why = match parsed {
            Some(e) => match e.error_description {
                Some(d) => format!("{} ({d})", e.error),
                None => e.error,
            },
            None => {
                let text = String::from_utf8_lossy(&body[..body.len().min(8 * 1024)]).to_string();
                let text: String = text.trim().chars().take(200).collect();
                if text.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    text
                }
            }
        };
        // Redacted whole, then cut: a secret is never left half visible.
        let why = redact(&why, &secrets);
        let why = match why.char_indices().nth(300) {
            Some((at, _)) => format!("{}…", &why[..at]),
            None => why,
        };
        if refused {
            return Err(Error::AuthExpired {
                detail: format!("{what} failed: {why}"),
            });
        }
        return Err(Error::ProviderRejected {
            status: status.as_u16(),
            path,
            excerpt: format!("{what} failed: {why}"),
        });
    }
    serde_json::from_slice(&body).map_err(|e| Error::MalformedResponse {
        path,
        detail: format!("token response: {e}"),
    })
}

/// Form fields of a grant that carry a secret.
fn is_secret_field(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "refresh_token" | "code" | "code_verifier"
    )
}

/// `text` with each of `secrets` (4 characters or longer) replaced by `[redacted]`, then
/// anything shaped like an `Authorization` header value or a bearer token too: a provider
/// that echoes a request back must not get a credential into a note or a log.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    const MARK: &str = "[redacted]";
    let mut out = text.to_string();
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, MARK);
        }
    }
    redact_after(&redact_after(&out, "authorization", true), "bearer", false)
}

/// Replace the value after each case-insensitive `key` (`key: value`, `"key":"value"`,
/// `key=value`, or `key value` for a bearer token).
fn redact_after(text: &str, key: &str, needs_separator: bool) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(key) {
        let key_end = at + found + key.len();
        out.push_str(&text[at..key_end]);
        let rest = &text[key_end..];
        // Separator: quotes, colon, equals sign, spaces.
        let sep_len = rest
            .find(|c: char| !matches!(c, '"' | '\'' | ':' | '=' | ' ' | '\t'))
            .unwrap_or(rest.len());
        let sep = &rest[..sep_len];
        let has_sep = if needs_separator {
            sep.contains([':', '='])
        } else {
            sep.contains([' ', '\t', ':', '='])
        };
        let value_len = rest[sep_len..]
            .find(|c: char| {
                if needs_separator {
                    matches!(c, '"' | '\'' | ',' | '\n' | '\r' | '}' | '<' | '&')
                } else {
                    !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
                }
            })
            .unwrap_or(rest.len() - sep_len);
        out.push_str(sep);
        if has_sep && value_len > 0 {
            out.push_str("[redacted]");
            at = key_end + sep_len + value_len;
        } else {
            at = key_end + sep_len;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// A credential as a header value; one with a line break or another control character is
/// refused with a message that says which secret, never sent.
fn header_value(v: &str, kind: SecretKind) -> Result<HeaderValue> {
    crate::secrets::check_secret_value(kind, &Secret::new(v))?;
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        Error::invalid(
            kind.as_str(),
            format!(
                "the {} holds characters not allowed in an HTTP header",
                kind.label()
            ),
        )
    })?;
    h.set_sensitive(true);
    Ok(h)
}

fn bearer(token: &Secret) -> Result<(HeaderName, HeaderValue)> {
    crate::secrets::check_secret_value(SecretKind::AccessToken, token)?;
    Ok((
        AUTHORIZATION,
        header_value(
            &format!("Bearer {}", token.expose()),
            SecretKind::AccessToken,
        )?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn grant(expires_in: Option<i64>, refresh_expires_in: Option<i64>) -> TokenResponse {
        TokenResponse {
            access_token: "at".into(),
            expires_in,
            refresh_token: Some("rt".into()),
            refresh_token_expires_in: refresh_expires_in,
        }
    }

    #[test]
    fn p4_an_absurd_expires_in_is_clamped_to_a_year_not_a_panic() {
        let now = at(1_800_000_000);
        let year = chrono::Duration::seconds(MAX_LIFETIME_SECS);
        let t = grant(Some(i64::MAX), Some(i64::MAX)).times(now);
        assert_eq!(t.expires_at, Some(now + year));
        assert_eq!(t.refresh_expires_at, Some(now + year));
        // Zero or negative: no usable expiry (a 401 will tell), not "expired forever".
        let t = grant(Some(i64::MIN), Some(0)).times(now);
        assert_eq!((t.expires_at, t.refresh_expires_at), (None, None));
        assert_eq!(
            grant(Some(3600), None).times(now).expires_at,
            Some(at(1_800_003_600))
        );
        // Near the end of time, no overflow either.
        let late = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(5);
        assert_eq!(grant(Some(i64::MAX), None).times(late).expires_at, None);
    }

    #[test]
    fn r_e1_refresh_margin_is_a_tenth_of_the_lifetime_up_to_a_minute() {
        let s = chrono::Duration::seconds;
        assert_eq!(
            refresh_margin(Some(s(2))),
            chrono::Duration::milliseconds(200)
        );
        assert_eq!(refresh_margin(Some(s(300))), s(30));
        assert_eq!(refresh_margin(Some(s(3600))), s(60));
        assert_eq!(refresh_margin(None), s(60));
    }

    #[test]
    fn s5_provider_text_echoing_a_credential_is_redacted() {
        let secrets = ["at_live_123456", "sk_api_key_999", "cs_client_secret"];
        let echoed = r#"{"error":"bad","echo":{"authorization":"Bearer at_live_123456","x-api-key":"sk_api_key_999"},"form":"client_secret=cs_client_secret"}"#;
        let out = redact(echoed, &secrets);
        for s in secrets {
            assert!(!out.contains(s), "{out}");
        }
        assert!(out.contains("[redacted]"));
        // Shapes of credentials nobody told us about are redacted too.
        let out = redact("got Authorization: Bearer zzz.yyy-xxx from you", &[]);
        assert!(!out.contains("zzz"), "{out}");
        let out = redact("token was bearer abc.def_ghi=, try again", &[]);
        assert!(!out.contains("abc.def"), "{out}");
        assert!(out.ends_with(", try again"), "{out}");
        // Ordinary text stays.
        assert_eq!(redact("no such customer", &secrets), "no such customer");
        assert_eq!(redact("authorization failed", &[]), "authorization failed");
    }

    #[test]
    fn s5_the_credentials_kept_for_redaction_stay_few() {
        let auth = Auth::new(
            AuthConfig {
                connection_id: "c".into(),
                connection_name: "c".into(),
                kind: AuthKind::Oauth2ClientCredentials,
                token_url: None,
                client_id: None,
                scope: None,
                api_key_header: None,
                api_key_query: None,
                token_expires_at: None,
            },
            Arc::new(crate::secrets::MemorySecretStore::default()),
        )
        .unwrap();
        auth.know(SecretKind::ClientSecret, &Secret::new("cs_long_lived"));
        for i in 0..1000 {
            auth.know(SecretKind::AccessToken, &Secret::new(format!("at_{i:04}")));
        }
        assert_eq!(
            auth.known.lock().unwrap().len(),
            3,
            "the client secret and two tokens"
        );
        let out = auth.redact("cs_long_lived at_0999 at_0998");
        assert_eq!(out, "[redacted] [redacted] [redacted]");
    }

    fn api_key_auth(query: Option<&str>) -> Auth {
        let secrets = Arc::new(crate::secrets::MemorySecretStore::default());
        secrets
            .set("c", SecretKind::ApiKey, &Secret::new("key_live_0123456789"))
            .unwrap();
        Auth::new(
            AuthConfig {
                connection_id: "c".into(),
                connection_name: "c".into(),
                kind: AuthKind::ApiKey,
                token_url: None,
                client_id: None,
                scope: None,
                api_key_header: Some("X-Key".into()),
                api_key_query: query.map(str::to_string),
                token_expires_at: None,
            },
            secrets,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn i15_an_api_key_goes_in_the_query_or_in_the_header_never_both() {
        let http = reqwest::Client::new();
        let clock = crate::clock::ManualClock::new(at(1_800_000_000));
        let url = url::Url::parse("https://api.test/v1/items?limit=5").unwrap();
        for (query, want_query, want_header) in [
            (Some("api_key"), Some("api_key=key_live_0123456789"), None),
            (None, None, Some("key_live_0123456789")),
        ] {
            let auth = api_key_auth(query);
            let (cred, _) = auth.credential(&http, &clock).await.unwrap();
            let req = cred.apply(http.get(url.clone())).build().unwrap();
            assert_eq!(
                req.url().query(),
                Some(match want_query {
                    Some(q) => format!("limit=5&{q}"),
                    None => "limit=5".into(),
                })
                .as_deref()
            );
            assert_eq!(
                req.headers().get("x-key").map(|v| v.to_str().unwrap()),
                want_header
            );
            // The URL the caller kept holds no key, and text echoing it is redacted.
            assert!(!url.as_str().contains("key_live"));
            assert_eq!(
                auth.redact("bad request: /v1/items?api_key=key_live_0123456789"),
                "bad request: /v1/items?api_key=[redacted]"
            );
        }
        let e = Auth::new(
            AuthConfig {
                connection_id: "c".into(),
                connection_name: "c".into(),
                kind: AuthKind::ApiKey,
                token_url: None,
                client_id: None,
                scope: None,
                api_key_header: None,
                api_key_query: Some(" ".into()),
                token_expires_at: None,
            },
            Arc::new(crate::secrets::MemorySecretStore::default()),
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("auth.query"));
    }
}
