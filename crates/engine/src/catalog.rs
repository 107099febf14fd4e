//! The built-in connector catalog (issue 15): connector specs for real providers, shipped in
//! the binary, so an admin connects Stripe, Xero or HubSpot without writing a spec.
//! docs/providers.md says what each syncs and what to set up at the provider.
//!
//! An entry's `key` is its stable id (the CLI's `--connector stripe`, the wizard's choice);
//! its spec is the text in `crates/engine/catalog/<key>.toml`, parsed and validated like any
//! user-supplied spec. A connection made from an entry keeps a copy of the spec, so an app
//! update that changes an entry does not change a running connection behind its admin's back.

use std::sync::OnceLock;

use crate::connector::ConnectorSpec;
use crate::error::{Error, Result};

/// The built-in specs, by key, in the order they are listed.
const SOURCES: &[(&str, &str)] = &[
    ("stripe", include_str!("../catalog/stripe.toml")),
    ("xero", include_str!("../catalog/xero.toml")),
    ("hubspot", include_str!("../catalog/hubspot.toml")),
];

/// One built-in connector.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// Stable id: `stripe`, `xero`, `hubspot`.
    pub key: &'static str,
    pub spec: ConnectorSpec,
    /// The spec as written (TOML), for `connector show --spec` and the custom-connector
    /// path that starts from it.
    pub source: &'static str,
}

/// Every built-in connector, in catalog order.
pub fn all() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(key, source)| CatalogEntry {
                key,
                // Built in and tested (every entry parses and validates): a failure here is
                // a bug in this build, not something an admin can fix.
                spec: ConnectorSpec::parse(source)
                    .unwrap_or_else(|e| panic!("built-in connector '{key}' is invalid: {e}")),
                source,
            })
            .collect()
    })
}

/// The built-in connector `key` (case-insensitive); an unknown key is `invalid connector`,
/// naming the keys there are.
pub fn get(key: &str) -> Result<&'static CatalogEntry> {
    let wanted = key.trim();
    all()
        .iter()
        .find(|e| e.key.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            Error::invalid(
                "connector",
                format!(
                    "there is no built-in connector '{wanted}'; the built-in ones are {} (or give a spec file)",
                    keys().join(", ")
                ),
            )
        })
}

/// The keys of the built-in connectors, in catalog order.
pub fn keys() -> Vec<&'static str> {
    SOURCES.iter().map(|(k, _)| *k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i15_every_catalog_entry_parses_and_validates() {
        assert_eq!(all().len(), SOURCES.len());
        for e in all() {
            e.spec.validate().unwrap();
            assert_eq!(ConnectorSpec::parse(e.source).unwrap(), e.spec, "{}", e.key);
            assert!(e.spec.base_url.is_some(), "{} has a base URL", e.key);
            assert!(!e.spec.entities.is_empty(), "{}", e.key);
            for (name, entity) in &e.spec.entities {
                assert!(entity.label.is_some(), "{}.{name} has a label", e.key);
                assert!(!entity.mappings.is_empty(), "{}.{name} has mappings", e.key);
                assert!(
                    entity.get.is_some(),
                    "{}.{name} can be fetched by id",
                    e.key
                );
            }
        }
    }

    #[test]
    fn i15_every_catalog_entity_makes_a_valid_incremental_job_with_its_defaults() {
        for e in all() {
            let spec = &e.spec;
            for (name, entity) in &spec.entities {
                assert!(
                    entity.filters_changes(),
                    "{}.{name}: the provider can be asked for changes only",
                    e.key
                );
                let settings = crate::JobSettings {
                    mappings: entity.mappings.clone(),
                    natural_keys: entity.natural_keys.clone(),
                    duplicate_detection: !entity.natural_keys.is_empty(),
                    ..Default::default()
                };
                settings
                    .validate()
                    .unwrap_or_else(|err| panic!("{}.{name}: {err}", e.key));
                settings
                    .check_references(spec.entities.keys().map(String::as_str))
                    .unwrap_or_else(|err| panic!("{}.{name}: {err}", e.key));
            }
            // What the wizard and `connector show` say about it.
            let about = spec.about.as_ref().expect("an [about]");
            assert!(
                about.summary.is_some() && about.setup.is_some(),
                "{}",
                e.key
            );
        }
    }

    #[test]
    fn i15_catalog_keys_are_stable_ids() {
        // Stored nowhere but typed by admins and scripts (`--connector stripe`): renaming one
        // breaks them, so the list is pinned here.
        assert_eq!(keys(), ["stripe", "xero", "hubspot"]);
        for e in all() {
            assert!(e.key.bytes().all(|b| b.is_ascii_lowercase()), "{}", e.key);
        }
        assert_eq!(get("stripe").unwrap().spec.name, "Stripe");
        assert_eq!(get("Xero").unwrap().spec.name, "Xero");
        assert_eq!(get(" hubspot ").unwrap().spec.name, "HubSpot");
    }

    #[test]
    fn i15_an_unknown_key_names_the_known_ones() {
        let e = get("quickbooks").unwrap_err();
        assert_eq!(e.field(), Some("connector"));
        let msg = e.to_string();
        assert!(msg.contains("'quickbooks'"), "{msg}");
        assert!(msg.contains("stripe, xero, hubspot"), "{msg}");
    }
}
