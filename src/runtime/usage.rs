//! Usage counting on the request path: every flag the evaluation API decides and every check an
//! SDK reports is counted here, in memory, and written in batches by the service's flusher
//! (`service/usage.rs`), so a request never writes to the database.
//!
//! Counts are kept per (hour, snapshot) window in one of [`SHARDS`] shards, chosen per thread:
//! the server's worker threads each keep to their own shard and lock, so two cores never fight
//! over one cache line. Inside a window a flag is its position in the snapshot, so counting a
//! request is a loop of additions over arrays.
//!
//! The companies and users a request exposed are kept in [`SHARDS`] other shards, chosen by the
//! id's hash (so each id is remembered once however many threads see it), per (UTC day,
//! snapshot): for each id the flags enabled for it so far that day (`seen`, one bit per flag)
//! and those first enabled since the last flush (`fresh`). A request from an id already seen
//! with the same flags adds nothing; so each id enters each flag's day sketch ([`Sketch`]) once a
//! day, however often it asks, and a flush does work in proportion to the ids new since the last
//! one, not to the requests.
//!
//! At a flush the fresh exposures go into the day's sketches, which the process keeps (per
//! environment and day, two per flag, at most about 9 KB each: a hash set of up to 512 exact
//! hashes, or 4 KB of registers above) and writes whole, as its
//! own rows, when they changed: the store replaces them without reading anything.
//!
//! Memory is bounded: per window, four counters per flag; [`MAX_SEEN`] ids remembered per day
//! (over all shards), one bit per flag each; past that cap, for at most [`MAX_EXPOSED`] more ids
//! between two flushes, their exposures are kept without the day's memory, and beyond that they
//! are dropped and counted ([`Usage::dropped`]; their checks are still counted). With 1,000 flags
//! a remembered id costs 128 B of bits and about 40 B of slot and map entry, and an id with
//! fresh exposures 136 B more until the flush, so at most 250,000 × 168 B plus
//! 350,000 × 136 B plus 100,000 × 40 B ≈ 94 MB of data (the lists of fresh ids grow by doubling,
//! so up to about 140 MB allocated), and far less when ids repeat; the day's sketches
//! add at most 2 × 9 KB per flag and environment (55 MB for 1,000 flags in 3 environments).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::sketch::{id_hash, RegisterHash, Sketch};
use super::snapshot::Snapshot;
use crate::eval::Decided;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// How many shards the counters are split into.
const SHARDS: usize = 8;
/// Most distinct companies and users remembered per day (over all shards).
pub const MAX_SEEN: usize = 250_000;
/// Changed day sketches written at every flush; more wait for the flush that takes them all.
const FEW_SKETCHES: usize = 100;
/// Most ids past [`MAX_SEEN`] whose exposures are kept between two flushes.
pub const MAX_EXPOSED: usize = 100_000;

/// The outcome names stored with each count.
pub const ENABLED: &str = "enabled";
pub const DISABLED: &str = "disabled";
/// Prefix of a remote-config variant's outcome: `variant:<key>`.
pub const VARIANT: &str = "variant:";

/// What one request decided for the flags at positions `start..start + len` of its snapshot.
#[derive(Debug)]
pub struct Tally {
    start: usize,
    enabled: Vec<u64>,
    disabled: Vec<u64>,
    variants: Vec<(u32, u32)>,
}

impl Tally {
    pub fn new(start: usize, len: usize) -> Tally {
        let words = len.div_ceil(64);
        Tally {
            start,
            enabled: vec![0; words],
            disabled: vec![0; words],
            variants: Vec::new(),
        }
    }

    /// Records the decision for the `i`-th flag of the range.
    pub fn add(&mut self, i: usize, decided: Decided) {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        match decided.enabled {
            Some(true) => self.enabled[word] |= bit,
            Some(false) => self.disabled[word] |= bit,
            None => {}
        }
        if let Some(variant) = decided.variant {
            self.variants.push(((self.start + i) as u32, variant as u32));
        }
    }

    /// Calls `f(word, bits)` with the enabled flags as bits of snapshot positions.
    fn each_enabled_word(&self, f: impl FnMut(usize, u64)) {
        Tally::each_word(self.start, &self.enabled, f);
    }

    /// Calls `f(word, bits)` with `bits` (of the flags from `start` on) as bits of snapshot
    /// positions.
    fn each_word(start: usize, bits: &[u64], mut f: impl FnMut(usize, u64)) {
        if start == 0 {
            for (w, &word) in bits.iter().enumerate() {
                if word != 0 {
                    f(w, word);
                }
            }
        } else {
            for i in Tally::positions(bits) {
                let p = start + i;
                f(p / 64, 1 << (p % 64));
            }
        }
    }

