//! What the segments and flag pages work out, kept while it still holds, so a view does not read
//! every flag's access rules or evaluate rules for every known company each time.
//!
//! - The flags that use each segment depend only on the stored access rules, and every change to
//!   those bumps its environment's `flagStateVersion`: they are kept until a version moves.
//! - How many known companies each segment holds depends on the segments, the companies and
//!   (through date conditions) the time. The counts are kept while the segments are the same and
//!   either no company was reported since ([`Entities::generation`]) and they are under
//!   [`STILL_COUNT_MS`] old, or they are under [`RECOUNT_MS`] old: a company reported since is
//!   counted at the first view five seconds after the last count, so a busy server (SDKs
//!   reporting all the time) counts at most every five seconds however often the page is viewed.
//!   The page says when the companies were counted.
//!
//! - A flag's count of companies with access as served (the flag page) is kept while the
//!   environment's flags and the companies are the same, up to [`STILL_COUNT_MS`].
//!
//! [`Entities::generation`]: super::runtime::entities::Entities::generation

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::{Environment, SegmentKey};

/// Counts younger than this are kept even when companies were reported since.
pub const RECOUNT_MS: i64 = 5_000;
/// Counts are redone at least this often even when nothing was reported (date conditions).
pub const STILL_COUNT_MS: i64 = 600_000;

/// The flags that use each segment, as of the environments' versions.
type UsedBy = (Vec<(i64, i64)>, HashMap<SegmentKey, Vec<String>>);

/// One environment's segment counts and what they were counted from.
#[derive(Clone, Debug)]
pub struct Counted {
    /// The segments' fingerprint ([`fingerprint`]).
    pub segments: u64,
    /// The companies' generation when counted.
    pub generation: u64,
    /// When they were counted (epoch ms).
    pub at: i64,
    /// Known companies of the environment.
    pub companies: usize,
    pub counts: HashMap<SegmentKey, usize>,
}

impl Counted {
    fn holds(&self, segments: u64, generation: u64, now: i64) -> bool {
        let age = now - self.at;
        let recent = (0..RECOUNT_MS).contains(&age);
        let still = self.generation == generation && (0..STILL_COUNT_MS).contains(&age);
        self.segments == segments && (recent || still)
    }
}

/// Where a flag's served count was made: (environment id, flag key, the environment's
/// `flagStateVersion`, the companies' generation).
pub type ServedAt<'k> = (i64, &'k str, i64, u64);

/// A flag's served count: the versions it was made at, when, and `(with access, known)`.
type Served = ((i64, u64), i64, (usize, usize));

/// Most flag counts kept; past it they start over.
const SERVED_KEPT: usize = 10_000;

#[derive(Debug, Default)]
pub struct PageCache {
    used_by: Mutex<Option<UsedBy>>,
    counts: Mutex<HashMap<i64, Counted>>,
    /// Per (environment, flag): where and when its count was made, and the count
    /// `(with access, known)`.
    served: Mutex<HashMap<(i64, String), Served>>,
}

/// The environments' versions, the key of what uses a segment.
fn versions(environments: &[Environment]) -> Vec<(i64, i64)> {
    environments
        .iter()
        .map(|e| (e.id, e.flag_state_version))
        .collect()
}

/// A hash of the segments' definitions: equal while no segment was added, changed or removed.
pub fn fingerprint<'s>(segments: impl Iterator<Item = &'s crate::model::Segment>) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for segment in segments {
        hasher.update(&serde_json::to_vec(segment).unwrap_or_default());
        hasher.update(&[0]);
    }
    hasher.digest()
}

impl PageCache {
    /// The flags that use each segment, if worked out at the environments' current versions.
    pub fn used_by(&self, environments: &[Environment]) -> Option<HashMap<SegmentKey, Vec<String>>> {
        let kept = self.used_by.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|(at, _)| *at == versions(environments))
            .map(|(_, used)| used.clone())
    }

    pub fn keep_used_by(&self, environments: &[Environment], used: &HashMap<SegmentKey, Vec<String>>) {
        let mut kept = self.used_by.lock().unwrap_or_else(|e| e.into_inner());
        *kept = Some((versions(environments), used.clone()));
    }

    /// The environment's counts, if they still hold for these segments, companies and time.
    pub fn counts(&self, environment_id: i64, segments: u64, generation: u64, now: i64) -> Option<Counted> {
        let kept = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&environment_id)
            .filter(|c| c.holds(segments, generation, now))
            .cloned()
    }

    /// A flag's count of companies with access as served, if made at the same versions and
    /// under [`STILL_COUNT_MS`] ago (date conditions move with time).
    pub fn served(
        &self,
        (environment_id, key, version, generation): ServedAt<'_>,
        now: i64,
    ) -> Option<(usize, usize)> {
        let kept = self.served.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&(environment_id, key.to_string()))
            .filter(|(at, when, _)| {
                *at == (version, generation) && (0..STILL_COUNT_MS).contains(&(now - when))
            })
            .map(|(_, _, count)| *count)
    }

    pub fn keep_served(
        &self,
        (environment_id, key, version, generation): ServedAt<'_>,
        now: i64,
        count: (usize, usize),
    ) {
        let mut kept = self.served.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= SERVED_KEPT {
            kept.clear();
        }
        kept.insert(
            (environment_id, key.to_string()),
            ((version, generation), now, count),
        );
    }

    pub fn keep_counts(&self, environment_id: i64, counted: Counted) {
        let mut kept = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(environment_id, counted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(at: i64, generation: u64) -> Counted {
        Counted {
            segments: 7,
            generation,
            at,
            companies: 3,
            counts: HashMap::new(),
        }
    }

    #[test]
    fn counts_hold_while_nothing_moved_and_for_a_while_when_companies_did() {
        let c = counted(1_000, 5);
        assert!(
            c.holds(7, 5, 1_000 + STILL_COUNT_MS - 1),
            "nothing reported: kept"
        );
        assert!(
            !c.holds(7, 5, 1_000 + STILL_COUNT_MS),
            "recounted for date conditions"
        );
        assert!(
            c.holds(7, 6, 1_000 + RECOUNT_MS - 1),
            "companies reported: kept a while"
        );
        assert!(!c.holds(7, 6, 1_000 + RECOUNT_MS), "then recounted");
        assert!(!c.holds(8, 5, 1_001), "a segment changed: recounted at once");
        assert!(!c.holds(7, 5, 999), "a clock set back: recounted");
    }
}
