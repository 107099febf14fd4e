//! Switchable faults: the knobs a test turns to make the provider misbehave, and how bad-record
//! and schema-drift faults rewrite records as they are served.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::hash::{hash3, salt, unit};
use crate::model::{Entity, Generator};

/// Faults currently applied to data requests. All zero (the default) means a well-behaved API.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Fraction of data requests answered with `error_status`, decided per request by a hash of
    /// the seed and the authenticated data-request counter.
    pub error_rate: f64,
    /// The next N data requests are answered with `error_status` (counts down).
    pub error_burst: u32,
    /// Status for injected errors; 0 means 503.
    pub error_status: u16,
    /// Fraction of data requests answered 429.
    pub rate_limit_rate: f64,
    /// The next N data requests are answered 429 (counts down).
    pub rate_limit_burst: u32,
    /// `Retry-After` header sent with injected 429s.
    pub retry_after: RetryAfter,
    /// Delay added before answering every data request.
    pub latency_ms: u64,
    /// Once this many data requests have been let through since `hang_after` was last changed,
    /// every further data request stalls `hang_ms` before being answered normally.
    pub hang_after: Option<u32>,
    pub hang_ms: u64,
    /// The next N data requests answer 200 with a body that is not valid JSON.
    pub malformed_burst: u32,
    /// Specific records to corrupt.
    pub bad_records: Vec<BadRecord>,
    /// Fraction of every entity's records corrupted, chosen by hash(seed, entity, index).
    pub bad_record_rate: f64,
    pub schema_drift: Vec<SchemaDrift>,
}

impl Faults {
    /// The status injected errors use.
    pub fn effective_error_status(&self) -> u16 {
        if self.error_status == 0 {
            503
        } else {
            self.error_status
        }
    }
}

/// How an injected 429 tells the client when to come back.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    #[default]
    None,
    /// `Retry-After: <n>`
    Seconds(u64),
    /// `Retry-After: <HTTP-date n seconds from now>`
    HttpDate(u64),
}

/// One record to serve corrupted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BadRecord {
    pub entity: Entity,
    pub id: String,
    pub kind: BadKind,
}

/// Ways a record can be wrong. See `docs/sandbox.md` for the exact field each one hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadKind {
    NullRequired,
    InvalidDate,
    DanglingReference,
    DuplicateKey,
    WrongType,
}

impl BadKind {
    pub const ALL: [BadKind; 5] = [
        BadKind::NullRequired,
        BadKind::InvalidDate,
        BadKind::DanglingReference,
        BadKind::DuplicateKey,
        BadKind::WrongType,
    ];

    /// Whether this kind changes records of `entity` (customers and products have no
    /// references; payments have no natural key).
    pub fn applies_to(self, entity: Entity) -> bool {
        !matches!(
            (self, entity),
            (
                BadKind::DanglingReference,
                Entity::Customers | Entity::Products
            ) | (BadKind::DuplicateKey, Entity::Payments)
        )
    }

    fn applicable(entity: Entity) -> &'static [BadKind] {
        use BadKind::*;
        match entity {
            Entity::Customers | Entity::Products => {
                &[NullRequired, InvalidDate, DuplicateKey, WrongType]
            }
            Entity::Invoices => &[
                NullRequired,
                InvalidDate,
                DanglingReference,
                DuplicateKey,
                WrongType,
            ],
            Entity::Payments => &[NullRequired, InvalidDate, DanglingReference, WrongType],
        }
    }
}

/// A change to the shape of every record of one entity, as when a provider ships a new API
/// version underneath its clients.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SchemaDrift {
    pub entity: Entity,
    /// Move the value of the top-level key `.0` to key `.1`.
    #[serde(default)]
    pub rename: Option<(String, String)>,
    /// Change the JSON type of this top-level field (after any rename in the same entry):
    /// numbers and booleans become strings, strings become their length as a number.
    #[serde(default)]
    pub retype: Option<String>,
}

/// The record-level faults for one entity, resolved once per request so the per-record check
/// on the fast path is a hash lookup and a multiply.
#[derive(Debug)]
pub(crate) struct RecordFaults<'a> {
    entity: Entity,
    seed: u64,
    listed: HashMap<u64, Vec<BadKind>>,
    rate: f64,
    drift: Vec<&'a SchemaDrift>,
}

