//! The Stripe persona: `/v1/customers|products|invoices|charges` (+ `/{id}`) as Stripe list
//! objects with `starting_after` cursors, `/v1/events` (the change feed: `type=customer.*`,
//! `created[gte]=…`), secret-key auth (Bearer or Basic) and Stripe's error bodies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Value};

use super::{copy_from, json, malformed, ok, set_path, unix, Faulty, Handled, Provider};
use crate::api::{retry_after_value, take_page, Injected};
use crate::faults::{BadKind, Faults};
use crate::model::Entity;
use crate::state::{AuthFailure, Shared};
use crate::store::View;
use crate::time::EPOCH;
use crate::util::parse_form;

const DEFAULT_LIMIT: u64 = 10;
const MAX_LIMIT: u64 = 100;
/// The API version events say they were rendered with.
const API_VERSION: &str = "2024-06-20";

struct Stripe;

fn error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Response {
    let mut e = json!({"type": kind, "message": message});
    if let Some(code) = code {
        e["code"] = code.into();
        e["doc_url"] = format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        )
        .into();
    }
    if let Some(param) = param {
        e["param"] = param.into();
    }
    json(status, &json!({ "error": e }))
}

impl Provider for Stripe {
    fn admit(&self, sh: &Shared, req: &Request) -> Result<(), Response> {
        sh.authorize_bearer(req.headers(), true, true).map_err(|failure| {
            let (code, message) = match failure {
                AuthFailure::Missing => (None, "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."),
                AuthFailure::Revoked | AuthFailure::Expired => (Some("api_key_expired"), "Expired API Key provided. This key was rolled or revoked."),
                AuthFailure::Invalid => (None, "Invalid API Key provided."),
            };
            let mut resp = error(StatusCode::UNAUTHORIZED, "invalid_request_error", code, message, None);
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"Stripe\""),
            );
            resp
        })
    }

    fn injected(&self, injected: Injected) -> Response {
        match injected {
            Injected::Error(status) => error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "api_error",
                None,
                "Sorry, something went wrong on our end (an injected fault).",
                None,
            ),
            Injected::RateLimited(retry_after) => {
                let mut resp = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_request_error",
                    Some("rate_limit"),
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    None,
                );
                if let Some(v) = retry_after_value(&retry_after) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                resp
            }
            Injected::Malformed => malformed(r#"{"object":"list","data":[{"id":"cus_000"#),
        }
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/events", get(events))
        .route("/v1/{collection}", get(list))
        .route("/v1/{collection}/{id}", get(retrieve))
        .route_layer(axum::middleware::from_fn_with_state(
            shared,
            |State(sh): State<Arc<Shared>>, req: Request, next: Next| async move {
                super::pipeline(&Stripe, sh, req, next).await
            },
        ))
        .fallback(unknown_url)
}

async fn unknown_url(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    sh.record_request(404, 0);
    let message = format!(
        "Unrecognized request URL ({}: {}).",
        req.method(),
        req.uri().path()
    );
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &message,
        None,
    )
}

fn collection(name: &str) -> Option<Entity> {
    match name {
        "customers" => Some(Entity::Customers),
        "products" => Some(Entity::Products),
        "invoices" => Some(Entity::Invoices),
        "charges" => Some(Entity::Payments),
        _ => None,
    }
}

const fn object(entity: Entity) -> &'static str {
    match entity {
        Entity::Customers => "customer",
        Entity::Products => "product",
        Entity::Invoices => "invoice",
        Entity::Payments => "charge",
    }
}

const fn prefix(entity: Entity) -> &'static str {
    match entity {
        Entity::Payments => "ch_",
        other => other.id_prefix(),
    }
}

pub(super) fn served_id(entity: Entity, n: u64) -> String {
    let id = entity.id(n as usize);
    format!("{}{}", prefix(entity), &id[entity.id_prefix().len()..])
}

fn parse_served(entity: Entity, id: &str) -> Option<u64> {
    let digits = id.strip_prefix(prefix(entity))?;
    entity
        .parse_id(&format!("{}{digits}", entity.id_prefix()))
        .map(|n| n as u64)
}

