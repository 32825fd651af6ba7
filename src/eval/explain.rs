//! Decision explanations for the UI's "check access" tool.
//!
//! Re-evaluates wire rules with the same semantics as the engine but records a trace: for every
//! node whether it was evaluated (short-circuit), its result, whether it was *decisive* (flipping it
//! would flip the rule), the field value it saw and any missing field. Slower than the compiled
//! path and meant for one flag at a time; a property test checks both paths agree.

use super::flatten::FlatContext;
use super::hash::rollout_bucket;
use super::operators::evaluate_operator;
use crate::model::{ContextOperator, GroupOperator, RuleFilter};
use serde::Serialize;

/// Why a flag (or config) evaluated the way it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub flag_key: String,
    /// Index of the first matching rule, if any.
    pub matched_rule: Option<usize>,
    pub reason: String,
    pub rules: Vec<RuleExplanation>,
    pub missing_context_fields: Vec<String>,
    /// A rollout bucket was decisive for the matched rule.
    pub decided_by_rollout: bool,
    pub context: FlatContext,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleExplanation {
    pub index: usize,
    pub matched: bool,
    pub trace: NodeTrace,
}

/// One evaluated (or skipped) filter node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTrace {
    /// `false` when short-circuit skipped the node (its `result` is then meaningless).
    pub evaluated: bool,
    pub result: bool,
    /// Flipping this node's result would flip its rule's result.
    pub decisive: bool,
    #[serde(flatten)]
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum NodeKind {
    Group {
        operator: GroupOperator,
        children: Vec<NodeTrace>,
    },
    Negation {
        child: Box<NodeTrace>,
    },
    #[serde(rename_all = "camelCase")]
    Context {
        field: String,
        operator: ContextOperator,
        values: Vec<String>,
        /// The flattened value compared, `None` when the field is absent.
        actual: Option<String>,
        /// The field was absent and reported missing.
        missing: bool,
    },
    #[serde(rename_all = "camelCase")]
    RolloutPercentage {
        key: String,
        attribute: String,
        threshold: f64,
        /// The entity's bucket (0..=100000), `None` when the attribute is absent.
        bucket: Option<u32>,
        missing: bool,
    },
    Constant {
        value: bool,
    },
    Unknown,
}

struct Tracer<'a> {
    ctx: &'a FlatContext,
    now_ms: i64,
    missing: Vec<String>,
}

impl Tracer<'_> {
    fn note_missing(&mut self, field: &str) {
        if !self.missing.iter().any(|m| m == field) {
            self.missing.push(field.to_owned());
        }
    }

    fn skipped(filter: &RuleFilter) -> NodeTrace {
        let kind = match filter {
            RuleFilter::Group { operator, filters } => NodeKind::Group {
                operator: *operator,
                children: filters.iter().map(Self::skipped).collect(),
            },
            RuleFilter::Negation { filter } => NodeKind::Negation {
                child: Box::new(Self::skipped(filter)),
            },
            RuleFilter::Context {
                field,
                operator,
                values,
            } => NodeKind::Context {
                field: field.clone(),
                operator: *operator,
                values: values.clone().unwrap_or_default(),
                actual: None,
                missing: false,
            },
            RuleFilter::RolloutPercentage {
                key,
                partial_rollout_attribute,
                partial_rollout_threshold,
            } => NodeKind::RolloutPercentage {
                key: key.clone().unwrap_or_else(|| "undefined".to_owned()),
                attribute: partial_rollout_attribute.clone(),
                threshold: *partial_rollout_threshold,
                bucket: None,
                missing: false,
            },
            RuleFilter::Constant { value } => NodeKind::Constant { value: *value },
            RuleFilter::Unknown => NodeKind::Unknown,
        };
        NodeTrace {
            evaluated: false,
            result: false,
            decisive: false,
            kind,
        }
    }

    fn trace(&mut self, filter: &RuleFilter) -> NodeTrace {
        let (result, kind) = match filter {
            RuleFilter::Constant { value } => (*value, NodeKind::Constant { value: *value }),
            RuleFilter::Unknown => (false, NodeKind::Unknown),
            RuleFilter::Negation { filter } => {
                let child = self.trace(filter);
                (
                    !child.result,
                    NodeKind::Negation {
                        child: Box::new(child),
                    },
                )
            }
            RuleFilter::Group { operator, filters } => {
                let is_and = *operator == GroupOperator::And;
                let mut acc = is_and;
                let mut children = Vec::with_capacity(filters.len());
                for f in filters {
                    // Short-circuit exactly like `acc && eval()` / `acc || eval()`.
                    if acc != is_and {
                        children.push(Self::skipped(f));
                    } else {
                        let t = self.trace(f);
                        acc = t.result;
                        children.push(t);
                    }
                }
                (
                    acc,
                    NodeKind::Group {
                        operator: *operator,
                        children,
                    },
                )
            }
            RuleFilter::Context {
                field,
                operator,
                values,
            } => {
                let values = values.clone().unwrap_or_default();
                let actual = self.ctx.get(field);
                let missing = actual.is_none() && !operator.tolerates_missing();
                let result = if missing {
                    self.note_missing(field);
                    false
                } else {
                    evaluate_operator(actual.unwrap_or(""), *operator, &values, self.now_ms)
                };
                (
                    result,
                    NodeKind::Context {
                        field: field.clone(),
                        operator: *operator,
                        values,
                        actual: actual.map(str::to_owned),
                        missing,
                    },
                )
            }
            RuleFilter::RolloutPercentage {
                key,
                partial_rollout_attribute,
                partial_rollout_threshold,
            } => {
                let key = key.clone().unwrap_or_else(|| "undefined".to_owned());
                let bucket = self
                    .ctx
                    .get(partial_rollout_attribute)
                    .map(|v| rollout_bucket(&key, v));
                if bucket.is_none() {
                    self.note_missing(partial_rollout_attribute);
                }
                let result = bucket.is_some_and(|b| f64::from(b) < *partial_rollout_threshold);
                (
                    result,
                    NodeKind::RolloutPercentage {
                        key,
                        attribute: partial_rollout_attribute.clone(),
                        threshold: *partial_rollout_threshold,
                        bucket,
                        missing: bucket.is_none(),
                    },
                )
            }
        };
        NodeTrace {
            evaluated: true,
            result,
            decisive: false,
            kind,
        }
    }
}

