//! Flags as code: `gatehouse export` writes the whole configuration as one document and
//! `gatehouse import` makes another database match it, checking everything before writing
//! anything. Run on SQLite and on PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`), plus the binary.

mod common;

use common::{set_access, Fixture};
use gatehouse::model::AccessRules;
use gatehouse::service::config_file::{self, ConfigFileError, Difference, Document};
use gatehouse::service::{Actor, AuditFilter, Change, NewFlag, StageRef};
use serde_json::json;

fn rules(value: serde_json::Value) -> AccessRules {
    serde_json::from_value(value).expect("access rules")
}

/// A small but complete configuration, made the way the UI makes it: a segment, two flags (one
/// depending on the other), targeting in two environments, remote config, a stage default and a
/// stage move.
async fn build_configuration(fx: &Fixture) {
    fx.apply(Change::SaveSegment {
        key: "beta-testers".into(),
        name: "Beta testers".into(),
        description: "Companies on the beta plan".into(),
        conditions: serde_json::from_value(json!([
            {"kind": "companyAttribute", "attribute": "plan", "operator": "ANY_OF", "values": ["beta"]},
            {"kind": "companyList", "companies": ["acme", "globex"]}
        ]))
        .unwrap(),
        create: true,
    })
    .await;
    for (key, name) in [("checkout", "New checkout"), ("new-nav", "New navigation")] {
        fx.apply(Change::CreateFlag(NewFlag {
            key: key.into(),
            name: name.into(),
            description: format!("{name}, behind a flag"),
            ..NewFlag::default()
        }))
        .await;
    }
    let checkout = rules(json!({
        "mode": "some",
        "companies": ["initech"],
        "segments": ["beta-testers"],
        "rules": [{
            "conditions": [{"kind": "userAttribute", "attribute": "email", "operator": "CONTAINS", "values": ["@example.com"]}],
            "rolloutPercentage": 25.5,
            "rolloutAttribute": "user"
        }]
    }));
    fx.apply(set_access("checkout", "production", checkout, None))
        .await;
    fx.apply(set_access("checkout", "staging", AccessRules::Everyone, None))
        .await;
    let nav = rules(json!({
        "mode": "some",
        "rules": [{"conditions": [{"kind": "flagAccess", "flag": "checkout", "enabled": true}], "rolloutPercentage": 100}]
    }));
    fx.apply(set_access("new-nav", "production", nav, None)).await;
    fx.apply(Change::SetRemoteConfig {
        flag: "checkout".into(),
        environment: "production".into(),
        variants: serde_json::from_value(json!([
            {"key": "blue", "payload": {"color": "#00f", "size": 2}, "segments": ["beta-testers"]},
            {"key": "plain", "payload": null, "isDefault": true}
        ]))
        .unwrap(),
        expected_version: None,
    })
    .await;
    let beta = stage_id(fx, "Beta").await;
    fx.apply(Change::SetStageDefault {
        stage: StageRef::Id(beta),
        environment: "staging".into(),
        rules: Some(AccessRules::Everyone),
    })
    .await;
    fx.apply(Change::MoveStage {
        flag: "new-nav".into(),
        stage_id: beta,
    })
    .await;
}

async fn stage_id(fx: &Fixture, name: &str) -> i64 {
    common::stage_id(&fx.service, name).await
}

async fn export(fx: &Fixture) -> Document {
    config_file::export(&fx.service, &Actor::cli()).await.unwrap()
}

async fn export_text(fx: &Fixture) -> String {
    export(fx).await.to_json().unwrap()
}

/// A second, fresh database on the same backend as `fx`.
async fn fresh(fx: &Fixture) -> Fixture {
    Fixture::open(fx.db.url.backend())
        .await
        .expect("a second database")
}

async fn import(fx: &Fixture, document: &Document) -> Result<Vec<Difference>, ConfigFileError> {
    config_file::apply(&fx.service, &Actor::cli(), document).await
}