    fn positions(bits: &[u64]) -> impl Iterator<Item = usize> + '_ {
        bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// Who a request was evaluated for: the company's and the user's id, when the context has them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    pub company: Option<&'a str>,
    pub user: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// The company and user an evaluation context names.
    pub fn of(context: &'a crate::eval::FlatContext) -> Subject<'a> {
        Subject {
            company: context.get("company.id"),
            user: context.get("user.id"),
        }
    }
}

/// Which way a count arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The server evaluated the flag (`/features/evaluated`, OFREP).
    Evaluated,
    /// An SDK reported a check (`/features/events`).
    Reported,
}

/// Counts of many flags kept "vertically": for each 64 flags, [`PLANES`] words where plane `k`
/// holds bit `k` of each flag's count. Adding one to the flags of a bit set is a binary carry
/// through the planes (two on average), so a request costs a few operations per 64 flags instead
/// of an addition per flag.
#[derive(Clone, Debug)]
struct VerticalCounts {
    /// Word-major: the planes of flags `64 w..64 w + 63` are `planes[w * PLANES..][..PLANES]`.
    planes: Vec<u64>,
    /// What carried out of the top plane, per position (2^PLANES each; never in practice).
    overflow: Vec<(usize, u64)>,
}

/// Bits of each vertical count: a window is taken every few seconds, far below 2^32 requests.
const PLANES: usize = 32;

impl VerticalCounts {
    fn new(flags: usize) -> VerticalCounts {
        VerticalCounts {
            planes: vec![0; flags.div_ceil(64) * PLANES],
            overflow: Vec::new(),
        }
    }

    /// Adds one to the count of each flag whose bit is set in `bits`, the `word`-th 64 flags.
    fn add(&mut self, word: usize, bits: u64) {
        let mut carry = bits;
        for plane in &mut self.planes[word * PLANES..][..PLANES] {
            let next = *plane & carry;
            *plane ^= carry;
            carry = next;
            if carry == 0 {
                return;
            }
        }
        for b in Tally::positions(&[carry]) {
            self.overflow.push((word * 64 + b, 1 << PLANES));
        }
    }

    fn get(&self, position: usize) -> u64 {
        let (word, bit) = (position / 64, position % 64);
        let planes = &self.planes[word * PLANES..][..PLANES];
        let stacked = planes
            .iter()
            .enumerate()
            .fold(0u64, |n, (k, plane)| n | (((plane >> bit) & 1) << k));
        let over: u64 = self
            .overflow
            .iter()
            .filter(|(p, _)| *p == position)
            .map(|(_, n)| n)
            .sum();
        stacked + over
    }
}

/// One window's counters, per flag position: evaluated enabled, evaluated disabled, reported
/// enabled, reported disabled.
struct Window {
    snapshot: Arc<Snapshot>,
    counts: [VerticalCounts; 4],
    /// Per flag position, where its variants start in `variants` (one more entry at the end).
    variant_start: Vec<u32>,
    /// Per variant of every flag, `[evaluated, reported]`.
    variants: Vec<[u64; 2]>,
    /// The latest request counted here (epoch ms).
    last_at: i64,
}

impl Window {
    fn new(snapshot: &Arc<Snapshot>, now: i64) -> Window {
        let mut variant_start = Vec::with_capacity(snapshot.compiled.len() + 1);
        let mut next = 0u32;
        for flag in &snapshot.compiled {
            variant_start.push(next);
            next += flag.variant_count() as u32;
        }
        variant_start.push(next);
        Window {
            snapshot: snapshot.clone(),
            counts: std::array::from_fn(|_| VerticalCounts::new(snapshot.compiled.len())),
            variant_start,
            variants: vec![[0; 2]; next as usize],
            last_at: now,
        }
    }
}

/// The companies (`[0]`) and users (`[1]`) one snapshot's flags were enabled for on one day.
struct Exposed {
    snapshot: Arc<Snapshot>,
    /// The latest request counted here (epoch ms).
    last_at: i64,
    ids: [IdFlags; 2],
}

/// Slots of remembered ids per allocation of [`IdFlags::seen`].
const CHUNK: usize = 64;
/// [`IdFlags::fresh_at`] of a slot with nothing fresh.
const NOT_FRESH: u32 = u32::MAX;

/// The flags enabled for the companies (or the users) of one day and snapshot: for a remembered
/// id, a slot with the flags enabled for it so far that day; for each id, the flags first
/// enabled since the last take. A new id costs one hash-map entry and no allocation of its own.
struct IdFlags {
    /// Words of bits per id: one bit per flag position.
    words: usize,
    /// Id hash → slot.
    slots: FxHashMap<u64, u32>,
    /// The slots' bits, [`CHUNK`] slots an allocation (growing never moves what is there).
    seen: Vec<Box<[u64]>>,
    /// Per slot, its index in `fresh`, or [`NOT_FRESH`].
    fresh_at: Vec<u32>,
    /// The slots with an index in `fresh`.
    touched: Vec<u32>,
    /// Ids past [`MAX_SEEN`] (kept only until the next take) → index in `fresh`.
    unremembered: FxHashMap<u64, u32>,
    fresh: Fresh,
}

