//! Scheduled changes: applied at their time and not before, exactly once, as their author; a
//! change whose flag moved on is marked conflict instead; what fell due while the server was down
//! is applied at start-up; cancelled ones never apply; the form fields schedule through the
//! admin app, which refuses viewers. Time is a manual clock the tests move, except in the
//! two-replica test, which runs on real time against two server processes.

mod common;

use std::time::{Duration, Instant};

use common::{new_flag, set_access, TestApp, TestDb};
use gatehouse::config::Backend;
use gatehouse::model::member::Role;
use gatehouse::model::{AccessRules, PlannedChange, ScheduleStatus, ScheduledChange};
use gatehouse::service::{Actor, Change, Clock, Service, ServiceError};
use gatehouse::startup::{Application, ServerSettings};

const START: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;

/// The server on `backend` with a manual clock at [`START`] and no scheduler of its own: the
/// tests move the clock and run the due changes themselves.
async fn app(backend: Backend) -> Option<(TestApp, Clock)> {
    TestApp::spawn_manual(backend, START).await
}

fn everyone_in_production(based_on: i64) -> PlannedChange {
    PlannedChange::SetAccess {
        environment: "production".into(),
        rules: AccessRules::Everyone,
        based_on,
    }
}

async fn schedule(service: &Service, actor: &Actor, flag: &str, at: i64, planned: PlannedChange) -> i64 {
    let change = Change::ScheduleChange {
        flag: flag.into(),
        at,
        planned,
    };
    service
        .apply(actor, change)
        .await
        .expect("the change is scheduled")
        .into_scheduled()
        .unwrap()
}

async fn rules(app: &TestApp, flag: &str) -> (i64, AccessRules, String) {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    let current = page.history.first().unwrap();
    let by = current.created_by.clone().unwrap_or_default();
    (current.version, current.value.clone().unwrap(), by)
}

async fn scheduled(app: &TestApp, flag: &str, id: i64) -> ScheduledChange {
    let page = app
        .service
        .flag_page(&Actor::cli(), flag, "production")
        .await
        .unwrap();
    page.scheduled
        .into_iter()
        .find(|s| s.id == id)
        .expect("the scheduled change is listed")
}

/// Whether the server at `base` serves `flag` enabled to the company acme in production.
async fn served(base: &str, key: &str, flag: &str) -> Option<bool> {
    let body: serde_json::Value = common::client()
        .get(format!("{base}/features/evaluated?context.company.id=acme"))
        .bearer_auth(key)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["features"][flag]["isEnabled"].as_bool()
}

async fn audit_count(app: &TestApp, action: &str, flag: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND subject_key = $2")
        .bind(action)
        .bind(flag)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn applies_at_its_time_and_not_before(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    app.apply(new_flag("checkout")).await;
    let editor = Actor::member(&app.add_member("pm@example.com", Role::Editor).await);
    let id = schedule(
        &app.service,
        &editor,
        "checkout",
        START + 60 * MINUTE,
        everyone_in_production(1),
    )
    .await;
    assert_eq!(
        scheduled(&app, "checkout", id).await.status,
        ScheduleStatus::Pending
    );

    clock.advance(59 * MINUTE);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0, "not due yet");
    assert_eq!(rules(&app, "checkout").await.1, AccessRules::NoOne);

    clock.advance(MINUTE);
    assert_eq!(
        app.service.apply_due_changes().await.unwrap(),
        1,
        "due at its time"
    );
    let (version, current, by) = rules(&app, "checkout").await;
    assert_eq!((version, current), (2, AccessRules::Everyone));
    assert_eq!(by, "pm@example.com", "written as its author");
    let applied = scheduled(&app, "checkout", id).await;
    assert_eq!(applied.status, ScheduleStatus::Applied);
    assert_eq!(applied.settled_at, Some(START + 60 * MINUTE));
    let key = app.publishable_key("production").await;
    assert_eq!(
        served(&app.url(""), &key, "checkout").await,
        Some(true),
        "served at once"
    );

    clock.advance(MINUTE);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0, "applied once");
    assert_eq!(
        audit_count(&app, "flag.scheduled_change_applied", "checkout").await,
        1
    );
    assert_eq!(
        audit_count(&app, "flag.access_rules_changed", "checkout").await,
        1
    );
    let label: String = sqlx::query_scalar(
        "SELECT actor_label FROM audit_log WHERE action = 'flag.access_rules_changed' AND subject_key = 'checkout'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(label, "pm@example.com (scheduled)");
}

#[tokio::test]
async fn applies_at_its_time_and_not_before_sqlite() {
    applies_at_its_time_and_not_before(Backend::Sqlite).await;
}

