//! Shared test support: a fresh database per test on either backend, and the real server on a
//! random port.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;

use gatehouse::config::{Backend, DatabaseUrl};
use gatehouse::model::member::{MemberView, Role};
use gatehouse::model::Environment;
use gatehouse::service::runtime::Runtime;
use gatehouse::service::{Actor, Change, Clock, Service};
use gatehouse::startup::{Application, ServerSettings};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::AnyPool;

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

impl TestDb {
    /// A pool of the test's own on the database, for what a test reads or writes by hand.
    pub async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(self.url.expose())
            .await
            .expect("connect to the test database")
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

/// A migrated, seeded database with the service serving from it (no HTTP server), and a pool of
/// the test's own for what it reads or writes by hand.
pub struct Fixture {
    pub service: Service,
    pub pool: AnyPool,
    /// Shared with [`with_service`], which keeps the database until the test body is done even
    /// when the body's future captures only some of the fixture's fields.
    pub db: std::sync::Arc<TestDb>,
}

/// The id of the release stage named `name`.
pub async fn stage_id(service: &Service, name: &str) -> i64 {
    let stages = service.release_stages(&Actor::cli()).await.unwrap();
    stages
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .id
}

impl Fixture {
    pub fn runtime(&self) -> &Runtime {
        self.service.runtime().expect("a serving service")
    }

    pub async fn environment(&self, key: &str) -> Environment {
        environment(&self.service, key).await
    }

    /// Applies a change as the command line (which may do everything).
    pub async fn apply(&self, change: Change) -> gatehouse::service::Outcome {
        self.service
            .apply(&Actor::cli(), change)
            .await
            .expect("the change applies")
    }
}

/// A new flag whose key and name are `key`.
pub fn new_flag(key: &str) -> Change {
    Change::CreateFlag(gatehouse::service::NewFlag {
        key: key.into(),
        name: key.into(),
        ..Default::default()
    })
}

/// Sets a flag's access rules in an environment; `expected` is the version the edit started from.
pub fn set_access(
    flag: &str,
    environment: &str,
    rules: gatehouse::model::AccessRules,
    expected: Option<i64>,
) -> Change {
    Change::SetAccess {
        flag: flag.into(),
        environment: environment.into(),
        change: gatehouse::service::AccessChange::Set(rules),
        expected_version: expected,
    }
}

/// The environment with `key`.
pub async fn environment(service: &Service, key: &str) -> Environment {
    service
        .environments(&Actor::cli())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.key.as_str() == key)
        .unwrap_or_else(|| panic!("no environment {key}"))
}

impl Fixture {
    /// A fresh database on `backend` with the service serving from it; `None` when the
    /// PostgreSQL half is skipped on purpose.
    pub async fn open(backend: Backend) -> Option<Fixture> {
        let db = TestDb::new(backend).await?;
        let (service, _) = Service::serve(&db.url, Clock::system(), Default::default())
            .await
            .expect("open the service");
        let pool = db.pool().await;
        Some(Fixture {
            service,
            pool,
            db: std::sync::Arc::new(db),
        })
    }
}

/// Runs `body` against a fresh [`Fixture`] on `backend`.
pub async fn with_service<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(fixture) = Fixture::open(backend).await else {
        return;
    };
    let (service, pool, db) = (fixture.service.clone(), fixture.pool.clone(), fixture.db.clone());
    body(fixture).await;
    pool.close().await;
    service.close().await;
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
                $crate::common::with_service(gatehouse::config::Backend::Sqlite, $body).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::common::with_service(gatehouse::config::Backend::Postgres, $body).await;
            }
        }
    };
}

