//! Segments through the admin UI's server functions, and the audit log query behind its page.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::service::{Actor, AuditFilter, AuditRecord, Clock, EntityUpsert, IngestWrite, Service};
use serde_json::{json, Value};

/// The newest audit entries of `action`, newest first.
async fn audit_entries(service: &Service, action: &str) -> Vec<AuditRecord> {
    let filter = AuditFilter::default();
    let entries = service
        .audit_page(&Actor::cli(), &filter, 0, 500)
        .await
        .unwrap()
        .entries;
    entries.into_iter().filter(|e| e.action == action).collect()
}

/// The stored segments, by key.
async fn segments(app: &TestApp) -> Vec<gatehouse::service::SegmentRecord> {
    let list = app
        .service
        .segment_list(&Actor::cli(), "production")
        .await
        .unwrap();
    list.segments.into_iter().map(|(record, _, _)| record).collect()
}

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
    let environment = app.environment("production").await;
    let write = IngestWrite::Company {
        company: EntityUpsert {
            id: id.into(),
            attributes: serde_json::from_value(json!({ "plan": plan })).unwrap(),
            seen_at: Clock::system().now_ms(),
        },
        user_id: None,
    };
    let key = Actor::api_key(environment.id);
    app.service
        .ingest(key, environment.id, vec![write])
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
    // A clock the test moves: the list keeps its counts for five seconds after companies arrive.
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, 1_800_000_000_000)
        .await
        .unwrap();
    app.add_member(EDITOR, Role::Editor).await;
    let editor = app.signed_in(EDITOR).await;
    let response = app.call(&editor, "/api/edit/create_segment", VIP).await;
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "create answered {}",
        response.status()
    );
    let stored = segments(&app).await;
    assert_eq!(stored.len(), 1);
    let conditions = serde_json::to_value(&stored[0].segment.conditions).unwrap();
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
    assert_eq!(
        list["companies"], 0,
        "counted before the companies came, under 5 s ago"
    );
    assert_eq!(list["counted_at"], 1_800_000_000_000_i64);
    clock.advance(5_000);
    let (_, list) = json_of(
        app.call(&editor, "/api/read/segments", &[("environment", "production")])
            .await,
    )
    .await;
    assert_eq!(list["companies"], 3);
    assert_eq!(list["counted_at"], 1_800_000_005_000_i64);
    let vip = &list["segments"][0];
    assert_eq!(vip["key"], "vip");
    assert_eq!(vip["conditions"], 2);
    assert_eq!(vip["matching"], 1);
    assert_eq!(vip["used_by"], json!(["big-reports"]));

    // Counts are kept between views, but a company reported since is counted at the next one,
    // and so is a changed segment.
    report_company(&app, "globex", "enterprise").await;
    clock.advance(5_000);
    let (_, list) = json_of(
        app.call(&editor, "/api/read/segments", &[("environment", "production")])
            .await,
    )
    .await;
    assert_eq!(
        (list["companies"].clone(), list["segments"][0]["matching"].clone()),
        (json!(3), json!(2))
    );
    let edited = app
        .call(
            &editor,
            "/api/edit/update_segment",
            &[
                ("key", "vip"),
                ("name", "VIP customers"),
                ("companies", "initech"),
            ],
        )
        .await;
    assert_eq!(edited.status(), 200, "{}", edited.text().await.unwrap());
    let (_, list) = json_of(
        app.call(&editor, "/api/read/segments", &[("environment", "production")])
            .await,
    )
    .await;
    assert_eq!(list["segments"][0]["matching"], 1, "initech by id: {list}");

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

    let changes = audit_entries(&app.service, "segment.changed").await;
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
    assert!(segments(&app).await.is_empty());
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

    assert!(segments(&app).await.is_empty());

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

/// An audit entry written by hand at `at`, so the filters have times to work with.
async fn record(pool: &sqlx::AnyPool, at: i64, actor: &str, subject_type: &str, subject_key: &str) {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_label, action, subject_type, subject_key, after_json) \
         VALUES ($1, $2, 'test.change', $3, $4, $5)",
    )
    .bind(at)
    .bind(actor)
    .bind(subject_type)
    .bind(subject_key)
    .bind(json!({ "at": at }).to_string())
    .execute(pool)
    .await
    .unwrap();
}

store_test!(audit_query_filters_and_pages, |fx: common::Fixture| async move {
    let pool = &fx.pool;
    record(pool, 1_000, "ada@example.com", "flag", "checkout").await;
    record(pool, 2_000, "bob@example.com", "segment", "vip_100%").await;
    record(pool, 3_000, "ada@example.com", "segment", "vip-2").await;
    record(pool, 4_000, "command line", "flag", "search").await;
    let filter = |actor: &str, subject: &str, from: Option<i64>, to: Option<i64>| AuditFilter {
        actor: actor.into(),
        subject: subject.into(),
        from,
        to,
    };
    let page = |filter: AuditFilter, page: i64, size: i64| {
        let service = fx.service.clone();
        async move {
            service
                .audit_page(&Actor::cli(), &filter, page, size)
                .await
                .unwrap()
        }
    };
    let ats = |entries: Vec<AuditRecord>| {
        entries
            .into_iter()
            .filter(|e| e.action == "test.change")
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };

    let by_ada = page(filter("ada@example.com", "", None, None), 0, 10).await;
    assert_eq!(ats(by_ada.entries), [3_000, 1_000]);
    assert_eq!(by_ada.total, 2);

    // Case-insensitive, over "type key"; LIKE wildcards in the text are literal.
    let segments = page(filter("", "Segment VIP", None, None), 0, 10).await;
    assert_eq!(ats(segments.entries), [3_000, 2_000]);
    let literal = page(filter("", "_100%", None, None), 0, 10).await;
    assert_eq!(ats(literal.entries), [2_000]);
    let underscore = page(filter("", "vip_", None, None), 0, 10).await;
    assert_eq!(ats(underscore.entries), [2_000]);

    let window = page(filter("", "", Some(2_000), Some(3_000)), 0, 10).await;
    assert_eq!(ats(window.entries), [3_000, 2_000]);

    let first = page(AuditFilter::default(), 0, 2).await;
    let second = page(AuditFilter::default(), 1, 2).await;
    assert!(first.total >= 4);
    let (first, second) = (first.entries, second.entries);
    assert_eq!((first.len(), second.len()), (2, 2));
    assert!(first[0].at >= first[1].at && first[1].at >= second[0].at);
    assert!(second.iter().all(|e| first.iter().all(|f| f.id != e.id)));

    let actors = page(AuditFilter::default(), 0, 1).await.actors;
    assert!(actors.contains(&"bob@example.com".to_string()));
    assert!(actors.windows(2).all(|w| w[0] <= w[1]));
});
