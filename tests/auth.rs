//! Access control on a running server: every server function refuses callers without the role
//! its endpoint needs, sessions end when members go, keys stop working when revoked.

mod common;

use std::collections::BTreeSet;

use common::{client, TestApp, PASSWORD};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::service::{Actor, AuditFilter, Change, Service};

/// The actions of the newest audit entries, newest first.
async fn audit_actions(service: &Service) -> Vec<String> {
    let filter = AuditFilter::default();
    let page = service.audit_page(&Actor::cli(), &filter, 0, 500).await.unwrap();
    page.entries.into_iter().map(|e| e.action).collect()
}

/// Endpoints anyone may call: getting in, and asking who one is.
const PUBLIC: [&str; 5] = [
    "/api/public/accept_invitation",
    "/api/public/complete_setup",
    "/api/public/invitation",
    "/api/public/sign_in",
    "/api/public/whoami",
];

/// Every registered server function, as the server routes them.
fn server_functions() -> BTreeSet<String> {
    leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect()
}

fn with_prefix(prefix: &str) -> Vec<String> {
    server_functions()
        .into_iter()
        .filter(|p| p.starts_with(prefix))
        .collect()
}

#[test]
fn every_server_function_has_a_known_access_prefix() {
    let all = server_functions();
    assert!(all.len() >= 15, "the registry looks incomplete: {all:?}");
    for path in &all {
        assert!(
            gatehouse::auth::guard::endpoint_permission(path).is_some(),
            "{path} has no access prefix (public/, account/, read/, edit/, admin/)"
        );
    }
    let public: BTreeSet<_> = with_prefix("/api/public/").into_iter().collect();
    let expected: BTreeSet<_> = PUBLIC.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        public, expected,
        "a new public endpoint must be added here on purpose"
    );
}

#[tokio::test]
async fn anonymous_callers_are_refused_by_every_non_public_server_function() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let anonymous = client();
    for path in server_functions()
        .into_iter()
        .filter(|p| !PUBLIC.contains(&p.as_str()))
    {
        let response = app.call(&anonymous, &path, &[]).await;
        assert_eq!(
            response.status(),
            401,
            "{path} answered {} to an anonymous caller",
            response.status()
        );
    }
}

#[tokio::test]
async fn a_viewer_is_refused_by_every_mutating_server_function() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let mutating: Vec<_> = [with_prefix("/api/edit/"), with_prefix("/api/admin/")].concat();
    assert!(!mutating.is_empty());
    for path in mutating {
        let response = app.call(&viewer, &path, &[]).await;
        assert_eq!(
            response.status(),
            403,
            "{path} answered {} to a viewer",
            response.status()
        );
    }
    // ...and may read.
    let response = app.call(&viewer, "/api/read/overview", &[]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_editor_is_refused_by_every_admin_server_function() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("editor@example.com", Role::Editor).await;
    let editor = app.signed_in("editor@example.com").await;
    let admin_only = with_prefix("/api/admin/");
    assert!(!admin_only.is_empty());
    for path in admin_only {
        let response = app.call(&editor, &path, &[]).await;
        assert_eq!(
            response.status(),
            403,
            "{path} answered {} to an editor",
            response.status()
        );
    }
}

#[tokio::test]
async fn an_admin_may_call_admin_functions() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("admin@example.com", Role::Admin).await;
    let admin = app.signed_in("admin@example.com").await;
    let response = app.call(&admin, "/api/admin/team", &[]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["members"][0]["email"], "admin@example.com");
}

#[tokio::test]
async fn a_removed_members_open_session_stops_working_on_its_next_request() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.add_member("admin@example.com", Role::Admin).await;
    let editor = app.add_member("editor@example.com", Role::Editor).await;
    let session = app.signed_in("editor@example.com").await;
    assert_eq!(app.call(&session, "/api/read/overview", &[]).await.status(), 200);

    let change = Change::RemoveMember { member_id: editor.id };
    app.service.apply(&Actor::member(&admin), change).await.unwrap();
    assert_eq!(app.call(&session, "/api/read/overview", &[]).await.status(), 401);
    let page = session.get(app.url("/")).send().await.unwrap();
    assert!(
        page.status().is_redirection(),
        "pages send the removed member to sign-in"
    );
}

