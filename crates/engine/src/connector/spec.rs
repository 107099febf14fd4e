//! The declarative connector spec (TOML or JSON, docs/connectors.md): how to talk to one
//! provider's REST API — auth, connection-level values, fixed request parts, rate-limit
//! headers, list endpoints, records path, pagination, and how changes are fetched.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::mapping::FieldMapping;
use crate::model::AuthKind;

/// A provider API described as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Human name of the provider ("Sandbox", "Acme Billing").
    pub name: String,
    /// Base URL; a connection may override it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// What it syncs and what the admin must set up at the provider (catalog, wizard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
    pub auth: AuthSpec,
    /// Connection-level values chosen when connecting (a tenant id), used as
    /// `{values.<name>}` in headers, query parameters and bodies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, ValueSpec>,
    /// Headers and query parameters sent on every data request (not on token requests).
    #[serde(default, skip_serializing_if = "RequestDefaults::is_empty")]
    pub request: RequestDefaults,
    /// The provider's rate-limit headers; absent: the common `X-RateLimit-*` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    pub entities: BTreeMap<String, EntitySpec>,
    /// Bounds on what the provider may send (docs/connectors.md, "Limits").
    #[serde(default, skip_serializing_if = "Limits::is_default")]
    pub limits: Limits,
}

/// The largest response body accepted by default: 64 MB.
pub const DEFAULT_MAX_BODY_MB: u64 = 64;
/// Records one page may hold whatever the page size: a provider may round a page up, but a
/// page past this is not a page.
pub const MIN_PAGE_RECORDS_CAP: u64 = 10_000;
/// How many times the requested page size a page may hold before it is refused.
pub const PAGE_SIZE_FACTOR: u64 = 10;

/// Bounds on a provider's answers, so a broken or hostile one cannot exhaust memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest response body, in MB (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_mb: Option<u64>,
    /// Most records one page may hold (default: 10 × the page size, at least 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_page_records: Option<u64>,
}

impl Limits {
    fn is_default(&self) -> bool {
        *self == Limits::default()
    }

    /// The body size limit in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_mb
            .unwrap_or(DEFAULT_MAX_BODY_MB)
            .saturating_mul(1024 * 1024)
    }

    /// The most records a page requested with `page_size` may hold.
    pub fn max_page_records(&self, page_size: u32) -> u64 {
        self.max_page_records.unwrap_or_else(|| {
            (u64::from(page_size).saturating_mul(PAGE_SIZE_FACTOR)).max(MIN_PAGE_RECORDS_CAP)
        })
    }
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    pub kind: AuthKind,
    /// OAuth2 token endpoint (absolute or relative to the base URL).
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// OAuth2 authorization endpoint (authorization-code flow in the desktop shell).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Header carrying an API key (default `X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// Query parameter carrying an API key, for providers that take it there (instead of
    /// `header`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// What the wizard and the CLI call the pasted secret ("Private app access token").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_label: Option<String>,
    /// Other kinds a connection to this provider may use instead of `kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<AuthKind>,
}

impl AuthSpec {
    /// The kinds a connection may use: `kind` first, then the alternatives.
    pub fn kinds(&self) -> Vec<AuthKind> {
        std::iter::once(self.kind)
            .chain(self.alternatives.iter().copied())
            .collect()
    }
}

/// What a provider's spec says about itself, for the catalog and the connection wizard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct About {
    /// One line: what it syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What the admin must do at the provider before connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

/// A connection-level value (`[values.<name>]`): not secret, stored on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    /// What the admin is asked for ("Xero organisation").
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Where the possible values can be listed once signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Choices>,
}

/// A GET, with the connection's credentials, listing a value's possible choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choices {
    pub path: String,
    /// Dotted path of the array in the body; empty when the body is the array.
    #[serde(default)]
    pub records: String,
    /// The field of each listed item that is the value.
    pub value: String,
    /// The field of each listed item shown to the admin.
    pub label: String,
}

/// Headers and query parameters sent with every data request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDefaults {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
}

impl RequestDefaults {
    fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty()
    }
}

/// The headers a provider says its rate limit in (`[rate_limit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Headers holding how many calls are left; the run paces when any is at or below
    /// `reserve`.
    pub remaining: Vec<String>,
    #[serde(default)]
    pub reserve: u64,
    /// Header saying when the limit resets (read by `reset_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
    #[serde(default)]
    pub reset_format: ResetFormat,
    /// How long to wait when the calls are used up and no reset header came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
}

/// How a reset header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetFormat {
    /// Seconds from now.
    #[default]
    Seconds,
    /// A unix time (seconds).
    Unix,
    /// Milliseconds from now.
    Milliseconds,
}

/// The longest pause pacing will take on a provider's word.
pub const MAX_PACE: Duration = Duration::from_secs(3600);

impl RateLimit {
    /// How long to wait before the next request, after an answer with these headers:
    /// `None` while calls are left (or the headers do not say).
    pub fn pace(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let remaining = self
            .remaining
            .iter()
            .filter_map(|h| header(h)?.parse::<u64>().ok())
            .min()?;
        if remaining > self.reserve {
            return None;
        }
        let from_reset = self.reset.as_deref().and_then(header).and_then(|v| {
            let n: f64 = v.parse().ok().filter(|n: &f64| n.is_finite())?;
            let secs = match self.reset_format {
                ResetFormat::Seconds => n,
                ResetFormat::Milliseconds => n / 1000.0,
                ResetFormat::Unix => n - now.timestamp() as f64,
            };
            Some(Duration::from_secs_f64(
                secs.clamp(0.0, MAX_PACE.as_secs_f64()),
            ))
        });
        from_reset
            .or_else(|| self.window_secs.map(Duration::from_secs))
            .map(|d| d.min(MAX_PACE))
    }
}

/// One entity's list endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Singular display name ("Customer").
    #[serde(default)]
    pub label: Option<String>,
    /// List path, relative to the base URL.
    pub path: String,
    /// Dotted path of the records array in the body; empty when the body is the array.
    #[serde(default)]
    pub records: String,
    /// Field holding the provider's id.
    #[serde(default = "default_id")]
    pub id: String,
    /// Field holding the last-modified time (RFC 3339), for incremental runs.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Get-by-id path with `{id}` (dead-letter retry fetches fresh; failed records are
    /// re-attempted in incremental runs).
    #[serde(default)]
    pub get: Option<String>,
    /// Query parameter that filters by `updated_at >=`.
    #[serde(default)]
    pub incremental_param: Option<String>,
    #[serde(default)]
    pub pagination: Pagination,
    /// Mappings a new job for this entity starts with.
    #[serde(default)]
    pub mappings: Vec<FieldMapping>,
    /// Natural keys a new job starts with (duplicate detection).
    #[serde(default)]
    pub natural_keys: Vec<String>,
    /// Extra headers for this entity's list and get-by-id requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters for this entity's list and get-by-id requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Dotted path of the record in a get-by-id body (`Contacts.0`); absent: the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_record: Option<String>,
    /// How changes are fetched (`[entities.<name>.incremental]`); replaces
    /// `incremental_param` + `updated_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
}

impl EntitySpec {
    /// Whether incremental runs can ask the provider for changes only.
    pub fn filters_changes(&self) -> bool {
        self.incremental_config().is_some_and(|i| i.send.is_some())
    }

    /// The incremental configuration in effect: the `incremental` table, or what the older
    /// `updated_at` (+ `incremental_param`) keys mean. `None`: no change time is known.
    pub fn incremental_config(&self) -> Option<Incremental> {
        if let Some(i) = &self.incremental {
            return Some(i.clone());
        }
        let field = self.updated_at.clone()?;
        Some(Incremental {
            field,
            send: self.incremental_param.as_ref().map(|p| SendSince {
                to: SendIn::Query,
                name: Some(p.clone()),
                format: SendFormat::Rfc3339,
            }),
            ..Incremental::default()
        })
    }
}

