//! Property tests: rollout cohorts and bucket distribution, boolean laws of the filter algebra,
//! and agreement between the compiled hot path, the scalar operator function and the explainer.

use gatehouse::eval::{
    compile_access_rules, evaluate_operator, explain_rules, rollout_bucket, CompileContext, CompiledRules,
    FlatContext,
};
use gatehouse::model::{
    AccessRule, AccessRules, ContextOperator, FlagKey, GroupOperator, Percentage, RolloutAttribute,
    RuleFilter, TargetedAccess,
};
use proptest::prelude::*;
use std::collections::HashMap;

const NOW: i64 = 1_704_844_800_000;
const FIELDS: &[&str] = &[
    "company.id",
    "company.plan",
    "company.employees",
    "user.id",
    "user.createdAt",
    "other.x",
];
const VALUES: &[&str] = &[
    "acme",
    "globex",
    "enterprise",
    "free",
    "",
    "10",
    "2",
    "-1",
    "0x10",
    "true",
    "false",
    "2024-01-01",
    "01/15/2024",
    "2023-12-31T12:00:00Z",
    "Jan 5 2024",
    "ÄBC",
    "äb",
    "5",
    "1.5",
];

fn field() -> impl Strategy<Value = String> {
    prop::sample::select(FIELDS).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(VALUES).prop_map(str::to_owned),
        "[a-z0-9 ]{0,6}"
    ]
}

fn operator() -> impl Strategy<Value = ContextOperator> {
    prop::sample::select(ContextOperator::ALL.to_vec())
}

fn leaf() -> impl Strategy<Value = RuleFilter> {
    prop_oneof![
        any::<bool>().prop_map(|value| RuleFilter::Constant { value }),
        (field(), operator(), prop::collection::vec(value(), 1..4))
            .prop_map(|(f, op, values)| RuleFilter::context(f, op, values)),
        (field(), 0u32..=100_001).prop_map(|(attribute, threshold)| {
            RuleFilter::RolloutPercentage {
                key: Some("flag".into()),
                partial_rollout_attribute: attribute,
                partial_rollout_threshold: f64::from(threshold),
            }
        }),
    ]
}

fn filter() -> impl Strategy<Value = RuleFilter> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(RuleFilter::and),
            prop::collection::vec(inner.clone(), 0..4).prop_map(RuleFilter::or),
            inner.prop_map(RuleFilter::negate),
        ]
    })
}

/// Contexts over a random subset of the fields, so some evaluations report missing fields.
fn context() -> impl Strategy<Value = FlatContext> {
    prop::collection::vec((field(), value()), 0..8).prop_map(FlatContext::from_pairs)
}

