//! The audit log: every change, newest first, filtered by who made it, what it concerns and when,
//! a page at a time on the server. Each entry shows what changed as a list of top-level fields
//! with their old and new values, and the full documents side by side on request.
//!
//! Filters and paging are plain GET forms, so the page works without JavaScript and every view
//! has its own address.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::AppError;
use super::format::datetime;

/// Entries per page.
pub const PAGE_SIZE: i64 = 25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditItem {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_key: String,
    pub environment: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditResults {
    pub entries: Vec<AuditItem>,
    pub total: i64,
    pub page: i64,
    /// Every actor label in the log, for the "who" filter.
    pub actors: Vec<String>,
}

/// The filters as the page's address carries them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub member: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub page: i64,
}

#[server(endpoint = "read/audit")]
pub async fn audit_log(
    #[server(default)] member: String,
    #[server(default)] subject: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] page: i64,
) -> Result<AuditResults, AppError> {
    let (service, actor) = super::server::caller()?;
    let filter = dates::filter(member, subject, &from, &to)?;
    let found = service.audit_page(&actor, &filter, page, PAGE_SIZE).await?;
    Ok(AuditResults::new(found, page.max(0)))
}

#[cfg(feature = "ssr")]
impl AuditResults {
    fn new(found: crate::service::AuditPage, page: i64) -> Self {
        AuditResults {
            entries: found
                .entries
                .into_iter()
                .map(|e| AuditItem {
                    id: e.id,
                    at: e.at,
                    actor: e.actor_label,
                    action: e.action,
                    subject_type: e.subject_type,
                    subject_key: e.subject_key,
                    environment: e.environment_key,
                    before: e.before,
                    after: e.after,
                })
                .collect(),
            total: found.total,
            page,
            actors: found.actors,
        }
    }
}

/// The filter dates (`YYYY-MM-DD`, UTC) as epoch milliseconds.
#[cfg(feature = "ssr")]
mod dates {
    use crate::service::{AuditFilter, ServiceError};
    use time::{Date, Month};

    fn parse(text: &str, field: &str) -> Result<Option<Date>, ServiceError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let wrong = || ServiceError::invalid(field, "enter a date as YYYY-MM-DD");
        let mut parts = text.splitn(3, '-');
        let mut number = || parts.next().and_then(|p| p.parse::<i32>().ok()).ok_or_else(wrong);
        let (year, month, day) = (number()?, number()?, number()?);
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(wrong)?;
        let day = u8::try_from(day).map_err(|_| wrong())?;
        Date::from_calendar_date(year, month, day)
            .map(Some)
            .map_err(|_| wrong())
    }

    fn epoch_ms(date: Date) -> i64 {
        date.midnight().assume_utc().unix_timestamp() * 1000
    }

    /// The first millisecond of the day.
    pub fn day_start(text: &str, field: &str) -> Result<Option<i64>, ServiceError> {
        Ok(parse(text, field)?.map(epoch_ms))
    }

    /// The last millisecond of the day, so a range ending "today" includes all of today.
    pub fn day_end(text: &str, field: &str) -> Result<Option<i64>, ServiceError> {
        Ok(parse(text, field)?.map(|date| match date.next_day() {
            Some(next) => epoch_ms(next) - 1,
            None => i64::MAX,
        }))
    }

    /// The filter the page's form describes; the end date may not come before the start.
    pub fn filter(actor: String, subject: String, from: &str, to: &str) -> Result<AuditFilter, ServiceError> {
        let (from, to) = (day_start(from, "from")?, day_end(to, "to")?);
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(ServiceError::invalid(
                    "to",
                    "the end date is before the start date",
                ));
            }
        }
        Ok(AuditFilter {
            actor,
            subject,
            from,
            to,
        })
    }
}

