//! The server's memory stays bounded under ingest beyond its caps: the real binary is filled to
//! its configured caps (companies, users), then sent ten times as many requests that would go
//! beyond them (new companies and users, attributes past the per-entity caps), each from a new
//! client address behind a trusted proxy, so the per-address rate-limit buckets see a new key on
//! every request. Its resident memory afterwards must stay within 10 % of its memory at the caps.
//!
//! `GATEHOUSE_MEMORY_REQUESTS=100000 cargo test --features ssr --test memory -- --nocapture`
//! sends 100,000 instead and prints the figures recorded in BENCHMARKS.md.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{gatehouse, publishable_key_of, serve, Server};
use serde_json::{json, Value};

/// Companies, and users, the server may store.
const CAP: usize = 1_000;

impl Server {
    /// Resident memory of the server process, in KiB (`VmRSS`).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

/// The server with the caps this test fills, trusting loopback as a proxy.
async fn start(database_url: &str) -> Server {
    let cap = CAP.to_string();
    let mut command = gatehouse(database_url);
    command
        .args(["--max-entities", &cap])
        .args(["--max-entity-attributes", "20", "--max-entity-bytes", "1024"])
        .args(["--trusted-proxies", "127.0.0.1", "--ingest-rate-per-key", "0"])
        .stderr(Stdio::null());
    serve(command).await
}

/// Request `n` of the flood: a new company with a new user, a new user, or attributes past the
/// caps for a stored company; each would pass a cap.
fn beyond_the_caps(n: usize) -> (&'static str, Value) {
    match n % 3 {
        0 => (
            "/company",
            json!({ "companyId": format!("extra-{n}"), "userId": format!("extra-user-{n}"),
                    "attributes": { "plan": "pro" } }),
        ),
        1 => ("/user", json!({ "userId": format!("extra-user-{n}") })),
        _ => {
            let attributes: serde_json::Map<String, Value> =
                (0..20).map(|i| (format!("f{n}-{i}"), json!("x"))).collect();
            (
                "/company",
                json!({ "companyId": format!("c{}", n % CAP), "attributes": attributes }),
            )
        }
    }
}

/// Sends requests `range` of the flood with 8 workers, each from its own client address;
/// returns how many were refused with 422.
async fn flood(server: &Server, key: &str, range: std::ops::Range<usize>) -> usize {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(range.start));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, next, refused) = (client.clone(), next.clone(), refused.clone());
        let (url, key, end) = (server.url(""), key.to_string(), range.end);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return;
                }
                let (path, body) = beyond_the_caps(n);
                let address = std::net::Ipv4Addr::from(0x0b00_0000u32 + n as u32).to_string();
                let response = client
                    .post(format!("{url}{path}"))
                    .bearer_auth(&key)
                    .header("x-forwarded-for", address)
                    .json(&body)
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                assert!(
                    status == 422,
                    "request {n} to {path}: {status} {}",
                    response.text().await.unwrap()
                );
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    refused.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_ingest_beyond_the_caps() {
    let requests: usize = std::env::var("GATEHOUSE_MEMORY_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10 * CAP);
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/g.db", dir.path().display());
    let server = start(&database_url).await;
    let key = publishable_key_of(&database_url);
    let client = reqwest::Client::new();

    // Fill to the caps: CAP companies with ten attributes each, each with a user of its own.
    for batch in 0..CAP / 100 {
        let items: Vec<Value> = (batch * 100..(batch + 1) * 100)
            .map(|i| {
                let attributes: serde_json::Map<String, Value> = (0..10)
                    .map(|a| (format!("a{a}"), json!(format!("value {i}-{a}"))))
                    .collect();
                json!({ "type": "company", "companyId": format!("c{i}"), "userId": format!("u{i}"),
                        "attributes": attributes })
            })
            .collect();
        let response = client
            .post(server.url("/bulk"))
            .bearer_auth(&key)
            .json(&items)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    // Warm the allocator and the request paths at the caps, then measure.
    let warm = CAP;
    assert_eq!(flood(&server, &key, 0..warm).await, warm);
    let at_caps = server.rss_kib();

    let refused = flood(&server, &key, warm..warm + requests).await;
    assert_eq!(refused, requests);
    let after = server.rss_kib();

    let growth = after as f64 / at_caps as f64 - 1.0;
    println!(
        "| {requests} requests beyond caps of {CAP} companies and {CAP} users | {at_caps} KiB | {after} KiB | {:+.1} % |",
        growth * 100.0
    );
    assert!(
        after as f64 <= at_caps as f64 * 1.10,
        "resident memory grew from {at_caps} KiB at the caps to {after} KiB after {requests} requests beyond them"
    );
    // Nothing beyond the caps was stored, and the server still holds what it held.
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for gauge in ["gatehouse_cached_companies", "gatehouse_cached_users"] {
        let line = format!("{gauge}{{environment=\"production\"}} {CAP}\n");
        assert!(metrics.contains(&line), "{line:?} not in {metrics}");
    }
}
