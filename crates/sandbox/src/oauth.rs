//! The OAuth2 token endpoint: client-credentials grants and rotating refresh tokens, with the
//! error responses real providers give so the engine's auth handling can be exercised.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
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
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials or refresh_token",
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
