//! The overview: environments and release stages at a glance.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub environments: Vec<(String, String, bool, i64)>,
    pub stages: Vec<(String, String)>,
}

#[server(endpoint = "read/overview")]
pub async fn overview() -> Result<OverviewData, AppError> {
    let (service, actor) = super::server::caller()?;
    let overview = service.overview(&actor).await?;
    Ok(OverviewData {
        environments: overview
            .environments
            .into_iter()
            .map(|e| (e.key.to_string(), e.name, e.is_production, e.flag_state_version))
            .collect(),
        stages: overview.stages.into_iter().map(|s| (s.name, s.color)).collect(),
    })
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
