//! Webhooks: an endpoint gets the outbox events it asks for, signed as Standard Webhooks says
//! (checked with the specification's own `standardwebhooks` package from npm); a failed delivery
//! is retried on the schedule, survives a restart in between, and arrives once per event id; it
//! gives up after about 24 hours and an admin can redeliver it; paused endpoints get nothing; two
//! PostgreSQL replicas send each delivery once; only admins manage endpoints; every kind of flag
//! change is announced; a redirect is not followed; an endpoint that never answers is given up
//! after 10 s and delays no flag change. Time is the test's manual clock, never a wait, except
//! for that one 10 s timeout.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{new_flag, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::webhook::{DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookFormat};
use gatehouse::service::{Actor, Change, Service, WebhookChange, WebhookFields, WEBHOOK_RETRY_AFTER_MS};
use serde_json::{json, Value};

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
    answered: u16,
}

/// A webhook receiver on loopback that answers 500 to its first `failing` requests, then 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    failing: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let failing = receiver.failing.load(Ordering::SeqCst);
    let mut seen = receiver.seen.lock().unwrap();
    let answered = if seen.len() < failing { 500 } else { 200 };
    seen.push(Received {
        headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    async fn spawn(failing: usize) -> Receiver {
        let (failing, seen) = (Arc::new(AtomicUsize::new(failing)), Arc::default());
        let state = Receiver {
            url: String::new(),
            failing: failing.clone(),
            seen: Arc::clone(&seen),
        };
        let router = axum::Router::new()
            .route("/hooks/gatehouse", axum::routing::post(receive))
            .with_state(state);
        let addr = serve_on_loopback(router).await;
        Receiver {
            url: format!("http://{addr}/hooks/gatehouse"),
            failing,
            seen,
        }
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The `type` of every request it got, in order ("slack" for a Slack message).
    fn kinds(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|x| {
                serde_json::from_str::<Value>(&x.body).unwrap()["type"]
                    .as_str()
                    .unwrap_or("slack")
                    .to_string()
            })
            .collect()
    }

    /// The `webhook-id`s answered with 200, in order.
    fn delivered_ids(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| header(r, "webhook-id"))
            .collect()
    }
}

