//! `GET /metrics` in the Prometheus text format: requests and latency of the public API by
//! route, flag evaluations, and per environment the snapshot's `flagStateVersion` and age and the
//! cached companies and users. Written by hand; the format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::runtime::Runtime;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Set by handlers on their response: how many flags they evaluated.
#[derive(Clone, Copy, Debug)]
pub struct Evaluations(pub u64);

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

/// Counters of one process; the route labels are the router's path templates.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    evaluations: AtomicU64,
}

impl Metrics {
    fn observe(&self, route: String, method: String, status: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.clone(), method, status)).or_default() += 1;
        }
        let seconds = elapsed.as_secs_f64();
        if let Ok(mut latency) = self.latency.lock() {
            let histogram = latency.entry(route).or_default();
            let bucket = BUCKETS
                .iter()
                .position(|b| seconds <= *b)
                .unwrap_or(BUCKETS.len());
            histogram.counts[bucket] += 1;
            histogram.sum += seconds;
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
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "gatehouse_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    escape(route),
                    escape(method)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP gatehouse_http_request_duration_seconds Time to the response head, by route."
        );
        let _ = writeln!(out, "# TYPE gatehouse_http_request_duration_seconds histogram");
        if let Ok(latency) = self.latency.lock() {
            for (route, histogram) in latency.iter() {
                let route = escape(route);
                let mut cumulative = 0;
                for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                cumulative += histogram.counts[BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
                );
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP gatehouse_evaluations_total Flags evaluated by the public API."
        );
        let _ = writeln!(out, "# TYPE gatehouse_evaluations_total counter");
        let _ = writeln!(
            out,
            "gatehouse_evaluations_total {}",
            self.evaluations.load(Ordering::Relaxed)
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
                escape(&snapshot.environment.key),
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
                escape(&snapshot.environment.key),
                (now_ms - snapshot.built_at).max(0) as f64 / 1000.0
            );
        }
        let counts = runtime.entities().counts();
        let environment_key = |id: i64| {
            snapshots
                .iter()
                .find(|s| s.environment.id == id)
                .map_or_else(|| id.to_string(), |s| s.environment.key.clone())
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

/// Middleware: counts each request by route and status, times it, and adds the evaluations its
/// handler reported.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(Evaluations(n)) = response.extensions().get::<Evaluations>() {
        metrics.evaluations.fetch_add(*n, Ordering::Relaxed);
    }
    metrics.observe(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// `GET /metrics`.
pub fn respond(metrics: &Metrics, runtime: &Runtime) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(runtime, crate::store::now_ms()),
    )
        .into_response()
}
