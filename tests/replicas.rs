//! Two server processes on one PostgreSQL database: a change made through one replica is served
//! by the other within a second (LISTEN/NOTIFY, with polling as the fallback).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{client, gatehouse, publishable_key_of, serve, Server, TestDb};
use gatehouse::config::Backend;
use serde_json::Value;

const ADMIN: (&str, &str) = ("admin@example.com", "replica-password-1");

/// A replica that signs its first admin in from the environment.
async fn start(database_url: &str) -> Server {
    let mut command = gatehouse(database_url);
    command
        .env("GATEHOUSE_ADMIN_EMAIL", ADMIN.0)
        .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN.1)
        .stderr(Stdio::inherit());
    serve(command).await
}

async fn is_enabled(url: &str, key: &str) -> Option<bool> {
    let body: Value = client()
        .get(format!(
            "{url}/features/evaluated?key=rollout&context.company.id=acme"
        ))
        .bearer_auth(key)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["features"]["rollout"]["isEnabled"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_is_served_by_the_other_within_a_second() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let database_url = db.url.expose().to_string();
    let first = start(&database_url).await;
    let second = start(&database_url).await;
    let key = publishable_key_of(&database_url);

    // Through the first replica: sign in and create the flag (No one everywhere).
    let admin = client();
    let signed_in = admin
        .post(format!("{}/api/public/sign_in", first.base))
        .form(&[("email", ADMIN.0), ("password", ADMIN.1)])
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let created = admin
        .post(format!("{}/api/edit/create_flag", first.base))
        .form(&[("key", "rollout"), ("name", "Rollout"), ("description", "")])
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{}: {}",
        created.status(),
        created.text().await.unwrap()
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while is_enabled(&second.base, &key).await != Some(false) {
        assert!(
            Instant::now() < deadline,
            "the second replica never served the new flag"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Change access through the first replica; time how long until the second serves it.
    let saved = admin
        .post(format!("{}/api/edit/save_access", first.base))
        .form(&[
            ("flag", "rollout"),
            ("environment", "production"),
            ("expected_version", "1"),
            ("form[mode]", "everyone"),
            ("form[companies]", ""),
            ("form[users]", ""),
            ("form[segments]", ""),
            ("form[rules][0][rollout]", ""),
            ("form[rules][0][rollout_by]", "company"),
            ("form[conditions][0][rule]", "0"),
            ("form[conditions][0][kind]", "company"),
            ("form[conditions][0][field]", ""),
            ("form[conditions][0][operator]", "IS"),
            ("form[conditions][0][value]", ""),
        ])
        .send()
        .await
        .unwrap();
    let changed_at = Instant::now();
    assert!(
        saved.status().is_success(),
        "{}: {}",
        saved.status(),
        saved.text().await.unwrap()
    );
    assert_eq!(
        is_enabled(&first.base, &key).await,
        Some(true),
        "the first replica serves its own change at once"
    );
    loop {
        if is_enabled(&second.base, &key).await == Some(true) {
            break;
        }
        assert!(
            changed_at.elapsed() < Duration::from_secs(1),
            "the second replica took longer than a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "second replica served the change after {:?}",
        changed_at.elapsed()
    );
}
