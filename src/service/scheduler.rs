//! The scheduler: applies due scheduled changes (see `schedule.rs`) and advances release plans
//! whose wait is over (see `plans.rs`) through the change pipeline, each as its author; marks the
//! changes that cannot be applied with the reason, and pauses the plans that cannot advance. The server runs a
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
    /// Applies the changes due now and advances the plans due now (at most a pass of each);
    /// returns how many changes were applied and plans advanced. Changes that cannot be applied
    /// are marked `conflict` or `failed` with the reason, plans that cannot advance are paused
    /// with it; what hit a passing failure (the database) waits for the next pass.
    pub async fn apply_due_changes(&self) -> ServiceResult<usize> {
        let now = self.clock().now_ms();
        let mut applied = 0;
        for change in self.store().due_changes(now, PASS).await? {
            if self.apply_one(&change).await? {
                applied += 1;
            }
        }
        for (plan, from) in self.store().due_plans(now, PASS).await? {
            if self.advance_plan(&plan, from).await? {
                applied += 1;
            }
        }
        Ok(applied)
    }

    async fn advance_plan(&self, due: &Due, from: usize) -> ServiceResult<bool> {
        let author = match self.author(due).await? {
            Ok(author) => author,
            Err(reason) => {
                self.hold_plan(due.id, &reason).await?;
                return Ok(false);
            }
        };
        let change = Change::AdvancePlan {
            id: due.id,
            from,
            automatic: true,
        };
        let reason = match self.apply(&author, change).await {
            Ok(outcome) => return Ok(outcome == Outcome::Applied(true)),
            Err(ServiceError::Denied(refusal)) => format!("its author may no longer advance it ({refusal})"),
            Err(
                error @ (ServiceError::Conflict(_)
                | ServiceError::Invalid { .. }
                | ServiceError::NotFound(_)
                | ServiceError::Refused(_)
                | ServiceError::Corrupt(_)),
            ) => error.to_string(),
            Err(error) => {
                tracing::warn!(id = due.id, %error, "a due plan could not advance now; retrying");
                return Ok(false);
            }
        };
        tracing::info!(id = due.id, %reason, "a release plan could not advance and is paused");
        self.hold_plan(
            due.id,
            &format!("paused: the next milestone could not be reached: {reason}"),
        )
        .await?;
        Ok(false)
    }

    async fn hold_plan(&self, id: i64, note: &str) -> ServiceResult<()> {
        let change = Change::SetPlanPaused {
            id,
            paused: true,
            note: note.to_string(),
        };
        self.apply(&Actor::system("scheduler"), change).await?;
        Ok(())
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
