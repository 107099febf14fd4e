//! The Xero persona: `/api.xro/2.0/Contacts|Items|Invoices|Payments` (+ `/{id}`) with
//! `If-Modified-Since`, `page=N` (100 a page), `where` filters and `/Date(ms+0000)/` dates; the
//! `xero-tenant-id` header; `/connections`; OAuth2 sign-in (`/identity/connect/authorize`,
//! `/connect/token`, PKCE, single-use refresh tokens); Xero's rate-limit headers and errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Value};

use super::{
    copy_from, get_path, header as hdr, json, malformed, msjson, msjson_of, ok, set_path, units,
    with_headers, Faulty, Handled, Provider,
};
use crate::api::{retry_after_value, Injected};
use crate::faults::{BadKind, Faults};
use crate::hash::hash3;
use crate::model::Entity;
use crate::state::{AuthFailure, Shared};
use crate::store::View;
use crate::util::parse_form;

/// Records per page when `page` is given (fixed by Xero).
const PAGE_SIZE: usize = 100;
/// Calls per minute per organisation, per day, and per app per minute.
const MINUTE_LIMIT: u32 = 60;
const DAY_LIMIT: u32 = 5_000;
const APP_MINUTE_LIMIT: u32 = 10_000;

/// A deterministic version-4-looking UUID for record `n` of collection `slot`; the last group
/// is `n` in hex so it can be read back.
pub(crate) fn uuid(seed: u64, slot: u64, n: u64) -> String {
    let h = hash3(seed ^ 0x7e40_0000, slot, n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        8 + (h >> 62),
        (h >> 4) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

fn parse_uuid(seed: u64, slot: u64, raw: &str) -> Option<u64> {
    let raw = raw.to_ascii_lowercase();
    let n = u64::from_str_radix(raw.get(24..)?, 16).ok()?;
    (uuid(seed, slot, n) == raw).then_some(n)
}

/// The one organisation this sandbox serves.
pub(crate) fn tenant_id(seed: u64) -> String {
    uuid(seed, 9, 1)
}

pub(crate) const TENANT_NAME: &str = "Syncdesk Demo Company (US)";

/// Xero's problem-details body (401, 403, 404, 429, 5xx).
fn problem(sh: &Shared, status: StatusCode, title: &str, detail: &str) -> Response {
    json(
        status,
        &json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": super::request_uuid(sh),
            "Extensions": {},
        }),
    )
}

/// Xero's validation error body (400).
fn validation(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": message,
        }),
    )
}

struct Xero(Arc<Shared>);

impl Provider for Xero {
    fn admit(&self, sh: &Shared, req: &Request) -> Result<(), Response> {
        if let Err(failure) = sh.authorize_bearer(req.headers(), false, false) {
            let detail = match failure {
                AuthFailure::Expired => "TokenExpired: token expired",
                _ => "AuthenticationUnsuccessful",
            };
            let resp = problem(sh, StatusCode::UNAUTHORIZED, "Unauthorized", detail);
            return Err(with_headers(
                resp,
                [hdr("www-authenticate", "Bearer error=\"invalid_token\"")],
            ));
        }
        let path = req.uri().path();
        if path.eq_ignore_ascii_case("/connections") {
            return Ok(());
        }
        match tenant_header(req.headers()) {
            None => Err(problem(
                sh,
                StatusCode::FORBIDDEN,
                "Forbidden",
                "AuthorizationUnsuccessful: the xero-tenant-id header is missing",
            )),
            Some(t) if t.len() != 36 => Err(problem(
                sh,
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "The xero-tenant-id header is not a valid Guid",
            )),
            Some(t) if !t.eq_ignore_ascii_case(&tenant_id(sh.config.seed)) => Err(problem(
                sh,
                StatusCode::FORBIDDEN,
                "Forbidden",
                "AuthorizationUnsuccessful: this app is not connected to that organisation",
            )),
            Some(_) => Ok(()),
        }
    }

