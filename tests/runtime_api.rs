//! The public evaluation API as SDKs use it: keys, definitions, remote evaluation, OFREP.

mod common;

use common::{new_flag, set_access, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::{AccessRules, TargetedAccess};
use gatehouse::service::{self, AccessChange, Actor, Change};
use serde_json::{json, Value};

struct Fixture {
    app: TestApp,
    publishable: String,
    secret: String,
}

/// A server with two flags in production: `everyone` (Everyone) and `acme-only` (company acme).
async fn fixture() -> Fixture {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for key in ["everyone", "acme-only"] {
        app.apply(new_flag(key)).await;
    }
    app.apply(set_access(
        "everyone",
        "production",
        AccessRules::Everyone,
        Some(1),
    ))
    .await;
    let acme = AccessRules::Some(TargetedAccess {
        companies: vec!["acme".into()],
        ..Default::default()
    });
    app.apply(set_access("acme-only", "production", acme, None)).await;
    let publishable = app.publishable_key("production").await;
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let secret = app.apply(create).await.into_secret_key().unwrap();
    Fixture {
        app,
        publishable,
        secret,
    }
}

impl Fixture {
    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.app.client.get(self.app.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ofrep(&self, path: &str, key: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(self.app.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn features_serves_compiled_definitions_to_secret_keys_only() {
    let f = fixture().await;
    let (status, body) = f.get("/features", Some(&f.secret)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert!(body["flagStateVersion"].as_i64().unwrap() > 0);
    let features = body["features"].as_array().unwrap();
    let keys: Vec<_> = features.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["acme-only", "everyone"]);
    assert_eq!(
        features[1]["targeting"]["rules"][0]["filter"],
        json!({ "type": "constant", "value": true })
    );
    assert_eq!(features[0]["targeting"]["version"], 2);

    let (status, body) = f.get("/features", Some(&f.publishable)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "SECRET_KEY_REQUIRED");
    let (status, body) = f.get("/features", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["success"], false);
    let (status, body) = f.get("/features", Some("sec_nope_0000000000000000000000")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "INVALID_API_KEY");
}

#[tokio::test]
async fn a_revoked_secret_key_stops_authenticating_at_once() {
    let f = fixture().await;
    assert_eq!(f.get("/features", Some(&f.secret)).await.0, 200);
    let revoke = Change::RevokeSecretKey {
        prefix: f.secret[..16].to_string(),
    };
    f.app.apply(revoke).await;
    let (status, body) = f.get("/features", Some(&f.secret)).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn features_evaluated_answers_for_the_context_in_the_query() {
    let f = fixture().await;
    let path = format!(
        "/features/evaluated?context.company.id=acme&context.user.id=u1&publishableKey={}",
        f.publishable
    );
    let (status, body) = f.get(&path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["features"]["acme-only"]["isEnabled"], true);
    assert_eq!(body["features"]["acme-only"]["targetingVersion"], 2);
    assert_eq!(body["features"]["everyone"]["isEnabled"], true);
    assert_eq!(body["remoteContextUsed"], false);

    let (_, body) = f
        .get(
            "/features/evaluated?context.company.id=globex",
            Some(&f.publishable),
        )
        .await;
    assert_eq!(body["features"]["acme-only"]["isEnabled"], false);

    let (_, body) = f
        .get(
            "/features/enabled?context.company.id=globex",
            Some(&f.publishable),
        )
        .await;
    let enabled: Vec<_> = body["features"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(enabled, ["everyone"]);

    let (_, body) = f
        .get("/features/evaluated?key=everyone", Some(&f.publishable))
        .await;
    assert_eq!(body["features"].as_object().unwrap().len(), 1);
    let (status, body) = f.get("/features/evaluated?key=nope", Some(&f.publishable)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "FLAG_NOT_FOUND");
}

#[tokio::test]
async fn wait_for_version_is_validated() {
    let f = fixture().await;
    let (status, body) = f.get("/features?waitForVersion=abc", Some(&f.secret)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "INVALID_PARAMETER");
    let (_, current) = f.get("/features", Some(&f.secret)).await;
    let version = current["flagStateVersion"].as_i64().unwrap();
    let (status, body) = f
        .get(&format!("/features?waitForVersion={version}"), Some(&f.secret))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["flagStateVersion"], version);
}

#[tokio::test]
async fn ofrep_single_flag_evaluation() {
    let f = fixture().await;
    let key = Some(f.publishable.as_str());
    let response = f
        .ofrep(
            "/ofrep/v1/evaluate/flags/acme-only",
            key,
            r#"{"context":{"targetingKey":"u1","company":{"id":"acme"}}}"#,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["value"], true);
    assert_eq!(body["reason"], "TARGETING_MATCH");

    let body: Value = f
        .ofrep("/ofrep/v1/evaluate/flags/acme-only", key, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["value"].clone(), body["reason"].clone()),
        (json!(false), json!("DEFAULT"))
    );
    let body: Value = f
        .ofrep("/ofrep/v1/evaluate/flags/acme-only", key, "{}")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], false);

    let response = f.ofrep("/ofrep/v1/evaluate/flags/missing", key, "{}").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["key"].clone(), body["errorCode"].clone()),
        (json!("missing"), json!("FLAG_NOT_FOUND"))
    );

    let response = f
        .ofrep("/ofrep/v1/evaluate/flags/everyone", key, "{not json")
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errorCode"],
        "PARSE_ERROR"
    );
    let response = f
        .ofrep("/ofrep/v1/evaluate/flags/everyone", key, r#"{"context":"x"}"#)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errorCode"],
        "INVALID_CONTEXT"
    );

    assert_eq!(
        f.ofrep("/ofrep/v1/evaluate/flags/everyone", None, "{}")
            .await
            .status(),
        401
    );
    assert_eq!(
        f.ofrep("/ofrep/v1/evaluate/flags/everyone", Some("pub_nope"), "{}")
            .await
            .status(),
        401
    );
    let bearer = f
        .app
        .client
        .post(f.app.url("/ofrep/v1/evaluate/flags/everyone"))
        .bearer_auth(&f.secret)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn ofrep_bulk_is_sorted_with_an_etag_and_answers_304() {
    let f = fixture().await;
    let key = Some(f.publishable.as_str());
    let response = f
        .ofrep(
            "/ofrep/v1/evaluate/flags",
            key,
            r#"{"context":{"company":{"id":"acme"}}}"#,
        )
        .await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "strong ETag: {etag}");
    let body: Value = response.json().await.unwrap();
    let keys: Vec<_> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["acme-only", "everyone"]);
    assert_eq!(body["eventStreams"][0]["type"], "sse");

    let again = f
        .app
        .client
        .post(f.app.url("/ofrep/v1/evaluate/flags"))
        .header("x-api-key", &f.publishable)
        .header("if-none-match", &etag)
        .body(r#"{"context":{"company":{"id":"acme"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let other_context = f
        .app
        .client
        .post(f.app.url("/ofrep/v1/evaluate/flags"))
        .header("x-api-key", &f.publishable)
        .header("if-none-match", &etag)
        .body(r#"{"context":{"company":{"id":"globex"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(other_context.status(), 200);
}

#[tokio::test]
async fn stale_saves_are_refused_and_versions_grow() {
    let f = fixture().await;
    let actor = Actor::cli();
    let stale = set_access("everyone", "production", AccessRules::NoOne, Some(1));
    let result = f.app.service.apply(&actor, stale).await;
    assert!(
        matches!(result, Err(service::ServiceError::Conflict(_))),
        "{result:?}"
    );
    let current = set_access("everyone", "production", AccessRules::NoOne, Some(2));
    let version = f.app.apply(current).await.into_version().unwrap();
    assert_eq!(version, 3);
    let (_, body) = f.get("/features/evaluated", Some(&f.publishable)).await;
    assert_eq!(body["features"]["everyone"]["isEnabled"], false);
    f.app
        .apply(Change::SetAccess {
            flag: "everyone".into(),
            environment: "production".into(),
            change: AccessChange::RollBackTo(2),
            expected_version: None,
        })
        .await;
    let (_, body) = f.get("/features/evaluated", Some(&f.publishable)).await;
    assert_eq!(body["features"]["everyone"]["isEnabled"], true);
    assert_eq!(body["features"]["everyone"]["targetingVersion"], 4);
}

#[tokio::test]
async fn unknown_references_and_cycles_are_refused_on_save() {
    let f = fixture().await;
    let actor = Actor::cli();
    let rules: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [{ "kind": "flagAccess", "flag": "acme-only", "enabled": true }], "rolloutPercentage": 100 }]
    }))
    .unwrap();
    f.app.apply(set_access("everyone", "staging", rules, None)).await;
    let back: AccessRules = serde_json::from_value(json!({
        "mode": "some",
        "rules": [{ "conditions": [{ "kind": "flagAccess", "flag": "everyone", "enabled": true }], "rolloutPercentage": 100 }]
    }))
    .unwrap();
    let result = f
        .app
        .service
        .apply(&actor, set_access("acme-only", "staging", back, None))
        .await;
    assert!(
        matches!(&result, Err(service::ServiceError::Invalid { field, .. }) if field == "rules"),
        "{result:?}"
    );
    let unknown: AccessRules =
        serde_json::from_value(json!({ "mode": "some", "segments": ["nope"] })).unwrap();
    let result = f
        .app
        .service
        .apply(&actor, set_access("acme-only", "staging", unknown, None))
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn a_rotated_publishable_key_works_through_its_grace_period_and_keys_are_named() {
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, 1_793_613_600_000)
        .await
        .unwrap();
    let status = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/features/evaluated"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let old = app.publishable_key("production").await;
    let rotate = |grace_hours| Change::RotatePublishableKey {
        environment: "production".into(),
        grace_hours,
    };
    let new = app.apply(rotate(1)).await.into_secret_key().unwrap();
    assert!(new.starts_with("pub_prod_") && new != old, "{new}");
    assert_eq!(
        app.publishable_key("production").await,
        new,
        "the environment's key is the new one"
    );
    assert_eq!(
        (status(old.clone()).await, status(new.clone()).await),
        (200, 200),
        "both work in the grace period"
    );
    clock.advance(3_600_001);
    app.service.runtime().unwrap().reload_keys().await.unwrap();
    assert_eq!(
        (status(old.clone()).await, status(new.clone()).await),
        (403, 200),
        "the old one stops when it ends"
    );

    // Without a grace period the replaced key stops at once; more than a week is refused.
    let newest = app.apply(rotate(0)).await.into_secret_key().unwrap();
    assert_eq!(
        (status(new.clone()).await, status(newest.clone()).await),
        (403, 200)
    );
    let refused = app.service.apply(&Actor::cli(), rotate(200)).await;
    assert!(
        matches!(refused, Err(service::ServiceError::Invalid { .. })),
        "{refused:?}"
    );

    // Keys carry names: given at creation, changed later, shown in the list.
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: "Billing service".into(),
    };
    app.apply(create).await;
    let (_, keys) = app.service.api_keys(&Actor::cli()).await.unwrap();
    let secret = keys.iter().find(|k| k.public_value.is_none()).unwrap();
    assert_eq!(secret.name, "Billing service");
    app.apply(Change::NameApiKey {
        id: secret.id,
        name: "Billing".into(),
    })
    .await;
    let (_, keys) = app.service.api_keys(&Actor::cli()).await.unwrap();
    assert_eq!(keys.iter().find(|k| k.id == secret.id).unwrap().name, "Billing");
    let rotated = keys
        .iter()
        .filter(|k| k.public_value.is_some() && k.environment_id == secret.environment_id);
    assert_eq!(rotated.count(), 3, "the list keeps replaced publishable keys");
    let unknown = app
        .service
        .apply(
            &Actor::cli(),
            Change::NameApiKey {
                id: 999_999,
                name: "x".into(),
            },
        )
        .await;
    assert!(
        matches!(unknown, Err(service::ServiceError::NotFound(_))),
        "{unknown:?}"
    );
    let too_long = app
        .service
        .apply(
            &Actor::cli(),
            Change::NameApiKey {
                id: secret.id,
                name: "x".repeat(81),
            },
        )
        .await;
    assert!(
        matches!(too_long, Err(service::ServiceError::Invalid { .. })),
        "{too_long:?}"
    );
}