/// Evaluates one filter as a single rule: (result, missing fields).
fn eval(f: &RuleFilter, ctx: &FlatContext) -> (bool, Vec<String>) {
    let rules = CompiledRules::compile([f]);
    let out = rules.evaluate(ctx, NOW);
    (
        out.rule_results[0],
        out.missing.iter().map(|s| s.to_string()).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn double_negation_is_identity(f in filter(), ctx in context()) {
        prop_assert_eq!(eval(&RuleFilter::negate(RuleFilter::negate(f.clone())), &ctx), eval(&f, &ctx));
    }

    #[test]
    fn de_morgan_holds_without_missing_fields(a in filter(), b in filter(), ctx in context()) {
        let lhs = RuleFilter::negate(RuleFilter::and(vec![a.clone(), b.clone()]));
        let rhs = RuleFilter::or(vec![RuleFilter::negate(a.clone()), RuleFilter::negate(b.clone())]);
        let (l, lm) = eval(&lhs, &ctx);
        let (r, rm) = eval(&rhs, &ctx);
        // Short-circuit skips the same children on both sides, so even the reports agree.
        prop_assert_eq!(&lm, &rm);
        if lm.is_empty() {
            prop_assert_eq!(l, r);
        }
        let lhs = RuleFilter::negate(RuleFilter::or(vec![a.clone(), b.clone()]));
        let rhs = RuleFilter::and(vec![RuleFilter::negate(a), RuleFilter::negate(b)]);
        let ((l, lm), (r, _)) = (eval(&lhs, &ctx), eval(&rhs, &ctx));
        if lm.is_empty() {
            prop_assert_eq!(l, r);
        }
    }

    #[test]
    fn and_or_are_commutative_and_have_identities(a in filter(), b in filter(), ctx in context()) {
        let (ab, m1) = eval(&RuleFilter::and(vec![a.clone(), b.clone()]), &ctx);
        let (ba, m2) = eval(&RuleFilter::and(vec![b.clone(), a.clone()]), &ctx);
        if m1.is_empty() && m2.is_empty() {
            prop_assert_eq!(ab, ba);
        }
        let (ab, m1) = eval(&RuleFilter::or(vec![a.clone(), b.clone()]), &ctx);
        let (ba, m2) = eval(&RuleFilter::or(vec![b, a.clone()]), &ctx);
        if m1.is_empty() && m2.is_empty() {
            prop_assert_eq!(ab, ba);
        }
        let t = RuleFilter::Constant { value: true };
        let f = RuleFilter::Constant { value: false };
        prop_assert_eq!(eval(&RuleFilter::and(vec![t.clone(), a.clone()]), &ctx), eval(&a, &ctx));
        prop_assert_eq!(eval(&RuleFilter::or(vec![f.clone(), a.clone()]), &ctx), eval(&a, &ctx));
        prop_assert_eq!(eval(&RuleFilter::and(vec![a.clone()]), &ctx), eval(&a, &ctx));
        prop_assert_eq!(eval(&RuleFilter::and(vec![f, a.clone()]), &ctx), (false, vec![]));
        prop_assert_eq!(eval(&RuleFilter::or(vec![t, a]), &ctx), (true, vec![]));
    }

    #[test]
    fn explainer_agrees_with_the_engine(rules in prop::collection::vec(filter(), 0..4), ctx in context()) {
        let compiled = CompiledRules::compile(&rules);
        let out = compiled.evaluate(&ctx, NOW);
        let e = explain_rules("flag", &rules, &ctx, NOW);
        prop_assert_eq!(e.matched_rule, out.matched);
        prop_assert_eq!(e.rules.iter().map(|r| r.matched).collect::<Vec<_>>(), out.rule_results);
        prop_assert_eq!(e.missing_context_fields.iter().map(String::as_str).collect::<Vec<_>>(), out.missing);
        prop_assert_eq!(e.decided_by_rollout, out.decided_by_rollout);
    }

    #[test]
    fn compiled_operators_agree_with_the_scalar_function(
        op in operator(), values in prop::collection::vec(value(), 0..4), fv in value(), now in 0i64..4_000_000_000_000,
    ) {
        let f = RuleFilter::context("f", op, values.clone());
        let ctx = FlatContext::from_pairs([("f", fv.as_str())]);
        let compiled = CompiledRules::compile([&f]).evaluate(&ctx, now).rule_results[0];
        prop_assert_eq!(compiled, evaluate_operator(&fv, op, &values, now));
    }

    #[test]
    fn rollout_cohorts_grow_with_the_percentage(id in "[a-z0-9-]{1,12}", p in 0u32..=100_000, q in 0u32..=100_000) {
        let (lo, hi) = (p.min(q), p.max(q));
        let enabled = |thousandths: u32| {
            let flags = HashMap::from([(FlagKey::parse("flag").expect("key"), AccessRules::Some(TargetedAccess {
                rules: vec![AccessRule {
                    conditions: vec![],
                    rollout_percentage: Percentage::new(f64::from(thousandths) / 1000.0).expect("percentage"),
                    rollout_attribute: RolloutAttribute::Company,
                }],
                ..Default::default()
            }))]);
            let segments = HashMap::new();
            let cx = CompileContext { segments: &segments, flags: &flags };
            let key = FlagKey::parse("flag").expect("key");
            let rules = compile_access_rules(&key, &flags[&key], &cx).expect("compiles");
            let ctx = FlatContext::from_pairs([("company.id", id.as_str())]);
            CompiledRules::compile(rules.iter().map(|r| &r.filter)).evaluate(&ctx, NOW).matched.is_some()
        };
        if enabled(lo) {
            prop_assert!(enabled(hi), "in the {lo} cohort but not in the {hi} one");
        }
        prop_assert_eq!(enabled(100_000), true);
        prop_assert_eq!(enabled(0), false);
    }
}

#[test]
fn buckets_are_uniform_over_100k_ids() {
    for key in ["huddle", "new-checkout"] {
        let mut deciles = [0u32; 10];
        for i in 0..100_000 {
            let bucket = rollout_bucket(key, &format!("company-{i}"));
            deciles[(bucket.min(99_999) / 10_000) as usize] += 1;
        }
        for (d, count) in deciles.iter().enumerate() {
            // ±1 % of all ids around the expected 10,000 per decile.
            assert!(
                (9_000..=11_000).contains(count),
                "{key}: decile {d} has {count} ids: {deciles:?}"
            );
        }
    }
}

#[test]
fn group_operators_serialize_lowercase() {
    assert_eq!(
        serde_json::to_string(&GroupOperator::And).expect("json"),
        "\"and\""
    );
}
