//! Segments: the list (conditions, the flags that use each one, how many known companies of an
//! environment match), creation and editing.
//!
//! The conditions editor is a plain form so it works without JavaScript: one list of company ids
//! and a few company-attribute rows, all ANDed. The match count is computed on the server from the
//! companies SDKs have reported, by compiling the segment exactly as a flag that targets it would
//! be compiled, so the number agrees with what the evaluation API answers.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::error::{field_error, message_for, AppError, ErrorText};
use super::flags::split_list;
use crate::model::{ContextOperator, SegmentCondition};

/// Flags listed per segment on the list; the rest are counted.
const USED_BY_SHOWN: usize = 5;

/// Attribute rows the form always offers (more when a segment already has more conditions).
pub const ATTRIBUTE_ROWS: usize = 3;

/// One company-attribute condition as the form posts it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionRow {
    #[serde(default)]
    pub attribute: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub value: String,
}

/// The conditions editor's fields: company ids (one per line or comma-separated) and rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionsForm {
    pub companies: String,
    pub rows: Vec<ConditionRow>,
}

fn wrong(field: String, message: &str) -> AppError {
    AppError {
        field: Some(field),
        message: message.into(),
        ..Default::default()
    }
}

impl ConditionsForm {
    /// Fills the form from stored conditions, padded with empty rows. Several company lists (which
    /// only an import can create) are shown as one; the flag says so, since saving joins them.
    pub fn from_conditions(conditions: &[SegmentCondition]) -> (Self, bool) {
        let mut companies = Vec::new();
        let mut lists = 0;
        let mut rows = Vec::new();
        for condition in conditions {
            match condition {
                SegmentCondition::CompanyList { companies: ids } => {
                    lists += 1;
                    companies.extend(ids.iter().cloned());
                }
                SegmentCondition::CompanyAttribute {
                    attribute,
                    operator,
                    values,
                } => rows.push(ConditionRow {
                    attribute: attribute.clone(),
                    operator: operator.as_str().to_string(),
                    value: values.join(", "),
                }),
            }
        }
        let blank = ConditionRow {
            operator: ContextOperator::Is.as_str().to_string(),
            ..Default::default()
        };
        rows.resize(rows.len().max(ATTRIBUTE_ROWS), blank);
        let form = ConditionsForm {
            companies: companies.join("\n"),
            rows,
        };
        (form, lists > 1)
    }

    /// The segment's conditions, or the field that is wrong (`companies`, `rows[i][operator]`, …).
    /// Rows left blank are ignored; no conditions at all means every company.
    pub fn to_conditions(&self) -> Result<Vec<SegmentCondition>, AppError> {
        let mut conditions = Vec::new();
        let companies = split_list(&self.companies);
        if !companies.is_empty() {
            conditions.push(SegmentCondition::CompanyList { companies });
        }
        for (i, row) in self.rows.iter().enumerate() {
            let attribute = row.attribute.trim();
            if attribute.is_empty() {
                if !row.value.trim().is_empty() {
                    return Err(wrong(
                        format!("rows[{i}][attribute]"),
                        "enter the company attribute this value is for",
                    ));
                }
                continue;
            }
            let operator = ContextOperator::ALL
                .into_iter()
                .find(|op| op.as_str() == row.operator.trim())
                .ok_or_else(|| wrong(format!("rows[{i}][operator]"), "choose one of the operators"))?;
            let values =
                row_values(operator, &row.value).map_err(|m| wrong(format!("rows[{i}][value]"), m))?;
            conditions.push(SegmentCondition::CompanyAttribute {
                attribute: attribute.to_string(),
                operator,
                values,
            });
        }
        Ok(conditions)
    }
}

