//! Release plans: a flag's access in one environment goes through the milestones of a plan
//! (internal companies → 10 % → 50 % → everyone), each reached by hand ([`advance`]) or, where
//! the milestone before has a wait, by the scheduler (`scheduler.rs`) once it is due. A plan is
//! made from a template defined once in settings and copies its milestones. Access only grows
//! along a plan ([`crate::model::narrowing`]), so companies that had the flag keep it.
//!
//! Reaching a milestone writes its access (and stage) through the same functions as a change by
//! hand, inside the pipeline's transaction: one audit entry per write, plus one for the plan.
//! When the access was changed by hand since the plan's last step, a plan advancing by itself
//! pauses instead of overwriting it, and says why.

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::flags::{self, AccessChange};
use super::stages::{resolve, StageRef};
use super::store::flags::latest_version;
use super::store::plans::{
    claim_plan, delete_template as delete_stored, insert_plan, plan_in, running_plan_in,
    save_template as save_stored, template_in, update_plan, NewPlan,
};
use super::store::stages::stages_in;
use super::write::{Record, Write};
use crate::model::{narrowing, AccessRules, Milestone, PlanStatus, ReleasePlan};

/// The most milestones a plan has.
pub const MAX_MILESTONES: usize = 12;
/// The shortest and longest wait before a milestone follows by itself.
const MIN_WAIT_MS: i64 = 60_000;
const MAX_WAIT_MS: i64 = 366 * 24 * 3600 * 1000;

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

