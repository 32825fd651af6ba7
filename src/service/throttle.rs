//! Slows down password guessing: after repeated failures an account, or a client address, is
//! refused for a while. Counts live in memory (per replica), which bounds guessing per replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account within `WINDOW` before it is locked for the rest of the window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failures allowed per client address within `WINDOW` (several accounts behind one NAT).
pub const ADDRESS_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// `Some(wait)` when either key is over its limit.
    pub fn check(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [
            (format!("account:{account}"), ACCOUNT_FAILURES),
            (format!("address:{address}"), ADDRESS_FAILURES),
        ]
        .iter()
        .filter_map(|(key, limit)| {
            let (count, since) = failures.get(key)?;
            let elapsed = now.duration_since(*since);
            (*count >= *limit && elapsed < WINDOW).then(|| WINDOW - elapsed)
        })
        .max()
    }

    pub fn record_failure(&self, account: &str, address: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        for key in [format!("account:{account}"), format!("address:{address}")] {
            let entry = failures.entry(key).or_insert((0, now));
            entry.0 += 1;
        }
    }

    pub fn record_success(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_repeated_failures() {
        let throttle = Throttle::default();
        for _ in 0..ACCOUNT_FAILURES {
            assert!(throttle.check("ana@example.com", "10.0.0.1").is_none());
            throttle.record_failure("ana@example.com", "10.0.0.1");
        }
        assert!(
            throttle.check("ana@example.com", "10.0.0.2").is_some(),
            "locked from any address"
        );
        assert!(
            throttle.check("bob@example.com", "10.0.0.2").is_none(),
            "other accounts unaffected"
        );
    }

    #[test]
    fn an_address_is_locked_after_failures_across_accounts() {
        let throttle = Throttle::default();
        for i in 0..ADDRESS_FAILURES {
            throttle.record_failure(&format!("user{i}@example.com"), "10.0.0.9");
        }
        assert!(throttle.check("new@example.com", "10.0.0.9").is_some());
        assert!(throttle.check("new@example.com", "10.0.0.8").is_none());
    }

    #[test]
    fn success_clears_the_account_count() {
        let throttle = Throttle::default();
        for _ in 0..ACCOUNT_FAILURES - 1 {
            throttle.record_failure("ana@example.com", "10.0.0.1");
        }
        throttle.record_success("ana@example.com");
        throttle.record_failure("ana@example.com", "10.0.0.1");
        assert!(throttle.check("ana@example.com", "10.0.0.3").is_none());
    }
}
