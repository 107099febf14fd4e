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
        if let Some(url) = &self.base_url {
            check_base_url(url)?;
        }
        match self.auth.kind {
            AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2RefreshToken
                if self.auth.token_url.is_none() =>
            {
                return Err(Error::invalid("auth.token_url", "OAuth2 needs a token_url"));
            }
            _ => {}
        }
        if self.entities.is_empty() {
            return Err(Error::invalid("entities", "at least one entity is needed"));
        }
        for (name, e) in &self.entities {
            let field = |f: &str| format!("entities.{name}.{f}");
            if !e.path.starts_with('/') {
                return Err(Error::invalid(field("path"), "must start with '/'"));
            }
            if let Some(get) = &e.get {
                if !get.contains("{id}") {
                    return Err(Error::invalid(field("get"), "must contain {id}"));
                }
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

/// A base URL must be http(s) with a host.
pub fn check_base_url(url: &str) -> Result<url::Url> {
    let u =
        url::Url::parse(url).map_err(|e| Error::invalid("base_url", format!("'{url}': {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(Error::invalid(
            "base_url",
            format!("'{url}' must be an http(s) URL with a host"),
        ));
    }
    Ok(u)
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
}
