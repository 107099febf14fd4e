//! The data API: authentication and fault injection for every data request, and the five
//! pagination styles (Stripe-like plus four alternatives) over the same records.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::faults::{Faults, RecordFaults, RetryAfter};
use crate::hash::{hash3, salt, unit};
use crate::model::Entity;
use crate::state::{lock, AuthFailure, Shared};
use crate::store::View;
use crate::time::parse_since;
use crate::util::{parse_form, percent_encode};

const MAX_LIMIT: u64 = 1_000;
const DEFAULT_LIMIT: u64 = 100;

/// Response extension telling the data middleware how many records a response carried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Served(pub(crate) u64);

pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn served(mut resp: Response, records: u64) -> Response {
    resp.extensions_mut().insert(Served(records));
    resp
}

/// A request the handler refuses before touching any record.
#[derive(Debug)]
pub(crate) enum ApiError {
    NotFound,
    InvalidParam {
        param: &'static str,
        message: String,
    },
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
            }
            ApiError::InvalidParam { param, message } => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "param": param, "message": message})),
            )
                .into_response(),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "internal"})),
            )
                .into_response(),
        }
    }
}

fn unauthorized(failure: AuthFailure) -> Response {
    let body = match failure {
        AuthFailure::Expired => {
            json!({"error": "invalid_token", "error_description": "token expired"})
        }
        AuthFailure::Invalid | AuthFailure::Revoked => {
            json!({"error": "invalid_token", "error_description": "unknown or revoked token"})
        }
        AuthFailure::Missing => {
            json!({"error": "invalid_token", "error_description": "missing bearer token"})
        }
    };
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    resp
}

/// Sleeps on tokio's clock (so paused-time tests skip it) but wakes early on shutdown, so a
/// hanging request never holds up a graceful stop.
pub(crate) async fn stall(sh: &Shared, ms: u64) {
    if ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            () = sh.cancel.cancelled() => {}
        }
    }
}

fn injected_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = json!({"error": "server_error", "message": "injected fault"});
    (status, Json(body)).into_response()
}

fn rate_limited(retry_after: &RetryAfter) -> Response {
    let body = json!({"error": "rate_limited", "message": "too many requests"});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Some(v) = retry_after_value(retry_after) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A request-level fault that fired: each API (the generic one, each persona) words it in its
/// own provider's shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Injected {
    /// An injected server error with this status.
    Error(u16),
    /// An injected 429 with this `Retry-After`.
    RateLimited(RetryAfter),
    /// A 200 whose body is cut off mid-record.
    Malformed,
}

impl Injected {
    /// The generic sandbox's answer to an injected fault.
    fn into_response(self) -> Response {
        match self {
            Injected::Error(status) => injected_error(status),
            Injected::RateLimited(retry_after) => rate_limited(&retry_after),
            Injected::Malformed => {
                let body = br#"{"object":"list","has_more":true,"data":[{"id":"cus_000"#.to_vec();
                json_bytes(StatusCode::OK, body)
            }
        }
    }
}

/// The `Retry-After` header value for an injected 429, if any.
pub(crate) fn retry_after_value(retry_after: &RetryAfter) -> Option<HeaderValue> {
    let value = match *retry_after {
        RetryAfter::None => None,
        RetryAfter::Seconds(s) => Some(s.to_string()),
        // An HTTP-date is absolute wall time by definition, so this is the one wall-clock read.
        RetryAfter::HttpDate(s) => Some(httpdate::fmt_http_date(
            SystemTime::now() + Duration::from_secs(s),
        )),
    };
    value.and_then(|v| HeaderValue::from_str(&v).ok())
}

