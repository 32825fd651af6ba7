//! The companies and users SDKs reported, kept in memory so evaluation can merge their stored
//! attributes into a request's context ("remote context") without touching the database.
//!
//! Each entity's attributes are held flattened (`plan`, `address.city`, …) in one small byte buffer
//! (length-prefixed key/value pairs), so 100,000 companies cost a few tens of megabytes. Writes
//! made through this process update the cache right after their transaction commits (the service's
//! ingest holds [`Entities::lock_writes`] from before its commit until the cache has the result,
//! so the cache applies merged states in commit order); rows written by other replicas arrive
//! through [`Entities::refresh`], which reloads rows seen since the last reload every
//! [`ENTITY_POLL_INTERVAL`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio_stream::StreamExt;

use crate::eval::FlatContext;
use crate::model::JsObject;
use crate::service::clock::Clock;
use crate::service::store::entities::{EntityKind, StoredEntity};
use crate::service::store::{Store, StoreResult};

/// How often rows written by other replicas are picked up.
pub const ENTITY_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Reloads overlap by this much, so a row committed late or stamped by a replica whose clock is a
/// little behind is still picked up.
const RELOAD_OVERLAP_MS: i64 = 10_000;

/// Flattened attributes as `varint(len) key varint(len) value` pairs in one allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(Box<[u8]>);

impl Attributes {
    pub fn from_object(attributes: &JsObject) -> Self {
        let flat = FlatContext::from_object(attributes);
        let mut buffer = Vec::new();
        for (key, value) in flat.iter() {
            push_text(&mut buffer, key);
            push_text(&mut buffer, value);
        }
        Attributes(buffer.into_boxed_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The flattened `(field, value)` pairs in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut position = 0;
        std::iter::from_fn(move || {
            let key = read_text(&self.0, &mut position)?;
            let value = read_text(&self.0, &mut position)?;
            Some((key, value))
        })
    }
}

fn push_text(buffer: &mut Vec<u8>, text: &str) {
    let mut n = text.len();
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buffer.push(low);
            break;
        }
        buffer.push(low | 0x80);
    }
    buffer.extend_from_slice(text.as_bytes());
}

fn read_text<'a>(buffer: &'a [u8], position: &mut usize) -> Option<&'a str> {
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let byte = *buffer.get(*position)?;
        *position += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let text = buffer.get(*position..*position + len)?;
    *position += len;
    std::str::from_utf8(text).ok()
}

#[derive(Debug, Default)]
struct EnvironmentEntities {
    companies: HashMap<Box<str>, Attributes>,
    users: HashMap<Box<str>, Attributes>,
    /// Attribute names of the companies and of the users, each with how many carry it, kept
    /// with every write so the editors' suggestions never scan the entities.
    company_names: BTreeMap<Box<str>, usize>,
    user_names: BTreeMap<Box<str>, usize>,
}

/// Counts `attributes`' names in (`add`) or out of `names`, dropping names no one carries.
fn count_names(names: &mut BTreeMap<Box<str>, usize>, attributes: &Attributes, add: bool) {
    for (key, _) in attributes.iter() {
        if add {
            match names.get_mut(key) {
                Some(count) => *count += 1,
                None => {
                    names.insert(key.into(), 1);
                }
            }
        } else if let Some(count) = names.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                names.remove(key);
            }
        }
    }
}

/// How many companies and users of an environment are cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityCounts {
    pub environment_id: i64,
    pub companies: usize,
    pub users: usize,
}

/// The per-environment cache of companies and users.
#[derive(Debug, Default)]
pub struct Entities {
    environments: RwLock<HashMap<i64, EnvironmentEntities>>,
    /// Serialises writes and reloads so the cache applies merged states in commit order; holds
    /// the `last_seen` from which the next reload reads.
    writes: tokio::sync::Mutex<i64>,
    /// Moves whenever a company or user is added or its attributes change.
    generation: std::sync::atomic::AtomicU64,
}

