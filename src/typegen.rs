//! `gatehouse types`: the flag keys and remote-config payload types of an installation, for an
//! application's type checker. TypeScript in the form Reflag's CLI writes (it augments the SDK's
//! `Flags` interface, so `getFlag("typo")` fails to compile); Rust as an enum of keys with serde
//! types for the payloads. Payload types are inferred from the payloads of every variant in every
//! environment: a field some variants lack is optional, values of several kinds are a union (in
//! Rust, `serde_json::Value`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::service::config_file::Document;

/// The SDK whose `Flags` interface the TypeScript augments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    Node,
    Browser,
    React,
}

impl Sdk {
    fn package(self) -> &'static str {
        match self {
            Sdk::Node => "@reflag/node-sdk",
            Sdk::Browser => "@reflag/browser-sdk",
            Sdk::React => "@reflag/react-sdk",
        }
    }
}

/// Each live flag's key, the name of its payload type (from the key, unique) and the payloads of
/// its config variants in every environment.
fn flags(document: &Document) -> Vec<(String, String, Vec<Value>)> {
    let mut names: Vec<String> = Vec::new();
    document
        .flags
        .iter()
        .filter(|f| !f.archived)
        .map(|f| {
            let payloads = f
                .remote_config
                .values()
                .flat_map(|config| config.variants.iter().map(|v| v.payload.clone()))
                .collect();
            let base = pascal(f.key.as_str());
            let mut name = base.clone();
            let mut n = 1;
            while names.contains(&name) {
                n += 1;
                name = format!("{base}{n}");
            }
            names.push(name.clone());
            (f.key.to_string(), name, payloads)
        })
        .collect()
}

/// `new-checkout v2` → `NewCheckoutV2`; a leading digit gets a `Flag` prefix.
fn pascal(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Flag");
    }
    out
}

/// The shape several JSON values share: which kinds occur, the merged array items and fields.
#[derive(Default)]
struct Shape {
    null: bool,
    boolean: bool,
    integer: bool,
    number: bool,
    string: bool,
    /// Items of every array seen (`Some` when an array was seen).
    array: Option<Vec<Value>>,
    /// Field → its values, and how many objects were seen (`Some` when an object was seen).
    object: Option<(BTreeMap<String, Vec<Value>>, usize)>,
}

impl Shape {
    fn of(values: &[Value]) -> Shape {
        let mut shape = Shape::default();
        for value in values {
            match value {
                Value::Null => shape.null = true,
                Value::Bool(_) => shape.boolean = true,
                Value::Number(n) if n.is_i64() || n.is_u64() => shape.integer = true,
                Value::Number(_) => shape.number = true,
                Value::String(_) => shape.string = true,
                Value::Array(items) => shape
                    .array
                    .get_or_insert_with(Vec::new)
                    .extend(items.iter().cloned()),
                Value::Object(fields) => {
                    let (merged, count) = shape.object.get_or_insert_with(Default::default);
                    *count += 1;
                    for (name, value) in fields {
                        merged.entry(name.clone()).or_default().push(value.clone());
                    }
                }
            }
        }
        shape
    }

    /// How many kinds other than null occur.
    fn kinds(&self) -> usize {
        [
            self.boolean,
            self.integer || self.number,
            self.string,
            self.array.is_some(),
            self.object.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count()
    }
}

/// A JSON string literal of `text` (property names, module names).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The TypeScript type of `values`, indented for nesting at `depth`.
fn ts_type(values: &[Value], depth: usize) -> String {
    let shape = Shape::of(values);
    let mut union = Vec::new();
    if shape.boolean {
        union.push("boolean".to_string());
    }
    if shape.integer || shape.number {
        union.push("number".to_string());
    }
    if shape.string {
        union.push("string".to_string());
    }
    if let Some(items) = &shape.array {
        let item = if items.is_empty() {
            "unknown".to_string()
        } else {
            ts_type(items, depth)
        };
        union.push(if item.contains(' ') && !item.starts_with('{') {
            format!("({item})[]")
        } else {
            format!("{item}[]")
        });
    }
    if let Some((fields, count)) = &shape.object {
        let indent = "  ".repeat(depth + 1);
        let mut text = String::from("{\n");
        for (name, values) in fields {
            let optional = if values.len() < *count { "?" } else { "" };
            text.push_str(&format!(
                "{indent}{}{optional}: {};\n",
                quoted(name),
                ts_type(values, depth + 1)
            ));
        }
        text.push_str(&"  ".repeat(depth));
        text.push('}');
        union.push(text);
    }
    if shape.null {
        union.push("null".to_string());
    }
    if union.is_empty() {
        return "unknown".to_string();
    }
    union.join(" | ")
}

/// The TypeScript declarations for `sdk`.
pub fn typescript(document: &Document, sdk: Sdk) -> String {
    let package = quoted(sdk.package());
    let mut keys = String::new();
    let mut payloads = String::new();
    for (key, name, values) in flags(document) {
        if values.is_empty() {
            keys.push_str(&format!("    {}: boolean;\n", quoted(&key)));
            continue;
        }
        let type_name = format!("{name}ConfigPayload");
        keys.push_str(&format!(
            "    {}: {{ config: {{ payload: {type_name} }} }};\n",
            quoted(&key)
        ));
        payloads.push_str(&format!(
            "\n  export type {type_name} = {};\n",
            ts_type(&values, 1)
        ));
    }
    format!(
        "// DO NOT EDIT THIS FILE. IT IS GENERATED BY `gatehouse types` AND WILL BE OVERWRITTEN.\n\
         // eslint-disable\n\
         // prettier-ignore\n\
         import {package};\n\n\
         declare module {package} {{\n  export interface Flags {{\n{keys}  }}\n{payloads}}}\n"
    )
}

/// Rust: the Rust type of `values`, declaring the structs it needs (named from `name`) in `out`.
fn rust_type(values: &[Value], name: &str, out: &mut Vec<String>) -> String {
    let shape = Shape::of(values);
    let inner = if shape.kinds() > 1 {
        "serde_json::Value".to_string()
    } else if shape.boolean {
        "bool".to_string()
    } else if shape.number {
        "f64".to_string()
    } else if shape.integer {
        "i64".to_string()
    } else if shape.string {
        "String".to_string()
    } else if let Some(items) = &shape.array {
        if items.is_empty() {
            "Vec<serde_json::Value>".to_string()
        } else {
            format!("Vec<{}>", rust_type(items, &format!("{name}Item"), out))
        }
    } else if let Some((fields, count)) = &shape.object {
        let mut text = format!(
            "#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]\npub struct {name} {{\n"
        );
        for (field, values) in fields {
            let ident = rust_field(field);
            let mut ty = rust_type(values, &format!("{name}{}", pascal(field)), out);
            if values.len() < *count && !ty.starts_with("Option<") {
                ty = format!("Option<{ty}>");
                text.push_str("    #[serde(default, skip_serializing_if = \"Option::is_none\")]\n");
            }
            if ident != *field {
                text.push_str(&format!("    #[serde(rename = {})]\n", quoted(field)));
            }
            text.push_str(&format!("    pub {ident}: {ty},\n"));
        }
        text.push('}');
        out.push(text);
        name.to_string()
    } else {
        "serde_json::Value".to_string()
    };
    if shape.null && inner != "serde_json::Value" {
        format!("Option<{inner}>")
    } else {
        inner
    }
}

/// A snake_case Rust field name for a JSON property (`r#` for keywords).
fn rust_field(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    let out = if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("field_{out}")
    } else {
        out
    };
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type", "unsafe", "use", "where",
        "while", "yield",
    ];
    if KEYWORDS.contains(&out.as_str()) {
        format!("r#{out}")
    } else {
        out
    }
}

