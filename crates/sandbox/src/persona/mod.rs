//! Provider personas: the sandbox's generated records served in the shape of a real provider's
//! API (Stripe, Xero, HubSpot) — its paths, paging, change filters, auth, error bodies and
//! rate-limit headers — with the same switchable faults, so the built-in catalog connectors can
//! be tested end to end and their exchanges checked against the provider's published contract.
//! See `docs/sandbox.md`, "Personas".

// A refusal here is a whole provider-shaped response, built at most once per request; boxing
// it would only add noise.
#![allow(clippy::result_large_err)]

mod hubspot;
mod stripe;
mod xero;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::api::{inject_faults, Injected, Served};
use crate::faults::{BadKind, Faults, RecordFaults};
use crate::hash::hash3;
use crate::model::Entity;
use crate::state::{lock, AuthFailure, Shared};
use crate::store::View;

/// Which provider a sandbox plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persona {
    Stripe,
    Xero,
    Hubspot,
}

/// Returned when a string names no [`Persona`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown persona {0:?} (expected stripe, xero or hubspot)")]
pub struct UnknownPersona(pub String);

impl Persona {
    pub const ALL: [Persona; 3] = [Persona::Stripe, Persona::Xero, Persona::Hubspot];

    pub const fn as_str(self) -> &'static str {
        match self {
            Persona::Stripe => "stripe",
            Persona::Xero => "xero",
            Persona::Hubspot => "hubspot",
        }
    }

    /// The API key a persona accepts when the configuration names none: Stripe's secret key,
    /// HubSpot's private-app token. Xero has no API keys (OAuth only).
    pub const fn default_api_key(self) -> Option<&'static str> {
        match self {
            Persona::Stripe => Some("sk_test_syncdesk_sandbox"),
            Persona::Hubspot => Some("pat-na1-syncdesk-sandbox"),
            Persona::Xero => None,
        }
    }

    /// The id this persona serves for record `n` of `entity` (`None`: the persona has no such
    /// collection). Record faults and the admin endpoints keep using the sandbox's own ids.
    pub fn served_id(self, seed: u64, entity: Entity, n: usize) -> String {
        match self {
            Persona::Stripe => stripe::served_id(entity, n as u64),
            Persona::Xero => xero::uuid(seed, entity.slot() as u64, n as u64),
            Persona::Hubspot => n.to_string(),
        }
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Persona {
    type Err = UnknownPersona;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Persona::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPersona(s.to_owned()))
    }
}

/// The routes of a persona (admin endpoints are added by the caller).
pub(crate) fn router(persona: Persona, shared: Arc<Shared>) -> Router<Arc<Shared>> {
    match persona {
        Persona::Stripe => stripe::router(shared),
        Persona::Xero => xero::router(shared),
        Persona::Hubspot => hubspot::router(shared),
    }
}

/// How many requests a provider allows per window, and what it says about it.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    start: Option<Instant>,
    count: u32,
    day_count: u32,
}

/// The outcome of counting one request against a provider's window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Requests left in the window after this one (0 when refused).
    pub(crate) remaining: u32,
    pub(crate) day_remaining: u32,
    /// Whether this request is over the limit.
    pub(crate) exhausted: bool,
    /// Until the window resets.
    pub(crate) reset_in: Duration,
}

impl Shared {
    /// Counts a request against a rolling `window` of `max` requests (on tokio's clock, so
    /// paused-time tests roll it instantly).
    pub(crate) fn spend(&self, max: u32, window: Duration, day_max: u32) -> Budget {
        let now = Instant::now();
        let mut w = lock(&self.window);
        let start = match w.start {
            Some(start) if now < start + window => start,
            _ => {
                w.count = 0;
                w.start = Some(now);
                now
            }
        };
        let exhausted = w.count >= max || w.day_count >= day_max;
        if !exhausted {
            w.count += 1;
            w.day_count += 1;
        }
        Budget {
            remaining: max.saturating_sub(w.count),
            day_remaining: day_max.saturating_sub(w.day_count),
            exhausted,
            reset_in: (start + window).saturating_duration_since(now),
        }
    }

