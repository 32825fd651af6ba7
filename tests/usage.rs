//! Usage counting end to end: the evaluation API and reported checks are counted in memory,
//! flushed through the store, and read back by the service (the flag page's Usage section) and
//! the command line; on PostgreSQL two replicas add up; a graceful shutdown loses nothing;
//! retention and staleness follow the injected clock.

mod common;

use common::{gatehouse, set_access, TestApp, TestDb};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::{AccessRules, FlagUsage, StaleReason};
use gatehouse::service::{Actor, Change, Clock, NewFlag, Service, ServiceError};
use gatehouse::startup::{Application, ServerSettings};
use serde_json::{json, Value};

/// 2026-11-02 10:00 UTC.
const START: i64 = 1_793_613_600_000;
const DAY: i64 = 86_400_000;

fn pro_only() -> AccessRules {
    serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"] }
        ] }]
    }))
    .unwrap()
}

async fn seed(app: &TestApp) {
    app.apply(Change::CreateFlag(NewFlag {
        key: "pro-only".into(),
        name: "Pro only".into(),
        ..Default::default()
    }))
    .await;
    app.apply(set_access("pro-only", "production", pro_only(), None))
        .await;
}

async fn get(app_url: &str, key: &str, query: &str) -> Value {
    let response = common::client()
        .get(format!("{app_url}/features/evaluated?{query}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post(app_url: &str, key: &str, path: &str, body: Value) -> u16 {
    common::client()
        .post(format!("{app_url}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A seeded SQLite server on the manual clock at START, with one enabled check of `pro-only`
/// (company acme) written.
async fn one_check_flushed() -> (TestApp, Clock) {
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, START).await.unwrap();
    seed(&app).await;
    let key = app.publishable_key("production").await;
    let pro = "context.company.id=acme&context.company.plan=pro";
    get(&app.url(""), &key, pro).await;
    app.service.flush_usage().await.unwrap();
    (app, clock)
}

async fn usage(service: &Service, days: u32) -> FlagUsage {
    service
        .flag_usage(&Actor::cli(), "pro-only", Some("production"), days)
        .await
        .unwrap()
}

async fn evaluations_and_checks_are_counted_per_outcome_with_distinct_companies(backend: Backend) {
    let Some((app, clock)) = TestApp::spawn_manual(backend, START).await else {
        return;
    };
    seed(&app).await;
    // Remote config: acme gets "gold", everyone else the default "basic".
    let value = |key: &str, companies: &[&str], is_default: bool| gatehouse::model::ConfigVariant {
        key: key.into(),
        payload: json!({ "tier": key }),
        companies: companies.iter().map(|c| c.to_string()).collect(),
        users: vec![],
        segments: vec![],
        is_default,
    };
    app.apply(Change::SetRemoteConfig {
        flag: "pro-only".into(),
        environment: "production".into(),
        variants: vec![value("gold", &["acme"], false), value("basic", &[], true)],
        expected_version: None,
    })
    .await;
    let key = app.publishable_key("production").await;
    let base = app.url("");
    let pro = "context.company.id=acme&context.company.plan=pro&context.user.id=ann";
    let free = "context.company.id=beta&context.company.plan=free&context.user.id=bob";
    for _ in 0..3 {
        let answer = get(&base, &key, pro).await;
        assert_eq!(answer["features"]["pro-only"]["isEnabled"], true);
    }
    get(&base, &key, free).await;
    get(&base, &key, &format!("{free}&key=pro-only")).await;
    let ofrep = json!({ "context": { "targetingKey": "cid", "company": { "id": "corp", "plan": "pro" } } });
    assert_eq!(
        post(&base, &key, "/ofrep/v1/evaluate/flags/pro-only", ofrep).await,
        200
    );
    let check = |enabled: bool, company: &str| {
        json!({ "action": "check-is-enabled", "key": "pro-only", "targetingVersion": 1,
                "evalResult": enabled, "evalContext": { "company": { "id": company } } })
    };
    assert_eq!(
        post(&base, &key, "/features/events", check(true, "acme")).await,
        200
    );
    assert_eq!(
        post(&base, &key, "/features/events", check(true, "delta")).await,
        200
    );
    assert_eq!(
        post(&base, &key, "/features/events", check(false, "beta")).await,
        200
    );
    let unknown = json!({ "action": "check", "key": "no-such-flag", "evalResult": true });
    assert_eq!(post(&base, &key, "/features/events", unknown).await, 200);

    // Nothing reaches the database until a flush.
    assert_eq!(usage(&app.service, 1).await.environments[0].checks(), 0);
    assert!(app.service.flush_usage().await.unwrap() > 0);
    let today = usage(&app.service, 1).await;
    let production = &today.environments[0];
    let day = &production.days[0];
    // 3 + 1 (acme, OFREP corp) enabled evaluations + 2 enabled reports; 2 disabled evaluations
    // (beta twice) + 1 disabled report.
    assert_eq!((day.enabled, day.disabled), (4 + 2, 2 + 1));
    assert_eq!(day.companies, 3, "acme, corp and delta got it; beta did not");
    assert_eq!(
        day.users, 2,
        "ann, and cid (OFREP's targetingKey); bob never got it"
    );
    assert_eq!(production.last_checked, Some(START));
    // Remote-config values served: acme three times; beta twice and corp (OFREP) the default.
    assert_eq!(day.variants, [("basic".to_string(), 3), ("gold".to_string(), 3)]);

    // The next day counts on its own; the period's distinct companies are the union.
    clock.advance(DAY);
    get(&base, &key, pro).await;
    get(&base, &key, "context.company.id=epsilon&context.company.plan=pro").await;
    app.service.flush_usage().await.unwrap();
    let two_days = usage(&app.service, 2).await;
    let production = &two_days.environments[0];
    assert_eq!(production.days.len(), 2);
    assert_eq!(production.days[1].enabled, 2);
    assert_eq!(production.days[1].companies, 2);
    assert_eq!(production.companies, 4, "acme, corp, delta, epsilon");
    assert_eq!(production.last_checked, Some(START + DAY));
    assert!(
        two_days.markers.iter().any(|m| m.label == "access changed"),
        "{:?}",
        two_days.markers
    );
}

#[tokio::test]
async fn counts_on_sqlite() {
    evaluations_and_checks_are_counted_per_outcome_with_distinct_companies(Backend::Sqlite).await;
}

#[tokio::test]
async fn counts_on_postgres() {
    evaluations_and_checks_are_counted_per_outcome_with_distinct_companies(Backend::Postgres).await;
}

/// A server on `db`'s database, on `clock`, that flushes only when told (or at shutdown).
async fn replica(
    db: &TestDb,
    clock: &Clock,
) -> (
    Service,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut settings = ServerSettings::local(db.url.clone(), "127.0.0.1:0");
    settings.clock = clock.clone();
    settings.scheduler_every = None;
    settings.usage_every = None;
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let service = app.state().service.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (service, base, stop, running)
}

#[tokio::test]
async fn two_replicas_add_up_and_a_graceful_shutdown_flushes() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let clock = Clock::manual(START);
    let (one, one_url, stop_one, one_running) = replica(&db, &clock).await;
    let cli = Actor::cli();
    one.apply(&cli, common::new_flag("pro-only")).await.unwrap();
    one.apply(&cli, set_access("pro-only", "production", pro_only(), None))
        .await
        .unwrap();
    // Replica two starts after both changes, so it serves the pro-only rules from its first
    // request (waiting for it to hear of the flag could end between the two changes).
    let (_two, two_url, stop_two, two_running) = replica(&db, &clock).await;
    let key = {
        let (_, keys) = one.api_keys(&cli).await.unwrap();
        let production = common::environment(&one, "production").await;
        keys.into_iter()
            .find(|k| k.environment_id == production.id && k.public_value.is_some())
            .and_then(|k| k.public_value)
            .unwrap()
    };
    let not_pro = get(&two_url, &key, "context.company.id=x").await;
    assert_eq!(not_pro["features"]["pro-only"]["isEnabled"], false);
    let pro = |company: &str| format!("context.company.id={company}&context.company.plan=pro");
    for i in 0..10 {
        get(&one_url, &key, &pro(&format!("c{i}"))).await;
        get(&two_url, &key, &pro(&format!("c{}", i + 5))).await;
    }
    // Replica one flushes now and again; replica two only at its graceful shutdown.
    one.flush_usage().await.unwrap();
    get(&one_url, &key, &pro("c0")).await;
    one.flush_usage().await.unwrap();
    stop_two.send(()).unwrap();
    two_running.await.unwrap();
    let usage = usage(&one, 1).await;
    let day = &usage.environments[0].days[0];
    assert_eq!(day.enabled, 21, "10 + 1 through one, 10 through two");
    assert_eq!(day.disabled, 1, "company x is not on pro");
    assert_eq!(day.companies, 15, "c0..c14: the overlap c5..c9 counted once");
    stop_one.send(()).unwrap();
    one_running.await.unwrap();
}

#[tokio::test]
async fn a_company_enters_a_day_sketch_once_and_flushes_are_the_pipelines_unaudited_changes() {
    let (app, clock) = one_check_flushed().await;
    let key = app.publishable_key("production").await;
    let base = app.url("");
    let pro = |company: &str| format!("context.company.id={company}&context.company.plan=pro");
    let events = |service: &Service| {
        let service = service.clone();
        async move { service.change_events(&Actor::cli(), 0, 1000).await.unwrap().len() }
    };
    let events_before = events(&app.service).await;
    // acme again, twice: the hour's count and the last check move, its exposure is known.
    get(&base, &key, &pro("acme")).await;
    get(&base, &key, &pro("acme")).await;
    assert_eq!(
        app.service.flush_usage().await.unwrap(),
        2,
        "one hourly row and one last-checked row; no exposure row for a company the day has seen"
    );
    get(&base, &key, &pro("zeta")).await;
    assert_eq!(app.service.flush_usage().await.unwrap(), 3, "zeta is new today");
    let today = usage(&app.service, 1).await;
    assert_eq!(
        (
            today.environments[0].days[0].enabled,
            today.environments[0].days[0].companies
        ),
        (4, 2)
    );
    // A new day remembers nobody: acme is exposed again, in the new day's sketch.
    clock.advance(DAY);
    get(&base, &key, &pro("acme")).await;
    assert_eq!(app.service.flush_usage().await.unwrap(), 3);
    assert_eq!(usage(&app.service, 1).await.environments[0].days[0].companies, 1);
    // A request of yesterday counted after today's flush (it straddled midnight): its check
    // counts, but its company must not replace yesterday's sketch (acme and zeta) with itself.
    clock.advance(-DAY);
    get(&base, &key, &pro("late")).await;
    app.service.flush_usage().await.unwrap();
    clock.advance(DAY);
    let days = usage(&app.service, 2).await.environments[0].days.clone();
    assert_eq!(
        (days[0].enabled, days[0].companies),
        (5, 2),
        "yesterday keeps its companies"
    );
    assert_eq!((days[1].enabled, days[1].companies), (1, 1));
    assert_eq!(
        events(&app.service).await,
        events_before,
        "counts are no configuration change: no audit entry, no outbox event"
    );
    // Writing counts or pruning them is Gatehouse's own bookkeeping, not a member's.
    let admin = Actor::member(&app.add_member("admin@example.com", Role::Admin).await);
    let prune = Change::PruneUsage {
        hourly_before: i64::MAX,
        daily_before: i64::MAX,
    };
    assert!(matches!(
        app.service.apply(&admin, prune).await,
        Err(ServiceError::Denied(_))
    ));
    assert_eq!(usage(&app.service, 2).await.environments[0].days[1].enabled, 1);
}

#[tokio::test]
async fn hourly_rows_are_kept_14_days_and_daily_rows_400() {
    let (app, clock) = one_check_flushed().await;
    clock.advance(14 * DAY);
    assert_eq!(app.service.prune_usage().await.unwrap(), (0, 0));
    clock.advance(DAY);
    assert_eq!(
        app.service.prune_usage().await.unwrap(),
        (1, 0),
        "the hourly row is gone"
    );
    let later = usage(&app.service, 20).await;
    assert_eq!(
        later.environments[0].days[4].companies, 1,
        "the day's companies stay"
    );
    assert_eq!(
        later.environments[0].days[4].enabled, 0,
        "its checks went with the hour"
    );
    clock.advance(385 * DAY);
    assert_eq!(
        app.service.prune_usage().await.unwrap(),
        (0, 0),
        "400 days are kept"
    );
    clock.advance(DAY);
    assert_eq!(app.service.prune_usage().await.unwrap(), (0, 1));
}

#[tokio::test]
async fn temporary_flags_go_stale_when_released_or_unused_and_permanent_ones_never() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    let stages = app.service.release_stages(&Actor::cli()).await.unwrap();
    let last = stages.iter().max_by_key(|s| s.sort_order).unwrap().id;
    for (key, permanent) in [("released", false), ("kept", true), ("in-use", false)] {
        app.apply(Change::CreateFlag(NewFlag {
            key: key.into(),
            name: key.into(),
            permanent,
            ..Default::default()
        }))
        .await;
    }
    for key in ["released", "kept"] {
        app.apply(Change::MoveStage {
            flag: key.into(),
            stage_id: last,
        })
        .await;
        app.apply(set_access(key, "production", AccessRules::Everyone, None))
            .await;
    }
    assert!(app.service.stale_flags(&Actor::cli()).await.unwrap().is_empty());
    clock.advance(14 * DAY);
    let publishable = app.publishable_key("production").await;
    get(&app.url(""), &publishable, "key=in-use").await;
    app.service.flush_usage().await.unwrap();
    let stale = app.service.stale_flags(&Actor::cli()).await.unwrap();
    let keys: Vec<&str> = stale.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["released"]);
    assert_eq!(
        stale[0].reasons,
        [StaleReason::Released {
            since: START,
            days: 14
        }]
    );
    clock.advance(17 * DAY);
    let stale = app.service.stale_flags(&Actor::cli()).await.unwrap();
    let keys: Vec<&str> = stale.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["released"], "in-use was checked 17 days ago");
    assert_eq!(stale[0].reasons.len(), 2, "released, and unchecked for 31 days");
    clock.advance(14 * DAY);
    let stale = app.service.stale_flags(&Actor::cli()).await.unwrap();
    let keys: Vec<&str> = stale.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["released", "in-use"]);
    assert!(matches!(
        stale[1].reasons[..],
        [StaleReason::Unchecked { days: 31, .. }]
    ));
    // Archived flags are not stale (they are done) and are not served.
    app.apply(Change::SetArchived {
        flag: "released".into(),
        archived: true,
    })
    .await;
    let stale = app.service.stale_flags(&Actor::cli()).await.unwrap();
    assert_eq!(stale.len(), 1);
    let answer = get(&app.url(""), &publishable, "").await;
    assert!(answer["features"]["released"].is_null());
}

