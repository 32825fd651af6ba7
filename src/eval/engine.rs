//! Compiled rule evaluation: the hot path.
//!
//! Wire filters are compiled once (per flag, per snapshot) into [`CompiledRules`]: ANY_OF lists
//! become hash sets, numbers and dates in `values` are parsed once, CONTAINS needles are
//! lower-cased once. Evaluation then follows `evaluateFlagRules` of `@reflag/flag-evaluation`
//! 1.0.1 exactly: every rule is evaluated, groups short-circuit left to right, missing fields are
//! recorded in first-encounter order (SET/NOT_SET exempt), a negation of a leaf that failed for a
//! missing field is `true`, and the first matching rule wins.

use super::fields::{field_hash, FastBuild, FieldTable, TableId};
use super::flatten::FlatContext;
use super::hash::rollout_bucket;
use super::jsdate::{days_ago, parse_js_date};
use super::jsnum::parse_js_number;
use super::operators::contains_ci;
use crate::model::{ContextOperator, GroupOperator, RuleFilter};
use std::collections::HashSet;

/// Lists up to this length are scanned linearly; longer ones are hashed (hashing a string costs
/// about as much as a handful of short comparisons).
const LINEAR_SET_MAX: usize = 8;

#[derive(Debug, Clone)]
enum ValueSet {
    Small(Vec<String>),
    Large(HashSet<String, FastBuild>),
}

impl ValueSet {
    fn new(values: &[String]) -> Self {
        if values.len() <= LINEAR_SET_MAX {
            ValueSet::Small(values.to_vec())
        } else {
            ValueSet::Large(values.iter().cloned().collect::<HashSet<String, FastBuild>>())
        }
    }

    #[inline]
    fn contains(&self, v: &str) -> bool {
        match self {
            ValueSet::Small(list) => list.iter().any(|x| x == v),
            ValueSet::Large(set) => set.contains(v),
        }
    }
}

/// A context leaf's comparison with its constant side pre-computed.
#[derive(Debug, Clone)]
enum Test {
    Is(Option<String>),
    IsNot(Option<String>),
    AnyOf(ValueSet),
    NotAnyOf(ValueSet),
    /// Lower-cased needle; `None` (no value) never matches, see `operators`.
    Contains(Option<String>),
    NotContains(Option<String>),
    Gt(f64),
    Lt(f64),
    /// Day count `Number(values[0])`; the instant depends on the clock.
    After(f64),
    Before(f64),
    DateAfter(f64),
    DateBefore(f64),
    Set,
    NotSet,
    IsTrue,
    IsFalse,
    Never,
}

impl Test {
    fn compile(operator: ContextOperator, values: &[String]) -> Self {
        let first = values.first();
        let num = || first.map_or(f64::NAN, |v| parse_js_number(v));
        let date = || first.map_or(f64::NAN, |v| parse_js_date(v));
        match operator {
            ContextOperator::Is => Test::Is(first.cloned()),
            ContextOperator::IsNot => Test::IsNot(first.cloned()),
            ContextOperator::AnyOf => Test::AnyOf(ValueSet::new(values)),
            ContextOperator::NotAnyOf => Test::NotAnyOf(ValueSet::new(values)),
            ContextOperator::Contains => Test::Contains(first.map(|v| v.to_lowercase())),
            ContextOperator::NotContains => Test::NotContains(first.map(|v| v.to_lowercase())),
            ContextOperator::Gt => Test::Gt(num()),
            ContextOperator::Lt => Test::Lt(num()),
            ContextOperator::After => Test::After(num()),
            ContextOperator::Before => Test::Before(num()),
            ContextOperator::DateAfter => Test::DateAfter(date()),
            ContextOperator::DateBefore => Test::DateBefore(date()),
            ContextOperator::Set => Test::Set,
            ContextOperator::NotSet => Test::NotSet,
            ContextOperator::IsTrue => Test::IsTrue,
            ContextOperator::IsFalse => Test::IsFalse,
            ContextOperator::Unknown => Test::Never,
        }
    }

    #[inline]
    fn eval(&self, field: Field<'_>, now_ms: f64) -> bool {
        match self {
            Test::Is(v) => v.as_deref() == Some(field.value()),
            Test::IsNot(v) => v.as_deref() != Some(field.value()),
            Test::AnyOf(set) => set.contains(field.value()),
            Test::NotAnyOf(set) => !set.contains(field.value()),
            Test::Contains(n) => n.as_deref().is_some_and(|n| contains_ci(field.value(), n)),
            Test::NotContains(n) => n.as_deref().is_some_and(|n| !contains_ci(field.value(), n)),
            Test::Gt(v) => field.number() > *v,
            Test::Lt(v) => field.number() < *v,
            Test::After(days) => field.date() > days_ago(now_ms, *days),
            Test::Before(days) => field.date() < days_ago(now_ms, *days),
            Test::DateAfter(v) => field.date() >= *v,
            Test::DateBefore(v) => field.date() <= *v,
            Test::Set => !field.value().is_empty(),
            Test::NotSet => field.value().is_empty(),
            Test::IsTrue => field.value() == "true",
            Test::IsFalse => field.value() == "false",
            Test::Never => false,
        }
    }
}