    fn spend(
        &self,
        sh: &Shared,
    ) -> Result<Vec<(header::HeaderName, header::HeaderValue)>, Response> {
        let b = sh.spend(MINUTE_LIMIT, Duration::from_secs(60), DAY_LIMIT);
        let used = MINUTE_LIMIT - b.remaining;
        let headers = vec![
            hdr("x-minlimit-remaining", b.remaining),
            hdr("x-daylimit-remaining", b.day_remaining),
            hdr(
                "x-applimit-remaining",
                APP_MINUTE_LIMIT.saturating_sub(used),
            ),
            hdr(
                "x-appminlimit-remaining",
                APP_MINUTE_LIMIT.saturating_sub(used),
            ),
        ];
        if b.exhausted {
            let problem_kind = if b.day_remaining == 0 {
                "day"
            } else {
                "minute"
            };
            let wait = b.reset_in.as_secs_f64().ceil().max(1.0) as u64;
            let resp = problem(
                sh,
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Rate limit exceeded",
            );
            let mut all = headers;
            all.push(hdr("retry-after", wait));
            all.push(hdr("x-rate-limit-problem", problem_kind));
            return Err(with_headers(resp, all));
        }
        Ok(headers)
    }

    fn injected(&self, injected: Injected) -> Response {
        let sh = &self.0;
        match injected {
            Injected::Error(status) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let title = status.canonical_reason().unwrap_or("Error");
                problem(sh, status, title, "An injected fault")
            }
            Injected::RateLimited(retry_after) => {
                let mut resp = with_headers(
                    problem(
                        sh,
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too Many Requests",
                        "Rate limit exceeded",
                    ),
                    [
                        hdr("x-rate-limit-problem", "minute"),
                        hdr("x-minlimit-remaining", 0),
                    ],
                );
                if let Some(v) = retry_after_value(&retry_after) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                resp
            }
            Injected::Malformed => {
                malformed(r#"{"Id":"0","Status":"OK","Contacts":[{"ContactID":"00"#)
            }
        }
    }
}

fn tenant_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("xero-tenant-id").and_then(|v| v.to_str().ok())
}

pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let provider = Arc::new(Xero(shared.clone()));
    Router::new()
        .route("/connections", get(connections))
        .route("/Connections", get(connections))
        .route("/api.xro/2.0/{collection}", get(list))
        .route("/api.xro/2.0/{collection}/{id}", get(retrieve))
        .route_layer(axum::middleware::from_fn_with_state(
            shared,
            move |State(sh): State<Arc<Shared>>, req: Request, next: Next| {
                let provider = provider.clone();
                async move { super::pipeline(&*provider, sh, req, next).await }
            },
        ))
        .route("/identity/connect/authorize", get(crate::oauth::authorize))
        .route("/connect/token", post(crate::oauth::token))
        .fallback(unknown)
}

async fn unknown(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    if req.uri().path().starts_with("/api.xro/") {
        sh.record_request(404, 0);
    }
    problem(
        &sh,
        StatusCode::NOT_FOUND,
        "Not Found",
        "The resource you're looking for cannot be found",
    )
}

async fn connections(State(sh): State<Arc<Shared>>) -> Response {
    let seed = sh.config.seed;
    let body = json!([{
        "id": uuid(seed, 10, 1),
        "authEventId": uuid(seed, 11, 1),
        "tenantId": tenant_id(seed),
        "tenantType": "ORGANISATION",
        "tenantName": TENANT_NAME,
        "createdDateUtc": "2025-12-01T09:30:00Z",
        "updatedDateUtc": "2025-12-01T09:30:00Z",
    }]);
    ok(&body, 1)
}

/// (entity, the key its records sit under)
fn collection(name: &str) -> Option<(Entity, &'static str)> {
    match name {
        "Contacts" => Some((Entity::Customers, "Contacts")),
        "Items" => Some((Entity::Products, "Items")),
        "Invoices" => Some((Entity::Invoices, "Invoices")),
        "Payments" => Some((Entity::Payments, "Payments")),
        _ => None,
    }
}

/// Every 10th invoice is a bill (ACCPAY), so `where Type=="ACCREC"` has something to skip.
fn is_bill(invoice: u64) -> bool {
    invoice % 10 == 0
}

fn render(sh: &Shared, entity: Entity, view: &View<'_>, n: u64) -> Value {
    let mut value = render_all(sh, entity, view, n);
    super::strip_nulls(&mut value);
    value
}

