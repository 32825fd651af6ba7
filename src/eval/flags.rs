//! Flag-level evaluation: the reference's `evaluateFlagRules` and the node SDK's per-flag result.
//!
//! [`evaluate_flag_rules`] mirrors `@reflag/flag-evaluation` 1.0.1 for arbitrary rule values
//! (used by the CLI and the vectors). [`CompiledFlag`] is one `GET /features` definition compiled
//! once per snapshot; [`evaluate_flags`] evaluates one context against every flag of an
//! environment, flattening the context once, and returns node-SDK `RawFlag`-shaped results
//! (notes §4) that borrow from the compiled flags so nothing is cloned per request.

use super::engine::{CompiledRules, RulesOutcome};
use super::fields::FieldTable;
use super::flatten::FlatContext;
use crate::model::{FlagDefinition, JsValue, Rule};
use serde::Serialize;

/// The result of `evaluateFlagRules` (v1.0.1 shape, field names as in the reference).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesEvaluation<V> {
    pub flag_key: String,
    /// The first matching rule's value; `None` (JS `undefined`, written `null`) when none matched.
    pub value: Option<V>,
    pub reason: String,
    pub context: FlatContext,
    pub rule_evaluation_results: Vec<bool>,
    pub missing_context_fields: Vec<String>,
    /// Not part of the reference output: whether a rollout bucket decided the match.
    #[serde(skip)]
    pub decided_by_rollout: bool,
}

/// `evaluateFlagRules({flagKey, rules, context})` with the clock at `now_ms` (epoch ms, UTC).
/// Compiles the rules on every call; hold a [`CompiledRules`] to evaluate repeatedly.
pub fn evaluate_flag_rules<V: Clone>(
    flag_key: &str,
    rules: &[Rule<V>],
    context: &JsValue,
    now_ms: i64,
) -> RulesEvaluation<V> {
    let compiled = CompiledRules::compile(rules.iter().map(|r| &r.filter));
    let ctx = FlatContext::from_value(context);
    let outcome = compiled.evaluate(&ctx, now_ms);
    RulesEvaluation {
        flag_key: flag_key.to_owned(),
        value: outcome.matched.map(|i| rules[i].value.clone()),
        reason: outcome.reason(),
        rule_evaluation_results: outcome.rule_results,
        missing_context_fields: outcome.missing.iter().map(|s| (*s).to_owned()).collect(),
        decided_by_rollout: outcome.decided_by_rollout,
        context: ctx,
    }
}

/// What one evaluation decided, for usage counting: whether the flag is enabled (`None` when
/// the answer did not evaluate its targeting: an OFREP resolution of a flag with remote config)
/// and the index of the config variant chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decided {
    pub enabled: Option<bool>,
    pub variant: Option<usize>,
}

/// One variant of a compiled remote config.
#[derive(Debug, Clone)]
struct CompiledVariant {
    key: String,
    payload: serde_json::Value,
    /// `"key":…,"version":…,"payload":…` of the evaluated config when this variant is chosen.
    json: Box<str>,
    /// `"value":<payload>,"variant":<key>,"reason":"TARGETING_MATCH"` of an OFREP resolution.
    ofrep: Box<str>,
}

#[derive(Debug, Clone)]
struct CompiledConfig {
    version: u64,
    variants: Vec<CompiledVariant>,
    rules: CompiledRules,
    /// `"version":…` of the evaluated config when no variant is chosen.
    json_unmatched: Box<str>,
}

/// A `GET /features` flag definition compiled for repeated evaluation.
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    key: String,
    targeting_version: u64,
    targeting: CompiledRules,
    config: Option<CompiledConfig>,
    /// `"<key>":{"key":"<key>","isEnabled":true,"targetingVersion":<n>` of the evaluated entry,
    /// rendered once, and the same with `false`.
    json_enabled: Box<str>,
    json_disabled: Box<str>,
    /// `{"key":"<key>",` of an OFREP resolution.
    ofrep_head: Box<str>,
    /// `"metadata":{"targetingVersion":<n>,"flagStateVersion":` of an OFREP resolution.
    ofrep_metadata: Box<str>,
}

/// Buffers reused across the flags of one evaluation (see [`CompiledFlag::write_evaluated_json`]).
#[derive(Debug, Default)]
pub struct Scratch<'a> {
    results: Vec<bool>,
    missing: Vec<&'a str>,
    config_results: Vec<bool>,
    config_missing: Vec<&'a str>,
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Appends `text` as a JSON string literal; names from rules rarely need escaping, so the common
/// case is a copy.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(json_string(text).as_bytes());
    }
}

fn push_bools(out: &mut Vec<u8>, values: &[bool]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(if *v { b"true" } else { b"false" });
    }
    out.push(b']');
}

fn push_strings(out: &mut Vec<u8>, values: &[&str]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(out, v);
    }
    out.push(b']');
}

impl CompiledFlag {
    /// Compiles a definition on its own; its rules find context fields by name.
    pub fn compile(def: &FlagDefinition) -> Self {
        Self::compile_in(def, &mut FieldTable::unbound())
    }

