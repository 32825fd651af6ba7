//! Two server processes on one PostgreSQL database: a change made through one replica is served
//! by the other within a second (LISTEN/NOTIFY, with polling as the fallback).

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{client, gatehouse, TestDb};
use gatehouse::config::Backend;
use serde_json::Value;

const ADMIN: (&str, &str) = ("admin@example.com", "replica-password-1");

struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(database_url: &str) -> Replica {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = gatehouse(database_url)
        .args(["serve", "--addr", &addr])
        .env("GATEHOUSE_ADMIN_EMAIL", ADMIN.0)
        .env("GATEHOUSE_ADMIN_PASSWORD", ADMIN.1)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let replica = Replica {
        child,
        url: format!("http://{addr}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/readyz", replica.url)).await {
            if response.status() == 200 {
                return replica;
            }
        }
        assert!(Instant::now() < deadline, "replica {addr} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn publishable_key(database_url: &str) -> String {
    let output = gatehouse(database_url).args(["keys", "list"]).output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("production\tpublishable\t"))
        .and_then(|l| l.split('\t').nth(2))
        .expect("a production publishable key")
        .to_string()
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
    let key = publishable_key(&database_url);

    // Through the first replica: sign in and create the flag (No one everywhere).
    let admin = client();
    let signed_in = admin
        .post(format!("{}/api/public/sign_in", first.url))
        .form(&[("email", ADMIN.0), ("password", ADMIN.1)])
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let created = admin
        .post(format!("{}/api/edit/create_flag", first.url))
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
    while is_enabled(&second.url, &key).await != Some(false) {
        assert!(
            Instant::now() < deadline,
            "the second replica never served the new flag"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Change access through the first replica; time how long until the second serves it.
    let saved = admin
        .post(format!("{}/api/edit/save_access", first.url))
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
        is_enabled(&first.url, &key).await,
        Some(true),
        "the first replica serves its own change at once"
    );
    loop {
        if is_enabled(&second.url, &key).await == Some(true) {
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
