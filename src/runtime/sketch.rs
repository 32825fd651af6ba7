//! How many distinct companies or users a flag was enabled for: a set that is exact while small
//! and a HyperLogLog above, mergeable across flushes and replicas.
//!
//! Up to [`EXACT_LIMIT`] ids a sketch is the set of their 64-bit hashes: exact but for hash
//! collisions (one in about 10^14 at that size), stored as 8 bytes an id, and an insert is a hash
//! lookup. Above, it is `hyperloglogplus`'s `HyperLogLogPF` with 2^12 five-bit registers (about
//! 2.7 KB, ±1.6 %), whose insert is constant time. (The crate's HyperLogLog++ sparse form, used
//! before, re-merged its whole list every 31 inserts: a company's first check of the day cost
//! about 800 instructions per flag.) While the server collects a day's exposures, the dense form
//! is a plain byte per register (4 KB), raised in place with the register and rank computed once
//! per id for all its flags, and handed to the crate to be counted, merged or stored: the crate
//! keeps the estimate, the merge and the stored layout. Ids are hashed with xxh3, a fixed
//! algorithm, so every replica and every release fills the same registers for the same id.
//!
//! Stored form: a tag byte, then the hashes (little-endian, ascending) or the registers
//! (MessagePack). Rows written before the tag existed are HyperLogLog++ sketches in MessagePack;
//! they are read into the dense form (their registers are the same hash's), so old days keep
//! their counts and merge with new rows without counting an id twice.

use std::hash::{BuildHasher, Hasher};

use hyperloglogplus::{HyperLogLog, HyperLogLogPF};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// Registers of a dense sketch: 2^12.
const PRECISION: u8 = 12;
/// Most ids a sketch keeps exactly.
pub const EXACT_LIMIT: usize = 512;
/// Tag of the stored exact form.
const EXACT: u8 = 1;
/// Tag of the stored dense form.
const DENSE: u8 = 2;

/// The id of a company or user as sketches take it: its xxh3 hash.
pub fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The hash whose bits a sketch uses for an id hash: xxh3 of its bytes (what the HyperLogLog++
/// rows before the tag hashed, so their registers line up with these).
fn register_hash(id_hash: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&id_hash.to_ne_bytes())
}

/// An id as sketches keep it, computed once for all the sketches one id goes into: its hash, and
/// the register and rank it raises in a dense sketch.
#[derive(Clone, Copy, Debug)]
pub struct RegisterHash {
    hash: u64,
    index: u16,
    rank: u8,
}

impl RegisterHash {
    pub fn of(id_hash: u64) -> RegisterHash {
        RegisterHash::from_register_hash(register_hash(id_hash))
    }

    fn from_register_hash(hash: u64) -> RegisterHash {
        let (index, rank) = register_and_rank(hash);
        RegisterHash { hash, index, rank }
    }
}

/// Registers of a dense sketch.
const REGISTERS: usize = 1 << PRECISION;

/// The register a register hash raises and to what, exactly as `HyperLogLogPF` computes them
/// from the upper half it is given (the top 12 bits choose the register; the rank is 1 + the
/// leading zeros of the other 20, at most 21).
fn register_and_rank(hash: u64) -> (u16, u8) {
    let upper = (hash >> 32) as u32;
    let index = upper >> (32 - u32::from(PRECISION));
    let rank = ((upper << PRECISION) | (1 << (PRECISION - 1))).leading_zeros() + 1;
    (index as u16, rank as u8)
}

/// Hands the dense sketch the bits it is given: it takes the upper half of a register hash,
/// whose top 12 bits choose the register, as the classic HyperLogLog++ layout does.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Given;

#[derive(Default)]
pub struct GivenHasher(u64);

impl Hasher for GivenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

impl BuildHasher for Given {
    type Hasher = GivenHasher;
    fn build_hasher(&self) -> GivenHasher {
        GivenHasher::default()
    }
}

pub type Dense = HyperLogLogPF<u32, Given>;

fn dense() -> Dense {
    HyperLogLogPF::new(PRECISION, Given).expect("12 is a valid precision")
}

/// Sets the register `index` to at least `rank` (1 + the leading zeros after the index bits).
fn raise(dense: &mut Dense, index: u32, rank: u32) {
    // The 20 bits after the index hold `rank - 1` zeros, then a one (none when the rank is 21).
    let rest = if rank <= 20 { 1 << (20 - rank) } else { 0 };
    dense.insert(&((index << 20) | rest));
}

