//! How many distinct companies or users a flag was enabled for: a HyperLogLog++ sketch
//! (`hyperloglogplus`), mergeable across flushes and replicas. In its sparse form (up to some
//! thousands of ids) it is exact but for 25-bit hash collisions; above that it holds 2^12
//! registers (about 3 KB) and estimates within about 1.6 %. Ids are hashed with xxh3, a fixed
//! algorithm, so every replica and every release fills the same registers for the same id.

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};

/// Registers of a dense sketch: 2^12.
const PRECISION: u8 = 12;

/// The hash every sketch uses: xxh3 with its default secret.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct StableHash;

impl std::hash::BuildHasher for StableHash {
    type Hasher = xxhash_rust::xxh3::Xxh3;
    fn build_hasher(&self) -> Self::Hasher {
        xxhash_rust::xxh3::Xxh3::new()
    }
}

/// The id of a company or user as sketches take it: its xxh3 hash.
pub fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// A set of ids, counted approximately.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sketch(HyperLogLogPlus<u64, StableHash>);

impl Default for Sketch {
    fn default() -> Self {
        Sketch(HyperLogLogPlus::new(PRECISION, StableHash).expect("12 is a valid precision"))
    }
}

/// Equal when they hold the same registers (as stored).
impl PartialEq for Sketch {
    fn eq(&self, other: &Sketch) -> bool {
        rmp_serde::to_vec(&self.0).ok() == rmp_serde::to_vec(&other.0).ok()
    }
}

impl Sketch {
    pub fn insert(&mut self, id_hash: u64) {
        self.0.insert(&id_hash);
    }

    /// Adds every id of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        // Both are built with the same precision, the only thing `merge` checks.
        let _ = self.0.merge(&other.0);
    }

    /// How many distinct ids were inserted (estimated).
    pub fn count(&mut self) -> u64 {
        self.0.count().round().max(0.0) as u64
    }

    /// The sketch as stored (MessagePack).
    pub fn to_bytes(&mut self) -> Vec<u8> {
        // Counting folds the insert buffer into the sparse list, so the stored form is compact.
        self.count();
        rmp_serde::to_vec(&self.0).unwrap_or_default()
    }

    /// A stored sketch; `None` when the bytes are not one (then the day starts over).
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        if bytes.is_empty() {
            return Some(Sketch::default());
        }
        rmp_serde::from_slice(bytes).ok().map(Sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sets_are_exact_and_merging_unions() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        for i in 0..300 {
            a.insert(id_hash(&format!("company-{i}")));
        }
        for i in 200..500 {
            b.insert(id_hash(&format!("company-{i}")));
        }
        a.insert(id_hash("company-1"));
        assert_eq!(a.count(), 300);
        a.merge(&b);
        assert_eq!(a.count(), 500);
        let mut stored = Sketch::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(stored.count(), 500);
        assert!(Sketch::from_bytes(b"not a sketch").is_none());
    }

    #[test]
    fn large_sets_are_estimated_closely_in_bounded_space() {
        let mut sketch = Sketch::default();
        for i in 0..100_000 {
            sketch.insert(id_hash(&format!("company-{i}")));
        }
        let count = sketch.count() as f64;
        assert!((count - 100_000.0).abs() / 100_000.0 < 0.05, "{count}");
        assert!(sketch.to_bytes().len() < 8 * 1024);
    }
}