/// One changed top-level field: its name, and its value before and after ("—" when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// A value as one line: text without quotes, anything else as compact JSON.
fn shown(value: Option<&Value>) -> String {
    match value {
        None => "—".into(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The top-level fields that differ between two documents, in key order. Documents that are not
/// objects compare as one field named "value".
pub fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    fn as_object<'a>(
        value: Option<&'a Value>,
        empty: &'a serde_json::Map<String, Value>,
    ) -> Option<&'a serde_json::Map<String, Value>> {
        match value {
            None => Some(empty),
            Some(Value::Object(map)) => Some(map),
            Some(_) => None,
        }
    }
    match (as_object(before, &empty), as_object(after, &empty)) {
        (Some(old), Some(new)) => {
            let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
            fields.sort();
            fields.dedup();
            fields
                .into_iter()
                .filter(|f| old.get(*f) != new.get(*f))
                .map(|f| {
                    readable_rules(f, old.get(f), new.get(f)).unwrap_or_else(|| FieldChange {
                        field: f.clone(),
                        before: shown(old.get(f)),
                        after: shown(new.get(f)),
                    })
                })
                .collect()
        }
        _ if before == after => Vec::new(),
        _ => vec![FieldChange {
            field: "value".into(),
            before: shown(before),
            after: shown(after),
        }],
    }
}

/// A change of access rules said as the flag's history says it: the mode before, then each
/// change ("No one → Some", "+ companies acme"); `None` for other fields or undecodable rules.
fn readable_rules(field: &str, before: Option<&Value>, after: Option<&Value>) -> Option<FieldChange> {
    use crate::model::describe::{access_changes, mode_name};
    use crate::model::AccessRules;
    if field != "rules" {
        return None;
    }
    let decode = |value: Option<&Value>| match value {
        None => Some(AccessRules::NoOne),
        Some(value) => serde_json::from_value::<AccessRules>(value.clone()).ok(),
    };
    let (old, new) = (decode(before)?, decode(after)?);
    Some(FieldChange {
        field: "access".into(),
        before: mode_name(&old).into(),
        after: access_changes(&old, &new).join("; "),
    })
}

fn pretty(value: &Option<Value>) -> String {
    value
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| "—".into())
}