/// A set of ids, counted exactly while small and approximately above.
#[derive(Clone, Debug)]
pub enum Sketch {
    /// Register hashes, at most [`EXACT_LIMIT`].
    Exact(FxHashSet<u64>),
    Dense(Box<Dense>),
    /// The dense form while this process collects exposures into it: one byte a register, raised
    /// in place (a compare and a store, where the crate's insert hashes and unpacks five-bit
    /// registers); it becomes the crate's form when counted, merged or stored, with the same
    /// registers.
    Registers(Box<[u8; REGISTERS]>),
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::Exact(FxHashSet::default())
    }
}

/// Equal when they are stored alike (the exact form sorted).
impl PartialEq for Sketch {
    fn eq(&self, other: &Sketch) -> bool {
        self.clone().to_bytes() == other.clone().to_bytes()
    }
}

impl Sketch {
    pub fn insert(&mut self, id_hash: u64) {
        self.insert_hashed(RegisterHash::of(id_hash));
    }

    /// [`Sketch::insert`] of an id already hashed. Past [`EXACT_LIMIT`] the set becomes
    /// registers.
    pub fn insert_hashed(&mut self, id: RegisterHash) {
        match self {
            Sketch::Exact(hashes) => {
                if hashes.insert(id.hash) && hashes.len() > EXACT_LIMIT {
                    let mut registers = Box::new([0u8; REGISTERS]);
                    for h in hashes.iter() {
                        let (index, rank) = register_and_rank(*h);
                        let register = &mut registers[usize::from(index)];
                        *register = (*register).max(rank);
                    }
                    *self = Sketch::Registers(registers);
                }
            }
            Sketch::Registers(registers) => {
                let register = &mut registers[usize::from(id.index)];
                if *register < id.rank {
                    *register = id.rank;
                }
            }
            Sketch::Dense(d) => d.insert(&((id.hash >> 32) as u32)),
        }
    }

    fn insert_hash(&mut self, hash: u64) {
        self.insert_hashed(RegisterHash::from_register_hash(hash));
    }

    /// The crate's dense form of in-place registers.
    fn dense_of(registers: &[u8; REGISTERS]) -> Dense {
        let mut d = dense();
        for (index, rank) in registers.iter().enumerate() {
            if *rank > 0 {
                raise(&mut d, index as u32, u32::from(*rank));
            }
        }
        d
    }

    /// This sketch with in-place registers turned into the crate's form.
    fn settled(&self) -> std::borrow::Cow<'_, Sketch> {
        match self {
            Sketch::Registers(registers) => {
                std::borrow::Cow::Owned(Sketch::Dense(Box::new(Sketch::dense_of(registers))))
            }
            other => std::borrow::Cow::Borrowed(other),
        }
    }

    /// Turns in-place registers into the crate's form, in place.
    fn settle(&mut self) {
        if let std::borrow::Cow::Owned(settled) = self.settled() {
            *self = settled;
        }
    }

    /// Adds every id of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.settle();
        match (&mut *self, other.settled().as_ref()) {
            (_, Sketch::Exact(hashes)) => {
                for h in hashes {
                    self.insert_hash(*h);
                }
            }
            (Sketch::Dense(d), Sketch::Dense(o)) => {
                // Both are built with the same precision, the only thing `merge` checks.
                let _ = d.merge(o.as_ref());
            }
            (Sketch::Exact(_), Sketch::Dense(o)) => {
                let mine = std::mem::replace(self, Sketch::Dense(o.clone()));
                self.merge(&mine);
            }
            (_, Sketch::Registers(_)) | (Sketch::Registers(_), _) => unreachable!("settled above"),
        }
    }

    /// How many distinct ids were inserted (exact while small, else estimated).
    pub fn count(&mut self) -> u64 {
        match self {
            Sketch::Exact(hashes) => hashes.len() as u64,
            Sketch::Dense(d) => d.count().round().max(0.0) as u64,
            Sketch::Registers(registers) => Sketch::dense_of(registers).count().round().max(0.0) as u64,
        }
    }

    /// The sketch as stored.
    pub fn to_bytes(&mut self) -> Vec<u8> {
        match self {
            Sketch::Exact(hashes) => {
                let mut sorted: Vec<u64> = hashes.iter().copied().collect();
                sorted.sort_unstable();
                let mut bytes = Vec::with_capacity(1 + 8 * sorted.len());
                bytes.push(EXACT);
                for h in sorted {
                    bytes.extend_from_slice(&h.to_le_bytes());
                }
                bytes
            }
            Sketch::Dense(d) => {
                let mut bytes = vec![DENSE];
                bytes.extend(rmp_serde::to_vec(d.as_ref()).unwrap_or_default());
                bytes
            }
            Sketch::Registers(_) => self.settled().into_owned().to_bytes(),
        }
    }

    /// A stored sketch; `None` when the bytes are not one (then the day starts over).
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        match bytes.split_first() {
            None => Some(Sketch::default()),
            Some((&EXACT, rest)) => {
                if rest.len() % 8 != 0 || rest.len() / 8 > EXACT_LIMIT {
                    return None;
                }
                let hashes: FxHashSet<u64> = rest
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                Some(Sketch::Exact(hashes))
            }
            Some((&DENSE, rest)) => {
                let d: Dense = rmp_serde::from_slice(rest).ok()?;
                // A merge checks the one thing that must agree: the precision.
                dense().merge(&d).ok()?;
                Some(Sketch::Dense(Box::new(d)))
            }
            Some(_) => legacy::read(bytes),
        }
    }
}

