//! What the evaluation API serves from: per-environment snapshots of compiled flags and the live
//! API keys, held in memory and swapped atomically after every change, so a request never waits
//! for the database. The companies and users SDKs reported are held here too ([`entities`]), for
//! remote context.
//!
//! Serving never freezes: the key table reloads on its own, apart from the snapshots, and an
//! environment whose stored flags no longer build keeps serving its last good snapshot; it is
//! logged, counted and named by [`Runtime::stale_environments`] (and so by `/readyz`) until a
//! change makes it build again. Start-up serves every environment that builds.
//!
//! A change committed through this process is applied at once ([`Runtime::refresh`], called by
//! the service after each commit). With PostgreSQL, other replicas hear of it through the store's
//! change notices, and every replica also compares the environments' `flag_state_version`s and
//! reloads the keys every [`POLL_INTERVAL`], so a lost notice delays an update by at most that.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use super::clock::Clock;
use crate::model::secret::digest;
use crate::model::{ApiKeyKind, Environment};
use crate::service::store::{Store, StoreError, StoreResult};

pub mod entities;
pub mod sketch;
pub mod snapshot;
pub mod usage;

pub use entities::Entities;
pub use snapshot::{BuildError, Inputs, Snapshot};

/// How often replicas compare versions as a fallback for lost notifications.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A change notice for live-update streams: the environment and its new `flagStateVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub environment_id: i64,
    pub flag_state_version: i64,
}

/// An environment whose newest stored version could not be built: it serves its last good
/// snapshot (`serving`, `None` when it never built in this process).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StaleEnvironment {
    pub environment: String,
    pub version: i64,
    pub serving: Option<i64>,
    pub error: String,
    /// When the failure was first seen (epoch ms).
    pub since: i64,
}

#[derive(Debug, Default)]
struct Snapshots {
    by_id: HashMap<i64, Arc<Snapshot>>,
    by_key: HashMap<String, i64>,
}

/// Publishable keys by value and secret keys by digest.
type KeyTable = HashMap<String, (i64, ApiKeyKind)>;

struct Inner {
    store: Store,
    clock: Clock,
    snapshots: ArcSwap<Snapshots>,
    keys: ArcSwap<KeyTable>,
    /// Environments whose newest version failed to build, by id.
    stale: Mutex<BTreeMap<i64, StaleEnvironment>>,
    changes: broadcast::Sender<Change>,
    /// Serialises rebuilds so two refreshes never race to swap older data in.
    rebuild: tokio::sync::Mutex<()>,
    entities: Entities,
    /// Set when the server shuts down, so long-lived streams end and let it stop.
    closing: tokio::sync::watch::Sender<bool>,
    evaluations: AtomicU64,
    build_failures: AtomicU64,
    usage: usage::Usage,
}

