//! The management API (`/api/v1`) with access tokens: every route refuses a missing, unknown,
//! revoked or expired token; a viewer token reads only; an editor cannot manage tokens; a
//! personal token acts with its member's role as it is now; writes go through the pipeline (the
//! audit log names the token, the evaluation API serves the change); `If-Match` and
//! `Idempotency-Key` behave as the document says; errors are problem details.

mod common;

use common::{gatehouse, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::service::{Actor, Change, Clock, NewTokenRequest, Outcome};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// 2026-11-02 10:00 UTC.
const START: i64 = 1_793_613_600_000;
const DAY: i64 = 86_400_000;

/// Sends `method path` with `token` and an optional JSON body; the status and the body (JSON,
/// or null when empty).
async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path} answered {status} with non-JSON: {text}"))
    };
    (status, headers, body)
}

/// Asserts a problem-details answer of `status` and `kind`.
fn assert_problem(answer: &(StatusCode, reqwest::header::HeaderMap, Value), status: StatusCode, kind: &str) {
    let (got, headers, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(
        headers[reqwest::header::CONTENT_TYPE],
        "application/problem+json",
        "{body}"
    );
    assert_eq!(body["type"], format!("urn:gatehouse:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

#[tokio::test]
async fn tokens_are_required_and_roles_decide_what_they_may_do() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let viewer = app.service_token("dashboard", Role::Viewer, None).await;
    let editor = app.service_token("ci", Role::Editor, None).await;
    let admin = app.service_token("ops", Role::Admin, None).await;
    assert!(viewer.starts_with("gth_svc_") && viewer.len() > 40);

    // No token, a made-up one, a session cookie's worth of nothing: refused on every route.
    for path in [
        "/api/v1/flags",
        "/api/v1/environments",
        "/api/v1/stages",
        "/api/v1/audit",
        "/api/v1/tokens",
    ] {
        let answer = call(&app, None, Method::GET, path, None).await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(answer.1[reqwest::header::WWW_AUTHENTICATE], "Bearer");
        let made_up = call(
            &app,
            Some("gth_svc_notarealtoken0000000000000000000000"),
            Method::GET,
            path,
            None,
        )
        .await;
        assert_problem(&made_up, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let secret_key = call(&app, Some("sec_prod_abc"), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&secret_key, StatusCode::UNAUTHORIZED, "unauthorized");

    // A viewer reads, and may not write.
    let (status, _, environments) =
        call(&app, Some(&viewer), Method::GET, "/api/v1/environments", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(environments["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "production"));
    let create = json!({ "key": "new-checkout", "name": "New checkout" });
    let refused = call(
        &app,
        Some(&viewer),
        Method::POST,
        "/api/v1/flags",
        Some(create.clone()),
    )
    .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        call(&app, Some(&viewer), Method::GET, "/api/v1/flags", None)
            .await
            .2["total"],
        0
    );

    // An editor creates and changes flags, and may not see or revoke tokens.
    let (status, headers, flag) =
        call(&app, Some(&editor), Method::POST, "/api/v1/flags", Some(create)).await;
    assert_eq!(status, StatusCode::CREATED, "{flag}");
    assert_eq!(headers[reqwest::header::LOCATION], "/api/v1/flags/new-checkout");
    assert_eq!(flag["key"], "new-checkout");
    assert_eq!(flag["type"], "temporary");
    assert_eq!(flag["access"].as_array().unwrap().len(), 3, "{flag}");
    assert_problem(
        &call(&app, Some(&editor), Method::GET, "/api/v1/tokens", None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let viewer_prefix: String = viewer.chars().take(16).collect();
    assert_problem(
        &call(
            &app,
            Some(&editor),
            Method::DELETE,
            &format!("/api/v1/tokens/{viewer_prefix}"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let (_, _, listed) = call(
        &app,
        Some(&viewer),
        Method::GET,
        "/api/v1/flags?q=checkout&limit=10",
        None,
    )
    .await;
    assert_eq!(listed["total"], 1);
    assert_eq!(
        listed["items"][0]["stage"]["name"]
            .as_str()
            .map(|s| !s.is_empty()),
        Some(true)
    );

    // The admin lists every token (never the token itself) and revokes the viewer's: refused at once.
    let (status, _, tokens) = call(&app, Some(&admin), Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    let items = tokens["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        !tokens.to_string().contains(&viewer),
        "a list never shows a token"
    );
    let (status, ..) = call(
        &app,
        Some(&admin),
        Method::DELETE,
        &format!("/api/v1/tokens/{viewer_prefix}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = call(&app, Some(&viewer), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(revoked.2["detail"].as_str().unwrap().contains("revoked"));

    // Unknown routes and bad parameters are problems too.
    assert_problem(
        &call(&app, Some(&admin), Method::GET, "/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_problem(
        &call(&app, Some(&admin), Method::GET, "/api/v1/flags?limit=0", None).await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    assert_problem(
        &call(
            &app,
            Some(&admin),
            Method::POST,
            "/api/v1/flags",
            Some(json!({ "name": 3 })),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    let invalid = call(
        &app,
        Some(&admin),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "no spaces" })),
    )
    .await;
    assert_problem(&invalid, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(invalid.2["field"], "key");
    assert_problem(
        &call(
            &app,
            Some(&admin),
            Method::GET,
            "/api/v1/flags/no-such-flag",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[tokio::test]
async fn access_changes_are_versioned_served_and_audited_as_the_token() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let ci = app.service_token("ci", Role::Editor, None).await;
    call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "export", "type": "permanent" })),
    )
    .await;
    let path = "/api/v1/flags/export/access/production";
    let (status, headers, access) = call(&app, Some(&ci), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    // A new flag starts with No one, stored as version 1.
    assert_eq!(
        access,
        json!({ "environment": "production", "rules": { "mode": "noOne" }, "version": 1 })
    );
    assert_eq!(headers[reqwest::header::ETAG], "\"1\"");

    let acme = json!({ "mode": "some", "companies": ["acme"] });
    let put = |rules: Value, version: &str| {
        app.client
            .put(app.url(path))
            .bearer_auth(&ci)
            .header(reqwest::header::IF_MATCH, version.to_string())
            .json(&rules)
            .send()
    };
    let saved = put(acme.clone(), "\"1\"").await.unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(saved.headers()[reqwest::header::ETAG], "\"2\"");
    let stale = put(json!({ "mode": "everyone" }), "\"1\"").await.unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let problem: Value = stale.json().await.unwrap();
    assert_eq!(problem["type"], "urn:gatehouse:problem:version-mismatch");
    let bad_rules = put(json!({ "mode": "sometimes" }), "\"2\"").await.unwrap();
    assert_eq!(bad_rules.status(), StatusCode::BAD_REQUEST);

    // The evaluation API serves the change; the audit log names the token.
    let evaluated = app.evaluated("production", "context.company.id=acme").await;
    assert_eq!(evaluated["features"]["export"]["isEnabled"], true);
    let (_, _, audit) = call(&app, Some(&ci), Method::GET, "/api/v1/audit?subject=export", None).await;
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "flag.access_rules_changed" && e["actor"] == "service token ci"),
        "{audit}"
    );

    // Name, description and type change; archive and restore.
    let (status, _, updated) = call(
        &app,
        Some(&ci),
        Method::PATCH,
        "/api/v1/flags/export",
        Some(json!({ "name": "Export v2", "type": "temporary" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["name"].as_str(), updated["type"].as_str()),
        (Some("Export v2"), Some("temporary"))
    );
    let unknown_owner = call(
        &app,
        Some(&ci),
        Method::PATCH,
        "/api/v1/flags/export",
        Some(json!({ "ownerId": 999_999 })),
    )
    .await;
    assert_problem(&unknown_owner, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(unknown_owner.2["field"], "owner_id");
    let (_, _, archived) = call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags/export/archive",
        None,
    )
    .await;
    assert_eq!(archived["archived"], true);
    let (_, _, restored) = call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags/export/restore",
        None,
    )
    .await;
    assert_eq!(restored["archived"], false);
}

#[tokio::test]
async fn an_idempotency_key_creates_once_and_is_not_reused_for_another_request() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let ci = app.service_token("ci", Role::Editor, None).await;
    let create = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/api/v1/flags"))
            .bearer_auth(&ci)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = create(json!({ "key": "pricing" }), "k-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let again = create(json!({ "key": "pricing" }), "k-1").await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "a retry answers as the first time"
    );
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["key"], "pricing");
    let other = create(json!({ "key": "billing" }), "k-1").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Without a key, the same creation is refused: the flag exists.
    let plain = call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "pricing" })),
    )
    .await;
    assert_problem(&plain, StatusCode::CONFLICT, "conflict");
    let (_, _, listed) = call(&app, Some(&ci), Method::GET, "/api/v1/flags", None).await;
    assert_eq!(listed["total"], 1);
    let (_, _, audit) = call(
        &app,
        Some(&ci),
        Method::GET,
        "/api/v1/audit?subject=pricing",
        None,
    )
    .await;
    let created = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "flag.created")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn expired_tokens_and_changed_roles_hold_at_once() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    let short = app.service_token("short", Role::Viewer, Some(1)).await;
    assert_eq!(
        call(&app, Some(&short), Method::GET, "/api/v1/flags", None)
            .await
            .0,
        StatusCode::OK
    );
    clock.advance(DAY);
    let expired = call(&app, Some(&short), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&expired, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(expired.2["detail"].as_str().unwrap().contains("expired"));

    // A personal token acts with its member's role as it is now, and goes with the member.
    let member = app.add_member("eve@example.com", Role::Editor).await;
    let eve = Actor::member(&member);
    let request = NewTokenRequest {
        name: "laptop".into(),
        service_role: None,
        expires_in_days: None,
    };
    let personal = match app
        .service
        .apply(&eve, Change::CreateToken(request))
        .await
        .unwrap()
    {
        Outcome::Token(created) => created.token,
        other => panic!("{other:?}"),
    };
    assert!(personal.starts_with("gth_pat_"));
    let flag = json!({ "key": "eve-flag" });
    let (status, ..) = call(&app, Some(&personal), Method::POST, "/api/v1/flags", Some(flag)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, own) = call(&app, Some(&personal), Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(
        own["items"].as_array().unwrap().len(),
        1,
        "a member sees only their own tokens"
    );
    assert_eq!(own["items"][0]["memberEmail"], "eve@example.com");
    app.apply(Change::ChangeRole {
        member_id: member.id,
        role: Role::Viewer,
    })
    .await;
    let now_viewer = call(
        &app,
        Some(&personal),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "eve-two" })),
    )
    .await;
    assert_problem(&now_viewer, StatusCode::FORBIDDEN, "forbidden");
    app.apply(Change::RemoveMember { member_id: member.id }).await;
    let gone = call(&app, Some(&personal), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&gone, StatusCode::UNAUTHORIZED, "unauthorized");
    // An admin revokes a member's personal token: refused at once, and its owner sees it revoked.
    let frank = app.add_member("frank@example.com", Role::Editor).await;
    let laptop = match app
        .service
        .apply(
            &Actor::member(&frank),
            Change::CreateToken(NewTokenRequest {
                name: "laptop".into(),
                service_role: None,
                expires_in_days: None,
            }),
        )
        .await
        .unwrap()
    {
        Outcome::Token(created) => created.token,
        other => panic!("{other:?}"),
    };
    let admin = app.service_token("ops", Role::Admin, None).await;
    let prefix: String = laptop.chars().take(16).collect();
    let (status, ..) = call(
        &app,
        Some(&admin),
        Method::DELETE,
        &format!("/api/v1/tokens/{prefix}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = call(&app, Some(&laptop), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    let listed = app.service.tokens(&Actor::member(&frank)).await.unwrap();
    assert!(listed.iter().all(|t| t.revoked_at.is_some()), "{listed:?}");
    // Only a member has personal tokens.
    let refused = app
        .service
        .apply(
            &Actor::system("x"),
            Change::CreateToken(NewTokenRequest {
                name: "mine".into(),
                service_role: None,
                expires_in_days: None,
            }),
        )
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_token_of_one_installation_is_unknown_to_another() {
    let (Some(one), Some(two)) = (
        TestApp::spawn(Backend::Sqlite).await,
        TestApp::spawn(Backend::Sqlite).await,
    ) else {
        return;
    };
    let token = one.service_token("ci", Role::Admin, None).await;
    assert_eq!(
        call(&one, Some(&token), Method::GET, "/api/v1/flags", None)
            .await
            .0,
        StatusCode::OK
    );
    let elsewhere = call(&two, Some(&token), Method::GET, "/api/v1/flags", None).await;
    assert_problem(&elsewhere, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn revocation_holds_at_once_on_every_replica() {
    let Some(db) = common::TestDb::new(Backend::Postgres).await else {
        return;
    };
    let clock = Clock::system();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut settings = gatehouse::startup::ServerSettings::local(db.url.clone(), "127.0.0.1:0");
        settings.clock = clock.clone();
        let app = gatehouse::startup::Application::build(settings).await.unwrap();
        let url = format!("http://{}", app.local_addr());
        let service = app.state().service.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        replicas.push((url, service));
    }
    let request = NewTokenRequest {
        name: "ci".into(),
        service_role: Some(Role::Editor),
        expires_in_days: None,
    };
    let Outcome::Token(created) = replicas[0]
        .1
        .apply(&Actor::cli(), Change::CreateToken(request))
        .await
        .unwrap()
    else {
        panic!("no token");
    };
    let client = common::client();
    let status = |url: String| {
        let client = client.clone();
        let token = created.token.clone();
        async move {
            client
                .get(format!("{url}/api/v1/flags"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(replicas[1].0.clone()).await, StatusCode::OK);
    let revoke = Change::RevokeToken {
        prefix: created.prefix.clone(),
    };
    replicas[0].1.apply(&Actor::cli(), revoke).await.unwrap();
    assert_eq!(status(replicas[1].0.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(replicas[0].0.clone()).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_command_line_creates_lists_and_revokes_service_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
    let run = |args: &[&str]| {
        let output = gatehouse(&url).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&["migrate"]);
    let created = run(&[
        "tokens",
        "create",
        "--name",
        "ci",
        "--role",
        "editor",
        "--expires-in",
        "30",
    ]);
    let token = created.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("gth_svc_"), "{created}");
    let listed = run(&["tokens", "list"]);
    let prefix: String = token.chars().take(16).collect();
    assert!(
        listed.contains(&format!("{prefix}…\tservice\tci\teditor")),
        "{listed}"
    );
    assert!(listed.contains("active") && !listed.contains(&token), "{listed}");
    run(&["tokens", "revoke", &prefix]);
    assert!(run(&["tokens", "list"]).contains("revoked"));
    let output = gatehouse(&url)
        .args(["tokens", "create", "--name", "x", "--role", "owner"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test]
async fn a_stage_move_is_previewed_then_applied_and_companies_are_explained() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let ci = app.service_token("ci", Role::Editor, None).await;
    call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "beta-feature" })),
    )
    .await;
    let (_, _, stages) = call(&app, Some(&ci), Method::GET, "/api/v1/stages", None).await;
    let beta = stages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Beta")
        .expect("a Beta stage")["id"]
        .as_i64()
        .unwrap();
    app.apply(Change::SetStageDefault {
        stage: gatehouse::service::StageRef::Id(beta),
        environment: "staging".into(),
        rules: Some(gatehouse::model::AccessRules::Everyone),
    })
    .await;
    let path = "/api/v1/flags/beta-feature/stage";
    let (status, _, preview) = call(
        &app,
        Some(&ci),
        Method::POST,
        path,
        Some(json!({ "stageId": beta, "dryRun": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["applied"], false);
    assert_eq!(
        preview["changes"],
        json!([{ "environment": "staging", "from": { "mode": "noOne" }, "to": { "mode": "everyone" } }])
    );
    assert_ne!(
        preview["flag"]["stage"]["name"], "Beta",
        "a preview changes nothing"
    );
    let (_, _, moved) = call(
        &app,
        Some(&ci),
        Method::POST,
        path,
        Some(json!({ "stageId": beta })),
    )
    .await;
    assert_eq!(moved["applied"], true);
    assert_eq!(moved["flag"]["stage"]["name"], "Beta");
    let missing = call(
        &app,
        Some(&ci),
        Method::POST,
        path,
        Some(json!({ "stageId": 999_999 })),
    )
    .await;
    assert_problem(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    // A company an application reported is found and its access explained.
    let key = app.publishable_key("staging").await;
    let reported = app
        .client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme", "attributes": { "name": "Acme", "plan": "pro" } }))
        .send()
        .await
        .unwrap();
    assert!(reported.status().is_success());
    let (_, _, found) = call(
        &app,
        Some(&ci),
        Method::GET,
        "/api/v1/companies?q=acm&environment=staging",
        None,
    )
    .await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["attributes"]["plan"], "pro");
    let (status, _, check) = call(
        &app,
        Some(&ci),
        Method::GET,
        "/api/v1/companies/acme/access?environment=staging",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    let flag = check["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "beta-feature")
        .unwrap();
    assert_eq!(flag["enabled"], true, "{check}");
    let (status, _, segments) = call(&app, Some(&ci), Method::GET, "/api/v1/segments", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(segments["items"].is_array());
}

#[tokio::test]
async fn remote_config_is_read_and_replaced_with_if_match() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let ci = app.service_token("ci", Role::Editor, None).await;
    call(
        &app,
        Some(&ci),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "limits" })),
    )
    .await;
    let path = "/api/v1/flags/limits/config/production";
    let (status, headers, config) = call(&app, Some(&ci), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["variants"], json!([]));
    let version = headers[reqwest::header::ETAG].to_str().unwrap().to_string();
    let variants = json!({ "variants": [
        { "key": "pro", "payload": { "seats": 50 }, "companies": ["acme"] },
        { "key": "free", "payload": { "seats": 3 }, "isDefault": true }
    ] });
    let put = |etag: String| {
        app.client
            .put(app.url(path))
            .bearer_auth(&ci)
            .header(reqwest::header::IF_MATCH, etag)
            .json(&variants)
            .send()
    };
    let saved = put(version.clone()).await.unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["variants"][0]["payload"]["seats"], 50);
    assert_eq!(
        put(version).await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    let unknown = call(
        &app,
        Some(&ci),
        Method::GET,
        "/api/v1/flags/limits/config/nowhere",
        None,
    )
    .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    let bad = call(
        &app,
        Some(&ci),
        Method::PUT,
        path,
        Some(json!({ "variants": [{ "key": "" }] })),
    )
    .await;
    assert!(
        bad.0 == StatusCode::UNPROCESSABLE_ENTITY || bad.0 == StatusCode::BAD_REQUEST,
        "{:?}",
        bad
    );
}

#[tokio::test]
async fn grants_imports_and_user_checks_follow_the_tokens_role() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let viewer = app.service_token("dashboard", Role::Viewer, None).await;
    let editor = app.service_token("ci", Role::Editor, None).await;
    app.apply(common::new_flag("checkout")).await;
    let grant = "/api/v1/flags/checkout/access/production/grant";

    // A viewer reads the configuration and explains a user's flags, and changes nothing.
    let exported = call(&app, Some(&viewer), Method::GET, "/api/v1/export", None).await;
    assert_eq!(exported.0, StatusCode::OK);
    assert_eq!(exported.2["format"], "gatehouse/1");
    let answer = call(
        &app,
        Some(&viewer),
        Method::POST,
        grant,
        Some(json!({ "user": "u-1" })),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    let mut document = exported.2.clone();
    document["flags"][0]["name"] = json!("Checkout v2");
    let dry = call(
        &app,
        Some(&viewer),
        Method::POST,
        "/api/v1/import?dryRun=true",
        Some(document.clone()),
    )
    .await;
    assert_eq!(
        (dry.0, dry.2["applied"].clone()),
        (StatusCode::OK, json!(false)),
        "{}",
        dry.2
    );
    assert_eq!(dry.2["changes"].as_array().unwrap().len(), 1, "{}", dry.2);
    let answer = call(
        &app,
        Some(&viewer),
        Method::POST,
        "/api/v1/import",
        Some(document.clone()),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");

    let imported = call(
        &app,
        Some(&editor),
        Method::POST,
        "/api/v1/import",
        Some(document),
    )
    .await;
    assert_eq!(
        (imported.0, imported.2["applied"].clone()),
        (StatusCode::OK, json!(true))
    );
    let broken =
        json!({ "format": "gatehouse/1", "flags": [{ "key": "x", "name": "x", "stage": "Nowhere" }] });
    let answer = call(&app, Some(&editor), Method::POST, "/api/v1/import", Some(broken)).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        answer.2["problems"][0].as_str().unwrap().contains("Nowhere"),
        "{}",
        answer.2
    );

    // After an import (which rewrites what it names), an editor grants one user; a grantee is one thing.
    let answer = call(
        &app,
        Some(&editor),
        Method::POST,
        grant,
        Some(json!({ "user": "u-1" })),
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.2);
    assert_eq!(answer.2["rules"]["users"], json!(["u-1"]), "{}", answer.2);
    let two = json!({ "user": "u-1", "company": "acme" });
    let answer = call(&app, Some(&editor), Method::POST, grant, Some(two)).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let users = call(&app, Some(&viewer), Method::GET, "/api/v1/users?q=u-", None).await;
    assert_eq!(users.0, StatusCode::OK, "{}", users.2);
    let check = call(&app, Some(&viewer), Method::GET, "/api/v1/users/u-1/access", None).await;
    assert_eq!(check.0, StatusCode::OK, "{}", check.2);
    assert_eq!(check.2["user"], "u-1");
    let checkout = check.2["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "checkout")
        .unwrap();
    assert_eq!(checkout["enabled"], true, "{check:?}");
}

/// One call of an operation of the document, with what would make it succeed for an admin.
struct Op {
    id: String,
    method: Method,
    path: String,
    body: Option<Value>,
    if_match: Option<String>,
}

async fn run(app: &TestApp, token: Option<&str>, op: &Op) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.request(op.method.clone(), app.url(&op.path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &op.body {
        request = request.json(body);
    }
    if let Some(version) = &op.if_match {
        request = request.header(reqwest::header::IF_MATCH, version);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn every_route_refuses_bad_tokens_and_a_viewer_changes_nothing() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    let admin = app.service_token("ops", Role::Admin, None).await;
    let editor = app.service_token("ci", Role::Editor, None).await;
    let viewer = app.service_token("dashboard", Role::Viewer, None).await;
    let spare = app.service_token("spare", Role::Viewer, None).await;
    let revoked = app.service_token("old", Role::Admin, None).await;
    let expiring = app.service_token("short", Role::Admin, Some(1)).await;
    let prefix = |token: &str| token.chars().take(16).collect::<String>();
    let (status, ..) = call(
        &app,
        Some(&admin),
        Method::DELETE,
        &format!("/api/v1/tokens/{}", prefix(&revoked)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    clock.advance(2 * DAY);

    // What the calls act on: a flag, a company an application reported, a segment, a stage.
    let (status, ..) = call(
        &app,
        Some(&admin),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "checkout" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = app.publishable_key("production").await;
    let reported = app
        .client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme", "attributes": { "name": "Acme" } }))
        .send()
        .await
        .unwrap();
    assert!(reported.status().is_success());
    let stages = call(&app, Some(&admin), Method::GET, "/api/v1/stages", None)
        .await
        .2;
    let beta = stages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Beta")
        .unwrap()["id"]
        .clone();
    let document = call(&app, Some(&admin), Method::GET, "/api/v1/export", None)
        .await
        .2;
    let segment = json!({ "conditions": [{ "kind": "companyList", "companies": ["acme"] }] });

    // Every operation of the document, in an order an admin can run them all in.
    let table: Vec<(&str, Option<Value>)> = vec![
        ("listFlags", None),
        ("createFlag", Some(json!({ "key": "another" }))),
        ("getFlag", None),
        (
            "updateFlag",
            Some(json!({ "name": "Checkout", "description": "The new checkout" })),
        ),
        ("getAccess", None),
        (
            "putAccess",
            Some(json!({ "mode": "some", "companies": ["acme"] })),
        ),
        ("grantAccess", Some(json!({ "user": "u-1" }))),
        ("revokeAccess", Some(json!({ "user": "u-1" }))),
        ("getConfig", None),
        (
            "putConfig",
            Some(json!({ "variants": [{ "key": "on", "payload": { "x": 1 }, "isDefault": true }] })),
        ),
        ("moveStage", Some(json!({ "stageId": beta }))),
        ("archiveFlag", None),
        ("restoreFlag", None),
        ("exportConfiguration", None),
        ("importConfiguration", Some(document)),
        ("putSegment", Some(segment)),
        ("listSegments", None),
        ("listCompanies", None),
        ("checkCompanyAccess", None),
        ("listUsers", None),
        ("checkUserAccess", None),
        ("listEnvironments", None),
        ("listStages", None),
        ("addStage", Some(json!({ "name": "Canary", "color": "#0ea5e9" }))),
        ("updateStage", Some(json!({ "name": "Private beta" }))),
        ("listAudit", None),
        ("listTokens", None),
        ("revokeToken", None),
    ];
    let spec: Value = serde_json::from_str(
        &app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap().to_string();
            documented.push((id, method.to_uppercase(), path.clone()));
        }
    }
    let mut named: Vec<&str> = table.iter().map(|(id, _)| *id).collect();
    let mut in_document: Vec<&str> = documented.iter().map(|(id, ..)| id.as_str()).collect();
    named.sort_unstable();
    in_document.sort_unstable();
    assert_eq!(
        named, in_document,
        "this test calls every operation of the document"
    );

    let ops: Vec<Op> = table
        .into_iter()
        .map(|(id, body)| {
            let (_, method, path) = documented.iter().find(|(d, ..)| d == id).unwrap();
            let sample = if path.starts_with("/api/v1/segments") {
                "vip"
            } else {
                "checkout"
            };
            let stage = if path.starts_with("/api/v1/stages/") {
                beta.to_string()
            } else {
                "acme".into()
            };
            let path = path
                .replace("{key}", sample)
                .replace("{environment}", "production")
                .replace("{id}", &stage)
                .replace("{prefix}", &prefix(&spare));
            let if_match = matches!(id, "putAccess" | "putConfig").then(String::new);
            Op {
                id: id.to_string(),
                method: Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                body,
                if_match,
            }
        })
        .collect();
    // The version a versioned write names: the current one, read just before.
    async fn current_version(app: &TestApp, token: &str, op: &Op) -> Option<String> {
        op.if_match.as_ref()?;
        let (status, headers, _) = call(app, Some(token), Method::GET, &op.path, None).await;
        assert_eq!(status, StatusCode::OK);
        Some(headers[reqwest::header::ETAG].to_str().unwrap().to_string())
    }

    // No token, a made-up, a revoked or an expired one: 401 on every operation.
    for op in &ops {
        for token in [
            None,
            Some("gth_svc_notarealtoken0000000000000000000000"),
            Some(revoked.as_str()),
            Some(expiring.as_str()),
        ] {
            let answer = run(&app, token, op).await;
            assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }

    // A viewer reads everything but tokens and changes nothing: every write is 403.
    let before = call(&app, Some(&admin), Method::GET, "/api/v1/export", None)
        .await
        .2;
    let audited = call(&app, Some(&admin), Method::GET, "/api/v1/audit", None)
        .await
        .2["total"]
        .clone();
    for op in &ops {
        let op = Op {
            if_match: current_version(&app, &admin, op).await,
            ..Op {
                id: op.id.clone(),
                method: op.method.clone(),
                path: op.path.clone(),
                body: op.body.clone(),
                if_match: None,
            }
        };
        let answer = run(&app, Some(&viewer), &op).await;
        if op.method == Method::GET && op.id != "listTokens" {
            assert_eq!(answer.0, StatusCode::OK, "{} as a viewer: {}", op.id, answer.2);
        } else if op.id == "revokeToken" {
            // Another's token is not even shown to a non-admin.
            assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
        } else {
            assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
        }
    }
    assert_eq!(
        call(&app, Some(&admin), Method::GET, "/api/v1/export", None)
            .await
            .2,
        before
    );
    assert_eq!(
        call(&app, Some(&admin), Method::GET, "/api/v1/audit", None)
            .await
            .2["total"],
        audited
    );

    // An editor changes flags and segments but not tokens or release stages.
    for id in ["listTokens", "addStage", "updateStage"] {
        let op = ops.iter().find(|op| op.id == id).unwrap();
        assert_problem(
            &run(&app, Some(&editor), op).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let revoke = ops.iter().find(|op| op.id == "revokeToken").unwrap();
    assert_problem(
        &run(&app, Some(&editor), revoke).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );

    // An admin runs every one of them: the samples above are calls that work.
    for op in &ops {
        let op = Op {
            if_match: current_version(&app, &admin, op).await,
            id: op.id.clone(),
            method: op.method.clone(),
            path: op.path.clone(),
            body: op.body.clone(),
        };
        let (status, _, body) = run(&app, Some(&admin), &op).await;
        assert!(status.is_success(), "{} as an admin: {status} {body}", op.id);
    }
    let (status, ..) = call(&app, Some(&spare), Method::GET, "/api/v1/flags", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revokeToken revoked the spare token"
    );
    let segments = call(&app, Some(&viewer), Method::GET, "/api/v1/segments", None)
        .await
        .2;
    assert_eq!(segments["items"][0]["key"], "vip");
    assert_eq!(segments["items"][0]["name"], "vip");
    let stages = call(&app, Some(&viewer), Method::GET, "/api/v1/stages", None)
        .await
        .2;
    let names: Vec<&str> = stages["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Private beta") && names.contains(&"Canary"),
        "{names:?}"
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_subject_and_time_and_pages() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, START).await else {
        return;
    };
    let ci = app.service_token("ci", Role::Editor, None).await;
    let bot = app.service_token("bot", Role::Editor, None).await;
    // ci creates three flags an hour apart, bot one more after them.
    for key in ["audit-one", "audit-two", "audit-three"] {
        clock.advance(3_600_000);
        let (status, ..) = call(
            &app,
            Some(&ci),
            Method::POST,
            "/api/v1/flags",
            Some(json!({ "key": key })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    clock.advance(3_600_000);
    let (status, ..) = call(
        &app,
        Some(&bot),
        Method::POST,
        "/api/v1/flags",
        Some(json!({ "key": "audit-bot" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let audit = |query: String| {
        let (app, ci) = (&app, &ci);
        async move {
            let (status, _, page) = call(
                app,
                Some(ci),
                Method::GET,
                &format!("/api/v1/audit?{query}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            let subjects: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "flag.created")
                .map(|e| e["subject"].as_str().unwrap().to_string())
                .collect();
            (page["total"].as_i64().unwrap(), subjects)
        }
    };

    let (_, by_ci) = audit("actor=service%20token%20ci".into()).await;
    assert_eq!(
        by_ci,
        ["audit-three", "audit-two", "audit-one"],
        "newest first, only ci's"
    );
    let (_, by_bot) = audit("actor=service%20token%20bot".into()).await;
    assert_eq!(by_bot, ["audit-bot"]);
    let (total, about_two) = audit("subject=audit-tw".into()).await;
    assert_eq!((total, about_two), (1, vec!["audit-two".to_string()]));
    // From the second creation to the third, both ends included.
    let (from, to) = (START + 2 * 3_600_000, START + 3 * 3_600_000);
    let (_, between) = audit(format!("actor=service%20token%20ci&from={from}&to={to}")).await;
    assert_eq!(between, ["audit-three", "audit-two"]);
    // Pages of one: the second page is the second newest of the same total.
    let (total, first) = audit("actor=service%20token%20ci&limit=1".into()).await;
    let (same_total, second) = audit("actor=service%20token%20ci&limit=1&page=1".into()).await;
    assert_eq!((total, same_total), (3, 3));
    assert_eq!(
        (first, second),
        (vec!["audit-three".to_string()], vec!["audit-two".to_string()])
    );
    let (_, beyond) = audit("actor=service%20token%20ci&limit=1&page=3".into()).await;
    assert!(beyond.is_empty());
    assert_problem(
        &call(&app, Some(&ci), Method::GET, "/api/v1/audit?from=yesterday", None).await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    // Flags page the same way.
    let (_, _, flags) = call(
        &app,
        Some(&ci),
        Method::GET,
        "/api/v1/flags?q=audit&limit=3&page=1",
        None,
    )
    .await;
    assert_eq!(
        (flags["total"].as_i64(), flags["items"].as_array().map(Vec::len)),
        (Some(4), Some(1)),
        "{flags}"
    );
}
