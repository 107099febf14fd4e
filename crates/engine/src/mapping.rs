//! Field mappings: from a provider record to a local record, with schema checks (R-E5),
//! transforms and defaults (R-R4) and required-field validation (R-R1).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::connector::spec::{normalised, TimeFormat};
use crate::error::{Error, Result};
use crate::model::RecordErrorKind;
use crate::record::Fields;

/// One source field → one target field, as a user writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// Dotted path in the provider record (`address.city`).
    pub source: String,
    /// Field name in the local record.
    pub target: String,
    /// Transforms applied in order, separated by `|` (`trim|lowercase`, `date:%d/%m/%Y`,
    /// `enum:paid=settled,open=due`, `reference:customers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Used when the value is null, or when a transform fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Null or empty after transforms and default: a missing-value error.
    #[serde(default)]
    pub required: bool,
    /// The JSON type the provider is expected to send; another type is a wrong-type error.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub expect: Option<ValueType>,
    /// The field may be absent without that being a schema change.
    #[serde(default)]
    pub optional: bool,
}

/// JSON value types a mapping can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl ValueType {
    fn matches(self, v: &Value) -> bool {
        match self {
            ValueType::String => v.is_string(),
            ValueType::Number => v.is_number(),
            ValueType::Integer => v.is_i64() || v.is_u64(),
            ValueType::Boolean => v.is_boolean(),
            ValueType::Object => v.is_object(),
            ValueType::Array => v.is_array(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Object => "object",
            ValueType::Array => "array",
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A parsed transform step.
#[derive(Debug, Clone, PartialEq)]
enum Transform {
    Trim,
    Lowercase,
    Uppercase,
    ToString,
    Number,
    Integer,
    Boolean,
    /// Parse a date (with a chrono format, else ISO `YYYY-MM-DD` or RFC 3339) → `YYYY-MM-DD`.
    Date(Option<String>),
    /// Parse RFC 3339 → normalised UTC RFC 3339.
    DateTime,
    /// Unix seconds (a number or a numeric string) → RFC 3339 UTC.
    UnixSeconds,
    /// Unix milliseconds → RFC 3339 UTC.
    UnixMs,
    /// A Microsoft JSON date (`/Date(1573755038314+0000)/`) → RFC 3339 UTC.
    MsjsonDate,
    CentsToDecimal,
    Enum(BTreeMap<String, String>),
    /// A provider id of another entity, resolved to its local id (R-R3).
    Reference(String),
    /// Must look like an email; lowercased.
    Email,
}

impl Transform {
    fn parse(step: &str) -> std::result::Result<Transform, String> {
        let step = step.trim();
        let (name, arg) = match step.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (step, None),
        };
        Ok(match (name, arg) {
            ("trim", None) => Transform::Trim,
            ("lowercase", None) => Transform::Lowercase,
            ("uppercase", None) => Transform::Uppercase,
            ("string", None) => Transform::ToString,
            ("number", None) => Transform::Number,
            ("integer", None) => Transform::Integer,
            ("boolean", None) => Transform::Boolean,
            ("unix_seconds", None) => Transform::UnixSeconds,
            ("unix_ms", None) => Transform::UnixMs,
            ("msjson_date", None) => Transform::MsjsonDate,
            ("date", fmt) => {
                if let Some(f) = fmt {
                    // Reject formats chrono cannot use, now rather than on every record.
                    let probe = NaiveDate::from_ymd_opt(2026, 3, 1).expect("valid date");
                    let mut out = String::new();
                    use std::fmt::Write;
                    if write!(out, "{}", probe.format(f)).is_err() {
                        return Err(format!("bad date format '{f}'"));
                    }
                }
                Transform::Date(fmt.map(str::to_string))
            }
            ("datetime", None) => Transform::DateTime,
            ("cents_to_decimal", None) => Transform::CentsToDecimal,
            ("email", None) => Transform::Email,
            ("enum", Some(pairs)) => {
                let mut map = BTreeMap::new();
                for pair in pairs.split(',').filter(|p| !p.trim().is_empty()) {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("enum pair '{pair}' must look like from=to"))?;
                    map.insert(k.trim().to_string(), v.trim().to_string());
                }
                if map.is_empty() {
                    return Err("enum needs at least one from=to pair".into());
                }
                Transform::Enum(map)
            }
            ("reference", Some(entity)) if !entity.is_empty() => {
                Transform::Reference(entity.to_string())
            }
            _ => return Err(format!("unknown transform '{step}'")),
        })
    }
}

impl FieldMapping {
    /// Check the mapping can be compiled; the error names the bad part.
    pub fn validate(&self) -> Result<()> {
        if self.source.trim().is_empty() {
            return Err(Error::invalid("source", "must not be empty"));
        }
        if self.target.trim().is_empty() {
            return Err(Error::invalid("target", "must not be empty"));
        }
        self.compile().map(|_| ())
    }

    /// The entities its `reference:<entity>` transforms name (none when it does not compile;
    /// [`FieldMapping::validate`] says why).
    pub fn referenced_entities(&self) -> Vec<String> {
        self.compile()
            .map(|c| {
                c.transforms
                    .into_iter()
                    .filter_map(|t| match t {
                        Transform::Reference(e) => Some(e),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn compile(&self) -> Result<CompiledField> {
        let transforms = match &self.transform {
            None => Vec::new(),
            Some(t) => t
                .split('|')
                .map(Transform::parse)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|m| Error::invalid("transform", m))?,
        };
        if transforms
            .iter()
            .filter(|t| matches!(t, Transform::Reference(_)))
            .count()
            > 1
        {
            return Err(Error::invalid(
                "transform",
                "at most one reference per field",
            ));
        }
        Ok(CompiledField {
            path: self.source.split('.').map(str::to_string).collect(),
            mapping: self.clone(),
            transforms,
        })
    }
}

#[derive(Debug, Clone)]
struct CompiledField {
    path: Vec<String>,
    mapping: FieldMapping,
    transforms: Vec<Transform>,
}

/// Why one record could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFailure {
    pub kind: RecordErrorKind,
    pub field: Option<String>,
    pub message: String,
}

impl RecordFailure {
    pub(crate) fn new(kind: RecordErrorKind, field: Option<&str>, message: String) -> Self {
        RecordFailure {
            kind,
            field: field.map(str::to_string),
            message,
        }
    }
}

/// A reference a mapped record still needs resolved against the local store.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReference {
    pub target: String,
    pub entity: String,
    pub external_id: String,
}

/// A provider record after mapping, before references are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub fields: Map<String, Value>,
    pub references: Vec<PendingReference>,
}

/// A job's mappings compiled once per execution.
#[derive(Debug, Clone)]
pub struct MappingPlan {
    fields: Vec<CompiledField>,
}

impl MappingPlan {
    pub fn new(mappings: &[FieldMapping]) -> Result<Self> {
        let fields = mappings
            .iter()
            .map(FieldMapping::compile)
            .collect::<Result<Vec<_>>>()?;
        Ok(MappingPlan { fields })
    }

    /// The entities this plan references (for batched lookups).
    pub fn referenced_entities(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().flat_map(|f| {
            f.transforms.iter().filter_map(|t| match t {
                Transform::Reference(e) => Some(e.as_str()),
                _ => None,
            })
        })
    }

    /// Map one record. The first problem found is the record's error: schema before
    /// transforms before validation, so a renamed field reads as a schema change, not as
    /// thousands of "required field is null".
    pub fn apply(&self, record: &Fields<'_>) -> std::result::Result<Mapped, RecordFailure> {
        // Schema pass (R-E5).
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let v = record.value(f.path.iter().map(String::as_str));
            match &v {
                None if !f.mapping.optional => {
                    return Err(RecordFailure::new(
                        RecordErrorKind::SchemaMismatch,
                        Some(&f.mapping.source),
                        format!("Expected field '{}' is missing", f.mapping.source),
                    ));
                }
                Some(v) if !v.is_null() => {
                    if let Some(t) = f.mapping.expect {
                        if !t.matches(v) {
                            return Err(RecordFailure::new(
                                RecordErrorKind::SchemaMismatch,
                                Some(&f.mapping.source),
                                format!(
                                    "Field '{}' is {}, expected {}",
                                    f.mapping.source,
                                    type_name(v),
                                    t.name()
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
            values.push(v);
        }
        let mut fields = Map::new();
        let mut references = Vec::new();
        for (f, v) in self.fields.iter().zip(values) {
            let m = &f.mapping;
            let value = match v.filter(|v| !v.is_null()) {
                None => m.default.clone().unwrap_or(Value::Null),
                Some(v) => match apply_transforms(&f.transforms, v) {
                    Ok(v) => v,
                    Err(TransformFail::Invalid(msg)) => {
                        return Err(RecordFailure::new(
                            RecordErrorKind::ValidationError,
                            Some(&m.target),
                            msg,
                        ));
                    }
                    Err(TransformFail::Failed(msg)) => match &m.default {
                        Some(d) => d.clone(),
                        None => {
                            return Err(RecordFailure::new(
                                RecordErrorKind::TransformError,
                                Some(&m.target),
                                format!("{msg} in field '{}'", m.source),
                            ));
                        }
                    },
                },
            };
            if m.required && is_blank(&value) {
                let what = if value.is_null() { "null" } else { "empty" };
                return Err(RecordFailure::new(
                    RecordErrorKind::ValidationError,
                    Some(&m.target),
                    format!("Required field '{}' is {what}", m.source),
                ));
            }
            if let Some(entity) = f.transforms.iter().find_map(|t| match t {
                Transform::Reference(e) => Some(e),
                _ => None,
            }) {
                if let Value::String(id) = &value {
                    references.push(PendingReference {
                        target: m.target.clone(),
                        entity: entity.clone(),
                        external_id: id.clone(),
                    });
                }
            }
            fields.insert(m.target.clone(), value);
        }
        Ok(Mapped { fields, references })
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

enum TransformFail {
    /// The value is not acceptable (a validation error, defaults do not apply).
    Invalid(String),
    /// The transform could not convert the value (R-R4: default applies).
    Failed(String),
}

fn apply_transforms(ts: &[Transform], mut v: Value) -> std::result::Result<Value, TransformFail> {
    for t in ts {
        v = apply_one(t, v)?;
    }
    Ok(v)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as a message shows it: a string as its text in quotes, else its JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn apply_one(t: &Transform, v: Value) -> std::result::Result<Value, TransformFail> {
    use TransformFail::Failed;
    Ok(match t {
        Transform::Trim => Value::String(text(&v).trim().to_string()),
        Transform::Lowercase => Value::String(text(&v).to_lowercase()),
        Transform::Uppercase => Value::String(text(&v).to_uppercase()),
        Transform::ToString => Value::String(text(&v)),
        Transform::Number => match &v {
            Value::Number(_) => v,
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| Failed(format!("Cannot parse '{s}' as a number")))?,
            other => {
                return Err(Failed(format!(
                    "Cannot convert {} to a number",
                    type_name(other)
                )))
            }
        },
        Transform::Integer => match &v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v,
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| Failed(format!("Cannot parse '{s}' as an integer")))?,
            other => {
                return Err(Failed(format!(
                    "Cannot convert {} to an integer",
                    type_name(other)
                )))
            }
        },
        Transform::Boolean => match &v {
            Value::Bool(_) => v,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => return Err(Failed(format!("Cannot parse '{s}' as a boolean"))),
            },
            Value::Number(n) => Value::Bool(n.as_f64() != Some(0.0)),
            other => {
                return Err(Failed(format!(
                    "Cannot convert {} to a boolean",
                    type_name(other)
                )))
            }
        },
        Transform::Date(fmt) => {
            let s = text(&v);
            let s = s.trim();
            let parsed = match fmt {
                Some(f) => NaiveDate::parse_from_str(s, f).ok(),
                None => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|d| d.date_naive())),
            };
            let d = parsed.ok_or_else(|| {
                Failed(format!(
                    "Cannot parse '{s}' as a date (expected {})",
                    fmt.as_deref().unwrap_or("YYYY-MM-DD")
                ))
            })?;
            Value::String(d.format("%Y-%m-%d").to_string())
        }
        Transform::DateTime => {
            let s = text(&v);
            let d = DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| Failed(format!("Cannot parse '{s}' as an RFC 3339 date-time")))?;
            Value::String(
                d.to_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        }
        Transform::UnixSeconds | Transform::UnixMs | Transform::MsjsonDate => {
            let (format, what) = match t {
                Transform::UnixSeconds => (TimeFormat::Unix, "unix seconds"),
                Transform::UnixMs => (TimeFormat::UnixMs, "unix milliseconds"),
                _ => (TimeFormat::Msjson, "a /Date(…)/ date"),
            };
            let d = format
                .read(&v)
                .ok_or_else(|| Failed(format!("Cannot read {} as {what}", shown(&v))))?;
            Value::String(normalised(d))
        }
        Transform::CentsToDecimal => {
            let cents = v
                .as_i64()
                .ok_or_else(|| Failed(format!("Cannot read {} as cents", type_name(&v))))?;
            serde_json::Number::from_f64(cents as f64 / 100.0)
                .map(Value::Number)
                .ok_or_else(|| Failed("amount out of range".into()))?
        }
        Transform::Enum(map) => {
            let s = text(&v);
            match map.get(&s) {
                Some(to) => Value::String(to.clone()),
                None => {
                    let known: Vec<&str> = map.keys().map(String::as_str).collect();
                    return Err(Failed(format!(
                        "Value '{s}' is not one of {}",
                        known.join(", ")
                    )));
                }
            }
        }
        Transform::Reference(_) => match v {
            Value::String(_) => v,
            other => {
                return Err(Failed(format!(
                    "Reference must be an id string, got {}",
                    type_name(&other)
                )))
            }
        },
        Transform::Email => {
            let s = text(&v).trim().to_lowercase();
            let valid = s
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !s.contains(char::is_whitespace);
            if !valid {
                return Err(TransformFail::Invalid(format!(
                    "Invalid email address '{s}'"
                )));
            }
            Value::String(s)
        }
    })
}

/// The record as stored (JSON text) and its content hash, from one serialisation.
pub fn serialize_and_hash(fields: &Map<String, Value>) -> (String, String) {
    // serde_json's Map is ordered by key (no preserve_order), so this is canonical.
    let text = serde_json::to_string(fields).expect("a JSON map serialises");
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    (text, hash)
}

/// The natural key of a mapped record: the key fields' values joined, or `None` when any is
/// blank (a blank key matches nothing).
pub fn natural_key(fields: &Map<String, Value>, keys: &[String]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        let v = fields.get(k)?;
        if is_blank(v) {
            return None;
        }
        if i > 0 {
            out.push('\u{1f}');
        }
        match v {
            Value::String(s) => out.push_str(&s.trim().to_lowercase()),
            other => out.push_str(&other.to_string()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use serde_json::json;

    /// A provider record as a run receives it.
    fn rec(v: Value) -> Record {
        Record::from_value(&v)
    }

    fn m(source: &str, target: &str) -> FieldMapping {
        FieldMapping {
            source: source.into(),
            target: target.into(),
            transform: None,
            default: None,
            required: false,
            expect: None,
            optional: false,
        }
    }

    #[test]
    fn r_r1_required_null_is_a_validation_error_in_the_spec_format() {
        let plan = MappingPlan::new(&[FieldMapping {
            required: true,
            ..m("email", "email")
        }])
        .unwrap();
        let err = plan
            .apply(&rec(json!({"email": null})).fields())
            .unwrap_err();
        assert_eq!(err.kind, RecordErrorKind::ValidationError);
        assert_eq!(err.message, "Required field 'email' is null");
    }

    #[test]
    fn r_e5_missing_field_and_wrong_type_are_schema_mismatches() {
        let plan = MappingPlan::new(&[
            FieldMapping {
                expect: Some(ValueType::Integer),
                ..m("amount_cents", "amount")
            },
            m("email", "email"),
        ])
        .unwrap();
        let err = plan
            .apply(&rec(json!({"amount_cents": "12.50", "email": "a@b.co"})).fields())
            .unwrap_err();
        assert_eq!(err.kind, RecordErrorKind::SchemaMismatch);
        assert!(
            err.message.contains("is string, expected integer"),
            "{}",
            err.message
        );
        let err = plan
            .apply(&rec(json!({"amount_cents": 1})).fields())
            .unwrap_err();
        assert_eq!(err.kind, RecordErrorKind::SchemaMismatch);
        assert_eq!(err.message, "Expected field 'email' is missing");
    }

    #[test]
    fn r_r4_transform_failure_uses_default_else_fails() {
        let with_default = FieldMapping {
            transform: Some("date".into()),
            default: Some(json!("1970-01-01")),
            ..m("issued_at", "issued_on")
        };
        let plan = MappingPlan::new(std::slice::from_ref(&with_default)).unwrap();
        let ok = plan
            .apply(&rec(json!({"issued_at": "31/02/2026"})).fields())
            .unwrap();
        assert_eq!(ok.fields["issued_on"], json!("1970-01-01"));
        let plan = MappingPlan::new(&[FieldMapping {
            default: None,
            ..with_default
        }])
        .unwrap();
        let err = plan
            .apply(&rec(json!({"issued_at": "31/02/2026"})).fields())
            .unwrap_err();
        assert_eq!(err.kind, RecordErrorKind::TransformError);
        assert!(err.message.contains("'31/02/2026'"), "{}", err.message);
    }

    #[test]
    fn transforms_chain_and_references_are_collected() {
        let plan = MappingPlan::new(&[
            FieldMapping {
                transform: Some("trim|email".into()),
                ..m("email", "email")
            },
            FieldMapping {
                transform: Some("enum:paid=settled,open=due".into()),
                ..m("status", "status")
            },
            FieldMapping {
                transform: Some("reference:customers".into()),
                ..m("customer", "customer_id")
            },
            FieldMapping {
                transform: Some("cents_to_decimal".into()),
                ..m("amount_cents", "amount")
            },
            FieldMapping {
                optional: true,
                default: Some(json!("US")),
                ..m("address.country", "country")
            },
        ])
        .unwrap();
        let out = plan
            .apply(&rec(json!({"email": " Ann@X.io ", "status": "paid", "customer": "cus_1", "amount_cents": 1250})).fields())
            .unwrap();
        assert_eq!(out.fields["email"], json!("ann@x.io"));
        assert_eq!(out.fields["status"], json!("settled"));
        assert_eq!(out.fields["amount"], json!(12.5));
        assert_eq!(out.fields["country"], json!("US"));
        assert_eq!(out.references[0].external_id, "cus_1");
        let bad = plan.apply(
            &rec(json!({"email": "nope", "status": "paid", "customer": "c", "amount_cents": 1}))
                .fields(),
        );
        assert_eq!(bad.unwrap_err().kind, RecordErrorKind::ValidationError);
    }

    #[test]
    fn bad_mappings_are_rejected_with_the_reason() {
        let err = FieldMapping {
            transform: Some("frobnicate".into()),
            ..m("a", "b")
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown transform 'frobnicate'"), "{err}");
        let err = FieldMapping {
            transform: Some("enum:".into()),
            ..m("a", "b")
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("enum"), "{err}");
    }

    #[test]
    fn hash_and_natural_key_are_canonical() {
        let a = json!({"b": 1, "a": "X"});
        let b = json!({"a": "X", "b": 1});
        assert_eq!(
            serialize_and_hash(a.as_object().unwrap()),
            serialize_and_hash(b.as_object().unwrap())
        );
        let keys = vec!["a".to_string()];
        assert_eq!(
            natural_key(a.as_object().unwrap(), &keys).as_deref(),
            Some("x")
        );
        assert_eq!(
            natural_key(json!({"a": ""}).as_object().unwrap(), &keys),
            None
        );
    }

    #[test]
    fn i15_unix_and_msjson_transforms_give_rfc3339_and_chain_into_date() {
        let plan = |t: &str| {
            MappingPlan::new(&[FieldMapping {
                transform: Some(t.into()),
                ..m("v", "out")
            }])
            .unwrap()
        };
        let run = |t: &str, v: Value| {
            plan(t)
                .apply(&rec(json!({ "v": v })).fields())
                .map(|m| m.fields["out"].clone())
                .map_err(|f| f.message)
        };
        assert_eq!(
            run("unix_seconds", json!(1_800_000_000)),
            Ok(json!("2027-01-15T08:00:00Z"))
        );
        assert_eq!(
            run("unix_seconds|date", json!("1800000000")),
            Ok(json!("2027-01-15"))
        );
        assert_eq!(
            run("unix_ms", json!(1_573_755_038_314_i64)),
            Ok(json!("2019-11-14T18:10:38.314Z"))
        );
        assert_eq!(
            run("msjson_date", json!("/Date(1573755038314+0000)/")),
            Ok(json!("2019-11-14T18:10:38.314Z"))
        );
        assert_eq!(
            run("msjson_date|date", json!("/Date(1573689600000+0000)/")),
            Ok(json!("2019-11-14"))
        );
        let e = run("msjson_date", json!("2019-11-14")).unwrap_err();
        assert!(
            e.contains("Cannot read '2019-11-14' as a /Date(…)/ date"),
            "{e}"
        );
        let e = run("unix_seconds", json!(true)).unwrap_err();
        assert!(e.contains("Cannot read true as unix seconds"), "{e}");
    }
}