/// Applies request-level faults in the documented order; `Err` is the fault that fired.
pub(crate) async fn inject_faults(sh: &Shared) -> Result<Arc<Faults>, Injected> {
    let (hang_ms, latency_ms) = {
        let mut state = lock(&sh.faults);
        let seen = state.since_hang_set;
        state.since_hang_set += 1;
        let f = &state.faults;
        let hang = f.hang_after.is_some_and(|after| seen >= u64::from(after));
        (if hang { f.hang_ms } else { 0 }, f.latency_ms)
    };
    let counter = sh.next_request();
    stall(sh, hang_ms).await;
    stall(sh, latency_ms).await;

    let mut state = lock(&sh.faults);
    let f = Arc::make_mut(&mut state.faults);
    if f.error_burst > 0 {
        f.error_burst -= 1;
        return Err(Injected::Error(f.effective_error_status()));
    }
    if f.rate_limit_burst > 0 {
        f.rate_limit_burst -= 1;
        return Err(Injected::RateLimited(f.retry_after.clone()));
    }
    if f.malformed_burst > 0 {
        f.malformed_burst -= 1;
        return Err(Injected::Malformed);
    }
    let seed = sh.config.seed;
    if f.error_rate > 0.0 && unit(hash3(seed, salt::ERROR_RATE, counter)) < f.error_rate {
        return Err(Injected::Error(f.effective_error_status()));
    }
    if f.rate_limit_rate > 0.0 && unit(hash3(seed, salt::RATE_LIMIT, counter)) < f.rate_limit_rate {
        return Err(Injected::RateLimited(f.retry_after.clone()));
    }
    Ok(state.faults.clone())
}

/// Middleware for every data route: auth first (a 401 consumes no fault), then faults, then
/// the handler, then statistics.
pub(crate) async fn data_layer(
    State(sh): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let resp = match sh.authorize(req.headers()) {
        Err(failure) => unauthorized(failure),
        Ok(()) => match inject_faults(&sh).await {
            Err(injected) => injected.into_response(),
            Ok(faults) => {
                req.extensions_mut().insert(faults);
                next.run(req).await
            }
        },
    };
    let records = resp.extensions().get::<Served>().map_or(0, |s| s.0);
    sh.record_request(resp.status().as_u16(), records);
    resp
}

/// Counts unknown `/v1` and `/alt` paths as data requests, then answers 404.
pub(crate) async fn fallback(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/v1/") || path.starts_with("/alt/") {
        sh.record_request(404, 0);
    }
    ApiError::NotFound.into_response()
}

/// Parsed query string with typed, parameter-naming accessors.
struct Params(HashMap<String, String>);

impl Params {
    fn new(raw: Option<String>) -> Self {
        Params(raw.as_deref().map(parse_form).unwrap_or_default())
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ApiError> {
        let Some(raw) = self.raw(name) else {
            return Ok(default);
        };
        raw.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ApiError::InvalidParam {
                param: name,
                message: format!("invalid {name} {raw:?}: expected an integer from {min} to {max}"),
            })
    }

    fn limit(&self, name: &'static str) -> Result<u64, ApiError> {
        self.number(name, DEFAULT_LIMIT, 1, MAX_LIMIT)
    }

    fn since(&self) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.raw("updated_since") else {
            return Ok(None);
        };
        parse_since(raw)
            .map(Some)
            .ok_or_else(|| ApiError::InvalidParam {
                param: "updated_since",
                message: format!("invalid updated_since {raw:?}: expected an RFC 3339 timestamp"),
            })
    }

    /// An id cursor (`starting_after` / `after`): any well-formed id of the entity, existing
    /// or not, meaning "records with greater ids".
    fn after_id(&self, name: &'static str, entity: Entity) -> Result<u64, ApiError> {
        let Some(raw) = self.raw(name) else {
            return Ok(0);
        };
        entity
            .parse_id(raw)
            .map(|n| n as u64)
            .ok_or_else(|| ApiError::InvalidParam {
                param: name,
                message: format!("invalid {name} {raw:?}: expected a {} id", entity.as_str()),
            })
    }
}

fn entity(raw: &str) -> Result<Entity, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// Everything a list handler needs, resolved before the record store is locked.
struct ListRequest {
    entity: Entity,
    since: Option<i64>,
    params: Params,
}

impl ListRequest {
    fn new(raw_entity: &str, query: Option<String>) -> Result<Self, ApiError> {
        let entity = entity(raw_entity)?;
        let params = Params::new(query);
        Ok(ListRequest {
            entity,
            since: params.since()?,
            params,
        })
    }
}