fn header(received: &Received, name: &str) -> String {
    received.headers[name].to_str().unwrap().to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn endpoint(url: &str, events: &[&str], format: WebhookFormat) -> Change {
    Change::Webhook(WebhookChange::Create(WebhookFields {
        name: "Deploy bot".into(),
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        format,
    }))
}

/// The endpoint `id` and its deliveries, newest first.
async fn endpoint_log(service: &Service, id: i64) -> (WebhookEndpoint, Vec<WebhookDelivery>) {
    service
        .webhooks(&Actor::cli(), 100)
        .await
        .unwrap()
        .into_iter()
        .find(|(e, _)| e.id == id)
        .expect("the endpoint is listed")
}

/// Checks every delivery with the `standardwebhooks` npm package (tests/sdk/verify-webhooks.mjs):
/// what it printed, or why it refused.
async fn reference_check(secret: &str, received: &[Received]) -> Result<String, String> {
    let sdk = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    assert!(
        sdk.join("node_modules/standardwebhooks").exists(),
        "run `make node-tools` (npm ci in tests/sdk) first"
    );
    let input: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({
                "secret": secret,
                "headers": {
                    "webhook-id": header(r, "webhook-id"),
                    "webhook-timestamp": header(r, "webhook-timestamp"),
                    "webhook-signature": header(r, "webhook-signature"),
                },
                "body": r.body,
            })
        })
        .collect();
    let input = serde_json::to_vec(&input).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("node")
            .arg(sdk.join("verify-webhooks.mjs"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&output.stderr).to_string()),
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_signed_survives_a_restart_and_arrives_once() {
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let receiver = Receiver::spawn(2).await;
    let id = app
        .apply(endpoint(&receiver.url, &["flag.*"], WebhookFormat::Standard))
        .await
        .into_id()
        .unwrap();
    app.apply(new_flag("checkout")).await;

    // The first attempt meets a 500: pending, retried 5 s later, not before.
    assert_eq!(app.service.deliver_webhooks().await.unwrap(), 0);
    let (_, log) = endpoint_log(&app.service, id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].status, log[0].attempts, log[0].last_status),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert_eq!(log[0].next_attempt_at, clock.now_ms() + WEBHOOK_RETRY_AFTER_MS[0]);
    app.service.deliver_webhooks().await.unwrap();
    assert_eq!(receiver.seen().len(), 1, "not due yet");
    clock.advance(WEBHOOK_RETRY_AFTER_MS[0]);
    assert_eq!(app.service.deliver_webhooks().await.unwrap(), 0);
    assert_eq!(receiver.seen().len(), 2);

    // A server started afresh on the same database takes the delivery up where it stood.
    let (restarted, _) = Service::serve(&app.db.url, clock.clone(), Default::default())
        .await
        .unwrap();
    clock.advance(WEBHOOK_RETRY_AFTER_MS[1]);
    assert_eq!(restarted.deliver_webhooks().await.unwrap(), 1);
    clock.advance(24 * 3_600_000);
    assert_eq!(restarted.deliver_webhooks().await.unwrap(), 0);
    assert_eq!(app.service.deliver_webhooks().await.unwrap(), 0);

    let seen = receiver.seen();
    assert_eq!(
        seen.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let ids: Vec<String> = seen.iter().map(|r| header(r, "webhook-id")).collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "one id across retries: {ids:?}");
    assert_eq!(receiver.delivered_ids().len(), 1, "delivered once");
    let body: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(body["type"], "flag.created");
    assert_eq!(
        body["data"]["subject"],
        json!({ "type": "flag", "key": "checkout" })
    );
    assert_eq!(body["data"]["actor"], "command line");
    assert_eq!(header(&seen[2], "content-type"), "application/json");
    let (stored, log) = endpoint_log(&restarted, id).await;
    assert_eq!((log[0].status, log[0].attempts), (DeliveryStatus::Delivered, 3));
    assert!(stored.secret.starts_with("whsec_"));
    assert_eq!(
        reference_check(&stored.secret, &seen).await,
        Ok("verified 3".to_string())
    );

    // A signature made with another secret fails the same check.
    let mut forged = seen[2].clone();
    let other = gatehouse::service::sign_webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &header(&forged, "webhook-id"),
        header(&forged, "webhook-timestamp").parse().unwrap(),
        forged.body.as_bytes(),
    );
    forged.headers.insert("webhook-signature", other.parse().unwrap());
    let refused = reference_check(&stored.secret, &[forged]).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("No matching signature")),
        "a forged signature must not verify: {refused:?}"
    );
    restarted.close().await;
}

#[tokio::test]
async fn after_about_a_day_of_failures_a_delivery_fails_and_an_admin_redelivers_it() {
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let receiver = Receiver::spawn(usize::MAX).await;
    let id = app
        .apply(endpoint(&receiver.url, &[], WebhookFormat::Standard))
        .await
        .into_id()
        .unwrap();
    app.apply(new_flag("checkout")).await;
    let start = clock.now_ms();
    app.service.deliver_webhooks().await.unwrap();
    for wait in WEBHOOK_RETRY_AFTER_MS {
        clock.advance(wait);
        app.service.deliver_webhooks().await.unwrap();
    }
    let elapsed = clock.now_ms() - start;
    assert!((23 * 3_600_000..=24 * 3_600_000).contains(&elapsed), "{elapsed}");
    let (_, log) = endpoint_log(&app.service, id).await;
    let delivery = log
        .iter()
        .find(|d| d.event_kind == "flag.created")
        .unwrap()
        .clone();
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Failed, 1 + WEBHOOK_RETRY_AFTER_MS.len() as i64)
    );
    clock.advance(WEBHOOK_RETRY_AFTER_MS[9]);
    let attempts = receiver.seen().len();
    app.service.deliver_webhooks().await.unwrap();
    assert_eq!(
        receiver.seen().len(),
        attempts,
        "a failed delivery is not sent again by itself"
    );

    // The admin's Redeliver button sends it again, now to a receiver that answers.
    receiver.failing.store(0, Ordering::SeqCst);
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    let (id_text, delivery_text) = (id.to_string(), delivery.id.to_string());
    let form = [
        ("id", id_text.as_str()),
        ("action", "redeliver"),
        ("delivery", delivery_text.as_str()),
    ];
    let answer = app.call(&admin, "/api/admin/webhook_action", &form).await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    assert!(app.service.deliver_webhooks().await.unwrap() >= 1);
    let (_, log) = endpoint_log(&app.service, id).await;
    let again = log.iter().find(|d| d.id == delivery.id).unwrap();
    assert_eq!((again.status, again.attempts), (DeliveryStatus::Delivered, 1));
}