impl Entities {
    /// Loads every stored company and user.
    pub async fn load(store: &Store, clock: &Clock) -> StoreResult<Entities> {
        let entities = Entities {
            environments: RwLock::default(),
            writes: tokio::sync::Mutex::new(i64::MIN),
            generation: Default::default(),
        };
        entities.refresh(store, clock).await?;
        Ok(entities)
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<i64, EnvironmentEntities>> {
        // A panic while holding the lock cannot leave a map half-updated in a harmful way.
        self.environments.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<i64, EnvironmentEntities>> {
        self.environments.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts committed companies and users into the cache (hold [`Entities::lock_writes`]).
    pub fn apply(&self, entities: impl IntoIterator<Item = StoredEntity>) {
        let mut environments = self.write();
        for entity in entities {
            let environment = environments.entry(entity.environment_id).or_default();
            let (map, names) = match entity.kind {
                EntityKind::Company => (&mut environment.companies, &mut environment.company_names),
                EntityKind::User => (&mut environment.users, &mut environment.user_names),
            };
            let attributes = Attributes::from_object(&entity.attributes);
            let id = entity.id.into_boxed_str();
            if map.get(&id) == Some(&attributes) {
                // Reported again as it was: nothing worked out from the companies changes.
                continue;
            }
            count_names(names, &attributes, true);
            if let Some(previous) = map.insert(id, attributes) {
                count_names(names, &previous, false);
            }
            // Under the write lock: a reader sees the generation and the maps move together.
            self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A number that moves whenever a company or user is added or changed: what was worked out
    /// from the companies still holds while it stays the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serialises writes to the cache with reloads, so merged states are applied in commit order:
    /// hold it from before a write's commit until its result is [applied](Entities::apply).
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, i64> {
        self.writes.lock().await
    }

    /// Reloads the rows seen since the previous reload (everything the first time).
    pub async fn refresh(&self, store: &Store, clock: &Clock) -> StoreResult<()> {
        let mut since = self.writes.lock().await;
        let started = clock.now_ms();
        let mut rows = std::pin::pin!(store.entities_seen_since(*since));
        let mut batch = Vec::with_capacity(1024);
        while let Some(entity) = rows.next().await {
            match entity {
                Ok(entity) => batch.push(entity),
                // One unreadable row must not keep every other company from the cache.
                Err(crate::service::store::StoreError::Corrupt(row)) => {
                    tracing::error!(%row, "a stored company or user cannot be read; it is left out of remote context");
                    continue;
                }
                Err(error) => return Err(error),
            }
            if batch.len() == batch.capacity() {
                self.apply(batch.drain(..));
            }
        }
        self.apply(batch);
        *since = started - RELOAD_OVERLAP_MS;
        Ok(())
    }

    /// The request context with the stored attributes of its `company.id` and `user.id` merged
    /// under it (the request's own fields win), and whether any stored attributes were found.
    pub fn enrich(&self, environment_id: i64, context: FlatContext) -> (FlatContext, bool) {
        let ids = (context.get("company.id"), context.get("user.id"));
        match self.merged(environment_id, ids, context.iter()) {
            Some(merged) => (merged, true),
            None => (context, false),
        }
    }

    /// [`Entities::enrich`] for a context given as flat pairs in order (the query string's
    /// `context.*` parameters, later pairs winning): the merged context is built in one pass.
    pub fn enrich_pairs<'p, I>(&self, environment_id: i64, pairs: I) -> (FlatContext, bool)
    where
        I: Iterator<Item = (&'p str, &'p str)> + Clone,
    {
        let last = |field: &str| pairs.clone().filter(|(k, _)| *k == field).last().map(|(_, v)| v);
        let ids = (last("company.id"), last("user.id"));
        match self.merged(environment_id, ids, pairs.clone()) {
            Some(merged) => (merged, true),
            None => (FlatContext::from_pairs(pairs), false),
        }
    }

    /// The context of `pairs` under the stored attributes of the company and user `ids`, or
    /// `None` when neither has any.
    fn merged<'p>(
        &self,
        environment_id: i64,
        (company_id, user_id): (Option<&str>, Option<&str>),
        pairs: impl Iterator<Item = (&'p str, &'p str)>,
    ) -> Option<FlatContext> {
        let environments = self.read();
        let environment = environments.get(&environment_id)?;
        let company = company_id
            .and_then(|id| environment.companies.get(id))
            .filter(|a| !a.is_empty());
        let user = user_id
            .and_then(|id| environment.users.get(id))
            .filter(|a| !a.is_empty());
        if company.is_none() && user.is_none() {
            return None;
        }
        let stored = [("company.", company), ("user.", user)]
            .into_iter()
            .filter_map(|(prefix, attributes)| Some((prefix, attributes?)))
            .flat_map(|(prefix, attributes)| attributes.iter().map(move |(k, v)| (prefix, k, v)));
        Some(FlatContext::from_prefixed_pairs(
            stored.chain(pairs.map(|(k, v)| ("", k, v))),
        ))
    }

    /// Every known company of the environment as its evaluation context (`company.id` and
    /// `company.<attribute>`), for counting who a rule or segment lets in. (Contexts cache parsed
    /// numbers in a cell, so they are built per use rather than shared between threads; what is
    /// counted from them is kept instead: `service::page_cache`.)
    pub fn company_contexts(&self, environment_id: i64) -> Vec<FlatContext> {
        let environments = self.read();
        let Some(environment) = environments.get(&environment_id) else {
            return Vec::new();
        };
        environment
            .companies
            .iter()
            .map(|(id, attributes)| {
                let pairs = attributes
                    .iter()
                    .map(|(k, v)| ("company.", k, v))
                    .chain(std::iter::once(("company.", "id", &**id)));
                FlatContext::from_prefixed_pairs(pairs)
            })
            .collect()
    }

    /// The attribute names seen on the environment's companies and on its users, each sorted,
    /// `id` first.
    pub fn attribute_names(&self, environment_id: i64) -> (Vec<String>, Vec<String>) {
        let environments = self.read();
        let names = |names: Option<&BTreeMap<Box<str>, usize>>| {
            let rest = names
                .into_iter()
                .flat_map(|n| n.keys())
                .filter(|k| &***k != "id")
                .map(|k| k.to_string());
            std::iter::once("id".to_string()).chain(rest).collect::<Vec<_>>()
        };
        let environment = environments.get(&environment_id);
        (
            names(environment.map(|e| &e.company_names)),
            names(environment.map(|e| &e.user_names)),
        )
    }

    /// The cached flattened attributes of one company or user.
    pub fn attributes(
        &self,
        environment_id: i64,
        kind: EntityKind,
        id: &str,
    ) -> Option<Vec<(String, String)>> {
        let environments = self.read();
        let environment = environments.get(&environment_id)?;
        let map = match kind {
            EntityKind::Company => &environment.companies,
            EntityKind::User => &environment.users,
        };
        map.get(id)
            .map(|a| a.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// How many companies (or users) `environment_id` stores, and how many of `ids` it does not
    /// store yet (each counted once).
    pub fn stored_and_new<'i>(
        &self,
        environment_id: i64,
        kind: EntityKind,
        ids: impl IntoIterator<Item = &'i str>,
    ) -> (usize, usize) {
        let environments = self.read();
        let Some(environment) = environments.get(&environment_id) else {
            let new: std::collections::HashSet<&str> = ids.into_iter().collect();
            return (0, new.len());
        };
        let map = match kind {
            EntityKind::Company => &environment.companies,
            EntityKind::User => &environment.users,
        };
        let new: std::collections::HashSet<&str> =
            ids.into_iter().filter(|id| !map.contains_key(*id)).collect();
        (map.len(), new.len())
    }

    /// For each of `ids`, in order: `None` when the environment has no company (or user) with it,
    /// else its name and email as stored (`"Acme Inc"`, `"Alice · alice@acme.test"`, or `""`).
    pub fn labels(&self, environment_id: i64, kind: EntityKind, ids: &[String]) -> Vec<Option<String>> {
        let environments = self.read();
        let map = environments.get(&environment_id).map(|e| match kind {
            EntityKind::Company => &e.companies,
            EntityKind::User => &e.users,
        });
        ids.iter()
            .map(|id| {
                let attributes = map?.get(id.as_str())?;
                let parts: Vec<&str> = ["name", "email"]
                    .into_iter()
                    .filter_map(|wanted| attributes.iter().find(|(k, _)| *k == wanted).map(|(_, v)| v))
                    .collect();
                Some(parts.join(" · "))
            })
            .collect()
    }

    /// Those of `ids` that the environment has no company (or user) with, in their order.
    pub fn unseen(&self, environment_id: i64, kind: EntityKind, ids: &[String]) -> Vec<String> {
        let environments = self.read();
        let map = environments.get(&environment_id).map(|e| match kind {
            EntityKind::Company => &e.companies,
            EntityKind::User => &e.users,
        });
        ids.iter()
            .filter(|id| !map.is_some_and(|m| m.contains_key(id.as_str())))
            .cloned()
            .collect()
    }

    pub fn counts(&self) -> Vec<EntityCounts> {
        let mut counts: Vec<EntityCounts> = self
            .read()
            .iter()
            .map(|(id, e)| EntityCounts {
                environment_id: *id,
                companies: e.companies.len(),
                users: e.users.len(),
            })
            .collect();
        counts.sort_by_key(|c| c.environment_id);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JsValue;

    #[test]
    fn attributes_round_trip_flattened() {
        // 130 bytes need a two-byte length.
        let long = "x".repeat(130);
        let object: JsValue = serde_json::from_str(&format!(
            r#"{{"plan":"pro","seats":12,"address":{{"city":"Köln"}},"long":"{long}"}}"#
        ))
        .unwrap();
        let attributes = Attributes::from_object(object.as_object().unwrap());
        let pairs: Vec<_> = attributes.iter().collect();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0], ("plan", "pro"));
        assert_eq!(pairs[1], ("seats", "12"));
        assert_eq!(pairs[2], ("address.city", "Köln"));
        assert_eq!(pairs[3].1.len(), 130);
    }

    /// A stored company of environment 1 with attributes given as a JSON object.
    fn company(id: &str, attributes: &str) -> StoredEntity {
        StoredEntity {
            environment_id: 1,
            kind: EntityKind::Company,
            id: id.into(),
            attributes: serde_json::from_str::<JsValue>(attributes)
                .unwrap()
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn request_fields_win_over_stored_ones() {
        let entities = Entities::default();
        entities.apply([company("acme", r#"{"plan":"pro","tier":"gold"}"#)]);
        let request = FlatContext::from_pairs([("company.id", "acme"), ("company.plan", "free")]);
        let (merged, used) = entities.enrich(1, request);
        assert!(used);
        assert_eq!(merged.get("company.plan"), Some("free"));
        assert_eq!(merged.get("company.tier"), Some("gold"));
        let (_, used) = entities.enrich(2, FlatContext::from_pairs([("company.id", "acme")]));
        assert!(!used);
    }

    #[test]
    fn attribute_names_follow_every_write() {
        let entities = Entities::default();
        entities.apply([
            company("a", r#"{"plan":"pro","tier":"gold","id":"a"}"#),
            company("b", r#"{"plan":"free"}"#),
        ]);
        let (companies, users) = entities.attribute_names(1);
        assert_eq!(companies, ["id", "plan", "tier"]);
        assert_eq!(users, ["id"]);
        // `a` is written again without `tier`: no one carries it any more; `plan` stays for `b`.
        entities.apply([company("a", r#"{"region":"eu"}"#)]);
        assert_eq!(entities.attribute_names(1).0, ["id", "plan", "region"]);
        entities.apply([company("b", r#"{}"#)]);
        assert_eq!(entities.attribute_names(1).0, ["id", "region"]);
        assert_eq!(entities.attribute_names(2).0, ["id"]);
    }

    #[test]
    fn labels_name_known_ids_and_leave_unseen_ones_out() {
        let entities = Entities::default();
        entities.apply([
            company("acme", r#"{"name":"Acme Inc","plan":"pro"}"#),
            company("globex", r#"{"plan":"free"}"#),
        ]);
        let ids = ["acme", "globex", "initech"].map(String::from);
        assert_eq!(
            entities.labels(1, EntityKind::Company, &ids),
            [Some("Acme Inc".to_string()), Some(String::new()), None]
        );
        assert_eq!(entities.labels(2, EntityKind::Company, &ids[..1]), [None]);
    }

    #[test]
    fn pairs_enrich_like_a_built_context() {
        let entities = Entities::default();
        entities.apply([company("acme", r#"{"plan":"pro","tier":"gold"}"#)]);
        let cases: [&[(&str, &str)]; 4] = [
            // The later `company.id` wins, as in a built context.
            &[
                ("company.id", "other"),
                ("company.plan", "free"),
                ("company.id", "acme"),
            ],
            &[("company.id", "acme"), ("company.id", "other")],
            &[("user.id", "u1")],
            &[],
        ];
        for pairs in cases {
            let built = entities.enrich(1, FlatContext::from_pairs(pairs.iter().copied()));
            let streamed = entities.enrich_pairs(1, pairs.iter().copied());
            assert_eq!(streamed, built, "{pairs:?}");
        }
        let (merged, used) =
            entities.enrich_pairs(1, [("company.id", "acme"), ("company.plan", "free")].into_iter());
        assert!(used);
        assert_eq!(
            merged.to_pairs()[0],
            ("company.plan".to_owned(), "free".to_owned())
        );
        assert_eq!(merged.get("company.tier"), Some("gold"));
    }
}