#[tokio::test]
async fn a_demoted_member_loses_the_role_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let first = app.add_member("first@example.com", Role::Admin).await;
    let second = app.add_member("second@example.com", Role::Admin).await;
    let session = app.signed_in("second@example.com").await;
    assert_eq!(app.call(&session, "/api/admin/team", &[]).await.status(), 200);
    let change = Change::ChangeRole {
        member_id: second.id,
        role: Role::Viewer,
    };
    app.service.apply(&Actor::member(&first), change).await.unwrap();
    // A move to a lower role ends the member's sessions: they sign in again with the new role.
    assert_eq!(app.call(&session, "/api/admin/team", &[]).await.status(), 401);
    let again = app.signed_in("second@example.com").await;
    assert_eq!(app.call(&again, "/api/admin/team", &[]).await.status(), 403);
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let session = app.signed_in("ana@example.com").await;
    assert_eq!(app.call(&session, "/api/read/overview", &[]).await.status(), 200);
    let sessions_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(app
        .call(&session, "/api/account/sign_out", &[])
        .await
        .status()
        .is_success());
    let sessions_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sessions_after, sessions_before - 1, "the session row is deleted");
    assert_eq!(app.call(&session, "/api/read/overview", &[]).await.status(), 401);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let anonymous = client();
    let wrong_password = app
        .call(
            &anonymous,
            "/api/public/sign_in",
            &[("email", "ana@example.com"), ("password", "nope nope nope")],
        )
        .await;
    let unknown = app
        .call(
            &anonymous,
            "/api/public/sign_in",
            &[("email", "bob@example.com"), ("password", "nope nope nope")],
        )
        .await;
    assert_eq!(wrong_password.status(), unknown.status());
    assert_eq!(
        wrong_password.text().await.unwrap(),
        unknown.text().await.unwrap()
    );
}

#[tokio::test]
async fn repeated_failures_delay_the_account_even_with_the_right_password() {
    let clock = gatehouse::service::Clock::manual(1_700_000_000_000);
    let app = TestApp::spawn_with(Backend::Sqlite, clock.clone()).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let anonymous = client();
    let sign_in = |password: &'static str| {
        let (app, anonymous) = (&app, &anonymous);
        let form = [("email", "ana@example.com"), ("password", password)];
        async move { app.call(anonymous, "/api/public/sign_in", &form).await }
    };
    for _ in 0..gatehouse::service::ACCOUNT_FAILURES {
        sign_in("wrong guess").await;
    }
    let refused = sign_in(PASSWORD).await;
    assert_eq!(refused.status(), 429);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("too many failed sign-ins; try again in 1 seconds"),
        "{body}"
    );
    let actions = audit_actions(&app.service).await;
    let failures = actions.iter().filter(|a| *a == "member.sign_in_failed").count();
    assert_eq!(
        failures,
        gatehouse::service::ACCOUNT_FAILURES as usize,
        "waiting attempts are not heard"
    );
    // A delay, not a lock-out: once it has passed, the right password gets in.
    clock.advance(1_000);
    assert!(sign_in(PASSWORD).await.status().is_success());
}

/// Signs in to `app` as `email` from `client_address`, behind the server's proxy.
async fn sign_in_from(app: &TestApp, email: &str, password: &str, client_address: &str) -> reqwest::Response {
    client()
        .post(app.url("/api/public/sign_in"))
        .header("x-forwarded-for", client_address)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_address_guessing_does_not_keep_others_out() {
    let app = TestApp::spawn_configured(Backend::Sqlite, |settings| {
        settings.trusted_proxies = gatehouse::auth::client::parse_trusted("127.0.0.1").unwrap();
    })
    .await
    .unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    for i in 0..40 {
        let guessed = format!("user{i}@example.com");
        sign_in_from(&app, &guessed, "wrong guess", "198.51.100.66").await;
    }
    let guesser = sign_in_from(&app, "ana@example.com", PASSWORD, "198.51.100.66").await;
    assert_eq!(guesser.status(), 429, "the guessing address waits");
    let ana = sign_in_from(&app, "ana@example.com", PASSWORD, "203.0.113.5").await;
    assert!(
        ana.status().is_success(),
        "another client behind the same proxy gets in: {}",
        ana.status()
    );
}

#[tokio::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    // Without trusted proxies, X-Forwarded-For cannot be used to step around the address's wait.
    for i in 0..40 {
        let guessed = format!("user{i}@example.com");
        sign_in_from(&app, &guessed, "wrong guess", &format!("198.51.100.{i}")).await;
    }
    let next = sign_in_from(&app, "ana@example.com", PASSWORD, "203.0.113.5").await;
    assert_eq!(next.status(), 429, "the peer's own address is the client's");
}

