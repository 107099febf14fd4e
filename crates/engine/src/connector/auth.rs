//! Credentials for one connection: OAuth2 client-credentials and refresh-token grants with
//! single-flight refresh and rotation (R-E1), static bearer tokens and API keys. Tokens come
//! from and go to the [`SecretStore`]; only their expiry times reach the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::AuthKind;
use crate::secrets::{Secret, SecretKind, SecretStore};

/// Refresh this long before a known expiry instead of waiting for a 401 (R-E1 beyond).
const EARLY_REFRESH: chrono::Duration = chrono::Duration::seconds(60);

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
    /// Bumped on every grant: a request that failed with generation `g` only triggers a
    /// refresh if nobody refreshed since (single flight).
    generation: u64,
    loaded: bool,
}

/// A credential ready to put on a request.
#[derive(Debug)]
pub struct Credential {
    pub header: Option<(HeaderName, HeaderValue)>,
    pub generation: u64,
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
    secrets: Arc<dyn SecretStore>,
    state: tokio::sync::Mutex<TokenState>,
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
        let at = |s: i64| now + chrono::Duration::seconds(s);
        TokenTimes {
            expires_at: self.expires_in.map(at),
            refresh_expires_at: self
                .refresh_token
                .as_ref()
                .and(self.refresh_token_expires_in)
                .map(at),
        }
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
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl Auth {
    pub fn new(cfg: AuthConfig, secrets: Arc<dyn SecretStore>) -> Result<Self> {
        let header = cfg.api_key_header.as_deref().unwrap_or("x-api-key");
        let api_key_header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            Error::invalid("auth.header", format!("'{header}' is not a header name"))
        })?;
        Ok(Auth {
            connection_id: cfg.connection_id,
            connection_name: cfg.connection_name,
            kind: cfg.kind,
            token_url: cfg.token_url,
            client_id: cfg.client_id,
            scope: cfg.scope,
            api_key_header,
            secrets,
            state: tokio::sync::Mutex::new(TokenState {
                expires_at: cfg.token_expires_at,
                ..TokenState::default()
            }),
        })
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
                    generation: 0,
                },
                None,
            )),
            AuthKind::ApiKey => {
                let key = self
                    .secret(SecretKind::ApiKey)
                    .await?
                    .ok_or_else(|| self.missing(SecretKind::ApiKey))?;
                let v = header_value(key.expose())?;
                Ok((
                    Credential {
                        header: Some((self.api_key_header.clone(), v)),
                        generation: 0,
                    },
                    None,
                ))
            }
            AuthKind::Bearer => {
                let t = self
                    .secret(SecretKind::AccessToken)
                    .await?
                    .ok_or_else(|| self.missing(SecretKind::AccessToken))?;
                Ok((
                    Credential {
                        header: Some(bearer(&t)?),
                        generation: 0,
                    },
                    None,
                ))
            }
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken => {
                let mut st = self.state.lock().await;
                if !st.loaded {
                    st.access = self.secret(SecretKind::AccessToken).await?;
                    st.loaded = true;
                }
                let expiring = st
                    .expires_at
                    .is_some_and(|at| clock.now() + EARLY_REFRESH >= at);
                let mut times = None;
                if st.access.is_none() || expiring {
                    times = Some(self.grant(&mut st, http, clock).await?);
                }
                let token = st.access.as_ref().expect("a grant leaves a token");
                Ok((
                    Credential {
                        header: Some(bearer(token)?),
                        generation: st.generation,
                    },
                    times,
                ))
            }
        }
    }

    /// React to a 401 on a request made with `generation`: refresh once unless another task
    /// already did. Static credentials cannot be refreshed.
    pub async fn refresh(
        &self,
        generation: u64,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<Option<TokenTimes>> {
        match self.kind {
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken => {
                let mut st = self.state.lock().await;
                if st.generation != generation {
                    return Ok(None);
                }
                self.grant(&mut st, http, clock).await.map(Some)
            }
            _ => Err(Error::AuthExpired {
                detail: "the provider rejected the stored credential (HTTP 401); it cannot be refreshed automatically".into(),
            }),
        }
    }

    async fn grant(
        &self,
        st: &mut TokenState,
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<TokenTimes> {
        let token_url = self
            .token_url
            .clone()
            .ok_or_else(|| Error::invalid("auth.token_url", "OAuth2 needs a token_url"))?;
        let client_secret = self.secret(SecretKind::ClientSecret).await?;
        let mut form: Vec<(&str, String)> = Vec::new();
        let refresh_token = match self.kind {
            AuthKind::Oauth2RefreshToken => Some(
                self.secret(SecretKind::RefreshToken)
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
        let tr = post_token(http, &token_url, &form, what).await?;
        let times = tr.times(clock.now());
        // A rotated refresh token is stored before the new access token is used: if the
        // process dies in between, the next run still holds a valid refresh token.
        if let Some(rt) = tr.refresh_token {
            self.store_secret(SecretKind::RefreshToken, Secret::new(rt))
                .await?;
        }
        let access = Secret::new(tr.access_token);
        self.store_secret(SecretKind::AccessToken, access.clone())
            .await?;
        st.access = Some(access);
        st.expires_at = times.expires_at;
        st.generation += 1;
        tracing::info!(connection = %self.connection_name, "obtained a new access token");
        Ok(times)
    }
}

/// POST a grant to the token endpoint. 5xx and network failures are retryable; any other
/// refusal means the credential is no good (`what` names the request in the message).
pub(crate) async fn post_token(
    http: &reqwest::Client,
    token_url: &url::Url,
    form: &[(&str, String)],
    what: &str,
) -> Result<TokenResponse> {
    let resp = http
        .post(token_url.clone())
        .form(form)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| Error::ProviderUnavailable {
            attempts: 1,
            detail: format!(
                "token endpoint {}: {}",
                token_url.path(),
                crate::connector::reqwest_gist(&e)
            ),
        })?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    if status.is_server_error() {
        return Err(Error::ProviderUnavailable {
            attempts: 1,
            detail: format!("token endpoint answered HTTP {}", status.as_u16()),
        });
    }
    if !status.is_success() {
        let why = serde_json::from_slice::<TokenError>(&body)
            .map(|e| match e.error_description {
                Some(d) => format!("{} ({d})", e.error),
                None => e.error,
            })
            .unwrap_or_else(|_| format!("HTTP {}", status.as_u16()));
        return Err(Error::AuthExpired {
            detail: format!("{what} failed: {why}"),
        });
    }
    serde_json::from_slice(&body).map_err(|e| Error::MalformedResponse {
        path: token_url.path().to_string(),
        detail: format!("token response: {e}"),
    })
}

fn header_value(v: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(v)
        .map_err(|_| Error::invalid("credential", "contains characters not allowed in a header"))?;
    h.set_sensitive(true);
    Ok(h)
}

fn bearer(token: &Secret) -> Result<(HeaderName, HeaderValue)> {
    Ok((
        AUTHORIZATION,
        header_value(&format!("Bearer {}", token.expose()))?,
    ))
}
