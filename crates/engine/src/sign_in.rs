//! Connecting or re-authenticating a connection by signing in through the system browser
//! (OAuth2 authorization code + PKCE, [`crate::connector::signin`]). The shell opens
//! [`SignIn::url`] and awaits [`Engine::finish_sign_in`]; tokens go to the keychain, their
//! expiry times to the store.

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::connector::auth::post_token;
use crate::connector::signin::Authorization;
use crate::engine::{Engine, NewConnection};
use crate::error::{Error, Result};
use crate::model::{AuthKind, Connection};
use crate::secrets::{Secret, SecretKind};

/// A sign-in waiting for the user in the browser.
#[derive(Debug)]
pub struct SignIn {
    authorization: Authorization,
    token_url: Url,
    client_id: String,
    client_secret: Option<Secret>,
    target: Target,
}

#[derive(Debug)]
enum Target {
    /// Create this connection once signed in.
    New(Box<NewConnection>),
    /// Give this connection new tokens.
    Existing { id: String, name: String },
}

impl SignIn {
    /// The provider's sign-in page for the system browser. It holds no secret.
    pub fn url(&self) -> &str {
        self.authorization.url()
    }
}

/// Whether connections of the spec may sign in through the browser: it is OAuth2, or lists
/// `oauth2_refresh_token` among its alternatives (a private-app token first, sign-in as the
/// other way). The connection then keeps a refresh token.
fn check_signs_in(c: &NewConnection) -> Result<()> {
    let is_oauth = |k: &AuthKind| {
        matches!(
            k,
            AuthKind::Oauth2RefreshToken | AuthKind::Oauth2ClientCredentials
        )
    };
    let kinds = crate::engine::allowed_auth_kinds(&c.spec);
    if !kinds.iter().any(is_oauth) {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        return Err(Error::invalid(
            "auth_kind",
            format!(
                "{} has no browser sign-in; its connections use {}",
                c.spec.name,
                names.join(" or ")
            ),
        ));
    }
    match c.auth_kind {
        Some(k) if !is_oauth(&k) => Err(Error::invalid(
            "auth_kind",
            format!(
                "a browser sign-in makes an {} connection, not {k}",
                AuthKind::Oauth2RefreshToken
            ),
        )),
        _ => Ok(()),
    }
}

/// Where the spec's OAuth2 endpoints are, resolved against the connection's base URL.
fn endpoints(spec: &crate::ConnectorSpec, base_url: &str) -> Result<(Url, Url)> {
    let base = crate::connector::spec::check_base_url(base_url)?;
    let resolve = |field: &str, u: &Option<String>| -> Result<Url> {
        let u = u.as_deref().ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "{} has no browser sign-in (the connector spec gives no {})",
                    spec.name,
                    field.trim_start_matches("auth.")
                ),
            )
        })?;
        // The code, the verifier and any client secret go there only: the connection's
        // origin, or the provider's sign-in server; over https unless on this machine.
        crate::connector::spec::resolve_auth_url(field, u, &base)
    };
    Ok((
        resolve("auth.authorize_url", &spec.auth.authorize_url)?,
        resolve("auth.token_url", &spec.auth.token_url)?,
    ))
}

