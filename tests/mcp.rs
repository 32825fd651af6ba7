//! The MCP server at `/mcp`, driven by the official MCP TypeScript client
//! (`@modelcontextprotocol/sdk`, tests/sdk/mcp-client.mjs): it lists the tools with their input
//! schemas, creates a flag and grants a company access as an editor's service token; the change
//! is served by `/features/evaluated` and audited as the token; refusals are tool errors with
//! readable text; access is revoked as it is granted; a viewer's token may not write; no token
//! or a revoked one, no MCP.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use serde_json::{json, Value};

fn sdk_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"))
}

/// Runs the MCP client against `url` with `token` and `calls` (on a blocking thread: the server
/// answers on the test's runtime); whether it connected, and its JSON document.
async fn mcp(url: String, token: String, calls: Value) -> (bool, Value) {
    tokio::task::spawn_blocking(move || run_client(&url, &token, &calls))
        .await
        .unwrap()
}

fn run_client(url: &str, token: &str, calls: &Value) -> (bool, Value) {
    assert!(
        sdk_dir().join("node_modules/@modelcontextprotocol/sdk").exists(),
        "run `make node-tools` (npm ci in tests/sdk) first"
    );
    let output = Command::new("node")
        .arg(sdk_dir().join("mcp-client.mjs"))
        .arg(url)
        .arg(token)
        .arg(calls.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the client printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), document)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_creates_a_flag_and_grants_a_company_through_mcp() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let agent = app.service_token("agent", Role::Editor, None).await;
    let calls = json!([
        { "name": "create_flag", "arguments": { "key": "mcp-checkout", "name": "MCP checkout" } },
        { "name": "grant_access", "arguments": { "flag": "mcp-checkout", "environment": "production", "company": "acme" } },
        { "name": "get_flag", "arguments": { "key": "mcp-checkout" } },
        { "name": "check_access", "arguments": { "company": "acme" } },
        { "name": "list_flags", "arguments": { "query": "mcp" } },
        { "name": "move_stage", "arguments": { "flag": "mcp-checkout", "stage": "Beta" } },
        { "name": "grant_access", "arguments": { "flag": "no-such-flag", "environment": "production", "company": "acme" } },
        { "name": "grant_access", "arguments": { "flag": "mcp-checkout", "environment": "production", "company": "a", "user": "b" } },
        { "name": "list_companies", "arguments": {} },
        { "name": "grant_access", "arguments": { "flag": "mcp-checkout", "environment": "production", "user": "u-7" } },
        { "name": "revoke_access", "arguments": { "flag": "mcp-checkout", "environment": "production", "user": "u-7" } },
        { "name": "list_stages", "arguments": {} },
    ]);
    let (ok, document) = mcp(app.url("/mcp"), agent, calls).await;
    assert!(ok, "{document}");

    let tools = document["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for wanted in [
        "list_flags",
        "get_flag",
        "create_flag",
        "grant_access",
        "revoke_access",
        "move_stage",
        "list_stages",
        "check_access",
        "list_companies",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    let create = tools.iter().find(|t| t["name"] == "create_flag").unwrap();
    assert_eq!(create["inputSchema"]["type"], "object");
    assert_eq!(create["inputSchema"]["required"], json!(["key"]), "{create}");

    let results = document["results"].as_array().unwrap();
    for (i, result) in results.iter().enumerate().take(6) {
        assert_eq!(result["isError"], false, "call {i}: {result}");
    }
    let flag: Value = serde_json::from_str(results[2]["text"].as_str().unwrap()).unwrap();
    assert_eq!(flag["access"][0]["rules"]["companies"], json!(["acme"]), "{flag}");
    assert!(results[3]["text"].as_str().unwrap().contains("mcp-checkout"));
    let moved: Value = serde_json::from_str(results[5]["text"].as_str().unwrap()).unwrap();
    assert_eq!(moved["stage"], "Beta");
    assert_eq!(results[6]["isError"], true);
    assert!(
        results[6]["text"].as_str().unwrap().contains("not found"),
        "{}",
        results[6]
    );
    assert_eq!(results[7]["isError"], true);
    assert!(results[7]["text"].as_str().unwrap().contains("exactly one"));

    for (i, result) in results.iter().enumerate().skip(8) {
        assert_eq!(result["isError"], false, "call {i}: {result}");
    }
    let granted: Value = serde_json::from_str(results[9]["text"].as_str().unwrap()).unwrap();
    let revoked: Value = serde_json::from_str(results[10]["text"].as_str().unwrap()).unwrap();
    assert!(granted.to_string().contains("u-7"), "{granted}");
    assert!(!revoked.to_string().contains("u-7"), "{revoked}");
    assert!(results[11]["text"].as_str().unwrap().contains("Beta"));

    // Served by the evaluation API, and audited as the token.
    let evaluated = app.evaluated("production", "context.company.id=acme").await;
    assert_eq!(evaluated["features"]["mcp-checkout"]["isEnabled"], true);
    let revoked_user = app.evaluated("production", "context.user.id=u-7").await;
    assert_eq!(revoked_user["features"]["mcp-checkout"]["isEnabled"], false);
    let audit = app
        .service
        .audit_page(
            &gatehouse::service::Actor::cli(),
            &gatehouse::service::AuditFilter {
                subject: "mcp-checkout".into(),
                ..Default::default()
            },
            0,
            50,
        )
        .await
        .unwrap();
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.action == "flag.access_rules_changed" && e.actor_label == "service token agent"),
        "{:?}",
        audit.entries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_token_reads_but_may_not_change_and_no_token_gets_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let viewer = app.service_token("dashboard", Role::Viewer, None).await;
    let calls = json!([
        { "name": "list_flags", "arguments": {} },
        { "name": "create_flag", "arguments": { "key": "sneaky" } },
    ]);
    let (ok, document) = mcp(app.url("/mcp"), viewer, calls).await;
    assert!(ok, "{document}");
    let results = &document["results"];
    assert_eq!(results[0]["isError"], false, "{document}");
    assert_eq!(results[1]["isError"], true, "{document}");
    assert!(
        results[1]["text"].as_str().unwrap().contains("only editors"),
        "a refusal worded for people: {}",
        results[1]
    );
    let (ok, document) = mcp(app.url("/mcp"), "gth_svc_unknown".into(), json!([])).await;
    assert!(!ok, "an unknown token cannot connect: {document}");
    // A revoked token is refused at once.
    let agent = app.service_token("agent", Role::Editor, None).await;
    let prefix: String = agent.chars().take(16).collect();
    app.apply(gatehouse::service::Change::RevokeToken { prefix })
        .await;
    let (ok, document) = mcp(app.url("/mcp"), agent, json!([])).await;
    assert!(!ok, "a revoked token cannot connect: {document}");
    let answer = app
        .client
        .post(app.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_before_the_mcp_layer_reads_it() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let agent = app.service_token("agent", Role::Editor, None).await;
    let padding = "x".repeat(gatehouse::api::limits::max_body_bytes() + 1);
    let answer = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&agent)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "padding": padding } }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
}
