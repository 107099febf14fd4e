//! The declarative connector spec (TOML or JSON, docs/connectors.md): how to talk to one
//! provider's REST API — auth, list endpoints, records path, pagination, incremental filter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    pub auth: AuthSpec,
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
    /// `page=1,2,…` until a short or empty page.
    Page {
        #[serde(default = "p_page")]
        page_param: String,
        #[serde(default = "p_per_page")]
        size_param: String,
        #[serde(default = "p_one")]
        first_page: u64,
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
                ..
            } => vec![("page_param", page_param), ("size_param", size_param)],
            Pagination::Offset {
                offset_param,
                limit_param,
            } => vec![("offset_param", offset_param), ("limit_param", limit_param)],
            Pagination::Link { limit_param } => vec![("limit_param", limit_param)],
        }
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
fn p_per_page() -> String {
    "per_page".into()
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
        match self.auth.kind {
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken
                if self.auth.token_url.is_none() =>
            {
                return Err(Error::invalid("auth.token_url", "OAuth2 needs a token_url"));
            }
            _ => {}
        }
        for (field, url) in [
            ("auth.token_url", &self.auth.token_url),
            ("auth.authorize_url", &self.auth.authorize_url),
        ] {
            if let Some(url) = url {
                check_endpoint_text(field, url)?;
                if let Some(base) = &base {
                    check_endpoint(field, url, base)?;
                }
            }
        }
        if let Some(h) = &self.auth.header {
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
            for (key, value) in e.pagination.params() {
                not_empty(&format!("pagination.{key}"), value)?;
            }
            if e.incremental_param.is_some() && e.updated_at.is_none() {
                return Err(Error::invalid(
                    field("updated_at"),
                    "incremental_param needs the updated_at field to track the high-water mark",
                ));
            }
            for (i, m) in e.mappings.iter().enumerate() {
                m.validate()
                    .map_err(|err| Error::invalid(field(&format!("mappings[{i}]")), err))?;
            }
        }
        Ok(())
    }

    /// Check the spec against the base URL a connection will use (its own or the spec's):
    /// the OAuth2 endpoints must resolve to that origin (see [`check_endpoint`]).
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
        let e = with("https://evil.test/token").unwrap_err().to_string();
        assert!(
            e.contains("not on the connection's origin https://api.acme.test"),
            "{e}"
        );
        let e = with("http://api.acme.test/token").unwrap_err().to_string();
        assert!(e.contains("not on the connection's origin"), "{e}");
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
            "authorize_url = \"https://other.test/a\"\n[entities",
        );
        let e = ConnectorSpec::parse(&spec).unwrap_err().to_string();
        assert!(e.starts_with("invalid auth.authorize_url"), "{e}");
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
}