#[tokio::test]
async fn applies_at_its_time_and_not_before_postgres() {
    applies_at_its_time_and_not_before(Backend::Postgres).await;
}

async fn a_flag_that_moved_on_is_a_conflict(backend: Backend) {
    let Some((app, clock)) = app(backend).await else {
        return;
    };
    app.apply(new_flag("search")).await;
    let member = app.add_member("pm@example.com", Role::Editor).await;
    let editor = Actor::member(&member);
    let id = schedule(
        &app.service,
        &editor,
        "search",
        START + 10 * MINUTE,
        everyone_in_production(1),
    )
    .await;
    // Someone changes the access by hand before the time.
    let by_hand = AccessRules::Some(gatehouse::model::TargetedAccess {
        companies: vec!["acme".into()],
        ..Default::default()
    });
    app.apply(set_access("search", "production", by_hand.clone(), Some(1)))
        .await;

    clock.advance(10 * MINUTE);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    assert_eq!(
        rules(&app, "search").await.1,
        by_hand,
        "the later hand-made change stays"
    );
    let conflict = scheduled(&app, "search", id).await;
    assert_eq!(conflict.status, ScheduleStatus::Conflict);
    assert!(
        conflict.outcome.contains("version 1") && conflict.outcome.contains("version 2"),
        "{}",
        conflict.outcome
    );
    assert_eq!(
        audit_count(&app, "flag.scheduled_change_conflict", "search").await,
        1
    );
    // The author is told on the overview page; others are not.
    let overview = app.service.overview(&editor).await.unwrap();
    assert_eq!(overview.not_applied.len(), 1);
    assert_eq!(overview.not_applied[0].id, id);
    let other = Actor::member(&app.add_member("other@example.com", Role::Editor).await);
    assert!(app.service.overview(&other).await.unwrap().not_applied.is_empty());
    // A form made against an old version is refused when scheduling, too.
    let stale = Change::ScheduleChange {
        flag: "search".into(),
        at: clock.now_ms() + MINUTE,
        planned: everyone_in_production(1),
    };
    assert!(matches!(
        app.service.apply(&editor, stale).await,
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_flag_that_moved_on_is_a_conflict_sqlite() {
    a_flag_that_moved_on_is_a_conflict(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_flag_that_moved_on_is_a_conflict_postgres() {
    a_flag_that_moved_on_is_a_conflict(Backend::Postgres).await;
}

#[tokio::test]
async fn stage_moves_archiving_and_remote_config_can_wait_too() {
    let Some((app, clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("banner")).await;
    let cli = Actor::cli();
    let page = app.service.flag_page(&cli, "banner", "production").await.unwrap();
    let (from, to) = (page.flag.stage_id, page.stages[1].id);
    schedule(
        &app.service,
        &cli,
        "banner",
        START + MINUTE,
        PlannedChange::MoveStage {
            stage_id: to,
            from_stage_id: from,
        },
    )
    .await;
    let variants = vec![gatehouse::model::ConfigVariant {
        key: "blue".into(),
        payload: serde_json::json!({ "color": "blue" }),
        companies: Vec::new(),
        users: Vec::new(),
        segments: Vec::new(),
        is_default: true,
    }];
    let config = PlannedChange::SetRemoteConfig {
        environment: "production".into(),
        variants,
        based_on: 0,
    };
    schedule(&app.service, &cli, "banner", START + 2 * MINUTE, config).await;
    schedule(
        &app.service,
        &cli,
        "banner",
        START + 3 * MINUTE,
        PlannedChange::SetArchived { archived: true },
    )
    .await;

    clock.advance(3 * MINUTE);
    assert_eq!(
        app.service.apply_due_changes().await.unwrap(),
        3,
        "applied soonest first"
    );
    let page = app.service.flag_page(&cli, "banner", "production").await.unwrap();
    assert_eq!(page.flag.stage_id, to);
    assert!(page.flag.archived);
    assert_eq!(page.config.unwrap().variants[0].key, "blue");
    assert!(page.scheduled.iter().all(|s| s.status == ScheduleStatus::Applied));

    // Archiving twice is refused when scheduled, not discovered later.
    let again = Change::ScheduleChange {
        flag: "banner".into(),
        at: clock.now_ms() + MINUTE,
        planned: PlannedChange::SetArchived { archived: true },
    };
    assert!(matches!(
        app.service.apply(&cli, again).await,
        Err(ServiceError::Invalid { .. })
    ));
    // So is a time in the past.
    let past = Change::ScheduleChange {
        flag: "banner".into(),
        at: clock.now_ms() - 1,
        planned: PlannedChange::SetArchived { archived: false },
    };
    match app.service.apply(&cli, past).await {
        Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "at"),
        other => panic!("a past time was accepted: {other:?}"),
    }
}

#[tokio::test]
async fn cancelled_changes_and_demoted_authors_do_not_apply() {
    let Some((app, clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("export")).await;
    let member = app.add_member("pm@example.com", Role::Editor).await;
    let editor = Actor::member(&member);
    let cancelled = schedule(
        &app.service,
        &editor,
        "export",
        START + MINUTE,
        everyone_in_production(1),
    )
    .await;
    app.service
        .apply(&editor, Change::CancelScheduled { id: cancelled })
        .await
        .unwrap();
    let twice = app
        .service
        .apply(&editor, Change::CancelScheduled { id: cancelled })
        .await;
    assert!(matches!(twice, Err(ServiceError::Refused(_))), "{twice:?}");

    let demoted = schedule(
        &app.service,
        &editor,
        "export",
        START + 2 * MINUTE,
        everyone_in_production(1),
    )
    .await;
    app.apply(Change::ChangeRole {
        member_id: member.id,
        role: Role::Viewer,
    })
    .await;
    clock.advance(5 * MINUTE);
    assert_eq!(app.service.apply_due_changes().await.unwrap(), 0);
    assert_eq!(rules(&app, "export").await.1, AccessRules::NoOne);
    assert_eq!(
        scheduled(&app, "export", cancelled).await.status,
        ScheduleStatus::Cancelled
    );
    let failed = scheduled(&app, "export", demoted).await;
    assert_eq!(failed.status, ScheduleStatus::Failed);
    assert!(failed.outcome.contains("no longer"), "{}", failed.outcome);

    // The scheduler's own bookkeeping is not a member's to do.
    let mark = Change::MarkScheduled {
        id: demoted,
        status: ScheduleStatus::Applied,
        reason: "forged".into(),
    };
    let admin = Actor::member(&app.add_member("admin@example.com", Role::Admin).await);
    assert!(matches!(
        app.service.apply(&admin, mark).await,
        Err(ServiceError::Denied(_))
    ));
}

#[tokio::test]
async fn the_flag_page_forms_schedule_and_viewers_are_refused() {
    let Some((app, _clock)) = app(Backend::Sqlite).await else {
        return;
    };
    app.apply(new_flag("pricing")).await;
    app.add_member("pm@example.com", Role::Editor).await;
    app.add_member("viewer@example.com", Role::Viewer).await;
    let form = |apply_at: &'static str| {
        vec![
            ("flag", "pricing"),
            ("environment", "production"),
            ("expected_version", "1"),
            ("form[mode]", "everyone"),
            ("form[companies]", ""),
            ("form[users]", ""),
            ("form[segments]", ""),
            ("apply_at", apply_at),
        ]
    };
    // 1_800_000_000_000 ms is 2027-01-15 08:00 UTC.
    let editor = app.signed_in("pm@example.com").await;
    let response = app
        .call(&editor, "/api/edit/save_access", &form("2027-01-15T09:30"))
        .await;
    assert_eq!(response.status(), 200);
    let notice: String = response.json().await.unwrap();
    assert_eq!(
        notice,
        "Scheduled for 2027-01-15 09:30 UTC. It waits under Scheduled changes until then."
    );
    assert_eq!(
        rules(&app, "pricing").await.1,
        AccessRules::NoOne,
        "nothing changed yet"
    );

    let bad = app
        .call(&editor, "/api/edit/save_access", &form("next tuesday"))
        .await;
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["field"], "at");
    let past = app
        .call(&editor, "/api/edit/save_access", &form("2027-01-15 07:00"))
        .await;
    assert_eq!(past.status(), 422);

    let page = app
        .service
        .flag_page(&Actor::cli(), "pricing", "production")
        .await
        .unwrap();
    assert_eq!(page.scheduled.len(), 1);
    let id = page.scheduled[0].id.to_string();
    let viewer = app.signed_in("viewer@example.com").await;
    let refused = app
        .call(&viewer, "/api/edit/cancel_scheduled", &[("id", &id)])
        .await;
    assert_eq!(refused.status(), 403);
    let refused = app
        .call(&viewer, "/api/edit/save_access", &form("2027-01-15T09:30"))
        .await;
    assert_eq!(refused.status(), 403);
    let anonymous = app
        .call(&common::client(), "/api/edit/cancel_scheduled", &[("id", &id)])
        .await;
    assert_eq!(anonymous.status(), 401);
    let stage = [
        ("flag", "pricing"),
        ("action", "archive"),
        ("from_stage", "1"),
        ("at", "2027-01-15T10:00"),
    ];
    assert_eq!(
        app.call(&viewer, "/api/edit/schedule_flag_change", &stage)
            .await
            .status(),
        403
    );
    let scheduled = app.call(&editor, "/api/edit/schedule_flag_change", &stage).await;
    assert_eq!(scheduled.status(), 200, "{:?}", scheduled.text().await);

    let cancelled = app
        .call(&editor, "/api/edit/cancel_scheduled", &[("id", &id)])
        .await;
    assert_eq!(cancelled.status(), 200);
    let page = app
        .service
        .flag_page(&Actor::cli(), "pricing", "production")
        .await
        .unwrap();
    let pending: Vec<_> = page
        .scheduled
        .iter()
        .filter(|s| s.status == ScheduleStatus::Pending)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].planned, PlannedChange::SetArchived { archived: true });
}

/// The server's own scheduler: its first pass, at start-up, applies what fell due while no
/// server ran.
#[tokio::test]
async fn a_change_due_during_downtime_is_applied_at_start_up() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    {
        let (service, _) = Service::open(&db.url, Clock::manual(START)).await.unwrap();
        service.apply(&Actor::cli(), new_flag("late")).await.unwrap();
        schedule(
            &service,
            &Actor::cli(),
            "late",
            START + MINUTE,
            everyone_in_production(1),
        )
        .await;
        service.close().await;
    }
    let settings = ServerSettings {
        clock: Clock::manual(START + 60 * MINUTE),
        ..ServerSettings::local(db.url.clone(), "127.0.0.1:0")
    };
    let app = Application::build(settings).await.unwrap();
    let service = app.state().service.clone();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let key = common::publishable_key_of(db.url.expose());
    let deadline = Instant::now() + Duration::from_secs(5);
    while served(&base, &key, "late").await != Some(true) {
        assert!(
            Instant::now() < deadline,
            "the overdue change was not applied at start-up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = service
        .flag_page(&Actor::cli(), "late", "production")
        .await
        .unwrap();
    assert_eq!(page.scheduled[0].status, ScheduleStatus::Applied);
    assert_eq!(page.scheduled[0].created_label, "command line");
}

/// Two server processes on one PostgreSQL database, on real time: twenty changes due a few
/// seconds ahead are each applied exactly once, within five seconds of their time, and both
/// processes serve each within a second of its being applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_changes_on_two_replicas_apply_once_and_both_serve_them_within_a_second() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = db.url.expose().to_string();
    let (service, _) = Service::open(&db.url, Clock::system()).await.unwrap();
    let cli = Actor::cli();
    let flags: Vec<String> = (0..20).map(|i| format!("launch-{i:02}")).collect();
    for flag in &flags {
        service.apply(&cli, new_flag(flag)).await.unwrap();
    }
    let replicas = [
        common::serve(common::gatehouse(&url)).await,
        common::serve(common::gatehouse(&url)).await,
    ];
    let key = common::publishable_key_of(&url);
    let due = Clock::system().now_ms() + 3_000;
    for (i, flag) in flags.iter().enumerate() {
        let at = due + (i as i64 % 4) * 250;
        schedule(&service, &cli, flag, at, everyone_in_production(1)).await;
    }

    // When each replica first served each flag enabled, in epoch milliseconds.
    let mut seen: std::collections::HashMap<(usize, String), i64> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < 2 * flags.len() {
        assert!(
            Instant::now() < deadline,
            "not every change was served by both: {seen:?}"
        );
        for (replica, server) in replicas.iter().enumerate() {
            let Ok(response) = common::client()
                .get(server.url("/features/evaluated?context.company.id=acme"))
                .bearer_auth(&key)
                .send()
                .await
            else {
                continue;
            };
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let now = Clock::system().now_ms();
            for flag in &flags {
                if body["features"][flag.as_str()]["isEnabled"] == serde_json::json!(true) {
                    seen.entry((replica, flag.clone())).or_insert(now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pool = db.pool().await;
    let mut slowest = 0;
    for flag in &flags {
        for action in ["flag.scheduled_change_applied", "flag.access_rules_changed"] {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND subject_key = $2")
                    .bind(action)
                    .bind(flag)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(count, 1, "{flag}: {count} × {action}");
        }
        let (due_at, settled_at): (i64, i64) = sqlx::query_as(
            "SELECT s.due_at, s.settled_at FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id WHERE f.key = $1",
        )
        .bind(flag)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            (0..=5_000).contains(&(settled_at - due_at)),
            "{flag} applied {} ms after its time",
            settled_at - due_at
        );
        for replica in 0..2 {
            let served_after = seen[&(replica, flag.clone())] - settled_at;
            assert!(
                served_after <= 1_000,
                "replica {replica} served {flag} {served_after} ms after it was applied"
            );
            slowest = slowest.max(served_after);
        }
    }
    eprintln!("every change applied once; the slowest was served {slowest} ms after it was applied");
    pool.close().await;
    service.close().await;
}
