//! Sessions in the database (tower-sessions), so any replica serves any member.

use async_trait::async_trait;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::store::{SessionPool, Store};

/// The session key that holds the signed-in member's id.
pub const MEMBER_ID: &str = "member_id";
/// Name of the session cookie.
pub const COOKIE_NAME: &str = "gatehouse_session";

/// Cookie and expiry settings.
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    /// Send the cookie over HTTPS only.
    pub secure: bool,
    /// A session unused for this long ends.
    pub idle_minutes: i64,
}

/// The session store of whichever backend the database is.
#[derive(Clone, Debug)]
pub enum DatabaseSessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl DatabaseSessionStore {
    pub fn new(store: &Store) -> Self {
        match store.session_pool() {
            SessionPool::Sqlite(pool) => DatabaseSessionStore::Sqlite(SqliteStore::new(pool.clone())),
            SessionPool::Postgres(pool) => DatabaseSessionStore::Postgres(PostgresStore::new(pool.clone())),
        }
    }
}

#[async_trait]
impl SessionStore for DatabaseSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            DatabaseSessionStore::Sqlite(s) => s.create(record).await,
            DatabaseSessionStore::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            DatabaseSessionStore::Sqlite(s) => s.save(record).await,
            DatabaseSessionStore::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            DatabaseSessionStore::Sqlite(s) => s.load(id).await,
            DatabaseSessionStore::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            DatabaseSessionStore::Sqlite(s) => s.delete(id).await,
            DatabaseSessionStore::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for DatabaseSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            DatabaseSessionStore::Sqlite(s) => s.delete_expired().await,
            DatabaseSessionStore::Postgres(s) => s.delete_expired().await,
        }
    }
}

pub fn session_layer(store: &Store, settings: SessionSettings) -> SessionManagerLayer<DatabaseSessionStore> {
    let sessions = DatabaseSessionStore::new(store);
    // Expired rows are swept hourly; an expired session is refused on load anyway.
    tokio::spawn(
        sessions
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_secs(3600)),
    );
    SessionManagerLayer::new(sessions)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.secure)
        .with_expiry(Expiry::OnInactivity(CookieDuration::minutes(
            settings.idle_minutes,
        )))
}

/// The member id a session carries, if it is signed in.
pub async fn member_id(session: &Session) -> Option<i64> {
    session.get::<i64>(MEMBER_ID).await.ok().flatten()
}
