//! Compiles the UI's access model into Reflag wire rules.
//!
//! SDKs never see segments or flag-access conditions: like Reflag's server, Gatehouse inlines them
//! into plain filter trees over `company.*` / `user.*` / `other.*` fields before serving
//! `GET /features` (notes §1.4). The choices made here, each matching Reflag where Reflag is known:
//!
//! * **No one** → no rules (flag off for everybody, nothing reported missing).
//!   **Everyone** → one rule `constant true` (also serves anonymous users).
//! * **Some** → one rule per alternative, in this order: the company list
//!   (`company.id ANY_OF …`), the user list (`user.id ANY_OF …`), each segment (its inlined
//!   condition tree), then each advanced rule. Rules are OR-ed by the evaluator.
//! * An advanced rule is the AND of its conditions followed by a `rolloutPercentage` filter keyed by
//!   the flag key on `company.id` (default, as in Reflag) or `user.id`. At **100 %** no rollout
//!   filter is emitted, so 100 % means everyone matching the conditions — a Reflag threshold of
//!   100000 would still exclude one bucket in 2^20 (notes §9). 0 % emits threshold 0 (nobody).
//!   A rule with no filters at all compiles to `constant true`; a single filter is not wrapped.
//! * A segment is the AND of its conditions over `company.*` (company lists become
//!   `company.id ANY_OF`); "not in" is the negation of that tree. A segment without conditions
//!   contains every company.
//! * "Flag access" inlines the other flag's compiled rules as an OR group (keeping that flag's
//!   key in its rollout filters, so cohorts are shared); "not enabled" is its negation. Reflag's
//!   docs say it evaluates the other flag "for the company"; Gatehouse inlines the whole rule set
//!   including user conditions, which is identical for company-only rules.
//! * Unknown segments/flags and flag-access cycles are errors; so are an empty attribute name,
//!   several default config values, and an entity targeted by two config values.
//!
//! Remote config compiles to variants ordered by specificity (notes §1.6): every variant's users,
//! then every variant's companies, then every variant's segments (variants top to bottom), then
//! the default with `constant true`. Variants without targeting emit nothing.

use crate::model::{
    AccessRule, AccessRules, Condition, ConfigDefinition, ConfigVariant, ContextOperator, FlagKey,
    RemoteConfig, RuleFilter, Segment, SegmentCondition, SegmentKey, SegmentMembership, TargetingRule,
    VariantDefinition,
};
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// Why access rules or a remote config cannot be compiled (and so cannot be saved).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompileError {
    #[error("segment \"{0}\" does not exist")]
    UnknownSegment(SegmentKey),
    #[error("flag \"{0}\" does not exist")]
    UnknownFlag(FlagKey),
    #[error("flag access conditions form a cycle: {}", format_cycle(.0))]
    Cycle(Vec<FlagKey>),
    #[error(
        "flag access conditions reach more than {MAX_REFERENCE_DEPTH} flags deep: {}",
        format_cycle(.0)
    )]
    TooDeep(Vec<FlagKey>),
    #[error(
        "flag \"{flag}\" compiles to {nodes} conditions once the flags it refers to are inlined \
         ({}); at most {limit} are allowed",
        format_cycle(.chain)
    )]
    TooLarge {
        flag: FlagKey,
        nodes: usize,
        limit: usize,
        chain: Vec<FlagKey>,
    },
    #[error("a condition needs an attribute name")]
    EmptyAttribute,
    #[error("remote config has more than one default value (\"{0}\" and \"{1}\")")]
    SeveralDefaults(String, String),
    #[error("{kind} \"{id}\" is targeted by both config values \"{first}\" and \"{second}\"")]
    DuplicateConfigTarget {
        kind: &'static str,
        id: String,
        first: String,
        second: String,
    },
}

/// How many flags deep flag-access conditions may reach (`a` requires `b` requires `c` …).
pub const MAX_REFERENCE_DEPTH: usize = 8;
/// The most filter nodes one flag's rules may compile to once other flags are inlined: a chain of
/// flags that each refer to the previous one twice doubles at every step.
pub const MAX_FLAG_NODES: usize = 20_000;
/// The most filter nodes the flags of one environment may compile to together.
pub const MAX_ENVIRONMENT_NODES: usize = 1_000_000;

/// The flags being inlined, outermost first, and the longest such chain seen.
struct Trail {
    stack: Vec<FlagKey>,
    deepest: Vec<FlagKey>,
}

impl Trail {
    fn new(flag: &FlagKey) -> Self {
        Trail {
            stack: vec![flag.clone()],
            deepest: vec![flag.clone()],
        }
    }

