//! Change requests (four eyes): in a protected environment an editor's change waits for another
//! member's approval; nobody approves their own; editing withdraws approvals; a viewer cannot
//! approve; what gets applied is exactly the request's change, re-checked against the version it
//! was made against; an admin's bypass needs a reason and is audited.

mod common;

use common::{new_flag, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::{AccessRules, PlannedChange, RequestStatus, TargetedAccess};
use gatehouse::service::{AccessChange, Actor, Change, ServiceError};

struct Team {
    admin: Actor,
    editor: Actor,
    reviewer: Actor,
    viewer: Actor,
}

async fn team(app: &TestApp) -> Team {
    Team {
        admin: Actor::member(&app.add_member("admin@example.com", Role::Admin).await),
        editor: Actor::member(&app.add_member("pm@example.com", Role::Editor).await),
        reviewer: Actor::member(&app.add_member("reviewer@example.com", Role::Editor).await),
        viewer: Actor::member(&app.add_member("viewer@example.com", Role::Viewer).await),
    }
}

fn companies(ids: &[&str]) -> AccessRules {
    AccessRules::Some(TargetedAccess {
        companies: ids.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    })
}

fn set(rules: AccessRules, based_on: i64) -> PlannedChange {
    PlannedChange::SetAccess {
        environment: "production".into(),
        rules,
        based_on,
    }
}

fn direct(environment: &str, rules: AccessRules) -> Change {
    Change::SetAccess {
        flag: "checkout".into(),
        environment: environment.into(),
        change: AccessChange::Set(rules),
        expected_version: None,
    }
}

async fn request(app: &TestApp, id: i64) -> gatehouse::model::ChangeRequest {
    let page = app
        .service
        .flag_page(&Actor::cli(), "checkout", "production")
        .await
        .unwrap();
    page.requests
        .into_iter()
        .find(|r| r.id == id)
        .expect("the request is listed")
}

async fn production(app: &TestApp) -> (i64, AccessRules) {
    let page = app
        .service
        .flag_page(&Actor::cli(), "checkout", "production")
        .await
        .unwrap();
    (page.history[0].version, page.history[0].value.clone().unwrap())
}

async fn audit(app: &TestApp, action: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT after_json FROM audit_log WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn four_eyes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.apply(new_flag("checkout")).await;
    let t = team(&app).await;
    let protect = Change::SetProtection {
        environment: "production".into(),
        approvals: 1,
    };
    let refused = app.service.apply(&t.editor, protect.clone()).await;
    assert!(matches!(refused, Err(ServiceError::Denied(_))), "{refused:?}");
    app.service.apply(&t.admin, protect).await.unwrap();

    // Direct changes: refused in production, fine in staging.
    match app
        .service
        .apply(&t.editor, direct("production", companies(&["acme"])))
        .await
    {
        Err(ServiceError::Refused(message)) => {
            assert!(message.contains("Production is protected"), "{message}")
        }
        other => panic!("a protected environment took a direct change: {other:?}"),
    }
    app.service
        .apply(&t.editor, direct("staging", companies(&["acme"])))
        .await
        .unwrap();
    let schedule = Change::ScheduleChange {
        flag: "checkout".into(),
        at: gatehouse::service::Clock::system().now_ms() + 60_000,
        planned: set(companies(&["acme"]), 1),
    };
    assert!(matches!(
        app.service.apply(&t.editor, schedule).await,
        Err(ServiceError::Refused(_))
    ));

    // File, then: not by oneself, not by a viewer; another editor approves.
    let file = Change::FileChangeRequest {
        flag: "checkout".into(),
        planned: set(companies(&["acme"]), 1),
        note: "beta customer".into(),
        draft: false,
    };
    let id = app
        .service
        .apply(&t.editor, file)
        .await
        .unwrap()
        .into_id()
        .unwrap();
    let own = app
        .service
        .apply(&t.editor, Change::ApproveChangeRequest { id })
        .await;
    assert!(matches!(own, Err(ServiceError::Refused(_))), "{own:?}");
    let viewer = app
        .service
        .apply(&t.viewer, Change::ApproveChangeRequest { id })
        .await;
    assert!(matches!(viewer, Err(ServiceError::Denied(_))), "{viewer:?}");
    let early = app
        .service
        .apply(&t.editor, Change::ApplyChangeRequest { id, at: None })
        .await;
    assert!(
        matches!(early, Err(ServiceError::Refused(_))),
        "not approved yet: {early:?}"
    );
    let overview = app.service.overview(&t.reviewer).await.unwrap();
    assert_eq!(
        overview.to_review.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id]
    );
    assert!(app
        .service
        .overview(&t.editor)
        .await
        .unwrap()
        .to_review
        .is_empty());
    app.service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id })
        .await
        .unwrap();
    assert_eq!(request(&app, id).await.status, RequestStatus::Approved);

    // An edit withdraws the approval.
    let wanted = companies(&["acme", "globex"]);
    let edit = Change::EditChangeRequest {
        id,
        planned: set(wanted.clone(), 1),
        note: "two beta customers".into(),
    };
    assert!(matches!(
        app.service.apply(&t.reviewer, edit.clone()).await,
        Err(ServiceError::Refused(_))
    ));
    app.service.apply(&t.editor, edit).await.unwrap();
    let edited = request(&app, id).await;
    assert_eq!(
        (edited.status, edited.approvals.len()),
        (RequestStatus::Review, 0)
    );
    assert!(audit(&app, "flag.change_request_edited").await[0].contains("reviewer@example.com"));
    app.service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id })
        .await
        .unwrap();

    // Applied: exactly the request's change, as the next version.
    app.service
        .apply(&t.editor, Change::ApplyChangeRequest { id, at: None })
        .await
        .unwrap();
    assert_eq!(production(&app).await, (2, wanted));
    assert_eq!(request(&app, id).await.status, RequestStatus::Applied);
    let again = app
        .service
        .apply(&t.editor, Change::ApplyChangeRequest { id, at: None })
        .await;
    assert!(
        matches!(again, Err(ServiceError::Refused(_))),
        "applied once: {again:?}"
    );

    // An admin's bypass needs a reason, is audited, and makes a later request stale.
    let second = Change::FileChangeRequest {
        flag: "checkout".into(),
        planned: set(AccessRules::Everyone, 2),
        note: String::new(),
        draft: false,
    };
    let second = app
        .service
        .apply(&t.editor, second)
        .await
        .unwrap()
        .into_id()
        .unwrap();
    app.service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id: second })
        .await
        .unwrap();
    let bypass = |reason: &str| Change::Bypass {
        reason: reason.into(),
        change: Box::new(direct("production", companies(&["acme"]))),
    };
    assert!(matches!(
        app.service.apply(&t.admin, bypass("  ")).await,
        Err(ServiceError::Invalid { .. })
    ));
    assert!(matches!(
        app.service.apply(&t.editor, bypass("urgent")).await,
        Err(ServiceError::Denied(_))
    ));
    app.service
        .apply(&t.admin, bypass("incident 42: roll back globex"))
        .await
        .unwrap();
    assert_eq!(production(&app).await, (3, companies(&["acme"])));
    assert!(audit(&app, "flag.protection_bypassed").await[0].contains("incident 42"));
    match app
        .service
        .apply(&t.editor, Change::ApplyChangeRequest { id: second, at: None })
        .await
    {
        Err(ServiceError::Conflict(message)) => assert!(message.contains("version 2"), "{message}"),
        other => panic!("a stale request was applied: {other:?}"),
    }
    assert_eq!(production(&app).await.0, 3, "nothing applied");
    // The reviewer rejects it; its author could only have cancelled it.
    let reject = Change::CloseChangeRequest {
        id: second,
        reject: true,
        comment: "superseded".into(),
    };
    app.service.apply(&t.reviewer, reject).await.unwrap();
    assert_eq!(request(&app, second).await.status, RequestStatus::Rejected);
}