fn render_all(sh: &Shared, entity: Entity, view: &View<'_>, n: u64) -> Value {
    let seed = sh.config.seed;
    let r = view.plain_value(n);
    let updated = msjson_of(view.updated_at(n));
    match entity {
        Entity::Customers => {
            let name = r["name"].as_str().unwrap_or_default();
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            let a = &r["address"];
            let mut street = json!({
                "AddressType": "STREET",
                "AddressLine1": a["line1"],
                "City": a["city"],
                "Region": a["state"],
                "PostalCode": a["postal_code"],
                "Country": a["country"],
            });
            if let Some(line2) = a["line2"].as_str() {
                street["AddressLine2"] = line2.into();
            }
            json!({
                "ContactID": uuid(seed, 0, n),
                "ContactStatus": "ACTIVE",
                "Name": r["name"],
                "FirstName": first,
                "LastName": last,
                "EmailAddress": r["email"],
                "Addresses": [street, {"AddressType": "POBOX"}],
                "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": r["phone"]}],
                "UpdatedDateUTC": updated,
                "IsSupplier": false,
                "IsCustomer": true,
                "DefaultCurrency": "USD",
                "HasAttachments": false,
                "HasValidationErrors": false,
            })
        }
        Entity::Products => json!({
            "ItemID": uuid(seed, 1, n),
            "Code": r["sku"],
            "Name": r["name"],
            "Description": r["name"],
            "IsSold": r["active"],
            "IsPurchased": false,
            "IsTrackedAsInventory": false,
            "SalesDetails": {"UnitPrice": units(&r["price_cents"]), "AccountCode": "200", "TaxType": "OUTPUT"},
            "PurchaseDetails": {},
            "UpdatedDateUTC": updated,
        }),
        Entity::Invoices => {
            let total = units(&r["amount_cents"]);
            let status = match r["status"].as_str() {
                Some("draft") => "DRAFT",
                Some("paid") => "PAID",
                Some("void") => "VOIDED",
                _ => "AUTHORISED",
            };
            let paid = status == "PAID";
            let customer = r["customer"]
                .as_str()
                .and_then(|c| Entity::Customers.parse_id(c))
                .unwrap_or_default() as u64;
            let date = msjson(&r["issued_at"]);
            let due = r["issued_at"]
                .as_str()
                .and_then(super::parse_time)
                .map_or(Value::Null, |t| msjson_of(t + 30 * 86_400).into());
            json!({
                "Type": if is_bill(n) { "ACCPAY" } else { "ACCREC" },
                "InvoiceID": uuid(seed, 2, n),
                "InvoiceNumber": r["number"],
                "Reference": "",
                "Contact": {"ContactID": uuid(seed, 0, customer)},
                "Date": date,
                "DueDate": due,
                "Status": status,
                "LineAmountTypes": "Exclusive",
                "LineItems": [],
                "SubTotal": total,
                "TotalTax": 0.0,
                "Total": total,
                "AmountDue": if paid { json!(0.0) } else { total.clone() },
                "AmountPaid": if paid { total.clone() } else { json!(0.0) },
                "CurrencyCode": "USD",
                "UpdatedDateUTC": updated,
                "HasAttachments": false,
                "IsDiscounted": false,
            })
        }
        Entity::Payments => {
            let invoice = r["invoice"]
                .as_str()
                .and_then(|i| Entity::Invoices.parse_id(i))
                .unwrap_or_default() as u64;
            json!({
                "PaymentID": uuid(seed, 3, n),
                "Date": msjson(&r["paid_at"]),
                "Amount": units(&r["amount_cents"]),
                "Reference": r["method"],
                "CurrencyRate": 1.0,
                "PaymentType": if is_bill(invoice) { "ACCPAYPAYMENT" } else { "ACCRECPAYMENT" },
                "Status": "AUTHORISED",
                "UpdatedDateUTC": updated,
                "HasAccount": false,
                "IsReconciled": false,
                "Invoice": {
                    "InvoiceID": uuid(seed, 2, invoice),
                    "InvoiceNumber": format!("INV-{invoice:08}"),
                    "Type": if is_bill(invoice) { "ACCPAY" } else { "ACCREC" },
                },
            })
        }
    }
}

