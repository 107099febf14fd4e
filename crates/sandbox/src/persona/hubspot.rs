//! The HubSpot persona: `/crm/v3/objects/contacts|companies|deals` (+ `/{id}`) with
//! `properties=`, `limit`/`after` paging (`paging.next.after`), `POST …/search` with
//! `filterGroups` (the change filter), private-app tokens or OAuth (`/oauth/authorize`,
//! `POST /oauth/v1/token`), the `X-HubSpot-RateLimit-*` headers and HubSpot's error bodies.
//! Contacts are the sandbox's customers, deals its invoices, and companies are derived: one
//! per five customers, changed whenever one of its customers changes.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Map, Value};

use super::{
    copy_from, header as hdr, iso_ms, iso_ms_of, json, malformed, ok, parse_time, set_path,
    with_headers, Faulty, Handled, Provider,
};
use crate::api::{retry_after_value, Injected};
use crate::faults::{BadKind, Faults};
use crate::model::Entity;
use crate::state::{AuthFailure, Shared};
use crate::store::View;
use crate::util::parse_form;

const DEFAULT_LIMIT: usize = 10;
const MAX_LIST_LIMIT: usize = 100;
const MAX_SEARCH_LIMIT: usize = 200;
/// A private app's burst limit: calls per rolling ten seconds, and per day.
const WINDOW_MAX: u32 = 100;
const WINDOW_MS: u64 = 10_000;
const DAILY_MAX: u32 = 250_000;
/// Customers per derived company.
const PER_COMPANY: u64 = 5;
const COMPANY_SUFFIXES: [&str; 8] = [
    "Supply Co",
    "Consulting",
    "Holdings",
    "Logistics",
    "Design Studio",
    "Bakery",
    "Hardware",
    "Partners",
];

fn error(sh: &Shared, status: StatusCode, category: &str, message: &str) -> Response {
    json(
        status,
        &json!({
            "status": "error",
            "message": message,
            "correlationId": super::request_uuid(sh),
            "category": category,
        }),
    )
}

struct Hubspot(Arc<Shared>);

impl Provider for Hubspot {
    fn admit(&self, sh: &Shared, req: &Request) -> Result<(), Response> {
        sh.authorize_bearer(req.headers(), true, false)
            .map_err(|failure| match failure {
                AuthFailure::Expired => error(
                    sh,
                    StatusCode::UNAUTHORIZED,
                    "EXPIRED_AUTHENTICATION",
                    "The OAuth token used to make this call expired 0 second(s) ago.",
                ),
                _ => error(
                    sh,
                    StatusCode::UNAUTHORIZED,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            })
    }

    fn spend(
        &self,
        sh: &Shared,
    ) -> Result<Vec<(axum::http::HeaderName, axum::http::HeaderValue)>, Response> {
        let b = sh.spend(WINDOW_MAX, Duration::from_millis(WINDOW_MS), DAILY_MAX);
        let headers = vec![
            hdr("x-hubspot-ratelimit-max", WINDOW_MAX),
            hdr("x-hubspot-ratelimit-remaining", b.remaining),
            hdr("x-hubspot-ratelimit-interval-milliseconds", WINDOW_MS),
            hdr("x-hubspot-ratelimit-daily", DAILY_MAX),
            hdr("x-hubspot-ratelimit-daily-remaining", b.day_remaining),
        ];
        if b.exhausted {
            return Err(with_headers(rate_limited(sh), headers));
        }
        Ok(headers)
    }

    fn injected(&self, injected: Injected) -> Response {
        let sh = &self.0;
        match injected {
            Injected::Error(status) => error(
                sh,
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "INTERNAL_ERROR",
                "internal error (an injected fault)",
            ),
            Injected::RateLimited(retry_after) => {
                let mut resp = with_headers(
                    rate_limited(sh),
                    [
                        hdr("x-hubspot-ratelimit-max", WINDOW_MAX),
                        hdr("x-hubspot-ratelimit-remaining", 0),
                        hdr("x-hubspot-ratelimit-interval-milliseconds", WINDOW_MS),
                    ],
                );
                if let Some(v) = retry_after_value(&retry_after) {
                    resp.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, v);
                }
                resp
            }
            Injected::Malformed => malformed(r#"{"results":[{"id":"1","properties":{"email":"#),
        }
    }
}

fn rate_limited(sh: &Shared) -> Response {
    json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": super::request_uuid(sh),
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "publicapi:private-app:syncdesk-sandbox",
            "category": "RATE_LIMITS",
        }),
    )
}

pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let provider = Arc::new(Hubspot(shared.clone()));
    Router::new()
        .route("/crm/v3/objects/{object}", get(list))
        .route("/crm/v3/objects/{object}/search", post(search))
        .route("/crm/v3/objects/{object}/{id}", get(retrieve))
        .route_layer(axum::middleware::from_fn_with_state(
            shared,
            move |State(sh): State<Arc<Shared>>, req: Request, next: Next| {
                let provider = provider.clone();
                async move { super::pipeline(&*provider, sh, req, next).await }
            },
        ))
        .route("/oauth/authorize", get(crate::oauth::authorize))
        .route("/oauth/v1/token", post(token))
        .fallback(unknown)
}

async fn unknown(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    if req.uri().path().starts_with("/crm/") {
        sh.record_request(404, 0);
    }
    error(
        &sh,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("Unable to infer object type from: {}", req.uri().path()),
    )
}

/// The sandbox's token endpoint, with HubSpot's error fields added to a refusal (the OAuth
/// `error` code stays: clients decide on it).
async fn token(state: State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let sh = state.0.clone();
    let resp = crate::oauth::token(state, headers, body).await;
    if resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    let description = value["error_description"]
        .as_str()
        .unwrap_or("token request refused")
        .to_owned();
    let status = match value["error"].as_str() {
        Some("invalid_grant") => "BAD_REFRESH_TOKEN",
        Some("invalid_client") => "BAD_CLIENT_ID",
        _ => "BAD_REQUEST",
    };
    value["status"] = status.into();
    value["message"] = description.into();
    value["correlationId"] = super::request_uuid(&sh).into();
    value["category"] = "VALIDATION_ERROR".into();
    json(parts.status, &value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Object {
    Contacts,
    Companies,
    Deals,
}

impl Object {
    fn parse(raw: &str) -> Option<Object> {
        match raw {
            "contacts" | "0-1" => Some(Object::Contacts),
            "companies" | "0-2" => Some(Object::Companies),
            "deals" | "0-3" => Some(Object::Deals),
            _ => None,
        }
    }

    /// The sandbox collection whose view this object reads.
    fn entity(self) -> Entity {
        match self {
            Object::Contacts | Object::Companies => Entity::Customers,
            Object::Deals => Entity::Invoices,
        }
    }

    fn modified_property(self) -> &'static str {
        match self {
            Object::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// What a request without `properties=` gets, as HubSpot does.
    fn default_properties(self) -> &'static [&'static str] {
        match self {
            Object::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "lastname",
                "lastmodifieddate",
            ],
            Object::Companies => &["createdate", "domain", "hs_lastmodifieddate", "name"],
            Object::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "pipeline",
            ],
        }
    }

    fn count(self, sh: &Shared) -> u64 {
        let n = sh.store.gen.count(self.entity());
        match self {
            Object::Companies => n.div_ceil(PER_COMPANY),
            _ => n,
        }
    }
}

fn company_of(customer: u64) -> u64 {
    (customer - 1) / PER_COMPANY + 1
}

fn company_name(sh: &Shared, k: u64) -> String {
    let first = (k - 1) * PER_COMPANY + 1;
    let r = sh.store.gen.record(Entity::Customers, first, 0).to_value();
    let last = r["name"]
        .as_str()
        .and_then(|n| n.split_once(' '))
        .map_or("Acme", |(_, l)| l)
        .to_owned();
    format!(
        "{last} {}",
        COMPANY_SUFFIXES[super::pick(sh.config.seed, 2, k, COMPANY_SUFFIXES.len())]
    )
}

