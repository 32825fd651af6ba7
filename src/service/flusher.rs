//! The usage flusher: writes the runtime's counters through the change pipeline
//! (`Change::RecordUsage`, as Gatehouse itself) and prunes what is past its retention
//! (`Change::PruneUsage`).
//!
//! The server flushes every [`FLUSH_EVERY`] (all changed day sketches every [`SKETCHES_EVERY`],
//! a few at every flush) and once more, sketches included, at a graceful shutdown; a batch that
//! could not be written stays in memory and goes with the next flush. Retention: hourly rows
//! [`HOURLY_DAYS`] days, daily rows [`DAILY_DAYS`] days, pruned by the flusher once an hour.
//! Every ten minutes it also announces the flags that became stale (`flag.became_stale`, an
//! outbox event webhooks can ask for).
//! Tests move the injected clock and call [`Service::flush_usage`] and
//! [`Service::prune_usage`] (and [`Service::announce_stale_flags`]) themselves.

use super::actor::Actor;
use super::change::{Change, Outcome};
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::runtime::usage::{DAY_MS, HOUR_MS};
use super::usage::{DAILY_DAYS, HOURLY_DAYS};

/// How often a server writes its counters.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// How often the periodic flusher writes every changed day sketch (and once more at shutdown).
pub const SKETCHES_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Who writes the counts, as the pipeline sees it.
const USAGE_COUNTER: &str = "usage counter";
/// Who announces that a flag became stale.
const LIFECYCLE: &str = "flag lifecycle";
/// How often the flusher looks for flags that became stale (a day-scale matter).
const STALE_EVERY_MS: i64 = 10 * 60_000;

impl Service {
    /// Writes what this server counted since the last flush, the day sketches included; returns
    /// how many rows it added. Without a runtime (the command line) there is nothing to write.
    pub async fn flush_usage(&self) -> ServiceResult<usize> {
        self.flush_usage_with(true).await
    }

    /// [`Service::flush_usage`], with every changed day sketch only when `sketches`, else only
    /// when they are few (the periodic flusher writes many every [`SKETCHES_EVERY`]: a dense
    /// sketch is a few KB, where a count is bytes).
    async fn flush_usage_with(&self, sketches: bool) -> ServiceResult<usize> {
        let Some(runtime) = self.runtime().cloned() else {
            return Ok(0);
        };
        // Turning the counters into sketches is CPU work: off the server's worker threads.
        let started = std::time::Instant::now();
        let counters = runtime.clone();
        let batch = tokio::task::spawn_blocking(move || counters.usage().take(sketches))
            .await
            .map_err(|_| ServiceError::Internal)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let collected = started.elapsed();
        let rows = batch.hourly.len() + batch.exposed.len() + batch.checked.len();
        let started = std::time::Instant::now();
        let change = Change::RecordUsage(batch.clone());
        if let Err(error) = self.apply(&Actor::system(USAGE_COUNTER), change).await {
            runtime.usage().put_back(batch);
            return Err(error);
        }
        let (collect_ms, write_ms) = (
            collected.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        tracing::debug!(rows, sketches, collect_ms, write_ms, "usage flushed");
        Ok(rows)
    }

    /// Deletes the usage rows past their retention; returns how many hourly and daily rows.
    pub async fn prune_usage(&self) -> ServiceResult<(u64, u64)> {
        let now = self.clock().now_ms();
        let hour = now.div_euclid(HOUR_MS) * HOUR_MS;
        let day = now.div_euclid(DAY_MS) * DAY_MS;
        let change = Change::PruneUsage {
            hourly_before: hour - HOURLY_DAYS * DAY_MS,
            daily_before: day - DAILY_DAYS * DAY_MS,
        };
        match self.apply(&Actor::system(USAGE_COUNTER), change).await? {
            Outcome::Pruned { hourly, daily } => Ok((hourly, daily)),
            other => Err(other.unexpected()),
        }
    }

    /// Flushes every `every` until the task is aborted, and prunes once an hour.
    /// Announces the flags that became stale since the last pass (`flag.became_stale`, once
    /// each time a flag becomes stale); returns how many were announced.
    pub async fn announce_stale_flags(&self) -> ServiceResult<usize> {
        let actor = Actor::system(LIFECYCLE);
        let mut announced = 0;
        for flag in self.stale_flags(&actor).await? {
            if self.apply(&actor, Change::AnnounceStale(flag)).await? == Outcome::Applied(true) {
                announced += 1;
            }
        }
        Ok(announced)
    }

    pub fn spawn_usage_flusher(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned_at = i64::MIN;
            let mut announced_at = i64::MIN;
            let sketch_ticks = (SKETCHES_EVERY.as_millis() / every.as_millis().max(1)).max(1) as u64;
            let mut tick: u64 = 0;
            loop {
                ticks.tick().await;
                tick += 1;
                if let Err(error) = service.flush_usage_with(tick.is_multiple_of(sketch_ticks)).await {
                    tracing::warn!(%error, "could not write the usage counts; keeping them for the next flush");
                }
                let now = service.clock().now_ms();
                if now.saturating_sub(announced_at) >= STALE_EVERY_MS {
                    match service.announce_stale_flags().await {
                        Ok(_) => announced_at = now,
                        Err(error) => tracing::warn!(%error, "could not look for flags that became stale"),
                    }
                }
                if now.saturating_sub(pruned_at) >= HOUR_MS {
                    match service.prune_usage().await {
                        Ok(_) => pruned_at = now,
                        Err(error) => tracing::warn!(%error, "could not prune old usage rows"),
                    }
                }
            }
        })
    }
}