fn limit(params: &HashMap<String, String>) -> Result<u64, Response> {
    let Some(raw) = params.get("limit") else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_integer"),
                &format!("Invalid integer: {raw}; limit must be between 1 and 100."),
                Some("limit"),
            )
        })
}

fn missing(entity: Entity, id: &str, param: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {}: '{id}'", object(entity)),
        Some(param),
    )
}

/// A Stripe object rendered from the sandbox record `n`.
fn render(sh: &Shared, entity: Entity, view: &View<'_>, n: u64) -> Value {
    let mut value = render_all(sh, entity, view, n);
    super::strip_nulls(&mut value);
    value
}

fn render_all(sh: &Shared, entity: Entity, view: &View<'_>, n: u64) -> Value {
    let r = view.plain_value(n);
    let id = served_id(entity, n);
    match entity {
        Entity::Customers => {
            let meta = &r["metadata"];
            json!({
                "id": id, "object": "customer",
                "address": r["address"],
                "balance": 0,
                "created": unix(&r["created_at"]),
                "currency": r["currency"],
                "default_source": null,
                "delinquent": false,
                "description": null,
                "email": r["email"],
                "invoice_prefix": format!("{:08X}", n),
                "livemode": false,
                "metadata": {
                    "segment": meta["segment"], "source": meta["source"], "plan": meta["plan"],
                    "employees": meta["employees"].as_u64().map(|e| e.to_string()),
                },
                "name": r["name"],
                "next_invoice_sequence": 1,
                "phone": r["phone"],
                "preferred_locales": [],
                "shipping": null,
                "tax_exempt": if r["tax_exempt"] == true { "exempt" } else { "none" },
            })
        }
        Entity::Products => json!({
            "id": id, "object": "product",
            "active": r["active"],
            "created": EPOCH - 400 * 86_400 + n as i64 * 60,
            "default_price": null,
            "description": format!("{} ({})", r["name"].as_str().unwrap_or_default(), r["sku"].as_str().unwrap_or_default()),
            "images": [],
            "livemode": false,
            "marketing_features": [],
            "metadata": {"sku": r["sku"]},
            "name": r["name"],
            "package_dimensions": null,
            "shippable": null,
            "statement_descriptor": null,
            "tax_code": null,
            "unit_label": null,
            "updated": view.updated_at(n),
            "url": null,
        }),
        Entity::Invoices => {
            let amount = r["amount_cents"].as_u64().unwrap_or_default();
            let status = r["status"].as_str().unwrap_or("open");
            let paid = status == "paid";
            let created = unix(&r["issued_at"]);
            let at = created.as_i64();
            let paid_at = if paid {
                at.map(|t| t + 3 * 86_400)
            } else {
                None
            };
            json!({
                "id": id, "object": "invoice",
                "account_country": "US",
                "amount_due": amount,
                "amount_paid": if paid { amount } else { 0 },
                "amount_remaining": if paid { 0 } else { amount },
                "amount_shipping": 0,
                "attempt_count": u8::from(paid),
                "attempted": paid,
                "automatic_tax": {"enabled": false, "liability": null, "status": null},
                "billing_reason": "manual",
                "collection_method": "send_invoice",
                "created": created,
                "currency": r["currency"],
                "customer": r["customer"],
                "default_tax_rates": [],
                "description": null,
                "due_date": at.map(|t| t + 30 * 86_400),
                "lines": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/invoices/{id}/lines")},
                "livemode": false,
                "metadata": {},
                "number": r["number"],
                "paid": paid,
                "paid_out_of_band": false,
                "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
                "period_end": at,
                "period_start": at,
                "post_payment_credit_notes_amount": 0,
                "pre_payment_credit_notes_amount": 0,
                "starting_balance": 0,
                "status": status,
                "status_transitions": {
                    "finalized_at": if status == "draft" { None } else { at },
                    "marked_uncollectible_at": null,
                    "paid_at": paid_at,
                    "voided_at": if status == "void" { at } else { None },
                },
                "subtotal": amount,
                "tax": null,
                "total": amount,
                "total_tax_amounts": [],
            })
        }
        Entity::Payments => {
            let amount = r["amount_cents"].as_u64().unwrap_or_default();
            let status = match super::pick(sh.config.seed, 1, n, 20) {
                0 => "failed",
                1 => "pending",
                _ => "succeeded",
            };
            let captured = status == "succeeded";
            let refunded_part = if captured && n % 25 == 0 {
                amount / 4
            } else {
                0
            };
            let invoice = r["invoice"].as_str().unwrap_or_default();
            let customer = Entity::Invoices
                .parse_id(invoice)
                .filter(|&i| i as u64 <= sh.store.gen.count(Entity::Invoices))
                .map_or(Value::Null, |i| {
                    sh.store
                        .gen
                        .record(Entity::Invoices, i as u64, 0)
                        .to_value()["customer"]
                        .clone()
                });
            let method = match r["method"].as_str() {
                Some("ach") => "ach_debit",
                Some("cash") => "customer_balance",
                _ => "card",
            };
            json!({
                "id": id, "object": "charge",
                "amount": amount,
                "amount_captured": if captured { amount } else { 0 },
                "amount_refunded": refunded_part,
                "balance_transaction": null,
                "billing_details": {"address": null, "email": null, "name": null, "phone": null},
                "captured": captured,
                "created": unix(&r["paid_at"]),
                "currency": "usd",
                "customer": customer,
                "description": null,
                "disputed": false,
                "failure_code": if status == "failed" { Some("card_declined") } else { None },
                "failure_message": if status == "failed" { Some("Your card was declined.") } else { None },
                "invoice": invoice,
                "livemode": false,
                "metadata": {},
                "paid": captured,
                "payment_method_details": {"type": method},
                "receipt_email": null,
                "refunded": false,
                "status": status,
            })
        }
    }
}