#[tokio::test]
async fn endpoints_get_only_what_they_ask_for_and_nothing_while_paused() {
    let (app, _clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let (archives, paused, slack) = (
        Receiver::spawn(0).await,
        Receiver::spawn(0).await,
        Receiver::spawn(0).await,
    );
    app.apply(endpoint(
        &archives.url,
        &["flag.archived"],
        WebhookFormat::Standard,
    ))
    .await;
    let paused_id = app
        .apply(endpoint(&paused.url, &["flag.*"], WebhookFormat::Standard))
        .await
        .into_id()
        .unwrap();
    app.apply(endpoint(&slack.url, &["flag.created"], WebhookFormat::Slack))
        .await;
    app.apply(Change::Webhook(WebhookChange::SetPaused {
        id: paused_id,
        paused: true,
    }))
    .await;
    app.apply(new_flag("checkout")).await;
    app.apply(Change::SetArchived {
        flag: "checkout".into(),
        archived: true,
    })
    .await;
    app.service.deliver_webhooks().await.unwrap();
    assert_eq!(archives.kinds(), ["flag.archived"]);
    assert!(paused.seen().is_empty());
    let text: Value = serde_json::from_str(&slack.seen()[0].body).unwrap();
    assert_eq!(text, json!({ "text": "command line: flag `checkout`, created" }));

    // Resumed, it gets what happens from then on, not what it missed.
    app.apply(Change::Webhook(WebhookChange::SetPaused {
        id: paused_id,
        paused: false,
    }))
    .await;
    app.apply(Change::SetArchived {
        flag: "checkout".into(),
        archived: false,
    })
    .await;
    app.service.deliver_webhooks().await.unwrap();
    assert_eq!(paused.kinds(), ["flag.unarchived"]);
    assert_eq!(archives.kinds(), ["flag.archived"]);
}

#[tokio::test]
async fn two_postgres_replicas_send_each_delivery_once() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Postgres, now_ms()).await else {
        return;
    };
    let (other, _) = Service::serve(&app.db.url, clock.clone(), Default::default())
        .await
        .unwrap();
    let receiver = Receiver::spawn(0).await;
    app.apply(endpoint(
        &receiver.url,
        &["flag.created"],
        WebhookFormat::Standard,
    ))
    .await;
    for n in 0..45 {
        app.apply(new_flag(&format!("flag-{n}"))).await;
    }
    let (a, b) = tokio::join!(app.service.deliver_webhooks(), other.deliver_webhooks());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 45, "{a} + {b}");
    let mut ids = receiver.delivered_ids();
    assert_eq!(ids.len(), 45);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 45, "no event twice");
    // Passes after the settling minute find nothing more to make or send.
    clock.advance(120_000);
    let (a, b) = tokio::join!(app.service.deliver_webhooks(), other.deliver_webhooks());
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));
    assert_eq!(receiver.seen().len(), 45);
    other.close().await;
}

