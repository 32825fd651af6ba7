//! Compiling the UI access model: wire shape, inlining evaluated end to end, rejected references.

use gatehouse::eval::{
    compile_access_rules, compile_environment, compile_remote_config, evaluate_flags, explain_rules, flatten,
    CompileContext, CompileError, CompiledFlag,
};
use gatehouse::model::{
    AccessRule, AccessRules, Condition, ConfigDefinition, ConfigVariant, ContextOperator, FlagDefinition,
    FlagKey, JsValue, Percentage, RemoteConfig, RolloutAttribute, RuleFilter, Segment, SegmentCondition,
    SegmentKey, SegmentMembership, TargetedAccess, Targeting,
};
use serde_json::json;
use std::collections::HashMap;

const NOW: i64 = 1_704_844_800_000;

fn key(k: &str) -> FlagKey {
    FlagKey::parse(k).expect("valid flag key")
}

fn seg(k: &str) -> SegmentKey {
    SegmentKey::parse(k).expect("valid segment key")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn enterprise_segment() -> Segment {
    Segment {
        key: seg("enterprise"),
        name: "Enterprise customers".into(),
        conditions: vec![
            SegmentCondition::CompanyAttribute {
                attribute: "plan".into(),
                operator: ContextOperator::Is,
                values: strings(&["enterprise"]),
            },
            SegmentCondition::CompanyList {
                companies: strings(&["acme", "globex", "initech"]),
            },
        ],
    }
}

fn some(access: TargetedAccess) -> AccessRules {
    AccessRules::Some(access)
}

fn rule(conditions: Vec<Condition>, percent: f64) -> AccessRule {
    AccessRule {
        conditions,
        rollout_percentage: Percentage::new(percent).expect("valid percentage"),
        rollout_attribute: RolloutAttribute::Company,
    }
}

/// Compiles `flag` within `flags` and evaluates it for `context`.
fn enabled_for(
    flag: &str,
    flags: &HashMap<FlagKey, AccessRules>,
    segments: &HashMap<SegmentKey, Segment>,
    context: serde_json::Value,
) -> bool {
    let cx = CompileContext { segments, flags };
    let rules = compile_access_rules(&key(flag), &flags[&key(flag)], &cx).expect("compiles");
    let def = FlagDefinition {
        key: key(flag),
        description: None,
        targeting: Targeting { version: 1, rules },
        config: None,
    };
    let compiled = [CompiledFlag::compile(&def)];
    let ctx = flatten(&JsValue::from(&context));
    evaluate_flags(&compiled, &ctx, NOW)[0].is_enabled
}

#[test]
fn modes_compile_to_reflag_wire_rules() {
    let segments = HashMap::from([(seg("enterprise"), enterprise_segment())]);
    let flags = HashMap::new();
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    assert!(compile_access_rules(&key("f"), &AccessRules::NoOne, &cx)
        .expect("no one")
        .is_empty());
    let everyone = compile_access_rules(&key("f"), &AccessRules::Everyone, &cx).expect("everyone");
    assert_eq!(
        serde_json::to_value(&everyone).expect("json"),
        json!([{"filter": {"type": "constant", "value": true}}])
    );

    let access = some(TargetedAccess {
        companies: strings(&["c1", "c2"]),
        users: strings(&["u1"]),
        segments: vec![seg("enterprise")],
        rules: vec![rule(
            vec![Condition::UserAttribute {
                attribute: "email".into(),
                operator: ContextOperator::Contains,
                values: strings(&["@acme.com"]),
            }],
            25.5,
        )],
    });
    let rules = compile_access_rules(&key("huddle"), &access, &cx).expect("some");
    assert_eq!(
        serde_json::to_value(&rules).expect("json"),
        json!([
            {"filter": {"type": "context", "field": "company.id", "operator": "ANY_OF", "values": ["c1", "c2"]}},
            {"filter": {"type": "context", "field": "user.id", "operator": "ANY_OF", "values": ["u1"]}},
            {"filter": {"type": "group", "operator": "and", "filters": [
                {"type": "context", "field": "company.plan", "operator": "IS", "values": ["enterprise"]},
                {"type": "context", "field": "company.id", "operator": "ANY_OF", "values": ["acme", "globex", "initech"]}
            ]}},
            {"filter": {"type": "group", "operator": "and", "filters": [
                {"type": "context", "field": "user.email", "operator": "CONTAINS", "values": ["@acme.com"]},
                {"type": "rolloutPercentage", "key": "huddle", "partialRolloutAttribute": "company.id",
                 "partialRolloutThreshold": 25500.0}
            ]}}
        ])
    );
}

#[test]
fn full_rollout_emits_no_rollout_filter_and_zero_excludes_everyone() {
    let segments = HashMap::new();
    let flags = HashMap::from([
        (
            key("all"),
            some(TargetedAccess {
                rules: vec![rule(vec![], 100.0)],
                ..Default::default()
            }),
        ),
        (
            key("none"),
            some(TargetedAccess {
                rules: vec![rule(vec![], 0.0)],
                ..Default::default()
            }),
        ),
    ]);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    let all = compile_access_rules(&key("all"), &flags[&key("all")], &cx).expect("all");
    assert_eq!(all[0].filter, RuleFilter::Constant { value: true });
    // The one company whose bucket is 100000 would be excluded by a 100000 threshold.
    assert!(enabled_for(
        "all",
        &flags,
        &segments,
        json!({"company": {"id": "company-1532107"}})
    ));
    assert!(!enabled_for(
        "none",
        &flags,
        &segments,
        json!({"company": {"id": "company-480584"}})
    ));
}

#[test]
fn segments_are_inlined_and_evaluated_end_to_end() {
    let segments = HashMap::from([(seg("enterprise"), enterprise_segment())]);
    let flags = HashMap::from([
        (
            key("in-seg"),
            some(TargetedAccess {
                segments: vec![seg("enterprise")],
                ..Default::default()
            }),
        ),
        (
            key("not-in-seg"),
            some(TargetedAccess {
                rules: vec![rule(
                    vec![Condition::Segment {
                        segment: seg("enterprise"),
                        membership: SegmentMembership::NotIn,
                    }],
                    100.0,
                )],
                ..Default::default()
            }),
        ),
    ]);
    let acme_enterprise = json!({"company": {"id": "acme", "plan": "enterprise"}});
    let acme_free = json!({"company": {"id": "acme", "plan": "free"}});
    let other_enterprise = json!({"company": {"id": "hooli", "plan": "enterprise"}});
    assert!(enabled_for("in-seg", &flags, &segments, acme_enterprise.clone()));
    assert!(!enabled_for("in-seg", &flags, &segments, acme_free.clone()));
    assert!(!enabled_for(
        "in-seg",
        &flags,
        &segments,
        other_enterprise.clone()
    ));
    assert!(!enabled_for("not-in-seg", &flags, &segments, acme_enterprise));
    assert!(enabled_for("not-in-seg", &flags, &segments, acme_free));
    assert!(enabled_for("not-in-seg", &flags, &segments, other_enterprise));
}

#[test]
fn flag_access_shares_the_other_flags_cohort() {
    let segments = HashMap::new();
    let flags = HashMap::from([
        (
            key("base"),
            some(TargetedAccess {
                rules: vec![rule(vec![], 50.0)],
                ..Default::default()
            }),
        ),
        (
            key("follower"),
            some(TargetedAccess {
                rules: vec![rule(
                    vec![Condition::FlagAccess {
                        flag: key("base"),
                        enabled: true,
                    }],
                    100.0,
                )],
                ..Default::default()
            }),
        ),
        (
            key("complement"),
            some(TargetedAccess {
                rules: vec![rule(
                    vec![Condition::FlagAccess {
                        flag: key("base"),
                        enabled: false,
                    }],
                    100.0,
                )],
                ..Default::default()
            }),
        ),
    ]);
    let mut enabled = 0;
    for i in 0..200 {
        let ctx = json!({"company": {"id": format!("company-{i}")}});
        let base = enabled_for("base", &flags, &segments, ctx.clone());
        assert_eq!(enabled_for("follower", &flags, &segments, ctx.clone()), base);
        assert_eq!(enabled_for("complement", &flags, &segments, ctx), !base);
        enabled += usize::from(base);
    }
    assert!(
        (60..140).contains(&enabled),
        "about half of 200 companies, got {enabled}"
    );
}

#[test]
fn cycles_are_rejected() {
    let segments = HashMap::new();
    let depends = |on: &str| {
        some(TargetedAccess {
            rules: vec![rule(
                vec![Condition::FlagAccess {
                    flag: key(on),
                    enabled: true,
                }],
                100.0,
            )],
            ..Default::default()
        })
    };
    let flags = HashMap::from([
        (key("a"), depends("b")),
        (key("b"), depends("c")),
        (key("c"), depends("a")),
    ]);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    let err = compile_access_rules(&key("a"), &flags[&key("a")], &cx).expect_err("cycle");
    assert_eq!(
        err,
        CompileError::Cycle(vec![key("a"), key("b"), key("c"), key("a")])
    );
    assert_eq!(
        err.to_string(),
        "flag access conditions form a cycle: a → b → c → a"
    );
    assert!(matches!(compile_environment(&cx), Err(CompileError::Cycle(_))));

    let self_ref = HashMap::from([(key("a"), depends("a"))]);
    let cx = CompileContext {
        segments: &segments,
        flags: &self_ref,
    };
    assert!(matches!(compile_environment(&cx), Err(CompileError::Cycle(p)) if p.len() == 2));
}

#[test]
fn unknown_references_are_rejected() {
    let segments = HashMap::new();
    let flags = HashMap::from([
        (
            key("a"),
            some(TargetedAccess {
                segments: vec![seg("ghost")],
                ..Default::default()
            }),
        ),
        (
            key("b"),
            some(TargetedAccess {
                rules: vec![rule(
                    vec![Condition::FlagAccess {
                        flag: key("missing"),
                        enabled: false,
                    }],
                    100.0,
                )],
                ..Default::default()
            }),
        ),
    ]);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    assert_eq!(
        compile_access_rules(&key("a"), &flags[&key("a")], &cx),
        Err(CompileError::UnknownSegment(seg("ghost")))
    );
    let err = compile_access_rules(&key("b"), &flags[&key("b")], &cx).expect_err("unknown flag");
    assert_eq!(err.to_string(), "flag \"missing\" does not exist");
}

#[test]
fn diamond_dependencies_are_not_cycles() {
    let segments = HashMap::new();
    let on = |flags: &[&str]| {
        some(TargetedAccess {
            rules: vec![rule(
                flags
                    .iter()
                    .map(|f| Condition::FlagAccess {
                        flag: key(f),
                        enabled: true,
                    })
                    .collect(),
                100.0,
            )],
            ..Default::default()
        })
    };
    let flags = HashMap::from([
        (key("top"), on(&["left", "right"])),
        (key("left"), on(&["bottom"])),
        (key("right"), on(&["bottom"])),
        (key("bottom"), AccessRules::Everyone),
    ]);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    assert_eq!(compile_environment(&cx).expect("no cycle").len(), 4);
    assert!(enabled_for("top", &flags, &segments, json!({})));
}

fn variant(
    k: &str,
    users: &[&str],
    companies: &[&str],
    segments: &[&str],
    is_default: bool,
) -> ConfigVariant {
    ConfigVariant {
        key: k.into(),
        payload: json!({"variant": k}),
        companies: strings(companies),
        users: strings(users),
        segments: segments.iter().map(|s| seg(s)).collect(),
        is_default,
    }
}

#[test]
fn remote_config_is_ordered_by_specificity() {
    let segments = HashMap::from([(seg("enterprise"), enterprise_segment())]);
    let flags = HashMap::new();
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    let config = RemoteConfig {
        version: 3,
        variants: vec![
            variant("seg", &[], &[], &["enterprise"], false),
            variant("company", &[], &["acme"], &[], false),
            variant("fallback", &[], &[], &[], true),
            variant("user", &["u1"], &[], &[], false),
            variant("untargeted", &[], &[], &[], false),
        ],
    };
    let ConfigDefinition { version, variants } = compile_remote_config(&config, &cx).expect("compiles");
    assert_eq!(version, 3);
    let order: Vec<&str> = variants.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(order, ["user", "company", "seg", "fallback"]);

    let def = FlagDefinition {
        key: key("cfg"),
        description: None,
        targeting: Targeting {
            version: 1,
            rules: vec![],
        },
        config: Some(ConfigDefinition { version, variants }),
    };
    let flag = [CompiledFlag::compile(&def)];
    let pick = |ctx: serde_json::Value| {
        let flat = flatten(&JsValue::from(&ctx));
        evaluate_flags(&flag, &flat, NOW)[0].config.key.map(str::to_owned)
    };
    // The user beats the company which beats the segment; the default catches everyone else.
    assert_eq!(
        pick(json!({"user": {"id": "u1"}, "company": {"id": "acme", "plan": "enterprise"}})).as_deref(),
        Some("user")
    );
    assert_eq!(
        pick(json!({"user": {"id": "u2"}, "company": {"id": "acme", "plan": "enterprise"}})).as_deref(),
        Some("company")
    );
    assert_eq!(
        pick(json!({"company": {"id": "globex", "plan": "enterprise"}})).as_deref(),
        Some("seg")
    );
    assert_eq!(pick(json!({})).as_deref(), Some("fallback"));
}

#[test]
fn remote_config_rejects_ambiguous_targeting() {
    let segments = HashMap::new();
    let flags = HashMap::new();
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    let two_defaults = RemoteConfig {
        version: 1,
        variants: vec![
            variant("a", &[], &[], &[], true),
            variant("b", &[], &[], &[], true),
        ],
    };
    assert_eq!(
        compile_remote_config(&two_defaults, &cx),
        Err(CompileError::SeveralDefaults("a".into(), "b".into()))
    );
    let same_user = RemoteConfig {
        version: 1,
        variants: vec![
            variant("a", &["u1", "u1"], &[], &[], false),
            variant("b", &["u2", "u1"], &[], &[], false),
        ],
    };
    let err = compile_remote_config(&same_user, &cx).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "user \"u1\" is targeted by both config values \"a\" and \"b\""
    );
    let ghost = RemoteConfig {
        version: 1,
        variants: vec![variant("a", &[], &[], &["ghost"], false)],
    };
    assert_eq!(
        compile_remote_config(&ghost, &cx),
        Err(CompileError::UnknownSegment(seg("ghost")))
    );
}