/// Refuses milestones a plan cannot go through.
async fn check_milestones(w: &mut Write<'_>, milestones: &[Milestone]) -> ServiceResult<()> {
    if milestones.is_empty() || milestones.len() > MAX_MILESTONES {
        return Err(invalid(
            "milestones",
            format!("a plan has 1 to {MAX_MILESTONES} milestones"),
        ));
    }
    let stages = stages_in(w.conn()).await?;
    for (i, milestone) in milestones.iter().enumerate() {
        let n = i + 1;
        if milestone.name.trim().is_empty() || milestone.name.chars().count() > 100 {
            return Err(invalid(
                "milestones",
                format!("milestone {n} needs a name of 1 to 100 characters"),
            ));
        }
        if let Some(stage) = &milestone.stage {
            resolve(&stages, &StageRef::Name(stage.clone())).map_err(|_| {
                invalid(
                    "milestones",
                    format!("milestone {n}: there is no stage named {stage:?}"),
                )
            })?;
        }
        if let Some(wait) = milestone.advance_after_ms {
            if !(MIN_WAIT_MS..=MAX_WAIT_MS).contains(&wait) {
                return Err(invalid(
                    "milestones",
                    format!("milestone {n}: wait between a minute and a year"),
                ));
            }
        }
        if let Some(before) = i.checked_sub(1).map(|b| &milestones[b]) {
            if let Some(why) = narrowing(&before.rules, &milestone.rules) {
                return Err(invalid(
                    "milestones",
                    format!(
                        "milestone {n} ({}) gives less access than milestone {i}: {why}",
                        milestone.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Creates (`id` `None`) or replaces a plan template; returns its id.
pub async fn save_template(
    w: &mut Write<'_>,
    id: Option<i64>,
    name: &str,
    milestones: Vec<Milestone>,
) -> ServiceResult<i64> {
    let name = flags::check_text("name", name, 100, true)?;
    check_milestones(w, &milestones).await?;
    let before = match id {
        Some(id) => Some(
            template_in(w.conn(), id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("plan template {id}")))?,
        ),
        None => None,
    };
    let now = w.now;
    let id = save_stored(w.conn(), id, &name, &milestones, now).await?;
    let record = Record::of("plan_template.saved", "plan_template", &name)
        .before(before.map(|t| json!(t)))
        .after(json!({ "id": id, "name": name, "milestones": milestones }));
    w.record(record).await?;
    Ok(id)
}

pub async fn delete_template(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let template = template_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("plan template {id}")))?;
    delete_stored(w.conn(), id).await?;
    let record = Record::of("plan_template.deleted", "plan_template", &template.name).before(json!(template));
    w.record(record).await?;
    Ok(())
}

/// Starts the template's plan for a flag in an environment: its first milestone is reached at
/// once. Returns the plan's id.
pub async fn start(w: &mut Write<'_>, key: &str, environment: &str, template_id: i64) -> ServiceResult<i64> {
    let environment = w.environment(environment)?;
    let flag = flags::flag(w, key).await?;
    let template = template_in(w.conn(), template_id)
        .await?
        .ok_or_else(|| invalid("template", "choose a plan template"))?;
    check_milestones(w, &template.milestones).await?;
    if running_plan_in(w.conn(), flag.id, environment.id)
        .await?
        .is_some()
    {
        return Err(ServiceError::Conflict(format!(
            "{key} has a running plan in {} already; cancel it first",
            environment.name
        )));
    }
    let first = &template.milestones[0];
    let version = reach(w, key, environment.key.as_str(), first).await?;
    let (member, label, now) = (w.actor.member_id(), w.actor.label.clone(), w.now);
    let plan = NewPlan {
        flag_id: flag.id,
        environment_id: environment.id,
        template: &template.name,
        milestones: &template.milestones,
        next_due_at: wait_after(&template.milestones, 0, now),
        applied_version: version,
        author: (member, &label),
    };
    let id = insert_plan(w.conn(), &plan, now).await?;
    let record = Record::flag("flag.plan_started", key, Some(environment.id)).after(json!({
        "plan": id,
        "template": template.name,
        "milestone": first.name,
    }));
    w.record(record).await?;
    Ok(id)
}

/// When the milestone after `current` follows by itself, if it does.
fn wait_after(milestones: &[Milestone], current: usize, now: i64) -> Option<i64> {
    let wait = milestones.get(current)?.advance_after_ms?;
    milestones.get(current + 1).map(|_| now + wait)
}

/// Writes a milestone: its stage first (a stage's default access must not replace the
/// milestone's), then its access. Returns the access version now current.
async fn reach(w: &mut Write<'_>, key: &str, environment: &str, milestone: &Milestone) -> ServiceResult<i64> {
    if let Some(stage) = &milestone.stage {
        let stages = stages_in(w.conn()).await?;
        let stage_id = resolve(&stages, &StageRef::Name(stage.clone()))?.id;
        flags::move_stage(w, key, stage_id).await?;
    }
    let change = AccessChange::Set(milestone.rules.clone());
    flags::set_access(w, key, environment, change, None).await
}

/// The access version of a plan's flag in its environment now.
async fn access_version(w: &mut Write<'_>, plan: &ReleasePlan) -> ServiceResult<i64> {
    let flag = flags::flag(w, &plan.flag).await?;
    let current = latest_version::<AccessRules>(w.conn(), flag.id, plan.environment_id).await?;
    Ok(current.map_or(0, |v| v.version))
}

fn environment_key(w: &Write<'_>, plan: &ReleasePlan) -> ServiceResult<String> {
    w.environments
        .iter()
        .find(|e| e.id == plan.environment_id)
        .map(|e| e.key.to_string())
        .ok_or(ServiceError::Internal)
}

/// Moves the plan `id` from milestone `from` to the next one, by hand or (`automatic`) because
/// its wait is over. False when there is nothing to do: the plan moved on meanwhile, is not
/// active, is not due, or paused itself because the access was changed by hand.
pub async fn advance(w: &mut Write<'_>, id: i64, from: usize, automatic: bool) -> ServiceResult<bool> {
    let now = w.now;
    let Some(mut plan) = claim_plan(w.conn(), id, from, automatic.then_some(now)).await? else {
        if automatic {
            return Ok(false);
        }
        return Err(ServiceError::Conflict(
            "the plan moved on or is not active; reload to see where it stands".into(),
        ));
    };
    let Some(next) = plan.next().cloned() else {
        return Err(invalid("plan", "the plan is at its last milestone"));
    };
    let version = access_version(w, &plan).await?;
    if automatic && version != plan.applied_version {
        plan.status = PlanStatus::Paused;
        plan.next_due_at = None;
        plan.note = format!(
            "paused before {:?}: the access was changed by hand after the plan's last step (version {} \
             is current, the plan wrote version {}); resume to continue from the access as it is",
            next.name, version, plan.applied_version
        );
        update_plan(w.conn(), &plan, now).await?;
        let record = Record::flag("flag.plan_paused", &plan.flag, Some(plan.environment_id))
            .after(json!({ "plan": id, "reason": plan.note }));
        w.record(record).await?;
        return Ok(false);
    }
    let environment = environment_key(w, &plan)?;
    plan.applied_version = reach(w, &plan.flag, &environment, &next).await?;
    plan.current += 1;
    plan.next_due_at = wait_after(&plan.milestones, plan.current, now);
    plan.note.clear();
    if plan.next().is_none() {
        plan.status = PlanStatus::Completed;
    }
    update_plan(w.conn(), &plan, now).await?;
    let record = Record::flag("flag.plan_advanced", &plan.flag, Some(plan.environment_id)).after(json!({
        "plan": id,
        "milestone": next.name,
        "step": plan.current + 1,
        "of": plan.milestones.len(),
        "automatic": automatic,
    }));
    w.record(record).await?;
    Ok(true)
}

/// Pauses an active plan or resumes a paused one. Resuming adopts the access as it is (a change
/// by hand during the pause stays) and starts the current milestone's wait again.
pub async fn set_paused(w: &mut Write<'_>, id: i64, paused: bool, note: &str) -> ServiceResult<()> {
    let mut plan = plan_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("release plan {id}")))?;
    let now = w.now;
    match (plan.status, paused) {
        (PlanStatus::Active, true) => {
            plan.status = PlanStatus::Paused;
            plan.next_due_at = None;
            plan.note = note.to_string();
        }
        (PlanStatus::Paused, false) => {
            plan.status = PlanStatus::Active;
            plan.next_due_at = wait_after(&plan.milestones, plan.current, now);
            plan.applied_version = access_version(w, &plan).await?;
            plan.note.clear();
        }
        (status, _) => {
            return Err(ServiceError::Refused(format!(
                "the plan is {} and cannot be {}",
                status.as_str(),
                if paused { "paused" } else { "resumed" }
            )))
        }
    }
    update_plan(w.conn(), &plan, now).await?;
    let action = if paused {
        "flag.plan_paused"
    } else {
        "flag.plan_resumed"
    };
    let record = Record::flag(action, &plan.flag, Some(plan.environment_id))
        .after(json!({ "plan": id, "milestone": plan.milestones[plan.current].name, "reason": note }));
    w.record(record).await?;
    Ok(())
}

/// Ends a running plan where it is; the access stays as the last milestone left it.
pub async fn cancel(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let mut plan = plan_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("release plan {id}")))?;
    if !matches!(plan.status, PlanStatus::Active | PlanStatus::Paused) {
        return Err(ServiceError::Refused(format!(
            "the plan is {} already",
            plan.status.as_str()
        )));
    }
    plan.status = PlanStatus::Cancelled;
    plan.next_due_at = None;
    let now = w.now;
    update_plan(w.conn(), &plan, now).await?;
    let record = Record::flag("flag.plan_cancelled", &plan.flag, Some(plan.environment_id))
        .after(json!({ "plan": id, "milestone": plan.milestones[plan.current].name }));
    w.record(record).await?;
    Ok(())
}
