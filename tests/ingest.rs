//! What SDKs report through the tracking endpoints is stored, counted, and used to evaluate:
//! companies and users with merged attributes, events, flag checks, and stored attributes as
//! remote context under the request's own.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{gatehouse, publishable_key_of, serve, Server, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::AccessRules;
use gatehouse::service::{
    AccessChange, Actor, Change, Clock, EntityKind, EntityUpsert, IngestWrite, NewFlag, Service,
};
use serde_json::{json, Value};

struct Fixture {
    app: TestApp,
    environment_id: i64,
    publishable: String,
}

/// A server whose production environment has `pro-only`: on for companies whose `plan` is `pro`.
async fn fixture(backend: Backend) -> Option<Fixture> {
    let app = TestApp::spawn(backend).await?;
    app.apply(Change::CreateFlag(NewFlag {
        key: "pro-only".into(),
        name: "Pro only".into(),
        ..Default::default()
    }))
    .await;
    let rules: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [
            { "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"] }
        ] }]
    }))
    .unwrap();
    app.apply(Change::SetAccess {
        flag: "pro-only".into(),
        environment: "production".into(),
        change: AccessChange::Set(rules),
        expected_version: None,
    })
    .await;
    let production = app.environment("production").await;
    let publishable = app.publishable_key("production").await;
    Some(Fixture {
        app,
        environment_id: production.id,
        publishable,
    })
}

impl Fixture {
    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.publishable)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(path, &body.to_string()).await
    }

    async fn evaluated(&self, query: &str) -> Value {
        let response = self
            .app
            .client
            .get(self.app.url(&format!("/features/evaluated?{query}")))
            .bearer_auth(&self.publishable)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn stored(&self, kind: EntityKind, id: &str) -> Option<Value> {
        let actor = Actor::cli();
        let row = self
            .app
            .service
            .entity_detail(&actor, kind, "production", id)
            .await
            .unwrap()
            .row?;
        Some(serde_json::to_value(&row.attributes).unwrap())
    }

    async fn related(&self, kind: EntityKind, id: &str) -> Vec<String> {
        let actor = Actor::cli();
        let detail = self
            .app
            .service
            .entity_detail(&actor, kind, "production", id)
            .await;
        detail.unwrap().related
    }
}