    /// Compiles a definition whose rules number their fields in `fields`, the table shared by
    /// the flags of one snapshot (see [`FieldTable`]).
    pub fn compile_in(def: &FlagDefinition, fields: &mut FieldTable) -> Self {
        let key = json_string(def.key.as_str());
        CompiledFlag {
            key: def.key.as_str().to_owned(),
            targeting_version: def.targeting.version,
            targeting: CompiledRules::compile_in(def.targeting.rules.iter().map(|r| &r.filter), fields),
            config: def.config.as_ref().map(|c| CompiledConfig {
                version: c.version,
                variants: c
                    .variants
                    .iter()
                    .map(|v| CompiledVariant {
                        key: v.key.clone(),
                        payload: v.payload.clone(),
                        json: format!(
                            "\"key\":{},\"version\":{},\"payload\":{}",
                            json_string(&v.key),
                            c.version,
                            serde_json::to_string(&v.payload).unwrap_or_else(|_| "null".into())
                        )
                        .into(),
                        ofrep: format!(
                            "\"value\":{},\"variant\":{},\"reason\":\"TARGETING_MATCH\"",
                            serde_json::to_string(&v.payload).unwrap_or_else(|_| "null".into()),
                            json_string(&v.key)
                        )
                        .into(),
                    })
                    .collect(),
                rules: CompiledRules::compile_in(c.variants.iter().map(|v| &v.filter), fields),
                json_unmatched: format!("\"version\":{}", c.version).into(),
            }),
            json_enabled: format!(
                "{key}:{{\"key\":{key},\"isEnabled\":true,\"targetingVersion\":{}",
                def.targeting.version
            )
            .into(),
            json_disabled: format!(
                "{key}:{{\"key\":{key},\"isEnabled\":false,\"targetingVersion\":{}",
                def.targeting.version
            )
            .into(),
            ofrep_head: format!("{{\"key\":{key},").into(),
            ofrep_metadata: format!(
                "\"metadata\":{{\"targetingVersion\":{},\"flagStateVersion\":",
                def.targeting.version
            )
            .into(),
        }
    }

