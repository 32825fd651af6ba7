//! Engine benchmarks: one context against an environment of 100 realistic flags (company lists of
//! 1,000 ids, inlined segments and flag dependencies, attribute and date conditions, rollouts,
//! remote config), and a single simple flag. The flags are built through `eval::compile` from the
//! access model, as the server builds them.
//!
//! The workload is also written as JSON (`target/bench-workload.json`, or
//! `GATEHOUSE_BENCH_WORKLOAD`) so `benches/reference/bench.mjs` can time the reference
//! implementation on exactly the same flags and context.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse::eval::{
    compile_access_rules, compile_flags, compile_remote_config, evaluate_flags, flatten, CompileContext,
    CompiledFlag,
};
use gatehouse::model::{
    AccessRule, AccessRules, Condition, ConfigVariant, ContextOperator, FlagDefinition, FlagKey, JsValue,
    Percentage, RemoteConfig, RolloutAttribute, Segment, SegmentCondition, SegmentKey, SegmentMembership,
    TargetedAccess, Targeting,
};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const NOW: i64 = 1_704_844_800_000;

fn ids(prefix: &str, offset: usize, n: usize) -> Vec<String> {
    (offset..offset + n).map(|i| format!("{prefix}-{i}")).collect()
}

fn cond(kind: &str, attribute: &str, operator: ContextOperator, values: &[&str]) -> Condition {
    let values = values.iter().map(|v| v.to_string()).collect();
    let attribute = attribute.to_owned();
    match kind {
        "company" => Condition::CompanyAttribute {
            attribute,
            operator,
            values,
        },
        "user" => Condition::UserAttribute {
            attribute,
            operator,
            values,
        },
        _ => Condition::OtherContext {
            field: attribute,
            operator,
            values,
        },
    }
}

fn rule(conditions: Vec<Condition>, percent: f64, by_user: bool) -> AccessRule {
    AccessRule {
        conditions,
        rollout_percentage: Percentage::new(percent).expect("percentage"),
        rollout_attribute: if by_user {
            RolloutAttribute::User
        } else {
            RolloutAttribute::Company
        },
    }
}

fn key(s: &str) -> FlagKey {
    FlagKey::parse(s).expect("key")
}

fn seg(s: &str) -> SegmentKey {
    SegmentKey::parse(s).expect("segment key")
}

/// 100 flags in five families of 20; returns `/features`-style definitions.
fn workload() -> Vec<FlagDefinition> {
    let segments = HashMap::from([
        (
            seg("enterprise"),
            Segment {
                key: seg("enterprise"),
                name: "Enterprise".into(),
                conditions: vec![
                    SegmentCondition::CompanyAttribute {
                        attribute: "plan".into(),
                        operator: ContextOperator::AnyOf,
                        values: vec!["enterprise".into(), "business".into()],
                    },
                    SegmentCondition::CompanyAttribute {
                        attribute: "employees".into(),
                        operator: ContextOperator::Gt,
                        values: vec!["100".into()],
                    },
                ],
            },
        ),
        (
            seg("design-partners"),
            Segment {
                key: seg("design-partners"),
                name: "Design partners".into(),
                conditions: vec![SegmentCondition::CompanyList {
                    companies: ids("company", 5_000, 1_000),
                }],
            },
        ),
    ]);
    let mut flags: HashMap<FlagKey, AccessRules> = HashMap::new();
    let mut order = Vec::new();
    for i in 0..20 {
        // Company and user lists plus an attribute rule with a rollout.
        let k = key(&format!("lists-{i}"));
        flags.insert(
            k.clone(),
            AccessRules::Some(TargetedAccess {
                companies: ids("company", i * 50, 1_000),
                users: ids("user", i * 10, 200),
                segments: vec![],
                rules: vec![rule(
                    vec![cond("company", "plan", ContextOperator::Is, &["startup"])],
                    25.0,
                    false,
                )],
            }),
        );
        order.push(k);
    }
    for i in 0..20 {
        // Inlined segments and a user rule.
        let k = key(&format!("segments-{i}"));
        flags.insert(
            k.clone(),
            AccessRules::Some(TargetedAccess {
                companies: vec![],
                users: vec![],
                segments: vec![seg("design-partners")],
                rules: vec![
                    rule(
                        vec![
                            Condition::Segment {
                                segment: seg("enterprise"),
                                membership: SegmentMembership::In,
                            },
                            cond("user", "email", ContextOperator::Contains, &["@example.com"]),
                        ],
                        30.0,
                        true,
                    ),
                    rule(
                        vec![cond(
                            "company",
                            "region",
                            ContextOperator::NotAnyOf,
                            &["cn", "ru"],
                        )],
                        10.0,
                        false,
                    ),
                ],
            }),
        );
        order.push(k);
    }
    for i in 0..20 {
        // Dates and numbers.
        let k = key(&format!("dates-{i}"));
        flags.insert(
            k.clone(),
            AccessRules::Some(TargetedAccess {
                rules: vec![
                    rule(
                        vec![cond("company", "createdAt", ContextOperator::After, &["30"])],
                        50.0,
                        false,
                    ),
                    rule(
                        vec![
                            cond(
                                "company",
                                "createdAt",
                                ContextOperator::DateBefore,
                                &["2023-06-01"],
                            ),
                            cond("user", "age", ContextOperator::Lt, &["40"]),
                        ],
                        100.0,
                        false,
                    ),
                ],
                ..Default::default()
            }),
        );
        order.push(k);
    }
    for i in 0..20 {
        // Everyone / no one / simple flags, half with remote config.
        let k = key(&format!("simple-{i}"));
        let rules = match i % 3 {
            0 => AccessRules::Everyone,
            1 => AccessRules::NoOne,
            _ => AccessRules::Some(TargetedAccess {
                rules: vec![rule(vec![], 50.0, false)],
                ..Default::default()
            }),
        };
        flags.insert(k.clone(), rules);
        order.push(k);
    }
    for i in 0..20 {
        // Flag dependencies: inline another family's rules.
        let k = key(&format!("depends-{i}"));
        flags.insert(
            k.clone(),
            AccessRules::Some(TargetedAccess {
                rules: vec![rule(
                    vec![
                        Condition::FlagAccess {
                            flag: key(&format!("lists-{i}")),
                            enabled: true,
                        },
                        Condition::FlagAccess {
                            flag: key(&format!("simple-{i}")),
                            enabled: false,
                        },
                        cond("other", "source", ContextOperator::IsNot, &["api"]),
                    ],
                    100.0,
                    false,
                )],
                ..Default::default()
            }),
        );
        order.push(k);
    }
    let cx = CompileContext {
        segments: &segments,
        flags: &flags,
    };
    order
        .iter()
        .enumerate()
        .map(|(n, k)| {
            let rules = compile_access_rules(k, &flags[k], &cx).expect("compiles");
            let config = (n % 2 == 0).then(|| {
                compile_remote_config(
                    &RemoteConfig {
                        version: 1,
                        variants: vec![
                            ConfigVariant {
                                key: "beta".into(),
                                payload: json!({"limit": 100}),
                                companies: ids("company", 900, 100),
                                users: ids("user", 0, 10),
                                segments: vec![seg("enterprise")],
                                is_default: false,
                            },
                            ConfigVariant {
                                key: "default".into(),
                                payload: json!({"limit": 10}),
                                companies: vec![],
                                users: vec![],
                                segments: vec![],
                                is_default: true,
                            },
                        ],
                    },
                    &cx,
                )
                .expect("config compiles")
            });
            FlagDefinition {
                key: k.clone(),
                description: None,
                targeting: Targeting { version: 1, rules },
                config,
            }
        })
        .collect()
}