#[test]
fn access_model_json_is_readable() {
    let access: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "companies": ["acme"],
        "rules": [{
            "conditions": [
                {"kind": "companyAttribute", "attribute": "employees", "operator": "GT", "values": ["100"]},
                {"kind": "segment", "segment": "enterprise", "membership": "notIn"},
                {"kind": "flagAccess", "flag": "base", "enabled": true},
                {"kind": "otherContext", "field": "eventId", "operator": "IS", "values": ["e1"]}
            ],
            "rolloutPercentage": 12.5,
            "rolloutAttribute": "user"
        }]
    }))
    .expect("access JSON");
    let AccessRules::Some(t) = &access else {
        panic!("some")
    };
    assert_eq!(t.rules[0].rollout_percentage.threshold(), 12_500);
    assert_eq!(t.rules[0].rollout_attribute, RolloutAttribute::User);
    assert!(serde_json::from_value::<AccessRules>(
        json!({"mode": "some", "rules": [{"rolloutPercentage": 101}]})
    )
    .is_err());
    assert_eq!(
        serde_json::to_value(AccessRules::Everyone).expect("json"),
        json!({"mode": "everyone"})
    );
}

#[test]
fn explanation_names_the_deciding_condition() {
    let segments = HashMap::from([(seg("enterprise"), enterprise_segment())]);
    let flags = HashMap::from([(
        key("huddle"),
        some(TargetedAccess {
            users: strings(&["vip"]),
            rules: vec![rule(
                vec![Condition::Segment {
                    segment: seg("enterprise"),
                    membership: SegmentMembership::In,
                }],
                50.0,
            )],
            ..Default::default()
        }),
    )]);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    let rules = compile_access_rules(&key("huddle"), &flags[&key("huddle")], &cx).expect("compiles");
    let ctx = flatten(&JsValue::from(
        &json!({"company": {"id": "acme", "plan": "free"}}),
    ));
    let e = explain_rules("huddle", rules.iter().map(|r| &r.filter), &ctx, NOW);
    assert_eq!(e.matched_rule, None);
    assert_eq!(e.missing_context_fields, ["user.id"]);
    let v = serde_json::to_value(&e).expect("json");
    // Rule 1: and[ and[plan IS enterprise (false, decisive), company.id ANY_OF (skipped)], rollout (skipped) ].
    let segment = &v["rules"][1]["trace"]["children"][0];
    assert_eq!(segment["children"][0]["actual"], "free");
    assert_eq!(segment["children"][0]["decisive"], true);
    assert_eq!(segment["children"][1]["evaluated"], false);
    assert_eq!(v["rules"][1]["trace"]["children"][1]["evaluated"], false);

    // Companies in the segment: the rollout bucket decides (OFREP reason SPLIT). Buckets for
    // "huddle.<id>": acme 30148 and initech 26547 (< 50000), globex 67267.
    for (id, enabled) in [("acme", true), ("globex", false), ("initech", true)] {
        let ctx = flatten(&JsValue::from(
            &json!({"company": {"id": id, "plan": "enterprise"}}),
        ));
        let e = explain_rules("huddle", rules.iter().map(|r| &r.filter), &ctx, NOW);
        assert_eq!(e.matched_rule, enabled.then_some(1), "{id}");
        assert_eq!(e.decided_by_rollout, enabled, "{id}");
    }
    let ctx = flatten(&JsValue::from(&json!({"user": {"id": "vip"}})));
    let e = explain_rules("huddle", rules.iter().map(|r| &r.filter), &ctx, NOW);
    assert_eq!((e.matched_rule, e.decided_by_rollout), (Some(0), false));
}

