//! Release stages as admins shape them (on SQLite and PostgreSQL), and the companies and users
//! pages with their "check access" tool, through the running server.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::AccessRules;
use gatehouse::runtime::Runtime;
use gatehouse::service::flags::{create_flag, set_access_rules, NewFlagInput};
use gatehouse::service::stages::{self, Direction};
use gatehouse::service::{Actor, ServiceError};
use gatehouse::store::Store;
use serde_json::{json, Value};

async fn names(store: &Store) -> Vec<String> {
    store
        .release_stages()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect()
}

async fn stage_id(store: &Store, name: &str) -> i64 {
    store
        .release_stages()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .id
}

async fn stage_actions(store: &Store) -> Vec<(String, String)> {
    let mut entries: Vec<_> = store
        .audit_entries(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.subject_type == "stage")
        .map(|e| (e.action, e.subject_key))
        .collect();
    entries.reverse();
    entries
}

async fn new_flag(store: &Store, runtime: &Runtime, key: &str, stage: i64) {
    let input = NewFlagInput {
        key: key.into(),
        name: key.into(),
        stage_id: Some(stage),
        ..Default::default()
    };
    create_flag(store, runtime, &Actor::cli(), input).await.unwrap();
}

store_test!(
    an_added_stage_comes_last_and_can_be_renamed_and_recoloured,
    |store: Store| async move {
        let actor = Actor::cli();
        let stage = stages::add_stage(&store, &actor, " Early access ", "#2563EB")
            .await
            .unwrap();
        assert_eq!(stage.name, "Early access");
        assert_eq!(stage.color, "#2563eb");
        assert_eq!(
            names(&store).await.last().map(String::as_str),
            Some("Early access")
        );
        stages::update_stage(&store, &actor, stage.id, "Preview", "#2563eb")
            .await
            .unwrap();
        stages::update_stage(&store, &actor, stage.id, "Preview", "#111111")
            .await
            .unwrap();
        // Saving unchanged values records nothing.
        stages::update_stage(&store, &actor, stage.id, "Preview", "#111111")
            .await
            .unwrap();
        let stored = store.release_stages().await.unwrap();
        let preview = stored.iter().find(|s| s.id == stage.id).unwrap();
        assert_eq!(
            (preview.name.as_str(), preview.color.as_str()),
            ("Preview", "#111111")
        );
        assert_eq!(
            stage_actions(&store).await,
            [
                ("stage.created".to_string(), "Early access".to_string()),
                ("stage.renamed".to_string(), "Preview".to_string()),
                ("stage.recoloured".to_string(), "Preview".to_string()),
            ]
        );
    }
);

