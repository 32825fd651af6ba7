//! The service as a value: the database, the runtime (when serving), the clock, and the sign-in
//! state (the first-run token and the throttle). Cloning it is one reference-count increment.

use std::sync::Arc;

use super::clock::Clock;
use super::ingest::IngestLimits;
use super::runtime::Runtime;
use super::secrets::SetupToken;
use super::store::seed::SeedReport;
use super::store::sessions::DatabaseSessionStore;
use super::store::Store;
use super::throttle::Throttle;
use crate::config::{Backend, DatabaseUrl};

/// Why the database could not be opened; says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(String);

pub(super) struct Inner {
    pub store: Store,
    pub runtime: Option<Runtime>,
    pub clock: Clock,
    pub setup: SetupToken,
    pub throttle: Throttle,
    pub ingest: IngestGate,
    pub pages: super::page_cache::PageCache,
}

/// The caps on ingest and the places of its bounded write queue.
pub(super) struct IngestGate {
    pub limits: IngestLimits,
    pub queue: Arc<tokio::sync::Semaphore>,
}

impl IngestGate {
    fn new(limits: IngestLimits) -> Self {
        IngestGate {
            limits,
            queue: Arc::new(tokio::sync::Semaphore::new(limits.queue)),
        }
    }
}

#[derive(Clone)]
pub struct Service(pub(super) Arc<Inner>);

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Opens (and for SQLite creates) the database, applies pending migrations and seeds the
    /// defaults. Without a runtime: for the command line, whose changes reach running servers
    /// through the store's change notices and the servers' version checks.
    pub async fn open(url: &DatabaseUrl, clock: Clock) -> Result<(Service, SeedReport), OpenError> {
        let fail = |e: super::store::StoreError| OpenError(e.to_string());
        let store = Store::connect(url).await.map_err(fail)?;
        store.migrate().await.map_err(fail)?;
        let seeded = store.seed_defaults(clock.now_ms()).await.map_err(fail)?;
        let service = Service(Arc::new(Inner {
            store,
            runtime: None,
            clock,
            setup: SetupToken::default(),
            throttle: Throttle::default(),
            ingest: IngestGate::new(IngestLimits::default()),
            pages: Default::default(),
        }));
        Ok((service, seeded))
    }

    /// [`Service::open`], then loads the runtime and keeps it current: for the server, which
    /// ingest within `limits`.
    pub async fn serve(
        url: &DatabaseUrl,
        clock: Clock,
        limits: IngestLimits,
    ) -> Result<(Service, SeedReport), OpenError> {
        let (service, seeded) = Service::open(url, clock).await?;
        let inner = Arc::into_inner(service.0).ok_or_else(|| OpenError("the service is shared".into()))?;
        let runtime = Runtime::load(inner.store.clone(), inner.clock.clone())
            .await
            .map_err(|e| OpenError(format!("cannot load the flags: {e}")))?;
        runtime.spawn_watchers();
        let service = Service(Arc::new(Inner {
            runtime: Some(runtime),
            ingest: IngestGate::new(limits),
            ..inner
        }));
        Ok((service, seeded))
    }

    /// The serving state; present on a server, absent on the command line.
    pub fn runtime(&self) -> Option<&Runtime> {
        self.0.runtime.as_ref()
    }

    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    pub fn backend(&self) -> Backend {
        self.0.store.backend()
    }

    /// Where admin sessions are kept.
    pub fn session_store(&self) -> DatabaseSessionStore {
        DatabaseSessionStore::new(&self.0.store)
    }

    /// True when the database answers and carries every migration of this build.
    pub async fn database_ready(&self) -> bool {
        self.0.store.is_ready().await
    }

    pub async fn close(&self) {
        self.0.store.close().await;
    }

    pub(super) fn store(&self) -> &Store {
        &self.0.store
    }

    /// Makes committed changes visible: rebuilds this process's runtime at once (keys only when
    /// `keys_only`) and tells the other replicas.
    pub(super) async fn publish(&self, keys_only: bool) {
        if let Some(runtime) = &self.0.runtime {
            let refreshed = if keys_only {
                runtime.reload_keys().await
            } else {
                runtime.refresh().await
            };
            if let Err(error) = refreshed {
                tracing::error!(%error, "could not refresh the evaluation snapshots; the periodic check will retry");
            }
        }
        if let Err(error) = self.0.store.notify_changed().await {
            tracing::warn!(%error, "could not notify other replicas; they will catch up by polling");
        }
    }
}