/// Ids and the flags first enabled for each since the last take.
#[derive(Default)]
struct Fresh {
    words: usize,
    ids: Vec<u64>,
    /// `words` words an id.
    bits: Vec<u64>,
}

impl Fresh {
    fn new(words: usize) -> Fresh {
        Fresh {
            words,
            ..Fresh::default()
        }
    }

    /// Adds `id` with no bits yet; returns its index.
    fn push(&mut self, id: u64) -> u32 {
        self.ids.push(id);
        self.bits.resize(self.bits.len() + self.words, 0);
        (self.ids.len() - 1) as u32
    }

    fn bits_mut(&mut self, index: u32) -> &mut [u64] {
        let at = index as usize * self.words;
        &mut self.bits[at..at + self.words]
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &[u64])> {
        self.ids.iter().copied().zip(self.bits.chunks(self.words.max(1)))
    }
}

impl IdFlags {
    fn new(words: usize) -> IdFlags {
        IdFlags {
            words,
            slots: FxHashMap::default(),
            seen: Vec::new(),
            fresh_at: Vec::new(),
            touched: Vec::new(),
            unremembered: FxHashMap::default(),
            fresh: Fresh::new(words),
        }
    }

    /// Gives `id` a slot (it was not remembered).
    fn remember(&mut self, id: u64) -> u32 {
        let slot = self.fresh_at.len();
        if slot.is_multiple_of(CHUNK) {
            self.seen.push(vec![0; CHUNK * self.words].into_boxed_slice());
        }
        self.fresh_at.push(NOT_FRESH);
        self.slots.insert(id, slot as u32);
        slot as u32
    }

    /// Adds the flags `tally` enabled for the remembered id in `slot` that the day has not seen.
    fn add(&mut self, slot: u32, id: u64, tally: &Tally) {
        let (chunk, at) = (slot as usize / CHUNK, slot as usize % CHUNK * self.words);
        let seen = &mut self.seen[chunk][at..at + self.words];
        let mut new = false;
        tally.each_enabled_word(|w, bits| new |= bits & !seen[w] != 0);
        if !new {
            return;
        }
        let fresh_at = &mut self.fresh_at[slot as usize];
        if *fresh_at == NOT_FRESH {
            *fresh_at = self.fresh.push(id);
            self.touched.push(slot);
        }
        let fresh = self.fresh.bits_mut(*fresh_at);
        tally.each_enabled_word(|w, bits| {
            let new = bits & !seen[w];
            seen[w] |= new;
            fresh[w] |= new;
        });
    }

    /// The fresh exposures, which start over.
    fn take_fresh(&mut self) -> Fresh {
        for slot in self.touched.drain(..) {
            self.fresh_at[slot as usize] = NOT_FRESH;
        }
        self.unremembered.clear();
        std::mem::replace(&mut self.fresh, Fresh::new(self.words))
    }
}

/// One day's sketches of one environment's flags in this process.
#[derive(Default)]
struct DaySketches {
    /// Flag key → position in `sketches`.
    index: HashMap<String, usize>,
    /// Companies, users, and whether they changed since the last take.
    sketches: Vec<([Sketch; 2], bool)>,
}

impl DaySketches {
    fn slot(&mut self, key: &str) -> usize {
        if let Some(i) = self.index.get(key) {
            return *i;
        }
        self.sketches.push(Default::default());
        self.index.insert(key.to_string(), self.sketches.len() - 1);
        self.sketches.len() - 1
    }
}

/// One thread's windows, by (hour, snapshot).
type Windows = FxHashMap<(i64, usize), Window>;
/// Some ids' exposures, by (day, snapshot).
type Exposures = FxHashMap<(i64, usize), Exposed>;