    fn enter(&mut self, flag: &FlagKey) -> Result<(), CompileError> {
        if let Some(pos) = self.stack.iter().position(|k| k == flag) {
            let mut path = self.stack[pos..].to_vec();
            path.push(flag.clone());
            return Err(CompileError::Cycle(path));
        }
        self.stack.push(flag.clone());
        if self.stack.len() > MAX_REFERENCE_DEPTH + 1 {
            return Err(CompileError::TooDeep(self.stack.clone()));
        }
        if self.stack.len() > self.deepest.len() {
            self.deepest = self.stack.clone();
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.stack.pop();
    }
}

/// How many filter nodes a filter tree holds.
fn nodes(filter: &RuleFilter) -> usize {
    match filter {
        RuleFilter::Group { filters, .. } => 1 + filters.iter().map(nodes).sum::<usize>(),
        RuleFilter::Negation { filter } => 1 + nodes(filter),
        _ => 1,
    }
}

fn format_cycle(path: &[FlagKey]) -> String {
    path.iter().map(FlagKey::as_str).collect::<Vec<_>>().join(" → ")
}

/// What compilation can refer to: the app's segments and the access rules of every flag in the
/// same environment.
#[derive(Debug, Clone, Copy)]
pub struct CompileContext<'a> {
    pub segments: &'a HashMap<SegmentKey, Segment>,
    pub flags: &'a HashMap<FlagKey, AccessRules>,
}

/// Compiles one flag's access rules into wire rules (`targeting.rules`).
pub fn compile_access_rules(
    flag: &FlagKey,
    rules: &AccessRules,
    cx: &CompileContext<'_>,
) -> Result<Vec<TargetingRule>, CompileError> {
    let mut trail = Trail::new(flag);
    let filters = compile_filters(flag, rules, cx, &mut trail)?;
    let size: usize = filters.iter().map(nodes).sum();
    if size > MAX_FLAG_NODES {
        return Err(CompileError::TooLarge {
            flag: flag.clone(),
            nodes: size,
            limit: MAX_FLAG_NODES,
            chain: trail.deepest,
        });
    }
    Ok(filters
        .into_iter()
        .map(|filter| TargetingRule { filter })
        .collect())
}

/// Compiles every flag of an environment (the `cx.flags` map), so that a cycle or dangling
/// reference anywhere is reported. Returns rules keyed by flag.
pub fn compile_environment(
    cx: &CompileContext<'_>,
) -> Result<HashMap<FlagKey, Vec<TargetingRule>>, CompileError> {
    let mut keys: Vec<&FlagKey> = cx.flags.keys().collect();
    // Deterministic error reporting regardless of hash order.
    keys.sort();
    let mut out = HashMap::with_capacity(keys.len());
    let mut total = 0;
    for key in keys {
        let rules = compile_access_rules(key, &cx.flags[key], cx)?;
        total += rules.iter().map(|r| nodes(&r.filter)).sum::<usize>();
        if total > MAX_ENVIRONMENT_NODES {
            return Err(CompileError::TooLarge {
                flag: key.clone(),
                nodes: total,
                limit: MAX_ENVIRONMENT_NODES,
                chain: vec![key.clone()],
            });
        }
        out.insert(key.clone(), rules);
    }
    Ok(out)
}

fn compile_filters(
    flag: &FlagKey,
    rules: &AccessRules,
    cx: &CompileContext<'_>,
    trail: &mut Trail,
) -> Result<Vec<RuleFilter>, CompileError> {
    match rules {
        AccessRules::NoOne => Ok(Vec::new()),
        AccessRules::Everyone => Ok(vec![RuleFilter::Constant { value: true }]),
        AccessRules::Some(t) => {
            let mut out = Vec::new();
            if !t.companies.is_empty() {
                out.push(RuleFilter::context(
                    "company.id",
                    ContextOperator::AnyOf,
                    t.companies.clone(),
                ));
            }
            if !t.users.is_empty() {
                out.push(RuleFilter::context(
                    "user.id",
                    ContextOperator::AnyOf,
                    t.users.clone(),
                ));
            }
            for s in &t.segments {
                out.push(segment_filter(s, cx)?);
            }
            for rule in &t.rules {
                out.push(compile_rule(flag, rule, cx, trail)?);
            }
            Ok(out)
        }
    }
}

fn compile_rule(
    flag: &FlagKey,
    rule: &AccessRule,
    cx: &CompileContext<'_>,
    trail: &mut Trail,
) -> Result<RuleFilter, CompileError> {
    let mut filters = Vec::with_capacity(rule.conditions.len() + 1);
    for c in &rule.conditions {
        filters.push(compile_condition(c, cx, trail)?);
    }
    if !rule.rollout_percentage.is_full() {
        filters.push(RuleFilter::RolloutPercentage {
            key: Some(flag.as_str().to_owned()),
            partial_rollout_attribute: rule.rollout_attribute.field().to_owned(),
            partial_rollout_threshold: f64::from(rule.rollout_percentage.threshold()),
        });
    }
    Ok(conjunction(filters))
}

/// AND of filters without needless nesting: none ⇒ `constant true`, one ⇒ itself.
fn conjunction(mut filters: Vec<RuleFilter>) -> RuleFilter {
    match filters.len() {
        0 => RuleFilter::Constant { value: true },
        1 => filters.remove(0),
        _ => RuleFilter::and(filters),
    }
}

fn attribute_filter(
    prefix: &str,
    attribute: &str,
    operator: ContextOperator,
    values: &[String],
) -> Result<RuleFilter, CompileError> {
    if attribute.is_empty() {
        return Err(CompileError::EmptyAttribute);
    }
    Ok(RuleFilter::context(
        format!("{prefix}.{attribute}"),
        operator,
        values.to_vec(),
    ))
}