/// How an entity's changes since the last successful run are fetched.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Dotted path of the change time in each listed item (before `record` is applied).
    pub field: String,
    #[serde(default)]
    pub field_format: TimeFormat,
    /// Where the watermark goes in the request; absent: tracked but not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendSince>,
    /// Another endpoint listing changes (an event list, a search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Method::is_get")]
    pub method: Method,
    /// The JSON body of a POST; `"{since}"` strings in it become the watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Records path in the changes endpoint's body (default: the entity's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Where the record sits inside each listed item (an event's `data.object`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Listed items whose field at a dotted path is not this value (or one of these) are
    /// skipped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub only: BTreeMap<String, OneOrMany>,
    /// The changes endpoint's paging (default: the entity's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

impl Incremental {
    /// Whether changes come from an endpoint of their own (rather than the list filtered).
    pub fn has_own_endpoint(&self) -> bool {
        self.path.is_some()
    }

    /// Whether a listed item passes the `only` filter.
    pub fn admits(&self, item: &crate::record::Fields<'_>) -> bool {
        admits(&self.only, item)
    }
}

/// Whether a listed item's fields at each dotted path hold the value (or one of the values)
/// `only` gives there.
pub fn admits(only: &BTreeMap<String, OneOrMany>, item: &crate::record::Fields<'_>) -> bool {
    only.iter().all(|(path, want)| match item.at(path) {
        Some(Value::String(s)) => want.contains(&s),
        Some(Value::Number(n)) => want.contains(&n.to_string()),
        Some(Value::Bool(b)) => want.contains(&b.to_string()),
        _ => false,
    })
}

/// One string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, v: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == v,
            OneOrMany::Many(list) => list.iter().any(|s| s == v),
        }
    }
}

/// Where the watermark is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSince {
    #[serde(rename = "in")]
    pub to: SendIn,
    /// Query parameter or header name (sent literally: `created[gte]`); none for a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub format: SendFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendIn {
    Query,
    Header,
    /// Every `"{since}"` string of the POST body.
    Body,
}

/// HTTP method of a changes request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Method {
    #[default]
    #[serde(rename = "GET", alias = "get")]
    Get,
    #[serde(rename = "POST", alias = "post")]
    Post,
}

impl Method {
    fn is_get(&self) -> bool {
        *self == Method::Get
    }
}

/// How a provider writes a change time in its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    #[default]
    Rfc3339,
    /// Unix seconds (a number or a numeric string).
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// Microsoft JSON dates: `/Date(1573755038314+0000)/`.
    Msjson,
}

impl TimeFormat {
    /// The time a value holds in this format.
    pub fn read(self, v: &Value) -> Option<DateTime<Utc>> {
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match self {
            TimeFormat::Rfc3339 => match v {
                Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
                    .ok()
                    .map(|t| t.to_utc()),
                _ => None,
            },
            TimeFormat::Unix => DateTime::from_timestamp(number(v)?, 0),
            TimeFormat::UnixMs => DateTime::from_timestamp_millis(number(v)?),
            TimeFormat::Msjson => match v {
                Value::String(s) => parse_msjson(s),
                _ => None,
            },
        }
    }
}

/// `/Date(1573755038314+0000)/` (or without the zone): the milliseconds count from the unix
/// epoch whatever the zone says, which only tells how to show it.
pub fn parse_msjson(s: &str) -> Option<DateTime<Utc>> {
    let inner = s.trim().strip_prefix("/Date(")?.strip_suffix(")/")?;
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(inner.len(), |(i, _)| i);
    let (ms, zone) = inner.split_at(digits_end);
    let zone_ok = zone.is_empty()
        || (zone.len() == 5
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone[1..].bytes().all(|b| b.is_ascii_digit()));
    if !zone_ok {
        return None;
    }
    DateTime::from_timestamp_millis(ms.parse().ok()?)
}

/// A time as a watermark is stored: RFC 3339 in UTC.
pub fn normalised(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// How the watermark is written where it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendFormat {
    /// As stored (RFC 3339).
    #[default]
    Rfc3339,
    /// `YYYY-MM-DD` (UTC).
    Date,
    /// Unix seconds.
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// An HTTP date (`Wed, 02 Dec 2026 18:00:00 GMT`).
    HttpDate,
}

impl SendFormat {
    /// The stored watermark (RFC 3339) written in this format.
    pub fn render(self, watermark: &str) -> Result<String> {
        if self == SendFormat::Rfc3339 {
            return Ok(watermark.to_string());
        }
        let t = DateTime::parse_from_rfc3339(watermark.trim())
            .map_err(|_| {
                Error::invalid(
                    "watermark",
                    format!("'{watermark}' is not an RFC 3339 time; run a full sync"),
                )
            })?
            .to_utc();
        Ok(match self {
            SendFormat::Rfc3339 => unreachable!("returned above"),
            SendFormat::Date => t.format("%Y-%m-%d").to_string(),
            SendFormat::Unix => t.timestamp().to_string(),
            SendFormat::UnixMs => t.timestamp_millis().to_string(),
            SendFormat::HttpDate => t.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        })
    }
}

