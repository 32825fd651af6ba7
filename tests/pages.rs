//! What the admin pages get right for a product manager: a missing flag is a 404, flag keys are
//! unique whatever their case, an editor is not shown admin forms and is refused in words, a
//! user's flags are checked with the user's company, and the working environment sticks.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::AccessRules;
use gatehouse::service::{Actor, Change, NewFlag, ServiceError};
use serde_json::{json, Value};

/// A page as a browser asks for it.
async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let response = client
        .get(app.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_missing_flag_page_is_a_404() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("checkout")).await;
    app.add_member("pm@example.com", Role::Editor).await;
    let pm = app.signed_in("pm@example.com").await;
    let (status, html) = page(&app, &pm, "/flags/does-not-exist").await;
    assert_eq!(status, 404, "{html}");
    assert!(html.contains("not found"), "the page says so: {html}");
    let (status, _) = page(&app, &pm, "/flags/checkout").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn flag_keys_are_unique_regardless_of_case() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("new-billing-page")).await;
    let refused = app
        .service
        .apply(
            &Actor::cli(),
            Change::CreateFlag(NewFlag {
                key: "New-Billing-Page".into(),
                name: "New billing page".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    let ServiceError::Conflict(message) = refused else {
        panic!("a conflict, not {refused:?}")
    };
    assert!(
        message.contains("new-billing-page") && message.contains("regardless of case"),
        "{message}"
    );
}

#[tokio::test]
async fn an_editor_sees_no_admin_forms_and_is_refused_in_words() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("editor@example.com", Role::Editor).await;
    let editor = app.signed_in("editor@example.com").await;
    for (path, form) in [
        ("/settings/members", "Create invitation link"),
        ("/settings/stages", "Add stage"),
    ] {
        let (_, html) = page(&app, &editor, path).await;
        assert!(!html.contains(form), "{path} shows {form:?} to an editor");
        assert!(
            html.contains("only admins can do this"),
            "{path} says why: {html}"
        );
    }
    // A refused server function answers in the shape the pages read: a message, no decoding error.
    let response = app
        .call(
            &editor,
            "/api/admin/invite",
            &[("email", "x@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], Value::Null);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("only admins can do this, and you are signed in as editor"),
        "{body}"
    );
}

#[tokio::test]
async fn a_users_flags_are_checked_with_the_users_company() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("enterprise-reports")).await;
    let rules: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["enterprise"] }
        ] }]
    }))
    .unwrap();
    app.apply(common::set_access(
        "enterprise-reports",
        "production",
        rules,
        None,
    ))
    .await;
    let key = app.publishable_key("production").await;
    let response = app
        .client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme", "userId": "u-alice", "attributes": { "plan": "enterprise" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let response = app
        .call(
            &viewer,
            "/api/read/check_access",
            &[("kind", "user"), ("env", "production"), ("id", "u-alice")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let check: Value = response.json().await.unwrap();
    let flag = check["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "enterprise-reports")
        .cloned()
        .unwrap();
    assert_eq!(flag["enabled"], true, "{check}");
    assert_eq!(flag["missing"], json!([]), "{check}");
    assert_eq!(check["company_note"], "Evaluated with the user's company acme.");
}

#[tokio::test]
async fn the_working_environment_sticks_for_the_session() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("checkout")).await;
    app.add_member("pm@example.com", Role::Editor).await;
    let pm = app.signed_in("pm@example.com").await;
    // The heading as rendered: "Access in <!>Staging".
    let shows = |html: &str, environment: &str| html.contains(&format!("Access in <!>{environment}"));
    let heading = |html: &str| shows(html, "Staging");
    let (_, html) = page(&app, &pm, "/flags/checkout").await;
    assert!(shows(&html, "Production"), "{html}");
    let (_, html) = page(&app, &pm, "/flags/checkout?env=staging").await;
    assert!(heading(&html));
    // The next page, without ?env=, stays in Staging; an unknown environment is not remembered.
    let (_, html) = page(&app, &pm, "/flags/checkout").await;
    assert!(heading(&html), "{html}");
    let (_, html) = page(&app, &pm, "/flags/checkout?env=nowhere").await;
    assert!(
        shows(&html, "Production"),
        "an unknown one shows Production: {html}"
    );
    let (_, html) = page(&app, &pm, "/flags/checkout").await;
    assert!(heading(&html), "{html}");
    // Another member's session has its own.
    app.add_member("other@example.com", Role::Viewer).await;
    let other = app.signed_in("other@example.com").await;
    let (_, html) = page(&app, &other, "/flags/checkout").await;
    assert!(shows(&html, "Production"), "{html}");
}

