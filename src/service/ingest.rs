//! What applications report through the ingest endpoints: companies and users with their
//! attributes, events and flag checks. Telemetry, not configuration: it goes through the change
//! pipeline (authorized by the environment's key, written in one transaction, acknowledged only
//! once committed) but writes no audit entry or outbox event and no `flagStateVersion`, and it
//! holds no environment: a flood of reports must never queue behind, or ahead of, a flag change.

use super::error::ServiceResult;
use super::store::entities::record_ingest;
use super::write::Write;

pub use super::store::entities::{EntityUpsert, IngestWrite};

/// Writes one request's reports; the stored companies and users reach the runtime's cache after
/// the commit.
pub async fn record(w: &mut Write<'_>, environment_id: i64, writes: &[IngestWrite]) -> ServiceResult<()> {
    let now = w.now;
    let touched = record_ingest(w.conn(), environment_id, writes, now).await?;
    w.ingested.extend(touched);
    Ok(())
}