store_test!(
    duplicate_names_and_bad_colours_are_refused_with_their_field,
    |store: Store| async move {
        let actor = Actor::cli();
        let field = |result: Result<(), ServiceError>| match result {
            Err(ServiceError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(
            field(
                stages::add_stage(&store, &actor, "beta", "#000000")
                    .await
                    .map(|_| ())
            ),
            "name"
        );
        assert_eq!(
            field(
                stages::add_stage(&store, &actor, "  ", "#000000")
                    .await
                    .map(|_| ())
            ),
            "name"
        );
        assert_eq!(
            field(
                stages::add_stage(&store, &actor, "Gamma", "red")
                    .await
                    .map(|_| ())
            ),
            "color"
        );
        let internal = stage_id(&store, "Internal").await;
        assert_eq!(
            field(stages::update_stage(&store, &actor, internal, "Beta", "#000000").await),
            "name"
        );
        assert_eq!(names(&store).await.len(), 4);
        assert!(stage_actions(&store).await.is_empty());
    }
);

store_test!(
    stages_move_up_and_down_and_stay_put_at_the_ends,
    |store: Store| async move {
        let actor = Actor::cli();
        let beta = stage_id(&store, "Beta").await;
        stages::move_stage(&store, &actor, beta, Direction::Up)
            .await
            .unwrap();
        assert_eq!(
            names(&store).await,
            ["In development", "Beta", "Internal", "General availability"]
        );
        stages::move_stage(&store, &actor, beta, Direction::Down)
            .await
            .unwrap();
        stages::move_stage(&store, &actor, beta, Direction::Down)
            .await
            .unwrap();
        stages::move_stage(&store, &actor, beta, Direction::Down)
            .await
            .unwrap();
        assert_eq!(
            names(&store).await,
            ["In development", "Internal", "General availability", "Beta"]
        );
        let orders: Vec<i64> = store
            .release_stages()
            .await
            .unwrap()
            .iter()
            .map(|s| s.sort_order)
            .collect();
        assert_eq!(orders, [0, 1, 2, 3]);
        // Three moves happened; the one at the end changed nothing and recorded nothing.
        let moves = stage_actions(&store).await;
        assert_eq!(moves.len(), 3);
        assert!(moves
            .iter()
            .all(|(action, key)| action == "stage.reordered" && key == "Beta"));
    }
);

store_test!(an_empty_stage_can_be_deleted, |store: Store| async move {
    let actor = Actor::cli();
    let internal = stage_id(&store, "Internal").await;
    stages::delete_stage(&store, &actor, internal, None)
        .await
        .unwrap();
    assert_eq!(
        names(&store).await,
        ["In development", "Beta", "General availability"]
    );
    let orders: Vec<i64> = store
        .release_stages()
        .await
        .unwrap()
        .iter()
        .map(|s| s.sort_order)
        .collect();
    assert_eq!(orders, [0, 1, 2]);
    assert_eq!(
        stage_actions(&store).await,
        [("stage.deleted".to_string(), "Internal".to_string())]
    );
});

store_test!(
    a_stage_with_flags_is_deleted_only_by_moving_them,
    |store: Store| async move {
        let runtime = Runtime::load(store.clone()).await.unwrap();
        let actor = Actor::cli();
        let beta = stage_id(&store, "Beta").await;
        let general = stage_id(&store, "General availability").await;
        new_flag(&store, &runtime, "checkout", beta).await;
        new_flag(&store, &runtime, "new-nav", beta).await;
        set_access_rules(
            &store,
            &runtime,
            &actor,
            "checkout",
            "production",
            AccessRules::Everyone,
            None,
        )
        .await
        .unwrap();
        match stages::delete_stage(&store, &actor, beta, None).await {
            Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "move_to"),
            other => panic!("deleting a stage with flags needs a target: {other:?}"),
        }
        match stages::delete_stage(&store, &actor, beta, Some(beta)).await {
            Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "move_to"),
            other => panic!("a stage cannot take its own flags: {other:?}"),
        }
        assert_eq!(names(&store).await.len(), 4);
        stages::delete_stage(&store, &actor, beta, Some(general))
            .await
            .unwrap();
        assert!(!names(&store).await.contains(&"Beta".to_string()));
        for key in ["checkout", "new-nav"] {
            assert_eq!(store.flag_by_key(key).await.unwrap().unwrap().stage_id, general);
        }
        // The moved flags keep their access rules.
        let production = store.environment_by_key("production").await.unwrap().unwrap();
        let checkout = store.flag_by_key("checkout").await.unwrap().unwrap();
        let rules = store
            .current_targeting(production.id)
            .await
            .unwrap()
            .into_iter()
            .find(|row| row.flag_id == checkout.id)
            .unwrap();
        assert_eq!(
            serde_json::from_str::<AccessRules>(&rules.json).unwrap(),
            AccessRules::Everyone
        );
        let audit = store.audit_entries(None, 100).await.unwrap();
        let deleted = audit.iter().find(|e| e.action == "stage.deleted").unwrap();
        assert_eq!(deleted.subject_key, "Beta");
        assert_eq!(
            deleted.after,
            Some(json!({ "movedFlags": ["checkout", "new-nav"], "movedTo": "General availability" }))
        );
        let moved: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "flag.stage_changed")
            .map(|e| e.subject_key.as_str())
            .collect();
        assert_eq!(moved.len(), 2);
    }
);