/// Record `n` of `object` with every property.
fn render_full(sh: &Shared, object: Object, view: &View<'_>, n: u64) -> Value {
    let id = n.to_string();
    match object {
        Object::Contacts => {
            let r = view.plain_value(n);
            let updated = iso_ms_of(view.updated_at(n));
            let name = r["name"].as_str().unwrap_or_default();
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            let created = iso_ms(&r["created_at"]);
            json!({
                "id": id,
                "properties": {
                    "email": r["email"], "firstname": first, "lastname": last,
                    "phone": r["phone"], "company": company_name(sh, company_of(n)),
                    "city": r["address"]["city"], "country": r["address"]["country"],
                    "lifecyclestage": "customer",
                    "createdate": created, "lastmodifieddate": updated, "hs_object_id": id,
                },
                "createdAt": created,
                "updatedAt": updated,
                "archived": false,
            })
        }
        Object::Companies => {
            let count = view.count();
            let first = (n - 1) * PER_COMPANY + 1;
            let last = (n * PER_COMPANY).min(count);
            let updated = (first..=last)
                .map(|m| view.updated_at(m))
                .max()
                .unwrap_or_default();
            let r = view.plain_value(first);
            let name = company_name(sh, n);
            let slug: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let created = iso_ms(&r["created_at"]);
            let updated = iso_ms_of(updated);
            json!({
                "id": id,
                "properties": {
                    "name": name, "domain": format!("{slug}-{n}.example.com"),
                    "phone": r["phone"], "city": r["address"]["city"],
                    "country": r["address"]["country"], "industry": "RETAIL",
                    "createdate": created, "hs_lastmodifieddate": updated, "hs_object_id": id,
                },
                "createdAt": created,
                "updatedAt": updated,
                "archived": false,
            })
        }
        Object::Deals => {
            let r = view.plain_value(n);
            let updated = iso_ms_of(view.updated_at(n));
            let amount = r["amount_cents"].as_u64().map_or(Value::Null, |c| {
                format!("{}.{:02}", c / 100, c % 100).into()
            });
            let stage = match r["status"].as_str() {
                Some("draft") => "appointmentscheduled",
                Some("paid") => "closedwon",
                Some("void") => "closedlost",
                _ => "contractsent",
            };
            let created = iso_ms(&r["issued_at"]);
            json!({
                "id": id,
                "properties": {
                    "dealname": r["number"], "amount": amount, "dealstage": stage,
                    "pipeline": "default", "closedate": created,
                    "createdate": created, "hs_lastmodifieddate": updated, "hs_object_id": id,
                },
                "createdAt": created,
                "updatedAt": updated,
                "archived": false,
            })
        }
    }
}

/// Keeps the requested properties (or the defaults) plus what HubSpot always returns.
fn select(object: Object, mut value: Value, wanted: Option<&BTreeSet<String>>) -> Value {
    if let Some(Value::Object(props)) = value.get_mut("properties") {
        let keep = |k: &str| {
            k == "hs_object_id"
                || k == "createdate"
                || k == object.modified_property()
                || match wanted {
                    Some(w) => w.contains(k),
                    None => object.default_properties().contains(&k),
                }
        };
        let kept: Map<String, Value> = std::mem::take(props)
            .into_iter()
            .filter(|(k, _)| keep(k))
            .collect();
        *props = kept;
    }
    value
}

fn bad(entity: Entity, kind: BadKind, v: &mut Value, neighbour: &dyn Fn() -> Value) {
    use BadKind::*;
    match (entity, kind) {
        (Entity::Customers, NullRequired) => set_path(v, "createdAt", Value::Null),
        (Entity::Customers, InvalidDate) => set_path(v, "createdAt", "31/02/2026".into()),
        (Entity::Customers, DuplicateKey) => copy_from(v, "properties.email", &neighbour()),
        (Entity::Customers, WrongType) => set_path(v, "properties.phone", 5_551_234.into()),
        (Entity::Invoices, NullRequired) => set_path(v, "properties.dealname", Value::Null),
        (Entity::Invoices, InvalidDate) => {
            set_path(v, "properties.closedate", "31/02/2026".into());
        }
        (Entity::Invoices, DuplicateKey) => copy_from(v, "properties.dealname", &neighbour()),
        (Entity::Invoices, WrongType) => set_path(v, "properties.dealname", 12_345.into()),
        _ => {}
    }
}

/// Record `n` as served: selected properties, then record faults (not for the derived
/// companies).
fn serve(
    sh: &Shared,
    faults: &Faults,
    object: Object,
    view: &View<'_>,
    n: u64,
    wanted: Option<&BTreeSet<String>>,
) -> Value {
    let render = |view: &View<'_>, n: u64| select(object, render_full(sh, object, view, n), wanted);
    if object == Object::Companies {
        return render(view, n);
    }
    Faulty::new(faults, object.entity(), sh.config.seed).serve(view, n, &render, &bad)
}

