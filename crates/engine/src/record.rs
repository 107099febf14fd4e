//! A provider record as it came: its JSON text, and a view of its fields borrowed from it.
//!
//! A page is parsed once into one text per record, not into a `serde_json::Value` tree per
//! record: only the fields a mapping reads (and the id and watermark) become values, and a
//! failed record's payload is the text it already is.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
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
        Fields::of(&self.0).unwrap_or_default()
    }
}

/// A JSON object's members, borrowed from its text, in the order they came. Records have a
/// few dozen fields at most, so a scan beats building a map.
#[derive(Debug, Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The members of `raw`, or `None` when it is not an object.
    pub fn of(raw: &'a RawValue) -> Option<Fields<'a>> {
        if !raw.get().trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Fields<'a>>(raw.get()).ok()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// A member's text (the last one, as `serde_json` keeps when a key repeats).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The text at a path of keys into nested objects.
    pub fn lookup<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<&'a RawValue> {
        let mut path = path.into_iter();
        let mut v = self.get(path.next()?)?;
        for key in path {
            v = Fields::of(v)?.get(key)?;
        }
        Some(v)
    }

    /// The value at a path. A text the page parse accepted always parses; if it did not
    /// (nesting deeper than `serde_json` allows), the field reads as absent.
    pub fn value<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> Option<Value> {
        self.lookup(path)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k.0, v));
                }
                Ok(Fields(members))
            }
        }
        d.deserialize_map(Members)
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

    #[test]
    fn a_value_record_keeps_its_content() {
        let v = serde_json::json!({"id": "cus_1", "tags": ["a"], "n": null});
        let r = Record::from_value(&v);
        assert_eq!(serde_json::from_str::<Value>(r.text()).unwrap(), v);
        assert_eq!(r.fields().value(["n"]), Some(Value::Null));
    }
}