#[tokio::test]
async fn the_command_line_prints_usage_and_stale_flags_as_json() {
    let (app, _clock) = one_check_flushed().await;
    let url = app.db.url.to_string();
    let output = gatehouse(&url)
        .args([
            "usage",
            "pro-only",
            "--environment",
            "production",
            "--days",
            "400",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let production = &document["environments"][0];
    assert_eq!(production["environment"], "production");
    assert_eq!(production["checks"], 1);
    assert_eq!(production["companies"], 1);
    // The command line runs on the system clock; the checks were counted on the test's.
    let days = production["daily"].as_array().unwrap();
    assert_eq!(days.len(), 400);
    let counted: Vec<&Value> = days.iter().filter(|d| d["checks"] != 0).collect();
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0]["date"], "2026-11-02");
    assert_eq!(counted[0]["enabled"], 1);
    let output = gatehouse(&url)
        .args(["usage", "--format", "json"])
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["flags"][0]["key"], "pro-only");
    let output = gatehouse(&url)
        .args(["stale", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["stale"].as_array().is_some());
    let output = gatehouse(&url).args(["usage", "nope"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope"));
}

// Two workers: the node process is awaited on one while the server answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_the_reflag_node_sdk_reports_are_counted() {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    assert!(
        sdk.join("node_modules/@reflag/node-sdk").exists(),
        "run `make node-tools` (npm ci in tests/sdk) first"
    );
    let Some((app, _clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    seed(&app).await;
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = app.apply(create).await.into_secret_key().unwrap();
    let output = std::process::Command::new("node")
        .arg(sdk.join("reflag-checks.mjs"))
        .arg("pro-only")
        .env("GATEHOUSE_URL", app.url(""))
        .env("SECRET_KEY", secret)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(output.stdout.trim_ascii()).unwrap();
    assert_eq!(summary["enabled"], 2);
    app.service.flush_usage().await.unwrap();
    let day = usage(&app.service, 1).await.environments[0].days[0].clone();
    assert_eq!(
        (day.enabled, day.disabled),
        (2, 1),
        "one reported check per company"
    );
    assert_eq!(day.companies, 2, "acme and gamma got it");
    assert_eq!(day.users, 2);
}

#[tokio::test]
async fn only_admins_change_the_staleness_thresholds_and_editors_archive_stale_flags() {
    use gatehouse::model::member::Role;
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    app.apply(common::new_flag("old")).await;
    app.add_member("viewer@example.com", Role::Viewer).await;
    app.add_member("pm@example.com", Role::Editor).await;
    app.add_member("admin@example.com", Role::Admin).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let editor = app.signed_in("pm@example.com").await;
    let admin = app.signed_in("admin@example.com").await;
    let thresholds = [("released_days", "7"), ("unchecked_days", "10")];
    for client in [&viewer, &editor] {
        let status = app
            .call(client, "/api/edit/stale_settings", &thresholds)
            .await
            .status();
        assert_eq!(status, 403);
    }
    let bad = [("released_days", "0"), ("unchecked_days", "ten")];
    let zero = [("released_days", "0"), ("unchecked_days", "0")];
    let refused = app.call(&admin, "/api/edit/stale_settings", &zero).await;
    assert_eq!(
        refused.status(),
        422,
        "0 days unchecked would make every flag stale"
    );
    let refused = app.call(&admin, "/api/edit/stale_settings", &bad).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("whole number"));
    assert_eq!(
        app.call(&admin, "/api/edit/stale_settings", &thresholds)
            .await
            .status(),
        200
    );
    let settings = app.service.stale_settings(&Actor::cli()).await.unwrap();
    assert_eq!((settings.released_days, settings.unchecked_days), (7, 10));

    clock.advance(10 * DAY);
    let stale = app.service.stale_flags(&Actor::cli()).await.unwrap();
    assert_eq!(stale.len(), 1, "unchecked for 10 days, the new threshold");
    let unconfirmed = [("flag", "old")];
    let refused = app.call(&editor, "/api/edit/archive_stale", &unconfirmed).await;
    assert_eq!(refused.status(), 422, "archiving needs the confirmation");
    assert_eq!(
        app.call(
            &viewer,
            "/api/edit/archive_stale",
            &[("flag", "old"), ("confirm", "on")]
        )
        .await
        .status(),
        403
    );
    let archived = app
        .call(
            &editor,
            "/api/edit/archive_stale",
            &[("flag", "old"), ("confirm", "on")],
        )
        .await;
    assert_eq!(archived.status(), 200);
    assert!(app.service.stale_flags(&Actor::cli()).await.unwrap().is_empty());
}
