//! Change requests in the admin app: the flag page's "Change requests" card (what each request
//! changes, with the same diff as the history; who asked and why; who approved; approve, reject,
//! apply, cancel), the overview's "Waiting for your approval", and the admins' protection
//! setting per environment.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{form_error, AppError, ErrorText};

/// A request as the flag page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestItem {
    pub id: i64,
    /// `review`, `approved`, `applied`, `rejected` or `cancelled`.
    pub status: String,
    /// "Access in Production → Everyone".
    pub what: String,
    /// What it changes against the value there now, one line each.
    pub changes: Vec<String>,
    /// Who its access would let in ("12 of 40 known companies have access with these rules.").
    pub who: String,
    pub note: String,
    pub by: String,
    pub when: String,
    /// "1 of 2 approvals: bob@example.com".
    pub approvals: String,
    pub outcome: String,
    /// The caller filed it (may cancel, may not approve).
    pub mine: bool,
    /// The caller approved it already.
    pub approved_by_me: bool,
    /// The environment (key) it changes, and whether it changes access (else remote config).
    pub environment: String,
    pub access: bool,
}

#[server(endpoint = "edit/approve_request")]
pub async fn approve_request(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::ApproveChangeRequest { id })
        .await?;
    Ok(())
}

/// Rejects (`reject`) or cancels a request.
#[server(endpoint = "edit/close_request")]
pub async fn close_request(id: i64, reject: bool, comment: Option<String>) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let comment = comment.unwrap_or_default();
    let change = crate::service::Change::CloseChangeRequest { id, reject, comment };
    service.apply(&actor, change).await?;
    Ok(())
}

/// Applies an approved request now, or at the "Apply at" time.
#[server(endpoint = "edit/apply_request")]
pub async fn apply_request(id: i64, apply_at: Option<String>) -> Result<(), AppError> {
    let at = super::schedule::apply_at(apply_at.as_deref())?;
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::ApplyChangeRequest { id, at })
        .await?;
    Ok(())
}

#[server(endpoint = "edit/submit_request")]
pub async fn submit_request(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::SubmitChangeRequest { id })
        .await?;
    Ok(())
}

/// The in-page actions of the requests card.
#[derive(Clone, Copy)]
pub struct RequestActions {
    pub submit: ServerAction<SubmitRequest>,
    pub approve: ServerAction<ApproveRequest>,
    pub close: ServerAction<CloseRequest>,
    pub apply: ServerAction<ApplyRequest>,
}

impl RequestActions {
    pub fn new() -> Self {
        RequestActions {
            submit: ServerAction::new(),
            approve: ServerAction::new(),
            close: ServerAction::new(),
            apply: ServerAction::new(),
        }
    }

    /// How many of the actions have succeeded: the flag page reloads on it.
    pub fn successes(self) -> Signal<usize> {
        use super::error::success_count;
        let counts = [
            success_count(self.submit.value()),
            success_count(self.approve.value()),
            success_count(self.close.value()),
            success_count(self.apply.value()),
        ];
        Signal::derive(move || counts.iter().map(|c| c.get()).sum())
    }
}

