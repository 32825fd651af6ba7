//! What the admin app and the public API reach per request. Low in the module tree: `ui`, `api`
//! and `auth` depend on it, and it depends only on the service below them, so the composition
//! root (`startup`) is imported by nothing. Handlers take the part they use through `FromRef`:
//! the public API the [`Runtime`] (and the [`Service`] for ingest), pages and server functions
//! the [`Service`].

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::service::runtime::Runtime;
use crate::service::Service;

/// One shared allocation: handing it to a request is a reference-count increment.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

#[derive(Debug)]
pub struct AppStateInner {
    pub service: Service,
    pub runtime: Runtime,
    pub leptos_options: LeptosOptions,
    /// The address people use to reach this server, for links (setup, invitations).
    pub public_url: Arc<str>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The caps on open live-update streams.
    pub streams: Arc<StreamLimits>,
    /// The cap on companies, and on users, stored per environment.
    pub entity_cap: EntityCap,
}

/// Most companies, and most users, one environment stores (`--max-entities`).
#[derive(Clone, Copy, Debug)]
pub struct EntityCap(pub usize);

impl FromRef<AppState> for EntityCap {
    fn from_ref(state: &AppState) -> Self {
        state.entity_cap
    }
}

impl AppState {
    pub fn new(
        service: Service,
        runtime: Runtime,
        leptos_options: LeptosOptions,
        public_url: Arc<str>,
        trusted_proxies: Vec<ipnet::IpNet>,
        streams: StreamLimits,
        entity_cap: EntityCap,
    ) -> Self {
        AppState(Arc::new(AppStateInner {
            service,
            runtime,
            leptos_options,
            public_url,
            trusted_proxies: trusted_proxies.into(),
            streams: Arc::new(streams),
            entity_cap,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Service {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

impl FromRef<AppState> for Runtime {
    fn from_ref(state: &AppState) -> Self {
        state.runtime.clone()
    }
}

/// How many live-update streams (`/sse/server`, `/sse/client`, OFREP's events) are open, per API
/// key, per client address and in all, with their caps: a stream holds a connection and a task
/// for as long as the client keeps it, so without caps anyone with the publishable key could
/// hold the server's memory.
#[derive(Debug)]
pub struct StreamLimits {
    pub per_key: usize,
    pub per_address: usize,
    pub total: usize,
    open: std::sync::Mutex<OpenStreams>,
}

#[derive(Debug, Default)]
struct OpenStreams {
    total: usize,
    by_key: std::collections::HashMap<String, usize>,
    by_address: std::collections::HashMap<std::net::IpAddr, usize>,
}

impl StreamLimits {
    pub fn new(per_key: usize, per_address: usize, total: usize) -> Self {
        StreamLimits {
            per_key,
            per_address,
            total,
            open: Default::default(),
        }
    }

    /// A place for one more stream of `key` from `address`, held until the permit is dropped;
    /// `None` when a cap is reached.
    pub fn open(self: &Arc<Self>, key: String, address: std::net::IpAddr) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let by_key = open.by_key.get(&key).copied().unwrap_or(0);
        let by_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.total || by_key >= self.per_key || by_address >= self.per_address {
            return None;
        }
        open.total += 1;
        *open.by_key.entry(key.clone()).or_default() += 1;
        *open.by_address.entry(address).or_default() += 1;
        Some(StreamPermit {
            limits: self.clone(),
            key,
            address,
        })
    }
}

/// One open stream's place; dropped with the stream.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    key: String,
    address: std::net::IpAddr,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        let release = |count: &mut usize| {
            *count = count.saturating_sub(1);
            *count > 0
        };
        if let Some(count) = open.by_key.get_mut(&self.key) {
            if !release(count) {
                open.by_key.remove(&self.key);
            }
        }
        if let Some(count) = open.by_address.get_mut(&self.address) {
            if !release(count) {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// What a live-update stream handler needs besides its key: the caps and whose address to count.
#[derive(Clone, Debug)]
pub struct Streams {
    pub limits: Arc<StreamLimits>,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl FromRef<AppState> for Streams {
    fn from_ref(state: &AppState) -> Self {
        Streams {
            limits: state.streams.clone(),
            trusted_proxies: state.trusted_proxies.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_key_per_address_and_in_all() {
        let limits = Arc::new(StreamLimits::new(2, 2, 3));
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = limits.open("k".into(), a).unwrap();
        let _second = limits.open("k".into(), b).unwrap();
        assert!(limits.open("k".into(), b).is_none(), "per key");
        let _third = limits.open("other".into(), a).unwrap();
        assert!(limits.open("other".into(), a).is_none(), "per address and in all");
        drop(first);
        assert!(
            limits.open("k".into(), b).is_some(),
            "a closed stream frees its place"
        );
    }
}