impl Engine {
    /// Start signing in to create `c`. Nothing is stored until [`Engine::finish_sign_in`]
    /// has the tokens. A client secret in `c.secrets` is sent with the code (confidential
    /// clients); PKCE alone suffices for public ones.
    pub async fn begin_sign_in(&self, mut c: NewConnection) -> Result<SignIn> {
        let base_url = Self::prepare_new_connection(&mut c)?;
        check_signs_in(&c)?;
        if self.inner.store.connection(c.name.trim()).await.is_ok() {
            return Err(Error::Conflict(format!(
                "a connection named '{}' already exists",
                c.name.trim()
            )));
        }
        let (authorize_url, token_url) = endpoints(&c.spec, &base_url)?;
        let client_id = c
            .client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid("client_id", "browser sign-in needs the app's client id")
            })?;
        let client_secret = c
            .secrets
            .iter()
            .find(|(k, _)| *k == SecretKind::ClientSecret)
            .map(|(_, s)| s.clone());
        for (kind, value) in &c.secrets {
            crate::secrets::check_secret_value(*kind, value)?;
        }
        let authorization =
            Authorization::begin(&authorize_url, &client_id, c.spec.auth.scope.as_deref()).await?;
        Ok(SignIn {
            authorization,
            token_url,
            client_id,
            client_secret,
            target: Target::New(Box::new(c)),
        })
    }

    /// Start signing in again on an existing connection (its refresh token was revoked or
    /// expired). The connection keeps its id, jobs and history.
    pub async fn begin_sign_in_again(&self, connection: &str) -> Result<SignIn> {
        let conn = self.inner.store.connection(connection).await?;
        let (spec, client_id) = self.inner.store.connection_spec(&conn.id).await?;
        let (authorize_url, token_url) = endpoints(&spec, &conn.base_url)?;
        let client_id = client_id
            .ok_or_else(|| Error::invalid("client_id", "this connection has no client id"))?;
        let client_secret = self.get_secret(&conn.id, SecretKind::ClientSecret).await?;
        let authorization =
            Authorization::begin(&authorize_url, &client_id, spec.auth.scope.as_deref()).await?;
        Ok(SignIn {
            authorization,
            token_url,
            client_id,
            client_secret,
            target: Target::Existing {
                id: conn.id,
                name: conn.name,
            },
        })
    }

    /// Wait for the browser until `cancel` (the user gave up, or the shell's patience ran
    /// out), exchange the code and the PKCE verifier for tokens, and store them: a new
    /// connection, or new tokens on the existing one, which becomes active again.
    pub async fn finish_sign_in(
        &self,
        s: SignIn,
        cancel: &CancellationToken,
    ) -> Result<Connection> {
        let callback = tokio::select! {
            cb = s.authorization.callback() => cb?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", callback.code.expose().to_string()),
            ("redirect_uri", callback.redirect_uri),
            ("client_id", s.client_id),
            ("code_verifier", callback.verifier.expose().to_string()),
        ];
        if let Some(secret) = &s.client_secret {
            form.push(("client_secret", secret.expose().to_string()));
        }
        let tokens = post_token(&self.inner.http, &s.token_url, &form, "code exchange", &[])
            .await
            .map_err(|e| match e {
                // A refused code is a failed sign-in, not an expired connection.
                Error::AuthExpired { detail } => Error::SignInFailed(detail),
                e => e,
            })?;
        let now = self.inner.clock.now();
        let times = tokens.times(now);
        let refresh = tokens.refresh_token.map(Secret::new).ok_or_else(|| {
            Error::SignInFailed(
                "the provider gave no refresh token, so the connection could not stay signed in"
                    .into(),
            )
        })?;
        let access = Secret::new(tokens.access_token);
        let id = match s.target {
            Target::New(mut c) => {
                c.secrets.retain(|(k, _)| *k == SecretKind::ClientSecret);
                c.secrets.push((SecretKind::RefreshToken, refresh));
                c.secrets.push((SecretKind::AccessToken, access));
                let conn = self
                    .insert_connection(*c, AuthKind::Oauth2RefreshToken)
                    .await?;
                self.inner
                    .store
                    .insert_audit(
                        &self.inner.actor,
                        "connection.sign_in",
                        &format!("connection {}", conn.name),
                        Some("browser sign-in"),
                        now,
                    )
                    .await?;
                conn.id
            }
            Target::Existing { id, name } => {
                // The refresh token first: it is what keeps the connection alive.
                self.put_secret(&id, SecretKind::RefreshToken, refresh)
                    .await?;
                self.put_secret(&id, SecretKind::AccessToken, access)
                    .await?;
                self.inner
                    .store
                    .set_connection_auth_kind(&id, AuthKind::Oauth2RefreshToken, now)
                    .await?;
                self.reauthenticated(&id, &name, "browser sign-in", now)
                    .await?;
                id
            }
        };
        self.inner
            .store
            .set_connection_tokens(&id, times, now)
            .await?;
        self.inner.store.connection(&id).await
    }
}