#[component]
fn AuditEntry(entry: AuditItem) -> impl IntoView {
    let changes = changed_fields(entry.before.as_ref(), entry.after.as_ref());
    let has_documents = entry.before.is_some() || entry.after.is_some();
    view! {
        <article class="card audit-entry">
            <header>
                <strong class="action">{entry.action.clone()}</strong>
                <span>{entry.subject_type.clone()} " " <code>{entry.subject_key.clone()}</code></span>
                {entry.environment.clone().map(|env| view! { <span class="badge">{env}</span> })}
                <span class="muted who-when">{format!("{} · {}", entry.actor, datetime(entry.at))}</span>
            </header>
            {if changes.is_empty() {
                view! { <p class="muted">"No recorded field changes."</p> }.into_any()
            } else {
                view! {
                    <table class="diff">
                        <thead><tr><th>"Field"</th><th>"Before"</th><th>"After"</th></tr></thead>
                        <tbody>
                            {changes.into_iter().map(|c| view! {
                                <tr>
                                    <td><code>{c.field}</code></td>
                                    <td class="old">{c.before}</td>
                                    <td class="new">{c.after}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {has_documents.then(|| view! {
                <details>
                    <summary>"Full before and after"</summary>
                    <div class="json-pair">
                        <div><h3>"Before"</h3><pre>{pretty(&entry.before)}</pre></div>
                        <div><h3>"After"</h3><pre>{pretty(&entry.after)}</pre></div>
                    </div>
                </details>
            })}
        </article>
    }
}

/// A GET form that reopens the log on another page with the same filters.
#[component]
fn PageLink(query: AuditQuery, page: i64, label: &'static str) -> impl IntoView {
    view! {
        <form method="get" action="/audit" class="inline">
            <input type="hidden" name="member" value=query.member/>
            <input type="hidden" name="subject" value=query.subject/>
            <input type="hidden" name="from" value=query.from/>
            <input type="hidden" name="to" value=query.to/>
            <input type="hidden" name="page" value=page/>
            <button type="submit" class="secondary small">{label}</button>
        </form>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query_map = use_query_map();
    let query = move || {
        let map = query_map.read();
        let text = |name: &str| map.get(name).unwrap_or_default();
        AuditQuery {
            member: text("member"),
            subject: text("subject"),
            from: text("from"),
            to: text("to"),
            page: map.get("page").and_then(|p| p.parse().ok()).unwrap_or(0),
        }
    };
    let log = Resource::new(query, |q| audit_log(q.member, q.subject, q.from, q.to, q.page));
    view! {
        <h1>"Audit log"</h1>
        <p class="muted">"Every change to flags, segments, members and keys: who made it, when, and what it changed."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading the audit log…"</p> }>
            {move || log.get().map(|result| {
                let current = query();
                let filters = view! {
                    <form method="get" action="/audit" class="filters audit-filters">
                        <label for="member">"Who"</label>
                        <select id="member" name="member">
                            <option value="" selected=current.member.is_empty()>"Anyone"</option>
                            {result.as_ref().map(|p| p.actors.clone()).unwrap_or_default().into_iter().map(|actor| {
                                let selected = actor == current.member;
                                view! { <option value=actor.clone() selected=selected>{actor.clone()}</option> }
                            }).collect_view()}
                        </select>
                        <label for="subject">"Subject"</label>
                        <input id="subject" name="subject" type="search" value=current.subject.clone() placeholder="flag, segment or key"/>
                        <label for="from">"From"</label>
                        <input id="from" name="from" type="date" value=current.from.clone()/>
                        <label for="to">"To"</label>
                        <input id="to" name="to" type="date" value=current.to.clone()/>
                        <button type="submit" class="secondary">"Filter"</button>
                        <a href="/audit">"Clear"</a>
                    </form>
                };
                let body = match result {
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                    Ok(page) if page.total == 0 => view! {
                        <section class="card empty"><p>"No changes match these filters."</p></section>
                    }.into_any(),
                    Ok(page) => {
                        let pages = (page.total + PAGE_SIZE - 1) / PAGE_SIZE;
                        let has_newer = page.page > 0;
                        let has_older = page.page + 1 < pages;
                        view! {
                            <p class="muted">{format!("{} changes · page {} of {}", page.total, page.page + 1, pages)}</p>
                            <div class="audit-entries">
                                {page.entries.into_iter().map(|entry| view! { <AuditEntry entry=entry/> }).collect_view()}
                            </div>
                            <nav class="pager" aria-label="Pages">
                                {has_newer.then(|| view! { <PageLink query=current.clone() page=page.page - 1 label="← Newer"/> })}
                                {has_older.then(|| view! { <PageLink query=current.clone() page=page.page + 1 label="Older →"/> })}
                            </nav>
                        }.into_any()
                    }
                };
                view! { {filters} {body} }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_list_only_what_differs() {
        let before = json!({"name": "VIP", "description": "", "conditions": []});
        let after =
            json!({"name": "VIP customers", "description": "", "conditions": [{"kind": "companyList"}]});
        let changes = changed_fields(Some(&before), Some(&after));
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: "conditions".into(),
                    before: "[]".into(),
                    after: r#"[{"kind":"companyList"}]"#.into(),
                },
                FieldChange {
                    field: "name".into(),
                    before: "VIP".into(),
                    after: "VIP customers".into(),
                },
            ]
        );
    }

    #[test]
    fn a_creation_lists_every_field_as_new() {
        let after = json!({"key": "checkout", "stageId": 1});
        let changes = changed_fields(None, Some(&after));
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].before, "—");
        assert_eq!(changes[1].after, "1");
        assert!(changed_fields(None, None).is_empty());
        assert_eq!(changed_fields(Some(&json!(1)), Some(&json!(2)))[0].field, "value");
    }

    #[test]
    fn access_rules_read_as_the_history_reads_them() {
        let before = json!({"version": 2, "rules": {"mode": "some", "companies": ["acme"]}});
        let after = json!({"version": 3, "rules": {"mode": "some", "companies": ["acme", "globex"], "users": ["u-alice"]}});
        let changes = changed_fields(Some(&before), Some(&after));
        let access = changes.iter().find(|c| c.field == "access").unwrap();
        assert_eq!(access.before, "Some");
        assert!(
            access.after.contains("globex") && access.after.contains("u-alice"),
            "{access:?}"
        );
        assert!(!access.after.contains('{'), "no JSON: {access:?}");
    }
}