store_test!(the_last_stage_is_kept, |store: Store| async move {
    let actor = Actor::cli();
    for name in ["In development", "Internal", "Beta"] {
        let id = stage_id(&store, name).await;
        stages::delete_stage(&store, &actor, id, None).await.unwrap();
    }
    let last = stage_id(&store, "General availability").await;
    assert!(matches!(
        stages::delete_stage(&store, &actor, last, None).await,
        Err(ServiceError::Conflict(_))
    ));
    assert_eq!(names(&store).await, ["General availability"]);
});

/// A server with a flag on for the company `acme` only, and `acme` reported through the public
/// API with a plan.
async fn targeted_company() -> TestApp {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let actor = Actor::cli();
    for key in ["acme-only", "pro-plan"] {
        let input = NewFlagInput {
            key: key.into(),
            name: key.into(),
            ..Default::default()
        };
        create_flag(&app.store, &app.runtime, &actor, input)
            .await
            .unwrap();
    }
    let acme_only: AccessRules =
        serde_json::from_value(json!({ "mode": "some", "companies": ["acme"] })).unwrap();
    set_access_rules(
        &app.store,
        &app.runtime,
        &actor,
        "acme-only",
        "production",
        acme_only,
        None,
    )
    .await
    .unwrap();
    let pro_plan: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"] }
        ] }]
    }))
    .unwrap();
    set_access_rules(
        &app.store,
        &app.runtime,
        &actor,
        "pro-plan",
        "production",
        pro_plan,
        None,
    )
    .await
    .unwrap();
    let production = app.store.environment_by_key("production").await.unwrap().unwrap();
    let key = app.store.publishable_key(production.id).await.unwrap().unwrap();
    let response = app
        .client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme", "attributes": { "name": "Acme Inc", "plan": "free" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app
}

#[tokio::test]
async fn an_editor_is_refused_by_the_stage_settings() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("editor@example.com", Role::Editor).await;
    let editor = app.signed_in("editor@example.com").await;
    let beta = stage_id(&app.store, "Beta").await.to_string();
    let calls: [(&str, Vec<(&str, &str)>); 6] = [
        ("/api/admin/stages", vec![]),
        (
            "/api/admin/add_stage",
            vec![("name", "Gamma"), ("color", "#000000")],
        ),
        (
            "/api/admin/update_stage",
            vec![("id", &beta), ("name", "Gamma"), ("color", "#000000")],
        ),
        (
            "/api/admin/reorder_stage",
            vec![("id", &beta), ("direction", "up")],
        ),
        ("/api/admin/delete_stage", vec![("id", &beta), ("move_to", "")]),
        (
            "/api/admin/set_stage_default",
            default_form(&beta, "everyone", ""),
        ),
    ];
    for (path, form) in calls {
        let response = app.call(&editor, path, &form).await;
        assert_eq!(response.status(), 403, "{path} answered {}", response.status());
    }
    assert_eq!(names(&app.store).await.len(), 4);
    assert!(names(&app.store).await.contains(&"Beta".to_string()));
}

/// The stage-default form as the page posts it, for production.
fn default_form<'a>(stage: &'a str, mode: &'a str, companies: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("stage_id", stage),
        ("environment", "production"),
        ("form[mode]", mode),
        ("form[companies]", companies),
        ("form[users]", ""),
        ("form[segments]", ""),
        ("form[rules][0][rollout]", ""),
        ("form[rules][0][rollout_by]", "company"),
        ("form[conditions][0][rule]", "0"),
        ("form[conditions][0][kind]", "company"),
        ("form[conditions][0][field]", ""),
        ("form[conditions][0][operator]", "IS"),
        ("form[conditions][0][value]", ""),
    ]
}