/// The counters of one server process.
pub struct Usage {
    /// Per thread ([`shard_index`]).
    windows: Vec<Mutex<Windows>>,
    /// Per id ([`id_shard`]).
    exposures: Vec<Mutex<Exposures>>,
    /// Ids remembered in the shards' slots.
    seen: AtomicUsize,
    /// Ids past [`MAX_SEEN`] kept until the next take.
    exposed: AtomicUsize,
    dropped: AtomicU64,
    /// The latest day whose sketches `days` keeps: those of earlier days were written whole and
    /// let go.
    today: AtomicI64,
    /// The day's sketches of every flag this process exposed, per (environment, day): kept
    /// across flushes (so they are dense and cheap to add to after the first minutes) and written
    /// whole, as this replica's row, when they changed.
    days: Mutex<HashMap<(i64, i64), DaySketches>>,
    /// This process's name on its sketch rows (random per process).
    replica: String,
    /// A batch that could not be written, kept for the next take.
    pending: Mutex<Option<UsageBatch>>,
    /// Off: nothing is counted (`--count-usage false`).
    off: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage").finish_non_exhaustive()
    }
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            windows: (0..SHARDS).map(|_| Mutex::default()).collect(),
            exposures: (0..SHARDS).map(|_| Mutex::default()).collect(),
            seen: AtomicUsize::new(0),
            exposed: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            today: AtomicI64::new(i64::MIN),
            days: Mutex::default(),
            replica: {
                use rand::distributions::{Alphanumeric, DistString};
                Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
            },
            pending: Mutex::default(),
            off: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// The exposures' shard of an id hash.
fn id_shard(id_hash: u64) -> usize {
    (id_hash >> 32) as usize % SHARDS
}

/// The windows' shard of the current thread, assigned round-robin on first use.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|shard| {
        if shard.get() == usize::MAX {
            shard.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        shard.get()
    })
}

