//! Runs every applicable vector of `fixtures/reflag-vectors.json` (produced by
//! `@reflag/flag-evaluation` 1.0.1 and node-sdk 1.7.1) against the engine. Sections describing
//! newer or draft semantics (`array_context_v1_1`, `percentage_distribution_v2_draft`, the
//! `expected_v1_1` columns) and HTTP shapes (`http_requests`) are for other layers.

use gatehouse::eval::{
    compile_flags, evaluate_flag_rules, evaluate_flags, evaluate_operator, flatten, hash_int,
    jsdate::parse_js_date, rollout_bucket, CompiledFlag, CompiledRules, FieldTable, FlatContext,
};
use gatehouse::model::{ContextOperator, FlagDefinition, JsValue, Rule, RuleFilter};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reflag-vectors.json"
    ))
    .expect("vector file");
    serde_json::from_str(&text).expect("vector JSON")
}

fn section(name: &str) -> Vec<Value> {
    let v = vectors();
    let list = v[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name}"))
        .clone();
    assert!(!list.is_empty(), "section {name} is empty");
    list
}

/// Vector fields re-parsed with JS object order (serde_json::Value sorts keys).
fn js(v: &Value) -> JsValue {
    serde_json::from_str(&v.to_string()).expect("JSON")
}

/// A fixed clock for vectors whose `now` is null (the clock is irrelevant there).
const ANY_NOW: i64 = 1_704_844_800_000;

fn now_of(v: &Value) -> i64 {
    match v["now"].as_str() {
        Some(iso) => parse_js_date(iso) as i64,
        None => ANY_NOW,
    }
}

fn ordered_pairs(v: &JsValue) -> Vec<(String, String)> {
    v.as_object()
        .expect("object")
        .entries()
        .iter()
        .map(|(k, v)| match v {
            JsValue::String(s) => (k.clone(), s.clone()),
            other => panic!("non-string flattened value {other:?}"),
        })
        .collect()
}

#[test]
fn hash_int_vectors() {
    let cases = section("hash_int");
    for c in &cases {
        let input = c["input"].as_str().expect("input");
        assert_eq!(
            u64::from(hash_int(input)),
            c["expected"].as_u64().expect("expected"),
            "hashInt({input:?})"
        );
    }
    assert_eq!(cases.len(), 68);
}

#[test]
fn rollout_vectors() {
    let cases = section("rollout");
    for c in &cases {
        let key = c["key"].as_str().expect("key");
        let attribute = c["partialRolloutAttribute"].as_str().expect("attribute");
        let value = c["attributeValue"].as_str().expect("value");
        let threshold = c["partialRolloutThreshold"].as_f64().expect("threshold");
        assert_eq!(
            u64::from(rollout_bucket(key, value)),
            c["hash"].as_u64().expect("hash")
        );
        assert_eq!(
            u64::from(hash_int(c["hashInput"].as_str().expect("hashInput"))),
            c["hash"].as_u64().expect("hash")
        );
        let filter = RuleFilter::RolloutPercentage {
            key: Some(key.to_owned()),
            partial_rollout_attribute: attribute.to_owned(),
            partial_rollout_threshold: threshold,
        };
        let rules = CompiledRules::compile([&filter]);
        let ctx = FlatContext::from_pairs([(attribute, value)]);
        let outcome = rules.evaluate(&ctx, ANY_NOW);
        assert_eq!(
            outcome.rule_results,
            vec![c["expected"].as_bool().expect("expected")],
            "{c}"
        );
        assert!(outcome.missing.is_empty());
    }
    assert_eq!(cases.len(), 11);
}

#[test]
fn operator_vectors() {
    let cases = section("operator_eval");
    for c in &cases {
        let field_value = c["fieldValue"].as_str().expect("fieldValue");
        let operator: ContextOperator = serde_json::from_value(c["operator"].clone()).expect("operator");
        let values: Vec<String> = serde_json::from_value(c["values"].clone()).expect("values");
        let expected = c["expected"].as_bool().expect("expected");
        let now = now_of(c);
        assert_eq!(
            evaluate_operator(field_value, operator, &values, now),
            expected,
            "scalar {c}"
        );
        // The compiled path (pre-parsed constants) must agree with the scalar function.
        let filter = RuleFilter::Context {
            field: "f".into(),
            operator,
            values: Some(values),
        };
        let ctx = FlatContext::from_pairs([("f", field_value)]);
        assert_eq!(
            CompiledRules::compile([&filter]).evaluate(&ctx, now).rule_results,
            vec![expected],
            "compiled {c}"
        );
    }
    assert_eq!(cases.len(), 103);
}