/// The `{values.<name>}` names a text uses, in order.
pub fn value_names(text: &str) -> std::result::Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{values.") {
        let after = &rest[i + "{values.".len()..];
        let Some(end) = after.find('}') else {
            return Err(format!("'{text}' opens {{values. without closing it"));
        };
        let name = &after[..end];
        if name.is_empty() {
            return Err(format!("'{text}' has {{values.}} without a name"));
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// A text with its `{values.<name>}` replaced by the connection's values; a value the
/// connection lacks is a configuration error naming what the admin must choose.
pub fn fill_values(
    text: &str,
    values: &BTreeMap<String, String>,
    declared: &BTreeMap<String, ValueSpec>,
) -> Result<String> {
    let names = value_names(text).map_err(|m| Error::invalid("values", m))?;
    let mut out = text.to_string();
    for name in names {
        match values.get(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => out = out.replace(&format!("{{values.{name}}}"), v),
            None => {
                let label = declared.get(name).map_or(name, |v| v.label.as_str());
                return Err(Error::invalid(
                    format!("values.{name}"),
                    format!(
                        "this connection has no {label} set; choose one in the connection's settings"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Headers a spec may not set: credentials belong in the keychain.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Check fixed headers and query parameters (`field` is `request` or `entities.x`).
fn check_extras(
    field: &str,
    headers: &BTreeMap<String, String>,
    query: &BTreeMap<String, String>,
    declared: &BTreeMap<String, ValueSpec>,
) -> Result<()> {
    for (name, value) in headers {
        let f = format!("{field}.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Error::invalid(f, format!("'{name}' is not a header name")));
        }
        if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(Error::invalid(
                f,
                "credentials are not written in a spec; they go to the keychain through [auth]",
            ));
        }
        check_template(&f, value, declared)?;
        if reqwest::header::HeaderValue::from_str(&value.replace("{values.", "{")).is_err() {
            return Err(Error::invalid(f, "is not a valid header value"));
        }
    }
    for (name, value) in query {
        let f = format!("{field}.query.{name}");
        if name.trim().is_empty() {
            return Err(Error::invalid(
                format!("{field}.query"),
                "a parameter name must not be empty",
            ));
        }
        check_template(&f, value, declared)?;
    }
    Ok(())
}

/// Every `{values.<name>}` of a text must be declared under `[values]`.
fn check_template(field: &str, text: &str, declared: &BTreeMap<String, ValueSpec>) -> Result<()> {
    for name in value_names(text).map_err(|m| Error::invalid(field, m))? {
        if !declared.contains_key(name) {
            let known: Vec<&str> = declared.keys().map(String::as_str).collect();
            return Err(Error::invalid(
                field,
                format!(
                    "{{values.{name}}} names no declared value ({})",
                    if known.is_empty() {
                        "there is no [values] table".to_string()
                    } else {
                        format!("declared: {}", known.join(", "))
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Every string of a JSON body template, with its dotted position.
fn body_strings<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                body_strings(item, format!("{at}.{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                body_strings(item, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// A dotted path of a spec (records, record, a field): segments are not empty.
fn check_dotted(field: &str, path: &str, may_be_empty: bool) -> Result<()> {
    if path.is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err(Error::invalid(field, "must not be empty"))
        };
    }
    if path.split('.').any(|s| s.trim().is_empty()) {
        return Err(Error::invalid(
            field,
            format!(
                "'{path}' has an empty part; write a dotted path like data.object or Contacts.0"
            ),
        ));
    }
    Ok(())
}

fn default_id() -> String {
    "id".into()
}

/// Pagination styles (docs/connectors.md shows each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request returns everything.
    None,
    /// Stripe style: `starting_after=<last id>` while `has_more` is true.
    Cursor {
        #[serde(default = "p_limit")]
        limit_param: String,
        #[serde(default = "p_starting_after")]
        cursor_param: String,
        #[serde(default = "p_has_more")]
        has_more: String,
    },
    /// The body carries the next cursor (`next_cursor`), null or absent at the end.
    NextCursor {
        #[serde(default = "p_limit")]
        limit_param: String,
        #[serde(default = "p_cursor")]
        cursor_param: String,
        #[serde(default = "p_next_cursor")]
        cursor_field: String,
    },
    /// `page=1,2,…` until a short or empty page (or the page `total_pages` says is last).
    Page {
        #[serde(default = "p_page")]
        page_param: String,
        /// The page size parameter; absent: `per_page`, or none when `page_size` says
        /// the provider's size is fixed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        #[serde(default = "p_one")]
        first_page: u64,
        /// What a full page holds when the provider's page size is fixed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<u32>,
        /// Dotted path of the number of pages in the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_pages: Option<String>,
    },
    /// `offset=0,n,2n,…` until a short or empty page.
    Offset {
        #[serde(default = "p_offset")]
        offset_param: String,
        #[serde(default = "p_limit")]
        limit_param: String,
    },
    /// RFC 8288 `Link: <…>; rel="next"` header.
    Link {
        #[serde(default = "p_limit")]
        limit_param: String,
    },
}

impl Pagination {
    /// The style's parameter and field names, for validation.
    fn params(&self) -> Vec<(&'static str, &str)> {
        match self {
            Pagination::None => vec![],
            Pagination::Cursor {
                limit_param,
                cursor_param,
                has_more,
            } => vec![
                ("limit_param", limit_param),
                ("cursor_param", cursor_param),
                ("has_more", has_more),
            ],
            Pagination::NextCursor {
                limit_param,
                cursor_param,
                cursor_field,
            } => vec![
                ("limit_param", limit_param),
                ("cursor_param", cursor_param),
                ("cursor_field", cursor_field),
            ],
            Pagination::Page {
                page_param,
                size_param,
                total_pages,
                ..
            } => {
                let mut p = vec![("page_param", page_param.as_str())];
                if let Some(s) = size_param {
                    p.push(("size_param", s));
                }
                if let Some(t) = total_pages {
                    p.push(("total_pages", t));
                }
                p
            }
            Pagination::Offset {
                offset_param,
                limit_param,
            } => vec![("offset_param", offset_param), ("limit_param", limit_param)],
            Pagination::Link { limit_param } => vec![("limit_param", limit_param)],
        }
    }
}

impl Pagination {
    /// The page size parameter sent, if any.
    pub fn size_param(&self) -> Option<&str> {
        match self {
            Pagination::Page {
                size_param: Some(s),
                ..
            } => Some(s),
            Pagination::Page {
                size_param: None,
                page_size: None,
                ..
            } => Some("per_page"),
            _ => None,
        }
    }

    /// The provider's fixed page size, when the spec gives one.
    pub fn fixed_page_size(&self) -> Option<u32> {
        match self {
            Pagination::Page { page_size, .. } => *page_size,
            _ => None,
        }
    }

    /// Check the style's names (`field` names the pagination table).
    fn check(&self, field: &str) -> Result<()> {
        for (key, value) in self.params() {
            if value.trim().is_empty() {
                return Err(Error::invalid(
                    format!("{field}.{key}"),
                    "must not be empty",
                ));
            }
        }
        if let Pagination::Page {
            size_param,
            page_size,
            total_pages,
            ..
        } = self
        {
            if *page_size == Some(0) {
                return Err(Error::invalid(
                    format!("{field}.page_size"),
                    "must be at least 1",
                ));
            }
            if size_param.is_some() && page_size.is_some() {
                return Err(Error::invalid(
                    format!("{field}.page_size"),
                    "give size_param (the page size is asked for) or page_size (the provider's is fixed), not both",
                ));
            }
            if let Some(t) = total_pages {
                check_dotted(&format!("{field}.total_pages"), t, false)?;
            }
        }
        Ok(())
    }
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination::Cursor {
            limit_param: p_limit(),
            cursor_param: p_starting_after(),
            has_more: p_has_more(),
        }
    }
}

fn p_limit() -> String {
    "limit".into()
}
fn p_starting_after() -> String {
    "starting_after".into()
}
fn p_has_more() -> String {
    "has_more".into()
}
fn p_cursor() -> String {
    "cursor".into()
}
fn p_next_cursor() -> String {
    "next_cursor".into()
}
fn p_page() -> String {
    "page".into()
}
fn p_one() -> u64 {
    1
}
fn p_offset() -> String {
    "offset".into()
}

impl ConnectorSpec {
    /// Parse TOML (or JSON when the text starts with `{`) and validate; errors name the field.
    pub fn parse(text: &str) -> Result<ConnectorSpec> {
        let spec: ConnectorSpec = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| Error::invalid("connector spec", e))?
        } else {
            toml::from_str(text).map_err(|e| {
                Error::invalid(
                    "connector spec",
                    e.message().to_string() + &toml_location(text, e.span()),
                )
            })?
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let base = match &self.base_url {
            Some(url) => Some(check_base_url(url)?),
            None => None,
        };
        self.validate_auth(base.as_ref())?;
        if let Some(about) = &self.about {
            for (f, v) in [
                ("about.summary", &about.summary),
                ("about.setup", &about.setup),
            ] {
                if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
                    return Err(Error::invalid(f, "must not be empty"));
                }
            }
        }
        for (name, v) in &self.values {
            let field = |f: &str| format!("values.{name}.{f}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::invalid(
                    format!("values.{name}"),
                    "a value's name is letters, digits, _ and - only",
                ));
            }
            if v.label.trim().is_empty() {
                return Err(Error::invalid(field("label"), "must not be empty"));
            }
            if let Some(c) = &v.choices {
                check_path(&field("choices.path"), &c.path)?;
                check_dotted(&field("choices.records"), &c.records, true)?;
                check_dotted(&field("choices.value"), &c.value, false)?;
                check_dotted(&field("choices.label"), &c.label, false)?;
            }
        }
        check_extras(
            "request",
            &self.request.headers,
            &self.request.query,
            &self.values,
        )?;
        if let Some(r) = &self.rate_limit {
            if r.remaining.is_empty() {
                return Err(Error::invalid(
                    "rate_limit.remaining",
                    "name at least one header saying how many calls are left",
                ));
            }
            let named = r
                .remaining
                .iter()
                .map(|h| ("rate_limit.remaining", h))
                .chain(r.reset.iter().map(|h| ("rate_limit.reset", h)));
            for (f, h) in named {
                if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(Error::invalid(f, format!("'{h}' is not a header name")));
                }
            }
            if r.window_secs == Some(0) {
                return Err(Error::invalid(
                    "rate_limit.window_secs",
                    "must be at least 1",
                ));
            }
        }
        if self.limits.max_body_mb == Some(0) {
            return Err(Error::invalid("limits.max_body_mb", "must be at least 1"));
        }
        if self.limits.max_page_records == Some(0) {
            return Err(Error::invalid(
                "limits.max_page_records",
                "must be at least 1",
            ));
        }
        if self.entities.is_empty() {
            return Err(Error::invalid("entities", "at least one entity is needed"));
        }
        for (name, e) in &self.entities {
            if name.trim().is_empty() {
                return Err(Error::invalid(
                    "entities",
                    "an entity name must not be empty",
                ));
            }
            self.validate_entity(name, e)?;
        }
        Ok(())
    }

    fn validate_auth(&self, base: Option<&url::Url>) -> Result<()> {
        let auth = &self.auth;
        let kinds = auth.kinds();
        let oauth = kinds.iter().any(|k| {
            matches!(
                k,
                AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken
            )
        });
        if oauth && auth.token_url.is_none() {
            return Err(Error::invalid("auth.token_url", "OAuth2 needs a token_url"));
        }
        for (i, k) in auth.alternatives.iter().enumerate() {
            if *k == auth.kind || auth.alternatives[..i].contains(k) {
                return Err(Error::invalid(
                    "auth.alternatives",
                    format!("'{k}' is listed twice (kind and alternatives name each kind once)"),
                ));
            }
        }
        for (field, url) in [
            ("auth.token_url", &auth.token_url),
            ("auth.authorize_url", &auth.authorize_url),
        ] {
            if let Some(url) = url {
                check_endpoint_text(field, url)?;
                match base {
                    Some(base) => {
                        resolve_auth_url(field, url, base)?;
                    }
                    None => {
                        if let Ok(u) = url::Url::parse(url) {
                            check_secure(field, url, &u)?;
                        }
                    }
                }
            }
        }
        if let Some(h) = &auth.header {
            if h.trim().is_empty() {
                return Err(Error::invalid("auth.header", "must not be empty"));
            }
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(Error::invalid(
                    "auth.header",
                    format!("'{h}' is not a header name"),
                ));
            }
        }
        if let Some(q) = &auth.query {
            if q.trim().is_empty() || q.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Error::invalid(
                    "auth.query",
                    "must be a parameter name without spaces",
                ));
            }
            if auth.header.is_some() {
                return Err(Error::invalid(
                    "auth.query",
                    "an API key goes in a header or a query parameter: give header or query, not both",
                ));
            }
            if !kinds.contains(&AuthKind::ApiKey) {
                return Err(Error::invalid(
                    "auth.query",
                    "only an API key (kind = \"api_key\") is sent in a query parameter",
                ));
            }
        }
        if auth
            .secret_label
            .as_ref()
            .is_some_and(|l| l.trim().is_empty())
        {
            return Err(Error::invalid("auth.secret_label", "must not be empty"));
        }
        Ok(())
    }

    fn validate_entity(&self, name: &str, e: &EntitySpec) -> Result<()> {
        let field = |f: &str| format!("entities.{name}.{f}");
        check_path(&field("path"), &e.path)?;
        if let Some(get) = &e.get {
            if !get.contains("{id}") {
                return Err(Error::invalid(field("get"), "must contain {id}"));
            }
            check_path(&field("get"), &get.replace("{id}", "id"))?;
        }
        let not_empty = |f: &str, v: &str| {
            if v.trim().is_empty() {
                Err(Error::invalid(field(f), "must not be empty"))
            } else {
                Ok(())
            }
        };
        not_empty("id", &e.id)?;
        if let Some(u) = &e.updated_at {
            not_empty("updated_at", u)?;
        }
        if let Some(p) = &e.incremental_param {
            not_empty("incremental_param", p)?;
        }
        e.pagination.check(&field("pagination"))?;
        if e.incremental_param.is_some() && e.updated_at.is_none() && e.incremental.is_none() {
            return Err(Error::invalid(
                field("updated_at"),
                "incremental_param needs the updated_at field to track the high-water mark",
            ));
        }
        if let Some(r) = &e.get_record {
            check_dotted(&field("get_record"), r, false)?;
        }
        check_extras(
            &format!("entities.{name}"),
            &e.headers,
            &e.query,
            &self.values,
        )?;
        if let Some(inc) = &e.incremental {
            let old = [
                ("incremental_param", e.incremental_param.is_some()),
                ("updated_at", e.updated_at.is_some()),
            ];
            if let Some((key, _)) = old.iter().find(|(_, set)| *set) {
                return Err(Error::invalid(
                    field(key),
                    "give either the incremental table or the older incremental_param/updated_at keys, not both",
                ));
            }
            self.validate_incremental(&field("incremental"), e, inc)?;
        }
        for (i, m) in e.mappings.iter().enumerate() {
            m.validate()
                .map_err(|err| Error::invalid(field(&format!("mappings[{i}]")), err))?;
        }
        Ok(())
    }

    fn validate_incremental(&self, at: &str, e: &EntitySpec, inc: &Incremental) -> Result<()> {
        let field = |f: &str| format!("{at}.{f}");
        check_dotted(&field("field"), &inc.field, false)?;
        if let Some(p) = &inc.path {
            check_path(&field("path"), p)?;
        }
        if let Some(r) = &inc.records {
            check_dotted(&field("records"), r, true)?;
        }
        if let Some(r) = &inc.record {
            check_dotted(&field("record"), r, false)?;
        }
        for (path, want) in &inc.only {
            check_dotted(&field("only"), path, false)?;
            if matches!(want, OneOrMany::Many(list) if list.is_empty()) {
                return Err(Error::invalid(
                    format!("{at}.only.{path}"),
                    "list at least one value",
                ));
            }
        }
        check_extras(at, &inc.headers, &inc.query, &self.values)?;
        let Some(send) = &inc.send else {
            return Err(Error::invalid(
                field("send"),
                "say where the last run's time goes: send = { in = \"query\" | \"header\" | \"body\", ... }",
            ));
        };
        match (send.to, &send.name) {
            (SendIn::Query | SendIn::Header, None) => {
                return Err(Error::invalid(
                    field("send.name"),
                    "a query parameter or header needs its name",
                ));
            }
            (SendIn::Query | SendIn::Header, Some(n)) if n.trim().is_empty() => {
                return Err(Error::invalid(field("send.name"), "must not be empty"));
            }
            (SendIn::Header, Some(n))
                if reqwest::header::HeaderName::from_bytes(n.as_bytes()).is_err() =>
            {
                return Err(Error::invalid(
                    field("send.name"),
                    format!("'{n}' is not a header name"),
                ));
            }
            (SendIn::Body, Some(_)) => {
                return Err(Error::invalid(
                    field("send.name"),
                    "the body's \"{since}\" strings say where the time goes; no name is used",
                ));
            }
            _ => {}
        }
        if inc.body.is_some() && inc.method != Method::Post {
            return Err(Error::invalid(
                field("body"),
                "a body is sent only with method = \"POST\"",
            ));
        }
        let mut strings = Vec::new();
        if let Some(body) = &inc.body {
            if !body.is_object() {
                return Err(Error::invalid(
                    field("body"),
                    "must be a table (a JSON object)",
                ));
            }
            body_strings(body, field("body"), &mut strings);
            for (f, text) in &strings {
                check_template(f, text, &self.values)?;
            }
        }
        if send.to == SendIn::Body {
            if inc.method != Method::Post {
                return Err(Error::invalid(
                    field("send.in"),
                    "\"body\" needs method = \"POST\" and a body",
                ));
            }
            if !strings.iter().any(|(_, s)| s.contains("{since}")) {
                return Err(Error::invalid(
                    field("send.in"),
                    "\"body\" needs a \"{since}\" string in the body to put the time in",
                ));
            }
        }
        if let Some(p) = &inc.pagination {
            p.check(&field("pagination"))?;
        }
        let paging = inc.pagination.as_ref().unwrap_or(&e.pagination);
        if inc.method == Method::Post && matches!(paging, Pagination::Link { .. }) {
            return Err(Error::invalid(
                field("pagination"),
                "Link-header paging cannot repeat a POST; use cursor, next_cursor, page or offset",
            ));
        }
        Ok(())
    }

    /// Check the spec against the base URL a connection will use (its own or the spec's):
    /// the OAuth2 endpoints must resolve to that origin (see [`check_endpoint`]). Issue 15
    /// allows a sign-in server on another https origin: connection creation moves to
    /// [`resolve_auth_url`] together with sending each credential only to its own origin.
    pub fn check_for_base(&self, base_url: &str) -> Result<url::Url> {
        let base = check_base_url(base_url)?;
        for (field, url) in [
            ("auth.token_url", &self.auth.token_url),
            ("auth.authorize_url", &self.auth.authorize_url),
        ] {
            if let Some(url) = url {
                check_endpoint(field, url, &base)?;
            }
        }
        Ok(base)
    }

    /// The entity's spec, or an error listing what exists.
    pub fn entity(&self, name: &str) -> Result<&EntitySpec> {
        self.entities.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.entities.keys().map(String::as_str).collect();
            Error::invalid(
                "entity",
                format!("'{name}' is not one of: {}", known.join(", ")),
            )
        })
    }
}

fn toml_location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            // toml's span may start inside a character (found by tests/properties.rs).
            let end = (0..=r.start.min(text.len()))
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            let line = text[..end].lines().count().max(1);
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// A base URL must be http(s) with a host and hold no credentials.
pub fn check_base_url(url: &str) -> Result<url::Url> {
    let u = parse_http_url("base_url", url)?;
    Ok(u)
}

/// Parse an http(s) URL with a host and no user name or password; the message names the
/// URL without any credentials it held.
fn parse_http_url(field: &str, url: &str) -> Result<url::Url> {
    let u = url::Url::parse(url).map_err(|e| Error::invalid(field, format!("'{url}': {e}")))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::invalid(
            field,
            "must not hold a user name or password (user:password@…); credentials go to the keychain",
        ));
    }
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Error::invalid(
            field,
            format!(
                "'{url}' uses the {}: scheme; only http and https URLs are allowed",
                u.scheme()
            ),
        ));
    }
    if u.host().is_none() {
        return Err(Error::invalid(
            field,
            format!("'{url}' must be an http(s) URL with a host"),
        ));
    }
    Ok(u)
}

/// Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost), where plain http
/// exposes nothing on the network.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// What can be said of a token or authorize URL without the base it is relative to.
fn check_endpoint_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if url::Url::parse(value).is_ok() {
        parse_http_url(field, value)?;
    }
    Ok(())
}

/// Resolve an OAuth2 endpoint (`token_url`, `authorize_url`) against the connection's base
/// URL. It must stay on the base's origin, hold no credentials, and use https unless it is
/// on this machine: the client secret and the codes go there.
pub fn check_endpoint(field: &str, value: &str, base: &url::Url) -> Result<url::Url> {
    check_endpoint_text(field, value)?;
    let u = base
        .join(value)
        .map_err(|e| Error::invalid(field, format!("'{value}': {e}")))?;
    let u = parse_http_url(field, u.as_str())?;
    if u.origin() != base.origin() {
        return Err(Error::invalid(
            field,
            format!(
                "'{value}' is on {}, not on the connection's origin {}; credentials are only sent to the provider's own origin",
                u.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            ),
        ));
    }
    if u.scheme() != "https" && !is_loopback(&u) {
        return Err(Error::invalid(
            field,
            format!("'{value}' must use https (plain http is allowed only on this machine)"),
        ));
    }
    Ok(u)
}

/// Resolve a sign-in endpoint (`token_url`, `authorize_url`) as issue 15 allows: relative
/// to the connection's base URL, or absolute on another origin (a provider whose sign-in
/// server is not its API server). Either way https, or plain http on this machine. What
/// goes there (client secret, codes, refresh token) goes to that origin only; the access
/// token only to the base URL's.
pub fn resolve_auth_url(field: &str, value: &str, base: &url::Url) -> Result<url::Url> {
    check_endpoint_text(field, value)?;
    let u = base
        .join(value)
        .map_err(|e| Error::invalid(field, format!("'{value}': {e}")))?;
    let u = parse_http_url(field, u.as_str())?;
    check_secure(field, value, &u)?;
    Ok(u)
}