/// Renders one page: `head`, the records as a JSON array body, then `tail`.
fn render_page(
    sh: &Shared,
    view: &View<'_>,
    faults: &Faults,
    entity: Entity,
    numbers: &[u64],
    head: &str,
    tail: &str,
) -> Result<(Vec<u8>, u64), ApiError> {
    let rf = RecordFaults::new(faults, entity, sh.config.seed);
    let mut buf =
        Vec::with_capacity(head.len() + tail.len() + 2 + numbers.len() * entity.approx_json_len());
    buf.extend_from_slice(head.as_bytes());
    buf.push(b'[');
    let count = view
        .write(&mut buf, numbers, &rf)
        .map_err(|_| ApiError::Internal)?;
    buf.push(b']');
    buf.extend_from_slice(tail.as_bytes());
    Ok((buf, count))
}

/// The first `limit` numbers of `iter`, and whether more follow.
pub(crate) fn take_page(iter: impl Iterator<Item = u64>, limit: u64) -> (Vec<u64>, bool) {
    let mut numbers: Vec<u64> = iter.take(limit as usize + 1).collect();
    let more = numbers.len() as u64 > limit;
    numbers.truncate(limit as usize);
    (numbers, more)
}

type Handled = Result<Response, ApiError>;

pub(crate) async fn list_v1(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw_entity): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let req = ListRequest::new(&raw_entity, query)?;
    let (limit, after) = (
        req.params.limit("limit")?,
        req.params.after_id("starting_after", req.entity)?,
    );
    let entity = req.entity;
    sh.store.with_view(entity, req.since, |view| {
        let (numbers, more) = take_page(view.after(after), limit);
        let head = format!(r#"{{"object":"list","url":"/v1/{entity}","has_more":{more},"data":"#);
        let (body, count) = render_page(&sh, view, &faults, entity, &numbers, &head, "}")?;
        Ok(served(json_bytes(StatusCode::OK, body), count))
    })
}

pub(crate) async fn get_one(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path((raw_entity, id)): Path<(String, String)>,
) -> Handled {
    lock(&sh.stats).get_by_id += 1;
    let entity = entity(&raw_entity)?;
    let n = sh.store.lookup(entity, &id).ok_or(ApiError::NotFound)?;
    let rf = RecordFaults::new(&faults, entity, sh.config.seed);
    let value = sh.store.with_view(entity, None, |view| view.value(n, &rf));
    let body = serde_json::to_vec(&value).map_err(|_| ApiError::Internal)?;
    Ok(served(json_bytes(StatusCode::OK, body), 1))
}

/// Opaque cursor for `next-cursor` pagination: the position masked by a seed-derived key plus
/// a check value, so clients can't fabricate or edit it and a mangled one is caught.
fn encode_cursor(seed: u64, entity: Entity, n: u64) -> String {
    let mask = hash3(seed, salt::CURSOR, entity.slot() as u64);
    format!(
        "{:016x}{:08x}",
        n ^ mask,
        hash3(seed ^ mask, salt::CURSOR, n) as u32
    )
}

fn decode_cursor(seed: u64, entity: Entity, raw: &str) -> Option<u64> {
    if raw.len() != 24 || !raw.is_ascii() {
        return None;
    }
    let mask = hash3(seed, salt::CURSOR, entity.slot() as u64);
    let n = u64::from_str_radix(&raw[..16], 16).ok()? ^ mask;
    let check = u32::from_str_radix(&raw[16..], 16).ok()?;
    (check == hash3(seed ^ mask, salt::CURSOR, n) as u32).then_some(n)
}