/// The values an operator takes: none, a list, a number (GT, LT and the "days ago" pair) or one
/// text.
fn row_values(operator: ContextOperator, text: &str) -> Result<Vec<String>, &'static str> {
    let text = text.trim();
    match operator {
        ContextOperator::Set
        | ContextOperator::NotSet
        | ContextOperator::IsTrue
        | ContextOperator::IsFalse => Ok(vec![]),
        ContextOperator::AnyOf | ContextOperator::NotAnyOf => {
            let values = split_list(text);
            if values.is_empty() {
                Err("enter at least one value (separate several with commas)")
            } else {
                Ok(values)
            }
        }
        ContextOperator::Gt | ContextOperator::Lt | ContextOperator::After | ContextOperator::Before => {
            if text.parse::<f64>().is_ok_and(f64::is_finite) {
                Ok(vec![text.to_string()])
            } else {
                Err("enter a number")
            }
        }
        _ if text.is_empty() => Err("enter a value"),
        _ => Ok(vec![text.to_string()]),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentListItem {
    pub key: String,
    pub name: String,
    pub description: String,
    pub conditions: usize,
    /// Flags whose access rules reference the segment in some environment, by key.
    pub used_by: Vec<String>,
    /// Known companies of the chosen environment that are in the segment.
    pub matching: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentList {
    pub segments: Vec<SegmentListItem>,
    pub environments: Vec<(String, String)>,
    pub environment: String,
    /// Known companies of the chosen environment.
    pub companies: usize,
    /// When they were counted (epoch ms): counts are kept a while between views.
    pub counted_at: i64,
}

#[server(endpoint = "read/segments")]
pub async fn list_segments(environment: String) -> Result<SegmentList, AppError> {
    let environment = super::server::working_environment(environment).await?;
    let (service, actor) = super::server::caller()?;
    Ok(SegmentList::from(
        service.segment_list(&actor, &environment).await?,
    ))
}

#[cfg(feature = "ssr")]
impl From<crate::service::SegmentList> for SegmentList {
    fn from(list: crate::service::SegmentList) -> Self {
        SegmentList {
            segments: list
                .segments
                .into_iter()
                .map(|(record, used_by, matching)| SegmentListItem {
                    key: record.segment.key.to_string(),
                    name: record.segment.name,
                    description: record.description,
                    conditions: record.segment.conditions.len(),
                    used_by,
                    matching,
                })
                .collect(),
            environments: list
                .environments
                .into_iter()
                .map(|e| (e.key.to_string(), e.name))
                .collect(),
            environment: list.environment.key.to_string(),
            companies: list.companies,
            counted_at: list.counted_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentView {
    pub key: String,
    pub name: String,
    pub description: String,
    pub form: ConditionsForm,
    /// The stored segment has several company lists; saving the form joins them into one.
    pub joined_lists: bool,
    pub used_by: Vec<String>,
}

#[server(endpoint = "read/segment")]
pub async fn segment_detail(key: String) -> Result<SegmentView, AppError> {
    let (service, actor) = super::server::caller()?;
    let (record, used_by) = service.segment_page(&actor, &key).await?;
    let (form, joined_lists) = ConditionsForm::from_conditions(&record.segment.conditions);
    Ok(SegmentView {
        key: record.segment.key.to_string(),
        name: record.segment.name,
        description: record.description,
        form,
        joined_lists,
        used_by,
    })
}

/// The live count's answer: `(environment name, matching, known)` per environment, or why the
/// unsaved conditions can't be counted yet.
pub type SegmentPreview = Result<Vec<(String, usize, usize)>, String>;

/// For the editor's live count: how many known companies of each environment the unsaved
/// conditions match.
#[server(endpoint = "read/preview_segment")]
pub async fn preview_segment(
    #[server(default)] companies: String,
    #[server(default)] rows: Vec<ConditionRow>,
) -> Result<SegmentPreview, AppError> {
    let (service, actor) = super::server::caller()?;
    let conditions = match (ConditionsForm { companies, rows }).to_conditions() {
        Ok(conditions) => conditions,
        Err(problem) => return Ok(Err(problem.message)),
    };
    match service.preview_segment(&actor, conditions).await {
        Ok(counts) => Ok(Ok(counts)),
        Err(crate::service::ServiceError::Invalid { message, .. }) => Ok(Err(message)),
        Err(error) => Err(error.into()),
    }
}

/// The live count's line.
fn preview_text(answer: Option<Result<SegmentPreview, AppError>>) -> String {
    match answer {
        None => "Matching companies are counted here as you edit the conditions.".into(),
        Some(Ok(Ok(counts))) => {
            let parts: Vec<String> = counts
                .iter()
                .map(|(environment, matching, known)| format!("{environment}: {matching} of {known}"))
                .collect();
            format!("Known companies matching: {}.", parts.join(" · "))
        }
        Some(Ok(Err(why))) => format!("Can't count yet: {why}"),
        Some(Err(error)) => format!("Could not count: {}", error.message),
    }
}

/// Posts the unsaved conditions to [`preview_segment`] on every change inside the form.
fn preview_conditions(ev: &leptos::ev::Event, preview: ServerAction<PreviewSegment>) {
    use leptos::form::FromFormData;
    let Some(data) = super::access_editor::form_data_of(ev) else {
        return;
    };
    if let Ok(args) = PreviewSegment::from_form_data(&data) {
        preview.dispatch(args);
    }
}

#[server(endpoint = "edit/create_segment")]
pub async fn create_segment(
    key: String,
    name: String,
    #[server(default)] description: String,
    #[server(default)] companies: String,
    #[server(default)] rows: Vec<ConditionRow>,
) -> Result<(), AppError> {
    let form = ConditionsForm { companies, rows };
    // What was sent, for a refused form to show again (without the bundle it is a new page).
    let conditions = serde_json::to_string(&form).unwrap_or_default();
    let sent = [
        ("key", key.clone()),
        ("name", name.clone()),
        ("description", description.clone()),
        ("conditions", conditions),
    ];
    save_segment(key, name, description, form, true)
        .await
        .map_err(|error| error.keeping(&sent))?;
    leptos_axum::redirect("/segments");
    Ok(())
}

#[server(endpoint = "edit/update_segment")]
pub async fn update_segment(
    key: String,
    name: String,
    #[server(default)] description: String,
    #[server(default)] companies: String,
    #[server(default)] rows: Vec<ConditionRow>,
) -> Result<(), AppError> {
    save_segment(key, name, description, ConditionsForm { companies, rows }, false).await
}

/// Saves the form through the change pipeline (which compiles every environment and writes the
/// audit entry). A taken key is reported on the key field.
#[cfg(feature = "ssr")]
async fn save_segment(
    key: String,
    name: String,
    description: String,
    form: ConditionsForm,
    create: bool,
) -> Result<(), AppError> {
    let conditions = form.to_conditions().map_err(AppError::rejected_input)?;
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SaveSegment {
        key,
        name,
        description,
        conditions,
        create,
    };
    service.apply(&actor, change).await.map_err(|error| {
        let taken = matches!(error, crate::service::ServiceError::Conflict(_));
        let mut error = AppError::from(error);
        if taken {
            error.field = Some("key".into());
        }
        error
    })?;
    Ok(())
}

/// Failures the form shows at the bottom: no field, or a field it has no place for.
fn general_message(error: Signal<Option<AppError>>) -> impl Fn() -> Option<String> + Send + Sync {
    move || {
        error
            .get()
            .filter(|e| match e.field.as_deref() {
                None => true,
                Some(f) => {
                    !(["key", "name", "description", "companies"].contains(&f) || f.starts_with("rows["))
                }
            })
            .map(|e| e.message)
    }
}

#[component]
pub fn SegmentsPage() -> impl IntoView {
    let query = use_query_map();
    let environment = move || query.read().get("env").unwrap_or_default();
    let list = Resource::new(environment, list_segments);
    view! {
        <div class="page-head">
            <h1>"Segments"</h1>
            <a class="button" href="/segments/new">"Create segment"</a>
        </div>
        <p class="muted">"Reusable groups of companies. Flags target a segment by its key; a change here applies to every flag that uses it."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading segments…"</p> }>
            {move || list.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(list) if list.segments.is_empty() => view! {
                    <section class="card empty">
                        <p>"No segments yet. A segment names a group of companies, by id or by attributes such as plan or region, so flags can target it."</p>
                        <a class="button" href="/segments/new">"Create your first segment"</a>
                    </section>
                }.into_any(),
                Ok(list) => {
                    let environment_name = list
                        .environments
                        .iter()
                        .find(|(k, _)| *k == list.environment)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_default();
                    view! {
                        <form method="get" action="/segments" class="filters">
                            <label for="env">"Count companies in"</label>
                            <select id="env" name="env">
                                {list.environments.iter().map(|(k, n)| view! { <option value=k.clone() selected=*k == list.environment>{n.clone()}</option> }).collect_view()}
                            </select>
                            <button type="submit" class="secondary">"Show"</button>
                        </form>
                        <section class="card">
                            <table class="segments">
                                <thead><tr><th>"Segment"</th><th>"Conditions"</th><th>"Used by"</th><th>{format!("Matching companies in {environment_name}")}</th></tr></thead>
                                <tbody>
                                    {list.segments.into_iter().map(|s| view! {
                                        <tr>
                                            <td>
                                                <a href=format!("/segments/{}", s.key)>{s.name.clone()}</a><br/>
                                                <code class="muted">{s.key.clone()}</code>
                                                {(!s.description.is_empty()).then(|| view! { <p class="muted description">{s.description.clone()}</p> })}
                                            </td>
                                            <td>{match s.conditions { 0 => "none (every company)".to_string(), 1 => "1 condition".to_string(), n => format!("{n} conditions") }}</td>
                                            <td>
                                                {if s.used_by.is_empty() {
                                                    view! { <span class="muted">"no flags"</span> }.into_any()
                                                } else {
                                                    let more = s.used_by.len().saturating_sub(USED_BY_SHOWN);
                                                    view! {
                                                        <ul class="plain used-by">
                                                            {s.used_by.into_iter().take(USED_BY_SHOWN).map(|flag| view! { <li><a href=format!("/flags/{flag}")>{flag.clone()}</a></li> }).collect_view()}
                                                            {(more > 0).then(|| view! { <li class="muted">{format!("and {more} more")}</li> })}
                                                        </ul>
                                                    }.into_any()
                                                }}
                                            </td>
                                            <td class="count">{format!("{} of {}", s.matching, list.companies)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <p class="muted">{format!("Companies counted {}.", super::format::datetime(list.counted_at))}</p>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// The conditions part of the segment form, shared by creation and editing.
#[component]
fn ConditionFields(form: ConditionsForm, error: Signal<Option<AppError>>) -> impl IntoView {
    let companies_error = message_for(error, "companies".into());
    view! {
        <fieldset>
            <legend>"Conditions (a company must meet all of them)"</legend>
            <label for="companies">"Company ids (one per line; leave empty to match by attributes only)"</label>
            <textarea id="companies" name="companies" rows="3" aria-describedby="companies-error">{form.companies}</textarea>
            <ErrorText id="companies-error" message=companies_error/>
            {form.rows.into_iter().enumerate().map(|(i, row)| {
                let row_error = Signal::derive(move || {
                    let prefix = format!("rows[{i}]");
                    error.get().filter(|e| e.field.as_deref().is_some_and(|f| f.starts_with(&prefix))).map(|e| e.message)
                });
                let error_id = format!("row-{i}-error");
                let shown_id = error_id.clone();
                view! {
                    <div class="condition-row">
                        <div>
                            <label for=format!("row-{i}-attribute")>{format!("Attribute {}", i + 1)}</label>
                            <input id=format!("row-{i}-attribute") name=format!("rows[{i}][attribute]") value=row.attribute placeholder="plan" aria-describedby=error_id.clone()/>
                        </div>
                        <div>
                            <label for=format!("row-{i}-operator")>{format!("Operator {}", i + 1)}</label>
                            <select id=format!("row-{i}-operator") name=format!("rows[{i}][operator]")>
                                {ContextOperator::ALL.into_iter().map(|op| view! { <option value=op.as_str() selected=op.as_str() == row.operator>{op.as_str()}</option> }).collect_view()}
                            </select>
                        </div>
                        <div>
                            <label for=format!("row-{i}-value")>{format!("Value {}", i + 1)}</label>
                            <input id=format!("row-{i}-value") name=format!("rows[{i}][value]") value=row.value placeholder="enterprise" aria-describedby=error_id.clone()/>
                        </div>
                    </div>
                    <Show when=move || row_error.get().is_some()>
                        <p class="error" id=shown_id.clone() role="alert">{move || row_error.get().unwrap_or_default()}</p>
                    </Show>
                }
            }).collect_view()}
            <p class="muted">"ANY_OF and NOT_ANY_OF take several values separated by commas; SET, NOT_SET, IS_TRUE and IS_FALSE take none; AFTER and BEFORE take a number of days."</p>
        </fieldset>
    }
}

#[component]
pub fn NewSegmentPage() -> impl IntoView {
    let action = ServerAction::<CreateSegment>::new();
    let value = action.value();
    let error = Signal::derive(move || value.get().and_then(Result::err));
    // A refused form without the bundle comes back as a new page: it shows what was sent.
    let typed = move |field: &'static str| super::error::sent(value, field);
    let form = serde_json::from_str::<ConditionsForm>(&typed("conditions"))
        .unwrap_or_else(|_| ConditionsForm::from_conditions(&[]).0);
    let preview = ServerAction::<PreviewSegment>::new();
    view! {
        <h1>"Create segment"</h1>
        <section class="card narrow-card wide-form" on:change=move |ev| preview_conditions(&ev, preview)>
            <ActionForm action=action>
                <label for="name">"Name"</label>
                <input id="name" name="name" value=typed("name") required aria-describedby="name-error"/>
                <ErrorText id="name-error" message=Signal::derive(field_error(value, "name"))/>
                <label for="key">"Key (used in access rules; letters, digits, - _ . ; cannot change later)"</label>
                <input id="key" name="key" value=typed("key") required aria-describedby="key-error"/>
                <ErrorText id="key-error" message=Signal::derive(field_error(value, "key"))/>
                <label for="description">"Description"</label>
                <textarea id="description" name="description" rows="2" aria-describedby="description-error">{typed("description")}</textarea>
                <ErrorText id="description-error" message=Signal::derive(field_error(value, "description"))/>
                <ConditionFields form=form error=error/>
                <p class="muted" id="segment-count" aria-live="polite">{move || preview_text(preview.value().get())}</p>
                <ErrorText id="form-error" message=Signal::derive(general_message(error))/>
                <button type="submit" disabled=move || action.pending().get()>"Create segment"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn SegmentPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || params.read().get("key").unwrap_or_default();
    let save = ServerAction::<UpdateSegment>::new();
    let value = save.value();
    let error = Signal::derive(move || value.get().and_then(Result::err));
    // Reloads after a successful save only, so a refused save keeps what was typed.
    let saves = super::error::success_count(save.value());
    let detail = Resource::new(move || (key(), saves.get()), |(key, _)| segment_detail(key));
    let preview = ServerAction::<PreviewSegment>::new();
    view! {
        <p><a href="/segments">"← All segments"</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading the segment…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(segment) => view! {
                    <div class="page-head">
                        <h1>{segment.name.clone()}</h1>
                        <code>{segment.key.clone()}</code>
                    </div>
                    <p class="muted">
                        {if segment.used_by.is_empty() {
                            "No flag uses this segment yet.".to_string()
                        } else {
                            format!("Used by {}.", segment.used_by.join(", "))
                        }}
                    </p>
                    <section class="card narrow-card wide-form" on:change=move |ev| preview_conditions(&ev, preview)>
                        <ActionForm action=save>
                            <input type="hidden" name="key" value=segment.key.clone()/>
                            <label for="name">"Name"</label>
                            <input id="name" name="name" required value=segment.name.clone() aria-describedby="name-error"/>
                            <ErrorText id="name-error" message=Signal::derive(field_error(value, "name"))/>
                            <label for="description">"Description"</label>
                            <textarea id="description" name="description" rows="2" aria-describedby="description-error">{segment.description.clone()}</textarea>
                            <ErrorText id="description-error" message=Signal::derive(field_error(value, "description"))/>
                            {segment.joined_lists.then(|| view! {
                                <p class="muted">"This segment has several company lists (from an import); saving joins them into one list."</p>
                            })}
                            <ConditionFields form=segment.form.clone() error=error/>
                            <p class="muted" id="segment-count" aria-live="polite">{move || preview_text(preview.value().get())}</p>
                            <ErrorText id="form-error" message=Signal::derive(general_message(error))/>
                            <button type="submit" disabled=move || save.pending().get()>{move || if save.pending().get() { "Saving…" } else { "Save segment" }}</button>
                        </ActionForm>
                        <Show when=move || matches!(value.get(), Some(Ok(())))>
                            <p class="notice" role="status">"Saved. Flags that use this segment now use the new conditions."</p>
                        </Show>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(attribute: &str, operator: &str, value: &str) -> ConditionRow {
        ConditionRow {
            attribute: attribute.into(),
            operator: operator.into(),
            value: value.into(),
        }
    }

    #[test]
    fn the_form_round_trips_conditions() {
        let form = ConditionsForm {
            companies: "acme\nglobex, acme".into(),
            rows: vec![
                row("plan", "ANY_OF", "pro, enterprise"),
                row("", "IS", ""),
                row("seats", "GT", "10"),
            ],
        };
        let conditions = form.to_conditions().unwrap();
        assert_eq!(conditions.len(), 3);
        assert_eq!(
            conditions[0],
            SegmentCondition::CompanyList {
                companies: vec!["acme".into(), "globex".into()]
            }
        );
        let (again, joined) = ConditionsForm::from_conditions(&conditions);
        assert!(!joined);
        assert_eq!(again.rows.len(), ATTRIBUTE_ROWS);
        assert_eq!(again.to_conditions().unwrap(), conditions);
    }

    #[test]
    fn bad_rows_name_their_field() {
        let field = |rows: Vec<ConditionRow>| {
            ConditionsForm {
                companies: String::new(),
                rows,
            }
            .to_conditions()
            .unwrap_err()
            .field
            .unwrap()
        };
        assert_eq!(field(vec![row("plan", "SOMETIMES", "pro")]), "rows[0][operator]");
        assert_eq!(
            field(vec![row("", "IS", ""), row("seats", "GT", "many")]),
            "rows[1][value]"
        );
        assert_eq!(field(vec![row("", "IS", "pro")]), "rows[0][attribute]");
        assert_eq!(field(vec![row("plan", "ANY_OF", " , ")]), "rows[0][value]");
    }

    #[test]
    fn operators_without_values_take_none() {
        let form = ConditionsForm {
            companies: String::new(),
            rows: vec![row("trial", "IS_TRUE", "ignored")],
        };
        assert_eq!(
            form.to_conditions().unwrap(),
            vec![SegmentCondition::CompanyAttribute {
                attribute: "trial".into(),
                operator: ContextOperator::IsTrue,
                values: vec![],
            }]
        );
    }
}
