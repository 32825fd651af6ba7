//! The command line against a running server (`--server URL`, `GATEHOUSE_TOKEN`): CI creates,
//! lists and moves flags, grants access, exports, imports and generates types without database
//! access, acting with the token's role and audited as the token; the answers read the same as
//! on the database; refusals are one readable line.

mod common;

use common::TestApp;
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::service::{Actor, AuditFilter};
use serde_json::Value;

/// A database the remote commands must never open: nothing listens there.
const NO_DATABASE: &str = "postgres://nobody@127.0.0.1:1/none";

/// Runs `gatehouse --server <app> ARGS` with `token`; (success, stdout, stderr).
async fn remote(app: &TestApp, token: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = common::gatehouse(NO_DATABASE);
    command
        .arg("--server")
        .arg(app.url(""))
        .args(args)
        .env("GATEHOUSE_TOKEN", token);
    let output = common::output(command).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`remote`], which must succeed; its stdout.
async fn ok(app: &TestApp, token: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = remote(app, token, args).await;
    assert!(success, "{args:?}: {stderr}");
    stdout
}

#[tokio::test]
async fn ci_drives_flags_through_a_server_with_a_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let ci = app.service_token("ci", Role::Editor, None).await;

    let created = ok(
        &app,
        &ci,
        &["flags", "create", "new-checkout", "--name", "New checkout"],
    )
    .await;
    assert_eq!(
        created.trim(),
        "created new-checkout (off everywhere, in the first release stage)"
    );
    let listed: Value =
        serde_json::from_str(&ok(&app, &ci, &["flags", "list", "--format", "json"]).await).unwrap();
    assert_eq!(listed["flags"][0]["key"], "new-checkout");
    assert_eq!(listed["flags"][0]["name"], "New checkout");
    assert_eq!(listed["flags"][0]["type"], "temporary");

    let granted = ok(
        &app,
        &ci,
        &[
            "access",
            "grant",
            "new-checkout",
            "--environment",
            "production",
            "--company",
            "acme",
        ],
    )
    .await;
    assert!(
        granted.starts_with("granted company acme to new-checkout in production"),
        "{granted}"
    );
    let served = app.evaluated("production", "context.company.id=acme").await;
    assert_eq!(served["features"]["new-checkout"]["isEnabled"], true);

    // The move's preview names what changes and writes nothing; the move then applies it.
    let preview = ok(
        &app,
        &ci,
        &[
            "flags",
            "move-stage",
            "new-checkout",
            "--stage",
            "general availability",
            "--dry-run",
        ],
    )
    .await;
    assert!(
        preview.contains("dry run: moving new-checkout to General availability"),
        "{preview}"
    );
    let flags: Value =
        serde_json::from_str(&ok(&app, &ci, &["flags", "list", "--format", "json"]).await).unwrap();
    assert_ne!(flags["flags"][0]["stage"], "General availability");
    let moved = ok(
        &app,
        &ci,
        &[
            "flags",
            "move-stage",
            "new-checkout",
            "--stage",
            "General availability",
        ],
    )
    .await;
    assert!(
        moved.contains("moved new-checkout to General availability"),
        "{moved}"
    );

    // Export through the server reads exactly as on the database.
    let exported = ok(&app, &ci, &["export"]).await;
    let local = common::output({
        let mut command = common::gatehouse(app.db.url.expose());
        command.arg("export");
        command
    })
    .await;
    assert_eq!(exported, String::from_utf8_lossy(&local.stdout));
    let types = ok(&app, &ci, &["types", "--lang", "rust"]).await;
    assert!(types.contains("NewCheckout"), "{types}");

    // Import: the dry run lists, the import applies, as the token.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    let mut document: Value = serde_json::from_str(&exported).unwrap();
    document["flags"][0]["name"] = "Checkout v2".into();
    std::fs::write(&file, document.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let dry = ok(&app, &ci, &["import", file, "--dry-run"]).await;
    assert!(dry.contains("dry run: 1 change(s) would be made"), "{dry}");
    let imported = ok(&app, &ci, &["import", file]).await;
    assert!(imported.contains("1 change(s)"), "{imported}");
    let audit = app
        .service
        .audit_page(&Actor::cli(), &AuditFilter::default(), 0, 20)
        .await
        .unwrap();
    let changes: Vec<_> = audit
        .entries
        .iter()
        .filter(|e| e.action != "token.created")
        .collect();
    assert_eq!(changes.len(), 4, "created, granted, moved, imported");
    assert!(
        changes.iter().all(|e| e.actor_label == "service token ci"),
        "every change is the token's: {:?}",
        audit
            .entries
            .iter()
            .map(|e| (&e.action, &e.actor_label))
            .collect::<Vec<_>>()
    );

    // A broken document lists its problems, one per line, and changes nothing.
    document["flags"][0]["stage"] = "No such stage".into();
    std::fs::write(dir.path().join("bad.json"), document.to_string()).unwrap();
    let bad = dir.path().join("bad.json");
    let (success, _, stderr) = remote(&app, &ci, &["import", bad.to_str().unwrap()]).await;
    assert!(!success);
    assert!(
        stderr.contains("No such stage") && stderr.contains("nothing was imported"),
        "{stderr}"
    );
}