/// The real server, on a random port, with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub service: Service,
    pub runtime: Runtime,
    pub client: reqwest::Client,
    /// The test's own pool on the server's database.
    pub pool: AnyPool,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, Clock::system()).await
    }

    /// The server with `clock` as its source of "now".
    pub async fn spawn_with(backend: Backend, clock: Clock) -> Option<TestApp> {
        Self::spawn_configured(backend, |settings| settings.clock = clock).await
    }

    /// The server on a manual clock standing at `start`, without a scheduler of its own: the test
    /// moves the clock and applies due changes itself (`Service::apply_due_changes`).
    pub async fn spawn_manual(backend: Backend, start: i64) -> Option<(TestApp, Clock)> {
        let clock = Clock::manual(start);
        let configured = clock.clone();
        let app = Self::spawn_configured(backend, move |settings| {
            settings.clock = configured;
            settings.scheduler_every = None;
            settings.usage_every = None;
            settings.webhooks_every = None;
        })
        .await?;
        Some((app, clock))
    }

    /// The server with its local settings changed by `configure`.
    pub async fn spawn_configured(
        backend: Backend,
        configure: impl FnOnce(&mut ServerSettings),
    ) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let mut settings = ServerSettings::local(db.url.clone(), "127.0.0.1:0");
        configure(&mut settings);
        let app = Application::build(settings).await.expect("build the application");
        let addr = app.local_addr();
        let service = app.state().service.clone();
        let runtime = app.state().runtime.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        Some(TestApp {
            addr,
            service,
            runtime,
            client: client(),
            pool: db.pool().await,
            db,
        })
    }

    pub async fn environment(&self, key: &str) -> Environment {
        environment(&self.service, key).await
    }

    /// The publishable key of the environment `key`.
    pub async fn publishable_key(&self, key: &str) -> String {
        let environment = self.environment(key).await;
        let (_, keys) = self.service.api_keys(&Actor::cli()).await.unwrap();
        keys.into_iter()
            .find(|k| k.environment_id == environment.id && k.public_value.is_some())
            .and_then(|k| k.public_value)
            .expect("a publishable key")
    }

    /// A service token of the management API with `role` (shown once), created as the command
    /// line does.
    pub async fn service_token(&self, name: &str, role: Role, expires_in_days: Option<i64>) -> String {
        let request = gatehouse::service::NewTokenRequest {
            name: name.into(),
            service_role: Some(role),
            expires_in_days,
        };
        let outcome = self.apply(Change::CreateToken(request)).await;
        outcome.into_token().expect("a token").token
    }

    /// `GET /features/evaluated?<query>` with the publishable key of `environment`.
    pub async fn evaluated(&self, environment: &str, query: &str) -> serde_json::Value {
        let key = self.publishable_key(environment).await;
        let response = self
            .client
            .get(self.url(&format!("/features/evaluated?{query}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Applies a change as the command line (which may do everything).
    pub async fn apply(&self, change: Change) -> gatehouse::service::Outcome {
        self.service
            .apply(&Actor::cli(), change)
            .await
            .expect("the change applies")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a member directly through the service layer.
    pub async fn add_member(&self, email: &str, role: Role) -> MemberView {
        let change = Change::AddMember {
            email: email.into(),
            name: "Test Member".into(),
            role,
            password: PASSWORD.into(),
        };
        self.apply(change).await.into_member().expect("add member")
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
/// The `gatehouse` binary on `database_url`, quiet but for warnings, without the environment's
/// bootstrap admin.
pub fn gatehouse(database_url: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .env_remove("GATEHOUSE_ADMIN_EMAIL")
        .env_remove("GATEHOUSE_ADMIN_PASSWORD")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    command
}

/// Runs a `gatehouse` command to its end on a blocking thread. An async test must not wait for a
/// child process on its runtime's one thread: a write of the test's own server caught mid-way
/// would hold SQLite's write lock until the child gave up ("database is locked").
pub async fn output(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A `gatehouse serve` process on a free loopback port; killed (and reaped) when dropped, so a
/// failing test never leaves one running.
pub struct Server {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` (a [`gatehouse`] command with its options) as `serve` on a free port and waits
/// until `/readyz` answers 200.
pub async fn serve(mut command: std::process::Command) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = command
        .args(["serve", "--addr", &addr])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start gatehouse serve");
    let server = Server {
        child,
        base: format!("http://{addr}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(server.url("/readyz")).await {
            if response.status() == 200 {
                return server;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gatehouse did not become ready on {addr}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The production environment's publishable key, as `gatehouse keys list` prints it.
pub fn publishable_key_of(database_url: &str) -> String {
    let output = gatehouse(database_url).args(["keys", "list"]).output().unwrap();
    let keys = String::from_utf8(output.stdout).unwrap();
    keys.lines()
        .find(|l| l.starts_with("production\tpublishable\t"))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap_or_else(|| panic!("no production publishable key in {keys:?}"))
        .to_string()
}