    /// Checks `Authorization: Bearer <token>` (or HTTP Basic with the key as user name when
    /// `basic_key`): an OAuth access token issued by this sandbox, or the configured API key.
    pub(crate) fn authorize_bearer(
        &self,
        headers: &HeaderMap,
        accept_key: bool,
        basic_key: bool,
    ) -> Result<(), AuthFailure> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthFailure::Missing)?;
        let (scheme, credential) = value.split_once(' ').ok_or(AuthFailure::Invalid)?;
        let credential = credential.trim();
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            credential.to_owned()
        } else if basic_key && scheme.eq_ignore_ascii_case("basic") {
            let raw = crate::util::base64_decode(credential).ok_or(AuthFailure::Invalid)?;
            let pair = String::from_utf8(raw).map_err(|_| AuthFailure::Invalid)?;
            pair.split_once(':')
                .map_or(pair.clone(), |(u, _)| u.to_owned())
        } else {
            return Err(AuthFailure::Invalid);
        };
        let auth = lock(&self.auth);
        if accept_key && self.config.api_key.as_deref() == Some(token.as_str()) {
            return if auth.credentials_revoked {
                Err(AuthFailure::Revoked)
            } else {
                Ok(())
            };
        }
        match auth.access.get(&token) {
            None => Err(AuthFailure::Invalid),
            Some(&expires) if Instant::now() >= expires => Err(AuthFailure::Expired),
            Some(_) => Ok(()),
        }
    }
}

/// What each persona says when the common data-request pipeline refuses a request.
pub(crate) trait Provider: Send + Sync + 'static {
    /// Auth (and anything else checked before faults, such as Xero's tenant header).
    fn admit(&self, sh: &Shared, req: &Request) -> Result<(), Response>;
    /// Counts the request against the provider's rate limit; `Err` is its 429.
    fn spend(&self, _sh: &Shared) -> Result<Vec<(HeaderName, HeaderValue)>, Response> {
        Ok(Vec::new())
    }
    fn injected(&self, injected: Injected) -> Response;
}

/// The pipeline every persona data request goes through, in the documented order: auth, the
/// provider's own rate limit, injected faults, the handler; then rate-limit headers and stats.
pub(crate) async fn pipeline<P: Provider>(
    provider: &P,
    sh: Arc<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut extra = Vec::new();
    let resp = match provider.admit(&sh, &req) {
        Err(resp) => resp,
        Ok(()) => match provider.spend(&sh) {
            Err(resp) => resp,
            Ok(headers) => {
                extra = headers;
                match inject_faults(&sh).await {
                    Err(injected) => provider.injected(injected),
                    Ok(faults) => {
                        req.extensions_mut().insert(faults);
                        next.run(req).await
                    }
                }
            }
        },
    };
    let mut resp = resp;
    for (name, value) in extra {
        resp.headers_mut().entry(name).or_insert(value);
    }
    let records = resp.extensions().get::<Served>().map_or(0, |s| s.0);
    sh.record_request(resp.status().as_u16(), records);
    resp
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// A successful response carrying `records` records (for the stats).
pub(crate) fn ok(body: &Value, records: u64) -> Response {
    crate::api::served(json(StatusCode::OK, body), records)
}

/// The malformed-body fault: a 200 cut off mid-record, in whatever shape.
pub(crate) fn malformed(prefix: &'static str) -> Response {
    let mut resp = Response::new(Body::from(prefix));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

pub(crate) fn header(name: &'static str, value: impl ToString) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("0")),
    )
}

pub(crate) fn with_headers(
    mut resp: Response,
    headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
) -> Response {
    for (name, value) in headers {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// A deterministic id for correlation / request ids in error bodies.
pub(crate) fn request_uuid(sh: &Shared) -> String {
    let n = sh
        .request_counter
        .load(std::sync::atomic::Ordering::Relaxed);
    xero::uuid(sh.config.seed ^ 0x5eed, 7, n)
}

/// How a persona corrupts a rendered record for one bad-record kind; the last argument
/// renders the neighbouring record (for duplicate keys).
pub(crate) type BadFn<'a> = dyn Fn(Entity, BadKind, &mut Value, &dyn Fn() -> Value) + 'a;

/// Record faults for one persona collection, resolved once per request.
pub(crate) struct Faulty<'a> {
    rf: RecordFaults<'a>,
    entity: Entity,
}

impl<'a> Faulty<'a> {
    pub(crate) fn new(faults: &'a Faults, entity: Entity, seed: u64) -> Self {
        Faulty {
            rf: RecordFaults::new(faults, entity, seed),
            entity,
        }
    }

    /// Renders record `n` with `render`, then corrupts it per its bad kinds (each persona says
    /// which of its fields a kind hits, in `bad`) and applies schema drift (top-level keys, and
    /// for HubSpot also keys inside `properties`).
    pub(crate) fn serve(
        &self,
        view: &View<'_>,
        n: u64,
        render: &dyn Fn(&View<'_>, u64) -> Value,
        bad: &BadFn<'_>,
    ) -> Value {
        let mut value = render(view, n);
        for kind in self.rf.kinds(n) {
            if !kind.applies_to(self.entity) {
                continue;
            }
            let count = view_count(view);
            // Record 1 has no predecessor, so its duplicate copies record 2.
            let neighbour = if n > 1 { n - 1 } else { n + 1 };
            let neighbour_value = || {
                if neighbour <= count {
                    render(view, neighbour)
                } else {
                    Value::Null
                }
            };
            bad(self.entity, kind, &mut value, &neighbour_value);
        }
        self.rf.apply_drift(&mut value);
        if let Some(props) = value.get_mut("properties") {
            self.rf.apply_drift(props);
        }
        value
    }
}

fn view_count(view: &View<'_>) -> u64 {
    view.count()
}

/// Drops `null` members of objects, recursively: providers omit what they don't have, and
/// the published contracts mark few fields nullable (openapi-core rejects `null` for a
/// nullable `anyOf`).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Sets the value at a dotted path (objects only), creating nothing.
pub(crate) fn set_path(value: &mut Value, path: &str, new: Value) {
    let mut cur = value;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            if let Value::Object(map) = cur {
                map.insert(part.to_owned(), new);
            }
            return;
        }
        cur = match cur {
            Value::Object(map) => match map.get_mut(part) {
                Some(v) => v,
                None => return,
            },
            Value::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(v) => v,
                    None => return,
                }
            }
            _ => return,
        };
    }
}