fn properties_param(raw: Option<&String>) -> Option<BTreeSet<String>> {
    raw.map(|p| {
        p.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn validation(sh: &Shared, message: &str) -> Response {
    error(sh, StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn unknown_object(sh: &Shared, raw: &str) -> Response {
    error(
        sh,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &format!("Unable to infer object type from: {raw}"),
    )
}

async fn list(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let object = Object::parse(&raw).ok_or_else(|| unknown_object(&sh, &raw))?;
    let params = parse_form(query.as_deref().unwrap_or_default());
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
            .ok_or_else(|| validation(&sh, &format!("limit {l:?} must be between 1 and 100")))?,
    };
    let after = match params.get("after").filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| validation(&sh, &format!("after {a:?} is not a paging cursor")))?,
    };
    let wanted = properties_param(params.get("properties"));
    let archived = params.get("archived").is_some_and(|a| a == "true");
    let count = object.count(&sh);
    let numbers: Vec<u64> = if archived {
        Vec::new()
    } else {
        (after + 1..=count).take(limit + 1).collect()
    };
    let more = numbers.len() > limit;
    let results: Vec<Value> = sh.store.with_view(object.entity(), None, |view| {
        numbers
            .iter()
            .take(limit)
            .map(|&n| serve(&sh, &faults, object, view, n, wanted.as_ref()))
            .collect()
    });
    let served = results.len() as u64;
    let mut body = json!({ "results": results });
    if more {
        let last = numbers[limit - 1];
        body["paging"] = json!({"next": {
            "after": last.to_string(),
            "link": format!("https://api.hubapi.com/crm/v3/objects/{raw}?after={last}"),
        }});
    }
    Ok(ok(&body, served))
}

async fn retrieve(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path((raw, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Handled {
    let object = Object::parse(&raw).ok_or_else(|| unknown_object(&sh, &raw))?;
    crate::state::lock(&sh.stats).get_by_id += 1;
    let params = parse_form(query.as_deref().unwrap_or_default());
    let wanted = properties_param(params.get("properties"));
    let n = id
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=object.count(&sh)).contains(n))
        .ok_or_else(|| {
            json(
                StatusCode::NOT_FOUND,
                &json!({
                    "status": "error",
                    "message": "Object not found.  objectId are usually numeric.",
                    "correlationId": super::request_uuid(&sh),
                    "context": {"id": [id]},
                    "category": "OBJECT_NOT_FOUND",
                }),
            )
        })?;
    let body = sh.store.with_view(object.entity(), None, |view| {
        serve(&sh, &faults, object, view, n, wanted.as_ref())
    });
    Ok(ok(&body, 1))
}

/// Properties compared as times (filter values may be epoch milliseconds or RFC 3339).
fn is_time(property: &str) -> bool {
    matches!(
        property,
        "createdate" | "lastmodifieddate" | "hs_lastmodifieddate" | "closedate"
    )
}

fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_millis())
                .or_else(|| parse_time(s).map(|t| t * 1000))
        }),
        _ => None,
    }
}

fn compare(property: &str, actual: &Value, wanted: &Value) -> Option<Ordering> {
    if is_time(property) {
        return Some(millis(actual)?.cmp(&millis(wanted)?));
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let (a, b) = (text(actual)?, text(wanted)?);
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())),
    }
}

