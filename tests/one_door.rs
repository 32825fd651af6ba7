//! Every change goes through one door: the change pipeline validates inside the write
//! transaction, so changes racing each other can never store a flag-access cycle; serving never
//! freezes, whatever is stored; and the same change made from the admin UI, the command line and
//! an import records the same audit entry and the same outbox event.

mod common;

use std::time::{Duration, Instant};

use common::{client, gatehouse, new_flag, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::AccessRules;
use gatehouse::service::{Actor, AuditFilter, Change};
use gatehouse::startup::{Application, ServerSettings};
use serde_json::{json, Value};

const EDITOR: &str = "eddie@example.com";

/// The access form as the flag page posts it, with one rule: "flag `requires` is enabled".
fn requiring(flag: &str, requires: &str, expected_version: i64) -> Vec<(String, String)> {
    let version = expected_version.to_string();
    [
        ("flag", flag),
        ("environment", "production"),
        ("expected_version", &version),
        ("form[mode]", "some"),
        ("form[companies]", ""),
        ("form[users]", ""),
        ("form[segments]", ""),
        ("form[rules][0][rollout]", "100"),
        ("form[rules][0][rollout_by]", "company"),
        ("form[conditions][0][rule]", "0"),
        ("form[conditions][0][kind]", "flag"),
        ("form[conditions][0][field]", requires),
        ("form[conditions][0][operator]", "IS"),
        ("form[conditions][0][value]", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The current version of a flag's access rules in production.
async fn version(app: &TestApp, flag: &str) -> i64 {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    page.history.first().map_or(0, |v| v.version)
}

/// Sets a flag back to No one in production.
async fn reset(app: &TestApp, flag: &str) {
    app.apply(common::set_access(flag, "production", AccessRules::NoOne, None))
        .await;
}

/// After the race: every environment is served, a key revoked now is refused within a second,
/// and a restart on the same database serves every environment again.
async fn still_serving(app: &TestApp) {
    for environment in ["production", "staging", "development"] {
        let key = app.publishable_key(environment).await;
        let response = app
            .client
            .get(app.url("/features/evaluated?context.company.id=acme"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{environment} is served");
    }
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = app.apply(create).await.into_secret_key().unwrap();
    let features = || app.client.get(app.url("/features")).bearer_auth(&secret).send();
    assert_eq!(features().await.unwrap().status(), 200);
    let revoke = Change::RevokeSecretKey {
        prefix: secret[..16].to_string(),
    };
    app.apply(revoke).await;
    let revoked_at = Instant::now();
    while features().await.unwrap().status() != 403 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "a revoked key kept working"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = Application::build(ServerSettings::local(app.db.url.clone(), "127.0.0.1:0"))
        .await
        .expect("a restart succeeds");
    let runtime = restarted.state().runtime.clone();
    assert!(
        runtime.stale_environments().is_empty(),
        "{:?}",
        runtime.stale_environments()
    );
    assert_eq!(runtime.snapshots().len(), 3);
}

async fn racing_saves_never_store_a_cycle(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_member(EDITOR, Role::Editor).await;
    let (one, two) = (app.signed_in(EDITOR).await, app.signed_in(EDITOR).await);
    for flag in ["a", "b"] {
        app.apply(new_flag(flag)).await;
    }
    for round in 0..50 {
        let (va, vb) = (version(&app, "a").await, version(&app, "b").await);
        let (a_needs_b, b_needs_a) = (requiring("a", "b", va), requiring("b", "a", vb));
        let save = |client: &reqwest::Client, form: Vec<(String, String)>| {
            client.post(app.url("/api/edit/save_access")).form(&form).send()
        };
        let (first, second) = tokio::join!(save(&one, a_needs_b), save(&two, b_needs_a));
        let (first, second) = (first.unwrap(), second.unwrap());
        let statuses = (first.status().as_u16(), second.status().as_u16());
        let bodies = (first.text().await.unwrap(), second.text().await.unwrap());
        let saved = match statuses {
            (200, 422) => {
                assert!(bodies.1.contains("cycle"), "round {round}: {}", bodies.1);
                "a"
            }
            (422, 200) => {
                assert!(bodies.0.contains("cycle"), "round {round}: {}", bodies.0);
                "b"
            }
            other => panic!("round {round}: exactly one save must pass, got {other:?}: {bodies:?}"),
        };
        reset(&app, saved).await;
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn racing_saves_never_store_a_cycle_on_sqlite() {
    racing_saves_never_store_a_cycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn racing_saves_never_store_a_cycle_on_postgres() {
    racing_saves_never_store_a_cycle(Backend::Postgres).await;
}

/// A document that gives `flag` the rule "flag `requires` is enabled" in production.
fn import_document(flag: &str, requires: &str) -> String {
    json!({
        "format": "gatehouse/1",
        "flags": [{
            "key": flag, "name": flag, "stage": "In development",
            "access": { "production": { "mode": "some", "rules": [
                { "conditions": [{ "kind": "flagAccess", "flag": requires, "enabled": true }], "rolloutPercentage": 100 }
            ] } }
        }]
    })
    .to_string()
}

async fn racing_imports_never_store_a_cycle(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for flag in ["a", "b"] {
        app.apply(new_flag(flag)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a_file, b_file) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&a_file, import_document("a", "b")).unwrap();
    std::fs::write(&b_file, import_document("b", "a")).unwrap();
    let url = app.db.url.expose().to_string();
    let import = |file: &std::path::Path| {
        gatehouse(&url)
            .args(["import", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    for round in 0..50 {
        let (mut first, mut second) = (import(&a_file), import(&b_file));
        // Waited for on a blocking thread, so the test's own server keeps running (see `output`).
        let (first, second) =
            tokio::task::spawn_blocking(move || (first.wait().unwrap(), second.wait().unwrap()))
                .await
                .unwrap();
        let saved = match (first.success(), second.success()) {
            (true, false) => "a",
            (false, true) => "b",
            other => panic!("round {round}: exactly one import must pass, got {other:?}"),
        };
        reset(&app, saved).await;
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn racing_imports_never_store_a_cycle_on_sqlite() {
    racing_imports_never_store_a_cycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn racing_imports_never_store_a_cycle_on_postgres() {
    racing_imports_never_store_a_cycle(Backend::Postgres).await;
}

/// Corrupts the stored rules of `flag` in `environment` by hand and marks the environment changed.
async fn corrupt(app: &TestApp, flag: &str, environment: &str) {
    sqlx::query(
        "UPDATE flag_targeting_versions SET access_rules = '{\"mode\": \"some\", \"companies\": [' \
         WHERE flag_id = (SELECT id FROM flags WHERE key = $1) \
         AND environment_id = (SELECT id FROM environments WHERE key = $2)",
    )
    .bind(flag)
    .bind(environment)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE environments SET flag_state_version = flag_state_version + 1 WHERE key = $1")
        .bind(environment)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn readyz(app_url: &str) -> (u16, Value) {
    let response = client().get(format!("{app_url}/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn evaluated(app: &TestApp, environment: &str) -> (u16, Value) {
    let key = app.publishable_key(environment).await;
    let response = app
        .client
        .get(app.url("/features/evaluated?context.company.id=acme"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_corrupt_row_leaves_every_other_environment_serving_and_is_named() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for flag in ["steady", "broken"] {
        app.apply(new_flag(flag)).await;
        for environment in ["production", "staging"] {
            app.apply(common::set_access(flag, environment, AccessRules::Everyone, None))
                .await;
        }
    }
    corrupt(&app, "broken", "staging").await;
    app.runtime.refresh().await.unwrap();

    // The running server keeps serving staging's last good snapshot and says so.
    let (status, ready) = readyz(&app.url("")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["stale"][0]["environment"], "staging", "{ready}");
    assert!(
        ready["stale"][0]["error"]
            .as_str()
            .unwrap()
            .contains("flag_targeting_versions"),
        "{ready}"
    );
    let (status, body) = evaluated(&app, "staging").await;
    assert_eq!(
        (status, &body["features"]["broken"]["isEnabled"]),
        (200, &json!(true))
    );

    // A restart serves the others, refuses staging until it is repaired, and names it.
    let restarted = Application::build(ServerSettings::local(app.db.url.clone(), "127.0.0.1:0"))
        .await
        .expect("start-up does not fail for one environment");
    let url = format!("http://{}", restarted.local_addr());
    let runtime = restarted.state().runtime.clone();
    tokio::spawn(restarted.run_until(std::future::pending()));
    let (status, ready) = readyz(&url).await;
    assert_eq!(status, 200);
    assert_eq!(ready["stale"][0]["environment"], "staging", "{ready}");
    assert_eq!(ready["stale"][0]["serving"], Value::Null, "{ready}");
    assert_eq!(runtime.snapshots().len(), 2);
    let production = app.publishable_key("production").await;
    let staging = app.publishable_key("staging").await;
    let get = |key: String| {
        client()
            .get(format!("{url}/features/evaluated?context.company.id=acme"))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(get(production).await.unwrap().status(), 200);
    let refused = get(staging.clone()).await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ENVIRONMENT_NOT_LOADED");
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gatehouse_environment_stale{environment=\"staging\"} 1"),
        "{metrics}"
    );

    // The admin UI says what is wrong instead of showing "No one".
    app.add_member(EDITOR, Role::Editor).await;
    let editor = app.signed_in(EDITOR).await;
    let page = app
        .call(
            &editor,
            "/api/read/flag",
            &[("key", "broken"), ("environment", "staging")],
        )
        .await;
    assert_eq!(page.status(), 500);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("cannot be read") && text.contains("flag_targeting_versions"),
        "{text}"
    );
    let list = app
        .call(
            &editor,
            "/api/read/flags",
            &[
                ("search", ""),
                ("archived", "false"),
                ("page", "0"),
                ("board", "false"),
            ],
        )
        .await;
    let list: Value = list.json().await.unwrap();
    let broken = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "broken")
        .unwrap();
    assert!(
        broken["access"][1][1].as_str().unwrap().starts_with("Unreadable"),
        "{broken}"
    );

    // A change elsewhere in staging is refused with the reason; replacing the rules repairs it.
    let refused = app
        .service
        .apply(
            &Actor::cli(),
            common::set_access("steady", "staging", AccessRules::NoOne, None),
        )
        .await;
    assert!(format!("{refused:?}").contains("cannot be read"), "{refused:?}");
    app.apply(common::set_access("broken", "staging", AccessRules::NoOne, None))
        .await;
    let (status, ready) = readyz(&app.url("")).await;
    assert_eq!((status, ready["stale"].clone()), (200, json!([])));
    let (status, body) = evaluated(&app, "staging").await;
    assert_eq!(
        (status, &body["features"]["broken"]["isEnabled"]),
        (200, &json!(false))
    );
}

/// The newest audit entry and outbox event of a database, without who made them or when.
async fn last_change(app: &TestApp) -> (Value, Value) {
    let filter = AuditFilter::default();
    let audit = app
        .service
        .audit_page(&Actor::cli(), &filter, 0, 1)
        .await
        .unwrap();
    let entry = &audit.entries[0];
    let audit = json!({
        "action": entry.action, "subject": [entry.subject_type, entry.subject_key],
        "environment": entry.environment_key, "before": entry.before, "after": entry.after,
    });
    let events = app.service.change_events(&Actor::cli(), 0, 1000).await.unwrap();
    let event = events.last().unwrap();
    assert_eq!(event.audit_id, entry.id, "the event belongs to the audit entry");
    let event = json!({
        "kind": event.kind, "subject": [event.subject_type, event.subject_key],
        "environment": event.environment_key, "payload": event.payload,
    });
    (audit, event)
}

#[tokio::test]
async fn the_same_change_from_the_ui_the_cli_and_an_import_is_recorded_the_same() {
    let mut recorded = Vec::new();
    for road in ["ui", "cli", "import"] {
        let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
        app.apply(new_flag("checkout")).await;
        let url = app.db.url.expose().to_string();
        let run = |args: &[&str]| {
            let mut command = gatehouse(&url);
            command.args(args);
            async move {
                let output = common::output(command).await;
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        };
        match road {
            "ui" => {
                app.add_member(EDITOR, Role::Editor).await;
                let editor = app.signed_in(EDITOR).await;
                let mut form = requiring("checkout", "checkout", 1);
                form.retain(|(k, _)| !k.starts_with("form[conditions]") && !k.starts_with("form[rules]"));
                form.iter_mut()
                    .filter(|(k, _)| k == "form[companies]")
                    .for_each(|(_, v)| *v = "acme".into());
                let saved = editor
                    .post(app.url("/api/edit/save_access"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
            }
            "cli" => {
                run(&[
                    "access",
                    "grant",
                    "checkout",
                    "--environment",
                    "production",
                    "--company",
                    "acme",
                ])
                .await
            }
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("checkout.json");
                let document = json!({ "format": "gatehouse/1", "flags": [{
                    "key": "checkout", "name": "checkout", "stage": "In development",
                    "access": { "production": { "mode": "some", "companies": ["acme"] } }
                }] });
                std::fs::write(&file, document.to_string()).unwrap();
                run(&["import", file.to_str().unwrap()]).await;
            }
        }
        recorded.push((road, last_change(&app).await));
    }
    let (_, (audit, event)) = &recorded[0];
    assert_eq!(audit["action"], "flag.access_rules_changed", "{audit}");
    assert_eq!(audit["after"]["rules"]["companies"], json!(["acme"]), "{audit}");
    assert_eq!(event["payload"]["after"], audit["after"]);
    for (road, change) in &recorded[1..] {
        assert_eq!(change, &recorded[0].1, "{road} records the change differently");
    }
}