impl Default for RequestActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The flag page's "Change requests" card.
#[component]
pub fn RequestsCard(items: Vec<RequestItem>, actions: RequestActions) -> impl IntoView {
    let errors = [
        Signal::derive(form_error(actions.submit.value(), &[])),
        Signal::derive(form_error(actions.approve.value(), &[])),
        Signal::derive(form_error(actions.close.value(), &[])),
        Signal::derive(form_error(actions.apply.value(), &[])),
    ];
    let error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    let empty = items.is_empty();
    view! {
        <section class="card" id="requests">
            <h2>"Change requests"</h2>
            {empty.then(|| view! { <p class="muted">"No change requests. In a protected environment, saving access or remote config files one for other members to approve."</p> })}
            <ul class="plain requests">
                {items.into_iter().map(|r| {
                    let open = matches!(r.status.as_str(), "draft" | "review" | "approved" | "scheduled");
                    let in_review = matches!(r.status.as_str(), "review" | "approved");
                    let id = r.id;
                    view! {
                        <li class=format!("request request-{}", r.status)>
                            <p>
                                <strong>{format!("#{} {}", r.id, r.what)}</strong>
                                " " <span class="badge">{r.status.clone()}</span>
                            </p>
                            <p class="muted small">{format!("Requested by {} at {}. {}", r.by, r.when, r.approvals)}</p>
                            {(!r.note.is_empty()).then(|| view! { <p>{format!("“{}”", r.note)}</p> })}
                            <ul class="changes">{r.changes.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view()}</ul>
                            {(!r.who.is_empty()).then(|| view! { <p class="muted small">{r.who.clone()}</p> })}
                            {(!r.outcome.is_empty()).then(|| view! { <p class="muted small">{r.outcome.clone()}</p> })}
                            {open.then(|| view! {
                                <div class="actions">
                                    {(r.mine && r.status == "draft").then(|| view! {
                                        <ActionForm action=actions.submit attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" aria-label=format!("Submit request {id} for review")>"Submit for review"</button>
                                        </ActionForm>
                                    })}
                                    {(in_review && !r.mine && !r.approved_by_me).then(|| view! {
                                        <ActionForm action=actions.approve attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" aria-label=format!("Approve request {id}")>"Approve"</button>
                                        </ActionForm>
                                    })}
                                    {(r.status == "approved").then(|| view! {
                                        <ActionForm action=actions.apply attr:class="inline">
                                            <input type="hidden" name="id" value=id/>
                                            <input type="datetime-local" step="1" name="apply_at" aria-label=format!("Apply request {id} at (UTC, optional)")/>
                                            <button type="submit" aria-label=format!("Apply request {id}")>"Apply"</button>
                                        </ActionForm>
                                    })}
                                    <ActionForm action=actions.close attr:class="inline">
                                        <input type="hidden" name="id" value=id/>
                                        <input type="hidden" name="reject" value=(!r.mine).to_string()/>
                                        {(!r.mine && in_review).then(|| view! {
                                            <input name="comment" placeholder="Why (optional)" aria-label=format!("Why reject request {id}")/>
                                        })}
                                        <button type="submit" class="secondary" aria-label=format!("{} request {id}", if r.mine { "Cancel" } else { "Reject" })>
                                            {if r.mine { "Cancel request" } else { "Reject" }}
                                        </button>
                                    </ActionForm>
                                </div>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <ErrorText id="request-error" message=error/>
        </section>
    }
}

/// The fields a form adds in a protected environment: the note for the reviewers and, for
/// admins, the reason to save without review.
#[component]
pub fn ReviewFields(
    prefix: &'static str,
    environment_name: String,
    approvals: i64,
    can_bypass: bool,
    /// The caller's open requests of this kind here, which the form may update instead.
    mine: Vec<i64>,
) -> impl IntoView {
    let note_id = format!("{prefix}-review-note");
    let bypass_id = format!("{prefix}-bypass-reason");
    let update_id = format!("{prefix}-update-request");
    view! {
        <div class="review-fields">
            <p class="info">
                {format!(
                    "{environment_name} is protected: saving files a change request that {approvals} other member{} must approve before it applies.",
                    if approvals == 1 { "" } else { "s" }
                )}
            </p>
            <label for=note_id.clone()>"Why (for the reviewers)"</label>
            <textarea id=note_id name="review_note" rows="2"></textarea>
            <label class="inline"><input type="checkbox" name="review_draft"/>"Save as a draft (submit it for review later)"</label>
            {(!mine.is_empty()).then(|| view! {
                <label for=update_id.clone()>"File as"</label>
                <select id=update_id name="update_request">
                    <option value="">"a new change request"</option>
                    {mine.into_iter().map(|id| view! {
                        <option value=id>{format!("an update of my request #{id} (its approvals are withdrawn)")}</option>
                    }).collect_view()}
                </select>
            })}
            {can_bypass.then(|| view! {
                <label for=bypass_id.clone()>"Or save now without review (admins): the reason, recorded in the audit log"</label>
                <input id=bypass_id name="bypass_reason"/>
            })}
        </div>
    }
}

#[server(endpoint = "admin/protection")]
pub async fn protection() -> Result<Vec<(String, String, i64)>, AppError> {
    let (service, actor) = super::server::caller()?;
    let environments = service.environments(&actor).await?;
    Ok(environments
        .into_iter()
        .map(|e| (e.key.to_string(), e.name, e.required_approvals))
        .collect())
}

#[server(endpoint = "admin/set_protection")]
pub async fn set_protection(environment: String, approvals: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SetProtection {
        environment,
        approvals,
    };
    service.apply(&actor, change).await?;
    Ok(())
}

/// The admins' four-eyes setting: how many approvals each environment requires.
#[component]
pub fn ProtectionSettings() -> impl IntoView {
    let save = ServerAction::<SetProtection>::new();
    let saves = super::error::success_count(save.value());
    let data = Resource::new(move || saves.get(), |_| protection());
    let value = save.value();
    view! {
        <section class="card" id="protection">
            <h2>"Protected environments (four eyes)"</h2>
            <p class="muted">"In a protected environment, a change of a flag's access or remote config is filed as a change request that other members approve (nobody approves their own). 0 means not protected."</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || data.get().map(|result| match result {
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                    Ok(environments) => environments.into_iter().map(|(key, name, approvals)| view! {
                        <ActionForm action=save attr:class="inline">
                            <input type="hidden" name="environment" value=key.clone()/>
                            <label for=format!("approvals-{key}")>{format!("{name}: approvals required")}</label>
                            <input id=format!("approvals-{key}") name="approvals" type="number" min="0" max="5" value=approvals prop:value=approvals.to_string()/>
                            <button type="submit" class="secondary small" aria-label=format!("Save approvals for {name}")>"Save"</button>
                        </ActionForm>
                    }).collect_view().into_any(),
                })}
            </Suspense>
            <ErrorText id="protection-error" message=Signal::derive(form_error(value, &[]))/>
            <Show when=move || matches!(value.get(), Some(Ok(())))>
                <p class="notice" role="status">"Saved: changes there now need the approvals shown."</p>
            </Show>
        </section>
    }
}