/// Rows written before the tag: `HyperLogLogPlus<u64, _>` at precision 12 in MessagePack (an
/// array of its fields). Read through a copy of its layout, since the crate does not expose its
/// sparse list; every hash it kept becomes its register's rank in a dense sketch.
mod legacy {
    use serde::de::IgnoredAny;
    use serde::Deserialize;

    use super::{dense, raise, Sketch, PRECISION};

    /// The sparse list's precision.
    const PRIME: u32 = 25;

    #[derive(Deserialize)]
    struct Plus {
        _builder: IgnoredAny,
        precision: u8,
        _counts: (usize, usize, usize),
        tmpset: Vec<u32>,
        sparse: DifIntVec,
        registers: Option<Registers>,
        _phantom: IgnoredAny,
    }

    /// Ascending numbers, each stored as its difference from the one before, varint-encoded.
    #[derive(Deserialize)]
    struct DifIntVec {
        _count: usize,
        _last: u32,
        /// A newtype, stored as its content.
        buf: Vec<u8>,
    }

    /// Six-bit registers, five to a word from the lowest bits.
    #[derive(Deserialize)]
    struct Registers {
        buf: Vec<u32>,
        count: usize,
        _zeros: usize,
    }

    pub(super) fn read(bytes: &[u8]) -> Option<Sketch> {
        let plus: Plus = rmp_serde::from_slice(bytes).ok()?;
        if plus.precision != PRECISION {
            return None;
        }
        let p = u32::from(PRECISION);
        let mut d = dense();
        if let Some(registers) = &plus.registers {
            let values = registers
                .buf
                .iter()
                .flat_map(|w| (0..5).map(move |i| (w >> (6 * i)) & 63));
            for (index, rank) in values.take(registers.count).enumerate() {
                if rank > 0 {
                    raise(&mut d, index as u32, rank);
                }
            }
        }
        for code in plus.tmpset.iter().copied().chain(differences(&plus.sparse.buf)) {
            // Decoding as the crate does: a code with its low bit set carries the rank.
            let (index, rank) = if code & 1 == 1 {
                (code >> (32 - p), ((code >> 1) & 63) + (PRIME - p))
            } else {
                let index = (code >> (PRIME + 1 - p)) & ((1 << p) - 1);
                (index, (code << (32 - PRIME + p - 1)).leading_zeros() + 1)
            };
            raise(&mut d, index, rank);
        }
        Some(Sketch::Dense(Box::new(d)))
    }