/// Which field each bad-record kind hits in Stripe's shapes (see docs/sandbox.md).
fn bad(entity: Entity, kind: BadKind, v: &mut Value, neighbour: &dyn Fn() -> Value) {
    use BadKind::*;
    let as_text = |v: &Value, field: &str| {
        v[field].as_u64().map_or(Value::from("12.50"), |c| {
            Value::from(format!("{}.{:02}", c / 100, c % 100))
        })
    };
    match (entity, kind) {
        (Entity::Customers, NullRequired) => set_path(v, "created", Value::Null),
        (Entity::Customers, InvalidDate) => set_path(v, "created", "31/02/2026".into()),
        (Entity::Customers, DuplicateKey) => copy_from(v, "email", &neighbour()),
        (Entity::Customers, WrongType) => set_path(v, "phone", 5_551_234.into()),
        (Entity::Products, NullRequired) => set_path(v, "name", Value::Null),
        (Entity::Products, InvalidDate) => set_path(v, "created", "not-a-date".into()),
        (Entity::Products, DuplicateKey) => copy_from(v, "name", &neighbour()),
        (Entity::Products, WrongType) => set_path(v, "active", "yes".into()),
        (Entity::Invoices, NullRequired) => set_path(v, "total", Value::Null),
        (Entity::Invoices, InvalidDate) => set_path(v, "created", "31/02/2026".into()),
        (Entity::Invoices, DanglingReference) => set_path(v, "customer", "cus_99999999".into()),
        (Entity::Invoices, DuplicateKey) => copy_from(v, "number", &neighbour()),
        (Entity::Invoices, WrongType) => {
            let text = as_text(v, "total");
            set_path(v, "total", text);
        }
        (Entity::Payments, NullRequired) => set_path(v, "amount", Value::Null),
        (Entity::Payments, InvalidDate) => set_path(v, "created", "31/02/2026".into()),
        (Entity::Payments, DanglingReference) => set_path(v, "customer", "cus_99999999".into()),
        (Entity::Payments, WrongType) => {
            let text = as_text(v, "amount");
            set_path(v, "amount", text);
        }
        _ => {}
    }
}

