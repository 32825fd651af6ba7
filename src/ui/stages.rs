//! Release stage settings (admins): the ordered list with flag counts, add, rename/recolour,
//! move up/down, delete (moving the stage's flags elsewhere), and each stage's default access
//! rules per environment, edited with the flag page's plain access form plus "No default".
//!
//! Every row posts to the same server function, so a failure names its row: the error's field
//! becomes `field:row` (see [`in_row`]) and only that row shows it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::access_editor::{AccessEditor, EditorOptions};
use super::error::{AppError, ErrorText, ErrorTextOwned};
use super::flags::AccessForm;

/// The mode value of the access form meaning "the stage sets nothing here".
const NO_DEFAULT: &str = "noDefault";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageItem {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub flags: i64,
}

/// One stage's default in one environment; `form.mode` is [`NO_DEFAULT`] when there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageDefault {
    pub stage_id: i64,
    pub environment: String,
    pub summary: String,
    pub form: AccessForm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagesData {
    pub stages: Vec<StageItem>,
    pub environments: Vec<(String, String)>,
    pub defaults: Vec<StageDefault>,
    /// The editor's suggestions per environment key.
    pub options: Vec<(String, EditorOptions)>,
}

/// Gives a field error the row it happened in, so the right row shows it.
#[cfg(feature = "ssr")]
fn in_row(error: impl Into<AppError>, row: &str) -> AppError {
    let error = error.into();
    AppError {
        field: error.field.map(|f| format!("{f}:{row}")),
        message: error.message,
        ..Default::default()
    }
}

/// The message for `field` of `row` in the latest result of `value`.
fn row_error<T, S>(value: S, field: &str, row: &str) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    let wanted = format!("{field}:{row}");
    move || match value.get() {
        Some(Err(AppError {
            field: Some(f),
            message,
            ..
        })) if f == wanted => Some(message),
        _ => None,
    }
}

/// The message of the latest failure that names no row field.
fn page_error<T, S>(value: S) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(AppError {
            field: None, message, ..
        })) => Some(message),
        _ => None,
    }
}

#[server(endpoint = "admin/stages")]
pub async fn stages() -> Result<StagesData, AppError> {
    let (service, actor) = super::server::caller()?;
    Ok(StagesData::from(service.stages_page(&actor).await?))
}

#[cfg(feature = "ssr")]
impl From<crate::service::StagesPage> for StagesData {
    fn from(page: crate::service::StagesPage) -> Self {
        let mut defaults = Vec::new();
        for (stage, _) in &page.stages {
            for environment in &page.environments {
                let rules = page
                    .defaults
                    .iter()
                    .find(|d| d.stage_id == stage.id && d.environment_id == environment.id)
                    .map(|d| &d.rules);
                let (summary, form) = match rules {
                    Some(rules) => (super::flags::access_summary(rules), AccessForm::from_rules(rules)),
                    None => (
                        "No default".to_string(),
                        AccessForm {
                            mode: NO_DEFAULT.into(),
                            ..AccessForm::from_rules(&crate::model::AccessRules::NoOne)
                        },
                    ),
                };
                defaults.push(StageDefault {
                    stage_id: stage.id,
                    environment: environment.key.to_string(),
                    summary,
                    form,
                });
            }
        }
        StagesData {
            options: page
                .options
                .into_iter()
                .map(|(key, options)| (key, EditorOptions::from(options)))
                .collect(),
            stages: page
                .stages
                .into_iter()
                .map(|(s, flags)| StageItem {
                    id: s.id,
                    name: s.name,
                    color: s.color,
                    flags,
                })
                .collect(),
            environments: page
                .environments
                .into_iter()
                .map(|e| (e.key.to_string(), e.name))
                .collect(),
            defaults,
        }
    }
}

#[server(endpoint = "admin/add_stage")]
pub async fn add_stage(name: String, color: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let sent = [("name", name.clone()), ("color", color.clone())];
    service
        .apply(&actor, crate::service::Change::AddStage { name, color })
        .await
        .map_err(|error| AppError::from(error).keeping(&sent))?;
    Ok(())
}