impl Usage {
    /// Counts what one request decided, at `now`, for `subject`.
    pub fn count(
        &self,
        snapshot: &Arc<Snapshot>,
        now: i64,
        source: Source,
        tally: &Tally,
        subject: Subject<'_>,
    ) {
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        let hour = now.div_euclid(HOUR_MS) * HOUR_MS;
        let mut windows = self.windows[shard_index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let window = windows
            .entry((hour, Arc::as_ptr(snapshot) as usize))
            .or_insert_with(|| Window::new(snapshot, now));
        window.last_at = window.last_at.max(now);
        let base = match source {
            Source::Evaluated => 0,
            Source::Reported => 2,
        };
        for (outcome, bits) in [&tally.enabled, &tally.disabled].into_iter().enumerate() {
            let counts = &mut window.counts[base + outcome];
            Tally::each_word(tally.start, bits, |w, bits| counts.add(w, bits));
        }
        for &(position, variant) in &tally.variants {
            let slot = window.variant_start[position as usize] as usize + variant as usize;
            if let Some(counts) = window.variants.get_mut(slot) {
                counts[base / 2] += 1;
            }
        }
        drop(windows);
        if tally.enabled.iter().all(|w| *w == 0) {
            return;
        }
        let day = hour.div_euclid(DAY_MS) * DAY_MS;
        for (kind, id) in [subject.company, subject.user].into_iter().enumerate() {
            let Some(id) = id else { continue };
            let key = id_hash(id);
            let mut exposures = self.exposures[id_shard(key)]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let exposed = exposures
                .entry((day, Arc::as_ptr(snapshot) as usize))
                .or_insert_with(|| Exposed {
                    snapshot: snapshot.clone(),
                    last_at: now,
                    ids: [0, 1].map(|_| IdFlags::new(snapshot.compiled.len().div_ceil(64))),
                });
            exposed.last_at = exposed.last_at.max(now);
            self.expose(&mut exposed.ids[kind], key, tally);
        }
    }

    /// Adds the flags `tally` enabled for the id `key` to the day's fresh exposures, unless the
    /// day has already seen them.
    fn expose(&self, ids: &mut IdFlags, key: u64, tally: &Tally) {
        if let Some(&slot) = ids.slots.get(&key) {
            return ids.add(slot, key, tally);
        }
        // Past the day's cap: kept until the next take, within its own cap.
        let index = match ids.unremembered.get(&key) {
            Some(&index) => index,
            None if self.seen.fetch_add(1, Ordering::Relaxed) < MAX_SEEN => {
                let slot = ids.remember(key);
                return ids.add(slot, key, tally);
            }
            None if self.exposed.fetch_add(1, Ordering::Relaxed) < MAX_EXPOSED => {
                self.seen.fetch_sub(1, Ordering::Relaxed);
                let index = ids.fresh.push(key);
                ids.unremembered.insert(key, index);
                index
            }
            None => {
                self.seen.fetch_sub(1, Ordering::Relaxed);
                self.exposed.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let fresh = ids.fresh.bits_mut(index);
        tally.each_enabled_word(|w, bits| fresh[w] |= bits);
    }

    /// Turns counting on or off (`--count-usage`).
    pub fn set_counting(&self, on: bool) {
        self.off.store(!on, Ordering::Relaxed);
    }

    /// The fresh exposures of `ids`, which start over; the ids past the day's cap leave room for
    /// as many more.
    fn take_fresh(&self, ids: &mut IdFlags) -> Fresh {
        self.exposed.fetch_sub(ids.unremembered.len(), Ordering::Relaxed);
        ids.take_fresh()
    }

    /// How many ids' exposures were dropped since start: past the caps, or late for a day
    /// already written.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Everything counted since the last take, as rows to add to the store; the counters start
    /// over. The day sketches that changed come along when `sketches` is true, and always for a
    /// day that is over.
    pub fn take(&self, sketches: bool) -> UsageBatch {
        let mut batch = Collect::default();
        for windows in &self.windows {
            let windows = std::mem::take(&mut *windows.lock().unwrap_or_else(|e| e.into_inner()));
            for ((hour, _), window) in windows {
                batch.window(hour, window);
            }
        }
        // The latest day whose sketches are kept, as the previous take left it.
        let today = self.today.load(Ordering::Relaxed);
        for exposures in &self.exposures {
            let fresh: Vec<_> = {
                let mut exposures = exposures.lock().unwrap_or_else(|e| e.into_inner());
                let fresh = exposures
                    .iter_mut()
                    .map(|(&(day, _), e)| {
                        let fresh = e.ids.each_mut().map(|ids| self.take_fresh(ids));
                        (day, e.snapshot.clone(), fresh)
                    })
                    .collect();
                let forgotten = forget_past(&mut exposures, today);
                self.seen.fetch_sub(forgotten, Ordering::Relaxed);
                fresh
            };
            let mut days = self.days.lock().unwrap_or_else(|e| e.into_inner());
            for (day, snapshot, ids) in fresh {
                if day < today {
                    // A request of a day this process has written whole and let go (it began
                    // before midnight and was counted after): its sketches would replace the
                    // day's row with only these ids, so they are dropped instead.
                    let late: usize = ids.iter().map(|ids| ids.ids.len()).sum();
                    self.dropped.fetch_add(late as u64, Ordering::Relaxed);
                    continue;
                }
                let sketches = days.entry((snapshot.environment.id, day)).or_default();
                add_exposures(sketches, &snapshot, ids);
            }
        }
        self.changed_sketches(&mut batch, sketches);
        let mut batch = batch.finish();
        batch.replica = self.replica.clone();
        match self.pending.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(pending) => pending.absorb(batch),
            None => batch,
        }
    }

    /// Puts the sketches that changed since they were last taken into `batch` (whole: the store
    /// replaces this replica's row) — all of them when `all` or when they are few (at most
    /// [`FEW_SKETCHES`]), else only those of days before the latest — and forgets the days
    /// before the latest.
    fn changed_sketches(&self, batch: &mut Collect, all: bool) {
        let mut days = self.days.lock().unwrap_or_else(|e| e.into_inner());
        let today = days.keys().map(|(_, day)| *day).max().unwrap_or(i64::MIN);
        let changed: usize = days
            .values()
            .map(|d| d.sketches.iter().filter(|(_, changed)| *changed).count())
            .sum();
        let all = all || changed <= FEW_SKETCHES;
        for (&(environment_id, day), sketches) in days.iter_mut() {
            if !all && day == today {
                continue;
            }
            for (key, &i) in &sketches.index {
                let ([companies, users], changed) = &mut sketches.sketches[i];
                if std::mem::take(changed) {
                    let row = (companies.clone(), users.clone());
                    batch.exposed.insert((environment_id, key.clone(), day), row);
                }
            }
        }
        days.retain(|(_, day), _| *day == today);
        self.today.fetch_max(today, Ordering::Relaxed);
    }

    /// Keeps a batch that could not be written for the next [`Usage::take`].
    pub fn put_back(&self, batch: UsageBatch) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending = Some(match pending.take() {
            Some(earlier) => earlier.absorb(batch),
            None => batch,
        });
    }
}

/// Keeps, of a shard's exposures, only those of the latest day (the shard's or `today`, the
/// latest the process keeps sketches of) and, per environment, of the
/// snapshot most recently used (an earlier snapshot's requests are over, or nearly); returns how
/// many remembered ids it let go.
fn forget_past(exposed: &mut Exposures, today: i64) -> usize {
    let Some(today) = exposed
        .keys()
        .map(|(day, _)| *day)
        .max()
        .map(|day| day.max(today))
    else {
        return 0;
    };
    let mut latest: HashMap<i64, i64> = HashMap::new();
    for ((day, _), e) in exposed.iter() {
        if *day == today {
            let at = latest.entry(e.snapshot.environment.id).or_insert(e.last_at);
            *at = (*at).max(e.last_at);
        }
    }
    let mut forgotten = 0;
    exposed.retain(|(day, _), e| {
        let keep = *day == today && latest.get(&e.snapshot.environment.id) == Some(&e.last_at);
        if !keep {
            forgotten += e.ids.iter().map(|ids| ids.slots.len()).sum::<usize>();
        }
        keep
    });
    forgotten
}

/// Adds the ids first exposed since the last take to their flags' day sketches.
fn add_exposures(day: &mut DaySketches, snapshot: &Snapshot, fresh: [Fresh; 2]) {
    let mut slots: Vec<Option<usize>> = vec![None; snapshot.compiled.len()];
    for (kind, ids) in fresh.iter().enumerate() {
        for (id, bits) in ids.iter() {
            // Hashed once, put into each of the id's flags' sketches.
            let hash = RegisterHash::of(id);
            for p in Tally::positions(bits) {
                let i = match slots[p] {
                    Some(i) => i,
                    None => {
                        let i = day.slot(snapshot.compiled[p].key());
                        slots[p] = Some(i);
                        i
                    }
                };
                let (sketches, changed) = &mut day.sketches[i];
                sketches[kind].insert_hashed(hash);
                *changed = true;
            }
        }
    }
}

/// Counts of one flag in one environment and hour, for one outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourlyCount {
    pub environment_id: i64,
    pub flag_key: String,
    /// Start of the hour (epoch ms).
    pub hour: i64,
    /// `enabled`, `disabled` or `variant:<key>`.
    pub outcome: String,
    pub evaluated: i64,
    pub reported: i64,
}

