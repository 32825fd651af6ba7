//! Persistence over SQLite and PostgreSQL.
//!
//! One `Store` serves both backends through sqlx's `Any` driver: every query is written once with
//! `$1` placeholders (SQLite accepts them too) and only portable types cross the boundary (`i64`,
//! `String`, `Option`s of them; times are epoch milliseconds, JSON is text). Where the dialects
//! differ, the schema does (`migrations/sqlite`, `migrations/postgres`), not the queries. Sessions
//! need the concrete pool type of `tower-sessions-sqlx-store`, so a second, small pool of that
//! type is opened beside the `Any` pool.

pub mod api_keys;
pub mod audit;
pub mod audit_query;
pub mod config_file;
pub mod entities;
pub mod entities_query;
mod environments;
pub mod flags;
pub mod members;
mod seed;
mod stages;
pub mod stages_write;

pub use environments::{ApiKeyKind, Environment};
pub use flags::FlagFilter;
pub use members::{Invitation, MemberCredentials};
pub use seed::{new_publishable_key, SeedReport};
pub use stages::ReleaseStage;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AnyPool, Executor};

use crate::config::{Backend, DatabaseUrl};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a writer waits for SQLite's lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long start-up waits for the database before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The pool that `tower-sessions-sqlx-store` needs, one variant per backend.
#[derive(Clone, Debug)]
pub enum SessionPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    sessions: SessionPool,
    backend: Backend,
}

impl Store {
    /// Opens (and for SQLite, creates) the database. Does not migrate.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let fail = |reason: String| StoreError::Connect {
            url: url.to_string(),
            reason,
        };
        match url.backend() {
            Backend::Sqlite => {
                if let Some(parent) = url.sqlite_path().as_deref().and_then(std::path::Path::parent) {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
                    }
                }
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(|e| fail(e.to_string()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                // Create the file and switch it to WAL once, through the concrete driver.
                let sessions = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                                 PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(AnyConnectOptions::from_str(url.expose()).map_err(|e| fail(e.to_string()))?)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Store {
                    pool,
                    sessions: SessionPool::Sqlite(sessions),
                    backend: Backend::Sqlite,
                })
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(|e| fail(e.to_string()))?;
                let sessions = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(AnyConnectOptions::from_str(url.expose()).map_err(|e| fail(e.to_string()))?)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Store {
                    pool,
                    sessions: SessionPool::Postgres(sessions),
                    backend: Backend::Postgres,
                })
            }
        }
    }

    /// Applies every pending migration of this backend's dialect. Safe to run from several
    /// processes at once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// True when the database answers and every migration this build knows is applied.
    pub async fn is_ready(&self) -> bool {
        let expected = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Result<i64, _> =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&self.pool)
                .await;
        matches!(applied, Ok(v) if v >= expected)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn session_pool(&self) -> &SessionPool {
        &self.sessions
    }

    pub async fn close(&self) {
        self.pool.close().await;
        match &self.sessions {
            SessionPool::Sqlite(pool) => pool.close().await,
            SessionPool::Postgres(pool) => pool.close().await,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
