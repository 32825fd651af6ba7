//! The store's story, run on SQLite and on PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`, an admin
//! URL: each test creates its own `gatehouse_unit_*` database and drops it). These tests live
//! beside the store because nothing outside the service may reach it.

use std::future::Future;

use rand::distributions::{Alphanumeric, DistString};
use sqlx::Executor;

use super::flags::{insert_flag, insert_version, FlagFields};
use super::{Store, StoreError};
use crate::config::{Backend, DatabaseUrl};
use crate::model::{AccessRules, FlagKey};

/// Every table of the domain, as the migrations create it.
const DOMAIN_TABLES: [&str; 24] = [
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
    "usage_hourly",
    "usage_exposures",
    "usage_last_checked",
    "settings",
    "access_tokens",
    "idempotent_requests",
    "audit_log",
    "change_events",
    "_sqlx_migrations",
];

/// Runs `body` against a fresh, unmigrated database of `backend`, then drops it. Without
/// `GATEHOUSE_TEST_POSTGRES_URL` the PostgreSQL half fails, unless
/// `GATEHOUSE_TEST_SKIP_POSTGRES` says to skip it on purpose.
async fn with_database<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(DatabaseUrl) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
            body(DatabaseUrl::parse(&url).expect("a SQLite URL")).await;
        }
        Backend::Postgres => {
            let admin_url = match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => url,
                _ if std::env::var("GATEHOUSE_TEST_SKIP_POSTGRES").is_ok() => return,
                _ => panic!(
                    "set GATEHOUSE_TEST_POSTGRES_URL (make test does) or GATEHOUSE_TEST_SKIP_POSTGRES=1"
                ),
            };
            let name = format!(
                "gatehouse_unit_{}",
                Alphanumeric
                    .sample_string(&mut rand::thread_rng(), 12)
                    .to_lowercase()
            );
            let admin = sqlx::PgPool::connect(&admin_url)
                .await
                .expect("the test PostgreSQL");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
            let mut url = url::Url::parse(&admin_url).expect("GATEHOUSE_TEST_POSTGRES_URL is a URL");
            url.set_path(&name);
            body(DatabaseUrl::parse(url.as_str()).expect("a PostgreSQL URL")).await;
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
            admin.close().await;
        }
    }
}

/// Runs `body` against a migrated, seeded store.
async fn with_store<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    with_database(backend, |url| async move {
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store.seed_defaults(0).await.expect("seed");
        body(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// One test per backend: `name::sqlite`, `name::postgres`.
macro_rules! store_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                with_store(Backend::Sqlite, $body).await;
            }

            #[tokio::test]
            async fn postgres() {
                with_store(Backend::Postgres, $body).await;
            }
        }
    };
}

fn fields(name: &str, stage_id: i64) -> FlagFields<'_> {
    FlagFields {
        name,
        description: "",
        stage_id,
        owner_id: None,
        permanent: false,
        archived: false,
    }
}

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
        let report = store.seed_defaults(1).await.unwrap();
        assert_eq!(report, Default::default());
        assert_eq!(store.environments().await.unwrap(), before);
        assert_eq!(store.release_stages().await.unwrap().len(), 4);
    }
);

store_test!(foreign_keys_are_enforced, |store: Store| async move {
    let result = sqlx::query(
        "INSERT INTO api_keys (environment_id, kind, public_value, prefix, created_at) VALUES (9999, 'publishable', 'x', 'x', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(result.is_err(), "a key for a missing environment must be refused");
});

#[tokio::test]
async fn an_unmigrated_database_is_not_ready() {
    with_database(Backend::Sqlite, |url| async move {
        let store = Store::connect(&url).await.unwrap();
        assert!(!store.is_ready().await);
        store.migrate().await.unwrap();
        assert!(store.is_ready().await);
    })
    .await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    with_database(Backend::Sqlite, |url| async move {
        let store = Store::connect(&url).await.unwrap();
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
    })
    .await;
}

store_test!(
    the_flags_list_filters_counts_and_pages_in_the_database,
    |store: Store| async move {
        use crate::service::store::flags::FlagFilter;
        let stages = store.release_stages().await.unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        for i in 0..10_000 {
            let key = format!("flag-{i:05}");
            let name = if i % 1000 == 7 {
                format!("Checkout {i}")
            } else {
                format!("Flag {i}")
            };
            insert_flag(&mut tx, &key, &fields(&name, stages[i % 2].id), None, 0)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        let (page, total) = store.flags_page(&FlagFilter::default(), 50, 50).await.unwrap();
        assert_eq!(total, 10_000);
        assert_eq!(page.len(), 50);
        assert_eq!(page[0].key.as_str(), "flag-00050");
        assert_eq!(page[49].key.as_str(), "flag-00099");

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
        let stages = store.release_stages().await.unwrap();
        let environment = store.environments().await.unwrap()[0].id;
        let mut tx = store.pool().begin().await.unwrap();
        let mut ids = Vec::new();
        for key in ["a", "b", "c"] {
            ids.push(
                insert_flag(&mut tx, key, &fields(key, stages[0].id), None, 0)
                    .await
                    .unwrap(),
            );
        }
        // a: versions 1 (No one) and 2 (Everyone); b: version 1; c: none.
        for (flag_id, version, rules) in [
            (ids[0], 1, AccessRules::NoOne),
            (ids[0], 2, AccessRules::Everyone),
            (ids[1], 1, AccessRules::NoOne),
        ] {
            insert_version(&mut tx, (flag_id, environment, version), (&rules, None), None, 0)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        let rows = store
            .current_access_rules_of(environment, &[ids[0], ids[2]])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].flag_id, rows[0].version), (ids[0], 2));
        assert_eq!(rows[0].value, Ok(AccessRules::Everyone));
        let mut conn = store.pool().acquire().await.unwrap();
        let all = crate::service::store::flags::current_versions::<AccessRules>(&mut conn, environment)
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let of_all = store.current_access_rules_of(environment, &ids).await.unwrap();
        assert_eq!(of_all, all);
        assert!(store
            .current_access_rules_of(environment, &[])
            .await
            .unwrap()
            .is_empty());
    }
);

store_test!(
    an_unreadable_row_is_named_by_table_and_id_not_read_as_a_default,
    |store: Store| async move {
        let stages = store.release_stages().await.unwrap();
        let environment = store.environments().await.unwrap()[0].id;
        let mut tx = store.pool().begin().await.unwrap();
        let id = insert_flag(&mut tx, "broken", &fields("Broken", stages[0].id), None, 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        sqlx::query(
            "INSERT INTO flag_targeting_versions (flag_id, environment_id, version, access_rules, created_at) \
             VALUES ($1, $2, 1, '{\"mode\": \"sometimes\"', 0)",
        )
        .bind(id)
        .bind(environment)
        .execute(store.pool())
        .await
        .unwrap();
        let rows = store.current_access_rules_of(environment, &[id]).await.unwrap();
        let row = rows[0].value.clone().expect_err("a corrupt row does not decode");
        assert_eq!(row.table, "flag_targeting_versions");
        assert!(!row.id.is_empty());
        // A key that breaks the key rule is named too.
        sqlx::query("UPDATE flags SET key = 'not a key' WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        match store.flags().await {
            Err(StoreError::Corrupt(row)) => {
                assert_eq!((row.table, row.id), ("flags", id.to_string()));
            }
            other => panic!("expected a corrupt flags row, got {other:?}"),
        }
        assert!(FlagKey::parse("not a key").is_err());
    }
);