/// The serving state; cloning it is one reference-count increment.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads the keys, the reported companies and users, and every environment that builds. Fails
    /// only when the database cannot be read at all.
    pub async fn load(store: Store, clock: Clock) -> StoreResult<Runtime> {
        let entities = Entities::load(&store, &clock).await?;
        let runtime = Runtime(Arc::new(Inner {
            store,
            clock,
            entities,
            snapshots: ArcSwap::from_pointee(Snapshots::default()),
            keys: ArcSwap::from_pointee(KeyTable::new()),
            stale: Mutex::default(),
            changes: broadcast::channel(256).0,
            rebuild: tokio::sync::Mutex::new(()),
            closing: tokio::sync::watch::channel(false).0,
            evaluations: AtomicU64::new(0),
            build_failures: AtomicU64::new(0),
            usage: usage::Usage::default(),
        }));
        runtime.refresh().await?;
        Ok(runtime)
    }

    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    pub fn snapshot(&self, environment_id: i64) -> Option<Arc<Snapshot>> {
        self.0.snapshots.load().by_id.get(&environment_id).cloned()
    }

    pub fn snapshot_by_key(&self, environment_key: &str) -> Option<Arc<Snapshot>> {
        let snapshots = self.0.snapshots.load();
        let id = snapshots.by_key.get(environment_key)?;
        snapshots.by_id.get(id).cloned()
    }

    /// Every snapshot, in the environments' display order.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        let mut all: Vec<_> = self.0.snapshots.load().by_id.values().cloned().collect();
        all.sort_by_key(|s| (s.environment.sort_order, s.environment.id));
        all
    }

    /// Which environment a presented key opens, from memory.
    pub fn authenticate(&self, presented: &str) -> Option<(i64, ApiKeyKind)> {
        let keys = self.0.keys.load();
        if let Some(grant) = keys
            .get(presented)
            .filter(|(_, kind)| *kind == ApiKeyKind::Publishable)
        {
            return Some(*grant);
        }
        keys.get(&digest(presented))
            .filter(|(_, kind)| *kind == ApiKeyKind::Secret)
            .copied()
    }

    pub fn entities(&self) -> &Entities {
        &self.0.entities
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.changes.subscribe()
    }

    /// The environments that serve an older snapshot than what is stored, or none at all.
    pub fn stale_environments(&self) -> Vec<StaleEnvironment> {
        self.0
            .stale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Counts flags evaluated for the API (`gatehouse_evaluations_total`).
    pub fn count_evaluations(&self, n: u64) {
        self.0.evaluations.fetch_add(n, Ordering::Relaxed);
    }

    /// The usage counters, flushed by the service (`service/usage.rs`).
    pub fn usage(&self) -> &usage::Usage {
        &self.0.usage
    }

    pub fn evaluations(&self) -> u64 {
        self.0.evaluations.load(Ordering::Relaxed)
    }

    /// How many snapshot builds failed since start (`gatehouse_snapshot_build_failures_total`).
    pub fn build_failures(&self) -> u64 {
        self.0.build_failures.load(Ordering::Relaxed)
    }

    /// Ends every stream made with [`Runtime::until_closed`] (server shutdown).
    pub fn close(&self) {
        self.0.closing.send_replace(true);
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
        let closed = tokio_stream::wrappers::WatchStream::new(self.0.closing.subscribe())
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

    /// The environment's snapshot once it reaches `version`, waiting for the change broadcast at
    /// most `timeout`; the newest snapshot there is when the time is up. Never rebuilds anything:
    /// a client asking for a version that does not exist costs a wait, not database work.
    pub async fn wait_for_version(
        &self,
        snapshot: Arc<Snapshot>,
        version: i64,
        timeout: Duration,
    ) -> Arc<Snapshot> {
        let environment_id = snapshot.environment.id;
        let mut changes = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.snapshot(environment_id) {
                Some(current) if current.version() >= version => return current,
                _ => {}
            }
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return self.snapshot(environment_id).unwrap_or(snapshot);
                }
                Ok(_) => {}
            }
        }
    }

    /// Reloads the key table, then rebuilds every environment whose stored version moved. The key
    /// table never waits for the snapshots, and one environment that does not build leaves the
    /// others (and its own last good snapshot) serving.
    pub async fn refresh(&self) -> StoreResult<()> {
        let keys = self.reload_keys().await;
        let snapshots = self.rebuild_snapshots().await;
        keys.and(snapshots)
    }

    /// Reloads the API keys (a revoked key stops working here and now).
    pub async fn reload_keys(&self) -> StoreResult<()> {
        let mut keys = KeyTable::new();
        for key in self.0.store.live_keys(self.0.clock.now_ms()).await? {
            keys.insert(key.lookup, (key.environment_id, key.kind));
        }
        self.0.keys.store(Arc::new(keys));
        Ok(())
    }

    async fn rebuild_snapshots(&self) -> StoreResult<()> {
        let _guard = self.0.rebuild.lock().await;
        let environments = self.0.store.environments().await?;
        let previous = self.0.snapshots.load_full();
        let mut next = Snapshots::default();
        let mut changed = Vec::new();
        for environment in environments {
            next.by_key.insert(environment.key.to_string(), environment.id);
            let current = previous.by_id.get(&environment.id);
            if current.is_some_and(|s| s.environment == environment) || self.known_failure(&environment) {
                if let Some(snapshot) = current {
                    next.by_id.insert(environment.id, snapshot.clone());
                }
                continue;
            }
            match self.build(environment.clone()).await {
                Ok(snapshot) => {
                    self.clear_failure(environment.id);
                    if current.is_none_or(|c| c.version() != snapshot.version()) {
                        changed.push(Change {
                            environment_id: environment.id,
                            flag_state_version: snapshot.version(),
                        });
                    }
                    next.by_id.insert(environment.id, Arc::new(snapshot));
                }
                Err(BuildFailure::Store(error)) => return Err(error),
                Err(BuildFailure::Build(error)) => {
                    self.record_failure(&environment, current.map(|s| s.version()), &error);
                    if let Some(snapshot) = current {
                        next.by_id.insert(environment.id, snapshot.clone());
                    }
                }
            }
        }
        self.0.snapshots.store(Arc::new(next));
        for change in changed {
            let _ = self.0.changes.send(change);
        }
        Ok(())
    }

    async fn build(&self, environment: Environment) -> Result<Snapshot, BuildFailure> {
        let mut conn = self.0.store.pool().acquire().await.map_err(StoreError::from)?;
        let inputs = match Inputs::load(&mut conn, environment).await {
            Ok(inputs) => inputs,
            Err(StoreError::Corrupt(row)) => return Err(BuildFailure::Build(BuildError::Corrupt(row))),
            Err(error) => return Err(BuildFailure::Store(error)),
        };
        Snapshot::build(inputs, self.0.clock.now_ms()).map_err(BuildFailure::Build)
    }

    /// True when this very version of the environment already failed to build (it is not tried
    /// again until it changes).
    fn known_failure(&self, environment: &Environment) -> bool {
        let stale = self.0.stale.lock().unwrap_or_else(|e| e.into_inner());
        stale
            .get(&environment.id)
            .is_some_and(|s| s.version == environment.flag_state_version)
    }

    fn record_failure(&self, environment: &Environment, serving: Option<i64>, error: &BuildError) {
        self.0.build_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            environment = %environment.key,
            version = environment.flag_state_version,
            serving = ?serving,
            %error,
            "the environment's flags do not build; it keeps serving its last good snapshot"
        );
        let mut stale = self.0.stale.lock().unwrap_or_else(|e| e.into_inner());
        let since = stale
            .get(&environment.id)
            .map_or_else(|| self.0.clock.now_ms(), |s| s.since);
        stale.insert(
            environment.id,
            StaleEnvironment {
                environment: environment.key.to_string(),
                version: environment.flag_state_version,
                serving,
                error: error.to_string(),
                since,
            },
        );
    }

    fn clear_failure(&self, environment_id: i64) {
        let mut stale = self.0.stale.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(recovered) = stale.remove(&environment_id) {
            tracing::info!(environment = %recovered.environment, "the environment builds again and serves its newest version");
        }
    }

    /// Picks up companies and users stored since the last reload (by other replicas).
    pub async fn reload_entities(&self) -> StoreResult<()> {
        self.0.entities.refresh(&self.0.store, &self.0.clock).await
    }

    /// Keeps this replica current: listens for other replicas' change notices (PostgreSQL),
    /// compares versions every [`POLL_INTERVAL`] as a fallback, and picks up companies and users
    /// that other replicas stored.
    pub fn spawn_watchers(&self) {
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(entities::ENTITY_POLL_INTERVAL);
            loop {
                ticker.tick().await;
                if let Err(error) = runtime.reload_entities().await {
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
        let runtime = self.clone();
        tokio::spawn(async move {
            loop {
                match runtime.0.store.listen_changes().await {
                    Ok(None) => return,
                    Ok(Some(mut listener)) => {
                        while listener.recv().await.is_ok() {
                            if let Err(error) = runtime.refresh().await {
                                tracing::warn!(%error, "refresh after a change notice failed");
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

/// Why a build did not happen: the database could not be read (try again later), or what is
/// stored does not build (the environment is stale until it changes).
enum BuildFailure {
    Store(StoreError),
    Build(BuildError),
}

impl From<StoreError> for BuildFailure {
    fn from(error: StoreError) -> Self {
        BuildFailure::Store(error)
    }
}
