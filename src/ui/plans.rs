//! Release plans in the admin app: the flag page's "Release plan" card (start one from a
//! template, advance, pause, resume, cancel; its milestones with where it stands) and the admins'
//! template settings (`/settings/plans`). A milestone in a template is a plain form row: a name,
//! segments, companies, a percentage of all companies, or everyone; a stage to move to; and how
//! long to wait before the next milestone follows by itself.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{form_error, AppError, ErrorText};

/// One milestone as a page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MilestoneView {
    pub name: String,
    /// Who has access once it is reached ("1 segment · anyone at 10 %").
    pub access: String,
    /// "moves to Beta", or empty.
    pub stage: String,
    /// "next after 2 days", "next by hand", or empty for the last.
    pub wait: String,
}

/// A flag's plan in the page's environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: i64,
    pub template: String,
    /// `active`, `paused`, `completed` or `cancelled`.
    pub status: String,
    pub current: usize,
    pub milestones: Vec<MilestoneView>,
    /// When the next milestone follows by itself, if it does.
    pub next_due: Option<String>,
    pub note: String,
}

/// What the flag page's plan card shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanCardView {
    /// The running (active or paused) plan here, if any.
    pub running: Option<PlanView>,
    /// The last finished plan here, if any.
    pub finished: Option<PlanView>,
    /// Templates to start from: (id, name, its milestones in words).
    pub templates: Vec<(i64, String, String)>,
}

/// "2 days", "3 hours", "45 minutes": how long a wait is, in the largest whole unit.
#[cfg(feature = "ssr")]
pub fn wait_text(ms: i64) -> String {
    let minutes = ms / 60_000;
    let (n, unit) = if minutes % (24 * 60) == 0 {
        (minutes / (24 * 60), "day")
    } else if minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(feature = "ssr")]
pub fn milestone_views(milestones: &[crate::model::Milestone]) -> Vec<MilestoneView> {
    milestones
        .iter()
        .enumerate()
        .map(|(i, m)| MilestoneView {
            name: m.name.clone(),
            access: super::format::access_summary(&m.rules),
            stage: m
                .stage
                .as_ref()
                .map(|s| format!("moves to {s}"))
                .unwrap_or_default(),
            wait: match (i + 1 < milestones.len(), m.advance_after_ms) {
                (false, _) => String::new(),
                (true, Some(ms)) => format!("next after {}", wait_text(ms)),
                (true, None) => "next by hand".into(),
            },
        })
        .collect()
}

#[cfg(feature = "ssr")]
impl PlanView {
    pub fn new(plan: &crate::model::ReleasePlan) -> Self {
        PlanView {
            id: plan.id,
            template: plan.template.clone(),
            status: plan.status.as_str().to_string(),
            current: plan.current,
            milestones: milestone_views(&plan.milestones),
            next_due: plan.next_due_at.map(super::format::datetime),
            note: plan.note.clone(),
        }
    }
}

#[cfg(feature = "ssr")]
impl PlanCardView {
    /// The card for the environment `environment_id` of a flag page.
    pub fn new(page: &crate::service::FlagPage) -> Self {
        use crate::model::PlanStatus;
        let here = || {
            page.plans
                .iter()
                .filter(|p| p.environment_id == page.environment.id)
        };
        let running = here().find(|p| matches!(p.status, PlanStatus::Active | PlanStatus::Paused));
        let finished = here().find(|p| matches!(p.status, PlanStatus::Completed | PlanStatus::Cancelled));
        PlanCardView {
            running: running.map(PlanView::new),
            finished: finished.map(PlanView::new),
            templates: page
                .templates
                .iter()
                .map(|t| {
                    let steps: Vec<String> = milestone_views(&t.milestones)
                        .into_iter()
                        .map(|m| format!("{} ({})", m.name, m.access))
                        .collect();
                    (t.id, t.name.clone(), steps.join(" → "))
                })
                .collect(),
        }
    }
}

