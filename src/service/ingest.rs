//! What applications report through the ingest endpoints: companies and users with their
//! attributes, events and flag checks. Telemetry, not configuration: it goes through the change
//! pipeline (authorized by the environment's key, written in one transaction, acknowledged only
//! once committed) but writes no audit entry or outbox event and no `flagStateVersion`, and it
//! holds no environment: a flood of reports must never queue behind, or ahead of, a flag change.

use super::actor::Actor;
use super::change::Change;
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
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

impl Service {
    /// Applies one ingest request as `actor` (an API key of the environment). Runs to completion
    /// even when the client goes away, so the cache never misses a committed write.
    pub async fn ingest(&self, actor: Actor, environment_id: i64, writes: Vec<IngestWrite>) -> ServiceResult<()> {
        let service = self.clone();
        let task = tokio::spawn(async move {
            service
                .apply(&actor, Change::Ingest { environment_id, writes })
                .await
        });
        match task.await {
            Ok(result) => result.map(|_| ()),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(ServiceError::Internal),
        }
    }
}
