//! Where admin sessions live (tower-sessions' sqlx stores), so any replica serves any member.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{SessionPool, Store};

/// The session store of whichever backend the database is.
#[derive(Clone, Debug)]
pub enum DatabaseSessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl DatabaseSessionStore {
    pub fn new(store: &Store) -> Self {
        match &store.sessions {
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