/// Every audit entry, newest first.
async fn audit(fx: &Fixture) -> Vec<gatehouse::service::AuditRecord> {
    let filter = AuditFilter::default();
    fx.service
        .audit_page(&Actor::cli(), &filter, 0, 1000)
        .await
        .unwrap()
        .entries
}

/// What a refused import must leave untouched.
async fn fingerprint(fx: &Fixture) -> (i64, i64, i64, Vec<i64>) {
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&fx.pool)
            .await
            .unwrap()
    };
    let environments = fx.service.environments(&Actor::cli()).await.unwrap();
    let versions = environments.iter().map(|e| e.flag_state_version).collect();
    (
        count("audit_log").await,
        count("flag_targeting_versions").await,
        count("segments").await + count("flags").await + count("release_stages").await,
        versions,
    )
}

fn problems(result: Result<impl std::fmt::Debug, ConfigFileError>) -> Vec<String> {
    match result {
        Err(ConfigFileError::Invalid(problems)) => problems,
        other => panic!("expected the document to be refused, got {other:?}"),
    }
}

store_test!(
    export_of_a_seeded_database_lists_environments_and_stages,
    |fx: Fixture| async move {
        let text = export_text(&fx).await;
        let document: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(document["format"], "gatehouse/1");
        let environments: Vec<_> = document["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["key"].as_str().unwrap(), e["isProduction"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            environments,
            [("production", true), ("staging", false), ("development", false)]
        );
        let stages: Vec<_> = document["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            stages,
            ["In development", "Internal", "Beta", "General availability"]
        );
        assert_eq!(document["segments"], json!([]));
        assert_eq!(document["flags"], json!([]));
        assert!(text.ends_with("}\n"));
    }
);

store_test!(
    export_then_import_into_a_fresh_database_exports_the_same_text,
    |fx: Fixture| async move {
        build_configuration(&fx).await;
        let first = export_text(&fx).await;
        let document = Document::parse(&first).unwrap();
        assert_eq!(document.flags.len(), 2);
        assert_eq!(document.flags[1].stage, "Beta");
        assert!(first.contains("\"rolloutPercentage\": 25.5"), "{first}");

        let fresh = fresh(&fx).await;
        let changes = import(&fresh, &document).await.unwrap();
        assert!(changes.contains(&Difference::CreateSegment(document.segments[0].clone())));
        let second = export_text(&fresh).await;
        assert_eq!(second, first);
        let audit: Vec<_> = audit(&fresh)
            .await
            .into_iter()
            .filter(|e| e.action == "flag.created")
            .collect();
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(|e| e.actor_label == "command line"));
        let environments = fresh.service.environments(&Actor::cli()).await.unwrap();
        assert!(
            environments.iter().all(|e| e.flag_state_version == 1),
            "{environments:?}"
        );
        fresh.service.close().await;
    }
);

store_test!(
    importing_the_same_document_twice_changes_nothing_the_second_time,
    |fx: Fixture| async move {
        build_configuration(&fx).await;
        let document = export(&fx).await;
        let fresh = fresh(&fx).await;
        assert!(!import(&fresh, &document).await.unwrap().is_empty());
        let before = fingerprint(&fresh).await;
        assert_eq!(import(&fresh, &document).await.unwrap(), Vec::new());
        assert_eq!(fingerprint(&fresh).await, before);
        // And the source, which the document came from, already matches it.
        let source = fingerprint(&fx).await;
        assert_eq!(import(&fx, &document).await.unwrap(), Vec::new());
        assert_eq!(fingerprint(&fx).await, source);
        fresh.service.close().await;
    }
);