#[tokio::test]
async fn ids_no_sdk_reported_are_pointed_out_on_the_flag_page() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("checkout")).await;
    let key = app.publishable_key("production").await;
    let response = app
        .client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme", "attributes": { "name": "Acme Inc" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rules: AccessRules = serde_json::from_value(json!({
        "mode": "some", "companies": ["acme", "Acme"], "users": ["u-bob"]
    }))
    .unwrap();
    app.apply(common::set_access("checkout", "production", rules, None))
        .await;
    app.add_member("pm@example.com", Role::Editor).await;
    let pm = app.signed_in("pm@example.com").await;
    let (_, html) = page(&app, &pm, "/flags/checkout").await;
    assert!(
        html.contains("Not seen yet in this environment (check the spelling; ids are case-sensitive): companies Acme; users u-bob."),
        "{html}"
    );
    // The lists are chips with the known ones' names, rendered on the server (no JavaScript).
    let plain = html.replace("<!>", "");
    let chip = |text: &str| plain.contains(text);
    assert!(
        chip(r#"<li class="chip"><span class="chip-name">Acme Inc</span><code>acme</code>"#),
        "acme named: {html}"
    );
    assert!(chip(
        r#"<code>Acme</code><span class="chip-unseen">not seen yet</span>"#
    ));
    assert!(chip(
        r#"<code>u-bob</code><span class="chip-unseen">not seen yet</span>"#
    ));
    // What the chips ask for, as a viewer may; nobody signed in is refused.
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let fields = [
        ("environment", "production"),
        ("kind", "company"),
        ("ids", "acme\nAcme\n"),
    ];
    let response = app.call(&viewer, "/api/read/id_labels", &fields).await;
    assert_eq!(response.status(), 200);
    let labels: Value = response.json().await.unwrap();
    assert_eq!(labels, json!([["acme", "Acme Inc"], ["Acme", null]]));
    let anonymous = app
        .call(&reqwest::Client::new(), "/api/read/id_labels", &fields)
        .await;
    assert_eq!(anonymous.status(), 401);
    let wrong = [("environment", "production"), ("kind", "robot"), ("ids", "acme")];
    assert_eq!(
        app.call(&viewer, "/api/read/id_labels", &wrong).await.status(),
        422
    );
}

#[tokio::test]
async fn the_history_says_which_versions_were_rollbacks_and_copies() {
    use gatehouse::service::AccessChange;
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("checkout")).await;
    let acme: AccessRules = serde_json::from_value(json!({ "mode": "some", "companies": ["acme"] })).unwrap();
    app.apply(common::set_access("checkout", "production", acme, None))
        .await;
    app.apply(common::set_access(
        "checkout",
        "production",
        AccessRules::Everyone,
        None,
    ))
    .await;
    let change = |environment: &str, change| Change::SetAccess {
        flag: "checkout".into(),
        environment: environment.into(),
        change,
        expected_version: None,
    };
    app.apply(change("production", AccessChange::RollBackTo(2))).await;
    app.apply(change("staging", AccessChange::CopyFrom("production".into())))
        .await;
    app.add_member("pm@example.com", Role::Editor).await;
    let pm = app.signed_in("pm@example.com").await;
    let (_, html) = page(&app, &pm, "/flags/checkout?env=production").await;
    assert!(html.contains("rolled back to version 2"), "{html}");
    let (_, html) = page(&app, &pm, "/flags/checkout?env=staging").await;
    assert!(html.contains("copied from Production"), "{html}");
    assert!(html.contains("No remote config saved in this environment yet."));

    // Remote config changes are in the history too, each against the version before.
    use gatehouse::model::ConfigVariant;
    let value = |key: &str, seats: i64, companies: &[&str], is_default: bool| ConfigVariant {
        key: key.into(),
        payload: json!({ "seats": seats }),
        companies: companies.iter().map(|c| c.to_string()).collect(),
        users: vec![],
        segments: vec![],
        is_default,
    };
    let config = |variants| Change::SetRemoteConfig {
        flag: "checkout".into(),
        environment: "production".into(),
        variants,
        expected_version: None,
    };
    app.apply(config(vec![value("basic", 5, &[], true)])).await;
    app.apply(config(vec![
        value("basic", 5, &[], false),
        value("premium", 50, &["acme"], true),
    ]))
    .await;
    let (_, html) = page(&app, &pm, "/flags/checkout?env=production").await;
    let plain = html.replace("<!>", "");
    let rows: Vec<&str> = plain
        .split("<h3 id=\"config-history\">")
        .nth(1)
        .unwrap()
        .split("<tr>")
        .skip(2)
        .collect();
    assert_eq!(rows.len(), 2, "{plain}");
    assert!(
        rows[0].starts_with("<td>2</td><td>2 values, default premium</td>"),
        "{}",
        rows[0]
    );
    assert!(
        rows[0].contains("<li>+ value premium {\"seats\":50}</li><li>default basic → premium</li>"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("<li>+ value basic {\"seats\":5}</li><li>default → basic</li>"),
        "{}",
        rows[1]
    );
}