pub(crate) async fn list_next_cursor(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw_entity): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let req = ListRequest::new(&raw_entity, query)?;
    let entity = req.entity;
    let seed = sh.config.seed;
    let limit = req.params.limit("limit")?;
    let after = match req.params.raw("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(raw) => decode_cursor(seed, entity, raw).ok_or_else(|| ApiError::InvalidParam {
            param: "cursor",
            message: format!("invalid cursor {raw:?}: pass back a next_cursor value unchanged"),
        })?,
    };
    sh.store.with_view(entity, req.since, |view| {
        let (numbers, more) = take_page(view.after(after), limit);
        let next = match numbers.last() {
            Some(&last) if more => format!("\"{}\"", encode_cursor(seed, entity, last)),
            _ => "null".to_owned(),
        };
        let tail = format!(r#","next_cursor":{next}}}"#);
        let (body, count) =
            render_page(&sh, view, &faults, entity, &numbers, r#"{"items":"#, &tail)?;
        Ok(served(json_bytes(StatusCode::OK, body), count))
    })
}

pub(crate) async fn list_page(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw_entity): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let req = ListRequest::new(&raw_entity, query)?;
    let entity = req.entity;
    let page = req.params.number("page", 1, 1, u64::from(u32::MAX))?;
    let per_page = req.params.limit("per_page")?;
    sh.store.with_view(entity, req.since, |view| {
        let total = view.total();
        let offset = (page - 1).saturating_mul(per_page);
        let (numbers, _) = take_page(view.skipping(offset.min(total)), per_page);
        let tail = format!(
            r#","page":{page},"per_page":{per_page},"total_pages":{}}}"#,
            total.div_ceil(per_page)
        );
        let (body, count) = render_page(
            &sh,
            view,
            &faults,
            entity,
            &numbers,
            r#"{"results":"#,
            &tail,
        )?;
        Ok(served(json_bytes(StatusCode::OK, body), count))
    })
}

pub(crate) async fn list_offset(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw_entity): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let req = ListRequest::new(&raw_entity, query)?;
    let entity = req.entity;
    let offset = req.params.number("offset", 0, 0, u64::MAX >> 1)?;
    let limit = req.params.limit("limit")?;
    sh.store.with_view(entity, req.since, |view| {
        let total = view.total();
        let (numbers, _) = take_page(view.skipping(offset.min(total)), limit);
        let tail = format!(r#","offset":{offset},"limit":{limit},"total":{total}}}"#);
        let (body, count) = render_page(
            &sh,
            view,
            &faults,
            entity,
            &numbers,
            r#"{"records":"#,
            &tail,
        )?;
        Ok(served(json_bytes(StatusCode::OK, body), count))
    })
}

pub(crate) async fn list_link(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw_entity): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let req = ListRequest::new(&raw_entity, query)?;
    let entity = req.entity;
    let limit = req.params.limit("limit")?;
    let after = req.params.after_id("after", entity)?;
    sh.store.with_view(entity, req.since, |view| {
        let (numbers, more) = take_page(view.after(after), limit);
        let (body, count) = render_page(&sh, view, &faults, entity, &numbers, "", "")?;
        let mut resp = json_bytes(StatusCode::OK, body);
        if let (Some(&last), true) = (numbers.last(), more) {
            let mut url = Vec::new();
            // Writing to a Vec cannot fail.
            let _ = write!(
                url,
                "<http://{}/alt/link/{entity}?limit={limit}&after={}",
                sh.addr,
                entity.id(last as usize)
            );
            if let Some(since) = req.params.raw("updated_since") {
                let _ = write!(url, "&updated_since={}", percent_encode(since));
            }
            url.extend_from_slice(b">; rel=\"next\"");
            if let Ok(v) = HeaderValue::from_bytes(&url) {
                resp.headers_mut().insert(header::LINK, v);
            }
        }
        Ok(served(resp, count))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        for n in [0, 1, 999, 1_000_000] {
            let c = encode_cursor(42, Entity::Invoices, n);
            assert_eq!(decode_cursor(42, Entity::Invoices, &c), Some(n));
            assert_eq!(decode_cursor(43, Entity::Invoices, &c), None);
            let mut tampered = c.into_bytes();
            tampered[15] = if tampered[15] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(tampered).unwrap_or_default();
            assert_eq!(decode_cursor(42, Entity::Invoices, &tampered), None);
        }
        assert_eq!(decode_cursor(42, Entity::Invoices, "nope"), None);
    }
}