/// Whether a record's properties pass one filter; `Err` names an unknown operator.
fn passes(props: &Value, filter: &Value) -> Result<bool, String> {
    let property = filter["propertyName"].as_str().unwrap_or_default();
    let actual = props.get(property).filter(|v| !v.is_null());
    let op = filter["operator"].as_str().unwrap_or("EQ");
    let cmp = |wanted: &Value| actual.and_then(|a| compare(property, a, wanted));
    Ok(match op {
        "HAS_PROPERTY" => actual.is_some(),
        "NOT_HAS_PROPERTY" => actual.is_none(),
        "EQ" => cmp(&filter["value"]) == Some(Ordering::Equal),
        "NEQ" => cmp(&filter["value"]) != Some(Ordering::Equal),
        "LT" => cmp(&filter["value"]) == Some(Ordering::Less),
        "LTE" => matches!(
            cmp(&filter["value"]),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "GT" => cmp(&filter["value"]) == Some(Ordering::Greater),
        "GTE" => matches!(
            cmp(&filter["value"]),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "BETWEEN" => {
            matches!(
                cmp(&filter["value"]),
                Some(Ordering::Greater | Ordering::Equal)
            ) && matches!(
                cmp(&filter["highValue"]),
                Some(Ordering::Less | Ordering::Equal)
            )
        }
        "IN" => filter["values"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(|w| cmp(w) == Some(Ordering::Equal))),
        "NOT_IN" => !filter["values"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(|w| cmp(w) == Some(Ordering::Equal))),
        other => return Err(format!("operator {other:?} is not supported")),
    })
}

/// A search's `sorts`: `["prop"]`, `["-prop"]` or `[{"propertyName", "direction"}]`.
fn sort_key(sorts: &Value) -> Option<(String, bool)> {
    let first = sorts.as_array()?.first()?;
    match first {
        Value::String(s) => Some(match s.strip_prefix('-') {
            Some(p) => (p.to_owned(), true),
            None => (s.clone(), false),
        }),
        Value::Object(o) => Some((
            o.get("propertyName")?.as_str()?.to_owned(),
            o.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
        )),
        _ => None,
    }
}

async fn search(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Handled {
    let object = Object::parse(&raw).ok_or_else(|| unknown_object(&sh, &raw))?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| validation(&sh, &format!("Invalid input JSON: {e}")))?;
    let limit = match &request["limit"] {
        Value::Null => DEFAULT_LIMIT,
        v => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(|l| l as usize)
            .filter(|l| (1..=MAX_SEARCH_LIMIT).contains(l))
            .ok_or_else(|| validation(&sh, "limit must be between 1 and 200"))?,
    };
    let offset = match &request["after"] {
        Value::Null => 0,
        v => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| validation(&sh, "after must be a paging cursor"))? as usize,
    };
    let wanted: Option<BTreeSet<String>> = request["properties"].as_array().map(|ps| {
        ps.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let groups: Vec<Vec<Value>> = request["filterGroups"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| g["filters"].as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let sort = sort_key(&request["sorts"]);
    let count = object.count(&sh);
    let outcome: Result<(Vec<Value>, usize), String> =
        sh.store.with_view(object.entity(), None, |view| {
            let mut matched: Vec<(Value, u64)> = Vec::new();
            for n in 1..=count {
                let full = render_full(&sh, object, view, n);
                let props = &full["properties"];
                let mut keep = groups.is_empty();
                for group in &groups {
                    let mut all = true;
                    for f in group {
                        all &= passes(props, f)?;
                    }
                    if all {
                        keep = true;
                        break;
                    }
                }
                if keep {
                    let key = sort
                        .as_ref()
                        .map_or(Value::Null, |(p, _)| props[p.as_str()].clone());
                    matched.push((key, n));
                }
            }
            if let Some((property, descending)) = &sort {
                matched.sort_by(|a, b| {
                    let o = compare(property, &a.0, &b.0)
                        .unwrap_or(Ordering::Equal)
                        .then(a.1.cmp(&b.1));
                    if *descending {
                        o.reverse()
                    } else {
                        o
                    }
                });
            }
            let total = matched.len();
            let page = matched
                .iter()
                .skip(offset)
                .take(limit)
                .map(|&(_, n)| serve(&sh, &faults, object, view, n, wanted.as_ref()))
                .collect();
            Ok((page, total))
        });
    let (results, total) = outcome.map_err(|e| validation(&sh, &e))?;
    let served = results.len() as u64;
    let mut body = json!({"total": total, "results": results});
    if offset + (served as usize) < total {
        body["paging"] = json!({"next": {"after": (offset + served as usize).to_string()}});
    }
    Ok(ok(&body, served))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compare_times_numbers_and_text() {
        let props = json!({"lastmodifieddate": "2026-01-01T00:00:05.000Z", "amount": "12.50", "dealstage": "closedwon"});
        let f = |op: &str, v: Value| json!({"propertyName": "lastmodifieddate", "operator": op, "value": v});
        assert_eq!(passes(&props, &f("GTE", json!("1767225605000"))), Ok(true));
        assert_eq!(
            passes(&props, &f("GTE", json!(1_767_225_606_000_i64))),
            Ok(false)
        );
        assert_eq!(
            passes(&props, &f("GT", json!("2026-01-01T00:00:04Z"))),
            Ok(true)
        );
        let amount = json!({"propertyName": "amount", "operator": "LT", "value": "100"});
        assert_eq!(passes(&props, &amount), Ok(true));
        let stage = json!({"propertyName": "dealstage", "operator": "EQ", "value": "CLOSEDWON"});
        assert_eq!(passes(&props, &stage), Ok(true));
        assert!(passes(&props, &json!({"propertyName": "x", "operator": "LIKE"})).is_err());
    }

    #[test]
    fn sorts() {
        assert_eq!(
            sort_key(&json!(["lastmodifieddate"])),
            Some(("lastmodifieddate".to_owned(), false))
        );
        assert_eq!(
            sort_key(&json!([{"propertyName": "x", "direction": "DESCENDING"}])),
            Some(("x".to_owned(), true))
        );
    }
}
