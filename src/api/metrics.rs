//! `GET /metrics` in the Prometheus text format: requests and latency of the public API by
//! route, flag evaluations, and per environment the snapshot's `flagStateVersion` and age and the
//! cached companies and users. Written by hand; the format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::service::runtime::Runtime;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Methods with their own counters; others are counted under a lock (they are rare).
const METHODS: [&str; 3] = ["GET", "OPTIONS", "POST"];
/// The methods of HTTP itself; any other is counted as `OTHER`.
const STANDARD_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];
/// Status codes 100..=599 each have a slot.
const STATUSES: usize = 500;

/// One route's counters: atomics, so concurrent requests never wait on each other to be counted.
#[derive(Debug)]
struct RouteStats {
    /// Per method of [`METHODS`], requests per status (`status - 100`).
    by_status: [Box<[AtomicU64]>; METHODS.len()],
    /// Requests with any other method or an out-of-range status.
    other: Mutex<BTreeMap<(String, u16), u64>>,
    /// Observations per latency bucket (not cumulative); the last slot is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            by_status: std::array::from_fn(|_| (0..STATUSES).map(|_| AtomicU64::new(0)).collect()),
            other: Mutex::default(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, method: &str, status: u16, elapsed: Duration) {
        let slot = usize::from(status).checked_sub(100).filter(|s| *s < STATUSES);
        match (METHODS.iter().position(|m| *m == method), slot) {
            (Some(m), Some(slot)) => {
                self.by_status[m][slot].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                // Anyone can send any method name: only the standard ones get a series of their
                // own, the rest share `OTHER`, so the number of series stays bounded.
                let method = STANDARD_METHODS
                    .iter()
                    .copied()
                    .find(|m| *m == method)
                    .unwrap_or("OTHER");
                if let Ok(mut other) = self.other.lock() {
                    *other.entry((method.to_string(), status)).or_default() += 1;
                }
            }
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `(method, status, count)` of every non-zero counter, sorted.
    fn requests(&self) -> Vec<(String, u16, u64)> {
        let mut out = Vec::new();
        for (method, counts) in METHODS.iter().zip(&self.by_status) {
            for (slot, count) in counts.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    out.push((method.to_string(), 100 + slot as u16, count));
                }
            }
        }
        if let Ok(other) = self.other.lock() {
            out.extend(other.iter().map(|((m, s), c)| (m.clone(), *s, *c)));
        }
        out.sort();
        out
    }
}

/// Counters of one process; the route labels are the router's path templates.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: std::sync::RwLock<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Counts one request of `route` (the router's path template).
    pub(crate) fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        // The common case takes only the shared lock: the route has been seen before.
        if let Ok(routes) = self.routes.read() {
            if let Some(stats) = routes.get(route) {
                stats.record(method, status, elapsed);
                return;
            }
        }
        if let Ok(mut routes) = self.routes.write() {
            routes
                .entry(route.to_string())
                .or_insert_with(RouteStats::new)
                .record(method, status, elapsed);
        }
    }

    /// The exposition text, including the runtime's per-environment gauges.
    pub fn render(&self, runtime: &Runtime, now_ms: i64) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail; the results are ignored throughout.
        let _ = writeln!(
            out,
            "# HELP gatehouse_http_requests_total Requests to the public API by route, method and status."
        );
        let _ = writeln!(out, "# TYPE gatehouse_http_requests_total counter");
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        for (route, stats) in routes.iter() {
            for (method, status, count) in stats.requests() {
                let _ = writeln!(
                    out,
                    "gatehouse_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    escape(route),
                    escape(&method)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP gatehouse_http_request_duration_seconds Time to the response head, by route."
        );
        let _ = writeln!(out, "# TYPE gatehouse_http_request_duration_seconds histogram");
        for (route, stats) in routes.iter() {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(stats.buckets.iter()) {
                cumulative += count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += stats.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "gatehouse_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
        drop(routes);
        let _ = writeln!(
            out,
            "# HELP gatehouse_evaluations_total Flags evaluated by the public API."
        );
        let _ = writeln!(out, "# TYPE gatehouse_evaluations_total counter");
        let _ = writeln!(out, "gatehouse_evaluations_total {}", runtime.evaluations());
        let _ = writeln!(
            out,
            "# HELP gatehouse_snapshot_build_failures_total Environment builds that failed (the environment kept serving its last good snapshot)."
        );
        let _ = writeln!(out, "# TYPE gatehouse_snapshot_build_failures_total counter");
        let _ = writeln!(
            out,
            "gatehouse_snapshot_build_failures_total {}",
            runtime.build_failures()
        );
        let stale: Vec<(String, usize)> = runtime
            .stale_environments()
            .into_iter()
            .map(|s| (s.environment, 1))
            .collect();
        gauge_by_environment(
            &mut out,
            "gatehouse_environment_stale",
            "1 for an environment whose newest stored version does not build (see /readyz).",
            &stale,
        );

        let snapshots = runtime.snapshots();
        let _ = writeln!(
            out,
            "# HELP gatehouse_flag_state_version The flagStateVersion served, by environment."
        );
        let _ = writeln!(out, "# TYPE gatehouse_flag_state_version gauge");
        for snapshot in &snapshots {
            let _ = writeln!(
                out,
                "gatehouse_flag_state_version{{environment=\"{}\"}} {}",
                escape(snapshot.environment.key.as_str()),
                snapshot.version()
            );
        }
        let _ = writeln!(
            out,
            "# HELP gatehouse_snapshot_age_seconds Time since the served snapshot was built, by environment."
        );
        let _ = writeln!(out, "# TYPE gatehouse_snapshot_age_seconds gauge");
        for snapshot in &snapshots {
            let _ = writeln!(
                out,
                "gatehouse_snapshot_age_seconds{{environment=\"{}\"}} {:.3}",
                escape(snapshot.environment.key.as_str()),
                (now_ms - snapshot.built_at).max(0) as f64 / 1000.0
            );
        }
        let counts = runtime.entities().counts();
        let environment_key = |id: i64| {
            snapshots
                .iter()
                .find(|s| s.environment.id == id)
                .map_or_else(|| id.to_string(), |s| s.environment.key.to_string())
        };
        let companies: Vec<_> = counts
            .iter()
            .map(|c| (environment_key(c.environment_id), c.companies))
            .collect();
        let users: Vec<_> = counts
            .iter()
            .map(|c| (environment_key(c.environment_id), c.users))
            .collect();
        gauge_by_environment(
            &mut out,
            "gatehouse_cached_companies",
            "Companies held in memory for remote context, by environment.",
            &companies,
        );
        gauge_by_environment(
            &mut out,
            "gatehouse_cached_users",
            "Users held in memory for remote context, by environment.",
            &users,
        );
        out
    }
}

fn gauge_by_environment(out: &mut String, name: &str, help: &str, values: &[(String, usize)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (environment, value) in values {
        let _ = writeln!(out, "{name}{{environment=\"{}\"}} {value}", escape(environment));
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// True when `headers` carry `Authorization: Bearer <token>` (compared in constant time).
pub fn authorized(headers: &axum::http::HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| crate::model::secret::constant_time_eq(presented.trim(), token))
}

/// `GET /metrics`.
pub fn respond(metrics: &Metrics, runtime: &Runtime) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(runtime, runtime.clock().now_ms()),
    )
        .into_response()
}