/// The companies and users one flag was enabled for in one environment and UTC day.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyExposure {
    pub environment_id: i64,
    pub flag_key: String,
    /// Start of the UTC day (epoch ms).
    pub day: i64,
    /// The sketches as stored ([`Sketch::to_bytes`]): serialized while collecting, off the
    /// flush's database transaction.
    pub companies: Vec<u8>,
    pub users: Vec<u8>,
}

/// When a flag was last checked in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastChecked {
    pub environment_id: i64,
    pub flag_key: String,
    pub at: i64,
}

/// What a flush adds to the store, each list sorted by its key (replicas that write the same
/// rows lock them in the same order and never deadlock).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageBatch {
    /// The process that counted them: its sketch rows are its own.
    pub replica: String,
    pub hourly: Vec<HourlyCount>,
    pub exposed: Vec<DailyExposure>,
    pub checked: Vec<LastChecked>,
}

impl UsageBatch {
    pub fn is_empty(&self) -> bool {
        self.hourly.is_empty() && self.exposed.is_empty() && self.checked.is_empty()
    }

    /// Adds `other` (a batch that could not be written) to this one.
    pub fn absorb(self, other: UsageBatch) -> UsageBatch {
        let replica = self.replica.clone();
        let mut collect = Collect::default();
        for batch in [self, other] {
            for row in batch.hourly {
                let key = (row.environment_id, row.flag_key, row.hour, row.outcome);
                let counts = collect.hourly.entry(key).or_default();
                counts[0] += row.evaluated;
                counts[1] += row.reported;
            }
            for row in batch.exposed {
                let key = (row.environment_id, row.flag_key, row.day);
                let (companies, users) = collect.exposed.entry(key).or_default();
                for (sketch, stored) in [(companies, &row.companies), (users, &row.users)] {
                    if let Some(other) = Sketch::from_bytes(stored) {
                        sketch.merge(&other);
                    }
                }
            }
            for row in batch.checked {
                let at = collect
                    .checked
                    .entry((row.environment_id, row.flag_key))
                    .or_insert(row.at);
                *at = (*at).max(row.at);
            }
        }
        UsageBatch {
            replica,
            ..collect.finish()
        }
    }
}

#[derive(Default)]
struct Collect {
    hourly: BTreeMap<(i64, String, i64, String), [i64; 2]>,
    exposed: BTreeMap<(i64, String, i64), (Sketch, Sketch)>,
    checked: BTreeMap<(i64, String), i64>,
}

