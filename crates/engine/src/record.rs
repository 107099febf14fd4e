//! A provider record as it came: its JSON text, and a view of its fields borrowed from it.
//!
//! A page is parsed once into one text per record, not into a `serde_json::Value` tree per
//! record: only the fields a mapping reads (and the id and watermark) become values, and a
//! failed record's payload is the text it already is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// One record of a page, kept as the provider's JSON text.
#[derive(Debug, Clone)]
pub struct Record(Box<RawValue>);

impl Record {
    pub(crate) fn new(raw: Box<RawValue>) -> Record {
        Record(raw)
    }

    /// A record that is already a value (fetched by id, or a stored payload).
    pub fn from_value(value: &Value) -> Record {
        Record(serde_json::value::to_raw_value(value).expect("a JSON value serialises"))
    }

    /// The record's JSON text, as the provider sent it.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Its top-level fields; none when the record is not a JSON object.
    pub fn fields(&self) -> Fields<'_> {
        Fields::of(&self.0)
    }
}

/// A JSON text's members, borrowed from it, in the order they came (none when the text is
/// not an object). Records have a few dozen fields at most, so a scan beats building a map.
#[derive(Debug)]
pub struct Fields<'a> {
    /// The text the members were read from (what an empty path names).
    whole: &'a RawValue,
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// The members of `raw`; none when it is not an object.
    pub fn of(raw: &'a RawValue) -> Fields<'a> {
        let members = if raw.get().trim_start().starts_with('{') {
            // A text that passed `check_json` always reads; were one not to, it has no members.
            serde_json::from_str::<Members<'a>>(raw.get()).map_or_else(|_| Vec::new(), |m| m.0)
        } else {
            Vec::new()
        };
        Fields {
            whole: raw,
            members,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }

    /// A member's text (the last one, as `serde_json` keeps when a key repeats).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// The text at a path of keys into nested objects; a number steps into an array
    /// (`Addresses.0.City`).
    pub fn lookup<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<&'a RawValue> {
        let mut path = path.into_iter();
        let first = path.next()?;
        let mut v = match self.get(first) {
            Some(v) => v,
            None => element(self.whole, first)?,
        };
        for key in path {
            v = match Fields::of(v).get(key) {
                Some(next) => next,
                None => element(v, key)?,
            };
        }
        Some(v)
    }

    /// The value at a path. A page passed `check_json` before its records were taken, so
    /// every field parses; were one not to, it would read as absent.
    pub fn value<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<Value> {
        self.lookup(path)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The text at a dotted path as a connector spec writes one: `""` names the whole text.
    pub fn raw_at(&self, dotted: &str) -> Option<&'a RawValue> {
        if dotted.is_empty() {
            return Some(self.whole);
        }
        self.lookup(dotted.split('.'))
    }

    /// The value at a dotted path as a connector spec writes one: `""` names the whole text.
    pub fn at(&self, dotted: &str) -> Option<Value> {
        self.raw_at(dotted)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }
}

/// The element of an array text at a decimal index; none when the text is not an array.
fn element<'a>(raw: &'a RawValue, index: &str) -> Option<&'a RawValue> {
    if !raw.get().trim_start().starts_with('[') || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: usize = index.parse().ok()?;
    let items: Vec<&'a RawValue> = serde_json::from_str(raw.get()).ok()?;
    items.get(i).copied()
}

/// An object's members as they are read.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k.0, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// An object key, borrowed from the text unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct K;
        impl<'de> Visitor<'de> for K {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(K)
    }
}

/// A JSON document kept as text, once `check_json` has passed it: what the provider's bodies
/// become.
pub fn read_json(text: &[u8]) -> Result<Box<RawValue>, serde_json::Error> {
    check_json(text)?;
    serde_json::from_slice(text)
}

/// Check a JSON document as strictly as parsing it into values would (numbers in range,
/// escapes that decode, nesting within `serde_json`'s limit) without building any: a raw
/// value's own check is looser, and a page that passes here has every field readable later.
pub(crate) fn check_json(text: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Checked>(text).map(|_| ())
}

/// Any JSON value, read and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