/// The Rust module: `FlagKey` (every live flag) and a payload type per flag with remote config.
pub fn rust(document: &Document) -> String {
    let flags = flags(document);
    let variants: Vec<(String, String)> = flags
        .iter()
        .map(|(key, name, _)| (name.clone(), key.clone()))
        .collect();
    let mut out = String::from(
        "// DO NOT EDIT THIS FILE. IT IS GENERATED BY `gatehouse types --lang rust` AND WILL BE OVERWRITTEN.\n\n\
         /// Every flag key of the installation.\n\
         #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n\
         pub enum FlagKey {\n",
    );
    for (variant, key) in &variants {
        out.push_str(&format!("    /// `{key}`\n    {variant},\n"));
    }
    out.push_str("}\n\nimpl FlagKey {\n    pub const ALL: &'static [FlagKey] = &[");
    out.push_str(
        &variants
            .iter()
            .map(|(v, _)| format!("FlagKey::{v}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str("];\n\n    /// The key as the SDKs and the API name it.\n    pub fn as_str(self) -> &'static str {\n        match self {\n");
    for (variant, key) in &variants {
        out.push_str(&format!("            FlagKey::{variant} => {},\n", quoted(key)));
    }
    out.push_str("        }\n    }\n}\n\nimpl std::fmt::Display for FlagKey {\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n        f.write_str(self.as_str())\n    }\n}\n");
    for (key, name, values) in &flags {
        if values.is_empty() {
            continue;
        }
        let type_name = format!("{name}ConfigPayload");
        let mut declarations = Vec::new();
        let ty = rust_type(values, &type_name, &mut declarations);
        for declaration in declarations {
            out.push_str(&format!("\n{declaration}\n"));
        }
        if ty != type_name {
            out.push_str(&format!(
                "\n/// The remote-config payload of `{key}`.\npub type {type_name} = {ty};\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_types_merge_every_variant() {
        let values = vec![
            json!({ "limit": 10, "label": "a", "tags": ["x"] }),
            json!({ "limit": 2.5, "label": "b", "beta": true }),
        ];
        let ts = ts_type(&values, 1);
        assert!(ts.contains("\"limit\": number;"), "{ts}");
        assert!(ts.contains("\"beta\"?: boolean;"), "{ts}");
        assert!(ts.contains("\"tags\"?: string[];"), "{ts}");
        assert_eq!(ts_type(&[json!("a"), json!(null)], 0), "string | null");
        assert_eq!(ts_type(&[json!([1, "a"])], 0), "(number | string)[]");

        let mut out = Vec::new();
        assert_eq!(rust_type(&values, "Limits", &mut out), "Limits");
        let declared = out.join("\n");
        assert!(declared.contains("pub limit: f64,"), "{declared}");
        assert!(declared.contains("pub beta: Option<bool>,"), "{declared}");
        assert!(declared.contains("pub tags: Option<Vec<String>>,"), "{declared}");
        assert_eq!(
            rust_type(&[json!(1), json!("a")], "X", &mut out),
            "serde_json::Value"
        );
    }

    #[test]
    fn names_become_identifiers() {
        assert_eq!(pascal("new-checkout v2"), "NewCheckoutV2");
        assert_eq!(pascal("3d-view"), "Flag3dView");
        assert_eq!(rust_field("maxItems"), "max_items");
        assert_eq!(rust_field("type"), "r#type");
        assert_eq!(rust_field("a-b"), "a_b");
    }
}