#[tokio::test]
async fn four_eyes_sqlite() {
    four_eyes(Backend::Sqlite).await;
}

#[tokio::test]
async fn four_eyes_postgres() {
    four_eyes(Backend::Postgres).await;
}

#[tokio::test]
async fn the_flag_page_files_requests_and_viewers_cannot_approve() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("checkout")).await;
    app.apply(Change::SetProtection {
        environment: "production".into(),
        approvals: 1,
    })
    .await;
    team(&app).await;
    let editor = app.signed_in("pm@example.com").await;
    let form = [
        ("flag", "checkout"),
        ("environment", "production"),
        ("expected_version", "1"),
        ("form[mode]", "everyone"),
        ("form[companies]", ""),
        ("form[users]", ""),
        ("form[segments]", ""),
        ("review_note", "launch day"),
    ];
    let filed = app.call(&editor, "/api/edit/save_access", &form).await;
    assert_eq!(filed.status(), 200);
    let notice: String = filed.json().await.unwrap();
    assert!(notice.starts_with("Filed change request #"), "{notice}");
    // Without the review fields (a stale page), the save is refused with the reason.
    let direct = app.call(&editor, "/api/edit/save_access", &form[..7]).await;
    assert_eq!(direct.status(), 403);
    let id = app
        .service
        .flag_page(&Actor::cli(), "checkout", "production")
        .await
        .unwrap()
        .requests[0]
        .id
        .to_string();
    let viewer = app.signed_in("viewer@example.com").await;
    assert_eq!(
        app.call(&viewer, "/api/edit/approve_request", &[("id", &id)])
            .await
            .status(),
        403
    );
    let own = app
        .call(&editor, "/api/edit/approve_request", &[("id", &id)])
        .await;
    assert_eq!(own.status(), 403);
    let body: serde_json::Value = own.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("your own request"),
        "{body}"
    );
    let reviewer = app.signed_in("reviewer@example.com").await;
    let approve = [("id", id.as_str())];
    assert_eq!(
        app.call(&reviewer, "/api/edit/approve_request", &approve)
            .await
            .status(),
        200
    );
    // The author updates the request from the form: the approval is withdrawn.
    let mut update = form[..7].to_vec();
    update[3] = ("form[mode]", "some");
    update[4] = ("form[companies]", "acme");
    update.extend([("review_note", "acme first"), ("update_request", id.as_str())]);
    let updated = app.call(&editor, "/api/edit/save_access", &update).await;
    assert_eq!(updated.status(), 200);
    let notice: String = updated.json().await.unwrap();
    assert!(
        notice.starts_with(&format!("Updated change request #{id}")),
        "{notice}"
    );
    let page = app
        .service
        .flag_page(&Actor::cli(), "checkout", "production")
        .await
        .unwrap();
    let request = &page.requests[0];
    assert_eq!(
        (request.status, request.approvals.len()),
        (RequestStatus::Review, 0)
    );
    assert_eq!(request.note, "acme first");
    let by_reviewer = app.call(&reviewer, "/api/edit/save_access", &update).await;
    assert_eq!(by_reviewer.status(), 403, "only its author updates a request");
    assert_eq!(
        app.call(&reviewer, "/api/edit/approve_request", &approve)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.call(&editor, "/api/edit/apply_request", &approve)
            .await
            .status(),
        200
    );
    let page = app
        .service
        .flag_page(&Actor::cli(), "checkout", "production")
        .await
        .unwrap();
    assert_eq!(page.history[0].value.clone().unwrap(), companies(&["acme"]));
    // Protection is the admins' to set.
    let protect = [("environment", "staging"), ("approvals", "2")];
    assert_eq!(
        app.call(&editor, "/api/admin/set_protection", &protect)
            .await
            .status(),
        403
    );
}