impl Collect {
    fn window(&mut self, hour: i64, window: Window) {
        let snapshot = &window.snapshot;
        let environment_id = snapshot.environment.id;
        let key_of = |p: usize| snapshot.compiled[p].key().to_string();
        // Only the 64 flags of a word some request counted are read one by one.
        let counted = |w: usize| {
            window
                .counts
                .iter()
                .any(|c| c.planes[w * PLANES..][..PLANES].iter().any(|p| *p != 0))
        };
        let counted_words: Vec<bool> = (0..snapshot.compiled.len().div_ceil(64)).map(counted).collect();
        for p in 0..snapshot.compiled.len() {
            if !counted_words[p / 64] && window.counts.iter().all(|c| c.overflow.is_empty()) {
                continue;
            }
            let counts: [u64; 4] = std::array::from_fn(|i| window.counts[i].get(p));
            if counts.iter().all(|c| *c == 0) {
                continue;
            }
            let [evaluated_on, evaluated_off, reported_on, reported_off] = counts.map(|c| c as i64);
            for (outcome, evaluated, reported) in [
                (ENABLED, evaluated_on, reported_on),
                (DISABLED, evaluated_off, reported_off),
            ] {
                if evaluated + reported > 0 {
                    let row = self
                        .hourly
                        .entry((environment_id, key_of(p), hour, outcome.to_string()))
                        .or_default();
                    row[0] += evaluated;
                    row[1] += reported;
                }
            }
            let at = self
                .checked
                .entry((environment_id, key_of(p)))
                .or_insert(window.last_at);
            *at = (*at).max(window.last_at);
        }
        for (p, flag) in snapshot.compiled.iter().enumerate() {
            let (start, end) = (
                window.variant_start[p] as usize,
                window.variant_start[p + 1] as usize,
            );
            for (variant, [evaluated, reported]) in window.variants[start..end].iter().enumerate() {
                if evaluated + reported == 0 {
                    continue;
                }
                let Some(name) = flag.variant_key(variant) else {
                    continue;
                };
                let outcome = format!("{VARIANT}{name}");
                let row = self
                    .hourly
                    .entry((environment_id, key_of(p), hour, outcome))
                    .or_default();
                row[0] += *evaluated as i64;
                row[1] += *reported as i64;
            }
        }
    }

