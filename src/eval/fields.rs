//! Field names as the engine finds them: the fast string hash that compiled rules and flattened
//! contexts share, and the [`FieldTable`] that numbers the fields a snapshot's rules read, so a
//! context bound to it is read by slot instead of by name.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// A fast, deterministic string hash (Fx-style, 8 bytes per step) for field names. Deterministic so
/// compiled rules can store it; collisions only cost an extra string comparison, never
/// correctness, and a context can hold at most its own entries in one collision run.
#[inline]
pub(crate) fn field_hash(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

/// [`field_hash`] over raw bytes.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h
}

/// Hashes set members with the fast [`field_hash`] mixing step instead of SipHash. The members
/// come from flag definitions (trusted), so lookups of hostile strings can at worst probe a chain
/// of colliding *definition* values, which an attacker cannot create.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastBuild;

pub(crate) struct FastHasher(u64);

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `str` hashing writes the bytes, then a 0xff terminator byte.
        self.0 = (self.0.rotate_left(5) ^ hash_bytes(bytes)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Numbers the context fields that the rules of one snapshot read, so that evaluation finds a
/// field by index instead of by name. A context bound to the table ([`FlatContext::bind`])
/// resolves each of its own fields once per request; every rule then reads its field's slot.
/// Rules compiled into a table only take that path for a context bound to the same table (the
/// table's [`TableId`]) with all the slots they use; any other context is searched by name as
/// before. Not `Clone`: a copy would share the id and could number new fields apart.
#[derive(Debug)]
pub struct FieldTable {
    id: TableId,
    ids: HashMap<Box<str>, u32, FastBuild>,
}

/// The identity of a [`FieldTable`]: a small allocation of its own, held by the table, by every
/// rule compiled into it and by every context bound to it. Two ids are the same table exactly
/// when they share the allocation, and its address cannot be reused while anything holds it, so
/// no process-wide counter is needed. The default id is "no table" and matches nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct TableId(Option<Arc<()>>);

impl TableId {
    fn fresh() -> Self {
        TableId(Some(Arc::new(())))
    }

    /// True when both ids name the same table; "no table" is never the same as anything.
    #[inline]
    pub(crate) fn same(&self, other: &TableId) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Default for FieldTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldTable {
    pub fn new() -> Self {
        FieldTable {
            id: TableId::fresh(),
            ids: HashMap::default(),
        }
    }

    /// A table no context is ever bound to: rules compiled into it always search by name.
    pub(crate) fn unbound() -> Self {
        FieldTable {
            id: TableId::default(),
            ids: HashMap::default(),
        }
    }

    pub(crate) fn id(&self) -> &TableId {
        &self.id
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The slot of `field`, numbered on first sight.
    pub(crate) fn intern(&mut self, field: &str) -> u32 {
        if let Some(&id) = self.ids.get(field) {
            return id;
        }
        // A snapshot's rules name far fewer than 2^32 distinct fields.
        let id = self.ids.len() as u32;
        self.ids.insert(field.into(), id);
        id
    }

    /// The slot of `field`, if any rule of the table reads it.
    #[inline]
    pub(crate) fn get(&self, field: &str) -> Option<u32> {
        self.ids.get(field).copied()
    }
}
