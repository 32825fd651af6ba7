//! Change requests (four eyes): in a protected environment (one with required approvals), a
//! member's change of access or remote config is filed as a request that other members approve;
//! once approved, anyone who may edit applies it, re-checked against the version it was made
//! against. Editing a request withdraws its approvals; nobody approves their own; an admin may
//! change a protected environment directly with a written reason, which is audited
//! ([`super::change::Change::Bypass`]).

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::flags::{self, AccessChange};
use super::schedule;
use super::store::environments::set_required_approvals;
use super::store::flags::latest_version;
use super::store::requests::{approve as add_approval, edit_request, insert_request, request_in, set_status};
use super::store::scheduled::cancel_for_request;
use super::write::{Record, Write};
use crate::model::{AccessRules, ChangeRequest, Environment, PlannedChange, RemoteConfig, RequestStatus};

/// The most approvals an environment can require.
const MAX_APPROVALS: i64 = 5;

/// Sets how many approvals a change in an environment needs (0: not protected).
pub async fn protect(w: &mut Write<'_>, environment: &str, approvals: i64) -> ServiceResult<()> {
    if !(0..=MAX_APPROVALS).contains(&approvals) {
        return Err(ServiceError::invalid(
            "approvals",
            format!("from 0 (not protected) to {MAX_APPROVALS}"),
        ));
    }
    let environment = w.environment(environment)?;
    if environment.required_approvals == approvals {
        return Ok(());
    }
    set_required_approvals(w.conn(), environment.id, approvals).await?;
    let record = Record::of(
        "environment.protection_changed",
        "environment",
        environment.key.as_str(),
    )
    .in_environment(environment.id)
    .before(json!({ "requiredApprovals": environment.required_approvals }))
    .after(json!({ "requiredApprovals": approvals }));
    w.record(record).await?;
    Ok(())
}

/// The environment a request's change is for, and the version of its value there now.
async fn target(
    w: &mut Write<'_>,
    flag: &str,
    planned: &PlannedChange,
) -> ServiceResult<(Environment, i64, i64)> {
    let key = planned.environment().ok_or_else(|| {
        ServiceError::invalid(
            "change",
            "a request changes access or remote config in one environment",
        )
    })?;
    let environment = w.environment(key)?;
    let flag = flags::flag(w, flag).await?;
    let current = match planned {
        PlannedChange::SetAccess { .. } => latest_version::<AccessRules>(w.conn(), flag.id, environment.id)
            .await?
            .map(|v| v.version),
        _ => latest_version::<RemoteConfig>(w.conn(), flag.id, environment.id)
            .await?
            .map(|v| v.version),
    };
    Ok((environment, flag.id, current.unwrap_or(0)))
}

fn based_on(planned: &PlannedChange) -> i64 {
    match planned {
        PlannedChange::SetAccess { based_on, .. } | PlannedChange::SetRemoteConfig { based_on, .. } => {
            *based_on
        }
        _ => 0,
    }
}

fn stale(environment: &Environment, current: i64, planned: &PlannedChange) -> ServiceResult<()> {
    let made_against = based_on(planned);
    if current == made_against {
        return Ok(());
    }
    Err(ServiceError::Conflict(format!(
        "the value in {} changed after this request was made (it was made against version {made_against}, version \
         {current} is current); edit the request from the current version",
        environment.name
    )))
}

fn check_note(note: &str) -> ServiceResult<String> {
    flags::check_text("note", note, 2000, false)
}

/// Files a request for a change of `flag` in a protected environment, for review or (`draft`)
/// to be submitted later; returns its id.
pub async fn file(
    w: &mut Write<'_>,
    flag: &str,
    planned: PlannedChange,
    note: &str,
    draft: bool,
) -> ServiceResult<i64> {
    let note = check_note(note)?;
    if let PlannedChange::SetRemoteConfig { variants, .. } = &planned {
        flags::check_variants(variants)?;
    }
    let (environment, flag_id, current) = target(w, flag, &planned).await?;
    if environment.required_approvals == 0 {
        return Err(ServiceError::invalid(
            "change",
            format!("{} is not protected: save the change directly", environment.name),
        ));
    }
    stale(&environment, current, &planned)?;
    let (member, label, now) = (w.actor.member_id(), w.actor.label.clone(), w.now);
    let status = if draft {
        RequestStatus::Draft
    } else {
        RequestStatus::Review
    };
    let ids = (flag_id, environment.id);
    let id = insert_request(w.conn(), ids, (&planned, status), &note, (member, &label), now).await?;
    let record = Record::flag("flag.change_requested", flag, Some(environment.id))
        .after(json!({ "request": id, "change": planned, "note": note, "draft": draft }));
    w.record(record).await?;
    Ok(id)
}