/// A field of the context as seen by a leaf; `None` is an absent field read as `""` (only
/// SET/NOT_SET get that far). Numeric and date views come from the context's memo tables.
#[derive(Clone, Copy)]
struct Field<'c> {
    ctx: &'c FlatContext,
    at: Option<usize>,
}

impl<'c> Field<'c> {
    #[inline]
    fn value(self) -> &'c str {
        self.at.map_or("", |i| self.ctx.value_at(i))
    }
    #[inline]
    fn number(self) -> f64 {
        // Number("") is 0.
        self.at.map_or(0.0, |i| self.ctx.number_at(i))
    }
    #[inline]
    fn date(self) -> f64 {
        self.at.map_or(f64::NAN, |i| self.ctx.date_at(i))
    }
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Context {
        field: Box<str>,
        field_hash: u64,
        /// The field's slot in the rules' [`FieldTable`].
        slot: u32,
        tolerates_missing: bool,
        test: Test,
    },
    Rollout {
        key: Box<str>,
        attribute: Box<str>,
        attribute_hash: u64,
        slot: u32,
        threshold: f64,
    },
}

impl Node {
    fn compile(filter: &RuleFilter, fields: &mut FieldTable) -> Node {
        match filter {
            RuleFilter::Constant { value } => Node::Const(*value),
            RuleFilter::Group { operator, filters } => {
                let children = filters.iter().map(|f| Node::compile(f, fields)).collect();
                match operator {
                    GroupOperator::And => Node::And(children),
                    GroupOperator::Or => Node::Or(children),
                }
            }
            RuleFilter::Negation { filter } => Node::Not(Box::new(Node::compile(filter, fields))),
            RuleFilter::Context {
                field,
                operator,
                values,
            } => Node::Context {
                field: field.as_str().into(),
                field_hash: field_hash(field),
                slot: fields.intern(field),
                tolerates_missing: operator.tolerates_missing(),
                test: Test::compile(*operator, values.as_deref().unwrap_or_default()),
            },
            RuleFilter::RolloutPercentage {
                key,
                partial_rollout_attribute,
                partial_rollout_threshold,
            } => Node::Rollout {
                // JS template literals print an absent key as "undefined".
                key: key.as_deref().unwrap_or("undefined").into(),
                attribute: partial_rollout_attribute.as_str().into(),
                attribute_hash: field_hash(partial_rollout_attribute),
                slot: fields.intern(partial_rollout_attribute),
                threshold: *partial_rollout_threshold,
            },
            RuleFilter::Unknown => Node::Const(false),
        }
    }
}

/// Per-evaluation scratch state shared across the rules of one flag.
struct Eval<'c, 'r, 'm> {
    ctx: &'c FlatContext,
    /// The context is bound to the rules' field table: fields are found by slot.
    by_slot: bool,
    now_ms: f64,
    missing: &'m mut Vec<&'r str>,
}

impl<'r> Eval<'_, 'r, '_> {
    /// Position of a context field in `ctx`.
    #[inline]
    fn find(&self, field: &str, hash: u64, slot: u32) -> Option<usize> {
        if self.by_slot {
            self.ctx.slot(slot)
        } else {
            self.ctx.position(field, hash)
        }
    }

    fn add_missing(&mut self, field: &'r str) {
        if !self.missing.contains(&field) {
            self.missing.push(field);
        }
    }

