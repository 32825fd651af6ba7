//! The one source of "now" for everything time-based: evaluation of date rules, stored times,
//! expiry of invitations. Tests use a manual clock and move it instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, from the system or from a hand-set value.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `epoch_ms` until it is moved.
    pub fn manual(epoch_ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(epoch_ms))))
    }

    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(manual) => manual.load(Ordering::Relaxed),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
        }
    }

    /// Moves a manual clock by `ms` (back, when negative). The system clock cannot be moved:
    /// returns false and changes nothing.
    pub fn advance(&self, ms: i64) -> bool {
        match &self.0 {
            Some(manual) => {
                manual.fetch_add(ms, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        assert!(shared.advance(500));
        assert_eq!(clock.now_ms(), 1_500);
        assert!(!Clock::system().advance(1));
        assert!(Clock::system().now_ms() > 1_700_000_000_000);
    }
}