fn compile_condition(
    c: &Condition,
    cx: &CompileContext<'_>,
    trail: &mut Trail,
) -> Result<RuleFilter, CompileError> {
    match c {
        Condition::CompanyAttribute {
            attribute,
            operator,
            values,
        } => attribute_filter("company", attribute, *operator, values),
        Condition::UserAttribute {
            attribute,
            operator,
            values,
        } => attribute_filter("user", attribute, *operator, values),
        Condition::OtherContext {
            field,
            operator,
            values,
        } => attribute_filter("other", field, *operator, values),
        Condition::Segment { segment, membership } => {
            let f = segment_filter(segment, cx)?;
            Ok(match membership {
                SegmentMembership::In => f,
                SegmentMembership::NotIn => RuleFilter::negate(f),
            })
        }
        Condition::FlagAccess { flag, enabled } => {
            let rules = cx
                .flags
                .get(flag)
                .ok_or_else(|| CompileError::UnknownFlag(flag.clone()))?;
            trail.enter(flag)?;
            let filters = compile_filters(flag, rules, cx, trail);
            trail.leave();
            let access = RuleFilter::or(filters?);
            Ok(if *enabled {
                access
            } else {
                RuleFilter::negate(access)
            })
        }
    }
}

fn segment_filter(key: &SegmentKey, cx: &CompileContext<'_>) -> Result<RuleFilter, CompileError> {
    let segment = cx
        .segments
        .get(key)
        .ok_or_else(|| CompileError::UnknownSegment(key.clone()))?;
    let mut filters = Vec::with_capacity(segment.conditions.len());
    for c in &segment.conditions {
        filters.push(match c {
            SegmentCondition::CompanyAttribute {
                attribute,
                operator,
                values,
            } => attribute_filter("company", attribute, *operator, values)?,
            SegmentCondition::CompanyList { companies } => {
                RuleFilter::context("company.id", ContextOperator::AnyOf, companies.clone())
            }
        });
    }
    Ok(conjunction(filters))
}

/// Compiles a remote config into wire variants ordered by specificity (see the module docs).
pub fn compile_remote_config(
    config: &RemoteConfig,
    cx: &CompileContext<'_>,
) -> Result<ConfigDefinition, CompileError> {
    check_unique_targets(&config.variants)?;
    let mut variants = Vec::new();
    let emit = |v: &ConfigVariant, filter: RuleFilter| VariantDefinition {
        key: v.key.clone(),
        payload: v.payload.clone(),
        filter,
    };
    for v in config.variants.iter().filter(|v| !v.users.is_empty()) {
        variants.push(emit(
            v,
            RuleFilter::context("user.id", ContextOperator::AnyOf, v.users.clone()),
        ));
    }
    for v in config.variants.iter().filter(|v| !v.companies.is_empty()) {
        variants.push(emit(
            v,
            RuleFilter::context("company.id", ContextOperator::AnyOf, v.companies.clone()),
        ));
    }
    for v in config.variants.iter().filter(|v| !v.segments.is_empty()) {
        let mut filters = Vec::with_capacity(v.segments.len());
        for s in &v.segments {
            filters.push(segment_filter(s, cx)?);
        }
        let filter = if filters.len() == 1 {
            filters.remove(0)
        } else {
            RuleFilter::or(filters)
        };
        variants.push(emit(v, filter));
    }
    let mut default: Option<&ConfigVariant> = None;
    for v in config.variants.iter().filter(|v| v.is_default) {
        if let Some(d) = default {
            return Err(CompileError::SeveralDefaults(d.key.clone(), v.key.clone()));
        }
        default = Some(v);
    }
    if let Some(d) = default {
        variants.push(emit(d, RuleFilter::Constant { value: true }));
    }
    Ok(ConfigDefinition {
        version: config.version,
        variants,
    })
}

/// "An entity may be targeted by at most one value per environment" (notes §1.6).
fn check_unique_targets(variants: &[ConfigVariant]) -> Result<(), CompileError> {
    fn check<'a>(
        kind: &'static str,
        variants: &'a [ConfigVariant],
        ids: impl Fn(&'a ConfigVariant) -> Vec<&'a str>,
    ) -> Result<(), CompileError> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for v in variants {
            let mut own: HashSet<&str> = HashSet::new();
            // Source order (not set order) so the reported duplicate is deterministic.
            for id in ids(v).into_iter().filter(|id| own.insert(id)) {
                if let Some(first) = seen.insert(id, &v.key) {
                    return Err(CompileError::DuplicateConfigTarget {
                        kind,
                        id: id.to_owned(),
                        first: first.to_owned(),
                        second: v.key.clone(),
                    });
                }
            }
        }
        Ok(())
    }
    check("user", variants, |v| v.users.iter().map(String::as_str).collect())?;
    check("company", variants, |v| {
        v.companies.iter().map(String::as_str).collect()
    })?;
    check("segment", variants, |v| {
        v.segments.iter().map(SegmentKey::as_str).collect()
    })
}