store_test!(
    a_changed_rule_becomes_one_new_version_in_its_environment_only,
    |fx: Fixture| async move {
        build_configuration(&fx).await;
        let mut document = export(&fx).await;
        let versions_before = fx.service.environments(&Actor::cli()).await.unwrap();
        document.flags[0]
            .access
            .insert("development".into(), AccessRules::Everyone);
        let changes = import(&fx, &document).await.unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            changes[0].to_string(),
            "change access of checkout in development from {\"mode\":\"noOne\"} to {\"mode\":\"everyone\"}"
        );
        let page = fx
            .service
            .flag_page(&Actor::cli(), "checkout", "development")
            .await
            .unwrap();
        assert_eq!(page.history.len(), 2);
        let versions_after = fx.service.environments(&Actor::cli()).await.unwrap();
        for (before, after) in versions_before.iter().zip(versions_after) {
            let bump = i64::from(after.key.as_str() == "development");
            assert_eq!(
                after.flag_state_version,
                before.flag_state_version + bump,
                "{}",
                after.key
            );
        }
        let entries = audit(&fx).await;
        let entry = entries
            .iter()
            .find(|e| e.action == "flag.access_rules_changed")
            .unwrap();
        assert_eq!(entry.subject_key, "checkout");
        assert_eq!(entry.actor_label, "command line");
    }
);

store_test!(
    a_dry_run_lists_the_changes_and_writes_nothing,
    |fx: Fixture| async move {
        build_configuration(&fx).await;
        let document = export(&fx).await;
        let fresh = fresh(&fx).await;
        let before = fingerprint(&fresh).await;
        let lines: Vec<String> = config_file::plan(&fresh.service, &Actor::cli(), &document)
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(fingerprint(&fresh).await, before);
        for expected in [
            "create segment beta-testers",
            "create flag checkout in stage \"In development\"",
            "set access of checkout in staging to {\"mode\":\"everyone\"}",
            "change the default access of stage \"Beta\" in staging from none to {\"mode\":\"everyone\"}",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected:?} missing from {lines:#?}"
            );
        }
        fresh.service.close().await;
    }
);

store_test!(
    invalid_documents_are_refused_with_every_problem_and_nothing_written,
    |fx: Fixture| async move {
        build_configuration(&fx).await;
        let valid = serde_json::to_value(export(&fx).await).unwrap();
        let before = fingerprint(&fx).await;
        let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();

        let mut unknown_segment = valid.clone();
        unknown_segment["flags"][0]["access"]["staging"] = json!({"mode": "some", "segments": ["ghosts"]});
        unknown_segment["flags"][0]["name"] = json!("Renamed, which must not be saved either");
        cases.push((
            unknown_segment,
            "flag checkout, access in staging: segment \"ghosts\" does not exist",
        ));

        let mut cycle = valid.clone();
        cycle["flags"][0]["access"]["production"] = json!({"mode": "some", "rules": [
            {"conditions": [{"kind": "flagAccess", "flag": "new-nav", "enabled": true}], "rolloutPercentage": 100}
        ]});
        cases.push((cycle, "flag access conditions form a cycle"));

        let mut unknown_environment = valid.clone();
        unknown_environment["flags"][1]["access"]["qa"] = json!({"mode": "everyone"});
        cases.push((
            unknown_environment,
            "flags[1] (\"new-nav\").access: no environment has the key \"qa\"",
        ));

        let mut unknown_stage = valid.clone();
        unknown_stage["flags"][1]["stage"] = json!("Sunset");
        cases.push((unknown_stage, "no release stage is named \"Sunset\""));

        let mut new_flag_with_bad_reference = valid.clone();
        new_flag_with_bad_reference["flags"].as_array_mut().unwrap().push(
            json!({"key": "brand-new", "name": "Brand new", "stage": "Beta",
                 "access": {"production": {"mode": "some", "rules": [
                     {"conditions": [{"kind": "flagAccess", "flag": "missing-flag", "enabled": true}]}]}}}),
        );
        cases.push((
            new_flag_with_bad_reference,
            "flag \"missing-flag\" does not exist",
        ));

        for (document, expected) in cases {
            let document = Document::parse(&document.to_string()).expect("well-formed");
            let refused = problems(import(&fx, &document).await);
            assert!(
                refused.iter().any(|p| p.contains(expected)),
                "{expected:?} not in {refused:#?}"
            );
            let planned = problems(config_file::plan(&fx.service, &Actor::cli(), &document).await);
            assert_eq!(planned, refused);
            assert_eq!(fingerprint(&fx).await, before, "{expected}");
        }
        let flags = fx
            .service
            .flag_list(&Actor::cli(), &Default::default(), 0, 50)
            .await
            .unwrap();
        assert!(flags.flags.iter().all(|(f, _)| f.key.as_str() != "brand-new"));
        let checkout = flags
            .flags
            .iter()
            .find(|(f, _)| f.key.as_str() == "checkout")
            .unwrap();
        assert_eq!(checkout.0.name, "New checkout");
    }
);

