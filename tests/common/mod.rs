//! Shared test support: a fresh database per test on either backend, and the real server on a
//! random port.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;

use gatehouse::config::{Backend, DatabaseUrl};
use gatehouse::model::member::{MemberView, Role};
use gatehouse::service::{self, Actor};
use gatehouse::startup::{Application, ServerSettings};
use gatehouse::store::Store;
use rand::distributions::{Alphanumeric, DistString};

/// A database that exists for one test and is dropped afterwards.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
                Some(TestDb {
                    url: DatabaseUrl::parse(&url).unwrap(),
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin_url = match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => url,
                    _ if std::env::var("GATEHOUSE_TEST_SKIP_POSTGRES").is_ok() => {
                        eprintln!("GATEHOUSE_TEST_SKIP_POSTGRES is set: this PostgreSQL test did not run");
                        return None;
                    }
                    _ => panic!(
                        "set GATEHOUSE_TEST_POSTGRES_URL (make test does) or, to skip the PostgreSQL \
                         half of the store tests explicitly, GATEHOUSE_TEST_SKIP_POSTGRES=1"
                    ),
                };
                let name = format!(
                    "gatehouse_test_{}",
                    Alphanumeric
                        .sample_string(&mut rand::thread_rng(), 12)
                        .to_lowercase()
                );
                let admin = sqlx::PgPool::connect(&admin_url)
                    .await
                    .expect("connect to the test PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                let mut url = url::Url::parse(&admin_url).expect("GATEHOUSE_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                Some(TestDb {
                    url: DatabaseUrl::parse(url.as_str()).unwrap(),
                    _dir: None,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs outside async context; a short-lived runtime on its own thread does the work.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&admin)
                            .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs `body` against a migrated, seeded store on `backend`.
pub async fn with_store<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.seed_defaults().await.expect("seed");
    body(store.clone()).await;
    store.close().await;
    drop(db);
}

/// Declares one test per backend, so the output names both: `name::sqlite`, `name::postgres`.
#[macro_export]
macro_rules! store_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $crate::common::with_store(gatehouse::config::Backend::Sqlite, $body).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::common::with_store(gatehouse::config::Backend::Postgres, $body).await;
            }
        }
    };
}

/// The real server, on a random port, with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub runtime: gatehouse::runtime::Runtime,
    pub client: reqwest::Client,
    _db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let app = Application::build(ServerSettings::local(db.url.clone(), "127.0.0.1:0"))
            .await
            .expect("build the application");
        let addr = app.local_addr();
        let store = app.state().store.clone();
        let runtime = app.state().runtime.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        Some(TestApp {
            addr,
            store,
            runtime,
            client: client(),
            _db: db,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a member directly through the service layer.
    pub async fn add_member(&self, email: &str, role: Role) -> MemberView {
        service::members::add_member(&self.store, &Actor::cli(), email, "Test Member", role, PASSWORD)
            .await
            .expect("add member")
    }

    /// A client with its own cookie jar, signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> reqwest::Client {
        let client = client();
        let response = client
            .post(self.url("/api/public/sign_in"))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "sign-in answered {}",
            response.status()
        );
        client
    }

    /// Calls a server function with form arguments.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client.post(self.url(endpoint)).form(form).send().await.unwrap()
    }
}

/// The password every test member gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A client with a cookie jar that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}
