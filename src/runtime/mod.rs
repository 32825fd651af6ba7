//! What the evaluation API serves from: per-environment snapshots of compiled flags and the live
//! API keys, held in memory and swapped atomically after every change, so a request never waits
//! for the database. The companies and users SDKs reported are held here too ([`entities`]), for
//! remote context.
//!
//! A change made through this process is published at once ([`Runtime::publish`]). With
//! PostgreSQL, other replicas hear of it through `LISTEN/NOTIFY` on [`CHANNEL`], and every replica
//! also compares the environments' `flag_state_version`s and reloads the keys periodically, so a
//! lost notification delays an update by at most [`POLL_INTERVAL`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use crate::auth::tokens::sha256_hex;
use crate::config::Backend;
use crate::eval::{
    compile_environment, compile_flags, compile_remote_config, CompileContext, CompiledFlag, FieldTable,
};
use crate::model::{AccessRules, FlagDefinition, FlagKey, RemoteConfig, Segment, SegmentKey, Targeting};
use crate::store::{ApiKeyKind, Environment, SessionPool, Store, StoreError};

pub mod entities;

pub use entities::Entities;

/// The PostgreSQL notification channel for changes.
pub const CHANNEL: &str = "gatehouse_changes";
/// How often replicas compare versions as a fallback for lost notifications.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Everything the API needs to answer for one environment, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    pub environment: Environment,
    /// Flag definitions as `GET /features` serves them, sorted by key.
    pub definitions: Vec<FlagDefinition>,
    /// The same flags compiled for evaluation, in the same order.
    pub compiled: Vec<CompiledFlag>,
    /// The context fields the compiled rules read; bind a request's context to it before
    /// evaluating ([`crate::eval::FlatContext::bind`]).
    pub fields: FieldTable,
    index: HashMap<String, usize>,
    /// When this snapshot was built (epoch ms).
    pub built_at: i64,
}

impl Snapshot {
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn version(&self) -> i64 {
        self.environment.flag_state_version
    }
}

#[derive(Debug, Default)]
struct State {
    snapshots: HashMap<i64, Arc<Snapshot>>,
    by_key: HashMap<String, i64>,
    /// Publishable keys by value and secret keys by SHA-256 digest.
    keys: HashMap<String, (i64, ApiKeyKind)>,
}

/// A change notice for live-update streams: the environment and its new `flagStateVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub environment_id: i64,
    pub flag_state_version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored rules of environment {environment} do not compile: {reason}")]
    Compile { environment: String, reason: String },
}

#[derive(Clone)]
pub struct Runtime {
    store: Store,
    state: Arc<ArcSwap<State>>,
    changes: broadcast::Sender<Change>,
    /// Serialises rebuilds so two refreshes never race to swap older data in.
    rebuild: Arc<tokio::sync::Mutex<()>>,
    /// Reported companies and users, for remote context.
    entities: Arc<Entities>,
    /// Set when the server shuts down, so long-lived streams end and let it stop.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads every environment's snapshot, the keys and the reported companies and users.
    pub async fn load(store: Store) -> Result<Runtime, RuntimeError> {
        let (changes, _) = broadcast::channel(256);
        let entities = Arc::new(Entities::load(&store).await?);
        let runtime = Runtime {
            store,
            entities,
            state: Arc::new(ArcSwap::from_pointee(State::default())),
            changes,
            rebuild: Arc::new(tokio::sync::Mutex::new(())),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        };
        runtime.refresh().await?;
        Ok(runtime)
    }

    pub fn snapshot(&self, environment_id: i64) -> Option<Arc<Snapshot>> {
        self.state.load().snapshots.get(&environment_id).cloned()
    }

