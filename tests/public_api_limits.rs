//! The public API's guard rails and operational surface: body, query and context limits, CORS
//! for browser routes only, Prometheus metrics and the OpenAPI description.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use serde_json::{json, Value};

async fn app_and_key() -> (TestApp, String) {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let key = app.publishable_key("production").await;
    (app, key)
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let (app, key) = app_and_key().await;
    let big = json!({ "userId": "u", "attributes": { "blob": "x".repeat(1024 * 1024 + 10) } }).to_string();
    for path in ["/user", "/bulk", "/ofrep/v1/evaluate/flags"] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&key)
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        let body: Value = response.json().await.unwrap();
        if path.starts_with("/ofrep/") {
            // OFREP's error shape, which its providers read.
            assert_eq!(body["errorCode"], "GENERAL", "{path}");
            assert!(
                body["errorDetails"].as_str().unwrap().contains("larger than"),
                "{body}"
            );
        } else {
            assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{path}");
        }
    }
    // A body without a declared length (chunked) is cut off at the limit too.
    let (status, body) = post_chunked(&app, &format!("/company?publishableKey={key}"), big.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("PAYLOAD_TOO_LARGE"), "{body}");
}

/// Sends `body` with `Transfer-Encoding: chunked` over a raw connection; the status and body text.
async fn post_chunked(app: &TestApp, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer and close before reading everything; that is the point.
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, answer)
}

