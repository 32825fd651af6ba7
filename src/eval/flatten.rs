//! Context flattening with the semantics of `flattenJSON` in `@reflag/flag-evaluation` 1.0.1.
//!
//! Nested objects and arrays become dot-separated keys, every leaf a string: `null` → `""`, numbers
//! via JS `String(n)`, empty objects/arrays → `""` at their own path. The result keeps JS property
//! order (array-index keys ascending first, then insertion order; a key written twice keeps its
//! first position) because the reference echoes it and evaluation order depends on nothing else.

use super::fields::{field_hash, FieldTable, TableId};
use super::jsdate::parse_js_date;
use super::jsnum::{number_to_string, parse_js_number};
use crate::model::{is_array_index, JsObject, JsValue};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::cell::OnceCell;
use std::collections::HashMap;

/// A flattened context: ordered `field → string` entries with fast lookup.
///
/// Lookups go through a sorted `(hash, position)` table instead of a `HashMap<String, _>`: one
/// allocation instead of one key copy per entry, and compiled rules pass pre-computed field
/// hashes. Also memoizes `Number(value)` and `new Date(value)` per entry, because in a bulk
/// evaluation the same attribute (say `company.createdAt`) is compared by many flags and
/// V8-compatible date parsing is the most expensive step of an operator.
///
/// All keys and values live in one string buffer (entries hold byte ranges), so flattening a
/// typical context costs a handful of allocations instead of two per field.
#[derive(Debug, Clone, Default)]
pub struct FlatContext {
    text: String,
    entries: Vec<Entry>,
    index: Vec<(u64, u32)>,
    /// The [`FieldTable`] this context is bound to (none by default) and, per slot of that table,
    /// the position of the field (`u32::MAX`: absent).
    bound_table: TableId,
    slots: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Span,
    value: Span,
    number: OnceCell<f64>,
    date: OnceCell<f64>,
}