    /// Evaluates and appends the flag's OFREP resolution (`{"key",…,"metadata"}`) from pieces
    /// rendered at compile time. A flag with remote config resolves to the chosen variant's
    /// payload (`TARGETING_MATCH`), or to no value (`DEFAULT`) when none is chosen; a plain flag
    /// to its boolean, `SPLIT` when a rollout bucket decided it.
    pub fn write_ofrep_json<'a>(
        &'a self,
        ctx: &FlatContext,
        now_ms: i64,
        flag_state_version: &str,
        scratch: &mut Scratch<'a>,
        out: &mut Vec<u8>,
    ) -> Decided {
        out.extend_from_slice(self.ofrep_head.as_bytes());
        let decided = match &self.config {
            Some(cfg) => {
                let (matched, _) = cfg.rules.evaluate_into(
                    ctx,
                    now_ms,
                    &mut scratch.config_results,
                    &mut scratch.config_missing,
                );
                match matched {
                    Some(i) => out.extend_from_slice(cfg.variants[i].ofrep.as_bytes()),
                    None => out.extend_from_slice(b"\"reason\":\"DEFAULT\""),
                }
                Decided {
                    enabled: None,
                    variant: matched,
                }
            }
            None => {
                let (matched, by_rollout) =
                    self.targeting
                        .evaluate_into(ctx, now_ms, &mut scratch.results, &mut scratch.missing);
                let resolution: &[u8] = match (matched.is_some(), by_rollout) {
                    (true, true) => b"\"value\":true,\"reason\":\"SPLIT\"",
                    (true, false) => b"\"value\":true,\"reason\":\"TARGETING_MATCH\"",
                    (false, _) => b"\"value\":false,\"reason\":\"DEFAULT\"",
                };
                out.extend_from_slice(resolution);
                Decided {
                    enabled: Some(matched.is_some()),
                    variant: None,
                }
            }
        };
        out.push(b',');
        out.extend_from_slice(self.ofrep_metadata.as_bytes());
        out.extend_from_slice(flag_state_version.as_bytes());
        out.extend_from_slice(b"}}");
        decided
    }

    /// The key of the config variant at `index`, as [`Decided::variant`] names it.
    pub fn variant_key(&self, index: usize) -> Option<&str> {
        let cfg = self.config.as_ref()?;
        cfg.variants.get(index).map(|v| v.key.as_str())
    }

    /// How many config variants the flag has (0 without remote config).
    pub fn variant_count(&self) -> usize {
        self.config.as_ref().map_or(0, |cfg| cfg.variants.len())
    }

    /// The index of the config variant `key`.
    pub fn variant_index(&self, key: &str) -> Option<usize> {
        let cfg = self.config.as_ref()?;
        cfg.variants.iter().position(|v| v.key == key)
    }

    /// Evaluates like [`CompiledFlag::evaluate`] and appends the flag's entry of a
    /// `/features/evaluated` answer (`"<key>":{…}`, the JSON the node SDK's `RawFlag` serialises
    /// to) from pieces rendered at compile time. With `only_enabled`, a disabled flag appends
    /// nothing. Returns what was decided, for usage counting.
    pub fn write_evaluated_json<'a>(
        &'a self,
        ctx: &FlatContext,
        now_ms: i64,
        only_enabled: bool,
        scratch: &mut Scratch<'a>,
        out: &mut Vec<u8>,
    ) -> Decided {
        let Scratch {
            results,
            missing,
            config_results,
            config_missing,
        } = scratch;
        let (matched, _) = self.targeting.evaluate_into(ctx, now_ms, results, missing);
        let is_enabled = matched.is_some();
        if only_enabled && !is_enabled {
            return Decided {
                enabled: Some(false),
                variant: None,
            };
        }
        let head = if is_enabled {
            &self.json_enabled
        } else {
            &self.json_disabled
        };
        out.extend_from_slice(head.as_bytes());
        // The config is written before the flag's own results, so those wait in their buffers
        // while the config is evaluated into a second pair.
        let mut variant = None;
        if let Some(cfg) = &self.config {
            let (matched, _) = cfg
                .rules
                .evaluate_into(ctx, now_ms, config_results, config_missing);
            out.extend_from_slice(b",\"config\":{");
            variant = matched;
            let chosen = match matched {
                Some(i) => &cfg.variants[i].json,
                None => &cfg.json_unmatched,
            };
            out.extend_from_slice(chosen.as_bytes());
            out.extend_from_slice(b",\"ruleEvaluationResults\":");
            push_bools(out, config_results);
            out.extend_from_slice(b",\"missingContextFields\":");
            push_strings(out, config_missing);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"ruleEvaluationResults\":");
        push_bools(out, results);
        out.extend_from_slice(b",\"missingContextFields\":");
        push_strings(out, missing);
        out.push(b'}');
        Decided {
            enabled: Some(is_enabled),
            variant,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn targeting_version(&self) -> u64 {
        self.targeting_version
    }

    /// Evaluates access and remote config like the node SDK's local evaluation.
    pub fn evaluate(&self, ctx: &FlatContext, now_ms: i64) -> FlagResult<'_> {
        let enabled = self.targeting.evaluate(ctx, now_ms);
        let config = match &self.config {
            Some(cfg) => {
                let outcome = cfg.rules.evaluate(ctx, now_ms);
                let variant = outcome.matched.map(|i| &cfg.variants[i]);
                ConfigResult {
                    key: variant.map(|v| v.key.as_str()),
                    payload: variant.map(|v| &v.payload),
                    targeting_version: Some(cfg.version),
                    rule_evaluation_results: outcome.rule_results,
                    missing_context_fields: outcome.missing,
                }
            }
            None => ConfigResult::default(),
        };
        FlagResult {
            key: &self.key,
            is_enabled: enabled.matched.is_some(),
            targeting_version: self.targeting_version,
            config,
            rule_evaluation_results: enabled.rule_results,
            missing_context_fields: enabled.missing,
            matched_rule: enabled.matched,
            decided_by_rollout: enabled.decided_by_rollout,
        }
    }

    /// The raw targeting outcome (for callers that need more than [`FlagResult`]).
    pub fn evaluate_targeting(&self, ctx: &FlatContext, now_ms: i64) -> RulesOutcome<'_> {
        self.targeting.evaluate(ctx, now_ms)
    }
}

/// The node SDK's `RawFlag` for one flag (notes §4); `null`s stand for JS `undefined`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagResult<'a> {
    pub key: &'a str,
    pub is_enabled: bool,
    pub targeting_version: u64,
    pub config: ConfigResult<'a>,
    pub rule_evaluation_results: Vec<bool>,
    pub missing_context_fields: Vec<&'a str>,
    /// Index of the targeting rule that enabled the flag (not in the SDK shape).
    #[serde(skip)]
    pub matched_rule: Option<usize>,
    /// A rollout bucket decided `is_enabled` (OFREP `SPLIT` rather than `TARGETING_MATCH`).
    #[serde(skip)]
    pub decided_by_rollout: bool,
}

/// The remote-config part of [`FlagResult`]; all `None`/empty for a flag without config.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResult<'a> {
    pub key: Option<&'a str>,
    pub payload: Option<&'a serde_json::Value>,
    pub targeting_version: Option<u64>,
    pub rule_evaluation_results: Vec<bool>,
    pub missing_context_fields: Vec<&'a str>,
}

/// Evaluates one (already flattened) context against every flag, in the flags' order.
pub fn evaluate_flags<'a>(flags: &'a [CompiledFlag], ctx: &FlatContext, now_ms: i64) -> Vec<FlagResult<'a>> {
    flags.iter().map(|f| f.evaluate(ctx, now_ms)).collect()
}

/// Compiles every definition of an environment snapshot, numbering the context fields their
/// rules read in one table: bind each request's context to it ([`FlatContext::bind`]) before
/// evaluating the flags.
pub fn compile_flags(defs: &[FlagDefinition]) -> (Vec<CompiledFlag>, FieldTable) {
    let mut fields = FieldTable::new();
    let flags = defs
        .iter()
        .map(|d| CompiledFlag::compile_in(d, &mut fields))
        .collect();
    (flags, fields)
}