fn serve(sh: &Shared, faults: &Faults, entity: Entity, view: &View<'_>, n: u64) -> Value {
    Faulty::new(faults, entity, sh.config.seed).serve(
        view,
        n,
        &|view, n| render(sh, entity, view, n),
        &bad,
    )
}

async fn list(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Handled {
    let Some(entity) = collection(&name) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            None,
            &format!("Unrecognized request URL (GET: /v1/{name})."),
            None,
        ));
    };
    let params = parse_form(query.as_deref().unwrap_or_default());
    let limit = limit(&params)?;
    let after = match params.get("starting_after").filter(|s| !s.is_empty()) {
        None => 0,
        Some(id) => {
            parse_served(entity, id).ok_or_else(|| missing(entity, id, "starting_after"))?
        }
    };
    let (body, count) = sh.store.with_view(entity, None, |view| {
        let (numbers, more) = take_page(view.after(after), limit);
        let data: Vec<Value> = numbers
            .iter()
            .map(|&n| serve(&sh, &faults, entity, view, n))
            .collect();
        let count = data.len() as u64;
        (
            json!({"object": "list", "data": data, "has_more": more, "url": format!("/v1/{name}")}),
            count,
        )
    });
    Ok(ok(&body, count))
}

async fn retrieve(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path((name, id)): Path<(String, String)>,
) -> Handled {
    let Some(entity) = collection(&name) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            None,
            &format!("Unrecognized request URL (GET: /v1/{name}/{id})."),
            None,
        ));
    };
    crate::state::lock(&sh.stats).get_by_id += 1;
    let n = parse_served(entity, &id)
        .filter(|&n| (1..=sh.store.gen.count(entity)).contains(&n))
        .ok_or_else(|| missing(entity, &id, "id"))?;
    let body = sh
        .store
        .with_view(entity, None, |view| serve(&sh, &faults, entity, view, n));
    Ok(ok(&body, 1))
}

/// One event of the feed: record `n` of `entity` was created (at its base time) or last
/// updated (at `created`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct EventKey {
    created: i64,
    slot: usize,
    update: bool,
    n: u64,
}

impl EventKey {
    fn id(self) -> String {
        format!(
            "evt_{:010}{}{}{:010}",
            self.created,
            self.slot,
            u8::from(self.update),
            self.n
        )
    }

    fn parse(id: &str) -> Option<EventKey> {
        let digits = id.strip_prefix("evt_")?;
        if digits.len() != 22 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(EventKey {
            created: digits[..10].parse().ok()?,
            slot: digits[10..11].parse().ok()?,
            update: &digits[11..12] == "1",
            n: digits[12..].parse().ok()?,
        })
    }
}

fn event_type(sh: &Shared, entity: Entity, key: EventKey) -> String {
    let verb = if key.update {
        "updated"
    } else if entity == Entity::Payments {
        match super::pick(sh.config.seed, 1, key.n, 20) {
            0 => "failed",
            1 => "pending",
            _ => "succeeded",
        }
    } else {
        "created"
    };
    format!("{}.{verb}", object(entity))
}

/// The `created[...]` bounds of an events request, as `lo <= created <= hi`.
fn created_bounds(params: &HashMap<String, String>) -> Result<(i64, i64), Response> {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    for (key, raw) in params {
        let op = match key.as_str() {
            "created" => "eq",
            "created[gte]" => "gte",
            "created[gt]" => "gt",
            "created[lte]" => "lte",
            "created[lt]" => "lt",
            _ => continue,
        };
        let t: i64 = raw.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_integer"),
                &format!("Invalid integer: {raw}"),
                Some(key),
            )
        })?;
        match op {
            "eq" => {
                lo = lo.max(t);
                hi = hi.min(t);
            }
            "gte" => lo = lo.max(t),
            "gt" => lo = lo.max(t + 1),
            "lte" => hi = hi.min(t),
            _ => hi = hi.min(t - 1),
        }
    }
    Ok((lo, hi))
}