/// https, or http on this machine.
fn check_secure(field: &str, value: &str, u: &url::Url) -> Result<()> {
    if u.scheme() != "https" && !is_loopback(u) {
        return Err(Error::invalid(
            field,
            format!("'{value}' must use https (plain http is allowed only on this machine)"),
        ));
    }
    Ok(())
}

/// A request path must name a resource on the base URL's origin: it starts with one `/`,
/// and is not itself a URL (`/http://other.host/x` is), so credentials cannot be sent
/// anywhere else.
pub fn check_path(field: &str, path: &str) -> Result<()> {
    if !path.starts_with('/') {
        return Err(Error::invalid(field, "must start with '/'"));
    }
    if path.starts_with("//") || path.contains('\\') {
        return Err(Error::invalid(
            field,
            format!(
                "'{path}' would name another host; give a path on the base URL, like /v1/items"
            ),
        ));
    }
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::invalid(
            field,
            "must not contain spaces or control characters",
        ));
    }
    let relative = path.trim_start_matches('/');
    if url::Url::parse(relative).is_ok() {
        return Err(Error::invalid(
            field,
            format!("'{path}' is a URL, not a path; give a path on the base URL, like /v1/items"),
        ));
    }
    for base in ["https://origin.invalid/", "http://origin.invalid/v1/"] {
        let base = url::Url::parse(base).expect("a valid base");
        match join_path(&base, path) {
            Ok(u) if u.origin() == base.origin() => {}
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("'{path}' does not stay on the base URL's host"),
                ))
            }
        }
    }
    Ok(())
}