    /// Returns (result, whether a rollout bucket was decisive for it). A leaf is decisive when
    /// flipping it would flip the node: for a true AND all children, for a false AND the child that
    /// failed, dually for OR; a rollout leaf counts only when its attribute was present.
    fn node(&mut self, node: &'r Node) -> (bool, bool) {
        match node {
            Node::Const(v) => (*v, false),
            Node::And(children) => {
                let mut split = false;
                for c in children {
                    let (r, s) = self.node(c);
                    if !r {
                        return (false, s);
                    }
                    split |= s;
                }
                (true, split)
            }
            Node::Or(children) => {
                let mut split = false;
                for c in children {
                    let (r, s) = self.node(c);
                    if r {
                        return (true, s);
                    }
                    split |= s;
                }
                (false, split)
            }
            Node::Not(child) => {
                let (r, s) = self.node(child);
                (!r, s)
            }
            Node::Context {
                field,
                field_hash,
                slot,
                tolerates_missing,
                test,
            } => match self.find(field, *field_hash, *slot) {
                Some(i) => (
                    test.eval(
                        Field {
                            ctx: self.ctx,
                            at: Some(i),
                        },
                        self.now_ms,
                    ),
                    false,
                ),
                None if *tolerates_missing => (
                    test.eval(
                        Field {
                            ctx: self.ctx,
                            at: None,
                        },
                        self.now_ms,
                    ),
                    false,
                ),
                None => {
                    self.add_missing(field);
                    (false, false)
                }
            },
            Node::Rollout {
                key,
                attribute,
                attribute_hash,
                slot,
                threshold,
            } => match self
                .find(attribute, *attribute_hash, *slot)
                .map(|i| self.ctx.value_at(i))
            {
                Some(v) => {
                    let t = *threshold;
                    // Every bucket is in 0..=100000, so thresholds outside that range are decided
                    // without hashing (and the bucket then decides nothing); only the presence
                    // check above matters for them.
                    if t > 100_000.0 {
                        (true, false)
                    } else if t <= 0.0 || t.is_nan() {
                        (false, false)
                    } else {
                        (f64::from(rollout_bucket(key, v)) < t, true)
                    }
                }
                None => {
                    self.add_missing(attribute);
                    (false, false)
                }
            },
        }
    }
}

/// The outcome of one rule list, borrowing field names from the compiled rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOutcome<'r> {
    /// Index of the first matching rule.
    pub matched: Option<usize>,
    pub rule_results: Vec<bool>,
    /// Missing fields in first-encounter order.
    pub missing: Vec<&'r str>,
    /// Whether a rollout bucket decided the matched rule (OFREP reason `SPLIT`); `false` when no
    /// rule matched.
    pub decided_by_rollout: bool,
}

impl RulesOutcome<'_> {
    /// The reference's `reason`.
    pub fn reason(&self) -> String {
        match self.matched {
            Some(i) => format!("rule #{i} matched"),
            None => "no matched rules".to_owned(),
        }
    }
}

/// A list of rule filters compiled for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    rules: Vec<Node>,
    /// The [`FieldTable`] the rules' slots refer to, and how many slots it had once these rules
    /// were compiled: a context bound before the table grew is read by name.
    table: TableId,
    slots: usize,
}

impl CompiledRules {
    /// Compiles rules that find context fields by name (see [`CompiledRules::compile_in`]).
    pub fn compile<'a>(filters: impl IntoIterator<Item = &'a RuleFilter>) -> Self {
        Self::compile_in(filters, &mut FieldTable::unbound())
    }

    /// Compiles rules whose fields are numbered in `fields`, shared by the rules of one snapshot:
    /// a context bound to that table is read by slot.
    pub fn compile_in<'a>(
        filters: impl IntoIterator<Item = &'a RuleFilter>,
        fields: &mut FieldTable,
    ) -> Self {
        CompiledRules {
            rules: filters.into_iter().map(|f| Node::compile(f, fields)).collect(),
            table: fields.id().clone(),
            slots: fields.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates every rule against `ctx` with the clock at `now_ms` (epoch ms).
    pub fn evaluate(&self, ctx: &FlatContext, now_ms: i64) -> RulesOutcome<'_> {
        let mut rule_results = Vec::with_capacity(self.rules.len());
        let mut missing = Vec::new();
        let (matched, decided_by_rollout) = self.evaluate_into(ctx, now_ms, &mut rule_results, &mut missing);
        RulesOutcome {
            matched,
            rule_results,
            missing,
            decided_by_rollout,
        }
    }

    /// [`CompiledRules::evaluate`] into caller-owned buffers (cleared first), so a caller that
    /// evaluates many flags allocates once: returns the matched rule and whether a rollout bucket
    /// decided it.
    pub fn evaluate_into<'r>(
        &'r self,
        ctx: &FlatContext,
        now_ms: i64,
        rule_results: &mut Vec<bool>,
        missing: &mut Vec<&'r str>,
    ) -> (Option<usize>, bool) {
        rule_results.clear();
        missing.clear();
        let mut ev = Eval {
            ctx,
            by_slot: self.table.same(ctx.bound_table()) && ctx.slot_count() >= self.slots,
            // Epoch milliseconds are exact in f64 for any real date.
            now_ms: now_ms as f64,
            missing,
        };
        let mut matched = None;
        let mut decided_by_rollout = false;
        for (i, rule) in self.rules.iter().enumerate() {
            let (r, split) = ev.node(rule);
            if r && matched.is_none() {
                matched = Some(i);
                decided_by_rollout = split;
            }
            rule_results.push(r);
        }
        (matched, decided_by_rollout)
    }
}