impl<'a> RecordFaults<'a> {
    pub(crate) fn new(faults: &'a Faults, entity: Entity, seed: u64) -> Self {
        let mut listed: HashMap<u64, Vec<BadKind>> = HashMap::new();
        for bad in faults.bad_records.iter().filter(|b| b.entity == entity) {
            if let Some(n) = entity.parse_id(&bad.id) {
                listed.entry(n as u64).or_default().push(bad.kind);
            }
        }
        RecordFaults {
            entity,
            seed,
            listed,
            rate: faults.bad_record_rate,
            drift: faults
                .schema_drift
                .iter()
                .filter(|d| d.entity == entity)
                .collect(),
        }
    }

    /// Bad kinds to apply to record `n`; empty (and allocation-free) for a clean record.
    pub(crate) fn kinds(&self, n: u64) -> Vec<BadKind> {
        let mut kinds = self.listed.get(&n).cloned().unwrap_or_default();
        if self.rate > 0.0
            && unit(hash3(
                self.seed ^ salt::BAD_RECORD,
                self.entity.slot() as u64,
                n,
            )) < self.rate
        {
            let applicable = BadKind::applicable(self.entity);
            let kind = applicable[(n % applicable.len() as u64) as usize];
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }

    /// Applies only the schema drift, to a record already in a persona's shape.
    pub(crate) fn apply_drift(&self, record: &mut Value) {
        if let Value::Object(map) = record {
            for drift in &self.drift {
                apply_drift(drift, map);
            }
        }
    }

    pub(crate) fn has_drift(&self) -> bool {
        !self.drift.is_empty()
    }

    /// Corrupts and reshapes `record` (record `n`) in place.
    pub(crate) fn apply(&self, gen: &Generator, n: u64, kinds: &[BadKind], record: &mut Value) {
        let Value::Object(map) = record else { return };
        for &kind in kinds {
            apply_bad(self.entity, gen, n, kind, map);
        }
        for drift in &self.drift {
            apply_drift(drift, map);
        }
    }
}

fn apply_bad(entity: Entity, gen: &Generator, n: u64, kind: BadKind, map: &mut Map<String, Value>) {
    match kind {
        BadKind::NullRequired => {
            let field = match entity {
                Entity::Customers => "email",
                Entity::Products => "name",
                Entity::Invoices => "number",
                Entity::Payments => "amount_cents",
            };
            map.insert(field.into(), Value::Null);
        }
        BadKind::InvalidDate => {
            let (field, value) = match entity {
                Entity::Customers => ("created_at", "31/02/2026"),
                Entity::Products => ("released_on", "not-a-date"),
                Entity::Invoices => ("issued_at", "31/02/2026"),
                Entity::Payments => ("paid_at", "31/02/2026"),
            };
            map.insert(field.into(), value.into());
        }
        BadKind::DanglingReference => match entity {
            Entity::Invoices => {
                map.insert("customer".into(), "cus_99999999".into());
            }
            Entity::Payments => {
                map.insert("invoice".into(), "in_99999999".into());
            }
            Entity::Customers | Entity::Products => {}
        },
        BadKind::DuplicateKey => {
            // Copy the key of a neighbour; record 1 has no predecessor, so it copies record 2.
            let neighbour = if n > 1 { n - 1 } else { n + 1 };
            if neighbour <= gen.count(entity) {
                let updated = Generator::base_updated_at(neighbour);
                if let Some((field, key)) = gen.record(entity, neighbour, updated).natural_key() {
                    map.insert(field.into(), key.into());
                }
            }
        }
        BadKind::WrongType => {
            if entity == Entity::Customers {
                map.insert("phone".into(), 5_551_234.into());
            } else {
                let field = if entity == Entity::Products {
                    "price_cents"
                } else {
                    "amount_cents"
                };
                let text = match map.get(field).and_then(Value::as_u64) {
                    Some(cents) => format!("{}.{:02}", cents / 100, cents % 100),
                    None => "12.50".to_owned(),
                };
                map.insert(field.into(), text.into());
            }
        }
    }
}

fn apply_drift(drift: &SchemaDrift, map: &mut Map<String, Value>) {
    if let Some((from, to)) = &drift.rename {
        if let Some(value) = map.remove(from) {
            map.insert(to.clone(), value);
        }
    }
    if let Some(field) = &drift.retype {
        if let Some(value) = map.get_mut(field) {
            let retyped = match value {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                Value::String(s) => Value::from(s.chars().count()),
                _ => return,
            };
            *value = retyped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::EPOCH;

    fn gen() -> Generator {
        Generator {
            seed: 7,
            counts: [10, 10, 10, 10],
        }
    }

    fn bad(entity: Entity, n: u64, kind: BadKind) -> Value {
        let faults = Faults {
            bad_records: vec![BadRecord {
                entity,
                id: entity.id(n as usize),
                kind,
            }],
            ..Faults::default()
        };
        let rf = RecordFaults::new(&faults, entity, 7);
        let mut v = gen().record(entity, n, EPOCH).to_value();
        rf.apply(&gen(), n, &rf.kinds(n), &mut v);
        v
    }

    #[test]
    fn each_kind_hits_its_field() {
        assert!(bad(Entity::Customers, 2, BadKind::NullRequired)["email"].is_null());
        assert!(bad(Entity::Payments, 2, BadKind::NullRequired)["amount_cents"].is_null());
        assert_eq!(
            bad(Entity::Invoices, 2, BadKind::InvalidDate)["issued_at"],
            "31/02/2026"
        );
        assert_eq!(
            bad(Entity::Products, 2, BadKind::InvalidDate)["released_on"],
            "not-a-date"
        );
        assert_eq!(
            bad(Entity::Invoices, 2, BadKind::DanglingReference)["customer"],
            "cus_99999999"
        );
        assert_eq!(
            bad(Entity::Payments, 2, BadKind::DanglingReference)["invoice"],
            "in_99999999"
        );
        let prev = gen().record(Entity::Customers, 4, EPOCH).to_value();
        assert_eq!(
            bad(Entity::Customers, 5, BadKind::DuplicateKey)["email"],
            prev["email"]
        );
        assert_eq!(
            bad(Entity::Products, 1, BadKind::DuplicateKey)["sku"],
            "SKU-00000002"
        );
        assert!(bad(Entity::Products, 3, BadKind::WrongType)["price_cents"].is_string());
        assert_eq!(
            bad(Entity::Customers, 3, BadKind::WrongType)["phone"],
            5_551_234
        );
        // Not applicable: the record is served unchanged.
        let clean = gen().record(Entity::Customers, 3, EPOCH).to_value();
        assert_eq!(bad(Entity::Customers, 3, BadKind::DanglingReference), clean);
    }

    #[test]
    fn rate_picks_applicable_kinds_deterministically() {
        let faults = Faults {
            bad_record_rate: 0.3,
            ..Faults::default()
        };
        for entity in Entity::ALL {
            let rf = RecordFaults::new(&faults, entity, 7);
            let picked: Vec<_> = (1..=1_000).map(|n| rf.kinds(n)).collect();
            let bad_count = picked.iter().filter(|k| !k.is_empty()).count();
            assert!((220..380).contains(&bad_count), "{entity}: {bad_count}");
            assert!(picked.iter().flatten().all(|k| k.applies_to(entity)));
            let again: Vec<_> = (1..=1_000).map(|n| rf.kinds(n)).collect();
            assert_eq!(picked, again);
        }
    }

    #[test]
    fn drift_renames_then_retypes() {
        let faults = Faults {
            schema_drift: vec![
                SchemaDrift {
                    entity: Entity::Customers,
                    rename: Some(("email".into(), "email_address".into())),
                    retype: Some("email_address".into()),
                },
                SchemaDrift {
                    entity: Entity::Products,
                    rename: None,
                    retype: Some("price_cents".into()),
                },
            ],
            ..Faults::default()
        };
        let rf = RecordFaults::new(&faults, Entity::Customers, 7);
        let mut v = gen().record(Entity::Customers, 1, EPOCH).to_value();
        let email_len = v["email"].as_str().map(str::len);
        rf.apply(&gen(), 1, &[], &mut v);
        assert!(v.get("email").is_none());
        assert_eq!(v["email_address"].as_u64().map(|n| n as usize), email_len);
        let rf = RecordFaults::new(&faults, Entity::Products, 7);
        let mut p = gen().record(Entity::Products, 1, EPOCH).to_value();
        let price = p["price_cents"].to_string();
        rf.apply(&gen(), 1, &[], &mut p);
        assert_eq!(p["price_cents"], Value::String(price));
    }

    #[test]
    fn faults_json_round_trips_with_defaults() {
        let f: Faults = serde_json::from_str(r#"{"error_burst":2,"retry_after":{"seconds":3}}"#)
            .unwrap_or_default();
        assert_eq!(f.error_burst, 2);
        assert_eq!(f.retry_after, RetryAfter::Seconds(3));
        assert_eq!(f.effective_error_status(), 503);
        let back: Faults = serde_json::from_value(serde_json::to_value(&f).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(back, f);
    }
}
