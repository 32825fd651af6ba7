//! Segments through the admin UI's server functions, and the audit log query behind its page.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::store::audit::{insert_audit, NewAuditEntry};
use gatehouse::store::audit_query::AuditFilter;
use gatehouse::store::entities::{EntityUpsert, IngestWrite};
use gatehouse::store::Store;
use serde_json::{json, Value};

const EDITOR: &str = "eddie@example.com";
const VIEWER: &str = "vera@example.com";

const VIP: &[(&str, &str)] = &[
    ("key", "vip"),
    ("name", "VIP customers"),
    ("description", "Big accounts we watch closely"),
    ("companies", "acme\nglobex"),
    ("rows[0][attribute]", "plan"),
    ("rows[0][operator]", "IS"),
    ("rows[0][value]", "enterprise"),
    ("rows[1][attribute]", ""),
    ("rows[1][operator]", "IS"),
    ("rows[1][value]", ""),
];

async fn app_with_team() -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member(EDITOR, Role::Editor).await;
    app.add_member(VIEWER, Role::Viewer).await;
    let editor = app.signed_in(EDITOR).await;
    (app, editor)
}

async fn report_company(app: &TestApp, id: &str, plan: &str) {
    let environment = app.store.environment_by_key("production").await.unwrap().unwrap();
    let write = IngestWrite::Company {
        company: EntityUpsert {
            id: id.into(),
            attributes: serde_json::from_value(json!({ "plan": plan })).unwrap(),
            seen_at: gatehouse::store::now_ms(),
        },
        user_id: None,
    };
    app.runtime
        .entities()
        .record(&app.store, environment.id, vec![write])
        .await
        .unwrap();
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn editor_creates_a_segment_and_the_list_counts_its_companies_and_flags() {
    let (app, editor) = app_with_team().await;
    let response = app.call(&editor, "/api/edit/create_segment", VIP).await;
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "create answered {}",
        response.status()
    );
    let stored = app.store.segments().await.unwrap();
    assert_eq!(stored.len(), 1);
    let conditions: Value = serde_json::from_str(&stored[0].conditions).unwrap();
    assert_eq!(
        conditions,
        json!([
            { "kind": "companyList", "companies": ["acme", "globex"] },
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["enterprise"] },
        ])
    );

    // Only acme is both listed and on the enterprise plan.
    report_company(&app, "acme", "enterprise").await;
    report_company(&app, "globex", "free").await;
    report_company(&app, "initech", "enterprise").await;
    let created = app
        .call(
            &editor,
            "/api/edit/create_flag",
            &[
                ("key", "big-reports"),
                ("name", "Big reports"),
                ("description", ""),
            ],
        )
        .await;
    assert!(created.status().is_success() || created.status().is_redirection());
    let saved = app
        .call(
            &editor,
            "/api/edit/save_access",
            &[
                ("flag", "big-reports"),
                ("environment", "staging"),
                ("expected_version", "1"),
                ("form[mode]", "some"),
                ("form[companies]", ""),
                ("form[users]", ""),
                ("form[segments]", "vip"),
                ("form[rules][0][rollout]", ""),
                ("form[rules][0][rollout_by]", "company"),
                ("form[conditions][0][rule]", "0"),
                ("form[conditions][0][kind]", "company"),
                ("form[conditions][0][field]", ""),
                ("form[conditions][0][operator]", "IS"),
                ("form[conditions][0][value]", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());

    let (status, list) = json_of(
        app.call(&editor, "/api/read/segments", &[("environment", "production")])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["companies"], 3);
    let vip = &list["segments"][0];
    assert_eq!(vip["key"], "vip");
    assert_eq!(vip["conditions"], 2);
    assert_eq!(vip["matching"], 1);
    assert_eq!(vip["used_by"], json!(["big-reports"]));

    // Staging has no companies: nothing matches there.
    let (_, staging) = json_of(
        app.call(&editor, "/api/read/segments", &[("environment", "staging")])
            .await,
    )
    .await;
    assert_eq!(staging["segments"][0]["matching"], 0);
}

#[tokio::test]
async fn editing_a_segment_keeps_its_key_and_is_audited_with_before_and_after() {
    let (app, editor) = app_with_team().await;
    app.call(&editor, "/api/edit/create_segment", VIP).await;
    let response = app
        .call(
            &editor,
            "/api/edit/update_segment",
            &[("key", "vip"), ("name", "Very important"), ("companies", "acme")],
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (_, detail) = json_of(app.call(&editor, "/api/read/segment", &[("key", "vip")]).await).await;
    assert_eq!(detail["name"], "Very important");
    assert_eq!(detail["form"]["companies"], "acme");
    assert_eq!(detail["form"]["rows"].as_array().unwrap().len(), 3);

    let changes = app
        .store
        .audit_entries(Some("segment.changed"), 10)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].actor_label, EDITOR);
    assert_eq!(changes[0].before.as_ref().unwrap()["name"], "VIP customers");
    assert_eq!(changes[0].after.as_ref().unwrap()["name"], "Very important");

    // Updating a segment that does not exist creates nothing.
    let missing = app
        .call(
            &editor,
            "/api/edit/update_segment",
            &[("key", "nobody"), ("name", "Nobody")],
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn viewer_cannot_create_segments() {
    let (app, _) = app_with_team().await;
    let viewer = app.signed_in(VIEWER).await;
    let response = app.call(&viewer, "/api/edit/create_segment", VIP).await;
    assert_eq!(response.status(), 403);
    assert!(app.store.segments().await.unwrap().is_empty());
    // Reading is open to every member.
    let list = app
        .call(&viewer, "/api/read/segments", &[("environment", "production")])
        .await;
    assert_eq!(list.status(), 200);
}

#[tokio::test]
async fn invalid_segments_are_refused_with_the_field_to_fix() {
    let (app, editor) = app_with_team().await;
    let refused = |form: Vec<(&'static str, &'static str)>| {
        let (app, editor) = (&app, &editor);
        async move { json_of(app.call(editor, "/api/edit/create_segment", &form).await).await }
    };

    let (status, body) = refused(vec![("key", "not a key!"), ("name", "Bad")]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "key");

    let (status, body) = refused(vec![
        ("key", "vip"),
        ("name", "VIP"),
        ("rows[0][attribute]", "plan"),
        ("rows[0][operator]", "SOMETIMES"),
        ("rows[0][value]", "pro"),
    ])
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "rows[0][operator]");

    let (status, body) = refused(vec![
        ("key", "vip"),
        ("name", "VIP"),
        ("rows[0][attribute]", "seats"),
        ("rows[0][operator]", "GT"),
        ("rows[0][value]", "lots"),
    ])
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "rows[0][value]");

    let (status, body) = refused(vec![("key", "vip"), ("name", "  ")]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "name");

    assert!(app.store.segments().await.unwrap().is_empty());

    // A taken key is a conflict, reported on the key field.
    app.call(&editor, "/api/edit/create_segment", VIP).await;
    let (status, body) = refused(vec![("key", "vip"), ("name", "Again")]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["field"], "key");
}