/// The open request `id`, read for a change.
async fn open(w: &mut Write<'_>, id: i64) -> ServiceResult<ChangeRequest> {
    let request = request_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("change request {id}")))?;
    if !request.status.is_open() {
        return Err(ServiceError::Refused(format!(
            "this request is {} already",
            request.status.as_str()
        )));
    }
    Ok(request)
}

fn is_author(w: &Write<'_>, request: &ChangeRequest) -> bool {
    w.actor.member_id().is_some() && w.actor.member_id() == request.created_by
}

/// Replaces an open request's change and note (its author only); its approvals are withdrawn.
pub async fn edit(w: &mut Write<'_>, id: i64, planned: PlannedChange, note: &str) -> ServiceResult<()> {
    let note = check_note(note)?;
    let request = open(w, id).await?;
    if !is_author(w, &request) {
        return Err(ServiceError::Refused("only its author edits a request".into()));
    }
    if request.status == RequestStatus::Scheduled {
        return Err(ServiceError::Refused(
            "this request is scheduled; cancel it and file a new one to change it".into(),
        ));
    }
    if planned.environment() != request.planned.environment() {
        return Err(ServiceError::invalid(
            "change",
            "a request stays in its environment",
        ));
    }
    let (environment, _, current) = target(w, &request.flag, &planned).await?;
    stale(&environment, current, &planned)?;
    let now = w.now;
    let status = match request.status {
        RequestStatus::Draft => RequestStatus::Draft,
        _ => RequestStatus::Review,
    };
    edit_request(w.conn(), id, (&planned, status), &note, now).await?;
    let withdrawn: Vec<&str> = request
        .approvals
        .iter()
        .map(|(_, label)| label.as_str())
        .collect();
    let record = Record::flag("flag.change_request_edited", &request.flag, Some(environment.id))
        .before(json!({ "request": id, "change": request.planned, "note": request.note }))
        .after(json!({ "request": id, "change": planned, "note": note, "approvalsWithdrawn": withdrawn }));
    w.record(record).await?;
    Ok(())
}

/// Puts a draft up for review (its author).
pub async fn submit(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let request = open(w, id).await?;
    if !is_author(w, &request) {
        return Err(ServiceError::Refused("only its author submits a request".into()));
    }
    if request.status != RequestStatus::Draft {
        return Err(ServiceError::Refused("this request is in review already".into()));
    }
    let now = w.now;
    set_status(w.conn(), id, RequestStatus::Review, "", now).await?;
    let record = Record::flag(
        "flag.change_request_submitted",
        &request.flag,
        Some(request.environment_id),
    )
    .after(json!({ "request": id }));
    w.record(record).await?;
    Ok(())
}

/// Approves a request (not one's own); with enough approvals it becomes approved.
pub async fn approve(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let request = open(w, id).await?;
    if !request.status.in_review() {
        return Err(ServiceError::Refused(format!(
            "this request is {}; only one in review can be approved",
            request.status.as_str()
        )));
    }
    let Some(member) = w.actor.member_id() else {
        return Err(ServiceError::Refused("only members approve requests".into()));
    };
    if is_author(w, &request) {
        return Err(ServiceError::Refused(
            "you cannot approve your own request; another member must".into(),
        ));
    }
    let (environment, ..) = target(w, &request.flag, &request.planned).await?;
    let (label, now) = (w.actor.label.clone(), w.now);
    let approvals = add_approval(w.conn(), id, (member, &label), now).await?;
    let enough = approvals as i64 >= environment.required_approvals.max(1);
    if enough && request.status == RequestStatus::Review {
        set_status(w.conn(), id, RequestStatus::Approved, "", now).await?;
    }
    let record = Record::flag(
        "flag.change_request_approved",
        &request.flag,
        Some(environment.id),
    )
    .after(json!({
        "request": id,
        "approvals": approvals,
        "required": environment.required_approvals,
    }));
    w.record(record).await?;
    Ok(())
}