#[test]
fn flatten_vectors() {
    let cases = section("flatten_json");
    for c in &cases {
        let flat = flatten(&js(&c["input"]));
        assert_eq!(flat.to_pairs(), ordered_pairs(&js(&c["expected"])), "{c}");
    }
    assert_eq!(cases.len(), 17);
}

#[test]
fn evaluate_flag_rules_vectors() {
    let cases = section("evaluate_flag_rules");
    for c in &cases {
        let name = c["name"].as_str().expect("name");
        let rules: Vec<Rule<JsValue>> = serde_json::from_str(&c["rules"].to_string()).expect("rules");
        let flag_key = c["flagKey"].as_str().expect("flagKey");
        let result = evaluate_flag_rules(flag_key, &rules, &js(&c["context"]), now_of(c));
        let expected = &c["expected"];
        let expected_value = expected["matched"]
            .as_bool()
            .expect("matched")
            .then(|| js(&expected["value"]));
        assert_eq!(result.value, expected_value, "{name}: value");
        assert_eq!(
            result.reason,
            expected["reason"].as_str().expect("reason"),
            "{name}: reason"
        );
        assert_eq!(
            result.context.to_pairs(),
            ordered_pairs(&js(&expected["context"])),
            "{name}: context"
        );
        let results: Vec<bool> =
            serde_json::from_value(expected["ruleEvaluationResults"].clone()).expect("results");
        assert_eq!(
            result.rule_evaluation_results, results,
            "{name}: ruleEvaluationResults"
        );
        let missing: Vec<String> =
            serde_json::from_value(expected["missingContextFields"].clone()).expect("missing");
        assert_eq!(
            result.missing_context_fields, missing,
            "{name}: missingContextFields"
        );
        assert_eq!(result.flag_key, flag_key);

        // The same rules numbered in a field table and read by slot from a bound context, and
        // read by name from a context bound to another table: the same outcome either way.
        let mut fields = FieldTable::new();
        let compiled = CompiledRules::compile_in(rules.iter().map(|r| &r.filter), &mut fields);
        let mut bound = flatten(&js(&c["context"]));
        bound.bind(&fields);
        let by_slot = compiled.evaluate(&bound, now_of(c));
        assert_eq!(by_slot.rule_results, results, "{name}: by slot");
        assert_eq!(by_slot.missing, missing, "{name}: missing by slot");
        assert_eq!(
            by_slot.matched.is_some(),
            expected["matched"].as_bool().unwrap_or_default()
        );
        let mut other = flatten(&js(&c["context"]));
        other.bind(&FieldTable::new());
        let by_name = compiled.evaluate(&other, now_of(c));
        assert_eq!(by_name, by_slot, "{name}: context bound to another table");
        // Bound before the table grew: the rules compiled afterwards read it by name.
        let mut early = flatten(&js(&c["context"]));
        let mut growing = FieldTable::new();
        early.bind(&growing);
        let late = CompiledRules::compile_in(rules.iter().map(|r| &r.filter), &mut growing);
        assert_eq!(
            late.evaluate(&early, now_of(c)),
            by_slot,
            "{name}: bound before compiling"
        );
    }
    assert_eq!(cases.len(), 21);
}

#[test]
fn node_sdk_flag_vectors() {
    let cases = section("node_sdk_flags");
    for c in &cases {
        let name = c["name"].as_str().expect("name");
        let defs: Vec<FlagDefinition> =
            serde_json::from_value(c["flagDefinitions"].clone()).expect("definitions");
        let flags: Vec<CompiledFlag> = defs.iter().map(CompiledFlag::compile).collect();
        let ctx = flatten(&js(&c["context"]));
        let results = evaluate_flags(&flags, &ctx, ANY_NOW);
        let mut got = serde_json::Map::new();
        for r in &results {
            got.insert(r.key.to_owned(), serde_json::to_value(r).expect("serialize"));
        }
        assert_eq!(Value::Object(got), c["expected"], "{name}");

        // Compiled as a snapshot is (one field table) and read by slot.
        let (snapshot_flags, fields) = compile_flags(&defs);
        let mut bound = flatten(&js(&c["context"]));
        bound.bind(&fields);
        assert_eq!(
            evaluate_flags(&snapshot_flags, &bound, ANY_NOW),
            results,
            "{name}: by slot"
        );
    }
    assert_eq!(cases.len(), 4);
}