#[test]
fn compiled_flags_can_live_in_shared_snapshots() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<CompiledFlag>();
    assert_send_sync::<FlagDefinition>();
    // A flattened context memoizes parsed numbers/dates in cells: per request, movable, not shared.
    assert_send::<gatehouse::eval::FlatContext>();
}

/// `f0` for company acme; every `fN` requires `f(N-1)` in each of `refs` conditions.
fn chain(length: usize, refs: usize) -> HashMap<FlagKey, AccessRules> {
    let mut flags = HashMap::new();
    flags.insert(
        key("f0"),
        some(TargetedAccess {
            companies: strings(&["acme"]),
            ..Default::default()
        }),
    );
    for n in 1..length {
        let previous = key(&format!("f{}", n - 1));
        let rules = (0..refs)
            .map(|_| {
                rule(
                    vec![Condition::FlagAccess {
                        flag: previous.clone(),
                        enabled: true,
                    }],
                    100.0,
                )
            })
            .collect();
        flags.insert(
            key(&format!("f{n}")),
            some(TargetedAccess {
                rules,
                ..Default::default()
            }),
        );
    }
    flags
}

#[test]
fn references_deeper_than_the_limit_are_refused_with_their_chain() {
    let segments = HashMap::new();
    let depth = gatehouse::eval::compile::MAX_REFERENCE_DEPTH;
    let fits = chain(depth + 1, 1);
    let cx = CompileContext {
        segments: &segments,
        flags: &fits,
    };
    assert!(
        compile_environment(&cx).is_ok(),
        "{depth} references deep is allowed"
    );
    let deeper = chain(depth + 2, 1);
    let cx = CompileContext {
        segments: &segments,
        flags: &deeper,
    };
    match compile_environment(&cx) {
        Err(error @ CompileError::TooDeep(_)) => {
            let text = error.to_string();
            assert!(text.contains(&format!("f{} → f{}", depth + 1, depth)), "{text}");
            assert!(text.ends_with("→ f0"), "{text}");
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }
}

#[test]
fn rules_that_double_at_every_reference_are_refused_over_the_size_limit() {
    let segments = HashMap::new();
    // Each flag refers to the previous one in 12 rules: 12^4 copies of f0's rules by f4.
    let flags = chain(5, 12);
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    match compile_environment(&cx) {
        Err(error @ CompileError::TooLarge { .. }) => {
            let text = error.to_string();
            assert!(text.contains("flag \"f4\" compiles to"), "{text}");
            assert!(text.contains("f4 → f3 → f2 → f1 → f0"), "{text}");
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|m| m.len())),
    }
    // The same shape with two references per step stays small and compiles.
    let small = chain(5, 2);
    let cx = CompileContext {
        segments: &segments,
        flags: &small,
    };
    assert!(compile_environment(&cx).is_ok());
}
