//! The scheduler: applies due scheduled changes (see `schedule.rs`) through the change pipeline,
//! each as its author, and marks those that cannot be applied with the reason. The server runs a
//! pass at start-up (what fell due while it was down) and then every second; tests move the
//! injected clock and call [`Service::apply_due_changes`] themselves.

use super::actor::{Actor, ActorKind};
use super::change::{Change, Outcome};
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::store::scheduled::Due;
use crate::model::ScheduleStatus;

/// How many due changes one pass of the scheduler takes on.
const PASS: i64 = 100;

impl Service {
    /// Applies the changes due now (at most a pass of them); returns how many were applied.
    /// Those that cannot be applied are marked `conflict` or `failed` with the reason; those that
    /// hit a passing failure (the database) stay pending for the next pass.
    pub async fn apply_due_changes(&self) -> ServiceResult<usize> {
        let due = self.store().due_changes(self.clock().now_ms(), PASS).await?;
        let mut applied = 0;
        for change in due {
            if self.apply_one(&change).await? {
                applied += 1;
            }
        }
        Ok(applied)
    }

    async fn apply_one(&self, due: &Due) -> ServiceResult<bool> {
        let author = match self.author(due).await? {
            Ok(author) => author,
            Err(reason) => {
                self.mark(due.id, ScheduleStatus::Failed, &reason).await?;
                return Ok(false);
            }
        };
        let (status, reason) = match self.apply(&author, Change::ApplyScheduled { id: due.id }).await {
            Ok(outcome) => return Ok(outcome == Outcome::Applied(true)),
            Err(ServiceError::Conflict(reason)) => (ScheduleStatus::Conflict, reason),
            Err(ServiceError::Denied(refusal)) => (
                ScheduleStatus::Failed,
                format!("its author may no longer make this change ({refusal})"),
            ),
            Err(
                error @ (ServiceError::Invalid { .. }
                | ServiceError::NotFound(_)
                | ServiceError::Refused(_)
                | ServiceError::Corrupt(_)),
            ) => (ScheduleStatus::Failed, error.to_string()),
            Err(error) => {
                tracing::warn!(id = due.id, %error, "a due scheduled change could not be applied now; retrying");
                return Ok(false);
            }
        };
        tracing::info!(id = due.id, status = status.as_str(), %reason, "a scheduled change was not applied");
        self.mark(due.id, status, &reason).await?;
        Ok(false)
    }

    async fn mark(&self, id: i64, status: ScheduleStatus, reason: &str) -> ServiceResult<()> {
        let reason = reason.to_string();
        let change = Change::MarkScheduled { id, status, reason };
        self.apply(&Actor::system("scheduler"), change).await?;
        Ok(())
    }

    /// The actor a due change is applied as: its author, with the author's role now.
    /// `Err` says why there is none (the member was removed).
    async fn author(&self, due: &Due) -> ServiceResult<Result<Actor, String>> {
        if !due.by_member {
            return Ok(Ok(Actor {
                kind: ActorKind::Operator,
                label: format!("{} (scheduled)", due.created_label),
            }));
        }
        let member = match due.created_by {
            Some(id) => self.store().member_by_id(id).await?,
            None => None,
        };
        let Some(member) = member else {
            return Ok(Err(format!(
                "its author, {}, is no longer a member",
                due.created_label
            )));
        };
        let mut actor = Actor::member(&member);
        actor.label = format!("{} (scheduled)", member.email);
        Ok(Ok(actor))
    }

    /// Runs the scheduler until the process ends: a pass at once (what fell due while the server
    /// was down), then one every `every`.
    pub fn spawn_scheduler(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = service.apply_due_changes().await {
                    tracing::warn!(%error, "the scheduler could not read the due changes; retrying");
                }
            }
        })
    }
}
