//! The server as a client sees it: probes and the first page.

mod common;

use common::TestApp;
use gatehouse::config::Backend;

#[tokio::test]
async fn healthz_and_readyz_answer_on_sqlite() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "sqlite");
}

#[tokio::test]
async fn readyz_answers_on_postgres() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "postgres");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.service.close().await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn the_sign_in_page_is_rendered_on_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let root = app.client.get(app.url("/")).send().await.unwrap();
    assert!(
        root.status().is_success() || root.status().is_redirection(),
        "{}",
        root.status()
    );
    let page = app.client.get(app.url("/sign-in")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form"), "{html}");
    assert!(html.contains("/pkg/gatehouse.js"), "hydration script is linked");
}

/// The bundle is served compressed and, under its content-hashed names, kept by browsers for a
/// year; pages are compressed and asked for again each time. Reads the bundle `cargo leptos build`
/// wrote (as `make test` does before the tests).
#[tokio::test]
async fn the_bundle_is_served_compressed_and_cached_by_its_hash() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let pkg = std::path::Path::new("target/site/pkg");
    let wasm = std::fs::read_dir(pkg)
        .expect("target/site/pkg is missing: build the bundle first (cargo leptos build)")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".wasm"))
        .expect("a .wasm file in target/site/pkg");
    assert_eq!(wasm.split('.').count(), 3, "{wasm} is named by its hash");
    let answer = app
        .client
        .get(app.url(&format!("/pkg/{wasm}")))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-encoding"], "br");
    assert_eq!(
        answer.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let on_disk = std::fs::metadata(pkg.join(&wasm)).unwrap().len();
    let sent = answer.bytes().await.unwrap().len() as u64;
    assert!(sent * 2 < on_disk, "{sent} bytes sent for {on_disk} on disk");

    let page = app
        .client
        .get(app.url("/sign-in"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert_eq!(page.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn unknown_pages_are_404_for_members_and_sign_in_for_others() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let anonymous = app.client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/sign-in?next=%2Fno%2Fsuch%2Fpage"
    );
    app.add_member("ana@example.com", gatehouse::model::member::Role::Viewer)
        .await;
    let member = app.signed_in("ana@example.com").await;
    let page = member.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn admin_pages_answer_with_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for path in ["/sign-in", "/api/public/whoami"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        let scripts = policy
            .split(';')
            .map(str::trim)
            .find_map(|directive| directive.strip_prefix("script-src "))
            .unwrap_or_else(|| panic!("{path}: no script-src in {policy}"));
        assert!(scripts.contains("'self'"), "{path}: {policy}");
        assert!(
            !scripts.contains("unsafe-inline") && !scripts.contains("*"),
            "{path}: {policy}"
        );
    }
}

/// A page's inline scripts (the hydration loader) run only because they carry the nonce its
/// policy names, a new one per response.
#[tokio::test]
async fn pages_allow_only_their_own_inline_scripts() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = app.client.get(app.url("/sign-in")).send().await.unwrap();
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no nonce in {policy}"))
            .to_string();
        let html = response.text().await.unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "the page loads its bundle with a script");
        for script in scripts {
            let tag = script.split('>').next().unwrap();
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "a script without the page's nonce: <script{tag}>"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "each response has its own nonce");
}