store_test!(
    malformed_documents_name_the_path_of_every_problem,
    |fx: Fixture| async move {
        let mut document = serde_json::to_value(export(&fx).await).unwrap();
        document["flags"] = json!([
            {"key": "bad key!", "name": "Bad", "stage": "Beta"},
            {"key": "ok", "name": "Ok", "stage": "Beta", "access": {"production": {"mode": "sometimes"}}},
            {"key": "no-name", "stage": "Beta"}
        ]);
        document["segments"] = json!([{"key": "s", "name": "S", "conditions": [{"kind": "nope"}]}]);
        document["colour"] = json!("red");
        let refused = problems(Document::parse(&document.to_string()));
        for expected in [
            "flags[0] (\"bad key!\"): a key may only contain letters, digits",
            "flags[1] (\"ok\").access.production: unknown variant `sometimes`",
            "flags[2] (\"no-name\"): missing field `name`",
            "segments[0] (\"s\"): unknown variant `nope`",
            "colour: unknown field",
        ] {
            assert!(
                refused.iter().any(|p| p.starts_with(expected)),
                "{expected:?} not in {refused:#?}"
            );
        }
        assert_eq!(refused.len(), 5, "{refused:#?}");
        let not_json = problems(Document::parse("{\"format\": "));
        assert_eq!(not_json.len(), 1);
        assert!(not_json[0].starts_with("not a JSON document"), "{not_json:?}");
        let mut wrong_format = document.clone();
        wrong_format["format"] = json!("gatehouse/9");
        wrong_format["flags"] = json!([]);
        wrong_format.as_object_mut().unwrap().remove("colour");
        wrong_format["segments"] = json!([]);
        let parsed = Document::parse(&wrong_format.to_string()).unwrap();
        let refused = problems(config_file::plan(&fx.service, &Actor::cli(), &parsed).await);
        assert!(refused[0].starts_with("format: \"gatehouse/9\""), "{refused:?}");
    }
);

store_test!(
    listed_stages_that_do_not_exist_are_created_after_the_others,
    |fx: Fixture| async move {
        let mut document = export(&fx).await;
        document.stages.push(
            serde_json::from_value(json!({"name": "Sunset", "color": "#991b1b",
                "defaults": {"production": {"mode": "noOne"}}}))
            .unwrap(),
        );
        document.flags.push(
            serde_json::from_value(
                json!({"key": "old-banner", "name": "Old banner", "stage": "Sunset",
                "archived": true, "access": {"staging": {"mode": "everyone"}}}),
            )
            .unwrap(),
        );
        import(&fx, &document).await.unwrap();
        let stages = fx.service.release_stages(&Actor::cli()).await.unwrap();
        assert_eq!(stages.last().unwrap().name, "Sunset");
        let archived = gatehouse::service::FlagFilter {
            archived: true,
            ..Default::default()
        };
        let list = fx
            .service
            .flag_list(&Actor::cli(), &archived, 0, 50)
            .await
            .unwrap();
        let flag = &list
            .flags
            .iter()
            .find(|(f, _)| f.key.as_str() == "old-banner")
            .unwrap()
            .0;
        assert!(flag.archived);
        assert_eq!(flag.stage_id, stages.last().unwrap().id);
        let exported = export(&fx).await;
        let banner = exported
            .flags
            .iter()
            .find(|f| f.key.as_str() == "old-banner")
            .unwrap();
        let access: Vec<_> = banner
            .access
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert_eq!(
            access,
            [
                ("development", AccessRules::NoOne),
                ("production", AccessRules::NoOne),
                ("staging", AccessRules::Everyone)
            ]
        );
        assert_eq!(exported.stages.last(), document.stages.last());
    }
);