async fn every_item_type_is_stored(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let ok = json!({ "success": true });
    assert_eq!(
        f.post_json(
            "/user",
            json!({ "userId": "u1", "attributes": { "name": "Ada", "email": "ada@example.com" } })
        )
        .await,
        (200, ok.clone())
    );
    assert_eq!(
        f.post_json(
            "/company",
            json!({ "companyId": 42, "userId": "u1", "attributes": { "name": "Acme", "plan": "pro" } })
        )
        .await,
        (200, ok.clone())
    );
    assert_eq!(
        f.post_json(
            "/event",
            json!({ "event": "exported", "userId": "u1", "companyId": 42, "attributes": { "rows": 3 } })
        )
        .await,
        (200, ok.clone())
    );
    let check = |result: bool| {
        json!({ "action": "check-is-enabled", "key": "pro-only", "targetingVersion": 1,
                "evalContext": { "company": { "id": "42" } }, "evalResult": result,
                "evalRuleResults": [result], "evalMissingFields": [] })
    };
    assert_eq!(
        f.post_json("/features/events", check(true)).await,
        (200, ok.clone())
    );
    let mut item = check(false);
    item["type"] = json!("feature-flag-event");
    let bulk = json!([
        { "type": "user", "userId": 7, "attributes": { "role": "owner" } },
        { "type": "company", "companyId": "beta", "userId": 7, "attributes": { "plan": "free" } },
        { "type": "event", "event": "exported", "userId": 7, "companyId": "beta" },
        item,
        { "type": "feature-flag-event", "action": "check-config", "key": "pro-only", "evalResult": { "key": "a" } },
        { "type": "prompt-event", "action": "received", "promptId": "p1", "userId": 7 }
    ]);
    assert_eq!(f.post_json("/bulk", bulk).await, (200, ok));

    assert_eq!(
        f.stored(EntityKind::User, "u1").await,
        Some(json!({ "name": "Ada", "email": "ada@example.com" }))
    );
    assert_eq!(
        f.stored(EntityKind::Company, "42").await,
        Some(json!({ "name": "Acme", "plan": "pro" }))
    );
    assert_eq!(
        f.stored(EntityKind::User, "7").await,
        Some(json!({ "role": "owner" }))
    );
    assert_eq!(
        f.stored(EntityKind::Company, "beta").await,
        Some(json!({ "plan": "free" }))
    );
    assert_eq!(f.related(EntityKind::Company, "42").await, ["u1"]);
    assert_eq!(f.related(EntityKind::Company, "beta").await, ["7"]);
    let pool = &f.app.pool;
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE environment_id = $1 AND name = 'exported'")
            .bind(f.environment_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(events, 2);
    // Checks are counted in memory and written by the usage flusher (tests/usage.rs).
    f.app.service.flush_usage().await.unwrap();
    let usage = f
        .app
        .service
        .flag_usage(&Actor::cli(), "pro-only", Some("production"), 1)
        .await
        .unwrap();
    let day = &usage.environments[0].days[0];
    assert_eq!(
        (day.enabled, day.disabled),
        (1, 1),
        "config reads are not isEnabled checks"
    );
    assert!(day.variants.is_empty(), "pro-only has no config variant a");
    assert_eq!(day.companies, 1, "company 42 got it");

    let name: Option<String> = sqlx::query_scalar("SELECT name FROM companies WHERE id = '42'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Acme"));
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = 'u1'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn every_item_type_is_stored_sqlite() {
    every_item_type_is_stored(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_item_type_is_stored_postgres() {
    every_item_type_is_stored(Backend::Postgres).await;
}

#[tokio::test]
async fn attributes_merge_and_first_seen_stays() {
    let f = fixture(Backend::Sqlite).await.unwrap();
    f.post_json(
        "/company",
        json!({ "companyId": "acme", "attributes": { "plan": "free", "seats": 3 }, "timestamp": "2024-01-02T00:00:00Z" }),
    )
    .await;
    let first_seen = |pool: sqlx::AnyPool| async move {
        let seen: (i64, i64) =
            sqlx::query_as("SELECT first_seen, last_seen FROM companies WHERE id = 'acme'")
                .fetch_one(&pool)
                .await
                .unwrap();
        seen
    };
    let (first, last) = first_seen(f.app.pool.clone()).await;
    assert_eq!(first, 1_704_153_600_000);
    f.post_json(
        "/company",
        json!({ "companyId": "acme", "attributes": { "plan": "pro", "region": "eu" } }),
    )
    .await;
    assert_eq!(
        f.stored(EntityKind::Company, "acme").await,
        Some(json!({ "plan": "pro", "seats": 3, "region": "eu" }))
    );
    let (first_again, last_again) = first_seen(f.app.pool.clone()).await;
    assert_eq!(first_again, first);
    assert!(last_again >= last);
    let cached = f
        .app
        .runtime
        .entities()
        .attributes(f.environment_id, EntityKind::Company, "acme")
        .unwrap();
    assert_eq!(
        cached,
        [("plan", "pro"), ("seats", "3"), ("region", "eu")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

/// Reports of a few fields each, merged one after another, must not grow a stored user or
/// company past 100 attributes or 8 KiB; the refused report changes nothing.
async fn merged_attributes_are_capped(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    for batch in 0..5 {
        let attributes: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("a{batch}_{i}"), json!(i))).collect();
        let (status, _) = f
            .post_json("/user", json!({ "userId": "u1", "attributes": attributes }))
            .await;
        assert_eq!(
            status,
            200,
            "batch {batch} keeps the user at {} attributes",
            (batch + 1) * 20
        );
    }
    let (status, body) = f
        .post_json(
            "/user",
            json!({ "userId": "u1", "attributes": { "one": "more" } }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "ENTITY_TOO_LARGE", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("101 attributes"),
        "{body}"
    );
    let stored = f.stored(EntityKind::User, "u1").await.unwrap();
    assert_eq!(stored.as_object().unwrap().len(), 100);
    assert!(stored.get("one").is_none());
    // Overwriting a kept attribute is still accepted at the cap.
    let (status, _) = f
        .post_json(
            "/user",
            json!({ "userId": "u1", "attributes": { "a0_0": "new" } }),
        )
        .await;
    assert_eq!(status, 200);

    let text = "x".repeat(1000);
    for i in 0..8 {
        let (status, _) = f
            .post_json(
                "/company",
                json!({ "companyId": "big", "attributes": { format!("t{i}"): text } }),
            )
            .await;
        assert_eq!(status, 200, "{} bytes so far", (i + 1) * 1000);
    }
    let (status, body) = f
        .post_json(
            "/company",
            json!({ "companyId": "big", "attributes": { "t8": text } }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bytes of attributes"),
        "{body}"
    );
    assert_eq!(
        f.stored(EntityKind::Company, "big")
            .await
            .unwrap()
            .as_object()
            .unwrap()
            .len(),
        8
    );
}

#[tokio::test]
async fn merged_attributes_are_capped_sqlite() {
    merged_attributes_are_capped(Backend::Sqlite).await;
}

#[tokio::test]
async fn merged_attributes_are_capped_postgres() {
    merged_attributes_are_capped(Backend::Postgres).await;
}

#[tokio::test]
async fn an_environment_stores_at_most_the_configured_companies_and_users() {
    let app = TestApp::spawn_configured(Backend::Sqlite, |s| s.ingest.entities = 3)
        .await
        .unwrap();
    let publishable = app.publishable_key("production").await;
    let post = |path: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url(path))
            .bearer_auth(&publishable)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for user in ["u1", "u2", "u3"] {
        assert_eq!(post("/user", json!({ "userId": user })).await.0, 200);
    }
    let (status, body) = post("/user", json!({ "userId": "u4" })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "ENTITY_LIMIT_REACHED", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("at most 3"),
        "{body}"
    );
    // A stored user is still updated at the cap, and companies have a cap of their own.
    assert_eq!(
        post(
            "/user",
            json!({ "userId": "u1", "attributes": { "plan": "pro" } })
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post("/company", json!({ "companyId": "c1", "userId": "u2" }))
            .await
            .0,
        200
    );
    // One bulk request that would pass the cap stores none of its items.
    let bulk = json!([
        { "type": "company", "companyId": "c2" },
        { "type": "company", "companyId": "c3" },
        { "type": "company", "companyId": "c4" },
    ]);
    let (status, body) = post("/bulk", bulk).await;
    assert_eq!(status, 422, "{body}");
    let production = app.environment("production").await;
    let counts = app.runtime.entities().counts();
    let counts = counts.iter().find(|c| c.environment_id == production.id).unwrap();
    assert_eq!((counts.companies, counts.users), (1, 3));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM companies")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

/// POSTs `body` to `path` of `app` with `key`, from the client address `forwarded_for` when
/// given (the test server trusts loopback as a proxy); answers the status, the `Retry-After`
/// header and the JSON body.
async fn post_from(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = app.client.post(app.url(path)).bearer_auth(key).json(&body);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// The caps on a company's or user's merged attributes are settings.
#[tokio::test]
async fn entity_caps_follow_the_settings() {
    let app = TestApp::spawn_configured(Backend::Sqlite, |s| {
        s.ingest.attributes = 3;
        s.ingest.bytes = 120;
    })
    .await
    .unwrap();
    let key = app.publishable_key("production").await;
    let user = |attributes: Value| json!({ "userId": "u1", "attributes": attributes });
    let (status, _, body) = post_from(&app, &key, "/user", user(json!({"a": 1, "b": 2, "c": 3})), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post_from(&app, &key, "/user", user(json!({"d": 4})), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("ENTITY_TOO_LARGE")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("at most 3"),
        "{body}"
    );
    let long = "x".repeat(120);
    let (status, _, body) = post_from(&app, &key, "/user", user(json!({ "a": long })), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("ENTITY_TOO_LARGE")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 120 are kept"),
        "{body}"
    );
}

/// Concurrent requests cannot pass the cap on stored entities together: the check runs inside
/// the write, one ingest at a time.
async fn the_entity_cap_holds_under_concurrent_requests(backend: Backend) {
    let Some(app) = TestApp::spawn_configured(backend, |s| s.ingest.entities = 5).await else {
        return;
    };
    let app = Arc::new(app);
    let key = app.publishable_key("production").await;
    let requests = (0..20).map(|i| {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move {
            post_from(&app, &key, "/user", json!({ "userId": format!("u{i}") }), None).await
        })
    });
    let mut statuses = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        let (status, _, body) = request.await.unwrap();
        assert!(
            status == 200 || (status == 422 && body["error"]["code"] == "ENTITY_LIMIT_REACHED"),
            "{status} {body}"
        );
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 5);
}

#[tokio::test]
async fn the_entity_cap_holds_under_concurrent_requests_sqlite() {
    the_entity_cap_holds_under_concurrent_requests(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_entity_cap_holds_under_concurrent_requests_postgres() {
    the_entity_cap_holds_under_concurrent_requests(Backend::Postgres).await;
}

/// Token buckets per client address and per API key: an empty bucket answers 429 with
/// `Retry-After`, other clients keep their own, and a bucket refills with time (moved by hand).
#[tokio::test]
async fn ingest_is_rate_limited_per_address_and_per_key() {
    let clock = Clock::manual(1_700_000_000_000);
    let app = TestApp::spawn_configured(Backend::Sqlite, |s| {
        s.clock = clock.clone();
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.ingest_rate_per_address = 2;
        s.ingest_rate_per_key = 4;
    })
    .await
    .unwrap();
    let key = app.publishable_key("production").await;
    let from = |address: &'static str| {
        let (app, key) = (&app, &key);
        async move {
            post_from(
                app,
                key,
                "/event",
                json!({ "event": "e", "userId": "u" }),
                Some(address),
            )
            .await
        }
    };
    assert_eq!(from("203.0.113.1").await.0, 200);
    assert_eq!(from("203.0.113.1").await.0, 200);
    let (status, retry_after, body) = from("203.0.113.1").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client address"),
        "{body}"
    );
    // Another client has its own bucket; the key's bucket of 4 runs out across clients.
    assert_eq!(from("203.0.113.2").await.0, 200);
    assert_eq!(from("203.0.113.3").await.0, 200);
    let (status, retry_after, body) = from("203.0.113.4").await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert!(
        body["error"]["message"].as_str().unwrap().contains("API key"),
        "{body}"
    );
    // Refused requests stored nothing; a second later the buckets have refilled.
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 4);
    clock.advance(1_000);
    assert_eq!(from("203.0.113.1").await.0, 200);
    assert_eq!(from("203.0.113.4").await.0, 200);
}

/// With every place of the write queue taken, one more ingest request is refused at once with
/// 429 and `Retry-After` instead of waiting without bound; the queued one completes.
async fn a_full_write_queue_refuses_with_429(backend: Backend) {
    let Some(app) = TestApp::spawn_configured(backend, |s| s.ingest.queue = 1).await else {
        return;
    };
    let app = Arc::new(app);
    let key = app.publishable_key("production").await;
    // Hold the users table so the first request waits inside its write.
    let mut blocker = app.pool.begin().await.unwrap();
    let hold = match backend {
        Backend::Sqlite => {
            "INSERT INTO users (environment_id, id, attributes, first_seen, last_seen) \
                            SELECT id, 'blocker', '{}', 0, 0 FROM environments LIMIT 1"
        }
        Backend::Postgres => "LOCK TABLE users IN EXCLUSIVE MODE",
    };
    sqlx::query(hold).execute(&mut *blocker).await.unwrap();
    let send = |user: &'static str| {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move { post_from(&app, &key, "/user", json!({ "userId": user }), None).await })
    };
    let mut first = send("queued-1");
    let mut second = send("queued-2");
    // Whichever arrives second finds the one place taken and is answered at once.
    let (refused, waiting) = tokio::select! {
        answer = &mut first => (answer.unwrap(), second),
        answer = &mut second => (answer.unwrap(), first),
    };
    let (status, retry_after, body) = refused;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "BUSY", "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    blocker.rollback().await.unwrap();
    let (status, _, body) = waiting.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post_from(&app, &key, "/user", json!({ "userId": "later" }), None).await;
    assert_eq!(status, 200, "a freed place is taken again: {body}");
}

#[tokio::test]
async fn a_full_write_queue_refuses_with_429_sqlite() {
    a_full_write_queue_refuses_with_429(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_full_write_queue_refuses_with_429_postgres() {
    a_full_write_queue_refuses_with_429(Backend::Postgres).await;
}

#[tokio::test]
async fn stored_company_attributes_are_remote_context() {
    let f = fixture(Backend::Sqlite).await.unwrap();
    let body = f.evaluated("context.company.id=acme").await;
    assert_eq!(body["remoteContextUsed"], false);
    assert_eq!(body["features"]["pro-only"]["isEnabled"], false);

    f.post_json(
        "/company",
        json!({ "companyId": "acme", "attributes": { "plan": "pro" } }),
    )
    .await;
    let body = f.evaluated("context.company.id=acme").await;
    assert_eq!(body["remoteContextUsed"], true);
    assert_eq!(body["features"]["pro-only"]["isEnabled"], true, "{body}");

    // The request's own attribute wins over the stored one.
    let body = f
        .evaluated("context.company.id=acme&context.company.plan=free")
        .await;
    assert_eq!(body["remoteContextUsed"], true);
    assert_eq!(body["features"]["pro-only"]["isEnabled"], false);

    let response = f
        .app
        .client
        .get(f.app.url("/features/enabled?context.company.id=acme"))
        .bearer_auth(&f.publishable)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["remoteContextUsed"], true);
    assert_eq!(body["features"]["pro-only"]["isEnabled"], true);

    let ofrep = |context: Value| {
        f.app
            .client
            .post(f.app.url("/ofrep/v1/evaluate/flags/pro-only"))
            .header("x-api-key", &f.publishable)
            .json(&json!({ "context": context }))
            .send()
    };
    let body: Value = ofrep(json!({ "company": { "id": "acme" } }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], true, "{body}");
    let body: Value = ofrep(json!({ "company": { "id": "acme", "plan": "free" } }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], false, "{body}");
    let response = f
        .app
        .client
        .post(f.app.url("/ofrep/v1/evaluate/flags"))
        .header("x-api-key", &f.publishable)
        .json(&json!({ "context": { "company": { "id": "acme" } } }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["flags"][0]["key"], "pro-only");
    assert_eq!(body["flags"][0]["value"], true, "{body}");
}

#[tokio::test]
async fn rows_written_by_another_replica_reach_the_cache_on_reload() {
    let f = fixture(Backend::Sqlite).await.unwrap();
    let attributes = serde_json::from_value(json!({ "plan": "pro" })).unwrap();
    let write = IngestWrite::Company {
        company: EntityUpsert {
            id: "elsewhere".into(),
            attributes,
            seen_at: Clock::system().now_ms(),
        },
        user_id: None,
    };
    // Another replica: the same database, its own service.
    let (other, _) = Service::open(&f.app.db.url, Clock::system()).await.unwrap();
    let key = Actor::api_key(f.environment_id);
    other.ingest(key, f.environment_id, vec![write]).await.unwrap();
    other.close().await;
    assert_eq!(
        f.evaluated("context.company.id=elsewhere").await["remoteContextUsed"],
        false
    );
    f.app.runtime.reload_entities().await.unwrap();
    let body = f.evaluated("context.company.id=elsewhere").await;
    assert_eq!(body["remoteContextUsed"], true);
    assert_eq!(body["features"]["pro-only"]["isEnabled"], true);
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_a_reason() {
    let f = fixture(Backend::Sqlite).await.unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("/user", "{not json", "not valid JSON"),
        ("/user", "", "not valid JSON"),
        ("/user", "[]", "the body must be a JSON object"),
        ("/user", r#"{"attributes": {}}"#, "userId is missing"),
        (
            "/user",
            r#"{"userId": true}"#,
            "userId must be a string or a number",
        ),
        ("/user", r#"{"userId": ""}"#, "userId must not be empty"),
        ("/user", r#"{"userId": "a\u0000b"}"#, "NUL"),
        (
            "/user",
            r#"{"userId": "u", "attributes": [1]}"#,
            "attributes must be a JSON object",
        ),
        (
            "/user",
            r#"{"userId": "u", "timestamp": "yesterday"}"#,
            "timestamp is not a valid date",
        ),
        ("/company", r#"{"userId": "u"}"#, "companyId is missing"),
        ("/event", r#"{"userId": "u"}"#, "event is missing"),
        ("/event", r#"{"event": "e"}"#, "userId is missing"),
        ("/features/events", r#"{"key": "f"}"#, "action is missing"),
        (
            "/features/events",
            r#"{"action": "check", "key": "f", "targetingVersion": "1"}"#,
            "targetingVersion must be a number",
        ),
        ("/bulk", r#"{"type": "user"}"#, "must be a JSON array"),
        (
            "/bulk",
            r#"[{"type": "user", "userId": "ok"}, {"type": "user"}]"#,
            "item 1: userId is missing",
        ),
        ("/bulk", r#"[{"userId": "u"}]"#, "item 0: type is missing"),
        ("/bulk", r#"[{"type": "feedback"}]"#, "unknown type"),
        ("/bulk", "[1]", "item 0: the item must be a JSON object"),
    ];
    for (path, body, reason) in cases {
        let (status, answer) = f.post(path, body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["success"], false);
        assert_eq!(answer["error"]["code"], "INVALID_REQUEST");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{path} {body}: {message}");
    }
    // A refused bulk writes nothing, not even its valid items.
    assert_eq!(f.stored(EntityKind::User, "ok").await, None);

    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let (status, _) = f.post("/bulk", &deep).await;
    assert_eq!(status, 400);

    let too_many = Value::Array(vec![json!({ "type": "user", "userId": "u" }); 1001]);
    let (status, answer) = f.post_json("/bulk", too_many).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 1000 items"));
    let thousand = Value::Array(vec![json!({ "type": "user", "userId": "u" }); 1000]);
    assert_eq!(f.post_json("/bulk", thousand).await.0, 200);
}

#[tokio::test]
async fn ingest_takes_any_key_of_the_environment() {
    let f = fixture(Backend::Sqlite).await.unwrap();
    let response = f
        .app
        .client
        .post(f.app.url("/user"))
        .json(&json!({ "userId": "u" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = f
        .app
        .client
        .post(f.app.url(&format!("/user?publishableKey={}", f.publishable)))
        .header("content-type", "text/plain")
        .body(json!({ "userId": "by-query" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(f.stored(EntityKind::User, "by-query").await.is_some());
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = f.app.apply(create).await.into_secret_key().unwrap();
    let response = f
        .app
        .client
        .post(f.app.url("/user"))
        .bearer_auth(&secret)
        .json(&json!({ "userId": "by-secret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = f
        .app
        .client
        .post(f.app.url("/user"))
        .bearer_auth("pub_nope_0000000000000000000000")
        .json(&json!({ "userId": "u" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// The real binary on `database_url`, killed and restarted on one SQLite file.
async fn start_server(database_url: &str) -> Server {
    let mut command = gatehouse(database_url);
    // The burst comes from one address faster than the default per-address rate.
    command
        .args(["--ingest-rate-per-address", "0"])
        .stderr(Stdio::null());
    serve(command).await
}

#[tokio::test]
async fn acknowledged_writes_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/g.db", dir.path().display());
    let mut server = start_server(&database_url).await;
    let publishable = publishable_key_of(&database_url);

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let successes = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let mut burst = Vec::new();
    for worker in 0..16 {
        let (client, acknowledged, successes) = (client.clone(), acknowledged.clone(), successes.clone());
        let (url, key) = (server.url("/company"), publishable.clone());
        burst.push(tokio::spawn(async move {
            for i in 0..100 {
                let id = format!("c-{worker}-{i}");
                let sent = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "companyId": id, "attributes": { "plan": "pro", "n": i } }))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().insert(id);
                        successes.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(response) => panic!("unexpected answer {}", response.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while successes.load(Ordering::SeqCst) < 200 {
        assert!(tokio::time::Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();
    for task in burst {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200);
    assert!(
        acknowledged.len() < 1600,
        "the kill landed after the burst; nothing was tested"
    );

    let restarted = start_server(&database_url).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let stored: HashSet<String> = sqlx::query_scalar(
        "SELECT c.id FROM companies c JOIN environments e ON e.id = c.environment_id WHERE e.key = 'production'",
    )
    .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged companies were lost: {lost:?}",
        lost.len()
    );
    // The restarted server loaded them as remote context.
    let some = acknowledged.iter().next().unwrap();
    let body: Value = client
        .get(restarted.url(&format!("/features/evaluated?context.company.id={some}")))
        .bearer_auth(&publishable)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["remoteContextUsed"], true, "{body}");
    pool.close().await;
}