/// A byte range of `FlatContext::text`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl PartialEq for FlatContext {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl FlatContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Flattens a context object (the evaluation input `{user, company, other, …}`).
    pub fn from_object(context: &JsObject) -> Self {
        let mut out = FlatContext {
            text: String::with_capacity(256),
            entries: Vec::with_capacity(context.len() * 4),
            ..FlatContext::default()
        };
        let mut path = String::with_capacity(64);
        for (k, v) in context.entries() {
            path.clear();
            path.push_str(k);
            out.recurse(v, &mut path);
        }
        out.finish();
        out
    }

    /// Flattens any JSON value the way the reference would if handed it as the context: only
    /// objects contribute fields (`flattenJSON` of a primitive yields `{}`, of an array its
    /// indices).
    pub fn from_value(context: &JsValue) -> Self {
        match context {
            JsValue::Object(o) => Self::from_object(o),
            JsValue::Array(a) if !a.is_empty() => {
                let mut out = FlatContext::default();
                let mut path = String::new();
                for (i, v) in a.iter().enumerate() {
                    path.clear();
                    push_index(&mut path, i);
                    out.recurse(v, &mut path);
                }
                out.finish();
                out
            }
            _ => FlatContext::default(),
        }
    }

    /// Builds a context from already-flat pairs (e.g. query parameters), later pairs winning.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut out = FlatContext::default();
        for (k, v) in pairs {
            out.push(k.as_ref(), |text| text.push_str(v.as_ref()));
        }
        out.finish();
        out
    }

    /// Like [`FlatContext::from_pairs`] with each key given as `(prefix, rest)` and written as
    /// their concatenation (`("company.", "plan")` is `company.plan`), so no key is built apart.
    pub fn from_prefixed_pairs<'p>(pairs: impl IntoIterator<Item = (&'p str, &'p str, &'p str)>) -> Self {
        let mut out = FlatContext::default();
        for (prefix, key, value) in pairs {
            let k0 = out.text.len();
            out.text.push_str(prefix);
            out.push_from(k0, key, |text| text.push_str(value));
        }
        out.finish();
        out
    }

    /// Appends an entry without de-duplication (`finish` merges repeated keys); `write_value`
    /// appends the value text.
    fn push(&mut self, key: &str, write_value: impl FnOnce(&mut String)) {
        self.push_from(self.text.len(), key, write_value);
    }

    /// [`FlatContext::push`] for a key whose first part is already in `text` from `k0` on.
    fn push_from(&mut self, k0: usize, key: &str, write_value: impl FnOnce(&mut String)) {
        self.text.push_str(key);
        let v0 = self.text.len();
        write_value(&mut self.text);
        self.entries.push(Entry {
            key: Span { start: k0, end: v0 },
            value: Span {
                start: v0,
                end: self.text.len(),
            },
            number: OnceCell::new(),
            date: OnceCell::new(),
        });
    }

    /// `path` holds the current property path; children extend it and restore it.
    fn recurse(&mut self, value: &JsValue, path: &mut String) {
        match value {
            JsValue::Null => self.push(path, |_| {}),
            JsValue::Bool(b) => self.push(path, |t| t.push_str(if *b { "true" } else { "false" })),
            JsValue::Number(n) => self.push(path, |t| write_number(t, *n)),
            JsValue::String(v) => self.push(path, |t| t.push_str(v)),
            JsValue::Array(a) => {
                if a.is_empty() {
                    self.push(path, |_| {});
                    return;
                }
                let len = path.len();
                for (i, v) in a.iter().enumerate() {
                    if len > 0 {
                        path.push('.');
                    }
                    push_index(path, i);
                    self.recurse(v, path);
                    path.truncate(len);
                }
            }
            JsValue::Object(o) => {
                if o.is_empty() {
                    self.push(path, |_| {});
                    return;
                }
                let len = path.len();
                for (k, v) in o.entries() {
                    // The reference joins with a dot only when the prefix is non-empty (JS
                    // truthiness), so a key `""` at the top level adds no leading dot.
                    if len > 0 {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.recurse(v, path);
                    path.truncate(len);
                }
            }
        }
    }

    /// Applies JS object semantics to the collected writes and builds the lookup table: a key
    /// written twice (`{"a.b":1, "a":{"b":2}}`) keeps its first position and its last value, and
    /// array-index keys move to the front in ascending order.
    fn finish(&mut self) {
        self.build_index();
        let duplicated = self
            .index
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && self.key_at(w[0].1 as usize) == self.key_at(w[1].1 as usize));
        if duplicated {
            let mut first: HashMap<&str, usize> = HashMap::new();
            let mut merged: Vec<Entry> = Vec::with_capacity(self.entries.len());
            for e in self.entries.drain(..) {
                let key = &self.text[e.key.start..e.key.end];
                match first.get(key) {
                    Some(&i) => merged[i].value = e.value,
                    None => {
                        first.insert(key, merged.len());
                        merged.push(e);
                    }
                }
            }
            self.entries = merged;
        }
        let reorder = self
            .entries
            .iter()
            .any(|e| is_array_index(&self.text[e.key.start..e.key.end]));
        if reorder {
            let text = &self.text;
            self.entries.sort_by_key(|e| {
                let key = &text[e.key.start..e.key.end];
                if is_array_index(key) {
                    (0, key.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    (1, 0)
                }
            });
        }
        if duplicated || reorder {
            self.build_index();
        }
    }

    fn build_index(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            // A context has far fewer than 2^32 entries (it came from a bounded request body).
            .map(|(i, e)| (field_hash(&self.text[e.key.start..e.key.end]), i as u32))
            .collect();
        self.index.sort_unstable();
    }

    /// Resolves the fields that `table`'s rules read, once, so that rules compiled into the table
    /// ([`crate::eval::CompiledRules::compile_in`]) find them by slot instead of by name.
    pub fn bind(&mut self, table: &FieldTable) {
        self.slots.clear();
        self.slots.resize(table.len(), u32::MAX);
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(slot) = table.get(&self.text[e.key.start..e.key.end]) {
                // Keys are unique after `finish`, and a context has far fewer than 2^32 entries.
                self.slots[slot as usize] = i as u32;
            }
        }
        self.bound_table = table.id().clone();
    }

    /// The field table the context is bound to.
    #[inline]
    pub(crate) fn bound_table(&self) -> &TableId {
        &self.bound_table
    }

    /// How many slots of the bound table were resolved.
    #[inline]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Position of the field in `slot` of the bound table.
    #[inline]
    pub(crate) fn slot(&self, slot: u32) -> Option<usize> {
        match self.slots.get(slot as usize) {
            Some(&i) if i != u32::MAX => Some(i as usize),
            _ => None,
        }
    }

    /// The value of a flattened field, `None` when the field is absent.
    #[inline]
    pub fn get(&self, field: &str) -> Option<&str> {
        self.position(field, field_hash(field)).map(|i| self.value_at(i))
    }

    /// Position of a field whose [`field_hash`] is `hash`.
    #[inline]
    pub(crate) fn position(&self, field: &str, hash: u64) -> Option<usize> {
        let start = self.index.partition_point(|&(h, _)| h < hash);
        self.index[start..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, i)| i as usize)
            .find(|&i| self.key_at(i) == field)
    }

    #[inline]
    fn key_at(&self, i: usize) -> &str {
        let span = self.entries[i].key;
        &self.text[span.start..span.end]
    }

    #[inline]
    pub(crate) fn value_at(&self, i: usize) -> &str {
        let span = self.entries[i].value;
        &self.text[span.start..span.end]
    }

    /// JS `Number(value)` of entry `i`, parsed once.
    #[inline]
    pub(crate) fn number_at(&self, i: usize) -> f64 {
        *self.entries[i]
            .number
            .get_or_init(|| parse_js_number(self.value_at(i)))
    }

    /// JS `new Date(value).getTime()` of entry `i`, parsed once.
    #[inline]
    pub(crate) fn date_at(&self, i: usize) -> f64 {
        *self.entries[i]
            .date
            .get_or_init(|| parse_js_date(self.value_at(i)))
    }

    /// The entries in JS property order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.entries.len()).map(|i| (self.key_at(i), self.value_at(i)))
    }

    /// The entries in JS property order, as owned pairs.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(path, "{i}");
}

