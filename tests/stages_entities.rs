//! Release stages as admins shape them (on SQLite and PostgreSQL), and the companies and users
//! pages with their "check access" tool, through the running server.

mod common;

use common::{set_access, stage_id, Fixture, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::AccessRules;
use gatehouse::service::{
    Actor, AuditFilter, AuditRecord, Change, Direction, NewFlag, Outcome, Service, ServiceError, StageRef,
};
use serde_json::{json, Value};

async fn names(service: &Service) -> Vec<String> {
    let stages = service.release_stages(&Actor::cli()).await.unwrap();
    stages.into_iter().map(|s| s.name).collect()
}

/// Every audit entry, newest first.
async fn audit(fx: &Fixture) -> Vec<AuditRecord> {
    let filter = AuditFilter::default();
    fx.service
        .audit_page(&Actor::cli(), &filter, 0, 500)
        .await
        .unwrap()
        .entries
}

async fn stage_actions(fx: &Fixture) -> Vec<(String, String)> {
    let mut entries: Vec<_> = audit(fx)
        .await
        .into_iter()
        .filter(|e| e.subject_type == "stage")
        .map(|e| (e.action, e.subject_key))
        .collect();
    entries.reverse();
    entries
}

/// Applies a change as the command line and returns what came of it.
async fn apply(fx: &Fixture, change: Change) -> Result<Outcome, ServiceError> {
    fx.service.apply(&Actor::cli(), change).await
}

fn add(name: &str, color: &str) -> Change {
    Change::AddStage {
        name: name.into(),
        color: color.into(),
    }
}

fn update(id: i64, name: &str, color: &str) -> Change {
    Change::UpdateStage {
        stage: StageRef::Id(id),
        name: name.into(),
        color: color.into(),
    }
}

fn reorder(id: i64, direction: Direction) -> Change {
    Change::ReorderStage { id, direction }
}

fn delete(id: i64, move_flags_to: Option<i64>) -> Change {
    Change::DeleteStage { id, move_flags_to }
}

store_test!(
    an_added_stage_comes_last_and_can_be_renamed_and_recoloured,
    |fx: Fixture| async move {
        let stage = match apply(&fx, add(" Early access ", "#2563EB")).await.unwrap() {
            Outcome::Stage(stage) => stage,
            other => panic!("expected a stage, got {other:?}"),
        };
        assert_eq!(stage.name, "Early access");
        assert_eq!(stage.color, "#2563eb");
        assert_eq!(
            names(&fx.service).await.last().map(String::as_str),
            Some("Early access")
        );
        apply(&fx, update(stage.id, "Preview", "#2563eb")).await.unwrap();
        apply(&fx, update(stage.id, "Preview", "#111111")).await.unwrap();
        // Saving unchanged values records nothing.
        apply(&fx, update(stage.id, "Preview", "#111111")).await.unwrap();
        let stored = fx.service.release_stages(&Actor::cli()).await.unwrap();
        let preview = stored.iter().find(|s| s.id == stage.id).unwrap();
        assert_eq!(
            (preview.name.as_str(), preview.color.as_str()),
            ("Preview", "#111111")
        );
        assert_eq!(
            stage_actions(&fx).await,
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
    |fx: Fixture| async move {
        let field = |result: Result<Outcome, ServiceError>| match result {
            Err(ServiceError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(field(apply(&fx, add("beta", "#000000")).await), "name");
        assert_eq!(field(apply(&fx, add("  ", "#000000")).await), "name");
        assert_eq!(field(apply(&fx, add("Gamma", "red")).await), "color");
        let internal = stage_id(&fx.service, "Internal").await;
        assert_eq!(
            field(apply(&fx, update(internal, "Beta", "#000000")).await),
            "name"
        );
        assert_eq!(names(&fx.service).await.len(), 4);
        assert!(stage_actions(&fx).await.is_empty());
    }
);

store_test!(
    stages_move_up_and_down_and_stay_put_at_the_ends,
    |fx: Fixture| async move {
        let beta = stage_id(&fx.service, "Beta").await;
        apply(&fx, reorder(beta, Direction::Up)).await.unwrap();
        assert_eq!(
            names(&fx.service).await,
            ["In development", "Beta", "Internal", "General availability"]
        );
        for _ in 0..3 {
            apply(&fx, reorder(beta, Direction::Down)).await.unwrap();
        }
        assert_eq!(
            names(&fx.service).await,
            ["In development", "Internal", "General availability", "Beta"]
        );
        let stages = fx.service.release_stages(&Actor::cli()).await.unwrap();
        let orders: Vec<i64> = stages.iter().map(|s| s.sort_order).collect();
        assert_eq!(orders, [0, 1, 2, 3]);
        // Three moves happened; the one at the end changed nothing and recorded nothing.
        let moves = stage_actions(&fx).await;
        assert_eq!(moves.len(), 3);
        assert!(moves
            .iter()
            .all(|(action, key)| action == "stage.reordered" && key == "Beta"));
    }
);

store_test!(an_empty_stage_can_be_deleted, |fx: Fixture| async move {
    let internal = stage_id(&fx.service, "Internal").await;
    apply(&fx, delete(internal, None)).await.unwrap();
    assert_eq!(
        names(&fx.service).await,
        ["In development", "Beta", "General availability"]
    );
    let stages = fx.service.release_stages(&Actor::cli()).await.unwrap();
    let orders: Vec<i64> = stages.iter().map(|s| s.sort_order).collect();
    assert_eq!(orders, [0, 1, 2]);
    assert_eq!(
        stage_actions(&fx).await,
        [("stage.deleted".to_string(), "Internal".to_string())]
    );
});

store_test!(
    a_stage_with_flags_is_deleted_only_by_moving_them,
    |fx: Fixture| async move {
        let beta = stage_id(&fx.service, "Beta").await;
        let general = stage_id(&fx.service, "General availability").await;
        for key in ["checkout", "new-nav"] {
            let new = NewFlag {
                key: key.into(),
                name: key.into(),
                stage: Some(StageRef::Id(beta)),
                ..Default::default()
            };
            fx.apply(Change::CreateFlag(new)).await;
        }
        fx.apply(set_access("checkout", "production", AccessRules::Everyone, None))
            .await;
        match apply(&fx, delete(beta, None)).await {
            Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "move_to"),
            other => panic!("deleting a stage with flags needs a target: {other:?}"),
        }
        match apply(&fx, delete(beta, Some(beta))).await {
            Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "move_to"),
            other => panic!("a stage cannot take its own flags: {other:?}"),
        }
        assert_eq!(names(&fx.service).await.len(), 4);
        apply(&fx, delete(beta, Some(general))).await.unwrap();
        assert!(!names(&fx.service).await.contains(&"Beta".to_string()));
        for key in ["checkout", "new-nav"] {
            let page = fx
                .service
                .flag_page(&Actor::cli(), key, "production")
                .await
                .unwrap();
            assert_eq!(page.flag.stage_id, general);
        }
        // The moved flags keep their access rules.
        let checkout = fx
            .service
            .flag_page(&Actor::cli(), "checkout", "production")
            .await
            .unwrap();
        assert_eq!(checkout.history[0].value, Ok(AccessRules::Everyone));
        let audit = audit(&fx).await;
        let deleted = audit.iter().find(|e| e.action == "stage.deleted").unwrap();
        assert_eq!(deleted.subject_key, "Beta");
        assert_eq!(
            deleted.after,
            Some(json!({ "movedFlags": ["checkout", "new-nav"], "movedTo": "General availability" }))
        );
        let moved = audit.iter().filter(|e| e.action == "flag.stage_changed").count();
        assert_eq!(moved, 2);
    }
);

store_test!(the_last_stage_is_kept, |fx: Fixture| async move {
    for name in ["In development", "Internal", "Beta"] {
        let id = stage_id(&fx.service, name).await;
        apply(&fx, delete(id, None)).await.unwrap();
    }
    let last = stage_id(&fx.service, "General availability").await;
    assert!(matches!(
        apply(&fx, delete(last, None)).await,
        Err(ServiceError::Conflict(_))
    ));
    assert_eq!(names(&fx.service).await, ["General availability"]);
});

/// A server with a flag on for the company `acme` only, and `acme` reported through the public
/// API with a plan.
async fn targeted_company() -> TestApp {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for key in ["acme-only", "pro-plan"] {
        app.apply(common::new_flag(key)).await;
    }
    let acme_only: AccessRules =
        serde_json::from_value(json!({ "mode": "some", "companies": ["acme"] })).unwrap();
    app.apply(set_access("acme-only", "production", acme_only, None))
        .await;
    let pro_plan: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"] }
        ] }]
    }))
    .unwrap();
    app.apply(set_access("pro-plan", "production", pro_plan, None))
        .await;
    let key = app.publishable_key("production").await;
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
    let beta = stage_id(&app.service, "Beta").await.to_string();
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
    assert_eq!(names(&app.service).await.len(), 4);
    assert!(names(&app.service).await.contains(&"Beta".to_string()));
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
    let beta = stage_id(&app.service, "Beta").await.to_string();
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
    let defaults = app.service.stages_page(&Actor::cli()).await.unwrap().defaults;
    let production = app.environment("production").await;
    assert!(defaults
        .iter()
        .any(|d| d.stage_id.to_string() == beta && d.environment_id == production.id));
    let response = app
        .call(
            &admin,
            "/api/admin/set_stage_default",
            &default_form(&beta, "noDefault", ""),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(app
        .service
        .stages_page(&Actor::cli())
        .await
        .unwrap()
        .defaults
        .is_empty());
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

/// Many flags: the check decides all of them, explains one page, filters by key or name and by
/// result, and says long value lists in a few words.
#[tokio::test]
async fn check_access_pages_and_filters_many_flags() {
    let app = targeted_company().await;
    let many: Vec<String> = (0..60).map(|i| format!("bulk-{i:02}")).collect();
    let long_list: Vec<String> = (0..40).map(|i| format!("c-{i}")).chain(["acme".into()]).collect();
    for (i, key) in many.iter().enumerate() {
        app.apply(common::new_flag(key)).await;
        if i % 3 == 0 {
            let rules: AccessRules =
                serde_json::from_value(json!({ "mode": "some", "companies": long_list })).unwrap();
            app.apply(set_access(key, "production", rules, None)).await;
        }
    }
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let check = |fields: Vec<(&'static str, &'static str)>| {
        let (app, viewer) = (&app, &viewer);
        async move {
            let mut all = vec![("kind", "company"), ("env", "production"), ("id", "acme")];
            all.extend(fields);
            let response = app.call(viewer, "/api/read/check_access", &all).await;
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let keys = |result: &Value| -> Vec<String> {
        let flags = result["flags"].as_array().unwrap();
        flags
            .iter()
            .map(|f| f["key"].as_str().unwrap().to_string())
            .collect()
    };
    // 62 flags: acme-only and every third bulk flag (20) are on for acme.
    let (status, first) = check(vec![]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["total"].clone(), first["enabled"].clone()),
        (json!(62), json!(21))
    );
    assert_eq!(first["matching"], 62);
    assert_eq!(keys(&first).len(), 50, "one page of 50");
    assert_eq!(keys(&first)[0], "acme-only");
    let (_, second) = check(vec![("page", "1")]).await;
    let mut rest: Vec<String> = (49..60).map(|i| format!("bulk-{i:02}")).collect();
    rest.push("pro-plan".into());
    assert_eq!(keys(&second), rest);
    assert_eq!(second["page"], 1);
    let (_, enabled) = check(vec![("result", "enabled"), ("search", "BULK")]).await;
    assert_eq!(enabled["matching"], 20, "{enabled}");
    assert!(keys(&enabled).iter().all(|k| k.starts_with("bulk-")));
    let why = enabled["flags"][0]["rules"][0].as_str().unwrap();
    assert!(
        why.contains("company.id is any of c-0, c-1, c-2, c-3, c-4 and 36 more")
            && why.contains("\u{201c}acme\u{201d}"),
        "{why}"
    );
    let (_, disabled) = check(vec![("result", "disabled")]).await;
    assert_eq!(disabled["matching"], 41);
    assert!(!keys(&disabled).contains(&"acme-only".to_string()));
    let (_, none) = check(vec![("search", "nothing-like-this")]).await;
    assert_eq!(
        (none["matching"].clone(), none["flags"].clone()),
        (json!(0), json!([]))
    );
    let (status, refused) = check(vec![("result", "sometimes")]).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["field"], "result");
    let page = viewer
        .get(app.url("/companies/acme?env=production&q=bulk&result=enabled&page=0"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("21 of 62 flags enabled"),
        "the summary counts every flag"
    );
    assert!(page.contains("Page 1 of 1 · 20 flags"));
    assert!(page.contains("value=\"bulk\"") && page.contains("<option value=\"enabled\" selected"));
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
