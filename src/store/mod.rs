//! Persistence over SQLite and PostgreSQL.
//!
//! One `Store` serves both backends through sqlx's `Any` driver: every query is written once with
//! `$1` placeholders (SQLite accepts them too) and only portable types cross the driver (`i64`,
//! `String`, `Option`s of them; times are epoch milliseconds, JSON is text). Where the dialects
//! differ, the schema does (`migrations/sqlite`, `migrations/postgres`), not the queries. Sessions
//! need the concrete pool type of `tower-sessions-sqlx-store`, so a second, small pool of that
//! type is opened beside the `Any` pool; it also carries PostgreSQL's `LISTEN/NOTIFY`.
//!
//! Rows leave this module decoded into domain types (`model`): a row that does not decode is a
//! [`CorruptRow`] naming its table and id, never a silent default. Each file holds one aggregate:
//! its reads as `Store` methods and its writes as functions on the caller's transaction.
//!
//! Only [`crate::service`] (and the runtime beneath it) may use this module: it is declared inside
//! `service`, so the admin UI and the public API cannot reach it.

pub mod api_keys;
pub mod audit;
pub mod entities;
pub mod environments;
pub mod flags;
pub mod members;
pub mod plans;
pub mod requests;
pub mod scheduled;
pub mod seed;
pub mod segments;
pub mod sessions;
pub mod stages;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod usage;
pub mod webhooks;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Any, AnyPool, Executor, Transaction};

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
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
    #[error("cannot encode a value for the database: {0}")]
    Encode(String),
}

/// A stored row that does not decode: which table, which row, and why. Reported (and logged)
/// instead of being read as some default, which would silently change what a flag does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("row {id} of table {table} cannot be read: {reason}")]
pub struct CorruptRow {
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

/// Decodes a JSON column of row `id` of `table`.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    id: impl std::fmt::Display,
    text: &str,
) -> Result<T, CorruptRow> {
    serde_json::from_str(text).map_err(|e| CorruptRow {
        table,
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// Decodes a validated key column (flag, segment, environment keys) of row `id` of `table`.
pub fn decode_key<K: TryFrom<String, Error = crate::model::KeyError>>(
    table: &'static str,
    id: impl std::fmt::Display,
    key: String,
) -> Result<K, CorruptRow> {
    K::try_from(key).map_err(|e| CorruptRow {
        table,
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// True on PostgreSQL, where a query can lock the rows it reads (`FOR UPDATE`); SQLite's one
/// write lock, taken by `BEGIN IMMEDIATE`, already serializes the transactions that would.
pub fn is_postgres(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

/// The PostgreSQL notification channel on which replicas announce committed changes.
const CHANNEL: &str = "gatehouse_changes";

pub type StoreResult<T> = Result<T, StoreError>;

/// The pool that `tower-sessions-sqlx-store` needs, one variant per backend.
#[derive(Clone, Debug)]
enum SessionPool {
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

    /// Starts a write transaction that holds the given environments for its whole length, so two
    /// changes to one environment are validated one after the other, each seeing the other's
    /// result. PostgreSQL: row locks on the environments (in id order, so writers never
    /// deadlock). SQLite: `BEGIN IMMEDIATE`, its one write lock, taken before anything is read.
    pub async fn begin_write(&self, environment_ids: &[i64]) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let mut ids = environment_ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                if !ids.is_empty() {
                    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT id FROM environments WHERE id IN ({}) ORDER BY id FOR UPDATE",
                        list.join(", ")
                    );
                    let mut query = sqlx::query(&sql);
                    for id in &ids {
                        query = query.bind(*id);
                    }
                    query.execute(&mut *tx).await?;
                }
                Ok(tx)
            }
        }
    }

    /// Tells the other replicas that a change was committed (PostgreSQL; SQLite has one process).
    pub async fn notify_changed(&self) -> StoreResult<()> {
        if let SessionPool::Postgres(pool) = &self.sessions {
            sqlx::query("SELECT pg_notify($1, 'changed')")
                .bind(CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A listener for other replicas' [`Store::notify_changed`]; `None` on SQLite.
    pub async fn listen_changes(&self) -> StoreResult<Option<ChangeListener>> {
        let SessionPool::Postgres(pool) = &self.sessions else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener(listener)))
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

/// Hears other replicas' change notices.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next notice; an error means the connection was lost.
    pub async fn recv(&mut self) -> StoreResult<()> {
        self.0.recv().await?;
        Ok(())
    }
}