#[tokio::test]
async fn board_columns_count_every_flag_of_their_stage() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for i in 0..63 {
        app.apply(common::new_flag(&format!("flag-{i:02}"))).await;
    }
    let beta = common::stage_id(&app.service, "Beta").await;
    for i in 0..3 {
        app.apply(Change::MoveStage {
            flag: format!("flag-{i:02}"),
            stage_id: beta,
        })
        .await;
    }
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let response = app
        .call(
            &viewer,
            "/api/read/flags",
            &[
                ("search", ""),
                ("archived", "false"),
                ("page", "0"),
                ("board", "true"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let board: Value = response.json().await.unwrap();
    let columns = board["columns"].as_array().unwrap();
    let first = &columns[0];
    assert_eq!(first["total"], 60, "{first}");
    assert_eq!(first["flags"].as_array().unwrap().len(), 50);
    let beta_column = columns.iter().find(|c| c["stage_id"] == beta).unwrap();
    assert_eq!(beta_column["total"], 3);
    assert_eq!(beta_column["flags"].as_array().unwrap().len(), 3);
    let (_, html) = page(&app, &viewer, "/flags?view=board").await;
    assert!(html.contains("See all 60 in the list"), "{html}");
}

#[tokio::test]
async fn a_flags_page_sums_it_up_and_editors_change_its_details() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.apply(common::new_flag("checkout")).await;
    app.apply(common::set_access(
        "checkout",
        "staging",
        gatehouse::model::AccessRules::Everyone,
        None,
    ))
    .await;
    let pm = app.add_member("pm@example.com", Role::Editor).await;
    let session = app.signed_in("pm@example.com").await;
    let (status, html) = page(&app, &session, "/flags/checkout").await;
    assert_eq!(status, 200);
    // Every environment in one line, the page's sections, the details form.
    for wanted in [
        "Production",
        "Staging",
        "Development",
        "Everyone",
        "href=\"#history\"",
        "href=\"#config\"",
        "Save details",
        "temporary",
    ] {
        assert!(html.contains(wanted), "the flag page lacks {wanted:?}");
    }
    assert!(html.contains("width:100%"), "Everyone in staging is a full bar");

    let pm_id = pm.id.to_string();
    let form = [
        ("key", "checkout"),
        ("name", "New checkout"),
        ("description", "One-page checkout"),
        ("owner", pm_id.as_str()),
        ("kind", "permanent"),
    ];
    let answer = app.call(&session, "/api/edit/flag_details", &form).await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let flag = app
        .service
        .flag_detail(&Actor::cli(), "checkout")
        .await
        .unwrap()
        .flag;
    assert_eq!(
        (
            flag.name.as_str(),
            flag.description.as_str(),
            flag.owner_id,
            flag.permanent
        ),
        ("New checkout", "One-page checkout", Some(pm.id), true)
    );
    let (_, html) = page(&app, &session, "/flags/checkout").await;
    assert!(
        html.contains("Owner: Test Member") && html.contains("permanent"),
        "the page shows what is stored"
    );

    // Refusals: no name, an owner who is no member, a made-up type; nothing changes.
    for (field, value) in [("name", ""), ("owner", "999999"), ("kind", "forever")] {
        let mut form = form.to_vec();
        form.retain(|(f, _)| *f != field);
        form.push((field, value));
        let answer = app.call(&session, "/api/edit/flag_details", &form).await;
        assert_eq!(
            answer.status(),
            422,
            "{field}={value}: {}",
            answer.text().await.unwrap()
        );
    }
    let after = app
        .service
        .flag_detail(&Actor::cli(), "checkout")
        .await
        .unwrap()
        .flag;
    assert_eq!(after.name, "New checkout");
    // A viewer may not.
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let answer = app.call(&viewer, "/api/edit/flag_details", &form).await;
    assert_eq!(answer.status(), 403);
}

#[tokio::test]
async fn a_refused_invitation_without_javascript_comes_back_as_typed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    // A plain form post (no JavaScript): the browser names the page it came from.
    let answer = admin
        .post(app.url("/api/admin/invite"))
        .header("Referer", app.url("/settings/members"))
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[("email", "not-an-address"), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let back = answer.headers()["location"].to_str().unwrap().to_string();
    let origin = app.url("");
    let (status, html) = page(&app, &admin, back.strip_prefix(&origin).unwrap_or(&back)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("value=\"not-an-address\""),
        "the email comes back: {html}"
    );
    assert!(
        html.contains("<option value=\"viewer\" selected"),
        "the role comes back"
    );
}

/// A plain form post (no JavaScript) from `from` that the server refuses: the page it is sent
/// back to, as the browser then shows it.
async fn refused_without_javascript(
    app: &TestApp,
    client: &reqwest::Client,
    endpoint: &str,
    from: &str,
    form: &[(&str, &str)],
) -> String {
    let answer = client
        .post(app.url(endpoint))
        .header("Referer", app.url(from))
        .header("accept", "text/html,application/xhtml+xml")
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_redirection(),
        "{endpoint}: {}",
        answer.status()
    );
    let back = answer.headers()["location"].to_str().unwrap().to_string();
    let origin = app.url("");
    let (status, html) = page(app, client, back.strip_prefix(&origin).unwrap_or(&back)).await;
    assert_eq!(status, 200);
    html.replace("<!>", "")
}