#[tokio::test]
async fn cross_origin_server_function_posts_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Admin).await;
    let session = app.signed_in("ana@example.com").await;
    let response = session
        .post(app.url("/api/admin/create_secret_key"))
        .header("Origin", "https://evil.example")
        .form(&[("environment", "production")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (_, keys) = app.service.api_keys(&Actor::cli()).await.unwrap();
    assert!(
        keys.iter().all(|k| k.public_value.is_some()),
        "no secret key was made"
    );
}

#[tokio::test]
async fn sign_in_renews_the_session_id_and_sets_a_strict_cookie() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let response = client()
        .post(app.url("/api/public/sign_in"))
        .form(&[("email", "ana@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("gatehouse_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

#[tokio::test]
async fn invitations_are_single_use_and_revocable() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.add_member("admin@example.com", Role::Admin).await;
    let actor = Actor::member(&admin);
    let invite = |email: &str, role| Change::Invite {
        email: email.into(),
        role,
    };
    let accept = |token: &str, name: &str| Change::AcceptInvitation {
        token: token.into(),
        name: name.into(),
        password: PASSWORD.into(),
    };
    let anonymous = Actor::anonymous();
    let outcome = app
        .service
        .apply(&actor, invite("new@example.com", Role::Editor))
        .await;
    let (_, token) = outcome.unwrap().into_invitation().unwrap();
    let member = app.service.apply(&anonymous, accept(&token, "New")).await;
    assert_eq!(member.unwrap().into_member().unwrap().role, Role::Editor);
    assert!(app
        .service
        .apply(&anonymous, accept(&token, "Again"))
        .await
        .is_err());

    let outcome = app
        .service
        .apply(&actor, invite("other@example.com", Role::Viewer))
        .await;
    let (invitation, token) = outcome.unwrap().into_invitation().unwrap();
    let revoke = Change::RevokeInvitation { id: invitation.id };
    app.service.apply(&actor, revoke).await.unwrap();
    assert!(app
        .service
        .apply(&anonymous, accept(&token, "Other"))
        .await
        .is_err());
    let actions = audit_actions(&app.service).await;
    for action in [
        "invitation.created",
        "invitation.accepted",
        "invitation.revoked",
        "member.created",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed_or_demoted() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.add_member("admin@example.com", Role::Admin).await;
    let actor = Actor::member(&admin);
    let demote = Change::ChangeRole {
        member_id: admin.id,
        role: Role::Editor,
    };
    assert!(app.service.apply(&actor, demote).await.is_err());
    let remove = Change::RemoveMember { member_id: admin.id };
    assert!(app.service.apply(&actor, remove).await.is_err());
    assert_eq!(app.service.members(&actor).await.unwrap()[0].role, Role::Admin);
}

#[tokio::test]
async fn setup_creates_the_first_admin_once() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app
        .service
        .issue_setup_token()
        .await
        .unwrap()
        .expect("no member yet");
    let setup = |email: &'static str| app.service.complete_setup(&token, email, "Root", PASSWORD);
    let member = setup("root@example.com").await.unwrap();
    assert_eq!(member.role, Role::Admin);
    assert!(!app.service.setup_is_open());
    assert!(setup("x@example.com").await.is_err());
    assert!(app.service.issue_setup_token().await.unwrap().is_none());
}

#[tokio::test]
async fn setup_with_one_token_at_the_same_moment_makes_one_admin() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app
        .service
        .issue_setup_token()
        .await
        .unwrap()
        .expect("no member yet");
    let attempts = (0..8).map(|i| {
        let (service, token) = (app.service.clone(), token.clone());
        tokio::spawn(async move {
            let email = format!("root{i}@example.com");
            service.complete_setup(&token, &email, "Root", PASSWORD).await
        })
    });
    let mut created = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        created += usize::from(attempt.await.unwrap().is_ok());
    }
    assert_eq!(created, 1);
    assert_eq!(app.service.members(&Actor::cli()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn secret_keys_are_stored_as_digests_and_revocation_works_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let create = Change::CreateSecretKey {
        environment: "production".into(),
        name: String::new(),
    };
    let key = app.apply(create).await.into_secret_key().unwrap();
    assert!(key.starts_with("sec_prod_") && key.len() > 22, "{key}");
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE kind = 'secret'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].as_deref(), Some(key.as_str()));
    let features = || app.client.get(app.url("/features")).bearer_auth(&key).send();
    assert_eq!(features().await.unwrap().status(), 200, "served at once");
    let revoke = Change::RevokeSecretKey {
        prefix: key[..16].to_string(),
    };
    app.apply(revoke).await;
    assert_eq!(features().await.unwrap().status(), 403, "refused at once");
}

#[tokio::test]
async fn sign_in_never_sends_the_browser_to_another_site() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    for next in [
        "/\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/x\u{1}y",
        "https://evil.example",
    ] {
        let response = client()
            .post(app.url("/api/public/sign_in"))
            .header("accept", "text/html")
            .form(&[
                ("email", "ana@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_redirection(),
            "{next:?}: {}",
            response.status()
        );
        assert_eq!(response.headers()["location"], "/", "{next:?}");
    }
}

#[tokio::test]
async fn the_idle_limit_counts_from_the_last_request() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let session = app.signed_in("ana@example.com").await;
    let stored_expiry = || async {
        let expiry: String = sqlx::query_scalar("SELECT CAST(MAX(expiry_date) AS TEXT) FROM tower_sessions")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        expiry
    };
    let first = app.call(&session, "/api/read/overview", &[]).await;
    assert!(
        first.headers().get("set-cookie").is_some(),
        "the cookie's Max-Age is renewed"
    );
    let before = stored_expiry().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = app.call(&session, "/api/read/overview", &[]).await;
    assert!(
        second.headers().get("set-cookie").is_some(),
        "the cookie's Max-Age is renewed"
    );
    assert!(
        stored_expiry().await > before,
        "the stored expiry moved with the request"
    );
}

#[tokio::test]
async fn a_password_change_ends_the_members_other_sessions_and_renews_this_one() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let (here, elsewhere) = (
        app.signed_in("ana@example.com").await,
        app.signed_in("ana@example.com").await,
    );
    assert_eq!(
        app.call(&elsewhere, "/api/read/overview", &[]).await.status(),
        200
    );
    let new = "a brand new passphrase";
    let changed = app
        .call(
            &here,
            "/api/account/change_password",
            &[("current_password", PASSWORD), ("new_password", new)],
        )
        .await;
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());
    let renewed = changed.headers().get("set-cookie").is_some();
    assert!(renewed, "the session goes on under a new id");
    assert_eq!(app.call(&here, "/api/read/overview", &[]).await.status(), 200);
    assert_eq!(
        app.call(&elsewhere, "/api/read/overview", &[]).await.status(),
        401
    );
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled() {
    // A clock that stands still: on a loaded machine the hashing alone can outlast the delay.
    let clock = gatehouse::service::Clock::manual(gatehouse::service::Clock::system().now_ms());
    let app = TestApp::spawn_configured(Backend::Sqlite, |s| s.clock = clock)
        .await
        .unwrap();
    app.add_member("ana@example.com", Role::Editor).await;
    let session = app.signed_in("ana@example.com").await;
    let attempt = |current: &'static str| {
        let form = [
            ("current_password", current),
            ("new_password", "a brand new passphrase"),
        ];
        let (app, session) = (&app, &session);
        async move { app.call(session, "/api/account/change_password", &form).await }
    };
    for _ in 0..gatehouse::service::ACCOUNT_FAILURES {
        assert_eq!(attempt("a wrong guess").await.status(), 422);
    }
    let refused = attempt(PASSWORD).await;
    assert_eq!(refused.status(), 429, "the right password waits too");
    assert!(refused.text().await.unwrap().contains("too many"));
}

#[tokio::test]
async fn a_move_to_a_lower_role_ends_the_members_sessions() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.add_member("admin@example.com", Role::Admin).await;
    let editor = app.add_member("ed@example.com", Role::Editor).await;
    let session = app.signed_in("ed@example.com").await;
    let promote = Change::ChangeRole {
        member_id: editor.id,
        role: Role::Admin,
    };
    app.apply(promote).await;
    assert_eq!(
        app.call(&session, "/api/admin/team", &[]).await.status(),
        200,
        "a higher role keeps the session"
    );
    let demote = Change::ChangeRole {
        member_id: editor.id,
        role: Role::Viewer,
    };
    app.apply(demote).await;
    assert_eq!(app.call(&session, "/api/read/overview", &[]).await.status(), 401);
}