#[server(endpoint = "admin/update_stage")]
pub async fn update_stage(id: i64, name: String, color: String) -> Result<(), AppError> {
    use crate::service::{Change, StageRef};
    let (service, actor) = super::server::caller()?;
    let sent = [("name", name.clone()), ("color", color.clone())];
    let stage = StageRef::Id(id);
    let change = Change::UpdateStage { stage, name, color };
    service
        .apply(&actor, change)
        .await
        .map_err(|e| in_row_keeping(e, id, &sent))?;
    Ok(())
}

/// [`in_row`] for a row's refused form, keeping what it sent under the names the row reads back
/// (`name:<row>`).
#[cfg(feature = "ssr")]
fn in_row_keeping(error: impl Into<AppError>, row: i64, sent: &[(&str, String)]) -> AppError {
    let named: Vec<(String, String)> = sent
        .iter()
        .map(|(f, v)| (format!("{f}:{row}"), v.clone()))
        .collect();
    let named: Vec<(&str, String)> = named.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    in_row(error, &row.to_string()).keeping(&named)
}

#[server(endpoint = "admin/reorder_stage")]
pub async fn reorder_stage(id: i64, direction: String) -> Result<(), AppError> {
    use crate::service::{Change, Direction};
    let direction = match direction.as_str() {
        "up" => Direction::Up,
        "down" => Direction::Down,
        _ => return Err(AppError::general("a stage moves up or down").rejected_input()),
    };
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, Change::ReorderStage { id, direction })
        .await?;
    Ok(())
}

/// `move_to` is a stage id, or empty when the stage holds no flags.
#[server(endpoint = "admin/delete_stage")]
pub async fn delete_stage(id: i64, move_to: String) -> Result<(), AppError> {
    let row = id.to_string();
    let move_flags_to = match move_to.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| AppError {
            field: Some(format!("move_to:{row}")),
            message: "choose one of the other stages".into(),
            ..Default::default()
        })?),
    };
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::DeleteStage { id, move_flags_to };
    service.apply(&actor, change).await.map_err(|e| in_row(e, &row))?;
    Ok(())
}

#[server(endpoint = "admin/set_stage_default")]
pub async fn set_stage_default(stage_id: i64, environment: String, form: AccessForm) -> Result<(), AppError> {
    use crate::service::{Change, StageRef};
    let row = format!("{stage_id}-{environment}");
    let rules = match form.mode.as_str() {
        NO_DEFAULT => None,
        _ => Some(form.to_rules().map_err(|e| in_row(e.rejected_input(), &row))?),
    };
    let (service, actor) = super::server::caller()?;
    let stage = StageRef::Id(stage_id);
    let change = Change::SetStageDefault {
        stage,
        environment,
        rules,
    };
    service.apply(&actor, change).await.map_err(|e| in_row(e, &row))?;
    Ok(())
}