#[server(endpoint = "edit/start_plan")]
pub async fn start_plan(flag: String, environment: String, template: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::StartPlan {
        flag,
        environment,
        template_id: template,
    };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "edit/advance_plan")]
pub async fn advance_plan(id: i64, from: usize) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::AdvancePlan {
        id,
        from,
        automatic: false,
    };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "edit/pause_plan")]
pub async fn pause_plan(id: i64, paused: bool) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let note = if paused { "paused by hand" } else { "" }.to_string();
    let change = crate::service::Change::SetPlanPaused { id, paused, note };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "edit/cancel_plan")]
pub async fn cancel_plan(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::CancelPlan { id })
        .await?;
    Ok(())
}

/// The in-page actions of the plan card.
#[derive(Clone, Copy)]
pub struct PlanActions {
    pub start: ServerAction<StartPlan>,
    pub advance: ServerAction<AdvancePlan>,
    pub pause: ServerAction<PausePlan>,
    pub cancel: ServerAction<CancelPlan>,
}

impl PlanActions {
    pub fn new() -> Self {
        PlanActions {
            start: ServerAction::new(),
            advance: ServerAction::new(),
            pause: ServerAction::new(),
            cancel: ServerAction::new(),
        }
    }

    /// How many of the actions have succeeded: the flag page reloads on it.
    pub fn successes(self) -> Signal<usize> {
        use super::error::success_count;
        let counts = [
            success_count(self.start.value()),
            success_count(self.advance.value()),
            success_count(self.pause.value()),
            success_count(self.cancel.value()),
        ];
        Signal::derive(move || counts.iter().map(|c| c.get()).sum())
    }

    /// The failure of the latest action that failed, in words.
    fn error(self) -> Signal<Option<String>> {
        let errors = [
            Signal::derive(form_error(self.start.value(), &[])),
            Signal::derive(form_error(self.advance.value(), &[])),
            Signal::derive(form_error(self.pause.value(), &[])),
            Signal::derive(form_error(self.cancel.value(), &[])),
        ];
        Signal::derive(move || errors.iter().find_map(|e| e.get()))
    }
}

