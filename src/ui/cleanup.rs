//! The Clean-up page: temporary flags that are finished (released to everyone in production for
//! a while) or unused (not checked for a while), with the reason and since when, each with an
//! archive form that says what archiving does and asks to confirm it (a checkbox the server
//! checks too, so it holds without JavaScript).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{form_error, AppError, ErrorText, Notice};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaleRow {
    pub key: String,
    pub name: String,
    pub stage: String,
    pub reasons: Vec<String>,
    pub last_checked: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CleanupData {
    pub flags: Vec<StaleRow>,
    /// (days released, days unchecked): the thresholds in force.
    pub settings: (i64, i64),
}

#[server(endpoint = "read/stale_flags")]
pub async fn stale_flags() -> Result<CleanupData, AppError> {
    let (service, actor) = super::server::caller()?;
    let settings = service.stale_settings(&actor).await?;
    let flags = service.stale_flags(&actor).await?;
    Ok(CleanupData {
        flags: flags.into_iter().map(StaleRow::from).collect(),
        settings: (settings.released_days, settings.unchecked_days),
    })
}

#[cfg(feature = "ssr")]
impl From<crate::model::StaleFlag> for StaleRow {
    fn from(f: crate::model::StaleFlag) -> Self {
        use super::format::{date, datetime};
        StaleRow {
            reasons: f
                .reasons
                .iter()
                .map(|r| format!("{} (since {})", r.describe(), date(r.since())))
                .collect(),
            last_checked: f.last_checked.map_or_else(|| "never".to_string(), datetime),
            key: f.key,
            name: f.name,
            stage: f.stage,
        }
    }
}

/// Refuses an archive whose confirmation box was not ticked.
#[cfg(feature = "ssr")]
fn confirmed(flag: &str, confirm: Option<&str>) -> Result<(), AppError> {
    if confirm == Some("on") {
        return Ok(());
    }
    let message = format!("Tick the box to confirm that {flag} stops being served.");
    Err(AppError {
        field: Some("confirm".into()),
        message,
        ..Default::default()
    }
    .rejected_input())
}

/// Archives a stale flag once the form's confirmation box is ticked.
#[server(endpoint = "edit/archive_stale")]
pub async fn archive_stale(flag: String, confirm: Option<String>) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    confirmed(&flag, confirm.as_deref())?;
    let change = crate::service::Change::SetArchived {
        flag: flag.clone(),
        archived: true,
    };
    service.apply(&actor, change).await?;
    Ok(format!(
        "Archived {flag}: applications get it as not found (off) from now on."
    ))
}

/// A whole number of days typed into `field`.
#[cfg(feature = "ssr")]
fn days(field: &str, text: &str) -> Result<i64, AppError> {
    text.trim().parse::<i64>().map_err(|_| {
        let message = format!("{text:?} is not a whole number of days");
        AppError {
            field: Some(field.into()),
            message,
            ..Default::default()
        }
        .rejected_input()
    })
}

/// Changes the staleness thresholds (admins).
#[server(endpoint = "edit/stale_settings")]
pub async fn save_stale_settings(released_days: String, unchecked_days: String) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SetStaleSettings {
        released_days: days("released_days", &released_days)?,
        unchecked_days: days("unchecked_days", &unchecked_days)?,
    };
    service.apply(&actor, change).await?;
    Ok("Saved: the list below follows the new thresholds.".into())
}

#[component]
fn StaleSettingsForm(released: i64, unchecked: i64, save: ServerAction<SaveStaleSettings>) -> impl IntoView {
    let released_error = form_error(save.value(), &["released_days"]);
    let unchecked_error = form_error(save.value(), &["unchecked_days"]);
    view! {
        <details class="card">
            <summary>"When is a flag stale?"</summary>
            <ActionForm action=save attr:class="stack">
                <label for="released-days">"Days in the final stage with Everyone in production (0: at once)"</label>
                <input id="released-days" class="days" name="released_days" type="number" min="0" max="3650" value=released required=true aria-describedby="released-days-error"/>
                <ErrorText id="released-days-error" message=Signal::derive(released_error)/>
                <label for="unchecked-days">"Days without a check in any environment"</label>
                <input id="unchecked-days" class="days" name="unchecked_days" type="number" min="1" max="3650" value=unchecked required=true aria-describedby="unchecked-days-error"/>
                <ErrorText id="unchecked-days-error" message=Signal::derive(unchecked_error)/>
                <button type="submit">"Save thresholds"</button>
            </ActionForm>
            <Notice value=save.value()/>
        </details>
    }
}

#[component]
pub fn CleanupPage() -> impl IntoView {
    let archive = ServerAction::<ArchiveStale>::new();
    let save = ServerAction::<SaveStaleSettings>::new();
    let is_admin = super::shell::member_has(crate::model::member::Role::Admin);
    let data = Resource::new(
        move || (archive.version().get(), save.version().get()),
        |_| stale_flags(),
    );
    let confirm_error = form_error(archive.value(), &["confirm", "flag"]);
    view! {
        <h1>"Clean-up"</h1>
        <p class="muted">"Temporary flags that are done or unused. Remove them from the code (" <code>"gatehouse code-refs"</code> " finds where), then archive them."</p>
        <Notice value=archive.value()/>
        <ErrorText id="archive-error" message=Signal::derive(confirm_error)/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(CleanupData { flags, settings: (released, unchecked) }) => {
                    let form = is_admin().then(|| view! { <StaleSettingsForm released unchecked save/> });
                    let rule = format!(
                        "A temporary flag is stale after {released} days in the final stage with Everyone in production, or after {unchecked} days without a check in any environment. Permanent flags never are."
                    );
                    if flags.is_empty() {
                        return view! { <section class="card"><p class="empty">"No stale flags. " {rule}</p></section> {form} }.into_any();
                    }
                    view! {
                        <p class="muted">{rule}</p>
                        {form}
                        <section class="card">
                            <table>
                                <thead><tr><th>"Flag"</th><th>"Stage"</th><th>"Why"</th><th>"Last checked"</th><th>"Archive"</th></tr></thead>
                                <tbody>
                                    {flags.into_iter().map(|f| {
                                        let id = format!("confirm-{}", f.key);
                                        let label_for = id.clone();
                                        view! {
                                            <tr>
                                                <td><a href=format!("/flags/{}", f.key)>{f.name.clone()}</a><br/><code class="muted">{f.key.clone()}</code></td>
                                                <td>{f.stage.clone()}</td>
                                                <td><ul class="plain">{f.reasons.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul></td>
                                                <td>{f.last_checked.clone()}</td>
                                                <td>
                                                    <ActionForm action=archive attr:class="stack">
                                                        <input type="hidden" name="flag" value=f.key.clone()/>
                                                        <label for=label_for class="check">
                                                            <input type="checkbox" id=id name="confirm" required=true/>
                                                            {format!(" Stop serving {} in every environment", f.key)}
                                                        </label>
                                                        <button type="submit" class="danger small">"Archive"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
