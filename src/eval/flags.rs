//! Flag-level evaluation: the reference's `evaluateFlagRules` and the node SDK's per-flag result.
//!
//! [`evaluate_flag_rules`] mirrors `@reflag/flag-evaluation` 1.0.1 for arbitrary rule values
//! (used by the CLI and the vectors). [`CompiledFlag`] is one `GET /features` definition compiled
//! once per snapshot; [`evaluate_flags`] evaluates one context against every flag of an
//! environment, flattening the context once, and returns node-SDK `RawFlag`-shaped results
//! (notes §4) that borrow from the compiled flags so nothing is cloned per request.

use super::engine::{CompiledRules, RulesOutcome};
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

/// One variant of a compiled remote config.
#[derive(Debug, Clone)]
struct CompiledVariant {
    key: String,
    payload: serde_json::Value,
}

#[derive(Debug, Clone)]
struct CompiledConfig {
    version: u64,
    variants: Vec<CompiledVariant>,
    rules: CompiledRules,
}

/// A `GET /features` flag definition compiled for repeated evaluation.
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    key: String,
    targeting_version: u64,
    targeting: CompiledRules,
    config: Option<CompiledConfig>,
}

impl CompiledFlag {
    pub fn compile(def: &FlagDefinition) -> Self {
        CompiledFlag {
            key: def.key.as_str().to_owned(),
            targeting_version: def.targeting.version,
            targeting: CompiledRules::compile(def.targeting.rules.iter().map(|r| &r.filter)),
            config: def.config.as_ref().map(|c| CompiledConfig {
                version: c.version,
                variants: c
                    .variants
                    .iter()
                    .map(|v| CompiledVariant {
                        key: v.key.clone(),
                        payload: v.payload.clone(),
                    })
                    .collect(),
                rules: CompiledRules::compile(c.variants.iter().map(|v| &v.filter)),
            }),
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

/// Compiles every definition of an environment snapshot.
pub fn compile_flags(defs: &[FlagDefinition]) -> Vec<CompiledFlag> {
    defs.iter().map(CompiledFlag::compile).collect()
}
