//! Slows down password guessing with growing delays instead of lock-outs. After a few free
//! failures, each further failure of an account, or from a client address, doubles the time
//! before the next attempt is heard. An address's delay grows to many minutes; an account's stays
//! short ([`ACCOUNT_MAX_DELAY_MS`]), so someone guessing from elsewhere cannot keep the member out:
//! the right password from a new address gets in after a short wait. Counts live in memory (per
//! replica), bounded in size, and take "now" from the service's clock.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures of an account before its attempts are delayed.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failures from one client address before its attempts are delayed (several accounts may sit
/// behind one address).
pub const ADDRESS_FAILURES: u32 = 20;
/// The first delay; each further failure doubles it.
pub const BASE_DELAY_MS: i64 = 1_000;
/// The longest wait an account's failures can impose.
pub const ACCOUNT_MAX_DELAY_MS: i64 = 30_000;
/// The longest wait an address's failures can impose.
pub const ADDRESS_MAX_DELAY_MS: i64 = 15 * 60 * 1_000;
/// Failures older than this are forgotten.
pub const WINDOW_MS: i64 = 60 * 60 * 1_000;
/// Most keys remembered; past it, the oldest are forgotten first.
const MAX_KEYS: usize = 100_000;

/// Failures of one key: how many, and when the last one was.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last_ms: i64,
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Failures>>,
}

/// The wait a key's failures impose from their last one (0 while they are few).
fn delay(failures: Failures, free: u32, max_ms: i64) -> i64 {
    match failures.count.checked_sub(free) {
        None => 0,
        Some(extra) => BASE_DELAY_MS.saturating_mul(1 << extra.min(30)).min(max_ms),
    }
}

impl Throttle {
    fn keys(account: &str, address: &str) -> [(String, u32, i64); 2] {
        [
            (
                format!("account:{account}"),
                ACCOUNT_FAILURES,
                ACCOUNT_MAX_DELAY_MS,
            ),
            (
                format!("address:{address}"),
                ADDRESS_FAILURES,
                ADDRESS_MAX_DELAY_MS,
            ),
        ]
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until an attempt for `account` from `address` is heard (`None`: now).
    pub fn check(&self, account: &str, address: &str, now_ms: i64) -> Option<i64> {
        let table = self.table();
        Self::keys(account, address)
            .iter()
            .filter_map(|(key, free, max)| {
                let failures = table.get(key).filter(|f| now_ms - f.last_ms < WINDOW_MS)?;
                let ready = failures.last_ms + delay(*failures, *free, *max);
                (ready > now_ms).then_some(ready - now_ms)
            })
            .max()
    }

    pub fn record_failure(&self, account: &str, address: &str, now_ms: i64) {
        let mut table = self.table();
        if table.len() >= MAX_KEYS {
            // Rarely: forget what is old, and if that is not enough, the older half.
            table.retain(|_, f| now_ms - f.last_ms < WINDOW_MS);
            if table.len() >= MAX_KEYS {
                let mut ages: Vec<i64> = table.values().map(|f| f.last_ms).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                table.retain(|_, f| f.last_ms > cutoff);
            }
        }
        for (key, _, _) in Self::keys(account, address) {
            let entry = table.entry(key).or_insert(Failures {
                count: 0,
                last_ms: now_ms,
            });
            entry.count = entry.count.saturating_add(1);
            entry.last_ms = now_ms;
        }
    }

    pub fn record_success(&self, account: &str) {
        self.table().remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_wait_grows_and_stays_short() {
        let throttle = Throttle::default();
        let mut now = 0;
        for _ in 0..ACCOUNT_FAILURES {
            assert_eq!(throttle.check("ana@example.com", "10.0.0.1", now), None);
            throttle.record_failure("ana@example.com", "10.0.0.1", now);
        }
        // From another address: the account's own delay, growing with each further failure.
        let first = throttle.check("ana@example.com", "10.0.0.2", now).unwrap();
        assert_eq!(first, BASE_DELAY_MS);
        for _ in 0..20 {
            now += ACCOUNT_MAX_DELAY_MS;
            throttle.record_failure("ana@example.com", "10.0.0.1", now);
        }
        let capped = throttle.check("ana@example.com", "10.0.0.2", now).unwrap();
        assert_eq!(capped, ACCOUNT_MAX_DELAY_MS);
        assert_eq!(throttle.check("ana@example.com", "10.0.0.2", now + capped), None);
        assert_eq!(
            throttle.check("bob@example.com", "10.0.0.2", now),
            None,
            "others unaffected"
        );
    }

    #[test]
    fn an_address_waits_longer_than_an_account() {
        let throttle = Throttle::default();
        let mut now = 0;
        for i in 0..ADDRESS_FAILURES + 10 {
            now += ACCOUNT_MAX_DELAY_MS;
            throttle.record_failure(&format!("user{i}@example.com"), "10.0.0.9", now);
        }
        let wait = throttle.check("new@example.com", "10.0.0.9", now).unwrap();
        assert!(wait > ACCOUNT_MAX_DELAY_MS, "{wait}");
        assert_eq!(throttle.check("new@example.com", "10.0.0.8", now), None);
    }

    #[test]
    fn success_clears_the_account_count() {
        let throttle = Throttle::default();
        for _ in 0..ACCOUNT_FAILURES + 1 {
            throttle.record_failure("ana@example.com", "10.0.0.1", 0);
        }
        throttle.record_success("ana@example.com");
        assert_eq!(throttle.check("ana@example.com", "10.0.0.3", 0), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let throttle = Throttle::default();
        for i in 0..(MAX_KEYS + 10) {
            throttle.record_failure("ana@example.com", &format!("address-{i}"), i as i64);
        }
        assert!(throttle.table().len() <= MAX_KEYS + 2);
    }
}