/// Rejects a request (a reviewer) or cancels it (its author, or an admin).
pub async fn close(w: &mut Write<'_>, id: i64, reject: bool, comment: &str) -> ServiceResult<()> {
    let comment = check_note(comment)?;
    let request = open(w, id).await?;
    let admin = w.actor.is_admin();
    let (status, action) = if reject {
        if is_author(w, &request) {
            return Err(ServiceError::Refused(
                "cancel your own request instead of rejecting it".into(),
            ));
        }
        if !request.status.in_review() {
            return Err(ServiceError::Refused(format!(
                "a {} request cannot be rejected",
                request.status.as_str()
            )));
        }
        (RequestStatus::Rejected, "flag.change_request_rejected")
    } else {
        if !is_author(w, &request) && !admin {
            return Err(ServiceError::Refused(
                "only its author or an admin cancels a request".into(),
            ));
        }
        (RequestStatus::Cancelled, "flag.change_request_cancelled")
    };
    let (now, label) = (w.now, w.actor.label.clone());
    set_status(w.conn(), id, status, &comment, now).await?;
    cancel_for_request(w.conn(), id, &label, now).await?;
    let record = Record::flag(action, &request.flag, Some(request.environment_id))
        .after(json!({ "request": id, "comment": comment }));
    w.record(record).await?;
    Ok(())
}

/// Applies an approved request, now or (`at`) as a scheduled change: exactly its change,
/// re-checked against the version it was made against and validated like any change.
pub async fn apply(w: &mut Write<'_>, id: i64, at: Option<i64>) -> ServiceResult<()> {
    let request = open(w, id).await?;
    let (environment, _, current) = target(w, &request.flag, &request.planned).await?;
    if (request.approvals.len() as i64) < environment.required_approvals
        || request.status != RequestStatus::Approved
    {
        return Err(ServiceError::Refused(format!(
            "this request has {} of the {} approvals {} needs",
            request.approvals.len(),
            environment.required_approvals,
            environment.name
        )));
    }
    stale(&environment, current, &request.planned)?;
    w.reviewed = true;
    let key = request.flag.clone();
    if let Some(at) = at {
        let scheduled = schedule::schedule_for(w, &key, at, request.planned.clone(), Some(id)).await?;
        w.reviewed = false;
        let now = w.now;
        let outcome = format!("scheduled (scheduled change #{scheduled})");
        set_status(w.conn(), id, RequestStatus::Scheduled, &outcome, now).await?;
        let record = Record::flag("flag.change_request_scheduled", &key, Some(environment.id))
            .after(json!({ "request": id, "scheduledChange": scheduled, "dueAt": at }));
        w.record(record).await?;
        return Ok(());
    }
    let version = match request.planned.clone() {
        PlannedChange::SetAccess { rules, based_on, .. } => {
            let change = AccessChange::Set(rules);
            flags::set_access(w, &key, environment.key.as_str(), change, Some(based_on)).await?
        }
        PlannedChange::SetRemoteConfig {
            variants, based_on, ..
        } => flags::set_remote_config(w, &key, environment.key.as_str(), variants, Some(based_on)).await?,
        _ => return Err(ServiceError::Internal),
    };
    w.reviewed = false;
    let now = w.now;
    let outcome = format!("applied as version {version}");
    set_status(w.conn(), id, RequestStatus::Applied, &outcome, now).await?;
    let approvers: Vec<&str> = request.approvals.iter().map(|(_, l)| l.as_str()).collect();
    let record = Record::flag("flag.change_request_applied", &key, Some(environment.id))
        .after(json!({ "request": id, "version": version, "requestedBy": request.created_label, "approvedBy": approvers }));
    w.record(record).await?;
    Ok(())
}

/// Records an admin's change of a protected environment without review, and why.
pub async fn bypass(w: &mut Write<'_>, flag: &str, environment: &str, reason: &str) -> ServiceResult<()> {
    let reason = flags::check_text("reason", reason, 2000, true)?;
    let environment = w.environment(environment)?;
    let record = Record::flag("flag.protection_bypassed", flag, Some(environment.id))
        .after(json!({ "reason": reason }));
    w.record(record).await?;
    w.reviewed = true;
    Ok(())
}
