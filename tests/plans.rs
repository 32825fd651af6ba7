//! Release plans: a plan with waits advances through its milestones on an injected clock, a
//! paused one does not, a hand-made change pauses it instead of being overwritten, percentages
//! only grow (so companies that had the flag keep it), and two replicas advance a due plan once.

mod common;

use std::collections::BTreeSet;

use common::{new_flag, set_access, TestApp};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::{
    AccessRule, AccessRules, Milestone, Percentage, PlanStatus, ReleasePlan, TargetedAccess,
};
use gatehouse::service::{Actor, Change, Clock, Service, ServiceError};

const START: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

async fn app(backend: Backend) -> Option<(TestApp, Clock)> {
    TestApp::spawn_manual(backend, START).await
}

/// acme, plus `percent` of all companies (none at 0).
fn acme_and(percent: f64) -> AccessRules {
    let rules = if percent > 0.0 {
        vec![AccessRule {
            conditions: Vec::new(),
            rollout_percentage: Percentage::new(percent).unwrap(),
            rollout_attribute: Default::default(),
        }]
    } else {
        Vec::new()
    };
    AccessRules::Some(TargetedAccess {
        companies: vec!["acme".into()],
        rules,
        ..Default::default()
    })
}

fn milestone(name: &str, rules: AccessRules, stage: Option<&str>, wait: Option<i64>) -> Milestone {
    Milestone {
        name: name.into(),
        rules,
        stage: stage.map(Into::into),
        advance_after_ms: wait,
    }
}

/// Internal (1 h) → 10 % and Beta (1 h) → 50 % (by hand) → Everyone and General availability.
fn standard() -> Vec<Milestone> {
    vec![
        milestone("Internal", acme_and(0.0), Some("Internal"), Some(HOUR)),
        milestone("10 %", acme_and(10.0), Some("Beta"), Some(HOUR)),
        milestone("50 %", acme_and(50.0), None, None),
        milestone(
            "Everyone",
            AccessRules::Everyone,
            Some("General availability"),
            None,
        ),
    ]
}

async fn save_template(
    service: &Service,
    actor: &Actor,
    milestones: Vec<Milestone>,
) -> Result<i64, ServiceError> {
    let change = Change::SavePlanTemplate {
        id: None,
        name: "Standard rollout".into(),
        milestones,
    };
    service.apply(actor, change).await.map(|o| o.into_id().unwrap())
}

async fn start(service: &Service, actor: &Actor, flag: &str, template_id: i64) -> Result<i64, ServiceError> {
    let change = Change::StartPlan {
        flag: flag.into(),
        environment: "production".into(),
        template_id,
    };
    service.apply(actor, change).await.map(|o| o.into_id().unwrap())
}

async fn plan(app: &TestApp, flag: &str) -> ReleasePlan {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    page.plans.into_iter().next().expect("the flag has a plan")
}

async fn access(app: &TestApp, flag: &str) -> AccessRules {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    page.history[0].value.clone().unwrap()
}

async fn stage(app: &TestApp, flag: &str) -> String {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    let stage = page.stages.iter().find(|s| s.id == page.flag.stage_id).unwrap();
    stage.name.clone()
}

/// The companies among company-0 … company-199 the server serves `flag` to.
async fn enabled(app: &TestApp, key: &str, flag: &str) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    for i in 0..200 {
        let body: serde_json::Value = app
            .client
            .get(app.url(&format!(
                "/features/evaluated?key={flag}&context.company.id=company-{i}"
            )))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["features"][flag]["isEnabled"] == serde_json::json!(true) {
            set.insert(i);
        }
    }
    set
}