/// Marks decisive nodes top-down: the root is decisive; a true AND / false OR passes it to every
/// child, a false AND / true OR only to the child that decided it (the last evaluated one).
fn mark_decisive(node: &mut NodeTrace, decisive: bool) {
    node.decisive = decisive && node.evaluated;
    let result = node.result;
    match &mut node.kind {
        NodeKind::Negation { child } => mark_decisive(child, node.decisive),
        NodeKind::Group { operator, children } => {
            let all = (*operator == GroupOperator::And) == result;
            let last = children.iter().rposition(|c| c.evaluated);
            for (i, c) in children.iter_mut().enumerate() {
                let d = node.decisive && (all || Some(i) == last);
                mark_decisive(c, d);
            }
        }
        _ => {}
    }
}

fn has_decisive_rollout(node: &NodeTrace) -> bool {
    match &node.kind {
        NodeKind::RolloutPercentage {
            bucket, threshold, ..
        } => node.decisive && bucket.is_some() && *threshold > 0.0 && *threshold <= 100_000.0,
        NodeKind::Negation { child } => has_decisive_rollout(child),
        NodeKind::Group { children, .. } => children.iter().any(has_decisive_rollout),
        _ => false,
    }
}

/// Explains the evaluation of `filters` (a flag's rules in order) for a flattened context.
pub fn explain_rules<'f>(
    flag_key: &str,
    filters: impl IntoIterator<Item = &'f RuleFilter>,
    ctx: &FlatContext,
    now_ms: i64,
) -> Explanation {
    let mut tracer = Tracer {
        ctx,
        now_ms,
        missing: Vec::new(),
    };
    let mut rules = Vec::new();
    for (index, f) in filters.into_iter().enumerate() {
        let mut trace = tracer.trace(f);
        mark_decisive(&mut trace, true);
        rules.push(RuleExplanation {
            index,
            matched: trace.result,
            trace,
        });
    }
    let matched_rule = rules.iter().position(|r| r.matched);
    let decided_by_rollout = matched_rule.is_some_and(|i| has_decisive_rollout(&rules[i].trace));
    Explanation {
        flag_key: flag_key.to_owned(),
        matched_rule,
        reason: match matched_rule {
            Some(i) => format!("rule #{i} matched"),
            None => "no matched rules".to_owned(),
        },
        rules,
        missing_context_fields: tracer.missing,
        decided_by_rollout,
        context: ctx.clone(),
    }
}

/// Explains a `GET /features` flag's access rules (not its remote config).
pub fn explain_flag(def: &crate::model::FlagDefinition, ctx: &FlatContext, now_ms: i64) -> Explanation {
    explain_rules(
        def.key.as_str(),
        def.targeting.rules.iter().map(|r| &r.filter),
        ctx,
        now_ms,
    )
}