#[tokio::test]
async fn only_admins_manage_endpoints_and_the_audit_keeps_no_secret() {
    let (app, _clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let form = [
        ("name", "Slack #releases"),
        ("url", "https://hooks.slack.com/services/T000/B000/XXXXSECRETPATH"),
        ("events", "flag.*, segment.*"),
        ("format", "slack"),
    ];
    app.add_member("editor@example.com", Role::Editor).await;
    app.add_member("admin@example.com", Role::Admin).await;
    let anonymous = common::client();
    let editor = app.signed_in("editor@example.com").await;
    let admin = app.signed_in("admin@example.com").await;
    for refused in [&anonymous, &editor] {
        let answer = app.call(refused, "/api/admin/save_webhook", &form).await;
        assert!(answer.status().is_client_error(), "{}", answer.status());
        let listed = app.call(refused, "/api/admin/webhooks", &[]).await;
        assert!(listed.status().is_client_error(), "{}", listed.status());
    }
    assert!(app.service.webhooks(&Actor::cli(), 1).await.unwrap().is_empty());

    let bad = [
        ("name", "x"),
        ("url", "ftp://example.com"),
        ("events", ""),
        ("format", "standard"),
    ];
    let answer = app.call(&admin, "/api/admin/save_webhook", &bad).await;
    assert_eq!(answer.status(), 422);
    assert!(answer.text().await.unwrap().contains("http://"));

    let answer = app.call(&admin, "/api/admin/save_webhook", &form).await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let listed = app.service.webhooks(&Actor::cli(), 1).await.unwrap();
    let (stored, _) = &listed[0];
    assert_eq!(stored.events, ["flag.*", "segment.*"]);
    assert_eq!(stored.format, WebhookFormat::Slack);

    let page = admin.get(app.url("/settings/webhooks")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Slack #releases") && html.contains(&stored.secret),
        "the page shows the endpoint and its secret"
    );

    let audit = app
        .service
        .audit_page(&Actor::cli(), &Default::default(), 0, 50)
        .await
        .unwrap();
    let text = serde_json::to_string(&audit.entries).unwrap();
    assert!(
        text.contains("webhook.created") && text.contains("https://hooks.slack.com/…"),
        "{text}"
    );
    assert!(
        !text.contains("SECRETPATH") && !text.contains(&stored.secret),
        "{text}"
    );
}

#[tokio::test]
async fn a_flag_that_became_stale_is_announced_once() {
    const DAY: i64 = 86_400_000;
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let receiver = Receiver::spawn(0).await;
    app.apply(endpoint(
        &receiver.url,
        &["flag.became_stale"],
        WebhookFormat::Standard,
    ))
    .await;
    app.apply(new_flag("checkout")).await;
    let stages = app.service.release_stages(&Actor::cli()).await.unwrap();
    let last = stages.iter().max_by_key(|s| s.sort_order).unwrap().id;
    app.apply(Change::MoveStage {
        flag: "checkout".into(),
        stage_id: last,
    })
    .await;
    app.apply(common::set_access(
        "checkout",
        "production",
        gatehouse::model::AccessRules::Everyone,
        None,
    ))
    .await;
    assert_eq!(app.service.announce_stale_flags().await.unwrap(), 0);
    clock.advance(14 * DAY);
    assert_eq!(app.service.announce_stale_flags().await.unwrap(), 1);
    assert_eq!(app.service.announce_stale_flags().await.unwrap(), 0, "once");
    clock.advance(DAY);
    assert_eq!(app.service.announce_stale_flags().await.unwrap(), 0, "still once");
    app.service.deliver_webhooks().await.unwrap();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["type"], "flag.became_stale");
    assert_eq!(body["data"]["subject"]["key"], "checkout");
    assert_eq!(
        body["data"]["after"]["reasons"][0],
        "released: in the final stage with Everyone in production for 14 days"
    );
}

