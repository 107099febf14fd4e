//! Unauthenticated control endpoints (`/_admin/...`) so tests written in other languages, or a
//! person with curl, can flip faults and mutate data on a running sandbox.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::Faults;
use crate::model::Entity;
use crate::state::{lock, Shared};
use crate::Stats;

type AdminResult = Result<Response, (StatusCode, Json<Value>)>;

fn bad_request(message: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "message": message.to_string()})),
    )
}

fn not_found() -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"})))
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

/// The server only binds loopback, but refuse anything else anyway in case it is ever exposed
/// through a proxy or port forward: these endpoints have no auth.
async fn loopback_only(req: Request, next: Next) -> Response {
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if remote.is_some_and(|addr| !addr.ip().is_loopback()) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "forbidden"}))).into_response();
    }
    next.run(req).await
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/faults", get(get_faults).put(put_faults))
        .route("/stats", get(get_stats))
        .route("/stats/reset", post(reset_stats))
        .route("/exchanges", get(get_exchanges))
        .route("/tokens/expire", post(expire_tokens))
        .route("/tokens/revoke", post(revoke_tokens))
        .route("/credentials/revoke", post(revoke_credentials))
        .route("/credentials/restore", post(restore_credentials))
        .route("/records/{entity}/{id}", get(get_record).post(patch_record))
        .route("/touch", post(touch))
        .layer(middleware::from_fn(loopback_only))
}

async fn get_faults(State(sh): State<Arc<Shared>>) -> Json<Faults> {
    Json((*sh.faults()).clone())
}

async fn put_faults(
    State(sh): State<Arc<Shared>>,
    body: Result<Json<Faults>, JsonRejection>,
) -> AdminResult {
    let Json(faults) = body.map_err(|e| bad_request(e.body_text()))?;
    sh.update_faults(|f| *f = faults);
    Ok(Json((*sh.faults()).clone()).into_response())
}

async fn get_stats(State(sh): State<Arc<Shared>>) -> Json<Stats> {
    Json(lock(&sh.stats).clone())
}

async fn reset_stats(State(sh): State<Arc<Shared>>) -> Response {
    sh.reset_stats();
    ok()
}

async fn get_exchanges(State(sh): State<Arc<Shared>>) -> Response {
    let log = sh
        .exchanges
        .as_ref()
        .map(crate::exchange::ExchangeLog::snapshot)
        .unwrap_or_default();
    Json(log).into_response()
}

async fn expire_tokens(State(sh): State<Arc<Shared>>) -> Response {
    sh.expire_tokens();
    ok()
}

async fn revoke_tokens(State(sh): State<Arc<Shared>>) -> Response {
    sh.revoke_tokens();
    ok()
}

async fn revoke_credentials(State(sh): State<Arc<Shared>>) -> Response {
    sh.set_credentials_revoked(true);
    ok()
}

async fn restore_credentials(State(sh): State<Arc<Shared>>) -> Response {
    sh.set_credentials_revoked(false);
    ok()
}

fn parse_entity(raw: &str) -> Result<Entity, (StatusCode, Json<Value>)> {
    raw.parse().map_err(|_| not_found())
}

async fn get_record(
    State(sh): State<Arc<Shared>>,
    Path((entity, id)): Path<(String, String)>,
) -> AdminResult {
    let entity = parse_entity(&entity)?;
    sh.record(entity, &id)
        .map(|v| Json(v).into_response())
        .ok_or_else(not_found)
}

async fn patch_record(
    State(sh): State<Arc<Shared>>,
    Path((entity, id)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> AdminResult {
    let entity = parse_entity(&entity)?;
    let Json(patch) = body.map_err(|e| bad_request(e.body_text()))?;
    if !patch.is_object() {
        return Err(bad_request("the patch must be a JSON object"));
    }
    if !sh.patch_record(entity, &id, patch) {
        return Err(not_found());
    }
    sh.record(entity, &id)
        .map(|v| Json(v).into_response())
        .ok_or_else(not_found)
}

#[derive(Debug, Deserialize)]
struct TouchRequest {
    entity: Entity,
    #[serde(default)]
    fraction: Option<f64>,
    #[serde(default)]
    ids: Option<Vec<String>>,
}

async fn touch(
    State(sh): State<Arc<Shared>>,
    body: Result<Json<TouchRequest>, JsonRejection>,
) -> AdminResult {
    let Json(req) = body.map_err(|e| bad_request(e.body_text()))?;
    let ids = match (req.fraction, req.ids) {
        (_, Some(ids)) => {
            let known: Vec<String> = ids
                .into_iter()
                .filter(|id| sh.store.lookup(req.entity, id).is_some())
                .collect();
            sh.touch(req.entity, &known);
            known
        }
        (Some(fraction), None) => sh.touch_fraction(req.entity, fraction),
        (None, None) => return Err(bad_request("give either \"fraction\" or \"ids\"")),
    };
    Ok(Json(json!({"ids": ids})).into_response())
}