#[tokio::test]
async fn long_queries_and_large_contexts_are_refused() {
    let (app, key) = app_and_key().await;
    let long = format!("/features/evaluated?context.other.x={}", "y".repeat(17 * 1024));
    let response = app
        .client
        .get(app.url(&long))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 414);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "URI_TOO_LONG");

    let fields: Vec<String> = (0..201).map(|i| format!("context.other.f{i}=v")).collect();
    let response = app
        .client
        .get(app.url(&format!("/features/evaluated?{}", fields.join("&"))))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CONTEXT_TOO_LARGE");
    let fields: Vec<String> = (0..200).map(|i| format!("context.other.f{i}=v")).collect();
    let response = app
        .client
        .get(app.url(&format!("/features/evaluated?{}", fields.join("&"))))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let context: serde_json::Map<String, Value> = (0..201).map(|i| (format!("f{i}"), json!(i))).collect();
    let response = app
        .client
        .post(app.url("/ofrep/v1/evaluate/flags"))
        .header("x-api-key", &key)
        .json(&json!({ "context": context }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
}

#[tokio::test]
async fn browser_routes_answer_cors_and_the_admin_ui_does_not() {
    let (app, key) = app_and_key().await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/ofrep/v1/evaluate/flags"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,x-api-key,if-none-match,reflag-sdk-version",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "content-type",
        "authorization",
        "x-api-key",
        "if-none-match",
        "reflag-sdk-version",
    ] {
        assert!(allowed.contains(header), "{header} missing from {allowed}");
    }
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    for method in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(method), "{method} missing from {methods}");
    }
    assert_eq!(headers["access-control-max-age"], "3600");
    assert!(headers["vary"].to_str().unwrap().contains("origin"));

    // A GET-only route answers its preflight too (not 405), and its answers carry the origin.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/features/evaluated"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let refused = app
        .client
        .get(app.url("/features/evaluated"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");

    let response = app
        .client
        .post(app.url("/ofrep/v1/evaluate/flags"))
        .header("origin", "https://shop.example")
        .header("x-api-key", &key)
        .json(&json!({ "context": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase(),
        "etag"
    );
    assert!(response.headers().contains_key("etag"));

    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/bulk"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    for (method, path) in [
        (reqwest::Method::GET, "/api/public/whoami"),
        (reqwest::Method::OPTIONS, "/api/public/whoami"),
        (reqwest::Method::GET, "/sign-in"),
        (reqwest::Method::OPTIONS, "/sign-in"),
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/features"),
        (reqwest::Method::OPTIONS, "/features"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let cors: Vec<_> = response
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{method} {path} answered CORS headers {cors:?}");
    }
}

#[tokio::test]
async fn metrics_count_requests_evaluations_and_environments() {
    let (app, key) = app_and_key().await;
    for _ in 0..3 {
        let response = app
            .client
            .get(app.url("/features/evaluated?context.company.id=acme"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    app.client
        .post(app.url("/company"))
        .bearer_auth(&key)
        .json(&json!({ "companyId": "acme" }))
        .send()
        .await
        .unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        "# TYPE gatehouse_http_requests_total counter",
        r#"gatehouse_http_requests_total{route="/features/evaluated",method="GET",status="200"} 3"#,
        r#"gatehouse_http_requests_total{route="/company",method="POST",status="200"} 1"#,
        "# TYPE gatehouse_http_request_duration_seconds histogram",
        r#"gatehouse_http_request_duration_seconds_count{route="/features/evaluated"} 3"#,
        r#"gatehouse_http_request_duration_seconds_bucket{route="/features/evaluated",le="+Inf"} 3"#,
        "gatehouse_evaluations_total ",
        r#"gatehouse_flag_state_version{environment="production"}"#,
        r#"gatehouse_snapshot_age_seconds{environment="production"}"#,
        r#"gatehouse_cached_companies{environment="production"} 1"#,
        r#"gatehouse_cached_users{environment="production"} 0"#,
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample line: {line}");
    }
}

#[tokio::test]
async fn openapi_describes_every_public_route() {
    let (app, _) = app_and_key().await;
    let response = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/features",
        "/features/evaluated",
        "/features/enabled",
        "/sse/server",
        "/user",
        "/company",
        "/event",
        "/features/events",
        "/bulk",
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/evaluate/flags/{key}",
        "/ofrep/v1/events",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    let schemes = document["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyHeader"]["name"], "X-API-Key");
    assert_eq!(schemes["publishableKeyQuery"]["in"], "query");
    // Every operation answers something and every referenced schema exists.
    let text = document.to_string();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "missing schema {name}");
    }
}

#[tokio::test]
async fn unknown_methods_share_one_metrics_series() {
    let (app, key) = app_and_key().await;
    for method in ["BREW", "PROPFIND", "X-ANYTHING"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client
            .request(method, app.url("/features/evaluated"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BREW") && !text.contains("PROPFIND"), "{text}");
    assert!(
        text.contains(r#"route="/features/evaluated",method="OTHER",status="405"} 3"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_ask_for_the_token_when_one_is_set() {
    let db = common::TestDb::new(Backend::Sqlite).await.unwrap();
    let settings = gatehouse::startup::ServerSettings {
        metrics_token: Some("m3trics-token".into()),
        ..gatehouse::startup::ServerSettings::local(db.url.clone(), "127.0.0.1:0")
    };
    let app = gatehouse::startup::Application::build(settings).await.unwrap();
    let url = format!("http://{}/metrics", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = common::client();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .bearer_auth("m3trics-token")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right
        .text()
        .await
        .unwrap()
        .contains("gatehouse_evaluations_total"));
}

#[tokio::test]
async fn live_update_streams_are_capped_and_a_closed_one_frees_its_place() {
    let app = common::TestApp::spawn_configured(Backend::Sqlite, |settings| {
        settings.streams = gatehouse::state::StreamLimits::new(100, 2, 100);
    })
    .await
    .unwrap();
    let key = app.publishable_key("production").await;
    let open = |path: &'static str| {
        let request = app.client.get(app.url(path)).query(&[("publishableKey", &key)]);
        async move { request.send().await.unwrap() }
    };
    let first = open("/sse/server").await;
    let second = open("/ofrep/v1/events").await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let refused = open("/sse/server").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "30");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TOO_MANY_STREAMS");
    let refused = open("/ofrep/v1/events").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["errorDetails"].as_str().unwrap().contains("too many"),
        "{body}"
    );
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let again = open("/sse/server").await;
        if again.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a closed stream never freed its place"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(second);
}