/// Serves `router` on a loopback port; its address.
async fn serve_on_loopback(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_a_hanging_endpoint_delays_no_change() {
    let (app, _clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    // An endpoint that redirects to another address the admin never configured.
    let elsewhere = Receiver::spawn(0).await;
    let target = elsewhere.url.clone();
    let redirecting = serve_on_loopback(axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let target = target.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
        }),
    ))
    .await;
    let redirect_id = app
        .apply(endpoint(
            &format!("http://{redirecting}/hook"),
            &["flag.created"],
            WebhookFormat::Standard,
        ))
        .await
        .into_id()
        .unwrap();
    app.apply(new_flag("checkout")).await;
    app.service.deliver_webhooks().await.unwrap();
    assert!(elsewhere.seen().is_empty(), "the redirect's target got a request");
    let (_, log) = endpoint_log(&app.service, redirect_id).await;
    assert_eq!(
        (log[0].status, log[0].last_status),
        (DeliveryStatus::Pending, Some(307))
    );
    assert!(
        log[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("redirects are not followed"),
        "{log:?}"
    );
    app.apply(Change::Webhook(WebhookChange::SetPaused {
        id: redirect_id,
        paused: true,
    }))
    .await;

    // An endpoint that never answers: the attempt gives up after 10 s, and flag changes made
    // meanwhile are stored and served at once.
    let hanging = serve_on_loopback(axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            StatusCode::OK
        }),
    ))
    .await;
    let hanging_id = app
        .apply(endpoint(
            &format!("http://{hanging}/hook"),
            &["flag.*"],
            WebhookFormat::Standard,
        ))
        .await
        .into_id()
        .unwrap();
    app.apply(new_flag("search")).await;
    let sender = app.service.clone();
    let started = std::time::Instant::now();
    let sending = tokio::spawn(async move { sender.deliver_webhooks().await.map(|_| started.elapsed()) });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let change = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        app.service.apply(
            &Actor::cli(),
            common::set_access(
                "search",
                "production",
                gatehouse::model::AccessRules::Everyone,
                None,
            ),
        ),
    )
    .await
    .expect("a flag change waits for no delivery");
    change.unwrap();
    let served = app.evaluated("production", "context.company.id=acme").await;
    assert_eq!(served["features"]["search"]["isEnabled"], true);
    assert!(
        !sending.is_finished(),
        "the delivery is still waiting for its answer"
    );
    let took = sending.await.unwrap().unwrap();
    assert!(
        took >= std::time::Duration::from_secs(9) && took < std::time::Duration::from_secs(15),
        "{took:?}"
    );
    let (_, log) = endpoint_log(&app.service, hanging_id).await;
    let attempted = log.iter().find(|d| d.attempts == 1).expect("one attempt");
    assert_eq!(attempted.status, DeliveryStatus::Pending);
    assert_eq!(
        attempted.last_error.as_deref(),
        Some("no answer within 10 s"),
        "{log:?}"
    );
}

#[tokio::test]
async fn every_kind_of_flag_change_reaches_an_endpoint_that_asks_for_flags() {
    let (app, clock) = TestApp::spawn_manual(Backend::Sqlite, now_ms()).await.unwrap();
    let receiver = Receiver::spawn(0).await;
    app.apply(endpoint(&receiver.url, &["flag.*"], WebhookFormat::Standard))
        .await;
    app.apply(new_flag("checkout")).await;
    app.apply(common::set_access(
        "checkout",
        "production",
        gatehouse::model::AccessRules::Everyone,
        None,
    ))
    .await;
    let stages = app.service.release_stages(&Actor::cli()).await.unwrap();
    let beta = stages.iter().find(|s| s.name == "Beta").unwrap().id;
    app.apply(Change::MoveStage {
        flag: "checkout".into(),
        stage_id: beta,
    })
    .await;
    app.apply(Change::SetRemoteConfig {
        flag: "checkout".into(),
        environment: "production".into(),
        variants: serde_json::from_value(
            json!([{ "key": "blue", "payload": { "color": "#00f" }, "isDefault": true }]),
        )
        .unwrap(),
        expected_version: None,
    })
    .await;
    app.apply(Change::ScheduleChange {
        flag: "checkout".into(),
        at: clock.now_ms() + 60_000,
        planned: gatehouse::model::PlannedChange::SetArchived { archived: true },
    })
    .await;
    clock.advance(120_000);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 1);
    app.service.deliver_webhooks().await.unwrap();
    let kinds = receiver.kinds();
    assert!(
        !kinds.iter().any(|k| k == "slack"),
        "every message names its type: {kinds:?}"
    );
    for wanted in [
        "flag.created",
        "flag.access_rules_changed",
        "flag.stage_changed",
        "flag.remote_config_changed",
        "flag.change_scheduled",
        "flag.scheduled_change_applied",
        "flag.archived",
    ] {
        assert!(
            kinds.iter().any(|k| k == wanted),
            "{wanted} missing from {kinds:?}"
        );
    }
    let ids: std::collections::BTreeSet<String> = receiver.delivered_ids().into_iter().collect();
    assert_eq!(ids.len(), kinds.len(), "each event once: {kinds:?}");
}