#[tokio::test]
async fn the_audit_log_filters_by_member_subject_and_date_and_pages() {
    let (app, editor) = app_with_team().await;
    let viewer = app.signed_in(VIEWER).await;
    app.call(&editor, "/api/edit/create_segment", VIP).await;
    app.call(
        &editor,
        "/api/edit/create_flag",
        &[
            ("key", "big-reports"),
            ("name", "Big reports"),
            ("description", ""),
        ],
    )
    .await;
    let audit = |form: Vec<(&'static str, String)>| {
        let (app, viewer) = (&app, &viewer);
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            json_of(app.call(viewer, "/api/read/audit", &pairs).await).await
        }
    };

    let (status, all) = audit(vec![]).await;
    assert_eq!(status, 200, "{all}");
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[0], "flag.created", "newest first: {actions:?}");
    assert!(actions.contains(&"segment.created"));
    assert!(all["actors"].as_array().unwrap().contains(&json!(EDITOR)));

    let (_, by_editor) = audit(vec![("member", EDITOR.into())]).await;
    // Signing in is recorded too.
    assert_eq!(by_editor["total"], 3);
    assert!(by_editor["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == EDITOR));

    let (_, segments) = audit(vec![("subject", "SEGMENT vip".into())]).await;
    assert_eq!(segments["total"], 1);
    let entry = &segments["entries"][0];
    assert_eq!(entry["subject_key"], "vip");
    assert_eq!(entry["after"]["name"], "VIP customers");
    assert!(entry["before"].is_null());

    let date = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let (_, today_only) = audit(vec![("from", today.clone()), ("to", today)]).await;
    assert_eq!(today_only["total"], all["total"]);
    let (_, future) = audit(vec![("from", "2999-01-01".into())]).await;
    assert_eq!(future["total"], 0);

    let (status, body) = audit(vec![("from", "yesterday".into())]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "from");
    let (status, body) = audit(vec![("from", "2025-02-01".into()), ("to", "2025-01-01".into())]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "to");

    let anonymous = common::client();
    assert_eq!(app.call(&anonymous, "/api/read/audit", &[]).await.status(), 401);
}

async fn record(store: &Store, at: i64, actor: &str, subject_type: &str, subject_key: &str) {
    let mut conn = store.pool().acquire().await.unwrap();
    insert_audit(
        &mut conn,
        NewAuditEntry {
            actor_label: actor,
            action: "test.change",
            subject_type,
            subject_key,
            after: Some(json!({ "at": at })),
            ..Default::default()
        },
        at,
    )
    .await
    .unwrap();
}

store_test!(audit_query_filters_and_pages, |store: Store| async move {
    record(&store, 1_000, "ada@example.com", "flag", "checkout").await;
    record(&store, 2_000, "bob@example.com", "segment", "vip_100%").await;
    record(&store, 3_000, "ada@example.com", "segment", "vip-2").await;
    record(&store, 4_000, "command line", "flag", "search").await;
    let filter = |actor: &str, subject: &str, from: Option<i64>, to: Option<i64>| AuditFilter {
        actor: actor.into(),
        subject: subject.into(),
        from,
        to,
    };
    let ats = |entries: Vec<gatehouse::store::audit_query::AuditRecord>| {
        entries
            .into_iter()
            .filter(|e| e.action == "test.change")
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };

    let by_ada = filter("ada@example.com", "", None, None);
    assert_eq!(
        ats(store.filtered_audit_entries(&by_ada, 0, 10).await.unwrap()),
        [3_000, 1_000]
    );
    assert_eq!(store.filtered_audit_count(&by_ada).await.unwrap(), 2);

    // Case-insensitive, over "type key"; LIKE wildcards in the text are literal.
    let segments = filter("", "Segment VIP", None, None);
    assert_eq!(
        ats(store.filtered_audit_entries(&segments, 0, 10).await.unwrap()),
        [3_000, 2_000]
    );
    let literal = filter("", "_100%", None, None);
    assert_eq!(
        ats(store.filtered_audit_entries(&literal, 0, 10).await.unwrap()),
        [2_000]
    );
    let underscore = filter("", "vip_", None, None);
    assert_eq!(
        ats(store.filtered_audit_entries(&underscore, 0, 10).await.unwrap()),
        [2_000]
    );

    let window = filter("", "", Some(2_000), Some(3_000));
    assert_eq!(
        ats(store.filtered_audit_entries(&window, 0, 10).await.unwrap()),
        [3_000, 2_000]
    );

    let all = AuditFilter::default();
    let total = store.filtered_audit_count(&all).await.unwrap();
    let first = store.filtered_audit_entries(&all, 0, 2).await.unwrap();
    let second = store.filtered_audit_entries(&all, 2, 2).await.unwrap();
    assert!(total >= 4);
    assert_eq!((first.len(), second.len()), (2, 2));
    assert!(first[0].at >= first[1].at && first[1].at >= second[0].at);
    assert!(second.iter().all(|e| first.iter().all(|f| f.id != e.id)));

    let actors = store.audit_actor_labels().await.unwrap();
    assert!(actors.contains(&"bob@example.com".to_string()));
    assert!(actors.windows(2).all(|w| w[0] <= w[1]));
});
