//! Real clients from npm, unmodified, against a running server: Reflag's node SDK evaluates
//! locally from `/features` and must agree with `/features/evaluated`; OpenFeature's OFREP
//! provider resolves boolean and object flags. `make test` installs the packages
//! (`tests/sdk/package.json`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{new_flag, set_access, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::{AccessRules, ConfigVariant};
use gatehouse::service::Change;
use serde_json::{json, Value};

fn sdk_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"))
}

fn require_packages() {
    assert!(
        sdk_dir().join("node_modules/@reflag/node-sdk").exists()
            && sdk_dir()
                .join("node_modules/@openfeature/ofrep-provider")
                .exists(),
        "the SDK packages are missing: run `cd tests/sdk && npm ci` (make test does)"
    );
}

fn rules(value: Value) -> AccessRules {
    serde_json::from_value(value).expect("access rules")
}

/// Flags that exercise every kind of rule: company list, attribute, segment, rollout, flag
/// access, user list, and a flag with remote config.
async fn seed(app: &TestApp) -> (String, String) {
    for key in [
        "acme-only",
        "enterprise",
        "beta-segment",
        "half",
        "follows-half",
        "users",
        "theme",
    ] {
        app.apply(new_flag(key)).await;
    }
    let segment = Change::SaveSegment {
        key: "big-customers".into(),
        name: "Big customers".into(),
        description: String::new(),
        conditions: serde_json::from_value(json!([
            { "kind": "companyAttribute", "attribute": "employees", "operator": "GT", "values": ["500"] }
        ]))
        .unwrap(),
        create: true,
    };
    app.apply(segment).await;
    let set = |key: &'static str, value: Value| app.apply(set_access(key, "production", rules(value), None));
    set("acme-only", json!({ "mode": "some", "companies": ["acme"] })).await;
    set(
        "enterprise",
        json!({ "mode": "some", "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["enterprise"] }
        ], "rolloutPercentage": 100 }] }),
    )
    .await;
    set(
        "beta-segment",
        json!({ "mode": "some", "segments": ["big-customers"] }),
    )
    .await;
    set(
        "half",
        json!({ "mode": "some", "rules": [{ "conditions": [], "rolloutPercentage": 50 }] }),
    )
    .await;
    set(
        "follows-half",
        json!({ "mode": "some", "rules": [{ "conditions": [
            { "kind": "flagAccess", "flag": "half", "enabled": true }
        ], "rolloutPercentage": 100 }] }),
    )
    .await;
    set("users", json!({ "mode": "some", "users": ["user-3", "user-7"] })).await;
    set("theme", json!({ "mode": "everyone" })).await;
    let config = Change::SetRemoteConfig {
        flag: "theme".into(),
        environment: "production".into(),
        expected_version: None,
        variants: vec![
            ConfigVariant {
                key: "dark".into(),
                payload: json!({ "color": "black" }),
                companies: vec!["acme".into()],
                users: vec![],
                segments: vec![],
                is_default: false,
            },
            ConfigVariant {
                key: "light".into(),
                payload: json!({ "color": "white" }),
                companies: vec![],
                users: vec![],
                segments: vec![],
                is_default: true,
            },
        ],
    };
    app.apply(config).await;
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = app.apply(create).await.into_secret_key().unwrap();
    (secret, app.publishable_key("production").await)
}