mod command_line {
    use std::path::Path;
    use std::process::{Command, Output};

    fn gatehouse(database: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args(args)
            .arg("--database-url")
            .arg(format!("sqlite://{}", database.display()))
            .output()
            .unwrap()
    }

    fn stdout(output: &Output) -> String {
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    const DOCUMENT: &str = r##"{
  "format": "gatehouse/1",
  "segments": [
    {"key": "staff", "name": "Staff", "conditions": [{"kind": "companyList", "companies": ["us"]}]}
  ],
  "flags": [
    {"key": "dark-mode", "name": "Dark mode", "stage": "Beta",
     "access": {"production": {"mode": "some", "segments": ["staff"]}, "staging": {"mode": "everyone"}}}
  ]
}"##;

    #[test]
    fn export_dry_run_and_import_through_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("g.db");
        let file = dir.path().join("flags.json");
        std::fs::write(&file, DOCUMENT).unwrap();
        let file = file.to_str().unwrap();

        let empty = gatehouse(&database, &["export"]);
        assert!(empty.status.success(), "{empty:?}");
        assert!(stdout(&empty).starts_with("{\n  \"format\": \"gatehouse/1\""));

        let dry_run = gatehouse(&database, &["import", file, "--dry-run"]);
        assert!(dry_run.status.success(), "{dry_run:?}");
        let lines = stdout(&dry_run);
        assert!(lines.contains("create segment staff\n"), "{lines}");
        assert!(
            lines.contains("create flag dark-mode in stage \"Beta\"\n"),
            "{lines}"
        );
        assert!(lines.contains("nothing was written"), "{lines}");
        assert_eq!(stdout(&gatehouse(&database, &["export"])), stdout(&empty));

        let imported = gatehouse(&database, &["import", file]);
        assert!(imported.status.success(), "{imported:?}");
        assert!(stdout(&imported).contains("imported"), "{}", stdout(&imported));

        let exported = dir.path().join("exported.json");
        let export = gatehouse(&database, &["export", "--output", exported.to_str().unwrap()]);
        assert!(export.status.success(), "{export:?}");
        let text = std::fs::read_to_string(&exported).unwrap();
        assert!(text.contains("\"key\": \"dark-mode\""), "{text}");
        let again = gatehouse(&database, &["import", exported.to_str().unwrap()]);
        assert!(again.status.success(), "{again:?}");
        assert!(
            stdout(&again).starts_with("nothing to change"),
            "{}",
            stdout(&again)
        );
    }

    #[test]
    fn a_bad_file_is_one_error_line_per_problem_and_exit_code_1() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("g.db");
        let file = dir.path().join("flags.json");
        // Two problems of different kinds: both are reported, each on its own line.
        let bad = DOCUMENT
            .replace("\"staging\"", "\"qa\"")
            .replace("[\"staff\"]}", "[\"staf\"]}");
        std::fs::write(&file, bad).unwrap();
        let output = gatehouse(&database, &["import", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 3, "{stderr}");
        assert!(lines[0].contains("no environment has the key \"qa\""), "{stderr}");
        assert!(lines[1].contains("segment \"staf\" does not exist"), "{stderr}");
        assert!(lines.iter().all(|l| l.starts_with("error: ")), "{stderr}");
        assert!(
            lines[2].ends_with("2 problem(s); nothing was imported"),
            "{stderr}"
        );
        let export = gatehouse(&database, &["export"]);
        assert!(!stdout(&export).contains("dark-mode"));
    }
}