impl Default for PlanActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The milestones of a plan, with where it stands.
#[component]
fn Milestones(plan: PlanView) -> impl IntoView {
    let finished = plan.status == "completed";
    view! {
        <ol class="milestones">
            {plan.milestones.into_iter().enumerate().map(|(i, m)| {
                let (class, mark) = if i < plan.current || (finished && i == plan.current) {
                    ("done", "✓ ")
                } else if i == plan.current {
                    ("current", "▶ ")
                } else {
                    ("upcoming", "")
                };
                view! {
                    <li class=class>
                        <strong>{format!("{mark}{}", m.name)}</strong>
                        <span class="muted">{format!(" · {}", m.access)}</span>
                        {(!m.stage.is_empty()).then(|| view! { <span class="muted">{format!(" · {}", m.stage)}</span> })}
                        {(!m.wait.is_empty()).then(|| view! { <span class="muted small">{format!(" · {}", m.wait)}</span> })}
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

/// The flag page's "Release plan" card for the page's environment.
#[component]
pub fn PlanCard(
    card: PlanCardView,
    flag: String,
    environment: String,
    environment_name: String,
    /// The access here now, in words: what starting a plan replaces.
    current_access: String,
    actions: PlanActions,
) -> impl IntoView {
    let body = match card.running {
        Some(plan) => {
            let next = plan.milestones.get(plan.current + 1).map(|m| m.name.clone());
            let paused = plan.status == "paused";
            let status = if paused {
                "Paused".to_string()
            } else {
                match &plan.next_due {
                    Some(due) => format!("Active: the next milestone follows by itself at {due}"),
                    None => "Active: the next milestone follows by hand".to_string(),
                }
            };
            let (id, current) = (plan.id, plan.current);
            let note = plan.note.clone();
            view! {
                <p>
                    <strong>{format!("{} · step {} of {}", plan.template, plan.current + 1, plan.milestones.len())}</strong>
                    " " <span class="badge">{status}</span>
                </p>
                {(!note.is_empty()).then(|| view! { <p class="error-text">{note}</p> })}
                <Milestones plan=plan/>
                <div class="actions">
                    {next.map(|next| view! {
                        <ActionForm action=actions.advance attr:class="inline">
                            <input type="hidden" name="id" value=id/>
                            <input type="hidden" name="from" value=current/>
                            <button type="submit" disabled=paused>{format!("Advance to {next}")}</button>
                        </ActionForm>
                    })}
                    <ActionForm action=actions.pause attr:class="inline">
                        <input type="hidden" name="id" value=id/>
                        <input type="hidden" name="paused" value=(!paused).to_string()/>
                        <button type="submit" class="secondary">{if paused { "Resume plan" } else { "Pause plan" }}</button>
                    </ActionForm>
                    <ActionForm action=actions.cancel attr:class="inline">
                        <input type="hidden" name="id" value=id/>
                        <button type="submit" class="secondary">"Cancel plan"</button>
                    </ActionForm>
                </div>
                <p class="muted small">"Cancelling leaves the access as it is now."</p>
            }
            .into_any()
        }
        None if card.templates.is_empty() => view! {
            <p class="muted">"No plan templates yet. An admin defines them under Settings → Release plans (for example: internal companies → 10 % → 50 % → everyone)."</p>
        }
        .into_any(),
        None => view! {
            <p class="muted">
                {format!("A plan moves the access in {environment_name} through its milestones, by hand or after a wait. Starting replaces the access here (now: {current_access}) with the first milestone's.")}
            </p>
            <ActionForm action=actions.start attr:class="schedule-form">
                <input type="hidden" name="flag" value=flag/>
                <input type="hidden" name="environment" value=environment/>
                <div>
                    <label for="plan-template">"Plan template"</label>
                    <select id="plan-template" name="template">
                        {card.templates.into_iter().map(|(id, name, steps)| view! {
                            <option value=id title=steps.clone()>{format!("{name}: {steps}")}</option>
                        }).collect_view()}
                    </select>
                </div>
                <button type="submit">"Start plan"</button>
            </ActionForm>
        }
        .into_any(),
    };
    let finished = card.finished.map(|plan| {
        let last = plan
            .milestones
            .get(plan.current)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        view! {
            <p class="muted small">{format!("Last plan: {} ({}, at {last}).", plan.template, plan.status)}</p>
        }
    });
    let error = actions.error();
    view! {
        <section class="card" id="plan">
            <h2>{format!("Release plan in {environment_name}")}</h2>
            {body}
            {finished}
            <ErrorText id="plan-error" message=error/>
        </section>
    }
}

/// One milestone row of the template form; rows without a name are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MilestoneForm {
    pub name: String,
    /// Segment keys, one per line or comma-separated.
    pub segments: String,
    /// Company ids, one per line or comma-separated.
    pub companies: String,
    /// A percentage of all companies (sticky by company id), empty for none.
    pub percentage: String,
    /// Present when "Everyone" is ticked.
    pub everyone: Option<String>,
    /// A stage name, empty for none.
    pub stage: String,
    /// Hours before the next milestone follows by itself, empty for "by hand".
    pub wait_hours: String,
}

#[cfg(feature = "ssr")]
impl MilestoneForm {
    fn to_milestone(&self, n: usize) -> Result<crate::model::Milestone, AppError> {
        use crate::model::{AccessRule, AccessRules, Percentage, SegmentKey, TargetedAccess};
        let field = |what: &str| Some(format!("milestones-{n}-{what}"));
        let wrong = |what: &str, message: String| {
            AppError {
                field: field(what),
                message,
                ..Default::default()
            }
            .rejected_input()
        };
        let rules = if self.everyone.is_some() {
            AccessRules::Everyone
        } else {
            let segments = super::access_editor::split_list(&self.segments)
                .into_iter()
                .map(|key| {
                    SegmentKey::parse(key.clone()).map_err(|e| wrong("segments", format!("{key}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut rules = Vec::new();
            if !self.percentage.trim().is_empty() {
                let p: f64 = self
                    .percentage
                    .trim()
                    .trim_end_matches('%')
                    .trim()
                    .parse()
                    .map_err(|_| wrong("percentage", format!("{:?} is not a percentage", self.percentage)))?;
                let p = Percentage::new(p).map_err(|e| wrong("percentage", e.to_string()))?;
                rules.push(AccessRule {
                    conditions: Vec::new(),
                    rollout_percentage: p,
                    rollout_attribute: Default::default(),
                });
            }
            let access = TargetedAccess {
                companies: super::access_editor::split_list(&self.companies),
                segments,
                rules,
                ..Default::default()
            };
            if access == TargetedAccess::default() {
                AccessRules::NoOne
            } else {
                AccessRules::Some(access)
            }
        };
        let advance_after_ms = match self.wait_hours.trim() {
            "" => None,
            text => {
                let hours: f64 = text
                    .parse()
                    .ok()
                    .filter(|h: &f64| h.is_finite() && *h > 0.0)
                    .ok_or_else(|| wrong("wait", format!("{text:?} is not a number of hours")))?;
                Some((hours * 3_600_000.0).round() as i64)
            }
        };
        let stage = Some(self.stage.trim().to_string()).filter(|s| !s.is_empty());
        Ok(crate::model::Milestone {
            name: self.name.trim().to_string(),
            rules,
            stage,
            advance_after_ms,
        })
    }

    /// The named rows as milestones, or the first field that is wrong.
    pub fn to_milestones(rows: &[MilestoneForm]) -> Result<Vec<crate::model::Milestone>, AppError> {
        rows.iter()
            .enumerate()
            .filter(|(_, row)| !row.name.trim().is_empty())
            .map(|(i, row)| row.to_milestone(i))
            .collect()
    }
}

/// The admins' template settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplatesData {
    /// Each template: (id, name, its milestones).
    pub templates: Vec<(i64, String, Vec<MilestoneView>)>,
    pub stages: Vec<String>,
}

#[server(endpoint = "admin/plan_templates")]
pub async fn plan_templates() -> Result<TemplatesData, AppError> {
    let (service, actor) = super::server::caller()?;
    let (templates, stages) = service.plan_templates(&actor).await?;
    Ok(TemplatesData {
        templates: templates
            .iter()
            .map(|t| (t.id, t.name.clone(), milestone_views(&t.milestones)))
            .collect(),
        stages: stages.into_iter().map(|s| s.name).collect(),
    })
}

#[server(endpoint = "admin/save_plan_template")]
pub async fn save_plan_template(name: String, milestones: Vec<MilestoneForm>) -> Result<(), AppError> {
    let milestones = MilestoneForm::to_milestones(&milestones)?;
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SavePlanTemplate {
        id: None,
        name,
        milestones,
    };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "admin/delete_plan_template")]
pub async fn delete_plan_template(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::DeletePlanTemplate { id })
        .await?;
    Ok(())
}

/// How many milestone rows the new-template form offers.
const FORM_ROWS: usize = 6;

/// `/settings/plans`: the templates, and a form for a new one.
#[component]
pub fn PlanTemplatesPage() -> impl IntoView {
    let save = ServerAction::<SavePlanTemplate>::new();
    let delete = ServerAction::<DeletePlanTemplate>::new();
    let saves = super::error::success_count(save.value());
    let data = Resource::new(
        move || (saves.get(), delete.version().get()),
        |_| plan_templates(),
    );
    let save_value = save.value();
    view! {
        <h1>"Release plans"</h1>
        <p class="muted">
            "A plan template is a list of milestones a flag's access goes through in one environment, for example "
            "internal companies → 10 % of companies → 50 % → everyone. Editors start a plan on a flag's page; the plan "
            "copies the template, so editing templates never changes running plans. Access only grows along a plan, "
            "so companies that had the flag keep it."
        </p>
        <Suspense fallback=|| view! { <p class="muted">"Loading the templates…"</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(data) => {
                    let stages = data.stages.clone();
                    view! {
                        {if data.templates.is_empty() {
                            view! { <section class="card empty"><p>"No plan templates yet. Define the first one below."</p></section> }.into_any()
                        } else {
                            data.templates.into_iter().map(|(id, name, milestones)| view! {
                                <section class="card">
                                    <h2>{name.clone()}</h2>
                                    <ol class="milestones">
                                        {milestones.into_iter().map(|m| view! {
                                            <li>
                                                <strong>{m.name}</strong>
                                                <span class="muted">{format!(" · {}", m.access)}</span>
                                                {(!m.stage.is_empty()).then(|| view! { <span class="muted">{format!(" · {}", m.stage)}</span> })}
                                                {(!m.wait.is_empty()).then(|| view! { <span class="muted small">{format!(" · {}", m.wait)}</span> })}
                                            </li>
                                        }).collect_view()}
                                    </ol>
                                    <ActionForm action=delete attr:class="inline">
                                        <input type="hidden" name="id" value=id/>
                                        <button type="submit" class="secondary small" aria-label=format!("Delete the template {name}")>"Delete template"</button>
                                    </ActionForm>
                                </section>
                            }).collect_view().into_any()
                        }}
                        <section class="card">
                            <h2>"New template"</h2>
                            <ActionForm action=save>
                                <label for="template-name">"Template name"</label>
                                <input id="template-name" name="name" placeholder="Standard rollout" required/>
                                <p class="muted small">"Fill one row per milestone, in order; rows without a name are left out. A percentage is of all companies, sticky by company id."</p>
                                <table class="milestone-form">
                                    <thead><tr><th>"#"</th><th>"Milestone"</th><th>"Segments"</th><th>"Companies"</th><th>"% of companies"</th><th>"Everyone"</th><th>"Move to stage"</th><th>"Then wait (hours)"</th></tr></thead>
                                    <tbody>
                                        {(0..FORM_ROWS).map(|i| {
                                            let name = |field: &str| format!("milestones[{i}][{field}]");
                                            let label = |what: &str| format!("Milestone {} {what}", i + 1);
                                            view! {
                                                <tr>
                                                    <td>{i + 1}</td>
                                                    <td><input name=name("name") aria-label=label("name")/></td>
                                                    <td><input name=name("segments") aria-label=label("segments")/></td>
                                                    <td><input name=name("companies") aria-label=label("companies")/></td>
                                                    <td><input name=name("percentage") inputmode="decimal" aria-label=label("percentage")/></td>
                                                    <td><input type="checkbox" name=name("everyone") aria-label=label("everyone")/></td>
                                                    <td>
                                                        <select name=name("stage") aria-label=label("stage")>
                                                            <option value="">"—"</option>
                                                            {stages.iter().map(|s| view! { <option value=s.clone()>{s.clone()}</option> }).collect_view()}
                                                        </select>
                                                    </td>
                                                    <td><input name=name("wait_hours") inputmode="decimal" aria-label=label("wait")/></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <ErrorText id="template-error" message=Signal::derive(form_error(save_value, &[]))/>
                                <button type="submit" disabled=move || save.pending().get()>"Save template"</button>
                            </ActionForm>
                            <Show when=move || matches!(save_value.get(), Some(Ok(())))>
                                <p class="notice" role="status">"Template saved. Editors can start it on a flag's page."</p>
                            </Show>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn waits_read_in_their_largest_whole_unit() {
        assert_eq!(wait_text(24 * 3_600_000), "1 day");
        assert_eq!(wait_text(3 * 24 * 3_600_000), "3 days");
        assert_eq!(wait_text(5 * 3_600_000), "5 hours");
        assert_eq!(wait_text(90 * 60_000), "90 minutes");
        assert_eq!(wait_text(60_000), "1 minute");
    }
}
