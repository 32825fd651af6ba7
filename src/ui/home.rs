//! The overview, a PM's start page: what waits for them (changes that were not applied, requests
//! to review), how to get started (create a flag, connect an app with a snippet filled in for the
//! working environment), recent changes, flags per release stage, scheduled changes and the
//! environments.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::copy::CopyButton;
use super::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    /// (key, name, production, approvals a change needs)
    pub environments: Vec<(String, String, bool, i64)>,
    /// (id, name, colour, flags not archived)
    pub stages: Vec<(i64, String, String, i64)>,
    /// Pending scheduled changes: (flag key, what, when, by).
    pub scheduled: Vec<(String, String, String, String)>,
    /// The caller's scheduled changes that were not applied: (flag key, what, when, why).
    pub not_applied: Vec<(String, String, String, String)>,
    /// Change requests waiting for the caller's approval: (flag key, what, who asked, why).
    pub to_review: Vec<(String, String, String, String)>,
    /// The newest changes: (who, what, subject, link, when).
    pub recent: Vec<(String, String, String, Option<String>, String)>,
    /// The working environment's name, its publishable key and the server's address.
    pub connect: Option<(String, String, String)>,
}

impl OverviewData {
    fn flags(&self) -> i64 {
        self.stages.iter().map(|s| s.3).sum()
    }
}

#[server(endpoint = "read/overview")]
pub async fn overview() -> Result<OverviewData, AppError> {
    let (service, actor) = super::server::caller()?;
    let overview = service.overview(&actor).await?;
    let working = super::server::choose_environment(String::new(), &overview.environments).await?;
    let public_url = super::server::app_state()?.public_url.to_string();
    Ok(overview_data(overview, &working, public_url))
}

#[cfg(feature = "ssr")]
fn overview_data(overview: crate::service::Overview, working: &str, public_url: String) -> OverviewData {
    let (scheduled, not_applied) = scheduled_rows(&overview);
    let to_review = review_rows(&overview);
    let connect = overview
        .environments
        .iter()
        .find(|e| e.key.as_str() == working)
        .or(overview.environments.first())
        .and_then(|e| {
            let key = overview.publishable_keys.iter().find(|(id, _)| *id == e.id)?;
            Some((e.name.clone(), key.1.clone(), public_url))
        });
    let count = |id: i64| {
        overview
            .flags_per_stage
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(0, |c| c.1)
    };
    OverviewData {
        to_review,
        scheduled,
        not_applied,
        recent: overview.recent.iter().map(recent_row).collect(),
        connect,
        environments: overview
            .environments
            .iter()
            .map(|e| {
                (
                    e.key.to_string(),
                    e.name.clone(),
                    e.is_production,
                    e.required_approvals,
                )
            })
            .collect(),
        stages: overview
            .stages
            .iter()
            .map(|s| (s.id, s.name.clone(), s.color.clone(), count(s.id)))
            .collect(),
    }
}

/// An audit entry as one line of the overview: who, what they did (in words), to what, a link
/// to it, when.
#[cfg(feature = "ssr")]
fn recent_row(entry: &crate::service::AuditRecord) -> (String, String, String, Option<String>, String) {
    let link = match entry.subject_type.as_str() {
        "flag" => Some(format!("/flags/{}", entry.subject_key)),
        "segment" => Some(format!("/segments/{}", entry.subject_key)),
        _ => None,
    };
    let subject = match &entry.environment_key {
        Some(environment) => format!("{} {} in {environment}", entry.subject_type, entry.subject_key),
        None => format!("{} {}", entry.subject_type, entry.subject_key),
    };
    (
        entry.actor_label.clone(),
        action_words(&entry.action),
        subject,
        link,
        super::format::datetime(entry.at),
    )
}

/// An audit action in words: `flag.access_rules_changed` → "access rules changed".
pub fn action_words(action: &str) -> String {
    let words = action.split_once('.').map_or(action, |(_, rest)| rest);
    words.replace('_', " ")
}