fn context() -> serde_json::Value {
    json!({
        "user": {"id": "user-4711", "email": "ada@example.com", "name": "Ada", "age": 36},
        "company": {"id": "company-5123", "name": "Acme", "plan": "enterprise", "employees": 250,
                    "region": "de", "createdAt": "2024-01-02T10:00:00Z"},
        "other": {"source": "web"}
    })
}

fn simple_flag() -> FlagDefinition {
    serde_json::from_value(json!({
        "key": "huddle", "description": null,
        "targeting": {"version": 42, "rules": [{"filter": {"type": "group", "operator": "and", "filters": [
            {"type": "context", "field": "company.id", "operator": "IS", "values": ["company-5123"]},
            {"type": "rolloutPercentage", "key": "huddle", "partialRolloutAttribute": "company.id",
             "partialRolloutThreshold": 100000}]}}]}
    }))
    .expect("simple flag")
}

fn write_workload(defs: &[FlagDefinition], simple: &FlagDefinition) {
    let path = std::env::var("GATEHOUSE_BENCH_WORKLOAD")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-workload.json").to_owned());
    let doc = json!({"now": NOW, "context": context(), "flags": defs, "simple": simple});
    if let Err(e) = std::fs::write(&path, doc.to_string()) {
        eprintln!("could not write {path}: {e}");
    }
}

fn benches(c: &mut Criterion) {
    let defs = workload();
    let simple = simple_flag();
    write_workload(&defs, &simple);
    let (flags, fields) = compile_flags(&defs);
    let context = JsValue::from(&context());
    let enabled = evaluate_flags(&flags, &flatten(&context), NOW)
        .iter()
        .filter(|r| r.is_enabled)
        .count();
    eprintln!(
        "workload: {} flags, {enabled} enabled for the benchmark context",
        flags.len()
    );

    c.bench_function("bulk_100_flags (flatten + evaluate)", |b| {
        b.iter(|| {
            let mut ctx = flatten(black_box(&context));
            ctx.bind(&fields);
            let results = evaluate_flags(&flags, &ctx, NOW);
            black_box(results.len())
        })
    });
    let mut flat = flatten(&context);
    flat.bind(&fields);
    c.bench_function("bulk_100_flags (evaluate only)", |b| {
        b.iter(|| black_box(evaluate_flags(&flags, black_box(&flat), NOW).len()))
    });
    let simple = [CompiledFlag::compile(&simple)];
    c.bench_function("single_simple_flag (flatten + evaluate)", |b| {
        b.iter(|| {
            let ctx = flatten(black_box(&context));
            black_box(evaluate_flags(&simple, &ctx, NOW)[0].is_enabled)
        })
    });
    c.bench_function("compile_100_flags", |b| {
        b.iter(|| black_box(compile_flags(black_box(&defs)).0.len()))
    });
}

criterion_group! {
    name = engine;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(50);
    targets = benches
}
criterion_main!(engine);