/// JS `String(n)` appended to `text`; integral values skip the general formatter.
fn write_number(text: &mut String, n: f64) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        use std::fmt::Write;
        // Exact in i64 (checked above); -0 prints as "0" like JS. Writing to a String cannot fail.
        let _ = write!(text, "{}", n as i64);
    } else {
        text.push_str(&number_to_string(n));
    }
}

/// Shorthand for [`FlatContext::from_value`].
pub fn flatten(context: &JsValue) -> FlatContext {
    FlatContext::from_value(context)
}

impl Serialize for FlatContext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixed_pairs_equal_the_joined_keys() {
        let prefixed = FlatContext::from_prefixed_pairs([
            ("company.", "plan", "pro"),
            ("company.", "id", "acme"),
            ("", "company.plan", "team"),
            ("user.", "id", "u1"),
        ]);
        let joined = FlatContext::from_pairs([
            ("company.plan", "pro"),
            ("company.id", "acme"),
            ("company.plan", "team"),
            ("user.id", "u1"),
        ]);
        assert_eq!(prefixed.to_pairs(), joined.to_pairs());
        assert_eq!(prefixed.get("company.plan"), Some("team"));
        assert_eq!(prefixed.get("user.id"), Some("u1"));
    }

    use super::*;

    fn flat(json: &str) -> Vec<(String, String)> {
        let v: JsValue = serde_json::from_str(json).unwrap();
        flatten(&v).to_pairs()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn dotted_keys_collide_and_keep_first_position() {
        assert_eq!(
            flat(r#"{"a":{"b":1},"x":2,"a.b":3}"#),
            pairs(&[("a.b", "3"), ("x", "2")])
        );
    }

    #[test]
    fn index_keys_come_first() {
        assert_eq!(
            flat(r#"{"b":1,"1":2,"0":{"x":3},"2":{}}"#),
            pairs(&[("1", "2"), ("2", ""), ("0.x", "3"), ("b", "1")])
        );
    }

    #[test]
    fn empty_top_level_key_adds_no_dot() {
        assert_eq!(flat(r#"{"":{"a":1}}"#), pairs(&[("a", "1")]));
    }
}
