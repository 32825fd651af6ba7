//! Scheduled changes on the flag page: the list (pending ones first, then the latest that were
//! applied, cancelled or not applied, with the reason), cancelling, and scheduling a stage move
//! or archiving. The access and remote-config forms schedule through their own "Apply at" field
//! ([`apply_at`]). Times are entered and shown in UTC, the same with and without JavaScript.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{form_error, AppError, ErrorText, Notice};
#[cfg(feature = "ssr")]
use super::format::datetime;

/// A scheduled change as the flag page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledItem {
    pub id: i64,
    /// What it does, in words ("Access in Production → Everyone").
    pub what: String,
    pub due: String,
    pub by: String,
    /// `pending`, `applied`, `conflict`, `failed` or `cancelled`.
    pub status: String,
    /// Why it was not applied, or what applying it did.
    pub outcome: String,
}

/// The time an "Apply at" field names, in epoch milliseconds: `None` when it is empty (apply
/// now). Accepts what a `datetime-local` input sends (`2026-12-24T09:30`, seconds optional) and
/// the same with a space, as typed by hand; the time is UTC.
#[cfg(feature = "ssr")]
pub fn apply_at(text: Option<&str>) -> Result<Option<i64>, AppError> {
    let text = text.unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    let normalized = text.replacen(' ', "T", 1);
    let formats = [
        "[year]-[month]-[day]T[hour]:[minute]",
        "[year]-[month]-[day]T[hour]:[minute]:[second]",
    ];
    for format in formats {
        let Ok(format) = time::format_description::parse_borrowed::<2>(format) else {
            continue;
        };
        if let Ok(at) = time::PrimitiveDateTime::parse(&normalized, &format) {
            return Ok(Some(at.assume_utc().unix_timestamp() * 1000));
        }
    }
    Err(AppError {
        field: Some("at".into()),
        message: format!("{text:?} is not a date and time; use the form 2026-12-24 09:30 (UTC)"),
        ..Default::default()
    }
    .rejected_input())
}

/// Schedules `planned` for the flag at `at` as the caller; says when it will apply.
#[cfg(feature = "ssr")]
pub async fn schedule(
    flag: String,
    at: i64,
    planned: crate::model::PlannedChange,
) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::ScheduleChange { flag, at, planned };
    service.apply(&actor, change).await?;
    Ok(format!(
        "Scheduled for {}. It waits under Scheduled changes until then.",
        datetime(at)
    ))
}

/// Schedules a stage move (`action` = `stage:<id>`), archiving (`archive`) or restoring
/// (`restore`), made against the stage the page showed (`from_stage`).
#[server(endpoint = "edit/schedule_flag_change")]
pub async fn schedule_flag_change(
    flag: String,
    action: String,
    from_stage: i64,
    at: Option<String>,
) -> Result<String, AppError> {
    let at = apply_at(at.as_deref())?.ok_or_else(|| {
        AppError {
            field: Some("at".into()),
            message: "choose when".into(),
            ..Default::default()
        }
        .rejected_input()
    })?;
    let planned = planned_action(&action, from_stage)?;
    schedule(flag, at, planned).await
}

#[cfg(feature = "ssr")]
fn planned_action(action: &str, from_stage_id: i64) -> Result<crate::model::PlannedChange, AppError> {
    use crate::model::PlannedChange;
    match action {
        "archive" => Ok(PlannedChange::SetArchived { archived: true }),
        "restore" => Ok(PlannedChange::SetArchived { archived: false }),
        other => match other.strip_prefix("stage:").and_then(|id| id.parse().ok()) {
            Some(stage_id) => Ok(PlannedChange::MoveStage {
                stage_id,
                from_stage_id,
            }),
            None => Err(AppError {
                field: Some("action".into()),
                message: "choose what to schedule".into(),
                ..Default::default()
            }
            .rejected_input()),
        },
    }
}