fn bad(seed: u64) -> impl Fn(Entity, BadKind, &mut Value, &dyn Fn() -> Value) {
    move |entity, kind, v, neighbour| {
        use BadKind::*;
        let as_text = |v: &Value, path: &str| {
            get_path(v, path)
                .and_then(Value::as_f64)
                .map_or(Value::from("12.50"), |x| Value::from(format!("{x:.2}")))
        };
        match (entity, kind) {
            (Entity::Customers, NullRequired) => set_path(v, "Name", Value::Null),
            (Entity::Customers, DuplicateKey) => copy_from(v, "EmailAddress", &neighbour()),
            (Entity::Customers, WrongType) => set_path(v, "Name", 12_345.into()),
            (Entity::Products, NullRequired) => set_path(v, "Code", Value::Null),
            (Entity::Products, DuplicateKey) => copy_from(v, "Code", &neighbour()),
            (Entity::Products, WrongType) => {
                let text = as_text(v, "SalesDetails.UnitPrice");
                set_path(v, "SalesDetails.UnitPrice", text);
            }
            (Entity::Invoices, NullRequired) => set_path(v, "InvoiceNumber", Value::Null),
            (Entity::Invoices, InvalidDate) => set_path(v, "Date", "31/02/2026".into()),
            (Entity::Invoices, DanglingReference) => {
                set_path(v, "Contact.ContactID", uuid(seed, 0, 99_999_999).into());
            }
            (Entity::Invoices, DuplicateKey) => copy_from(v, "InvoiceNumber", &neighbour()),
            (Entity::Invoices, WrongType) => {
                let text = as_text(v, "Total");
                set_path(v, "Total", text);
            }
            (Entity::Payments, NullRequired) => set_path(v, "Amount", Value::Null),
            (Entity::Payments, InvalidDate) => set_path(v, "Date", "31/02/2026".into()),
            (Entity::Payments, DanglingReference) => {
                set_path(v, "Invoice.InvoiceID", uuid(seed, 2, 99_999_999).into());
            }
            (Entity::Payments, WrongType) => {
                let text = as_text(v, "Amount");
                set_path(v, "Amount", text);
            }
            _ => {}
        }
    }
}

fn serve(sh: &Shared, faults: &Faults, entity: Entity, view: &View<'_>, n: u64) -> Value {
    Faulty::new(faults, entity, sh.config.seed).serve(
        view,
        n,
        &|view, n| render(sh, entity, view, n),
        &bad(sh.config.seed),
    )
}

/// `If-Modified-Since` as the smallest whole second satisfying `updated >= since`: RFC 3339,
/// Xero's own `2009-11-12T00:00:00` (UTC), or an HTTP date.
fn modified_since(headers: &HeaderMap) -> Result<Option<i64>, Response> {
    let Some(raw) = headers.get(header::IF_MODIFIED_SINCE) else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or_default().trim();
    if let Some(t) = crate::time::parse_since(raw) {
        return Ok(Some(t));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            let t = t.and_utc();
            return Ok(Some(
                t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0),
            ));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, format) {
            return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()));
        }
    }
    if let Ok(t) = httpdate::parse_http_date(raw) {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Ok(Some(secs as i64));
    }
    Err(validation(&format!(
        "The If-Modified-Since header {raw:?} is not a date"
    )))
}

/// One `Field=="value"` / `Field!=value` clause of a `where` filter.
#[derive(Debug, PartialEq)]
struct Clause {
    field: String,
    equal: bool,
    value: Value,
}

/// Parses the subset of Xero's `where` syntax the sandbox understands: clauses joined by
/// `AND` / `&&`, each `Field.Path == "text" | true | false | number | Guid("…")`.
fn parse_where(raw: &str) -> Option<Vec<Clause>> {
    let normalised = raw.replace("&&", " AND ");
    let mut clauses = Vec::new();
    for part in split_and(&normalised) {
        let part = part.trim();
        let (field, equal, rhs) = if let Some((f, r)) = part.split_once("==") {
            (f, true, r)
        } else if let Some((f, r)) = part.split_once("!=") {
            (f, false, r)
        } else {
            return None;
        };
        let field = field.trim();
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return None;
        }
        let rhs = rhs.trim();
        let value = if let Some(s) = rhs.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Value::String(s.to_owned())
        } else if let Some(g) = rhs
            .strip_prefix("Guid(\"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            Value::String(g.to_ascii_lowercase())
        } else if rhs.eq_ignore_ascii_case("true") {
            Value::Bool(true)
        } else if rhs.eq_ignore_ascii_case("false") {
            Value::Bool(false)
        } else if let Ok(x) = rhs.parse::<f64>() {
            json!(x)
        } else {
            return None;
        };
        clauses.push(Clause {
            field: field.to_owned(),
            equal,
            value,
        });
    }
    (!clauses.is_empty()).then_some(clauses)
}

