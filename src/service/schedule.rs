//! Scheduled changes: a change to a flag (its access or remote config in an environment, a stage
//! move, archiving) planned for a later time. Scheduling, cancelling and applying are changes of
//! the one pipeline ([`super::change`]); the scheduler (`scheduler.rs`) applies each due change
//! as its author, in the author's role at that time, and exactly once: the change and its
//! "applied" status commit together, and a row being applied by one replica is skipped by the
//! others (see the store's `claim_due`).
//!
//! A scheduled change carries what it was made against; when the flag has moved on by the time
//! it is due, it is marked `conflict` instead of overwriting someone's later work, and its author
//! sees it on the overview page.

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::flags::{self, AccessChange};
use super::stages::{resolve, StageRef};
use super::store::flags::latest_version;
use super::store::requests::set_status as set_request_status;
use super::store::scheduled::{claim_due, insert_scheduled, scheduled_in, settle};
use super::store::stages::stages_in;
use super::write::{Record, Write};
use crate::model::{AccessRules, PlannedChange, RemoteConfig, RequestStatus, ScheduleStatus};

/// How far ahead a change can be scheduled.
pub const MAX_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

/// Plans `planned` for the flag `key` at `due_at`; returns the scheduled change's id.
pub async fn schedule(
    w: &mut Write<'_>,
    key: &str,
    due_at: i64,
    planned: PlannedChange,
) -> ServiceResult<i64> {
    schedule_for(w, key, due_at, planned, None).await
}

/// [`schedule`], for the approved change request `request_id` when given (whose review the
/// scheduled change carries: the caller has marked the write reviewed).
pub async fn schedule_for(
    w: &mut Write<'_>,
    key: &str,
    due_at: i64,
    planned: PlannedChange,
    request_id: Option<i64>,
) -> ServiceResult<i64> {
    if due_at <= w.now {
        return Err(ServiceError::invalid("at", "choose a time in the future"));
    }
    if due_at - w.now > MAX_AHEAD_MS {
        return Err(ServiceError::invalid("at", "choose a time within a year"));
    }
    let flag = flags::flag(w, key).await?;
    let environment = match planned.environment() {
        Some(key) => Some(w.environment(key)?),
        None => None,
    };
    match &planned {
        PlannedChange::SetAccess { based_on, .. } => {
            let environment = environment.as_ref().ok_or(ServiceError::Internal)?;
            w.check_protection(environment)?;
            let current = latest_version::<AccessRules>(w.conn(), flag.id, environment.id).await?;
            stale_form(
                current.map_or(0, |v| v.version),
                *based_on,
                "access",
                &environment.name,
            )?;
        }
        PlannedChange::SetRemoteConfig {
            variants, based_on, ..
        } => {
            flags::check_variants(variants)?;
            let environment = environment.as_ref().ok_or(ServiceError::Internal)?;
            w.check_protection(environment)?;
            let current = latest_version::<RemoteConfig>(w.conn(), flag.id, environment.id).await?;
            stale_form(
                current.map_or(0, |v| v.version),
                *based_on,
                "remote config",
                &environment.name,
            )?;
        }
        PlannedChange::MoveStage {
            stage_id,
            from_stage_id,
        } => {
            let stages = stages_in(w.conn()).await?;
            resolve(&stages, &StageRef::Id(*stage_id))?;
            if *from_stage_id != flag.stage_id {
                return Err(ServiceError::Conflict(
                    "the flag moved to another stage meanwhile; reload to see where it is".into(),
                ));
            }
            if *stage_id == flag.stage_id {
                return Err(ServiceError::invalid(
                    "stage",
                    "the flag is in this stage already",
                ));
            }
        }
        PlannedChange::SetArchived { archived } => {
            if *archived == flag.archived {
                let state = if flag.archived { "archived" } else { "not archived" };
                return Err(ServiceError::invalid(
                    "at",
                    format!("the flag is {state} already"),
                ));
            }
        }
    }
    let (member, label, now) = (w.actor.member_id(), w.actor.label.clone(), w.now);
    let environment_id = environment.as_ref().map(|e| e.id);
    let author = (member, label.as_str());
    let ids = (flag.id, environment_id, request_id);
    let id = insert_scheduled(w.conn(), ids, &planned, due_at, author, now).await?;
    let record = Record {
        environment_id,
        ..Record::flag("flag.change_scheduled", key, None)
    }
    .after(json!({ "scheduledChange": id, "dueAt": due_at, "change": planned, "changeRequest": request_id }));
    w.record(record).await?;
    Ok(id)
}

/// Refuses a form made against an older version than the one stored.
fn stale_form(current: i64, based_on: i64, what: &str, environment: &str) -> ServiceResult<()> {
    if current == based_on {
        return Ok(());
    }
    Err(ServiceError::Conflict(format!(
        "someone else changed the {what} in {environment} meanwhile (now version {current}, you edited \
         version {based_on}); reload to see their change"
    )))
}