    fn finish(self) -> UsageBatch {
        UsageBatch {
            replica: String::new(),
            hourly: self
                .hourly
                .into_iter()
                .map(
                    |((environment_id, flag_key, hour, outcome), [evaluated, reported])| HourlyCount {
                        environment_id,
                        flag_key,
                        hour,
                        outcome,
                        evaluated,
                        reported,
                    },
                )
                .collect(),
            exposed: self
                .exposed
                .into_iter()
                .map(
                    |((environment_id, flag_key, day), (mut companies, mut users))| DailyExposure {
                        environment_id,
                        flag_key,
                        day,
                        companies: companies.to_bytes(),
                        users: users.to_bytes(),
                    },
                )
                .collect(),
            checked: self
                .checked
                .into_iter()
                .map(|((environment_id, flag_key), at)| LastChecked {
                    environment_id,
                    flag_key,
                    at,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabling(positions: &[usize]) -> Tally {
        let mut tally = Tally::new(0, 130);
        for &p in positions {
            tally.add(
                p,
                Decided {
                    enabled: Some(true),
                    variant: None,
                },
            );
        }
        tally
    }

    fn fresh_of(fresh: &Fresh) -> Vec<(u64, Vec<usize>)> {
        fresh
            .iter()
            .map(|(id, bits)| (id, Tally::positions(bits).collect()))
            .collect()
    }

    #[test]
    fn an_id_is_fresh_once_a_day_for_each_flag() {
        let usage = Usage::default();
        let mut ids = IdFlags::new(3);
        // More ids than one allocation of slots holds.
        for id in 0..200 {
            usage.expose(&mut ids, id, &enabling(&[1, 129]));
            usage.expose(&mut ids, id, &enabling(&[1]));
        }
        usage.expose(&mut ids, 7, &enabling(&[1, 64, 129]));
        let fresh = fresh_of(&usage.take_fresh(&mut ids));
        assert_eq!(fresh.len(), 200);
        assert_eq!(fresh[0], (0, vec![1, 129]));
        assert_eq!(fresh[7], (7, vec![1, 64, 129]));
        assert_eq!(fresh[199], (199, vec![1, 129]));
        // The day remembers: after the take only what is new is fresh.
        for id in 0..200 {
            usage.expose(&mut ids, id, &enabling(&[1, 129]));
        }
        usage.expose(&mut ids, 150, &enabling(&[1, 2, 129]));
        assert_eq!(fresh_of(&usage.take_fresh(&mut ids)), [(150, vec![2])]);
        assert!(usage.take_fresh(&mut ids).ids.is_empty());
        assert_eq!(usage.seen.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn ids_past_the_days_cap_are_kept_until_the_take_then_dropped_at_theirs() {
        let usage = Usage::default();
        let mut ids = IdFlags::new(3);
        // Room for one more remembered id: 1 is remembered, 2 is past the cap.
        usage.seen.store(MAX_SEEN - 1, Ordering::Relaxed);
        usage.expose(&mut ids, 1, &enabling(&[0]));
        usage.expose(&mut ids, 2, &enabling(&[0]));
        usage.expose(&mut ids, 2, &enabling(&[5]));
        assert_eq!(usage.exposed.load(Ordering::Relaxed), 1);
        assert_eq!(usage.seen.load(Ordering::Relaxed), MAX_SEEN);
        // No room past the cap either: 3 is dropped, 2 still adds to its entry.
        usage.exposed.store(MAX_EXPOSED, Ordering::Relaxed);
        usage.expose(&mut ids, 3, &enabling(&[0]));
        usage.expose(&mut ids, 2, &enabling(&[6]));
        assert_eq!(usage.dropped(), 1);
        assert_eq!(
            fresh_of(&usage.take_fresh(&mut ids)),
            [(1, vec![0]), (2, vec![0, 5, 6])]
        );
        assert_eq!(
            usage.exposed.load(Ordering::Relaxed),
            MAX_EXPOSED - 1,
            "2 left room"
        );
        // Not remembered: the next take has 2 again, and 1 not.
        usage.exposed.store(0, Ordering::Relaxed);
        usage.expose(&mut ids, 2, &enabling(&[0]));
        usage.expose(&mut ids, 1, &enabling(&[0]));
        assert_eq!(fresh_of(&usage.take_fresh(&mut ids)), [(2, vec![0])]);
        assert_eq!(usage.exposed.load(Ordering::Relaxed), 0);
        assert_eq!(
            usage.seen.load(Ordering::Relaxed),
            MAX_SEEN,
            "the caps' counters are back"
        );
    }

    #[test]
    fn vertical_counts_add_like_plain_ones() {
        let mut vertical = VerticalCounts::new(130);
        let mut plain = vec![0u64; 130];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let word = (seed % 3) as usize;
            let bits = if word == 2 { seed & 0b11 } else { seed };
            vertical.add(word, bits);
            for b in Tally::positions(&[bits]) {
                plain[word * 64 + b] += 1;
            }
        }
        for (p, n) in plain.iter().enumerate() {
            assert_eq!(vertical.get(p), *n, "flag {p}");
        }
        // Past the top plane the count carries into the overflow.
        let mut full = VerticalCounts::new(64);
        full.planes.iter_mut().for_each(|plane| *plane = 0b10);
        full.add(0, 0b11);
        assert_eq!((full.get(0), full.get(1)), (1, 1 << PLANES));
    }

    #[test]
    fn a_tally_records_each_decision_by_position() {
        let mut tally = Tally::new(0, 130);
        tally.add(
            0,
            Decided {
                enabled: Some(true),
                variant: None,
            },
        );
        tally.add(
            64,
            Decided {
                enabled: Some(false),
                variant: Some(2),
            },
        );
        tally.add(
            129,
            Decided {
                enabled: Some(true),
                variant: None,
            },
        );
        tally.add(
            70,
            Decided {
                enabled: None,
                variant: Some(0),
            },
        );
        assert_eq!(Tally::positions(&tally.enabled).collect::<Vec<_>>(), [0, 129]);
        assert_eq!(Tally::positions(&tally.disabled).collect::<Vec<_>>(), [64]);
        assert_eq!(tally.variants, [(64, 2), (70, 0)]);
        let single = {
            let mut t = Tally::new(7, 1);
            t.add(
                0,
                Decided {
                    enabled: Some(true),
                    variant: Some(1),
                },
            );
            t
        };
        assert_eq!(Tally::positions(&single.enabled).collect::<Vec<_>>(), [0]);
        assert_eq!(single.variants, [(7, 1)], "variants carry the snapshot position");
    }

    #[test]
    fn an_absorbed_batch_adds_counts_and_keeps_the_latest_check() {
        let stored = |ids: std::ops::Range<u64>| {
            let mut sketch = Sketch::default();
            ids.for_each(|id| sketch.insert(id));
            sketch.to_bytes()
        };
        let row = |evaluated, at| UsageBatch {
            replica: "r".into(),
            hourly: vec![HourlyCount {
                environment_id: 1,
                flag_key: "a".into(),
                hour: 0,
                outcome: ENABLED.into(),
                evaluated,
                reported: 1,
            }],
            exposed: vec![DailyExposure {
                environment_id: 1,
                flag_key: "a".into(),
                day: 0,
                companies: stored(at as u64..20),
                users: stored(0..1),
            }],
            checked: vec![LastChecked {
                environment_id: 1,
                flag_key: "a".into(),
                at,
            }],
        };
        let both = row(3, 10).absorb(row(4, 5));
        // The companies of both (5..20), each once.
        assert_eq!(both.exposed.len(), 1);
        let count = |bytes: &[u8]| Sketch::from_bytes(bytes).unwrap().count();
        assert_eq!(
            (count(&both.exposed[0].companies), count(&both.exposed[0].users)),
            (15, 1)
        );
        assert_eq!(both.hourly.len(), 1);
        assert_eq!((both.hourly[0].evaluated, both.hourly[0].reported), (7, 2));
        assert_eq!(both.checked[0].at, 10);
        assert!(!both.is_empty());
        assert!(UsageBatch::default().is_empty());
    }
}