    /// The numbers of a difference-encoded varint list.
    fn differences(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
        let mut at = 0;
        let mut last = 0u32;
        std::iter::from_fn(move || {
            let mut value = 0u32;
            let mut shift = 0;
            loop {
                let byte = *buf.get(at)?;
                at += 1;
                value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            last = last.wrapping_add(value);
            Some(last)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u32>) -> impl Iterator<Item = u64> {
        range.map(|i| id_hash(&format!("company-{i}")))
    }

    fn within(count: u64, expected: f64, tolerance: f64) -> bool {
        (count as f64 - expected).abs() / expected < tolerance
    }

    #[test]
    fn small_sets_are_exact_and_merging_unions() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        ids(0..300).for_each(|h| a.insert(h));
        ids(200..500).for_each(|h| b.insert(h));
        a.insert(id_hash("company-1"));
        assert_eq!(a.count(), 300);
        a.merge(&b);
        assert_eq!(a.count(), 500);
        assert!(matches!(a, Sketch::Exact(_)));
        let mut stored = Sketch::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(stored.count(), 500);
        assert_eq!(stored, a);
        assert!(Sketch::from_bytes(b"not a sketch").is_none());
        assert!(Sketch::from_bytes(&[EXACT, 1, 2, 3]).is_none());
    }

    #[test]
    fn past_the_exact_limit_a_sketch_estimates_and_merges_with_either_form() {
        let mut big = Sketch::default();
        ids(0..2_000).for_each(|h| big.insert(h));
        assert!(matches!(big, Sketch::Registers(_)));
        assert!(within(big.count(), 2_000.0, 0.03), "{}", big.count());
        let mut small = Sketch::default();
        ids(1_900..2_100).for_each(|h| small.insert(h));
        let mut union = small.clone();
        union.merge(&big);
        assert!(within(union.count(), 2_100.0, 0.03), "{}", union.count());
        big.merge(&small);
        assert_eq!(big, union);
        let mut stored = Sketch::from_bytes(&big.to_bytes()).unwrap();
        assert_eq!(stored.count(), big.count());
    }

    #[test]
    fn registers_raised_in_place_are_the_crates_registers() {
        // Collected in place past the exact limit, or inserted into the crate's form: stored alike.
        let mut collected = Sketch::default();
        ids(0..20_000).for_each(|h| collected.insert(h));
        assert!(matches!(collected, Sketch::Registers(_)));
        let mut crate_form = Sketch::Dense(Box::new(dense()));
        ids(0..20_000).for_each(|h| crate_form.insert(h));
        assert_eq!(collected.to_bytes(), crate_form.to_bytes());
        assert_eq!(collected.count(), crate_form.count());
        // Merged either way round, with either form.
        let mut more = Sketch::default();
        ids(15_000..30_000).for_each(|h| more.insert(h));
        let mut a = collected.clone();
        a.merge(&more);
        let mut b = crate_form.clone();
        b.merge(&more);
        let mut c = more.clone();
        c.merge(&collected);
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.to_bytes(), c.to_bytes());
        assert!(within(a.count(), 30_000.0, 0.03), "{}", a.count());
        // Every rank the crate can give: the largest (21) needs the 20 bits after the index zero.
        for hash in [0u64, u64::MAX, 0xfff0_0000_0000_0000, 0x0000_1000_0000_0000] {
            let mut mine = Sketch::Registers(Box::new([0; REGISTERS]));
            mine.insert_hash(hash);
            let mut theirs = Sketch::Dense(Box::new(dense()));
            theirs.insert_hash(hash);
            assert_eq!(mine.to_bytes(), theirs.to_bytes(), "{hash:x}");
        }
    }

    #[test]
    fn large_sets_are_estimated_closely_in_bounded_space() {
        let mut sketch = Sketch::default();
        ids(0..100_000).for_each(|h| sketch.insert(h));
        assert!(within(sketch.count(), 100_000.0, 0.05), "{}", sketch.count());
        assert!(sketch.to_bytes().len() < 4 * 1024);
        assert!(Sketch::from_bytes(&sketch.to_bytes()[..100]).is_none());
    }

    /// A row as the HyperLogLog++ sketches before the tag stored it.
    fn legacy_row(ids: impl Iterator<Item = u64>) -> Vec<u8> {
        #[derive(Clone, Copy, Serialize, Deserialize)]
        struct Xxh3;
        impl BuildHasher for Xxh3 {
            type Hasher = xxhash_rust::xxh3::Xxh3;
            fn build_hasher(&self) -> Self::Hasher {
                xxhash_rust::xxh3::Xxh3::new()
            }
        }
        let mut plus: hyperloglogplus::HyperLogLogPlus<u64, Xxh3> =
            hyperloglogplus::HyperLogLogPlus::new(PRECISION, Xxh3).unwrap();
        for h in ids {
            plus.insert(&h);
        }
        plus.count();
        rmp_serde::to_vec(&plus).unwrap()
    }

    #[test]
    fn rows_written_before_the_tag_keep_their_counts_and_union_with_new_ones() {
        // Sparse: small sets.
        let mut old = Sketch::from_bytes(&legacy_row(ids(0..300))).unwrap();
        assert!(within(old.count(), 300.0, 0.03), "{}", old.count());
        let mut new = Sketch::default();
        ids(200..500).for_each(|h| new.insert(h));
        old.merge(&new);
        assert!(within(old.count(), 500.0, 0.03), "{}", old.count());
        // Sparse with inserts not yet merged into its list.
        let mut buffered = Sketch::from_bytes(&legacy_row(ids(0..20))).unwrap();
        assert!(within(buffered.count(), 20.0, 0.06), "{}", buffered.count());
        // Dense: large sets; the same ids inserted anew land in the same registers.
        let mut old = Sketch::from_bytes(&legacy_row(ids(0..50_000))).unwrap();
        assert!(within(old.count(), 50_000.0, 0.05), "{}", old.count());
        let mut again = Sketch::default();
        ids(0..50_000).for_each(|h| again.insert(h));
        let before = old.count();
        old.merge(&again);
        assert!(
            within(old.count(), before as f64, 0.01),
            "{} vs {before}",
            old.count()
        );
    }
}