/// The value at a dotted path (array indices allowed).
pub(crate) fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |cur, part| match cur {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Copies the neighbour's value at `path` into `value` (the duplicate-key fault).
pub(crate) fn copy_from(value: &mut Value, path: &str, neighbour: &Value) {
    if let Some(v) = get_path(neighbour, path) {
        set_path(value, path, v.clone());
    }
}

/// Cents (a JSON integer) as a decimal number of currency units; anything else unchanged.
pub(crate) fn units(cents: &Value) -> Value {
    match cents.as_u64() {
        Some(c) => {
            serde_json::Number::from_f64(c as f64 / 100.0).map_or(Value::Null, Value::Number)
        }
        None => cents.clone(),
    }
}

/// Seconds since the epoch of a `YYYY-MM-DD` day or RFC 3339 time; anything else unchanged
/// (so a corrupted date stays visibly corrupted in the provider's shape).
pub(crate) fn unix(v: &Value) -> Value {
    match v.as_str().and_then(parse_time) {
        Some(secs) => Value::from(secs),
        None => v.clone(),
    }
}

pub(crate) fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// `2026-01-01T00:00:01.000Z` (HubSpot's timestamps) from a day or RFC 3339 value.
pub(crate) fn iso_ms(v: &Value) -> Value {
    match v.as_str().and_then(parse_time) {
        Some(secs) => Value::String(iso_ms_of(secs)),
        None => v.clone(),
    }
}

pub(crate) fn iso_ms_of(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Xero's Microsoft JSON date, `/Date(1767225601000+0000)/`.
pub(crate) fn msjson(v: &Value) -> Value {
    match v.as_str().and_then(parse_time) {
        Some(secs) => Value::String(msjson_of(secs)),
        None => v.clone(),
    }
}

pub(crate) fn msjson_of(secs: i64) -> String {
    format!("/Date({}+0000)/", secs * 1000)
}

/// A salt for persona-derived values, distinct from the generator's.
pub(crate) fn pick(seed: u64, what: u64, n: u64, len: usize) -> usize {
    (hash3(seed ^ 0x9e25_0a1a, what, n) % len as u64) as usize
}

/// The part of a `Response` a handler returns on refusal.
pub(crate) type Handled = Result<Response, Response>;
