//! Companies and users the SDKs reported, per environment: a searchable list (paged on the server)
//! and a page per entity with its attributes and the "check access" tool, which evaluates every
//! flag of the environment for `{company: {id, …stored attributes}}` (or `user`) and says in words
//! which rule matched, which condition decided and which fields were missing.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::format::datetime;

/// Entities per page of the list.
pub const PAGE_SIZE: usize = 50;
/// Flags explained per page of the access check.
pub const CHECK_PAGE_SIZE: usize = 50;

/// Which kind of entity a page shows; also its URL segment (`/companies`, `/users`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Company,
    User,
}

impl Kind {
    #[cfg(feature = "ssr")]
    fn parse(text: &str) -> Result<Kind, AppError> {
        match text {
            "company" => Ok(Kind::Company),
            "user" => Ok(Kind::User),
            _ => Err(AppError {
                field: Some("kind".into()),
                message: "check a company or a user".into(),
                ..Default::default()
            }
            .rejected_input()),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::User => "user",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Company => "/companies",
            Kind::User => "/users",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Company => "Companies",
            Kind::User => "Users",
        }
    }

    #[cfg(feature = "ssr")]
    fn stored(self) -> crate::service::EntityKind {
        match self {
            Kind::Company => crate::service::EntityKind::Company,
            Kind::User => crate::service::EntityKind::User,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityItem {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Flattened attributes (`plan`, `address.city`, …).
    pub attributes: Vec<(String, String)>,
    pub first_seen: i64,
    pub last_seen: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityList {
    pub environments: Vec<(String, String)>,
    pub environment: String,
    pub items: Vec<EntityItem>,
    pub total: usize,
    pub page: usize,
}

/// One entity; `item` is `None` when it was never reported in the environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityDetail {
    pub environments: Vec<(String, String)>,
    pub environment: String,
    pub environment_name: String,
    pub id: String,
    pub item: Option<EntityItem>,
    /// The users of a company, or the companies of a user.
    pub related: Vec<String>,
}

/// One flag's decision for the checked entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagCheck {
    pub key: String,
    pub name: String,
    pub enabled: bool,
    /// One line: "Enabled: rule 2 matched", "Disabled: no rule matched", …
    pub reason: String,
    /// One line per rule: what it tested and what decided it.
    pub rules: Vec<String>,
    pub missing: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessCheck {
    /// The flattened context every flag was evaluated with.
    pub context: Vec<(String, String)>,
    /// For a user: which company the check used, said in words.
    pub company_note: Option<String>,
    /// One page of the flags the filter picked, by key.
    pub flags: Vec<FlagCheck>,
    /// Flags in the environment, and how many of them are enabled.
    pub total: usize,
    pub enabled: usize,
    /// Flags the filter picked, over all pages.
    pub matching: usize,
    pub page: usize,
}

#[cfg(feature = "ssr")]
mod server {
    use super::{AccessCheck, EntityItem, FlagCheck};
    use crate::eval::explain::{Explanation, NodeKind, NodeTrace};
    use crate::eval::FlatContext;
    use crate::service::{CheckFilter, EntityRow};
    use crate::ui::error::AppError;

    /// Values of a long list shown in an explanation; the rest are counted.
    const VALUES_SHOWN: usize = 5;

    pub fn item(row: EntityRow) -> EntityItem {
        EntityItem {
            attributes: FlatContext::from_object(&row.attributes).to_pairs(),
            id: row.id,
            name: row.name,
            email: row.email,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
        }
    }

    fn percent(thousandths: f64) -> String {
        format!("{} %", thousandths / 1000.0)
    }

    /// A condition or rollout in words, with what the context held and how it came out.
    fn leaf(node: &NodeTrace, negated: bool) -> Option<String> {
        let outcome = if node.result != negated { "yes" } else { "no" };
        let not = if negated { "NOT " } else { "" };
        let text = match &node.kind {
            NodeKind::Context {
                field,
                operator,
                values,
                actual,
                missing,
            } => {
                let values = match values.len() {
                    0 => String::new(),
                    n if n > VALUES_SHOWN + 1 => format!(
                        " {} and {} more",
                        values[..VALUES_SHOWN].join(", "),
                        n - VALUES_SHOWN
                    ),
                    _ => format!(" {}", values.join(", ")),
                };
                let seen = match (actual, missing) {
                    (_, true) => "it is missing from the context".to_string(),
                    (Some(actual), _) => format!("it is \u{201c}{actual}\u{201d}"),
                    (None, _) => "it is not set".to_string(),
                };
                format!(
                    "{not}{field} {}{values} ({seen}) → {outcome}",
                    crate::model::describe::operator_label(*operator)
                )
            }
            NodeKind::RolloutPercentage {
                attribute,
                threshold,
                bucket,
                ..
            } => match bucket {
                Some(bucket) => format!(
                    "{not}rollout {} by {attribute} (its bucket is {}) → {outcome}",
                    percent(*threshold),
                    percent(f64::from(*bucket))
                ),
                None => format!(
                    "{not}rollout {} by {attribute} ({attribute} is missing from the context) → {outcome}",
                    percent(*threshold)
                ),
            },
            NodeKind::Constant { value: true } => format!("{not}everyone → {outcome}"),
            NodeKind::Constant { value: false } => format!("{not}no one → {outcome}"),
            NodeKind::Unknown => format!("a filter this server does not know → {outcome}"),
            NodeKind::Group { .. } | NodeKind::Negation { .. } => return None,
        };
        Some(text)
    }

    /// The conditions that decided a rule, in evaluation order.
    fn deciding(node: &NodeTrace, negated: bool, out: &mut Vec<String>) {
        if !node.decisive {
            return;
        }
        match &node.kind {
            NodeKind::Group { children, .. } => children.iter().for_each(|c| deciding(c, negated, out)),
            NodeKind::Negation { child } => deciding(child, !negated, out),
            _ => out.extend(leaf(node, negated)),
        }
    }

    pub fn flag_check(key: String, name: String, explanation: &Explanation) -> FlagCheck {
        let enabled = explanation.matched_rule.is_some();
        let reason = match explanation.matched_rule {
            Some(i) if explanation.decided_by_rollout => {
                format!("Enabled: rule {} matched, inside its rollout", i + 1)
            }
            Some(i) => format!("Enabled: rule {} matched", i + 1),
            None if explanation.rules.is_empty() => "Disabled: no one has access here".to_string(),
            None if explanation.missing_context_fields.is_empty() => "Disabled: no rule matched".to_string(),
            None => "Disabled: no rule matched; some fields were missing".to_string(),
        };
        let rules = explanation
            .rules
            .iter()
            .map(|rule| {
                let mut why = Vec::new();
                deciding(&rule.trace, false, &mut why);
                let verdict = if rule.matched { "matched" } else { "did not match" };
                if why.is_empty() {
                    format!("Rule {} {verdict}", rule.index + 1)
                } else {
                    format!("Rule {} {verdict}: {}", rule.index + 1, why.join("; "))
                }
            })
            .collect();
        FlagCheck {
            key,
            name,
            enabled,
            reason,
            rules,
            missing: explanation.missing_context_fields.clone(),
        }
    }

    /// The service's filter for the page's search, result (`enabled`, `disabled`, or all) and page.
    pub fn filter(search: String, result: &str, page: usize) -> Result<CheckFilter, AppError> {
        let enabled = match result {
            "" | "all" => None,
            "enabled" => Some(true),
            "disabled" => Some(false),
            _ => {
                let error = AppError {
                    field: Some("result".into()),
                    message: "show all flags, the enabled or the disabled ones".into(),
                    ..Default::default()
                };
                return Err(error.rejected_input());
            }
        };
        Ok(CheckFilter {
            search,
            enabled,
            page,
            size: super::CHECK_PAGE_SIZE,
        })
    }

    pub fn check(checked: crate::service::AccessCheck, page: usize) -> AccessCheck {
        let company_note = checked.company.map(|(id, of)| match of {
            1 => format!("Evaluated with the user's company {id}."),
            n => format!(
                "Evaluated with the company {id}, the first of the {n} companies the user belongs to."
            ),
        });
        AccessCheck {
            context: checked.context.to_pairs(),
            company_note,
            flags: checked
                .flags
                .iter()
                .map(|(key, name, explanation)| flag_check(key.clone(), name.clone(), explanation))
                .collect(),
            total: checked.total,
            enabled: checked.enabled,
            matching: checked.matching,
            page,
        }
    }

    /// The environments as `(key, name)`, for the picker.
    pub fn choices(environments: Vec<crate::model::Environment>) -> Vec<(String, String)> {
        environments
            .into_iter()
            .map(|e| (e.key.to_string(), e.name))
            .collect()
    }
}

#[cfg(feature = "ssr")]
async fn list(kind: Kind, env: String, search: String, page: usize) -> Result<EntityList, AppError> {
    let env = super::server::working_environment(env).await?;
    let (service, actor) = super::server::caller()?;
    let found = service.search_entities(&actor, &env, kind.stored(), &search, page, PAGE_SIZE);
    let (environments, environment, found) = found.await?;
    Ok(EntityList {
        environments: server::choices(environments),
        environment: environment.key.to_string(),
        items: found.rows.into_iter().map(server::item).collect(),
        total: found.total.max(0) as usize,
        page,
    })
}

#[server(endpoint = "read/companies")]
pub async fn companies(env: String, search: String, page: usize) -> Result<EntityList, AppError> {
    list(Kind::Company, env, search, page).await
}

#[server(endpoint = "read/users")]
pub async fn users(env: String, search: String, page: usize) -> Result<EntityList, AppError> {
    list(Kind::User, env, search, page).await
}

#[server(endpoint = "read/entity")]
pub async fn entity(kind: String, env: String, id: String) -> Result<EntityDetail, AppError> {
    let kind = Kind::parse(&kind)?;
    let env = super::server::working_environment(env).await?;
    let (service, actor) = super::server::caller()?;
    let detail = service.entity_detail(&actor, kind.stored(), &env, &id).await?;
    Ok(EntityDetail {
        environment: detail.environment.key.to_string(),
        environment_name: detail.environment.name,
        environments: server::choices(detail.environments),
        item: detail.row.map(server::item),
        id,
        related: detail.related,
    })
}

/// Every flag of the environment evaluated for one company or user (`kind`), with its stored
/// attributes, as the SDKs would see it, and one page of those whose key or name contains
/// `search` and whose `result` is `enabled`, `disabled` (or either) explained; works for ids
/// never reported too (id only).
#[server(endpoint = "read/check_access")]
pub async fn check_access(
    kind: String,
    env: String,
    id: String,
    #[server(default)] search: String,
    #[server(default)] result: String,
    #[server(default)] page: usize,
) -> Result<AccessCheck, AppError> {
    let (kind, filter) = (Kind::parse(&kind)?, server::filter(search, &result, page)?);
    let env = super::server::working_environment(env).await?;
    let (service, actor) = super::server::caller()?;
    let checked = service
        .check_access(&actor, kind.stored(), &env, &id, &filter)
        .await?;
    Ok(server::check(checked, page))
}

/// Where the access check's filter and pages lead: the entity's page with the environment,
/// search and result kept.
struct CheckLinks {
    kind: Kind,
    id: String,
    env: String,
    search: String,
    result: String,
}

impl CheckLinks {
    fn path(&self) -> String {
        format!("{}/{}", self.kind.path(), urlencode(&self.id))
    }

    fn href(&self, page: usize) -> String {
        let mut href = format!("{}?env={}&page={page}", self.path(), urlencode(&self.env));
        if !self.search.is_empty() {
            href.push_str(&format!("&q={}", urlencode(&self.search)));
        }
        if !self.result.is_empty() {
            href.push_str(&format!("&result={}", urlencode(&self.result)));
        }
        href
    }
}

/// Page links that keep the environment and search.
fn page_href(kind: Kind, env: &str, search: &str, page: usize) -> String {
    let mut href = format!("{}?env={}&page={page}", kind.path(), urlencode(env));
    if !search.is_empty() {
        href.push_str(&format!("&q={}", urlencode(search)));
    }
    href
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn attributes_text(attributes: &[(String, String)]) -> String {
    attributes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[component]
fn EnvironmentSelect(environments: Vec<(String, String)>, selected: String) -> impl IntoView {
    view! {
        <label for="env">"Environment"</label>
        <select id="env" name="env">
            {environments.into_iter().map(|(key, name)| {
                let is_selected = key == selected;
                view! { <option value=key selected=is_selected>{name}</option> }
            }).collect_view()}
        </select>
    }
}

#[component]
fn EntityListPage(kind: Kind) -> impl IntoView {
    let query = use_query_map();
    let env = move || query.read().get("env").unwrap_or_default();
    let search = move || query.read().get("q").unwrap_or_default();
    let page = move || super::format::page_param(&query.read());
    let data = Resource::new(
        move || (env(), search(), page()),
        move |(env, search, page)| async move {
            match kind {
                Kind::Company => companies(env, search, page).await,
                Kind::User => users(env, search, page).await,
            }
        },
    );
    let noun = kind.as_str();
    view! {
        <h1>{kind.plural()}</h1>
        <Suspense fallback=move || view! { <p class="muted">{format!("Loading {}…", kind.plural().to_lowercase())}</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(list) => {
                    let search = search();
                    let pages = list.total.div_ceil(PAGE_SIZE).max(1);
                    let previous = (list.page > 0).then(|| page_href(kind, &list.environment, &search, list.page - 1));
                    let next = (list.page + 1 < pages).then(|| page_href(kind, &list.environment, &search, list.page + 1));
                    let environment = list.environment.clone();
                    view! {
                        <form method="get" action=kind.path() class="filters">
                            <EnvironmentSelect environments=list.environments.clone() selected=list.environment.clone()/>
                            <label for="q">{format!("Search by id or name{}", if kind == Kind::User { " or email" } else { "" })}</label>
                            <input id="q" name="q" type="search" value=search.clone()/>
                            <button type="submit" class="secondary">"Search"</button>
                        </form>
                        {if list.total == 0 && search.is_empty() {
                            view! {
                                <section class="card empty">
                                    <p>{format!("No {} in this environment yet.", kind.plural().to_lowercase())}</p>
                                    <p class="muted">
                                        {format!("They arrive when your application reports them: the SDKs' {} call (POST /{noun}) ", if kind == Kind::Company { "company" } else { "user" })}
                                        "or a POST /bulk with the environment's publishable key. Flags can be evaluated for any id "
                                        "even before it is reported; reported attributes are then used as remote context."
                                    </p>
                                </section>
                            }.into_any()
                        } else if list.total == 0 {
                            view! { <section class="card empty"><p>{format!("No {noun} matches \u{201c}{search}\u{201d}.")}</p></section> }.into_any()
                        } else {
                            view! {
                                <section class="card">
                                    <table class="entities">
                                        <thead><tr><th>"Id"</th><th>"Name"</th><th>"Attributes"</th><th>"First seen"</th><th>"Last seen"</th></tr></thead>
                                        <tbody>
                                            {list.items.into_iter().map(|item| {
                                                let href = format!("{}/{}?env={}", kind.path(), urlencode(&item.id), urlencode(&environment));
                                                let name = match (&item.name, &item.email) {
                                                    (Some(name), Some(email)) => format!("{name} <{email}>"),
                                                    (Some(name), None) => name.clone(),
                                                    (None, Some(email)) => email.clone(),
                                                    (None, None) => String::new(),
                                                };
                                                view! {
                                                    <tr>
                                                        <td><a href=href><code>{item.id.clone()}</code></a></td>
                                                        <td>{name}</td>
                                                        <td class="attributes">{attributes_text(&item.attributes)}</td>
                                                        <td>{datetime(item.first_seen)}</td>
                                                        <td>{datetime(item.last_seen)}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    <nav class="pager entities" aria-label="Pages">
                                        {previous.map(|href| view! { <a href=href>"← Previous"</a> })}
                                        <span class="muted">{format!("Page {} of {pages} · {} {}", list.page + 1, list.total, kind.plural().to_lowercase())}</span>
                                        {next.map(|href| view! { <a href=href>"Next →"</a> })}
                                    </nav>
                                </section>
                            }.into_any()
                        }}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[component]
fn EntityPage(kind: Kind) -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let env = move || query.read().get("env").unwrap_or_default();
    let detail = Resource::new(
        move || (id(), env()),
        move |(id, env)| entity(kind.as_str().to_string(), env, id),
    );
    let search = move || query.read().get("q").unwrap_or_default();
    let shown = move || query.read().get("result").unwrap_or_default();
    let page = move || super::format::page_param(&query.read());
    let checks = Resource::new(
        move || (id(), env(), search(), shown(), page()),
        move |(id, env, search, result, page)| {
            check_access(kind.as_str().to_string(), env, id, search, result, page)
        },
    );
    let (related_label, related_kind) = match kind {
        Kind::Company => ("Users", Kind::User),
        Kind::User => ("Companies", Kind::Company),
    };
    view! {
        <p><a href=move || format!("{}?env={}", kind.path(), urlencode(&env()))>{format!("← All {}", kind.plural().to_lowercase())}</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(detail) => {
                    let environment = detail.environment.clone();
                    view! {
                        <div class="page-head">
                            <h1>{detail.item.as_ref().and_then(|i| i.name.clone()).unwrap_or_else(|| detail.id.clone())}</h1>
                            <code>{detail.id.clone()}</code>
                        </div>
                        <form method="get" action=format!("{}/{}", kind.path(), urlencode(&detail.id)) class="filters">
                            <EnvironmentSelect environments=detail.environments.clone() selected=detail.environment.clone()/>
                            <button type="submit" class="secondary">"Show"</button>
                        </form>
                        <section class="card">
                            <h2>"Attributes in " {detail.environment_name.clone()}</h2>
                            {match detail.item {
                                None => view! {
                                    <p class="muted">{format!(
                                        "This {} was never reported in {}. The check below uses its id only.",
                                        kind.as_str(), detail.environment_name
                                    )}</p>
                                }.into_any(),
                                Some(item) => view! {
                                    <p class="muted">{format!("First seen {} · last seen {}", datetime(item.first_seen), datetime(item.last_seen))}</p>
                                    {item.email.clone().map(|email| view! { <p>"Email: " {email}</p> })}
                                    {if item.attributes.is_empty() {
                                        view! { <p class="muted">"No attributes reported."</p> }.into_any()
                                    } else {
                                        view! {
                                            <table class="attributes">
                                                <thead><tr><th>"Attribute"</th><th>"Value"</th></tr></thead>
                                                <tbody>
                                                    {item.attributes.into_iter().map(|(k, v)| view! { <tr><td><code>{k}</code></td><td>{v}</td></tr> }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                }.into_any(),
                            }}
                            {(!detail.related.is_empty()).then(|| view! {
                                <h3>{related_label}</h3>
                                <ul class="related">
                                    {detail.related.into_iter().map(|other| {
                                        let href = format!("{}/{}?env={}", related_kind.path(), urlencode(&other), urlencode(&environment));
                                        view! { <li><a href=href><code>{other}</code></a></li> }
                                    }).collect_view()}
                                </ul>
                            })}
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
        <section class="card">
            <h2>"Check access"</h2>
            <p class="muted">{format!(
                "Every flag evaluated for this {} with its stored attributes, as the SDKs see it now.",
                kind.as_str()
            )}</p>
            <Suspense fallback=|| view! { <p class="muted">"Evaluating…"</p> }>
                {move || checks.get().map(|result| match result {
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                    Ok(check) if check.total == 0 => view! {
                        <p class="muted">"There are no flags in this environment yet. " <a href="/flags/new">"Create one"</a> "."</p>
                    }.into_any(),
                    Ok(check) => {
                        let here = CheckLinks { kind, id: id(), env: env(), search: search(), result: shown() };
                        let pages = check.matching.div_ceil(CHECK_PAGE_SIZE).max(1);
                        let previous = (check.page > 0).then(|| here.href(check.page - 1));
                        let next = (check.page + 1 < pages).then(|| here.href(check.page + 1));
                        let noun = if check.total == 1 { "flag" } else { "flags" };
                        view! {
                        {check.company_note.clone().map(|note| view! { <p class="muted">{note}</p> })}
                        <p class="muted">"Context: " <code>{attributes_text(&check.context)}</code></p>
                        <p class="check-summary"><strong>{format!("{} of {} {noun} enabled", check.enabled, check.total)}</strong></p>
                        <form method="get" action=here.path() class="filters">
                            <input type="hidden" name="env" value=here.env.clone()/>
                            <label for="check-q">"Flag key or name"</label>
                            <input id="check-q" name="q" type="search" value=here.search.clone()/>
                            <label for="check-result">"Result"</label>
                            <select id="check-result" name="result">
                                {[("all", "All"), ("enabled", "Enabled"), ("disabled", "Disabled")].into_iter().map(|(value, label)| {
                                    let chosen = here.result == value || (value == "all" && here.result.is_empty());
                                    view! { <option value=value selected=chosen>{label}</option> }
                                }).collect_view()}
                            </select>
                            <button type="submit" class="secondary">"Filter"</button>
                        </form>
                        {if check.matching == 0 {
                            view! { <p class="muted">"No flag matches this filter."</p> }.into_any()
                        } else {
                            view! {
                        <table class="checks">
                            <thead><tr><th>"Flag"</th><th>"Result"</th><th>"Why"</th></tr></thead>
                            <tbody>
                                {check.flags.into_iter().map(|flag| {
                                    let (class, label) = if flag.enabled { ("result on", "Enabled") } else { ("result off", "Disabled") };
                                    view! {
                                        <tr>
                                            <td><a href=format!("/flags/{}", flag.key)>{flag.name.clone()}</a><br/><code class="muted">{flag.key.clone()}</code></td>
                                            <td><span class=class>{label}</span></td>
                                            <td>
                                                <p>{flag.reason.clone()}</p>
                                                {(!flag.rules.is_empty()).then(|| view! {
                                                    <ul class="why">{flag.rules.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                                                })}
                                                {(!flag.missing.is_empty()).then(|| view! {
                                                    <p class="muted">"Missing from the context: " {flag.missing.join(", ")}</p>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <nav class="pager entities" aria-label="Pages of flags">
                            {previous.map(|href| view! { <a href=href>"← Previous"</a> })}
                            <span class="muted">{format!("Page {} of {pages} · {} {}", check.page + 1, check.matching, if check.matching == 1 { "flag" } else { "flags" })}</span>
                            {next.map(|href| view! { <a href=href>"Next →"</a> })}
                        </nav>
                            }.into_any()
                        }}
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn CompaniesPage() -> impl IntoView {
    view! { <EntityListPage kind=Kind::Company/> }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    view! { <EntityListPage kind=Kind::User/> }
}

#[component]
pub fn CompanyPage() -> impl IntoView {
    view! { <EntityPage kind=Kind::Company/> }
}

#[component]
pub fn UserPage() -> impl IntoView {
    view! { <EntityPage kind=Kind::User/> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_environment_and_search() {
        assert_eq!(
            page_href(Kind::Company, "production", "acme inc", 2),
            "/companies?env=production&page=2&q=acme%20inc"
        );
        assert_eq!(
            page_href(Kind::User, "staging", "", 0),
            "/users?env=staging&page=0"
        );
    }

    #[test]
    fn check_links_keep_the_filter() {
        let links = CheckLinks {
            kind: Kind::Company,
            id: "acme inc".into(),
            env: "staging".into(),
            search: "new billing".into(),
            result: "enabled".into(),
        };
        assert_eq!(
            links.href(3),
            "/companies/acme%20inc?env=staging&page=3&q=new%20billing&result=enabled"
        );
    }
}
