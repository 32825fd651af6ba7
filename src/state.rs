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
    /// The ingest rate limits.
    pub rates: Arc<IngestRates>,
}

impl AppState {
    pub fn new(
        service: Service,
        runtime: Runtime,
        leptos_options: LeptosOptions,
        public_url: Arc<str>,
        trusted_proxies: Vec<ipnet::IpNet>,
        streams: StreamLimits,
        rates: IngestRates,
    ) -> Self {
        AppState(Arc::new(AppStateInner {
            service,
            runtime,
            leptos_options,
            public_url,
            trusted_proxies: trusted_proxies.into(),
            streams: Arc::new(streams),
            rates: Arc::new(rates),
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

/// The ingest endpoints' rate limits: a token bucket per API key and one per client address
/// (IPv6 clients by their /64, the block one subscriber usually holds), each holding `rate`
/// requests and refilled at `rate` per second; `None` leaves that limit off. Buckets live in
/// `governor`'s keyed limiters, timed by the service's clock (tests move it); buckets that have
/// refilled are dropped every [`PRUNE_EVERY`] checks, so memory follows the clients seen in the
/// last second, not all clients ever seen.
pub struct IngestRates {
    per_key: Option<KeyedBuckets<(i64, &'static str)>>,
    per_address: Option<KeyedBuckets<std::net::IpAddr>>,
    clock: BucketClock,
    checks: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for IngestRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestRates").finish_non_exhaustive()
    }
}

type KeyedBuckets<K> = governor::RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    BucketClock,
    governor::middleware::NoOpMiddleware<governor::nanos::Nanos>,
>;

/// How many checks pass between two prunings of refilled buckets.
pub const PRUNE_EVERY: usize = 4096;

/// The service's clock as `governor` reads it: nanoseconds since the epoch.
#[derive(Clone, Debug)]
struct BucketClock(crate::service::Clock);

impl governor::clock::Clock for BucketClock {
    type Instant = governor::nanos::Nanos;
    fn now(&self) -> Self::Instant {
        let ms = u64::try_from(self.0.now_ms()).unwrap_or(0);
        governor::nanos::Nanos::from(ms.saturating_mul(1_000_000))
    }
}

/// Which limit refused a request, and when it has a token again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    pub per_address: bool,
    pub retry_after: std::time::Duration,
}

impl IngestRates {
    /// Buckets of `per_key` and `per_address` requests per second (0 turns a limit off).
    pub fn new(per_key: u32, per_address: u32, clock: crate::service::Clock) -> Self {
        let clock = BucketClock(clock);
        IngestRates {
            per_key: buckets(per_key, &clock),
            per_address: buckets(per_address, &clock),
            clock,
            checks: Default::default(),
        }
    }

    /// Takes one token from the key's bucket and one from the address's, or says which is empty
    /// and for how long.
    pub fn check(&self, key: (i64, &'static str), address: std::net::IpAddr) -> Result<(), RateLimited> {
        use governor::clock::Clock as _;
        if self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            self.prune();
        }
        let refused = |per_address, not_until: governor::NotUntil<governor::nanos::Nanos>| RateLimited {
            per_address,
            retry_after: not_until.wait_time_from(self.clock.now()),
        };
        if let Some(buckets) = &self.per_address {
            buckets
                .check_key(&subscriber(address))
                .map_err(|n| refused(true, n))?;
        }
        if let Some(buckets) = &self.per_key {
            buckets.check_key(&key).map_err(|n| refused(false, n))?;
        }
        Ok(())
    }

    /// Drops the buckets that are full again.
    fn prune(&self) {
        if let Some(buckets) = &self.per_key {
            buckets.retain_recent();
        }
        if let Some(buckets) = &self.per_address {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }

    /// How many client addresses hold a bucket.
    pub fn tracked_addresses(&self) -> usize {
        self.per_address.as_ref().map_or(0, |b| b.len())
    }
}

/// Buckets of `rate` tokens refilled at `rate` per second; `None` for 0 (no limit).
fn buckets<K: Clone + Eq + std::hash::Hash>(rate: u32, clock: &BucketClock) -> Option<KeyedBuckets<K>> {
    std::num::NonZeroU32::new(rate).map(|rate| {
        let quota = governor::Quota::per_second(rate);
        governor::RateLimiter::new(quota, Default::default(), clock.clone())
    })
}

/// The address a bucket is kept for: an IPv4 address, or an IPv6 address's /64.
fn subscriber(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V4(_) => address,
        std::net::IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// What an ingest handler needs besides its key: the rate limits and whose address to count.
#[derive(Clone, Debug)]
pub struct Ingest {
    pub rates: Arc<IngestRates>,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl FromRef<AppState> for Ingest {
    fn from_ref(state: &AppState) -> Self {
        Ingest {
            rates: state.rates.clone(),
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

    #[test]
    fn an_empty_bucket_refuses_until_it_refills() {
        let clock = crate::service::Clock::manual(1_700_000_000_000);
        let rates = IngestRates::new(3, 2, clock.clone());
        let key = (1, "publishable");
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        rates.check(key, a).unwrap();
        rates.check(key, a).unwrap();
        let refused = rates.check(key, a).unwrap_err();
        assert!(refused.per_address, "the address's bucket of 2 is empty");
        assert!(refused.retry_after > std::time::Duration::ZERO);
        assert!(refused.retry_after <= std::time::Duration::from_millis(500));
        rates.check(key, b).unwrap();
        let refused = rates.check(key, b).unwrap_err();
        assert!(!refused.per_address, "the key's bucket of 3 is empty");
        clock.advance(1_000);
        rates.check(key, a).unwrap();
        rates.check(key, b).unwrap();
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_block() {
        let same: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let neighbour: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(subscriber(same), subscriber(neighbour));
        assert_ne!(subscriber(same), subscriber(other));
    }

    #[test]
    fn refilled_buckets_are_dropped() {
        let clock = crate::service::Clock::manual(1_700_000_000_000);
        let rates = IngestRates::new(0, 10, clock.clone());
        for i in 0..1000u32 {
            let address = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            rates.check((1, "publishable"), address).unwrap();
        }
        assert!(rates.tracked_addresses() >= 999);
        clock.advance(2_000);
        rates.prune();
        assert_eq!(rates.tracked_addresses(), 0);
    }
}