/// The entities (and, for an exact type, the one verb) an event `type` filter selects.
fn selected(filter: Option<&str>) -> Vec<(Entity, Option<String>)> {
    let all = [
        Entity::Customers,
        Entity::Products,
        Entity::Invoices,
        Entity::Payments,
    ];
    match filter.filter(|f| !f.is_empty() && *f != "*") {
        None => all.iter().map(|&e| (e, None)).collect(),
        Some(f) => {
            let (obj, rest) = f.split_once('.').unwrap_or((f, "*"));
            all.iter()
                .filter(|&&e| object(e) == obj)
                .map(|&e| (e, (rest != "*").then(|| f.to_owned())))
                .collect()
        }
    }
}

async fn events(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    RawQuery(query): RawQuery,
) -> Handled {
    let params = parse_form(query.as_deref().unwrap_or_default());
    let limit = limit(&params)?;
    let (lo, hi) = created_bounds(&params)?;
    let cursor = match params.get("starting_after").filter(|s| !s.is_empty()) {
        None => None,
        Some(id) => Some(EventKey::parse(id).ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such event: '{id}'"),
                Some("starting_after"),
            )
        })?),
    };
    let mut keys: Vec<(EventKey, Entity)> = Vec::new();
    for (entity, exact) in selected(params.get("type").map(String::as_str)) {
        let count = sh.store.gen.count(entity);
        let slot = entity.slot();
        sh.store.with_view(entity, None, |view| {
            // Creation events sit at the records' base times, EPOCH + n.
            let first = (lo.saturating_sub(EPOCH)).max(1) as u64;
            let last = (hi.saturating_sub(EPOCH)).min(count as i64);
            if last >= 1 {
                for n in first..=last as u64 {
                    keys.push((
                        EventKey {
                            created: EPOCH + n as i64,
                            slot,
                            update: false,
                            n,
                        },
                        entity,
                    ));
                }
            }
            for (n, at) in view.modified_records() {
                if (lo..=hi).contains(&at) {
                    keys.push((
                        EventKey {
                            created: at,
                            slot,
                            update: true,
                            n,
                        },
                        entity,
                    ));
                }
            }
        });
        if let Some(exact) = exact {
            keys.retain(|(k, e)| *e != entity || event_type(&sh, *e, *k) == exact);
        }
    }
    // Newest first, as Stripe lists events.
    keys.sort_unstable_by_key(|k| std::cmp::Reverse(k.0));
    let start = cursor.map_or(0, |c| keys.partition_point(|(k, _)| *k >= c));
    let page: Vec<(EventKey, Entity)> = keys
        .iter()
        .skip(start)
        .take(limit as usize)
        .copied()
        .collect();
    let more = keys.len() > start + page.len();
    let data: Vec<Value> = page
        .iter()
        .map(|&(key, entity)| {
            let object = sh.store.with_view(entity, None, |view| {
                serve(&sh, &faults, entity, view, key.n)
            });
            json!({
                "id": key.id(),
                "object": "event",
                "api_version": API_VERSION,
                "created": key.created,
                "data": {"object": object},
                "livemode": false,
                "pending_webhooks": 0,
                "type": event_type(&sh, entity, key),
            })
        })
        .collect();
    let count = data.len() as u64;
    let body = json!({"object": "list", "data": data, "has_more": more, "url": "/v1/events"});
    Ok(ok(&body, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(served_id(Entity::Payments, 7), "ch_00000007");
        assert_eq!(parse_served(Entity::Payments, "ch_00000007"), Some(7));
        assert_eq!(parse_served(Entity::Payments, "pay_00000007"), None);
        assert_eq!(parse_served(Entity::Customers, "cus_00000012"), Some(12));
        let key = EventKey {
            created: EPOCH + 5,
            slot: 2,
            update: true,
            n: 5,
        };
        assert_eq!(EventKey::parse(&key.id()), Some(key));
    }

    #[test]
    fn type_filters() {
        assert_eq!(
            selected(Some("customer.*")),
            vec![(Entity::Customers, None)]
        );
        assert_eq!(
            selected(Some("charge.updated")),
            vec![(Entity::Payments, Some("charge.updated".to_owned()))]
        );
        assert_eq!(selected(None).len(), 4);
        assert!(selected(Some("payout.*")).is_empty());
    }
}