#[tokio::test]
async fn refused_stage_and_webhook_forms_without_javascript_come_back_as_typed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    let stages = "/settings/stages";
    let form = [("name", "Beta"), ("color", "#123456")];
    let html = refused_without_javascript(&app, &admin, "/api/admin/add_stage", stages, &form).await;
    assert!(
        html.contains(r#"id="stage-name" name="name" value="Beta""#),
        "{html}"
    );
    assert!(html.contains(r##"id="stage-color" name="color" type="color" value="#123456""##));
    let beta = common::stage_id(&app.service, "Beta").await.to_string();
    let form = [
        ("id", beta.as_str()),
        ("name", "General availability"),
        ("color", "#654321"),
    ];
    let html = refused_without_javascript(&app, &admin, "/api/admin/update_stage", stages, &form).await;
    let row = format!(r#"id="stage-{beta}-name" name="name" value="General availability""#);
    assert!(html.contains(&row), "the Beta row keeps the typed name: {html}");
    assert!(html.contains(&format!(
        r##"id="stage-{beta}-color" name="color" type="color" value="#654321""##
    )));

    let hooks = "/settings/webhooks";
    let form = [
        ("name", "Ops"),
        ("url", "ftp://example.com/hook"),
        ("events", "flag.*"),
        ("format", "slack"),
    ];
    let html = refused_without_javascript(&app, &admin, "/api/admin/save_webhook", hooks, &form).await;
    assert!(
        html.contains(r#"id="webhook-new-name" name="name" value="Ops""#),
        "{html}"
    );
    assert!(html.contains(r#"name="url" type="url" value="ftp://example.com/hook""#));
    assert!(html
        .contains(r#"name="events" rows="3" aria-describedby="webhook-new-events-help">flag.*</textarea>"#));
    assert!(html.contains(r#"<option value="slack" selected"#));
}

#[tokio::test]
async fn access_editors_suggest_a_bounded_number_of_flags() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for i in 0..260 {
        app.apply(common::new_flag(&format!("flag-{i:03}"))).await;
    }
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    for path in ["/flags/flag-000", "/settings/stages"] {
        let (status, html) = page(&app, &admin, path).await;
        assert_eq!(status, 200);
        let suggested = html.matches("<option value=\"flag-").count();
        let editors = html.matches("<legend>Who gets it</legend>").count().max(1);
        assert!(
            suggested <= 200 * editors,
            "{path}: {suggested} flag suggestions for {editors} editors"
        );
        assert!(suggested > 0, "{path} suggests flags");
    }
}
