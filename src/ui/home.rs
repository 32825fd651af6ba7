//! The overview: what waits (scheduled changes, and the caller's own that could not be applied),
//! environments and release stages at a glance.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub environments: Vec<(String, String, bool, i64)>,
    pub stages: Vec<(String, String)>,
    /// Pending scheduled changes: (flag key, what, when, by).
    pub scheduled: Vec<(String, String, String, String)>,
    /// The caller's scheduled changes that were not applied: (flag key, what, when, why).
    pub not_applied: Vec<(String, String, String, String)>,
    /// Change requests waiting for the caller's approval: (flag key, what, who asked, why).
    pub to_review: Vec<(String, String, String, String)>,
}

#[server(endpoint = "read/overview")]
pub async fn overview() -> Result<OverviewData, AppError> {
    let (service, actor) = super::server::caller()?;
    let overview = service.overview(&actor).await?;
    let (scheduled, not_applied) = scheduled_rows(&overview);
    let to_review = review_rows(&overview);
    Ok(OverviewData {
        to_review,
        scheduled,
        not_applied,
        environments: overview
            .environments
            .into_iter()
            .map(|e| (e.key.to_string(), e.name, e.is_production, e.flag_state_version))
            .collect(),
        stages: overview.stages.into_iter().map(|s| (s.name, s.color)).collect(),
    })
}

/// The overview's scheduled changes as rows: the pending ones (with who scheduled them) and the
/// caller's that were not applied (with why).
#[cfg(feature = "ssr")]
#[allow(clippy::type_complexity)]
fn scheduled_rows(
    overview: &crate::service::Overview,
) -> (
    Vec<(String, String, String, String)>,
    Vec<(String, String, String, String)>,
) {
    let row = |change: &crate::model::ScheduledChange, last: String| {
        let what = super::flags::planned_text(&change.planned, &overview.environments, &overview.stages);
        (
            change.flag.clone(),
            what,
            super::format::datetime(change.due_at),
            last,
        )
    };
    let pending = overview
        .scheduled
        .iter()
        .map(|c| row(c, c.created_label.clone()))
        .collect();
    let not_applied = overview
        .not_applied
        .iter()
        .map(|c| row(c, c.outcome.clone()))
        .collect();
    (pending, not_applied)
}

/// The change requests waiting for the caller's approval, as rows.
#[cfg(feature = "ssr")]
fn review_rows(overview: &crate::service::Overview) -> Vec<(String, String, String, String)> {
    overview
        .to_review
        .iter()
        .map(|r| {
            let what = super::flags::planned_text(&r.planned, &overview.environments, &overview.stages);
            (
                r.flag.clone(),
                format!("#{} {what}", r.id),
                r.created_label.clone(),
                r.note.clone(),
            )
        })
        .collect()
}

#[component]
pub fn HomePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| overview());
    view! {
        <h1>"Overview"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(overview) => view! {
                    {(!overview.not_applied.is_empty()).then(|| view! {
                        <section class="card warning" id="not-applied">
                            <h2>"Your scheduled changes that were not applied"</h2>
                            <ul class="plain">
                                {overview.not_applied.clone().into_iter().map(|(flag, what, due, why)| view! {
                                    <li>
                                        <a href=format!("/flags/{flag}#scheduled")>{flag.clone()}</a>
                                        {format!(": {what}, due {due}. ")}
                                        <span class="error-text">{why}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        </section>
                    })}
                    {(!overview.to_review.is_empty()).then(|| view! {
                        <section class="card" id="to-review">
                            <h2>"Waiting for your approval"</h2>
                            <ul class="plain">
                                {overview.to_review.clone().into_iter().map(|(flag, what, by, note)| view! {
                                    <li>
                                        <a href=format!("/flags/{flag}#requests")>{flag.clone()}</a>
                                        {format!(": {what}, requested by {by}")}
                                        {(!note.is_empty()).then(|| view! { <span class="muted">{format!(" (“{note}”)")}</span> })}
                                    </li>
                                }).collect_view()}
                            </ul>
                        </section>
                    })}
                    <section class="card">
                        <h2>"Scheduled changes"</h2>
                        {if overview.scheduled.is_empty() {
                            view! { <p class="muted">"Nothing is scheduled. A flag's page schedules changes to its access, remote config, stage or archiving."</p> }.into_any()
                        } else {
                            view! {
                                <table>
                                    <thead><tr><th>"When (UTC)"</th><th>"Flag"</th><th>"Change"</th><th>"By"</th></tr></thead>
                                    <tbody>
                                        {overview.scheduled.clone().into_iter().map(|(flag, what, due, by)| view! {
                                            <tr><td>{due}</td><td><a href=format!("/flags/{flag}#scheduled")>{flag.clone()}</a></td><td>{what}</td><td>{by}</td></tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                    <section class="card">
                        <h2>"Environments"</h2>
                        <table>
                            <thead><tr><th>"Name"</th><th>"Key"</th><th>"Flag state version"</th></tr></thead>
                            <tbody>
                                {overview.environments.into_iter().map(|(key, name, production, version)| view! {
                                    <tr>
                                        <td>{name} {production.then_some(view! { <span class="badge">"production"</span> })}</td>
                                        <td><code>{key}</code></td>
                                        <td>{version}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <section class="card">
                        <h2>"Release stages"</h2>
                        <ol class="stages">
                            {overview.stages.into_iter().map(|(name, color)| view! {
                                <li><span class="dot" style=format!("background:{color}")></span>{name}</li>
                            }).collect_view()}
                        </ol>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}