/// What kind of JSON a text is, for messages ("got an object").
pub(crate) fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Record {
        Record::new(RawValue::from_string(text.to_string()).unwrap())
    }

    #[test]
    fn fields_are_read_from_the_text_without_a_value_tree() {
        let r = record(
            r#" {"id":"cus_1","n":2,"a\u0062c":true,"address":{"city":"Oslo","geo":{"lat":1.5}},"id":"cus_2"}"#,
        );
        let f = r.fields();
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["id", "n", "abc", "address", "id"]
        );
        assert_eq!(
            f.value(["id"]),
            Some(Value::from("cus_2")),
            "the last of a repeated key"
        );
        assert_eq!(f.value(["abc"]), Some(Value::Bool(true)), "an escaped key");
        assert_eq!(f.value(["address", "city"]), Some(Value::from("Oslo")));
        assert_eq!(f.value(["address", "geo", "lat"]), Some(Value::from(1.5)));
        assert_eq!(f.value(["address", "zip"]), None);
        assert_eq!(f.value(["n", "deeper"]), None, "a number has no fields");
        assert_eq!(f.lookup(["address"]).map(kind_of), Some("an object"));
    }

    #[test]
    fn a_record_that_is_not_an_object_has_no_fields() {
        for text in ["[1,2]", "\"cus_1\"", "42", "null", "true"] {
            assert_eq!(record(text).fields().keys().count(), 0, "{text}");
        }
        // An empty path names the record itself (a spec whose records are bare ids).
        assert_eq!(
            record("\"cus_1\"").fields().at(""),
            Some(Value::from("cus_1"))
        );
        assert_eq!(
            record(r#"{"a":{"b":2}}"#).fields().at("a.b"),
            Some(Value::from(2))
        );
        assert_eq!(
            ["[1]", "\"x\"", "42", "null", "false", "{}"].map(|t| kind_of(&record(t).0)),
            [
                "an array",
                "a string",
                "a number",
                "null",
                "a boolean",
                "an object"
            ]
        );
    }

    /// What parsing into values refuses, the check refuses too, though a raw value would
    /// pass it.
    #[test]
    fn the_check_is_as_strict_as_parsing_into_values() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for bad in [
            r#"{"amount": 1e400}"#,
            r#"{"name": "\ud800"}"#,
            r#"{"\udc00": 1}"#,
            deep.as_str(),
            r#"{"a": 1,}"#,
            "{\"a\": 1} x",
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(check_json(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<&RawValue>(r#"{"amount": 1e400}"#).is_ok());
        for good in [
            r#"{"a": [1, -2.5e3, "x\u00e9", null, true, {}], "b": 18446744073709551615}"#,
            "[]",
            "0",
        ] {
            assert!(check_json(good.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_value_record_keeps_its_content() {
        let v = serde_json::json!({"id": "cus_1", "tags": ["a"], "n": null});
        let r = Record::from_value(&v);
        assert_eq!(serde_json::from_str::<Value>(r.text()).unwrap(), v);
        assert_eq!(r.fields().value(["n"]), Some(Value::Null));
    }

    #[test]
    fn i15_dotted_paths_step_into_arrays_by_index() {
        let r = record(
            r#"{"Addresses":[{"City":"Oslo"},{"City":"Bergen"}],"Contacts":[{"ContactID":"c1"}],"0":"key","n":[[1,2],[3]]}"#,
        );
        let f = r.fields();
        assert_eq!(f.at("Addresses.0.City"), Some(Value::from("Oslo")));
        assert_eq!(f.at("Addresses.1.City"), Some(Value::from("Bergen")));
        assert_eq!(f.at("Addresses.2.City"), None);
        assert_eq!(f.at("Contacts.0.ContactID"), Some(Value::from("c1")));
        assert_eq!(f.at("n.1.0"), Some(Value::from(3)));
        assert_eq!(f.at("Addresses.x"), None);
        assert_eq!(f.at("Addresses.-1"), None);
        assert_eq!(
            f.at("0"),
            Some(Value::from("key")),
            "an object's key \"0\" stays a key"
        );
        assert_eq!(
            f.value(["Addresses", "0", "City"]),
            Some(Value::from("Oslo"))
        );
        // A body that is an array.
        let list = record(r#"[{"id":"a"},{"id":"b"}]"#);
        assert_eq!(list.fields().at("1.id"), Some(Value::from("b")));
        assert_eq!(
            list.fields().raw_at("0").map(|r| r.get()),
            Some(r#"{"id":"a"}"#)
        );
    }
}
