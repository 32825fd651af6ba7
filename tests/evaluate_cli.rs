//! The `gatehouse evaluate` command: JSON lines in, reference-shaped JSON lines out.

use gatehouse::eval::cli::run_evaluate;
use serde_json::{json, Value};

const NOW: i64 = 1_704_844_800_000; // 2024-01-10T00:00:00Z

fn run(input: &str) -> (bool, Vec<String>) {
    let mut out = Vec::new();
    let failed = run_evaluate(input.as_bytes(), &mut out, NOW).expect("in-memory I/O");
    let text = String::from_utf8(out).expect("utf8");
    (failed, text.lines().map(str::to_owned).collect())
}

#[test]
fn evaluates_each_line_like_the_reference() {
    let input = concat!(
        r#"{"flagKey":"huddle","rules":[{"filter":{"type":"context","field":"company.id","operator":"IS","values":["acme"]},"value":{"b":1,"a":2}}],"context":{"user":{"id":"u1"},"company":{"id":"acme","tags":[]}}}"#,
        "\n\n",
        r#"{"flagKey":"recent","rules":[{"filter":{"type":"context","field":"user.createdAt","operator":"AFTER","values":["5"]},"value":true}],"context":{"company":{"id":"acme"}}}"#,
        "\n"
    );
    let (failed, lines) = run(input);
    assert!(!failed);
    assert_eq!(lines.len(), 2, "blank lines are skipped");
    // Byte-exact: key order of the echoed context and of the rule value follow JS.
    assert_eq!(
        lines[0],
        r#"{"flagKey":"huddle","value":{"b":1,"a":2},"reason":"rule #0 matched","context":{"user.id":"u1","company.id":"acme","company.tags":""},"ruleEvaluationResults":[true],"missingContextFields":[]}"#
    );
    let second: Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(
        second,
        json!({"flagKey": "recent", "value": null, "reason": "no matched rules", "context": {"company.id": "acme"},
               "ruleEvaluationResults": [false], "missingContextFields": ["user.createdAt"]})
    );
}

#[test]
fn malformed_lines_are_reported_and_processing_continues() {
    let input = concat!(
        "{not json\n",
        r#"{"flagKey":"f","rules":[{"filter":{"type":"constant","value":true},"value":1}],"context":{}}"#,
        "\n",
        r#"{"flagKey":"f","rules":"nope"}"#,
        "\n"
    );
    let (failed, lines) = run(input);
    assert!(failed);
    assert_eq!(lines.len(), 3);
    let first: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(first["line"], 1);
    assert!(first["error"].as_str().is_some_and(|e| !e.is_empty()));
    let second: Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(second["value"], 1);
    let third: Value = serde_json::from_str(&lines[2]).expect("json");
    assert_eq!(third["line"], 3);
}

#[test]
fn empty_input_succeeds() {
    assert_eq!(run(""), (false, vec![]));
}
