//! What applications report through the ingest endpoints: companies and users with their
//! attributes, events and flag checks. Telemetry, not configuration: it goes through the change
//! pipeline (authorized by the environment's key, written in one transaction, acknowledged only
//! once committed) but writes no audit entry or outbox event and no `flagStateVersion`, and it
//! holds no environment: a flood of reports must never queue behind, or ahead of, a flag change.

use super::error::{ServiceError, ServiceResult};
use super::store::entities::{record_ingest, EntityKind, StoredEntity};
use super::write::Write;

/// Most attributes one company or user keeps once a report is merged into what is stored.
pub const MAX_ENTITY_ATTRIBUTES: usize = 100;
/// Largest a company's or user's merged attributes may be, as stored JSON text.
pub const MAX_ENTITY_BYTES: usize = 8 * 1024;

pub use super::store::entities::{EntityUpsert, IngestWrite};

/// Writes one request's reports; the stored companies and users reach the runtime's cache after
/// the commit.
pub async fn record(w: &mut Write<'_>, environment_id: i64, writes: &[IngestWrite]) -> ServiceResult<()> {
    let now = w.now;
    let touched = record_ingest(w.conn(), environment_id, writes, now).await?;
    touched.iter().try_for_each(check_size)?;
    w.ingested.extend(touched);
    Ok(())
}

/// Refuses a merge that leaves a company or user larger than the caps; the caller's transaction
/// then rolls the whole request back, so what is stored never grows past them.
fn check_size(entity: &StoredEntity) -> ServiceResult<()> {
    let kind = match entity.kind {
        EntityKind::Company => "company",
        EntityKind::User => "user",
    };
    let count = entity.attributes.len();
    if count > MAX_ENTITY_ATTRIBUTES {
        let message = format!(
            "{kind} {:?} would have {count} attributes once merged with what is stored; \
             at most {MAX_ENTITY_ATTRIBUTES} are kept",
            entity.id
        );
        return Err(ServiceError::invalid("attributes", message));
    }
    let bytes = serde_json::to_string(&entity.attributes).map_or(usize::MAX, |text| text.len());
    if bytes > MAX_ENTITY_BYTES {
        let message = format!(
            "{kind} {:?} would have {bytes} bytes of attributes once merged with what is stored; \
             at most {MAX_ENTITY_BYTES} are kept",
            entity.id
        );
        return Err(ServiceError::invalid("attributes", message));
    }
    Ok(())
}
