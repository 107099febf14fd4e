//! The OAuth2 endpoints: the authorization page (authorization code + PKCE, consent given at
//! once unless the consent fault is on), client-credentials, authorization-code and rotating
//! refresh-token grants, with the error responses real providers give so the engine's auth
//! handling can be exercised.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::state::{lock, Shared};
use crate::util::{base64_decode, parse_form};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"sandbox\""),
        );
    }
    resp
}

/// Reads the token request from a JSON or form body; anything that isn't JSON is treated as a
/// form, since some clients omit the content type.
fn read_params(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if !is_json {
        return Some(parse_form(std::str::from_utf8(body).ok()?));
    }
    let Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect(),
    )
}

/// Client credentials from HTTP Basic, else from the body.
fn client_credentials(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64_decode(b.trim()))
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(i, s)| (i.to_owned(), s.to_owned()))
        });
    basic.or_else(|| {
        Some((
            params.get("client_id")?.clone(),
            params.get("client_secret")?.clone(),
        ))
    })
}

/// A page for an authorization request that cannot be redirected back (unknown client or a
/// redirect URI that is not a loopback address): RFC 6749 §4.1.2.1 forbids redirecting then.
fn refuse_page(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("authorization request refused: {why}"),
    )
        .into_response()
}

/// Only `http://127.0.0.1:<port>/…` and `http://[::1]:<port>/…` (RFC 8252 §7.3 loopback
/// redirects for native apps): the sandbox must never send a code off this machine.
fn loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if port.parse::<u16>().is_ok() {
            h
        } else {
            authority
        }
    });
    matches!(host, "127.0.0.1" | "[::1]")
}

fn redirect(to: &str, params: &[(&str, &str)]) -> Response {
    let mut url = to.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&crate::util::percent_encode(v));
        sep = '&';
    }
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

/// `GET /oauth/authorize`: where the system browser lands. A real provider shows a sign-in
/// and consent page; the sandbox consents at once (or refuses, with the consent fault) and
/// redirects to the app's loopback listener with the code and the caller's `state`.
pub(crate) async fn authorize(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = parse_form(q.as_deref().unwrap_or_default());
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != sh.config.client_id {
        return refuse_page("unknown client_id");
    }
    let redirect_uri = get("redirect_uri");
    if !loopback_redirect(redirect_uri) {
        return refuse_page(
            "redirect_uri must be http://127.0.0.1:<port>/… or http://[::1]:<port>/…",
        );
    }
    let state = get("state");
    let back = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        redirect(redirect_uri, &params)
    };
    if get("response_type") != "code" {
        return back("unsupported_response_type", "response_type must be code");
    }
    let challenge = get("code_challenge");
    if challenge.len() != 43 || get("code_challenge_method") != "S256" {
        return back(
            "invalid_request",
            "PKCE is required: code_challenge (43 characters) with code_challenge_method=S256",
        );
    }
    let mut auth = lock(&sh.auth);
    if auth.consent_denied {
        return back("access_denied", "the user denied access");
    }
    let code = auth.issue_code(&sh.config, get("client_id"), redirect_uri, challenge);
    let mut params = vec![("code", code.as_str())];
    if !state.is_empty() {
        params.push(("state", state));
    }
    redirect(redirect_uri, &params)
}

/// RFC 7636 §4.6: BASE64URL(SHA-256(ASCII(code_verifier))) must equal the stored challenge.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    valid
        && base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
            == challenge
}

pub(crate) async fn token(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = grant(&sh, &headers, &body);
    if !resp.status().is_success() {
        lock(&sh.stats).failed_grants += 1;
    }
    resp
}

fn grant(sh: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(params) = read_params(headers, body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable request body",
        );
    };
    let client = client_credentials(headers, &params);
    let client_ok = |(id, secret): &(String, String)| {
        *id == sh.config.client_id && *secret == sh.config.client_secret
    };
    let mut auth = lock(&sh.auth);
    let pair = match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            if !client.as_ref().is_some_and(client_ok) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client or bad secret",
                );
            }
            if auth.credentials_revoked {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client credentials revoked",
                );
            }
            lock(&sh.stats).token_grants += 1;
            auth.issue(&sh.config)
        }
        Some("refresh_token") => {
            // Client authentication is optional here (public clients), but wrong credentials
            // are still wrong.
            if client.as_ref().is_some_and(|c| !client_ok(c)) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client or bad secret",
                );
            }
            let Some(presented) = params.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            // Rotation: a refresh token works once, whatever the outcome.
            match auth.refresh.remove(presented) {
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token is unknown, already used or revoked",
                    )
                }
                Some(expires) if Instant::now() >= expires => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token expired",
                    )
                }
                Some(_) => {}
            }
            lock(&sh.stats).refresh_grants += 1;
            auth.issue(&sh.config)
        }
        Some("authorization_code") => {
            // A public client (PKCE) may leave the secret out; a wrong one is still wrong.
            if client.as_ref().is_some_and(|c| !client_ok(c)) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client or bad secret",
                );
            }
            let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
            // A code works once, whatever the outcome (RFC 6749 §4.1.2).
            let Some(pending) = auth.codes.remove(get("code")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "authorization code is unknown or already used",
                );
            };
            let client_id = client.as_ref().map_or(get("client_id"), |(id, _)| id);
            let why = if Instant::now() >= pending.expires {
                Some("authorization code expired")
            } else if client_id != pending.client_id {
                Some("authorization code was issued to another client")
            } else if get("redirect_uri") != pending.redirect_uri {
                Some("redirect_uri does not match the authorization request")
            } else if !verifier_matches(get("code_verifier"), &pending.challenge) {
                Some("code_verifier does not match the code_challenge")
            } else {
                None
            };
            if let Some(why) = why {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
            }
            lock(&sh.stats).code_grants += 1;
            auth.issue(&sh.config)
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials, authorization_code or refresh_token",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    };
    Json(json!({
        "access_token": pair.access,
        "token_type": "Bearer",
        "expires_in": sh.config.token_ttl_secs,
        "refresh_token": pair.refresh,
        "refresh_token_expires_in": sh.config.refresh_ttl_secs,
        "scope": "read",
    }))
    .into_response()
}