#[component]
pub fn StagesPage() -> impl IntoView {
    let add = ServerAction::<AddStage>::new();
    let update = ServerAction::<UpdateStage>::new();
    let reorder = ServerAction::<ReorderStage>::new();
    let delete = ServerAction::<DeleteStage>::new();
    let defaults = ServerAction::<SetStageDefault>::new();
    // A refused default keeps its typed form; only successes reload the page's data.
    let default_saves = super::error::success_count(defaults.value());
    let data = Resource::new(
        move || {
            (
                add.version().get(),
                update.version().get(),
                reorder.version().get(),
                delete.version().get(),
                default_saves.get(),
            )
        },
        |_| stages(),
    );
    let add_value = add.value();
    let general_error = move || {
        [
            page_error(update.value())(),
            page_error(reorder.value())(),
            page_error(delete.value())(),
            page_error(defaults.value())(),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    view! {
        <h1>"Release stages"</h1>
        <p class="muted">
            "Flags move through these stages in order. A stage's default access rules are copied onto a flag "
            "when it moves into the stage; changing them never rewrites flags already there."
        </p>
        <ErrorText id="stages-error" message=Signal::derive(general_error)/>
        <Suspense fallback=|| view! { <p class="muted">"Loading the stages…"</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                // Only admins read the stages' settings, so only they see the forms.
                Ok(data) => {
                    let count = data.stages.len();
                    let all: Vec<(i64, String)> = data.stages.iter().map(|s| (s.id, s.name.clone())).collect();
                    view! {
                        <section class="card">
                            <table class="stage-list">
                                <thead><tr><th>"Order"</th><th>"Stage"</th><th>"Flags"</th><th>"Name and colour"</th><th>"Delete"</th></tr></thead>
                                <tbody>
                                    {data.stages.iter().enumerate().map(|(index, stage)| view! {
                                        <StageRow stage=stage.clone() first=index == 0 last=index + 1 == count others=all.clone() update reorder delete/>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                        <h2>"Default access rules"</h2>
                        {data.stages.iter().map(|stage| {
                            let rows: Vec<(String, StageDefault)> = data
                                .defaults
                                .iter()
                                .filter(|d| d.stage_id == stage.id)
                                .map(|d| {
                                    let name = data
                                        .environments
                                        .iter()
                                        .find(|(key, _)| *key == d.environment)
                                        .map(|(_, name)| name.clone())
                                        .unwrap_or_else(|| d.environment.clone());
                                    (name, d.clone())
                                })
                                .collect();
                            view! {
                                <section class="card stage-defaults">
                                    <h3><span class="swatch" style=format!("background:{}", stage.color)></span>{stage.name.clone()}</h3>
                                    {rows.into_iter().map(|(environment_name, default)| {
                                        let options = data
                                            .options
                                            .iter()
                                            .find(|(key, _)| *key == default.environment)
                                            .map(|(_, o)| o.clone())
                                            .unwrap_or_default();
                                        view! { <StageDefaultEditor environment_name default options action=defaults/> }
                                    }).collect_view()}
                                </section>
                            }
                        }).collect_view()}
                        <section class="card narrow-card">
                            <h2>"Add a stage"</h2>
                            <ActionForm action=add>
                                <label for="stage-name">"Name"</label>
                                <input id="stage-name" name="name" value=super::error::sent(add_value, "name") required maxlength="60" aria-describedby="stage-name-error"/>
                                <ErrorText id="stage-name-error" message=Signal::derive(super::error::field_error(add_value, "name"))/>
                                <label for="stage-color">"Colour"</label>
                                <input id="stage-color" name="color" type="color" value=Some(super::error::sent(add_value, "color")).filter(|c| !c.is_empty()).unwrap_or_else(|| "#2563eb".into()) aria-describedby="stage-color-error"/>
                                <ErrorText id="stage-color-error" message=Signal::derive(super::error::field_error(add_value, "color"))/>
                                <ErrorText id="stage-add-error" message=Signal::derive(super::error::form_error(add_value, &["name", "color"]))/>
                                <button type="submit" disabled=move || add.pending().get()>"Add stage"</button>
                            </ActionForm>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[component]
fn StageRow(
    stage: StageItem,
    first: bool,
    last: bool,
    /// Every stage as (id, name), for the "move its flags to" choice.
    others: Vec<(i64, String)>,
    update: ServerAction<UpdateStage>,
    reorder: ServerAction<ReorderStage>,
    delete: ServerAction<DeleteStage>,
) -> impl IntoView {
    let row = stage.id.to_string();
    let name_id = format!("stage-{}-name", stage.id);
    let name_error_id = format!("{name_id}-error");
    let color_id = format!("stage-{}-color", stage.id);
    let color_error_id = format!("{color_id}-error");
    let move_id = format!("stage-{}-move", stage.id);
    let move_error_id = format!("{move_id}-error");
    let up_label = format!("Move {} up", stage.name);
    let down_label = format!("Move {} down", stage.name);
    let name_label = format!("Name of {}", stage.name);
    let color_label = format!("Colour of {}", stage.name);
    let delete_label = format!("Delete {}", stage.name);
    let flags_text = match stage.flags {
        1 => "1 flag".to_string(),
        n => format!("{n} flags"),
    };
    let others: Vec<(i64, String)> = others.into_iter().filter(|(id, _)| *id != stage.id).collect();
    let move_choice = (stage.flags > 0).then(|| {
        let describedby = move_error_id.clone();
        view! {
            <label for=move_id.clone()>"Move its flags to"</label>
            <select id=move_id name="move_to" aria-describedby=describedby>
                <option value="">"Choose a stage"</option>
                {others.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
            </select>
        }
    });
    let no_move = move_choice.is_none();
    let name_error = Signal::derive(row_error(update.value(), "name", &row));
    let color_error = Signal::derive(row_error(update.value(), "color", &row));
    let move_error = Signal::derive(row_error(delete.value(), "move_to", &row));
    let (id, name, color) = (stage.id, stage.name.clone(), stage.color.clone());
    // What a refused save of this row sent, shown again (also without JavaScript).
    let typed = |field: &str| {
        Some(super::error::sent(update.value(), &format!("{field}:{row}"))).filter(|t| !t.is_empty())
    };
    let name_value = typed("name").unwrap_or(stage.name);
    let color_value = typed("color").unwrap_or_else(|| stage.color.clone());
    let (name_describedby, color_describedby) = (name_error_id.clone(), color_error_id.clone());
    view! {
        <tr>
            <td class="reorder">
                <ActionForm action=reorder attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="direction" value="up"/>
                    <button type="submit" class="secondary small" disabled=first aria-label=up_label>"↑"</button>
                </ActionForm>
                <ActionForm action=reorder attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="direction" value="down"/>
                    <button type="submit" class="secondary small" disabled=last aria-label=down_label>"↓"</button>
                </ActionForm>
            </td>
            <td><span class="swatch" style=format!("background:{color}")></span><strong>{name}</strong></td>
            <td><a href=format!("/flags?stage={id}")>{flags_text}</a></td>
            <td>
                <ActionForm action=update attr:class="inline stage-edit">
                    <input type="hidden" name="id" value=id/>
                    <label for=name_id.clone() class="sr-only">{name_label}</label>
                    <input id=name_id name="name" value=name_value required maxlength="60" aria-describedby=name_describedby/>
                    <label for=color_id.clone() class="sr-only">{color_label}</label>
                    <input id=color_id name="color" type="color" value=color_value aria-describedby=color_describedby/>
                    <button type="submit" class="secondary small">"Save"</button>
                </ActionForm>
                <ErrorTextOwned id=name_error_id message=name_error/>
                <ErrorTextOwned id=color_error_id message=color_error/>
            </td>
            <td>
                <ActionForm action=delete attr:class="inline stage-delete">
                    <input type="hidden" name="id" value=id/>
                    {move_choice}
                    {no_move.then(|| view! { <input type="hidden" name="move_to" value=""/> })}
                    <button type="submit" class="danger small" aria-label=delete_label>"Delete"</button>
                </ActionForm>
                <ErrorTextOwned id=move_error_id message=move_error/>
            </td>
        </tr>
    }
}

#[component]
fn StageDefaultEditor(
    environment_name: String,
    default: StageDefault,
    options: EditorOptions,
    action: ServerAction<SetStageDefault>,
) -> impl IntoView {
    let row = format!("{}-{}", default.stage_id, default.environment);
    let value = action.value();
    // This row's errors, with the row suffix taken off their field names.
    let error = {
        let suffix = format!(":{row}");
        Signal::derive(move || {
            let error = value.get()?.err()?;
            let field = error.field.as_deref()?.strip_suffix(suffix.as_str())?.to_string();
            Some(AppError {
                field: Some(field),
                message: error.message,
                ..AppError::default()
            })
        })
    };
    let legend = format!("Default in {environment_name}");
    let submit = format!("Save default for {environment_name}");
    let (stage_id, environment) = (default.stage_id, default.environment);
    view! {
        <details class="stage-default">
            <summary>{environment_name} ": " <span class="muted">{default.summary}</span></summary>
            <ActionForm action=action>
                <input type="hidden" name="stage_id" value=stage_id/>
                <input type="hidden" name="environment" value=environment.clone()/>
                <p class="muted small">{legend}</p>
                <AccessEditor
                    form=default.form
                    prefix=format!("default-{row}")
                    environment=environment
                    options=options
                    error=error
                    modes=vec![(NO_DEFAULT, "No default"), ("noOne", "No one"), ("everyone", "Everyone"), ("some", "Some")]
                />
                <button type="submit" disabled=move || action.pending().get()>{submit}</button>
            </ActionForm>
        </details>
    }
}