#[tokio::test]
async fn an_admin_manages_stages_through_the_server_functions() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    let response = app
        .call(
            &admin,
            "/api/admin/add_stage",
            &[("name", "Gamma"), ("color", "#123abc")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .call(
            &admin,
            "/api/admin/add_stage",
            &[("name", "gamma"), ("color", "#123abc")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["field"], "name");
    let beta = stage_id(&app.store, "Beta").await.to_string();
    let response = app
        .call(
            &admin,
            "/api/admin/update_stage",
            &[("id", &beta), ("name", "Beta"), ("color", "blue")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["field"], format!("color:{beta}"), "the error names its row");
    let response = app
        .call(
            &admin,
            "/api/admin/set_stage_default",
            &default_form(&beta, "some", "acme"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let production = app.store.environment_by_key("production").await.unwrap().unwrap();
    let defaults = app.store.stage_defaults().await.unwrap();
    assert!(defaults
        .iter()
        .any(|(s, e, _)| s.to_string() == beta && *e == production.id));
    let response = app
        .call(
            &admin,
            "/api/admin/set_stage_default",
            &default_form(&beta, "noDefault", ""),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(app.store.stage_defaults().await.unwrap().is_empty());
    let data: Value = app
        .call(&admin, "/api/admin/stages", &[])
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<_> = data["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "In development",
            "Internal",
            "Beta",
            "General availability",
            "Gamma"
        ]
    );
}

#[tokio::test]
async fn a_viewer_reads_companies_and_users() {
    let app = targeted_company().await;
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let response = app
        .call(
            &viewer,
            "/api/read/companies",
            &[("env", "production"), ("search", "ACME"), ("page", "0")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], "acme");
    assert_eq!(list["items"][0]["name"], "Acme Inc");
    let list: Value = app
        .call(
            &viewer,
            "/api/read/companies",
            &[("env", "production"), ("search", "nobody"), ("page", "0")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
    let list: Value = app
        .call(
            &viewer,
            "/api/read/companies",
            &[("env", "staging"), ("search", ""), ("page", "0")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0, "companies are per environment");
    let response = app
        .call(
            &viewer,
            "/api/read/users",
            &[("env", "production"), ("search", ""), ("page", "0")],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn check_access_explains_each_flag_for_a_company() {
    let app = targeted_company().await;
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let check = |id: &'static str| {
        let (app, viewer) = (&app, &viewer);
        async move {
            let response = app
                .call(
                    viewer,
                    "/api/read/check_access",
                    &[("kind", "company"), ("env", "production"), ("id", id)],
                )
                .await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let flag = |result: &Value, key: &str| -> Value {
        result["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {result}"))
    };
    let acme = check("acme").await;
    let context: Vec<(String, String)> = serde_json::from_value(acme["context"].clone()).unwrap();
    assert!(
        context.contains(&("company.plan".into(), "free".into())),
        "{context:?}"
    );
    let acme_only = flag(&acme, "acme-only");
    assert_eq!(acme_only["enabled"], true);
    assert_eq!(acme_only["reason"], "Enabled: rule 1 matched");
    let why = acme_only["rules"][0].as_str().unwrap();
    assert!(why.contains("company.id is any of acme"), "{why}");
    let pro_plan = flag(&acme, "pro-plan");
    assert_eq!(pro_plan["enabled"], false);
    let why = pro_plan["rules"][0].as_str().unwrap();
    assert!(
        why.contains("company.plan is pro") && why.contains("\u{201c}free\u{201d}"),
        "{why}"
    );
    let other = check("globex").await;
    assert_eq!(flag(&other, "acme-only")["enabled"], false);
    assert_eq!(flag(&other, "pro-plan")["missing"], json!(["company.plan"]));
}

#[tokio::test]
async fn the_pages_render_on_the_server() {
    let app = targeted_company().await;
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    let page = |path: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let response = admin.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.unwrap()
        }
    };
    let stages = page("/settings/stages").await;
    assert!(stages.contains("General availability") && stages.contains("Move its flags to"));
    let companies = page("/companies").await;
    assert!(companies.contains("Acme Inc"), "the list shows acme");
    let users = page("/users?env=staging").await;
    assert!(users.contains("No users in this environment yet"));
    let acme = page("/companies/acme?env=production").await;
    assert!(acme.contains("Check access") && acme.contains("Enabled: rule 1 matched"));
}
