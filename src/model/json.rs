//! A JSON value that keeps JavaScript's object property order.
//!
//! The reference engine echoes the flattened context in JS property order (array-index keys
//! ascending first, then insertion order) and reports missing fields in evaluation order. serde_json's
//! `Map` is sorted unless the `preserve_order` feature is on, so contexts are parsed into this type
//! instead: objects are vectors of entries ordered as `JSON.parse` would order them. Numbers are
//! `f64`, as in JS (a `9007199254740993` id becomes `9007199254740992`, exactly like the reference).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::HashMap;
use std::fmt;

/// A JSON value with JS semantics: `f64` numbers and JS-ordered objects.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JsValue {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<JsValue>),
    Object(JsObject),
}

/// Object entries in JS property order, keys unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsObject(Vec<(String, JsValue)>);

/// Whether `key` is a JS array index ("0", "17", …, below 2^32 − 1, no leading zeros): such
/// property keys are enumerated before all others, in ascending numeric order.
pub fn is_array_index(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return false;
    }
    key.parse::<u64>().is_ok_and(|n| n < u64::from(u32::MAX))
}

/// Numeric value of an array-index key; only called on keys accepted by [`is_array_index`].
fn index_value(key: &str) -> u64 {
    key.parse().unwrap_or(u64::MAX)
}

impl JsObject {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an object from entries in source order, applying JS semantics: a repeated key keeps
    /// its first position but takes the last value; array-index keys move to the front, ascending.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, JsValue)>) -> Self {
        let mut out: Vec<(String, JsValue)> = Vec::new();
        // Linear duplicate search is fine for small objects; an index keeps large (possibly
        // hostile) objects from going quadratic.
        let mut index: Option<HashMap<String, usize>> = None;
        for (k, v) in entries {
            if out.len() == 16 && index.is_none() {
                index = Some(out.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
            }
            let existing = match &index {
                Some(ix) => ix.get(&k).copied(),
                None => out.iter().position(|(ek, _)| *ek == k),
            };
            match existing {
                Some(i) => out[i].1 = v,
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(k.clone(), out.len());
                    }
                    out.push((k, v));
                }
            }
        }
        if out.iter().any(|(k, _)| is_array_index(k)) {
            // Stable: non-index keys keep insertion order.
            out.sort_by_key(|(k, _)| {
                if is_array_index(k) {
                    (0, index_value(k))
                } else {
                    (1, 0)
                }
            });
        }
        JsObject(out)
    }

    pub fn entries(&self) -> &[(String, JsValue)] {
        &self.0
    }

    pub fn get(&self, key: &str) -> Option<&JsValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl JsValue {
    pub fn as_object(&self) -> Option<&JsObject> {
        match self {
            JsValue::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Builds an object value from `(key, value)` pairs in source order.
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, JsValue)>) -> Self {
        JsValue::Object(JsObject::from_entries(
            entries.into_iter().map(|(k, v)| (k.into(), v)),
        ))
    }
}

impl From<&str> for JsValue {
    fn from(s: &str) -> Self {
        JsValue::String(s.to_owned())
    }
}

impl From<String> for JsValue {
    fn from(s: String) -> Self {
        JsValue::String(s)
    }
}

impl From<bool> for JsValue {
    fn from(b: bool) -> Self {
        JsValue::Bool(b)
    }
}

impl From<f64> for JsValue {
    fn from(n: f64) -> Self {
        JsValue::Number(n)
    }
}

impl From<&serde_json::Value> for JsValue {
    /// Converts with JS number semantics; object order is whatever the `serde_json` map holds
    /// (sorted without `preserve_order`), re-ordered by the JS rule.
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => JsValue::Null,
            serde_json::Value::Bool(b) => JsValue::Bool(*b),
            serde_json::Value::Number(n) => JsValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => JsValue::String(s.clone()),
            serde_json::Value::Array(a) => JsValue::Array(a.iter().map(JsValue::from).collect()),
            serde_json::Value::Object(m) => JsValue::Object(JsObject::from_entries(
                m.iter().map(|(k, v)| (k.clone(), JsValue::from(v))),
            )),
        }
    }
}

impl From<&JsValue> for serde_json::Value {
    fn from(v: &JsValue) -> Self {
        match v {
            JsValue::Null => serde_json::Value::Null,
            JsValue::Bool(b) => serde_json::Value::Bool(*b),
            JsValue::Number(n) => number_to_json(*n),
            JsValue::String(s) => serde_json::Value::String(s.clone()),
            JsValue::Array(a) => serde_json::Value::Array(a.iter().map(Into::into).collect()),
            JsValue::Object(o) => {
                serde_json::Value::Object(o.0.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
        }
    }
}

/// Integral values print as integers (`42`, not `42.0`), like `JSON.stringify`; non-finite
/// numbers become `null`, also like `JSON.stringify`.
fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // Exact: integral and within the i64-safe range checked above.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

impl Serialize for JsValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JsValue::Null => s.serialize_unit(),
            JsValue::Bool(b) => s.serialize_bool(*b),
            JsValue::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                    s.serialize_i64(*n as i64)
                } else if n.is_finite() {
                    s.serialize_f64(*n)
                } else {
                    s.serialize_unit()
                }
            }
            JsValue::String(v) => s.serialize_str(v),
            JsValue::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            JsValue::Object(o) => o.serialize(s),
        }
    }
}

impl Serialize for JsObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct JsValueVisitor;

impl<'de> Visitor<'de> for JsValueVisitor {
    type Value = JsValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<JsValue, E> {
        Ok(JsValue::Bool(v))
    }
    // u64/i64 → f64 rounds to nearest, which is what JS's JSON.parse does with the literal.
    fn visit_i64<E>(self, v: i64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsValue, E> {
        Ok(JsValue::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<JsValue, E> {
        Ok(JsValue::String(v))
    }
    fn visit_unit<E>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }
    fn visit_none<E>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JsValue, D::Error> {
        JsValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsValue, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(JsValue::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, JsValue>()? {
            entries.push((k, v));
        }
        Ok(JsValue::Object(JsObject::from_entries(entries)))
    }
}

impl<'de> Deserialize<'de> for JsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsValueVisitor)
    }
}

impl<'de> Deserialize<'de> for JsObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match JsValue::deserialize(d)? {
            JsValue::Object(o) => Ok(o),
            _ => Err(de::Error::custom("expected a JSON object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_follow_js_property_order() {
        let v: JsValue = serde_json::from_str(r#"{"b":1,"a":2,"10":3,"2":4,"b":5,"01":6}"#).unwrap();
        let o = v.as_object().unwrap();
        let keys: Vec<&str> = o.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["2", "10", "b", "a", "01"]);
        assert_eq!(o.get("b"), Some(&JsValue::Number(5.0)));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"2":4,"10":3,"b":5,"a":2,"01":6}"#
        );
    }

    #[test]
    fn numbers_are_js_doubles() {
        let v: JsValue = serde_json::from_str("[9007199254740993, -0, 0.1]").unwrap();
        assert_eq!(
            v,
            JsValue::Array(vec![
                JsValue::Number(9_007_199_254_740_992.0),
                JsValue::Number(-0.0),
                JsValue::Number(0.1)
            ])
        );
    }

    #[test]
    fn array_index_keys() {
        assert!(is_array_index("0"));
        assert!(is_array_index("4294967294"));
        assert!(!is_array_index("4294967295"));
        assert!(!is_array_index("01"));
        assert!(!is_array_index("-1"));
        assert!(!is_array_index(""));
    }
}