/// A draft is not for review until its author submits it; an approved request applied "at" a
/// time waits as a scheduled change that carries its review, and closing the request cancels it.
#[tokio::test]
async fn drafts_wait_for_their_author_and_approved_requests_can_be_scheduled() {
    let Some((app, clock)) = TestApp::spawn_manual(Backend::Sqlite, 1_800_000_000_000).await else {
        return;
    };
    app.apply(new_flag("checkout")).await;
    app.apply(Change::SetProtection {
        environment: "production".into(),
        approvals: 1,
    })
    .await;
    let t = team(&app).await;
    let file = |rules: AccessRules| Change::FileChangeRequest {
        flag: "checkout".into(),
        planned: set(rules, 1),
        note: String::new(),
        draft: true,
    };
    let id = app
        .service
        .apply(&t.editor, file(AccessRules::Everyone))
        .await
        .unwrap()
        .into_id()
        .unwrap();
    assert_eq!(request(&app, id).await.status, RequestStatus::Draft);
    assert!(app
        .service
        .overview(&t.reviewer)
        .await
        .unwrap()
        .to_review
        .is_empty());
    let early = app
        .service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id })
        .await;
    assert!(matches!(early, Err(ServiceError::Refused(_))), "{early:?}");
    let by_other = app
        .service
        .apply(&t.reviewer, Change::SubmitChangeRequest { id })
        .await;
    assert!(matches!(by_other, Err(ServiceError::Refused(_))));
    app.service
        .apply(&t.editor, Change::SubmitChangeRequest { id })
        .await
        .unwrap();
    app.service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id })
        .await
        .unwrap();

    let at = clock.now_ms() + 3_600_000;
    let apply = Change::ApplyChangeRequest { id, at: Some(at) };
    app.service.apply(&t.editor, apply).await.unwrap();
    assert_eq!(request(&app, id).await.status, RequestStatus::Scheduled);
    assert_eq!(production(&app).await, (1, AccessRules::NoOne));
    clock.advance(3_600_000);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 1);
    assert_eq!(production(&app).await, (2, AccessRules::Everyone));
    let applied = request(&app, id).await;
    assert_eq!(applied.status, RequestStatus::Applied);
    assert!(applied.outcome.contains("version 2"), "{}", applied.outcome);

    // Cancelling a scheduled request cancels its scheduled change.
    let second = app
        .service
        .apply(
            &t.editor,
            Change::FileChangeRequest {
                flag: "checkout".into(),
                planned: set(AccessRules::NoOne, 2),
                note: String::new(),
                draft: false,
            },
        )
        .await
        .unwrap()
        .into_id()
        .unwrap();
    app.service
        .apply(&t.reviewer, Change::ApproveChangeRequest { id: second })
        .await
        .unwrap();
    let at = clock.now_ms() + 60_000;
    app.service
        .apply(
            &t.editor,
            Change::ApplyChangeRequest {
                id: second,
                at: Some(at),
            },
        )
        .await
        .unwrap();
    let cancel = Change::CloseChangeRequest {
        id: second,
        reject: false,
        comment: "not yet".into(),
    };
    app.service.apply(&t.editor, cancel).await.unwrap();
    clock.advance(120_000);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    assert_eq!(production(&app).await, (2, AccessRules::Everyone));
    assert_eq!(request(&app, second).await.status, RequestStatus::Cancelled);
}