#[tokio::test]
async fn refusals_are_one_readable_line() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let viewer = app.service_token("dashboards", Role::Viewer, None).await;
    let (success, _, stderr) = remote(&app, &viewer, &["flags", "create", "x"]).await;
    assert!(!success);
    assert!(stderr.contains("only editors can do this"), "{stderr}");
    let (success, _, stderr) = remote(&app, "gth_svc_not-a-token", &["flags", "list"]).await;
    assert!(!success);
    assert!(stderr.contains("the server refused the token"), "{stderr}");
    let (success, _, stderr) = remote(&app, "", &["flags", "list"]).await;
    assert!(!success && stderr.contains("GATEHOUSE_TOKEN"), "{stderr}");
    let (success, _, stderr) = remote(&app, &viewer, &["member", "list"]).await;
    assert!(!success && stderr.contains("--server works for"), "{stderr}");
    let editor = app.service_token("ci", Role::Editor, None).await;
    let (success, _, stderr) =
        remote(&app, &editor, &["flags", "move-stage", "x", "--stage", "Nowhere"]).await;
    assert!(
        !success && stderr.contains("no release stage \"Nowhere\""),
        "{stderr}"
    );
}

/// Runs `gatehouse ARGS` on `app`'s database; (success, stdout, stderr).
async fn local(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let mut command = common::gatehouse(app.db.url.expose());
    command.args(args);
    let output = common::output(command).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until the server serves `flag` to user u-1 as `enabled` (a change made on the database
/// reaches a running server by notice or, at the latest, its 2 s poll).
async fn served(app: &TestApp, flag: &str, enabled: bool) {
    for _ in 0..100 {
        let answer = app.evaluated("production", "context.user.id=u-1").await;
        if answer["features"][flag]["isEnabled"] == enabled {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{flag} was not served as {enabled} within 10 s");
}

#[tokio::test]
async fn the_same_commands_revoke_and_run_on_the_database_or_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let ci = app.service_token("ci", Role::Editor, None).await;
    // The same sequence, once on the database and once through the server.
    for (flag, through_server) in [("on-the-database", false), ("through-the-server", true)] {
        let run = |args: Vec<&'static str>| {
            let (app, ci) = (&app, &ci);
            async move {
                let (success, stdout, stderr) = if through_server {
                    remote(app, ci, &args).await
                } else {
                    local(app, &args).await
                };
                assert!(success, "{args:?}: {stderr}");
                stdout
            }
        };
        let flag: &'static str = flag;
        run(vec!["flags", "create", flag]).await;
        let listed = run(vec!["flags", "list"]).await;
        assert!(listed.contains(flag), "{listed}");
        let scope = ["--environment", "production", "--user", "u-1"];
        let granted = run([vec!["access", "grant", flag], scope.to_vec()].concat()).await;
        assert!(
            granted.starts_with(&format!("granted user u-1 to {flag} in production")),
            "{granted}"
        );
        served(&app, flag, true).await;
        let revoked = run([vec!["access", "revoke", flag], scope.to_vec()].concat()).await;
        assert!(
            revoked.starts_with(&format!("revoked user u-1 from {flag} in production")),
            "{revoked}"
        );
        served(&app, flag, false).await;
        let moved = run(vec!["flags", "move-stage", flag, "--stage", "Beta"]).await;
        assert!(moved.contains(&format!("moved {flag} to Beta")), "{moved}");
    }
    // Types from a server read as from the database.
    let (_, from_database, _) = local(&app, &["types", "--lang", "typescript"]).await;
    let from_server = ok(&app, &ci, &["types", "--lang", "typescript"]).await;
    assert_eq!(from_server, from_database);
    assert!(from_server.contains("\"through-the-server\""), "{from_server}");
}