/// A spec path on the base URL: relative to the base's own path (`/v1/` + `/items` is
/// `/v1/items`), and never read as a scheme or a host.
pub fn join_path(base: &url::Url, path: &str) -> std::result::Result<url::Url, url::ParseError> {
    base.join(&format!("./{}", path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
name = "Acme"
base_url = "https://api.acme.test"
[auth]
kind = "api_key"
[entities.customers]
path = "/customers"
records = "data"
[entities.customers.pagination]
style = "page"
"#;

    #[test]
    fn parses_toml_with_defaults() {
        let s = ConnectorSpec::parse(MIN).unwrap();
        let c = s.entity("customers").unwrap();
        assert_eq!(c.id, "id");
        assert!(
            matches!(&c.pagination, Pagination::Page { page_param, first_page: 1, .. } if page_param == "page")
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let err = ConnectorSpec::parse(&MIN.replace("/customers", "customers")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid entities.customers.path: must start with '/'"
        );
        let err = ConnectorSpec::parse(&MIN.replace("\"page\"", "\"pages\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pages"), "{err}");
        let err = ConnectorSpec::parse(&MIN.replace("records =", "recordz ="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("recordz") && err.contains("line"), "{err}");
        let err =
            ConnectorSpec::parse(&MIN.replace("https://api.acme.test", "ftp://x")).unwrap_err();
        assert!(err.to_string().contains("base_url"));
        assert!(ConnectorSpec::parse(MIN)
            .unwrap()
            .entity("invoices")
            .unwrap_err()
            .to_string()
            .contains("customers"));
    }

    fn err(spec: &str) -> String {
        ConnectorSpec::parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn s1_paths_that_are_urls_or_leave_the_host_are_refused() {
        for bad in [
            "/http://other.host/x",
            "/https://other.host/x",
            "//other.host/x",
            "/\\\\other.host/x",
            "/mailto:x",
            "/file:///etc/passwd",
        ] {
            let spec = MIN.replace("\"/customers\"", &format!("{bad:?}"));
            let e = err(&spec);
            assert!(
                e.starts_with("invalid entities.customers.path: "),
                "{bad}: {e}"
            );
            assert!(e.contains("path"), "{bad}: {e}");
        }
        let e = err(&MIN.replace("\"/customers\"", "\"/http://other.host/x\""));
        assert!(e.contains("is a URL, not a path"), "{e}");
        let e = err(&MIN.replace(
            "records = \"data\"",
            "records = \"data\"\nget = \"/http://other.host/{id}\"",
        ));
        assert!(e.starts_with("invalid entities.customers.get"), "{e}");
        // Ordinary paths, with colons and dots further on, stay valid.
        for good in ["/v1/items:search", "/customers/../v2/x", "/a/b?expand=c"] {
            let spec = MIN.replace("\"/customers\"", &format!("{good:?}"));
            assert!(ConnectorSpec::parse(&spec).is_ok(), "{good}");
        }
    }

    #[test]
    fn s1_a_path_joins_under_the_base_and_never_as_a_scheme_or_host() {
        let base = url::Url::parse("https://api.acme.test/v2/").unwrap();
        assert_eq!(
            join_path(&base, "/customers").unwrap().as_str(),
            "https://api.acme.test/v2/customers"
        );
        assert_eq!(
            join_path(&base, "/http://other.host/x").unwrap().origin(),
            base.origin()
        );
        assert_eq!(
            join_path(&base, "/items:search").unwrap().as_str(),
            "https://api.acme.test/v2/items:search"
        );
    }

    #[test]
    fn s5_credentials_in_urls_and_other_schemes_are_refused() {
        let e = err(&MIN.replace(
            "https://api.acme.test",
            "https://user:hunter2@api.acme.test",
        ));
        assert!(
            e.starts_with("invalid base_url: must not hold a user name or password"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "the password is not echoed: {e}");
        let e = check_base_url("https://user@api.acme.test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user name or password"), "{e}");
        let e = check_base_url("file:///etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("file: scheme"), "{e}");
    }

    const OAUTH: &str = r#"
name = "Acme"
base_url = "https://api.acme.test"
[auth]
kind = "oauth2_client_credentials"
token_url = "TOKEN"
[entities.customers]
path = "/customers"
"#;

    #[test]
    fn s5_u1_token_url_must_be_https_on_the_specs_own_origin() {
        let with = |t: &str| ConnectorSpec::parse(&OAUTH.replace("TOKEN", t));
        assert!(with("/oauth/token").is_ok());
        assert!(with("https://api.acme.test/oauth/token").is_ok());
        let e = with("file:///etc/passwd").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid auth.token_url: 'file:///etc/passwd' uses the file: scheme; only http and https URLs are allowed"
        );
        // Issue 15: a sign-in server on another origin (Xero's identity.xero.com) is
        // allowed over https; plain http only on this machine.
        assert!(with("https://identity.acme.test/connect/token").is_ok());
        let e = with("http://api.acme.test/token").unwrap_err().to_string();
        assert!(e.contains("must use https"), "{e}");
        let e = with("http://evil.test/token").unwrap_err().to_string();
        assert!(e.contains("must use https"), "{e}");
        assert!(with("http://127.0.0.1:9/token").is_ok());
        let e = with("https://id:secret@api.acme.test/token")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user name or password") && !e.contains("secret@"),
            "{e}"
        );
        // Plain http only on this machine.
        let base = url::Url::parse("http://api.acme.test/").unwrap();
        let e = check_endpoint("auth.token_url", "/token", &base)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must use https"), "{e}");
        for local in [
            "http://127.0.0.1:8787/",
            "http://127.9.9.9/",
            "http://[::1]:9/",
            "http://localhost:1/",
        ] {
            let base = url::Url::parse(local).unwrap();
            assert!(
                check_endpoint("auth.token_url", "/oauth/token", &base).is_ok(),
                "{local}"
            );
        }
        let spec = OAUTH.replace("TOKEN", "/t").replace(
            "[entities",
            "authorize_url = \"http://other.test/a\"\n[entities",
        );
        let e = ConnectorSpec::parse(&spec).unwrap_err().to_string();
        assert!(e.starts_with("invalid auth.authorize_url"), "{e}");
        // The pre-issue-15 rule, still what `check_endpoint` (and `check_for_base`) apply.
        let base = url::Url::parse("https://api.acme.test/").unwrap();
        let e = check_endpoint("auth.token_url", "https://evil.test/token", &base)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not on the connection's origin"), "{e}");
        assert_eq!(
            resolve_auth_url("auth.token_url", "https://id.acme.test/t", &base)
                .unwrap()
                .as_str(),
            "https://id.acme.test/t"
        );
        // A spec without a base URL is checked against the connection's.
        let bare = OAUTH
            .replace("TOKEN", "https://api.acme.test/t")
            .replace("base_url = \"https://api.acme.test\"\n", "");
        let bare = ConnectorSpec::parse(&bare).unwrap();
        assert!(bare.check_for_base("https://api.acme.test/v1/").is_ok());
        let e = bare.check_for_base("https://other.acme.test").unwrap_err();
        assert_eq!(e.field(), Some("auth.token_url"));
    }

    #[test]
    fn u_empty_names_are_refused_with_the_field() {
        let e = err(&MIN.replace("records = \"data\"", "records = \"data\"\nid = \"\""));
        assert_eq!(e, "invalid entities.customers.id: must not be empty");
        let e = err(&MIN
            .replace("[entities.customers]", "[entities.\" \"]")
            .replace("entities.customers.pagination", "entities.\" \".pagination"));
        assert_eq!(e, "invalid entities: an entity name must not be empty");
        let e = err(&MIN.replace("style = \"page\"", "style = \"offset\"\nlimit_param = \"\""));
        assert_eq!(
            e,
            "invalid entities.customers.pagination.limit_param: must not be empty"
        );
        let e = err(&MIN.replace("style = \"page\"", "style = \"cursor\"\nhas_more = \" \""));
        assert_eq!(
            e,
            "invalid entities.customers.pagination.has_more: must not be empty"
        );
        let e = err(&MIN.replace("kind = \"api_key\"", "kind = \"api_key\"\nheader = \"\""));
        assert_eq!(e, "invalid auth.header: must not be empty");
        let e = err(&MIN.replace(
            "kind = \"api_key\"",
            "kind = \"api_key\"\nheader = \"X Key\"",
        ));
        assert!(e.contains("not a header name"), "{e}");
    }

    #[test]
    fn h1_limits_default_to_64_mb_and_ten_pages_worth_of_records() {
        let s = ConnectorSpec::parse(MIN).unwrap();
        assert_eq!(s.limits.max_body_bytes(), 64 * 1024 * 1024);
        assert_eq!(s.limits.max_page_records(100), 10_000);
        assert_eq!(s.limits.max_page_records(5_000), 50_000);
        let s = ConnectorSpec::parse(&format!(
            "{MIN}\n[limits]\nmax_body_mb = 2\nmax_page_records = 500\n"
        ))
        .unwrap();
        assert_eq!(s.limits.max_body_bytes(), 2 * 1024 * 1024);
        assert_eq!(s.limits.max_page_records(100), 500);
        let e = err(&format!("{MIN}\n[limits]\nmax_body_mb = 0\n"));
        assert!(e.contains("limits.max_body_mb"), "{e}");
    }

    const STRIPE: &str = include_str!("../../catalog/stripe.toml");
    const XERO: &str = include_str!("../../catalog/xero.toml");
    const HUBSPOT: &str = include_str!("../../catalog/hubspot.toml");

    #[test]
    fn i15_catalog_specs_parse_and_validate() {
        let stripe = ConnectorSpec::parse(STRIPE).unwrap();
        assert_eq!(
            stripe.entities.keys().collect::<Vec<_>>(),
            ["charges", "customers", "invoices", "products"]
        );
        assert!(stripe.about.as_ref().unwrap().summary.is_some());
        let inc = stripe
            .entity("customers")
            .unwrap()
            .incremental_config()
            .unwrap();
        assert_eq!(inc.path.as_deref(), Some("/v1/events"));
        assert_eq!(inc.record.as_deref(), Some("data.object"));
        assert_eq!(inc.field_format, TimeFormat::Unix);
        let send = inc.send.unwrap();
        assert_eq!(
            (send.to, send.name.as_deref(), send.format),
            (SendIn::Query, Some("created[gte]"), SendFormat::Unix)
        );

        let xero = ConnectorSpec::parse(XERO).unwrap();
        assert_eq!(xero.values["tenant_id"].label, "Xero organisation");
        assert_eq!(xero.request.headers["xero-tenant-id"], "{values.tenant_id}");
        let contacts = xero.entity("contacts").unwrap();
        assert_eq!(contacts.get_record.as_deref(), Some("Contacts.0"));
        assert_eq!(contacts.pagination.size_param(), None);
        assert_eq!(contacts.pagination.fixed_page_size(), Some(100));
        let inc = contacts.incremental_config().unwrap();
        assert_eq!(inc.field_format, TimeFormat::Msjson);
        assert_eq!(inc.send.unwrap().to, SendIn::Header);
        let rl = xero.rate_limit.as_ref().unwrap();
        assert_eq!(rl.window_secs, Some(60));
        assert!(xero.check_for_base("https://api.xero.com").is_err());
        let base = url::Url::parse("https://api.xero.com").unwrap();
        assert_eq!(
            resolve_auth_url(
                "auth.token_url",
                xero.auth.token_url.as_deref().unwrap(),
                &base
            )
            .unwrap()
            .origin()
            .ascii_serialization(),
            "https://identity.xero.com"
        );

        let hubspot = ConnectorSpec::parse(HUBSPOT).unwrap();
        assert_eq!(
            hubspot.auth.kinds(),
            [AuthKind::Bearer, AuthKind::Oauth2RefreshToken]
        );
        let inc = hubspot
            .entity("deals")
            .unwrap()
            .incremental_config()
            .unwrap();
        assert_eq!(inc.method, Method::Post);
        assert!(inc.body.unwrap()["filterGroups"][0]["filters"][0]["value"] == "{since}");
        assert_eq!(
            hubspot.rate_limit.as_ref().unwrap().reset_format,
            ResetFormat::Milliseconds
        );
        // Each survives being stored (as JSON) and read back.
        for spec in [stripe, xero, hubspot] {
            let json = serde_json::to_string(&spec).unwrap();
            let back = ConnectorSpec::parse(&json).unwrap();
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn i15_old_incremental_keys_mean_the_new_model() {
        let old = MIN.replace(
            "records = \"data\"",
            "records = \"data\"\nupdated_at = \"updated_at\"\nincremental_param = \"updated_since\"",
        );
        let spec = ConnectorSpec::parse(&old).unwrap();
        let inc = spec
            .entity("customers")
            .unwrap()
            .incremental_config()
            .unwrap();
        assert_eq!(
            inc,
            Incremental {
                field: "updated_at".into(),
                field_format: TimeFormat::Rfc3339,
                send: Some(SendSince {
                    to: SendIn::Query,
                    name: Some("updated_since".into()),
                    format: SendFormat::Rfc3339,
                }),
                ..Incremental::default()
            }
        );
        // updated_at alone: the time is tracked, nothing is sent.
        let spec = ConnectorSpec::parse(&MIN.replace(
            "records = \"data\"",
            "records = \"data\"\nupdated_at = \"u\"",
        ))
        .unwrap();
        let inc = spec
            .entity("customers")
            .unwrap()
            .incremental_config()
            .unwrap();
        assert_eq!((inc.field.as_str(), inc.send), ("u", None));
        assert_eq!(
            ConnectorSpec::parse(MIN)
                .unwrap()
                .entity("customers")
                .unwrap()
                .incremental_config(),
            None
        );
        // A page style without a size: per_page, as before.
        assert_eq!(
            ConnectorSpec::parse(MIN)
                .unwrap()
                .entity("customers")
                .unwrap()
                .pagination
                .size_param(),
            Some("per_page")
        );
    }

    /// MIN with `extra` appended (TOML tables after the entity's pagination table).
    fn with(extra: &str) -> std::result::Result<ConnectorSpec, String> {
        ConnectorSpec::parse(&format!("{MIN}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn i15_new_keys_are_checked_and_errors_name_the_field() {
        let inc = |body: &str| with(&format!("[entities.customers.incremental]\n{body}\n"));
        let e = inc("field = \"created\"\nsend = { in = \"query\" }").unwrap_err();
        assert_eq!(
            e,
            "invalid entities.customers.incremental.send.name: a query parameter or header needs its name"
        );
        let e = inc("field = \"created\"\nsend = { in = \"body\" }").unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.incremental.send.in: "),
            "{e}"
        );
        let e = inc("field = \"created\"\nsend = { in = \"bodyy\", name = \"x\" }").unwrap_err();
        assert!(e.contains("bodyy") && e.contains("line"), "{e}");
        let e = inc("field = \"created\"").unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.incremental.send: "),
            "{e}"
        );
        let e = inc("field = \"created\"\nmethod = \"POST\"\nbody = { q = \"x\" }\nsend = { in = \"body\" }")
            .unwrap_err();
        assert!(e.contains("\"{since}\""), "{e}");
        let e = inc("field = \"created\"\nbody = { q = \"{since}\" }\nsend = { in = \"query\", name = \"s\" }")
            .unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.incremental.body: "),
            "{e}"
        );
        let e = inc("field = \"a..b\"\nsend = { in = \"header\", name = \"If-Modified-Since\" }")
            .unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.incremental.field: "),
            "{e}"
        );
        let e =
            inc("field = \"t\"\nsend = { in = \"header\", name = \"Bad Header\" }").unwrap_err();
        assert!(e.contains("not a header name"), "{e}");
        let e = inc("field = \"t\"\npath = \"events\"\nsend = { in = \"query\", name = \"s\" }")
            .unwrap_err();
        assert_eq!(
            e,
            "invalid entities.customers.incremental.path: must start with '/'"
        );
        let e = inc("field = \"t\"\nmethod = \"POST\"\nbody = { a = \"{since}\" }\nsend = { in = \"body\" }\npagination = { style = \"link\" }")
            .unwrap_err();
        assert!(e.contains("incremental.pagination"), "{e}");
        let e = inc("field = \"t\"\nrecord = \"data.object\"\nonly = { \"data.object.object\" = [] }\nsend = { in = \"query\", name = \"s\" }")
            .unwrap_err();
        assert!(e.contains("incremental.only.data.object.object"), "{e}");
        assert!(inc(
            "field = \"t\"\nfield_format = \"unix_ms\"\nrecord = \"data.object\"\nonly = { \"type\" = [\"a\", \"b\"] }\nsend = { in = \"query\", name = \"created[gte]\", format = \"unix\" }"
        )
        .is_ok());
        // The older keys and the table do not mix.
        let both = MIN.replace(
            "records = \"data\"",
            "records = \"data\"\nupdated_at = \"u\"\nincremental = { field = \"u\", send = { in = \"query\", name = \"s\" } }",
        );
        let e = ConnectorSpec::parse(&both).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid entities.customers.updated_at: "),
            "{e}"
        );

        // Values: a template must name a declared value.
        let e = with("[request]\nheaders = { \"x-tenant\" = \"{values.tenant}\" }\n").unwrap_err();
        assert_eq!(
            e,
            "invalid request.headers.x-tenant: {values.tenant} names no declared value (there is no [values] table)"
        );
        let e = with("[values.tenant_id]\nlabel = \"Organisation\"\n[request]\nquery = { t = \"{values.tenant}\" }\n")
            .unwrap_err();
        assert!(e.contains("declared: tenant_id"), "{e}");
        assert!(with("[values.tenant_id]\nlabel = \"Organisation\"\nchoices = { path = \"/connections\", value = \"id\", label = \"name\" }\n[request]\nquery = { t = \"{values.tenant_id}\" }\n").is_ok());
        let e = with("[values.t]\nlabel = \" \"\n").unwrap_err();
        assert_eq!(e, "invalid values.t.label: must not be empty");
        let e = with("[request]\nheaders = { Authorization = \"Bearer x\" }\n").unwrap_err();
        assert!(e.contains("keychain"), "{e}");
        let e = with("[entities.customers.query]\nq = \"{values.nope}\"\n").unwrap_err();
        assert!(e.starts_with("invalid entities.customers.query.q: "), "{e}");
        let e = with("[entities.customers.headers]\n\"a b\" = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.headers.a b: "),
            "{e}"
        );

        // Rate limit.
        let e = with("[rate_limit]\nremaining = []\n").unwrap_err();
        assert!(e.starts_with("invalid rate_limit.remaining: "), "{e}");
        let e =
            with("[rate_limit]\nremaining = [\"X-Left\"]\nreset_format = \"hours\"\n").unwrap_err();
        assert!(e.contains("hours"), "{e}");
        assert!(with("[rate_limit]\nremaining = [\"X-Left\"]\nreserve = 2\nreset = \"X-Reset\"\nreset_format = \"unix\"\n").is_ok());

        // Auth.
        let auth = |extra: &str| {
            ConnectorSpec::parse(&MIN.replace(
                "kind = \"api_key\"",
                &format!("kind = \"api_key\"\n{extra}"),
            ))
            .map_err(|e| e.to_string())
        };
        assert!(auth("query = \"api_key\"\nsecret_label = \"API key\"").is_ok());
        let e = auth("query = \"api_key\"\nheader = \"X-Key\"").unwrap_err();
        assert!(
            e.starts_with("invalid auth.query: ") && e.contains("not both"),
            "{e}"
        );
        let e = auth("alternatives = [\"oauth2_refresh_token\"]").unwrap_err();
        assert_eq!(e, "invalid auth.token_url: OAuth2 needs a token_url");
        let e = auth("alternatives = [\"api_key\"]").unwrap_err();
        assert!(e.starts_with("invalid auth.alternatives: "), "{e}");
        let e = ConnectorSpec::parse(
            &MIN.replace("kind = \"api_key\"", "kind = \"bearer\"\nquery = \"k\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("invalid auth.query: "), "{e}");

        // Pagination.
        let page = |p: &str| {
            ConnectorSpec::parse(&MIN.replace("style = \"page\"", p)).map_err(|e| e.to_string())
        };
        let p = page("style = \"page\"\npage_size = 100\ntotal_pages = \"meta.pages\"").unwrap();
        let pg = &p.entity("customers").unwrap().pagination;
        assert_eq!((pg.size_param(), pg.fixed_page_size()), (None, Some(100)));
        let e = page("style = \"page\"\npage_size = 100\nsize_param = \"n\"").unwrap_err();
        assert!(
            e.starts_with("invalid entities.customers.pagination.page_size: "),
            "{e}"
        );
        let e = page("style = \"page\"\npage_size = 0").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = with("").map(|_| ()).and_then(|_| {
            ConnectorSpec::parse(&MIN.replace(
                "records = \"data\"",
                "records = \"data\"\nget_record = \".x\"",
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
        assert!(e
            .unwrap_err()
            .starts_with("invalid entities.customers.get_record: "));
    }

    #[test]
    fn i15_change_times_are_read_in_their_format_and_sent_in_another() {
        let t = |f: TimeFormat, v: Value| f.read(&v).map(normalised);
        assert_eq!(
            t(TimeFormat::Unix, Value::from(1_800_000_000)).as_deref(),
            Some("2027-01-15T08:00:00Z")
        );
        assert_eq!(
            t(TimeFormat::Unix, Value::from("1800000000")).as_deref(),
            Some("2027-01-15T08:00:00Z")
        );
        assert_eq!(
            t(TimeFormat::UnixMs, Value::from(1_573_755_038_314_i64)).as_deref(),
            Some("2019-11-14T18:10:38.314Z")
        );
        for msjson in [
            "/Date(1573755038314+0000)/",
            "/Date(1573755038314)/",
            "/Date(1573755038314-0500)/",
        ] {
            assert_eq!(
                t(TimeFormat::Msjson, Value::from(msjson)).as_deref(),
                Some("2019-11-14T18:10:38.314Z"),
                "{msjson}"
            );
        }
        for bad in ["Date(1)", "/Date(x)/", "/Date(1+00)/", ""] {
            assert_eq!(t(TimeFormat::Msjson, Value::from(bad)), None, "{bad}");
        }
        assert_eq!(
            t(
                TimeFormat::Rfc3339,
                Value::from("2026-12-02T19:00:00+01:00")
            )
            .as_deref(),
            Some("2026-12-02T18:00:00Z")
        );
        assert_eq!(t(TimeFormat::Rfc3339, Value::from(5)), None);

        let w = "2026-12-02T18:00:05.250Z";
        let r = |f: SendFormat| f.render(w).unwrap();
        assert_eq!(r(SendFormat::Rfc3339), w);
        assert_eq!(r(SendFormat::Date), "2026-12-02");
        assert_eq!(r(SendFormat::Unix), "1796234405");
        assert_eq!(r(SendFormat::UnixMs), "1796234405250");
        assert_eq!(r(SendFormat::HttpDate), "Wed, 02 Dec 2026 18:00:05 GMT");
        assert!(SendFormat::Unix.render("yesterday").is_err());
    }

    #[test]
    fn i15_rate_limit_headers_pace_as_configured() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let xero = RateLimit {
            remaining: vec![
                "X-MinLimit-Remaining".into(),
                "X-AppMinLimit-Remaining".into(),
            ],
            reserve: 0,
            reset: None,
            reset_format: ResetFormat::Seconds,
            window_secs: Some(60),
        };
        let h = headers(&[
            ("x-minlimit-remaining", "5"),
            ("x-appminlimit-remaining", "0"),
        ]);
        assert_eq!(xero.pace(&h, now), Some(Duration::from_secs(60)));
        let h = headers(&[("x-minlimit-remaining", "5")]);
        assert_eq!(xero.pace(&h, now), None);
        assert_eq!(xero.pace(&HeaderMap::new(), now), None);
        let hubspot = RateLimit {
            remaining: vec!["X-HubSpot-RateLimit-Remaining".into()],
            reserve: 1,
            reset: Some("X-HubSpot-RateLimit-Interval-Milliseconds".into()),
            reset_format: ResetFormat::Milliseconds,
            window_secs: None,
        };
        let h = headers(&[
            ("x-hubspot-ratelimit-remaining", "1"),
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ]);
        assert_eq!(hubspot.pace(&h, now), Some(Duration::from_secs(10)));
        let unix = RateLimit {
            reset_format: ResetFormat::Unix,
            reset: Some("r".into()),
            remaining: vec!["l".into()],
            reserve: 0,
            window_secs: None,
        };
        let h = headers(&[("l", "0"), ("r", "1800000030")]);
        assert_eq!(unix.pace(&h, now), Some(Duration::from_secs(30)));
        let h = headers(&[("l", "0"), ("r", "99999999999999")]);
        assert_eq!(unix.pace(&h, now), Some(MAX_PACE));
        let h = headers(&[("l", "0"), ("r", "1")]);
        assert_eq!(
            unix.pace(&h, now),
            Some(Duration::ZERO),
            "a reset in the past"
        );
    }

    #[test]
    fn i15_values_fill_templates_and_a_missing_one_names_its_label() {
        let declared: BTreeMap<String, ValueSpec> = [(
            "tenant_id".to_string(),
            ValueSpec {
                label: "Xero organisation".into(),
                help: None,
                choices: None,
            },
        )]
        .into();
        let values: BTreeMap<String, String> =
            [("tenant_id".to_string(), "t-1".to_string())].into();
        assert_eq!(
            fill_values(
                "{values.tenant_id}/x/{values.tenant_id}",
                &values,
                &declared
            )
            .unwrap(),
            "t-1/x/t-1"
        );
        assert_eq!(
            fill_values("plain {since}", &values, &declared).unwrap(),
            "plain {since}"
        );
        let e = fill_values("{values.tenant_id}", &BTreeMap::new(), &declared).unwrap_err();
        assert_eq!(e.field(), Some("values.tenant_id"));
        assert!(e.to_string().contains("no Xero organisation set"), "{e}");
        assert_eq!(e.class(), crate::error::ErrorClass::Permanent);
        assert!(value_names("{values.x").is_err());
    }
}