#[server(endpoint = "edit/cancel_scheduled")]
pub async fn cancel_scheduled(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::CancelScheduled { id })
        .await?;
    Ok(())
}

/// The flag page's "Scheduled changes" card.
#[component]
pub fn ScheduledChanges(
    flag: String,
    items: Vec<ScheduledItem>,
    /// The stages the flag can move to: (id, name).
    moves: Vec<(i64, String)>,
    stage_id: i64,
    archived: bool,
    schedule: ServerAction<ScheduleFlagChange>,
    cancel: ServerAction<CancelScheduled>,
) -> impl IntoView {
    let schedule_value = schedule.value();
    let cancel_value = cancel.value();
    let (pending, settled): (Vec<ScheduledItem>, Vec<ScheduledItem>) =
        items.into_iter().partition(|item| item.status == "pending");
    let rows = move |items: Vec<ScheduledItem>| {
        items
            .into_iter()
            .map(|item| {
                let is_pending = item.status == "pending";
                let status = match item.status.as_str() {
                    "pending" => "waiting".to_string(),
                    "conflict" => "not applied: the flag changed meanwhile".to_string(),
                    "failed" => "not applied".to_string(),
                    other => other.to_string(),
                };
                let label = format!("Cancel the change due {}", item.due);
                view! {
                    <tr class=format!("scheduled-{}", item.status)>
                        <td>{item.due.clone()}</td>
                        <td>{item.what.clone()}</td>
                        <td>{item.by.clone()}</td>
                        <td>
                            {status}
                            {(!is_pending && !item.outcome.is_empty()).then(|| view! { <br/><span class="muted small">{item.outcome.clone()}</span> })}
                        </td>
                        <td>
                            {is_pending.then(|| view! {
                                <ActionForm action=cancel attr:class="inline">
                                    <input type="hidden" name="id" value=item.id/>
                                    <button type="submit" class="secondary small" aria-label=label>"Cancel"</button>
                                </ActionForm>
                            })}
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };
    let has_pending = !pending.is_empty();
    let has_settled = !settled.is_empty();
    view! {
        <section class="card" id="scheduled">
            <h2>"Scheduled changes"</h2>
            {(!has_pending).then(|| view! {
                <p class="muted">"Nothing is scheduled. Pick a time under “Apply at” when you save access or remote config, or schedule a stage move or archiving below."</p>
            })}
            {(has_pending || has_settled).then(|| view! {
                <table class="scheduled">
                    <thead><tr><th>"When (UTC)"</th><th>"Change"</th><th>"By"</th><th>"Status"</th><th></th></tr></thead>
                    <tbody>{rows(pending)}{rows(settled)}</tbody>
                </table>
            })}
            <ErrorText id="cancel-error" message=Signal::derive(form_error(cancel_value, &[]))/>
            <Show when=move || matches!(cancel_value.get(), Some(Ok(())))>
                <p class="notice" role="status">"Cancelled: the change will not be applied."</p>
            </Show>
            <ActionForm action=schedule attr:class="schedule-form">
                <input type="hidden" name="flag" value=flag/>
                <input type="hidden" name="from_stage" value=stage_id/>
                <div>
                    <label for="schedule-action">"Change"</label>
                    <select id="schedule-action" name="action">
                        {moves.into_iter().map(|(id, name)| view! { <option value=format!("stage:{id}")>{format!("Move to {name}")}</option> }).collect_view()}
                        <option value=if archived { "restore" } else { "archive" }>{if archived { "Restore the flag" } else { "Archive the flag" }}</option>
                    </select>
                </div>
                <div>
                    <label for="schedule-at">"At (UTC)"</label>
                    <input type="datetime-local" step="1" id="schedule-at" name="at" required/>
                </div>
                <button type="submit" class="secondary" disabled=move || schedule.pending().get()>"Schedule"</button>
            </ActionForm>
            <ErrorText id="schedule-error" message=Signal::derive(form_error(schedule_value, &[]))/>
            <Notice value=schedule_value/>
        </section>
    }
}