fn node(script: &str, args: &[&str], env: &[(&str, String)]) -> (bool, Value) {
    let output = Command::new("node")
        .arg(sdk_dir().join(script))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "{script} printed no JSON:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflag_node_sdk_local_evaluation_matches_remote_evaluation() {
    require_packages();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (secret, _) = seed(&app).await;
    let plans = ["free", "pro", "enterprise"];
    // One context per company (stored attributes are per company); users recur across companies
    // with the same attributes each time.
    let contexts: Vec<Value> = (0..200)
        .map(|i| {
            let company = if i == 0 {
                "acme".to_string()
            } else {
                format!("company-{i}")
            };
            let user = i % 12;
            json!({
                "company": { "id": company, "plan": plans[i % 3], "employees": (i * 37) % 1000 },
                "user": { "id": format!("user-{user}"), "email": format!("u{user}@example.com") },
                "other": { "source": "test" },
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contexts.json");
    std::fs::write(&file, serde_json::to_string(&contexts).unwrap()).unwrap();
    let (ok, summary) = node(
        "reflag-node.mjs",
        &[file.to_str().unwrap()],
        &[("GATEHOUSE_URL", app.url("")), ("SECRET_KEY", secret)],
    );
    assert!(ok, "local and remote evaluation differ: {summary}");
    assert_eq!(summary["contexts"], 200);
    assert_eq!(summary["flags"], 7);
    let enabled = summary["enabled"].as_u64().unwrap();
    assert!(
        enabled > 200 && enabled < 7 * 200,
        "a non-trivial mix of answers: {summary}"
    );
    let companies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM companies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(companies, 200, "the SDK's updateCompany calls were stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfeature_ofrep_provider_resolves_boolean_and_object_flags() {
    require_packages();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (_, publishable) = seed(&app).await;
    let (ok, out) = node(
        "openfeature.mjs",
        &[],
        &[("GATEHOUSE_URL", app.url("")), ("API_KEY", publishable)],
    );
    assert!(ok, "{out}");
    assert_eq!(out["acmeBoolean"]["value"], true);
    assert_eq!(out["acmeBoolean"]["reason"], "TARGETING_MATCH");
    assert_eq!(out["globexBoolean"]["value"], false);
    assert_eq!(out["acmeObject"]["value"], json!({ "color": "black" }));
    assert_eq!(out["acmeObject"]["variant"], "dark");
    assert_eq!(out["globexObject"]["value"], json!({ "color": "white" }));
    assert_eq!(
        out["missing"]["value"], true,
        "a missing flag falls back to the code default"
    );
    assert_eq!(out["missing"]["errorCode"], "FLAG_NOT_FOUND");
}

/// Runs `code` (ES module, written into tests/sdk so it finds the packages) with `env`; the
/// last line it printed.
fn run_snippet(name: &str, code: &str, env: &[(&str, String)], check_only: bool) -> String {
    let file = sdk_dir().join(format!("snippet-{name}-{}.mjs", std::process::id()));
    std::fs::write(&file, code).unwrap();
    let mut command = Command::new("node");
    if check_only {
        command.arg("--check");
    }
    let output = command
        .arg(&file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs");
    std::fs::remove_file(&file).ok();
    assert!(
        output.status.success(),
        "the {name} snippet failed:\n{code}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overviews_snippets_run_as_written() {
    require_packages();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(new_flag("my-flag")).await;
    app.apply(set_access(
        "my-flag",
        "production",
        rules(json!({ "mode": "some", "companies": ["acme"] })),
        None,
    ))
    .await;
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = app.apply(create).await.into_secret_key().unwrap();
    let publishable = app.publishable_key("production").await;
    let snippets = gatehouse::ui::home::snippets(&app.url(""), &publishable);
    assert_eq!(snippets.len(), 3);
    let (browser, node_sdk, openfeature) = (&snippets[0].2, &snippets[1].2, &snippets[2].2);
    assert!(browser.contains(&publishable) && openfeature.contains(&publishable));
    assert!(
        !node_sdk.contains(&publishable),
        "the Node SDK takes the secret key"
    );

    // The browser SDK's is checked for syntax (it runs in a browser); the others run.
    run_snippet("browser", browser, &[], true);
    let shown = format!(
        "{node_sdk}\nconsole.log(JSON.stringify(flags.getFlag(\"my-flag\").isEnabled));\nprocess.exit(0);\n"
    );
    assert_eq!(
        run_snippet("node", &shown, &[("REFLAG_SECRET_KEY", secret)], false),
        "true"
    );
    let shown = format!("{openfeature}\nconsole.log(JSON.stringify(enabled));\nprocess.exit(0);\n");
    assert_eq!(run_snippet("openfeature", &shown, &[], false), "true");
}