async fn a_plan_advances_through_its_milestones(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    app.apply(new_flag("checkout")).await;
    let admin = Actor::member(&app.add_member("admin@example.com", Role::Admin).await);
    let editor = Actor::member(&app.add_member("pm@example.com", Role::Editor).await);
    let template = save_template(&app.service, &admin, standard()).await.unwrap();
    start(&app.service, &editor, "checkout", template).await.unwrap();
    assert_eq!(
        access(&app, "checkout").await,
        acme_and(0.0),
        "the first milestone at once"
    );
    assert_eq!(stage(&app, "checkout").await, "Internal");
    assert_eq!(plan(&app, "checkout").await.next_due_at, Some(START + HOUR));

    clock.advance(HOUR - 1);
    assert_eq!(
        app.service.apply_due_changes().await.unwrap(),
        0,
        "not before its wait is over"
    );
    clock.advance(1);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 1);
    let reached = plan(&app, "checkout").await;
    assert_eq!((reached.current, reached.status), (1, PlanStatus::Active));
    assert_eq!(access(&app, "checkout").await, acme_and(10.0));
    assert_eq!(stage(&app, "checkout").await, "Beta");
    let key = app.publishable_key("production").await;
    let at_10 = enabled(&app, &key, "checkout").await;

    // Paused, it stays put however long it waits.
    let pause = Change::SetPlanPaused {
        id: reached.id,
        paused: true,
        note: "paused by hand".into(),
    };
    app.service.apply(&editor, pause).await.unwrap();
    clock.advance(5 * HOUR);
    assert_eq!(
        app.service.apply_due_changes().await.unwrap(),
        0,
        "a paused plan does not advance"
    );
    assert_eq!(plan(&app, "checkout").await.current, 1);
    // Resumed, the current milestone's wait starts again.
    let resume = Change::SetPlanPaused {
        id: reached.id,
        paused: false,
        note: String::new(),
    };
    app.service.apply(&editor, resume).await.unwrap();
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    clock.advance(HOUR);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 1);
    assert_eq!(access(&app, "checkout").await, acme_and(50.0));
    let at_50 = enabled(&app, &key, "checkout").await;
    assert!(at_10.is_subset(&at_50), "companies that had the flag keep it");
    assert!(at_10.len() < at_50.len(), "{} then {}", at_10.len(), at_50.len());

    // "50 %" goes on by hand only.
    clock.advance(100 * HOUR);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    let advance = Change::AdvancePlan {
        id: reached.id,
        from: 2,
        automatic: false,
    };
    app.service.apply(&editor, advance.clone()).await.unwrap();
    let done = plan(&app, "checkout").await;
    assert_eq!((done.current, done.status), (3, PlanStatus::Completed));
    assert_eq!(access(&app, "checkout").await, AccessRules::Everyone);
    assert_eq!(stage(&app, "checkout").await, "General availability");
    // The same click again (a second tab) is refused, not applied twice.
    assert!(matches!(
        app.service.apply(&editor, advance).await,
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_plan_advances_through_its_milestones_sqlite() {
    a_plan_advances_through_its_milestones(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_plan_advances_through_its_milestones_postgres() {
    a_plan_advances_through_its_milestones(Backend::Postgres).await;
}

#[tokio::test]
async fn access_only_grows_and_only_admins_define_templates() {
    let Some((app, _clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("search")).await;
    let admin = Actor::member(&app.add_member("admin@example.com", Role::Admin).await);
    let editor = Actor::member(&app.add_member("pm@example.com", Role::Editor).await);
    let viewer = Actor::member(&app.add_member("viewer@example.com", Role::Viewer).await);
    let shrinking = vec![
        milestone("Half", acme_and(50.0), None, None),
        milestone("Tenth", acme_and(10.0), None, None),
    ];
    match save_template(&app.service, &admin, shrinking).await {
        Err(ServiceError::Invalid { field, message }) => {
            assert_eq!(field, "milestones");
            assert!(message.contains("50 %"), "{message}");
        }
        other => panic!("a shrinking plan was accepted: {other:?}"),
    }
    let unknown_stage = vec![milestone("One", acme_and(0.0), Some("Nowhere"), None)];
    assert!(matches!(
        save_template(&app.service, &admin, unknown_stage).await,
        Err(ServiceError::Invalid { .. })
    ));
    assert!(matches!(
        save_template(&app.service, &editor, standard()).await,
        Err(ServiceError::Denied(_))
    ));
    let template = save_template(&app.service, &admin, standard()).await.unwrap();
    assert!(matches!(
        start(&app.service, &viewer, "search", template).await,
        Err(ServiceError::Denied(_))
    ));
    start(&app.service, &editor, "search", template).await.unwrap();
    assert!(
        matches!(
            start(&app.service, &editor, "search", template).await,
            Err(ServiceError::Conflict(_))
        ),
        "one running plan per flag and environment"
    );
    let id = plan(&app, "search").await.id;
    let advance = Change::AdvancePlan {
        id,
        from: 0,
        automatic: false,
    };
    assert!(matches!(
        app.service.apply(&viewer, advance).await,
        Err(ServiceError::Denied(_))
    ));
    app.service
        .apply(&editor, Change::CancelPlan { id })
        .await
        .unwrap();
    assert_eq!(plan(&app, "search").await.status, PlanStatus::Cancelled);
    assert_eq!(
        access(&app, "search").await,
        acme_and(0.0),
        "cancelling leaves the access"
    );
}

#[tokio::test]
async fn a_change_by_hand_pauses_the_plan_instead_of_being_overwritten() {
    let Some((app, clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("export")).await;
    let template = save_template(&app.service, &Actor::cli(), standard())
        .await
        .unwrap();
    start(&app.service, &Actor::cli(), "export", template)
        .await
        .unwrap();
    let by_hand = AccessRules::Some(TargetedAccess {
        companies: vec!["acme".into(), "globex".into()],
        ..Default::default()
    });
    app.apply(set_access("export", "production", by_hand.clone(), None))
        .await;
    clock.advance(HOUR);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    let paused = plan(&app, "export").await;
    assert_eq!((paused.current, paused.status), (0, PlanStatus::Paused));
    assert!(paused.note.contains("changed by hand"), "{}", paused.note);
    assert_eq!(access(&app, "export").await, by_hand);
}

#[tokio::test]
async fn the_flag_page_forms_drive_a_plan_and_viewers_are_refused() {
    let Some((app, _clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("pricing")).await;
    let template = save_template(&app.service, &Actor::cli(), standard())
        .await
        .unwrap()
        .to_string();
    app.add_member("pm@example.com", Role::Editor).await;
    app.add_member("viewer@example.com", Role::Viewer).await;
    let viewer = app.signed_in("viewer@example.com").await;
    let editor = app.signed_in("pm@example.com").await;
    let form = [
        ("flag", "pricing"),
        ("environment", "production"),
        ("template", template.as_str()),
    ];
    assert_eq!(
        app.call(&viewer, "/api/edit/start_plan", &form).await.status(),
        403
    );
    assert_eq!(
        app.call(&editor, "/api/edit/start_plan", &form).await.status(),
        200
    );
    let id = plan(&app, "pricing").await.id.to_string();
    let advance = [("id", id.as_str()), ("from", "0")];
    assert_eq!(
        app.call(&viewer, "/api/edit/advance_plan", &advance)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.call(&editor, "/api/edit/advance_plan", &advance)
            .await
            .status(),
        200
    );
    assert_eq!(plan(&app, "pricing").await.current, 1);
    let stale = app.call(&editor, "/api/edit/advance_plan", &advance).await;
    assert_eq!(stale.status(), 409);
    // Admin-only: the templates page's data and saving a template.
    let body = [
        ("name", "Quick"),
        ("milestones[0][name]", "All"),
        ("milestones[0][everyone]", "on"),
    ];
    assert_eq!(
        app.call(&editor, "/api/admin/save_plan_template", &body)
            .await
            .status(),
        403
    );
    // The flag list shows the plan's progress.
    let list = app
        .call(
            &editor,
            "/api/read/flags",
            &[
                ("search", ""),
                ("archived", "false"),
                ("page", "0"),
                ("board", "true"),
            ],
        )
        .await;
    assert_eq!(list.status(), 200);
    let text = list.text().await.unwrap();
    assert!(text.contains("Standard rollout 2/4 in Production"), "{text}");
}

/// Two services on one PostgreSQL database run the scheduler at the same moment: the due plan
/// advances once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_advance_a_due_plan_once() {
    let Some(db) = common::TestDb::new(Backend::Postgres).await else {
        return;
    };
    let clock = Clock::manual(START);
    let (first, _) = Service::serve(&db.url, clock.clone(), Default::default())
        .await
        .unwrap();
    let (second, _) = Service::serve(&db.url, clock.clone(), Default::default())
        .await
        .unwrap();
    let cli = Actor::cli();
    let template = save_template(&first, &cli, standard()).await.unwrap();
    for i in 0..10 {
        let flag = format!("launch-{i}");
        first.apply(&cli, new_flag(&flag)).await.unwrap();
        start(&first, &cli, &flag, template).await.unwrap();
    }
    clock.advance(HOUR);
    let (a, b) = tokio::join!(first.apply_due_changes(), second.apply_due_changes());
    assert_eq!(a.unwrap() + b.unwrap(), 10, "each plan advanced by one of them");
    let pool = db.pool().await;
    let advanced: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'flag.plan_advanced'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(advanced, 10);
    pool.close().await;
    first.close().await;
    second.close().await;
}