/// The ways to connect an application, each with its ready snippet: (title, what it needs, code).
pub fn snippets(url: &str, publishable_key: &str) -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "Browser (Reflag browser SDK)",
            "npm install @reflag/browser-sdk",
            format!(
                r#"import {{ ReflagClient }} from "@reflag/browser-sdk";

const reflag = new ReflagClient({{
  publishableKey: "{publishable_key}",
  apiBaseUrl: "{url}",
  user: {{ id: "user-1" }},
  company: {{ id: "acme" }},
}});
await reflag.initialize();

if (reflag.getFlag("my-flag").isEnabled) {{
  // show the new feature
}}"#
            ),
        ),
        (
            "Node.js (Reflag Node SDK)",
            "npm install @reflag/node-sdk — with this environment's secret key (Settings → API keys)",
            format!(
                r#"import {{ ReflagClient }} from "@reflag/node-sdk";

const reflag = new ReflagClient({{
  secretKey: process.env.REFLAG_SECRET_KEY,
  apiBaseUrl: "{url}",
}});
await reflag.initialize();

const flags = reflag.bindClient({{ user: {{ id: "user-1" }}, company: {{ id: "acme" }} }});
if (flags.getFlag("my-flag").isEnabled) {{
  // serve the new feature
}}"#
            ),
        ),
        (
            "OpenFeature (any OFREP provider)",
            "npm install @openfeature/server-sdk @openfeature/ofrep-provider",
            format!(
                r#"import {{ OpenFeature }} from "@openfeature/server-sdk";
import {{ OFREPProvider }} from "@openfeature/ofrep-provider";

await OpenFeature.setProviderAndWait(new OFREPProvider({{
  baseUrl: "{url}",
  headers: [["X-API-Key", "{publishable_key}"]],
}}));
const client = OpenFeature.getClient();

const enabled = await client.getBooleanValue("my-flag", false, {{
  targetingKey: "user-1",
  company: {{ id: "acme" }},
}});"#
            ),
        ),
    ]
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
                Ok(overview) => view! { <Overview overview/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Overview(overview: OverviewData) -> impl IntoView {
    let flags = overview.flags();
    view! {
        <Waiting overview=overview.clone()/>
        <GetStarted flags connect=overview.connect.clone()/>
        <div class="overview-grid">
            <section class="card" id="recent">
                <h2>"Recent changes"</h2>
                {if overview.recent.is_empty() {
                    view! { <p class="muted">"Nothing has changed yet. Every change to flags, segments and settings appears here and in the audit log."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain recent">
                            {overview.recent.clone().into_iter().map(|(who, what, subject, link, when)| view! {
                                <li>
                                    <strong>{who}</strong>" "{what}" · "
                                    {match link {
                                        Some(href) => view! { <a href=href>{subject}</a> }.into_any(),
                                        None => view! { <span>{subject}</span> }.into_any(),
                                    }}
                                    <span class="muted">{format!(" · {when}")}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                        <p><a href="/audit">"The whole audit log"</a></p>
                    }.into_any()
                }}
            </section>
            <section class="card" id="per-stage">
                <h2>"Flags per release stage"</h2>
                <ul class="plain stage-counts">
                    {overview.stages.clone().into_iter().map(|(id, name, color, count)| view! {
                        <li>
                            <span class="dot" style=format!("background:{color}")></span>
                            <a href=format!("/flags?stage={id}")>{name}</a>
                            <span class="count">{count}</span>
                        </li>
                    }).collect_view()}
                </ul>
                <p><a href="/flags?view=board">"The board"</a></p>
            </section>
        </div>
        <section class="card">
            <h2>"Scheduled changes"</h2>
            {if overview.scheduled.is_empty() {
                view! { <p class="muted">"Nothing is scheduled. A flag's page schedules changes to its access, remote config, stage or archiving."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table>
                        <thead><tr><th>"When (UTC)"</th><th>"Flag"</th><th>"Change"</th><th>"By"</th></tr></thead>
                        <tbody>
                            {overview.scheduled.clone().into_iter().map(|(flag, what, due, by)| view! {
                                <tr><td>{due}</td><td><a href=format!("/flags/{flag}#scheduled")>{flag.clone()}</a></td><td>{what}</td><td>{by}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
        <section class="card">
            <h2>"Environments"</h2>
            <ul class="plain">
                {overview.environments.into_iter().map(|(key, name, production, approvals)| view! {
                    <li>
                        <strong>{name}</strong>" "<code>{key}</code>" "
                        {production.then_some(view! { <span class="badge">"production"</span> })}
                        <span class="muted">{match approvals {
                            0 => " · changes apply at once".to_string(),
                            1 => " · a change needs 1 approval".to_string(),
                            n => format!(" · a change needs {n} approvals"),
                        }}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// What waits for the caller: their scheduled changes that were not applied, requests to review.
#[component]
fn Waiting(overview: OverviewData) -> impl IntoView {
    view! {
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
    }
}

/// The first steps: create a flag, connect an application, give access.
#[component]
fn GetStarted(flags: i64, connect: Option<(String, String, String)>) -> impl IntoView {
    view! {
        <section class="card" id="get-started">
            <h2>"Get started"</h2>
            <ol class="steps">
                <li class:done={flags > 0}>
                    <strong>"Create a flag. "</strong>
                    {if flags > 0 {
                        view! { <span>{format!("{flags} flag{} so far · ", if flags == 1 { "" } else { "s" })}<a href="/flags">"See the flags"</a></span> }.into_any()
                    } else {
                        view! { <a class="button" href="/flags/new">"Create your first flag"</a> }.into_any()
                    }}
                </li>
                <li>
                    <strong>"Connect your application. "</strong>
                    {match connect {
                        None => view! { <span class="muted">"No environment has a publishable key; an admin creates one in Settings → API keys."</span> }.into_any(),
                        Some((environment, key, url)) => view! {
                            <span>{format!("Ready for {environment} (your working environment), with its publishable key:")}</span>
                            <div class="snippets">
                                {snippets(&url, &key).into_iter().enumerate().map(|(i, (title, needs, code))| view! {
                                    <details open=i == 0>
                                        <summary>{title}</summary>
                                        <p class="muted small">{needs}</p>
                                        <div class="snippet">
                                            <pre><code>{code.clone()}</code></pre>
                                            <CopyButton text=code what=format!("Copy the {title} snippet")/>
                                        </div>
                                    </details>
                                }).collect_view()}
                            </div>
                        }.into_any(),
                    }}
                </li>
                <li>
                    <strong>"Give access. "</strong>
                    "On a flag's page choose who gets it in each environment: companies, users, segments, rules or a rollout percentage. Check access for a company on its page."
                </li>
            </ol>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_words() {
        assert_eq!(action_words("flag.access_rules_changed"), "access rules changed");
        assert_eq!(action_words("segment.created"), "created");
        assert_eq!(action_words("odd"), "odd");
    }

    #[test]
    fn snippets_name_the_server_and_the_key_they_need() {
        let snippets = snippets("https://flags.example.com", "pub_prod_abc");
        let titles: Vec<&str> = snippets.iter().map(|s| s.0).collect();
        assert_eq!(
            titles,
            [
                "Browser (Reflag browser SDK)",
                "Node.js (Reflag Node SDK)",
                "OpenFeature (any OFREP provider)"
            ]
        );
        for (_, _, code) in &snippets {
            assert!(code.contains("\"https://flags.example.com\""), "{code}");
        }
        assert!(snippets[1].2.contains("process.env.REFLAG_SECRET_KEY"));
        assert!(snippets[1].1.contains("secret key"));
    }
}