fn split_and(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        let upper = rest.to_ascii_uppercase();
        match upper.find(" AND ") {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 5..];
            }
            None => {
                parts.push(rest);
                return parts;
            }
        }
    }
}

fn matches(record: &Value, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| {
        let actual = get_path(record, &c.field);
        let same = match (actual, &c.value) {
            (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Some(a), b) => a == b,
            (None, _) => false,
        };
        same == c.equal
    })
}

fn envelope(sh: &Shared, key: &str, records: Vec<Value>) -> Value {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut body = json!({
        "Id": super::request_uuid(sh),
        "Status": "OK",
        "ProviderName": "Syncdesk sandbox",
        "DateTimeUTC": format!("/Date({now_ms})/"),
    });
    body[key] = Value::Array(records);
    body
}

async fn list(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Handled {
    let Some((entity, key)) = collection(&name) else {
        return Err(unknown_collection(&sh));
    };
    let params = parse_form(query.as_deref().unwrap_or_default());
    let since = modified_since(&headers)?;
    let clauses = match params.get("where").filter(|w| !w.trim().is_empty()) {
        None => Vec::new(),
        Some(w) => parse_where(w).ok_or_else(|| {
            validation(&format!("The where filter {w:?} could not be understood"))
        })?,
    };
    // Items are never paged; the others are when `page` is given.
    let page = match params.get("page").filter(|_| entity != Entity::Products) {
        None => None,
        Some(p) => Some(
            p.parse::<usize>()
                .ok()
                .filter(|&p| p >= 1)
                .ok_or_else(|| validation(&format!("page {p:?} is not a page number")))?,
        ),
    };
    let records = sh.store.with_view(entity, since, |view| {
        let all = view
            .after(0)
            .map(|n| serve(&sh, &faults, entity, view, n))
            .filter(|r| matches(r, &clauses));
        match page {
            None => all.collect::<Vec<_>>(),
            Some(p) => all
                .skip((p - 1) * PAGE_SIZE)
                .take(PAGE_SIZE)
                .collect::<Vec<_>>(),
        }
    });
    let count = records.len() as u64;
    Ok(ok(&envelope(&sh, key, records), count))
}

fn unknown_collection(sh: &Shared) -> Response {
    problem(
        sh,
        StatusCode::NOT_FOUND,
        "Not Found",
        "The resource you're looking for cannot be found",
    )
}

async fn retrieve(
    State(sh): State<Arc<Shared>>,
    Extension(faults): Extension<Arc<Faults>>,
    Path((name, id)): Path<(String, String)>,
) -> Handled {
    let Some((entity, key)) = collection(&name) else {
        return Err(unknown_collection(&sh));
    };
    crate::state::lock(&sh.stats).get_by_id += 1;
    let n = parse_uuid(sh.config.seed, entity.slot() as u64, &id)
        .filter(|&n| (1..=sh.store.gen.count(entity)).contains(&n))
        .ok_or_else(|| unknown_collection(&sh))?;
    let record = sh
        .store
        .with_view(entity, None, |view| serve(&sh, &faults, entity, view, n));
    Ok(ok(&envelope(&sh, key, vec![record]), 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_and_look_like_uuids() {
        let id = uuid(42, 2, 123);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(parse_uuid(42, 2, &id), Some(123));
        assert_eq!(parse_uuid(42, 1, &id), None);
        assert_eq!(parse_uuid(42, 2, &id.to_ascii_uppercase()), Some(123));
        assert_eq!(parse_uuid(42, 2, "nope"), None);
    }

    #[test]
    fn where_filters() {
        let c = parse_where(r#"Type=="ACCREC""#).unwrap_or_default();
        assert!(matches(&json!({"Type": "ACCREC"}), &c));
        assert!(!matches(&json!({"Type": "ACCPAY"}), &c));
        let c = parse_where(r#"Status != "PAID" AND Contact.ContactID==Guid("AB")"#)
            .unwrap_or_default();
        assert_eq!(c.len(), 2);
        assert!(matches(
            &json!({"Status": "DRAFT", "Contact": {"ContactID": "ab"}}),
            &c
        ));
        assert_eq!(parse_where("Type ~ 1"), None);
    }
}
