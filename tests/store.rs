//! The store's story, run on SQLite and on PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`).

mod common;

use gatehouse::store::Store;

/// Every table of the domain, as the migrations create it.
const DOMAIN_TABLES: [&str; 18] = [
    "environments",
    "api_keys",
    "release_stages",
    "stage_default_rules",
    "members",
    "invitations",
    "segments",
    "flags",
    "flag_targeting_versions",
    "config_variants",
    "flag_config_versions",
    "companies",
    "users",
    "company_users",
    "events",
    "flag_exposures",
    "audit_log",
    "_sqlx_migrations",
];

store_test!(migrations_create_every_domain_table, |store: Store| async move {
    for table in DOMAIN_TABLES {
        let count: Result<i64, _> = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(store.pool())
            .await;
        assert!(count.is_ok(), "table {table} is missing: {count:?}");
    }
    assert!(store.is_ready().await);
});

store_test!(
    first_start_seeds_three_environments_each_with_a_publishable_key,
    |store: Store| async move {
        let environments = store.environments().await.unwrap();
        let names: Vec<_> = environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Production", "Staging", "Development"]);
        assert!(environments[0].is_production);
        assert!(!environments[1].is_production && !environments[2].is_production);
        assert!(environments.iter().all(|e| e.flag_state_version == 0));
        let mut keys = Vec::new();
        for environment in &environments {
            let key = store
                .publishable_key(environment.id)
                .await
                .unwrap()
                .expect("a publishable key");
            assert!(key.starts_with("pub_"), "{key}");
            assert!(key.len() > 22, "{key}");
            keys.push(key);
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3, "publishable keys are distinct");
    }
);

store_test!(
    first_start_seeds_the_four_release_stages_in_order,
    |store: Store| async move {
        let stages = store.release_stages().await.unwrap();
        let names: Vec<_> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["In development", "Internal", "Beta", "General availability"]
        );
        assert!(stages.iter().all(|s| s.color.starts_with('#')));
    }
);

store_test!(
    seeding_and_migrating_again_change_nothing,
    |store: Store| async move {
        let before = store.environments().await.unwrap();
        store.migrate().await.unwrap();
        let report = store.seed_defaults().await.unwrap();
        assert_eq!(report, Default::default());
        assert_eq!(store.environments().await.unwrap(), before);
        assert_eq!(store.release_stages().await.unwrap().len(), 4);
    }
);

store_test!(environment_lookup_by_key, |store: Store| async move {
    let production = store
        .environment_by_key("production")
        .await
        .unwrap()
        .expect("production exists");
    assert_eq!(production.name, "Production");
    assert!(store.environment_by_key("nope").await.unwrap().is_none());
});

store_test!(foreign_keys_are_enforced, |store: Store| async move {
    let result = sqlx::query(
        "INSERT INTO api_keys (environment_id, kind, public_value, prefix, created_at) VALUES (9999, 'publishable', 'x', 'x', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(result.is_err(), "a key for a missing environment must be refused");
});

mod readiness {
    use super::common::TestDb;
    use gatehouse::config::Backend;
    use gatehouse::store::Store;

    #[tokio::test]
    async fn an_unmigrated_database_is_not_ready() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = Store::connect(&db.url).await.unwrap();
        assert!(!store.is_ready().await);
        store.migrate().await.unwrap();
        assert!(store.is_ready().await);
    }

    #[tokio::test]
    async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = Store::connect(&db.url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(timeout >= 1000, "busy timeout {timeout} ms");
    }
}

store_test!(
    the_flags_list_filters_counts_and_pages_in_the_database,
    |store: Store| async move {
        use gatehouse::store::flags::{insert_flag, NewFlag};
        use gatehouse::store::FlagFilter;
        let stages = store.release_stages().await.unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        for i in 0..10_000 {
            let key = format!("flag-{i:05}");
            let name = if i % 1000 == 7 {
                format!("Checkout {i}")
            } else {
                format!("Flag {i}")
            };
            let flag = NewFlag {
                key: &key,
                name: &name,
                description: "",
                stage_id: stages[i % 2].id,
                owner_id: None,
                permanent: false,
            };
            insert_flag(&mut tx, &flag, None, 0).await.unwrap();
        }
        tx.commit().await.unwrap();

        let (page, total) = store.flags_page(&FlagFilter::default(), 50, 50).await.unwrap();
        assert_eq!(total, 10_000);
        assert_eq!(page.len(), 50);
        assert_eq!(page[0].key, "flag-00050");
        assert_eq!(page[49].key, "flag-00099");

        let search = FlagFilter {
            search: " CHECKOUT ".into(),
            ..Default::default()
        };
        let (page, total) = store.flags_page(&search, 0, 50).await.unwrap();
        assert_eq!(total, 10);
        assert!(page.iter().all(|f| f.name.starts_with("Checkout")), "{page:?}");

        let by_stage = FlagFilter {
            stage: Some(stages[1].id),
            search: "flag-0000".into(),
            ..Default::default()
        };
        let (page, total) = store.flags_page(&by_stage, 0, 50).await.unwrap();
        assert_eq!(total, 5);
        assert!(page.iter().all(|f| f.stage_id == stages[1].id));

        let archived = FlagFilter {
            archived: true,
            ..Default::default()
        };
        assert_eq!(store.flags_page(&archived, 0, 50).await.unwrap().1, 0);
        // LIKE's wildcards are searched for as themselves.
        let wildcard = FlagFilter {
            search: "%".into(),
            ..Default::default()
        };
        assert_eq!(store.flags_page(&wildcard, 0, 50).await.unwrap().1, 0);
        // Past the end: an empty page, the same total.
        let (page, total) = store
            .flags_page(&FlagFilter::default(), 10_000, 50)
            .await
            .unwrap();
        assert!(page.is_empty());
        assert_eq!(total, 10_000);
    }
);

store_test!(
    current_access_of_some_flags_is_their_newest_version,
    |store: Store| async move {
        use gatehouse::store::flags::{insert_flag, insert_version, NewFlag, NewVersion, Versioned};
        let stages = store.release_stages().await.unwrap();
        let environment = store.environments().await.unwrap()[0].id;
        let mut tx = store.pool().begin().await.unwrap();
        let mut ids = Vec::new();
        for key in ["a", "b", "c"] {
            let flag = NewFlag {
                key,
                name: key,
                description: "",
                stage_id: stages[0].id,
                owner_id: None,
                permanent: false,
            };
            ids.push(insert_flag(&mut tx, &flag, None, 0).await.unwrap());
        }
        // a: versions 1 and 2; b: version 1; c: none.
        for (flag_id, version) in [(ids[0], 1), (ids[0], 2), (ids[1], 1)] {
            let json = format!("{{\"v\":{version}}}");
            let new = NewVersion {
                kind: Versioned::AccessRules,
                flag_id,
                environment_id: environment,
                version,
                json: &json,
                actor: None,
            };
            insert_version(&mut tx, new, 0).await.unwrap();
        }
        tx.commit().await.unwrap();

        let rows = store
            .current_targeting_of(environment, &[ids[0], ids[2]])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].flag_id, rows[0].version), (ids[0], 2));
        let all = store.current_targeting(environment).await.unwrap();
        assert_eq!(all.len(), 2);
        let of_all = store.current_targeting_of(environment, &ids).await.unwrap();
        assert_eq!(of_all, all);
        assert!(store
            .current_targeting_of(environment, &[])
            .await
            .unwrap()
            .is_empty());
    }
);