/// Cancels a pending change.
pub async fn cancel(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let scheduled = scheduled_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("scheduled change {id}")))?;
    if scheduled.status != ScheduleStatus::Pending {
        return Err(ServiceError::Refused(format!(
            "this change is {} already and can no longer be cancelled",
            scheduled.status.as_str()
        )));
    }
    let (now, label) = (w.now, w.actor.label.clone());
    settle(w.conn(), id, ScheduleStatus::Cancelled, "cancelled", &label, now).await?;
    if let Some(request) = scheduled.request_id {
        let outcome = "cancelled with its scheduled change";
        set_request_status(w.conn(), request, RequestStatus::Cancelled, outcome, now).await?;
    }
    let record = Record::flag("flag.scheduled_change_cancelled", &scheduled.flag, None)
        .before(json!({ "scheduledChange": id, "dueAt": scheduled.due_at, "change": scheduled.planned }));
    w.record(record).await?;
    Ok(())
}

/// Applies the change `id` if it is due and still pending (false when it is not: another replica
/// applied it, it was cancelled, or it is not due). A flag that moved on since the change was
/// scheduled is a [`ServiceError::Conflict`]; the scheduler then marks it so.
pub async fn apply(w: &mut Write<'_>, id: i64) -> ServiceResult<bool> {
    let now = w.now;
    let Some(scheduled) = claim_due(w.conn(), id, now).await? else {
        return Ok(false);
    };
    let key = scheduled.flag.clone();
    let flag = flags::flag(w, &key).await?;
    // An approved change request's review covers its scheduled change.
    w.reviewed = scheduled.request_id.is_some();
    let outcome = match scheduled.planned.clone() {
        PlannedChange::SetAccess {
            environment,
            rules,
            based_on,
        } => {
            let env = w.environment(&environment)?;
            let current = latest_version::<AccessRules>(w.conn(), flag.id, env.id).await?;
            moved_on(current.map_or(0, |v| v.version), based_on, "access", &env.name)?;
            let change = AccessChange::Set(rules);
            let version = flags::set_access(w, &key, &environment, change, Some(based_on)).await?;
            format!("applied as version {version} of the access in {}", env.name)
        }
        PlannedChange::SetRemoteConfig {
            environment,
            variants,
            based_on,
        } => {
            let env = w.environment(&environment)?;
            let current = latest_version::<RemoteConfig>(w.conn(), flag.id, env.id).await?;
            moved_on(
                current.map_or(0, |v| v.version),
                based_on,
                "remote config",
                &env.name,
            )?;
            let version = flags::set_remote_config(w, &key, &environment, variants, Some(based_on)).await?;
            format!(
                "applied as version {version} of the remote config in {}",
                env.name
            )
        }
        PlannedChange::MoveStage {
            stage_id,
            from_stage_id,
        } => {
            if flag.stage_id != from_stage_id {
                return Err(ServiceError::Conflict(
                    "the flag moved to another stage after this change was scheduled".into(),
                ));
            }
            flags::move_stage(w, &key, stage_id).await?;
            "moved".to_string()
        }
        PlannedChange::SetArchived { archived } => {
            if flag.archived == archived {
                let state = if archived { "archived" } else { "restored" };
                return Err(ServiceError::Conflict(format!(
                    "the flag was {state} by hand after this change was scheduled"
                )));
            }
            flags::set_archived(w, &key, archived).await?;
            if archived { "archived" } else { "restored" }.to_string()
        }
    };
    w.reviewed = false;
    let (now, label) = (w.now, w.actor.label.clone());
    settle(w.conn(), id, ScheduleStatus::Applied, &outcome, &label, now).await?;
    if let Some(request) = scheduled.request_id {
        set_request_status(w.conn(), request, RequestStatus::Applied, &outcome, now).await?;
    }
    let record = Record::flag("flag.scheduled_change_applied", &key, None).after(json!({
        "scheduledChange": id,
        "dueAt": scheduled.due_at,
        "scheduledBy": scheduled.created_label,
        "change": scheduled.planned,
    }));
    w.record(record).await?;
    Ok(true)
}

/// Refuses a scheduled change whose flag's value moved past the version it was made against.
fn moved_on(current: i64, based_on: i64, what: &str, environment: &str) -> ServiceResult<()> {
    if current == based_on {
        return Ok(());
    }
    Err(ServiceError::Conflict(format!(
        "the {what} in {environment} changed after this change was scheduled (it was made against \
         version {based_on}, version {current} is current now); schedule it again from the current version"
    )))
}

/// Marks a due change that could not be applied as `status`, with the reason; records it.
pub async fn mark(w: &mut Write<'_>, id: i64, status: ScheduleStatus, reason: &str) -> ServiceResult<()> {
    let Some(scheduled) = scheduled_in(w.conn(), id).await? else {
        return Ok(());
    };
    let (now, label) = (w.now, w.actor.label.clone());
    if !settle(w.conn(), id, status, reason, &label, now).await? {
        return Ok(());
    }
    if let Some(request) = scheduled.request_id {
        // Back to approved, with the reason: its author edits it (and it is reviewed again).
        set_request_status(w.conn(), request, RequestStatus::Approved, reason, now).await?;
    }
    let action = match status {
        ScheduleStatus::Conflict => "flag.scheduled_change_conflict",
        _ => "flag.scheduled_change_failed",
    };
    let record = Record::flag(action, &scheduled.flag, None).after(json!({
        "scheduledChange": id,
        "dueAt": scheduled.due_at,
        "scheduledBy": scheduled.created_label,
        "reason": reason,
    }));
    w.record(record).await?;
    Ok(())
}
