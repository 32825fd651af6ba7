//! What applications report through the ingest endpoints: companies and users with their
//! attributes, events and flag checks. Telemetry, not configuration: it goes through the change
//! pipeline (authorized by the environment's key, written in one transaction, acknowledged only
//! once committed) but writes no audit entry or outbox event and no `flagStateVersion`, and it
//! holds no environment: a flood of reports must never queue behind, or ahead of, a flag change.
//!
//! What ingest stores is bounded by [`IngestLimits`]: companies and users per environment, and
//! the attributes of each once merged. Both are checked inside the pipeline's transaction, after
//! the writes and before the commit, while the runtime's entity cache is held for writing (one
//! ingest at a time reaches that point), so the caps are exact on one server; a request over a
//! cap rolls back whole.

use std::collections::{HashMap, HashSet};

use super::error::{ServiceError, ServiceResult};
use super::runtime::Entities;
use super::store::entities::{record_ingest, EntityKind, Ingested};
use super::write::Write;

pub use super::store::entities::{EntityUpsert, IngestWrite};

/// The caps on what ingest stores and on how many requests wait to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Most companies, and most users, one environment stores (`--max-entities`).
    pub entities: usize,
    /// Most attributes one company or user keeps once merged (`--max-entity-attributes`).
    pub attributes: usize,
    /// Largest a company's or user's merged attributes may be, as stored JSON text
    /// (`--max-entity-bytes`).
    pub bytes: usize,
    /// Most ingest requests being written or waiting to be written (`--ingest-queue`).
    pub queue: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            entities: 1_000_000,
            attributes: 100,
            bytes: 8 * 1024,
            queue: 256,
        }
    }
}

/// Writes one request's reports; the stored companies and users reach the runtime's cache after
/// the commit.
pub async fn record(w: &mut Write<'_>, environment_id: i64, writes: &[IngestWrite]) -> ServiceResult<()> {
    let now = w.now;
    let touched = record_ingest(w.conn(), environment_id, writes, now).await?;
    w.ingested.extend(touched);
    Ok(())
}

/// Refuses what the transaction's ingests wrote when it passes a cap: a company or user larger
/// than the caps once merged, or more companies or users in an environment than it may store
/// (counted against the runtime's cache, `None` on the command line, which does not ingest).
pub fn check(ingested: &[Ingested], cache: Option<&Entities>, limits: &IngestLimits) -> ServiceResult<()> {
    ingested.iter().try_for_each(|i| check_size(i, limits))?;
    let Some(cache) = cache else { return Ok(()) };
    let mut reported: HashMap<(i64, EntityKind), HashSet<&str>> = HashMap::new();
    for Ingested { entity, .. } in ingested {
        reported
            .entry((entity.environment_id, entity.kind))
            .or_default()
            .insert(&entity.id);
    }
    for ((environment_id, kind), ids) in reported {
        let (stored, new) = cache.stored_and_new(environment_id, kind, ids);
        if new > 0 && stored + new > limits.entities {
            let cap = limits.entities;
            let label = plural(kind);
            return Err(ServiceError::LimitReached(format!(
                "this environment stores {stored} {label}, and at most {cap} are kept; \
                 the request would add {new} more"
            )));
        }
    }
    Ok(())
}

fn plural(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Company => "companies",
        EntityKind::User => "users",
    }
}

/// Refuses a merge that leaves a company or user larger than the caps.
fn check_size(ingested: &Ingested, limits: &IngestLimits) -> ServiceResult<()> {
    let Ingested { entity, stored_bytes } = ingested;
    let kind = match entity.kind {
        EntityKind::Company => "company",
        EntityKind::User => "user",
    };
    let count = entity.attributes.len();
    if count > limits.attributes {
        let message = format!(
            "{kind} {:?} would have {count} attributes once merged with what is stored; \
             at most {} are kept",
            entity.id, limits.attributes
        );
        return Err(ServiceError::invalid("attributes", message));
    }
    if *stored_bytes > limits.bytes {
        let message = format!(
            "{kind} {:?} would have {stored_bytes} bytes of attributes once merged with what is \
             stored; at most {} are kept",
            entity.id, limits.bytes
        );
        return Err(ServiceError::invalid("attributes", message));
    }
    Ok(())
}