    pub fn snapshot_by_key(&self, environment_key: &str) -> Option<Arc<Snapshot>> {
        let state = self.state.load();
        state
            .by_key
            .get(environment_key)
            .and_then(|id| state.snapshots.get(id))
            .cloned()
    }

    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        let mut all: Vec<_> = self.state.load().snapshots.values().cloned().collect();
        all.sort_by_key(|s| (s.environment.sort_order, s.environment.id));
        all
    }

    /// Which environment a presented key opens, from memory.
    pub fn authenticate(&self, presented: &str) -> Option<(i64, ApiKeyKind)> {
        let state = self.state.load();
        if let Some(grant) = state
            .keys
            .get(presented)
            .filter(|(_, kind)| *kind == ApiKeyKind::Publishable)
        {
            return Some(*grant);
        }
        state
            .keys
            .get(&sha256_hex(presented))
            .filter(|(_, kind)| *kind == ApiKeyKind::Secret)
            .copied()
    }

    pub fn entities(&self) -> &Arc<Entities> {
        &self.entities
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Ends every stream made with [`Runtime::until_closed`] (server shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// `stream`, ended when the server shuts down: graceful shutdown waits for open connections,
    /// and a server-sent event stream would otherwise never close.
    pub fn until_closed<T: Send + 'static>(
        &self,
        stream: impl tokio_stream::Stream<Item = T> + Send + 'static,
    ) -> impl tokio_stream::Stream<Item = T> + Send + 'static {
        use tokio_stream::StreamExt;
        enum Item<T> {
            Value(T),
            Closed,
        }
        let closed = tokio_stream::wrappers::WatchStream::new(self.closing.subscribe())
            .filter(|closing| *closing)
            .map(|_| Item::Closed);
        stream
            .map(Item::Value)
            .merge(closed)
            .take_while(|item| matches!(item, Item::Value(_)))
            .filter_map(|item| match item {
                Item::Value(value) => Some(value),
                Item::Closed => None,
            })
    }

    /// Rebuilds the snapshots of environments whose version moved, reloads the key table, and
    /// swaps both in.
    pub async fn refresh(&self) -> Result<(), RuntimeError> {
        let _guard = self.rebuild.lock().await;
        let environments = self.store.environments().await?;
        let previous = self.state.load_full();
        let stale = environments
            .iter()
            .any(|e| previous.snapshots.get(&e.id).is_none_or(|s| s.environment != *e));
        let mut state = State::default();
        if stale {
            let flags = self.store.flags().await?;
            let segments = self.store.segments_by_key().await?;
            for environment in environments {
                let snapshot = match previous.snapshots.get(&environment.id) {
                    Some(snapshot) if snapshot.environment == environment => snapshot.clone(),
                    _ => Arc::new(self.build(environment.clone(), &flags, &segments).await?),
                };
                state.by_key.insert(environment.key.clone(), environment.id);
                state.snapshots.insert(environment.id, snapshot);
            }
        } else {
            state.snapshots = previous.snapshots.clone();
            state.by_key = previous.by_key.clone();
        }
        for key in self.store.live_keys().await? {
            state.keys.insert(key.lookup, (key.environment_id, key.kind));
        }
        let changed: Vec<Change> = state
            .snapshots
            .values()
            .filter(|s| {
                previous
                    .snapshots
                    .get(&s.environment.id)
                    .is_none_or(|p| p.version() != s.version())
            })
            .map(|s| Change {
                environment_id: s.environment.id,
                flag_state_version: s.version(),
            })
            .collect();
        self.state.store(Arc::new(state));
        for change in changed {
            let _ = self.changes.send(change);
        }
        Ok(())
    }

    async fn build(
        &self,
        environment: Environment,
        flags: &[crate::store::flags::FlagRow],
        segments: &HashMap<SegmentKey, Segment>,
    ) -> Result<Snapshot, RuntimeError> {
        let compile_error = |reason: String| RuntimeError::Compile {
            environment: environment.key.clone(),
            reason,
        };
        let targeting: HashMap<i64, (i64, AccessRules)> = self
            .store
            .current_targeting(environment.id)
            .await?
            .into_iter()
            .map(|row| {
                (
                    row.flag_id,
                    (row.version, serde_json::from_str(&row.json).unwrap_or_default()),
                )
            })
            .collect();
        let configs: HashMap<i64, RemoteConfig> = self
            .store
            .current_configs(environment.id)
            .await?
            .into_iter()
            .filter_map(|row| {
                let mut config: RemoteConfig = serde_json::from_str(&row.json).ok()?;
                config.version = row.version as u64;
                Some((row.flag_id, config))
            })
            .collect();
        let access: HashMap<FlagKey, AccessRules> = flags
            .iter()
            .filter_map(|flag| {
                let key = FlagKey::parse(flag.key.clone()).ok()?;
                Some((
                    key,
                    targeting
                        .get(&flag.id)
                        .map(|(_, rules)| rules.clone())
                        .unwrap_or_default(),
                ))
            })
            .collect();
        let cx = CompileContext {
            segments,
            flags: &access,
        };
        let mut compiled_rules = compile_environment(&cx).map_err(|e| compile_error(e.to_string()))?;
        let mut definitions = Vec::new();
        for flag in flags.iter().filter(|f| !f.archived) {
            let Ok(key) = FlagKey::parse(flag.key.clone()) else {
                continue;
            };
            let version = targeting.get(&flag.id).map(|(v, _)| *v).unwrap_or(0);
            let config = match configs.get(&flag.id) {
                Some(config) => {
                    Some(compile_remote_config(config, &cx).map_err(|e| compile_error(e.to_string()))?)
                }
                None => None,
            };
            definitions.push(FlagDefinition {
                key: key.clone(),
                description: (!flag.description.is_empty()).then(|| flag.description.clone()),
                targeting: Targeting {
                    version: version as u64,
                    rules: compiled_rules.remove(&key).unwrap_or_default(),
                },
                config,
            });
        }
        definitions.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        let (compiled, fields) = compile_flags(&definitions);
        let index = definitions
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.as_str().to_string(), i))
            .collect();
        Ok(Snapshot {
            environment,
            definitions,
            compiled,
            fields,
            index,
            built_at: crate::store::now_ms(),
        })
    }

    /// Makes a committed change visible: here at once, on other replicas through PostgreSQL.
    pub async fn publish(&self) {
        if let Err(error) = self.refresh().await {
            tracing::error!(%error, "could not refresh the evaluation snapshots");
        }
        if let SessionPool::Postgres(pool) = self.store.session_pool() {
            if let Err(error) = sqlx::query("SELECT pg_notify($1, 'changed')")
                .bind(CHANNEL)
                .execute(pool)
                .await
            {
                tracing::warn!(%error, "could not notify other replicas; they will catch up by polling");
            }
        }
    }

    /// Keeps this replica current: listens for other replicas' notifications (PostgreSQL) and
    /// compares versions every [`POLL_INTERVAL`] as a fallback.
    pub fn spawn_watchers(&self) {
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(entities::ENTITY_POLL_INTERVAL);
            loop {
                ticker.tick().await;
                if let Err(error) = runtime.entities.refresh(&runtime.store).await {
                    tracing::warn!(%error, "periodic reload of companies and users failed");
                }
            }
        });
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(POLL_INTERVAL);
            loop {
                ticker.tick().await;
                if let Err(error) = runtime.refresh().await {
                    tracing::warn!(%error, "periodic snapshot check failed");
                }
            }
        });
        if self.store.backend() != Backend::Postgres {
            return;
        }
        let SessionPool::Postgres(pool) = self.store.session_pool().clone() else {
            return;
        };
        let runtime = self.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(CHANNEL).await.is_ok() {
                            while listener.recv().await.is_ok() {
                                if let Err(error) = runtime.refresh().await {
                                    tracing::warn!(%error, "refresh after a notification failed");
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot listen for changes; retrying"),
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        });
    }
}
