//! Flags: the list (search, stage filter, paging on the server), creation, and the flag page with
//! the per-environment access editor, version history with rollback, and stage moves.
//!
//! The access editor is a plain form, so it works without JavaScript: companies, users and
//! segments as lists, plus one attribute rule with a sticky rollout percentage.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::confirm::{ConfirmActions, ConfirmDialog, Done, OtherEnvironment, Pending, Subject};
use super::error::{field_error, form_error, success_count, AppError, ErrorText, Notice};
use super::flag_summary::{
    EnvironmentAccess, FlagDetails, FlagDetailsCard, FlagHeading, FlagSummary, SaveFlagDetails,
};
use super::format::datetime;
use super::plans::{PlanActions, PlanCard, PlanCardView};
use super::requests::{RequestActions, RequestItem, RequestsCard, ReviewFields};
use super::schedule::{CancelScheduled, ScheduleFlagChange, ScheduledChanges, ScheduledItem};
use super::usage::UsageCard;
#[cfg(feature = "ssr")]
use crate::model::{describe::access_changes, AccessRules, SegmentKey};

/// Flags per page of the list.
pub const PAGE_SIZE: usize = 50;

#[cfg(feature = "ssr")]
pub use super::format::access_summary;

pub(crate) use super::access_editor::{split_list, AccessForm};
use super::access_editor::{AccessCount, AccessEditor, EditorOptions, PreviewAccess};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagListItem {
    pub key: String,
    pub name: String,
    pub stage: String,
    pub stage_color: String,
    pub archived: bool,
    pub updated_at: i64,
    pub updated_by: String,
    pub owner: String,
    pub access: Vec<(String, String)>,
    /// The running release plans' progress ("Standard rollout 2/4 in Production"), if any.
    pub plans: Vec<String>,
    /// When any environment last checked it (epoch ms).
    pub last_checked: Option<i64>,
    /// Checks per day over the last [`SPARK_DAYS`] days, oldest first (empty: none).
    pub checks: Vec<i64>,
}

/// Days of the flags list's sparklines.
pub const SPARK_DAYS: u32 = 14;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagPage {
    pub flags: Vec<FlagListItem>,
    pub total: usize,
    pub page: usize,
    pub stages: Vec<(i64, String, String)>,
    pub members: Vec<(i64, String)>,
    /// The board: per stage, in release order, how many flags match and the first of them.
    pub columns: Vec<BoardColumn>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoardColumn {
    pub stage_id: i64,
    pub total: usize,
    pub flags: Vec<FlagListItem>,
}

/// Most flags a board column shows; the list (filtered by the stage) pages through the rest.
#[cfg(feature = "ssr")]
pub const BOARD_COLUMN_SIZE: usize = 50;

#[server(endpoint = "read/flags")]
pub async fn list_flags(
    search: String,
    stage: Option<i64>,
    owner: Option<i64>,
    archived: bool,
    page: usize,
    board: bool,
) -> Result<FlagPage, AppError> {
    let (service, actor) = super::server::caller()?;
    let filter = crate::service::FlagFilter {
        search,
        stage,
        owner,
        archived,
    };
    let mut shown = match board {
        true => board_columns(&service, &actor, filter).await?,
        false => FlagPage::new(service.flag_list(&actor, &filter, page, PAGE_SIZE).await?, page),
    };
    shown.add_plans(&service, &actor).await?;
    shown.add_usage(&service, &actor).await?;
    Ok(shown)
}

/// The board's columns: each stage's own count and first flags, from the database.
#[cfg(feature = "ssr")]
async fn board_columns(
    service: &crate::service::Service,
    actor: &crate::service::Actor,
    filter: crate::service::FlagFilter,
) -> Result<FlagPage, AppError> {
    let first = service.flag_list(actor, &filter, 0, 0).await?;
    let mut page = FlagPage::new(first, 0);
    for (stage_id, ..) in page.stages.clone() {
        if filter.stage.is_some_and(|s| s != stage_id) {
            continue;
        }
        let only = crate::service::FlagFilter {
            stage: Some(stage_id),
            ..filter.clone()
        };
        let column = FlagPage::new(service.flag_list(actor, &only, 0, BOARD_COLUMN_SIZE).await?, 0);
        page.columns.push(BoardColumn {
            stage_id,
            total: column.total,
            flags: column.flags,
        });
    }
    Ok(page)
}

#[cfg(feature = "ssr")]
impl FlagPage {
    /// Notes when each shown flag was last checked and its checks per day (sparkline).
    async fn add_usage(
        &mut self,
        service: &crate::service::Service,
        actor: &crate::service::Actor,
    ) -> Result<(), AppError> {
        let items: Vec<&mut FlagListItem> = self
            .flags
            .iter_mut()
            .chain(self.columns.iter_mut().flat_map(|c| c.flags.iter_mut()))
            .collect();
        let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        let last = service.last_checked(actor, Some(&keys)).await?;
        let mut checks = service.daily_checks(actor, &keys, SPARK_DAYS).await?;
        for item in items {
            item.last_checked = last.get(&item.key).copied();
            item.checks = checks.remove(&item.key).unwrap_or_default();
        }
        Ok(())
    }

    /// Notes the running release plans' progress on the shown flags.
    async fn add_plans(
        &mut self,
        service: &crate::service::Service,
        actor: &crate::service::Actor,
    ) -> Result<(), AppError> {
        let plans = service.running_plans(actor).await?;
        if plans.is_empty() {
            return Ok(());
        }
        let environments = service.environments(actor).await?;
        let items = self
            .flags
            .iter_mut()
            .chain(self.columns.iter_mut().flat_map(|c| c.flags.iter_mut()));
        for item in items {
            for plan in plans.iter().filter(|p| p.flag == item.key) {
                let environment = environments.iter().find(|e| e.id == plan.environment_id);
                let paused = if plan.status == crate::model::PlanStatus::Paused {
                    ", paused"
                } else {
                    ""
                };
                item.plans.push(format!(
                    "{} {}/{} in {}{paused}",
                    plan.template,
                    plan.current + 1,
                    plan.milestones.len(),
                    environment.map_or("?", |e| e.name.as_str())
                ));
            }
        }
        Ok(())
    }

    fn new(list: crate::service::FlagList, page: usize) -> Self {
        let member_name = |id: Option<i64>| {
            id.and_then(|id| list.members.iter().find(|m| m.id == id))
                .map(|m| m.name.clone())
                .unwrap_or_default()
        };
        let flags = list
            .flags
            .into_iter()
            .map(|(f, access)| {
                let stage = list.stages.iter().find(|s| s.id == f.stage_id);
                FlagListItem {
                    access: access
                        .into_iter()
                        .map(|(environment, rules)| (environment, stored_summary(&rules)))
                        .collect(),
                    stage: stage.map(|s| s.name.clone()).unwrap_or_default(),
                    stage_color: stage.map(|s| s.color.clone()).unwrap_or_default(),
                    owner: member_name(f.owner_id),
                    updated_by: member_name(f.updated_by),
                    key: f.key.to_string(),
                    name: f.name,
                    archived: f.archived,
                    updated_at: f.updated_at,
                    plans: Vec::new(),
                    last_checked: None,
                    checks: Vec::new(),
                }
            })
            .collect();
        FlagPage {
            flags,
            total: list.total.max(0) as usize,
            page,
            stages: list
                .stages
                .iter()
                .map(|s| (s.id, s.name.clone(), s.color.clone()))
                .collect(),
            members: list.members.iter().map(|m| (m.id, m.name.clone())).collect(),
            columns: Vec::new(),
        }
    }
}

/// [`access_summary`] of stored rules, or what is wrong with them.
#[cfg(feature = "ssr")]
pub fn stored_summary(rules: &crate::service::Decoded<AccessRules>) -> String {
    match rules {
        Ok(rules) => access_summary(rules),
        Err(row) => format!("Unreadable ({row})"),
    }
}

/// Stages and members to choose from when creating a flag, and who is asking.
#[server(endpoint = "read/flag_form_options")]
pub async fn flag_form_options() -> Result<(Vec<(i64, String)>, Vec<(i64, String)>, i64), AppError> {
    let (service, actor) = super::server::caller()?;
    let stages = service.release_stages(&actor).await?;
    let members = service.members(&actor).await?;
    Ok((
        stages.into_iter().map(|s| (s.id, s.name)).collect(),
        members.into_iter().map(|m| (m.id, m.name)).collect(),
        actor.member_id().unwrap_or_default(),
    ))
}

/// A key suggested from a name: lower-case words joined by dashes.
pub fn suggested_key(name: &str) -> String {
    let mut key = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.is_empty() && !key.ends_with('-') {
            key.push('-');
        }
    }
    key.trim_end_matches('-').chars().take(64).collect()
}

#[server(endpoint = "edit/create_flag")]
pub async fn create_flag(
    key: String,
    name: String,
    description: String,
    stage: Option<i64>,
    owner: Option<i64>,
) -> Result<(), AppError> {
    // What was sent, for a refused form to show again (without the bundle it is a new page).
    let sent = [
        ("key", key.clone()),
        ("name", name.clone()),
        ("description", description.clone()),
    ];
    let created = add_flag(key, name, description, stage, owner).await;
    let key = created.map_err(|error| error.keeping(&sent))?;
    leptos_axum::redirect(&format!("/flags/{key}"));
    Ok(())
}

/// Creates a flag as the caller (owned by the caller unless `owner` says otherwise); its key.
#[cfg(feature = "ssr")]
async fn add_flag(
    key: String,
    name: String,
    description: String,
    stage: Option<i64>,
    owner: Option<i64>,
) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let new = crate::service::NewFlag {
        key,
        name,
        description,
        stage: stage.map(crate::service::StageRef::Id),
        owner_id: owner.or(actor.member_id()),
        ..Default::default()
    };
    let flag = service
        .apply(&actor, crate::service::Change::CreateFlag(new))
        .await?;
    Ok(flag.into_flag()?.key.to_string())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionItem {
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub summary: String,
    /// What this version changed from the one before, a line per change.
    pub changes: Vec<String>,
    /// What rolling back to this version would change, a line per change (empty: the current).
    pub rollback: Vec<String>,
}

/// One version of the remote config in the flag's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersionItem {
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub summary: String,
    /// What this version changed from the one before, a line per change.
    pub changes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagView {
    pub key: String,
    pub name: String,
    pub description: String,
    pub stage_id: i64,
    pub stages: Vec<(i64, String)>,
    pub environments: Vec<(String, String)>,
    pub environment: String,
    pub version: i64,
    pub form: AccessForm,
    pub history: Vec<VersionItem>,
    /// What moving to each other stage would change here: (stage id, environment, from, to).
    pub stage_changes: Vec<(i64, String, String, String)>,
    pub archived: bool,
    /// The other environments and their current access, for copying.
    pub others: Vec<OtherEnvironment>,
    pub config_version: i64,
    /// The remote config's versions here, newest first.
    pub config_history: Vec<ConfigVersionItem>,
    pub variants: Vec<VariantForm>,
    pub default_variant: Option<usize>,
    /// Known companies of this environment that the saved rules let in, and how many are known.
    pub companies_with_access: AccessCount,
    pub options: EditorOptions,
    pub scheduled: Vec<ScheduledItem>,
    pub plan: PlanCardView,
    pub requests: Vec<RequestItem>,
    /// Approvals a change here needs (0: not protected).
    pub required_approvals: i64,
    /// The caller may save here without review (an admin).
    pub can_bypass: bool,
    /// Checks and companies reached over the last 30 days, in every environment.
    pub usage: crate::model::FlagUsage,
    /// Name, description, owner and type, with the members an owner is chosen from (filled by
    /// [`flag_detail`]).
    pub details: FlagDetails,
    pub stage_color: String,
    /// Who has the flag in every environment, in their order.
    pub everywhere: Vec<EnvironmentAccess>,
}

/// One remote-config value in the editor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantForm {
    pub key: String,
    /// JSON text.
    pub payload: String,
    pub companies: String,
    pub users: String,
    pub segments: String,
}

#[cfg(feature = "ssr")]
impl VariantForm {
    fn from_variant(variant: &crate::model::ConfigVariant) -> Self {
        VariantForm {
            key: variant.key.clone(),
            payload: serde_json::to_string_pretty(&variant.payload).unwrap_or_default(),
            companies: variant.companies.join("\n"),
            users: variant.users.join("\n"),
            segments: variant
                .segments
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The named variants of a posted form (rows without a key are left out), or the first
    /// field that is wrong.
    fn to_variants(
        variants: &[VariantForm],
        default_variant: Option<usize>,
    ) -> Result<Vec<crate::model::ConfigVariant>, AppError> {
        variants
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.key.trim().is_empty())
            .map(|(i, v)| {
                v.to_variant(i, default_variant == Some(i))
                    .map_err(AppError::rejected_input)
            })
            .collect()
    }

    /// The variant, or the field (`payload-<i>`, `segments-<i>`) that is wrong.
    fn to_variant(&self, index: usize, is_default: bool) -> Result<crate::model::ConfigVariant, AppError> {
        let payload = if self.payload.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&self.payload).map_err(|e| AppError {
                field: Some(format!("payload-{index}")),
                message: format!("not valid JSON: {e}"),
                ..Default::default()
            })?
        };
        let segments = split_list(&self.segments)
            .into_iter()
            .map(|key| {
                SegmentKey::parse(key.clone()).map_err(|e| AppError {
                    field: Some(format!("segments-{index}")),
                    message: format!("{key}: {e}"),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::model::ConfigVariant {
            key: self.key.trim().to_string(),
            payload,
            companies: split_list(&self.companies),
            users: split_list(&self.users),
            segments,
            is_default,
        })
    }
}

#[server(endpoint = "read/flag")]
pub async fn flag_detail(key: String, environment: String) -> Result<FlagView, AppError> {
    let environment = super::server::working_environment(environment).await?;
    let (service, actor) = super::server::caller()?;
    let mut view = FlagView::new(service.flag_page(&actor, &key, &environment).await?, &actor)?;
    view.usage = service.flag_usage(&actor, &view.key, None, 30).await?;
    let members = service.members(&actor).await?;
    view.details.members = members.into_iter().map(|m| (m.id, m.name)).collect();
    Ok(view)
}

/// The remote config's versions as the history lists them: each against the one before it.
#[cfg(feature = "ssr")]
fn config_history_items(
    history: &[crate::model::Version<crate::service::Decoded<crate::model::RemoteConfig>>],
) -> Vec<ConfigVersionItem> {
    use crate::model::describe::{config_changes, config_summary};
    let summary = |value: &crate::service::Decoded<crate::model::RemoteConfig>| match value {
        Ok(config) => config_summary(config),
        Err(_) => "cannot be read".to_string(),
    };
    history
        .iter()
        .enumerate()
        .map(|(i, v)| ConfigVersionItem {
            version: v.version,
            created_at: v.created_at,
            created_by: v.created_by.clone().unwrap_or_else(|| "system".into()),
            summary: summary(&v.value),
            changes: v
                .note
                .clone()
                .into_iter()
                .chain(match (history.get(i + 1).map(|b| &b.value), &v.value) {
                    (Some(Ok(before)), Ok(after)) => config_changes(before, after),
                    (None, Ok(after)) => config_changes(&crate::model::RemoteConfig::default(), after),
                    _ => vec![summary(&v.value)],
                })
                .collect(),
        })
        .collect()
}

#[cfg(feature = "ssr")]
impl FlagView {
    fn new(page: crate::service::FlagPage, actor: &crate::service::Actor) -> Result<Self, AppError> {
        let rules = match page.history.first() {
            Some(version) => version
                .value
                .clone()
                .map_err(crate::service::ServiceError::from)?,
            None => AccessRules::NoOne,
        };
        let plan = PlanCardView::new(&page);
        let requests = request_items(&page, actor);
        let required_approvals = page.environment.required_approvals;
        let can_bypass = matches!(
            actor.kind,
            crate::service::ActorKind::Member {
                role: crate::model::member::Role::Admin,
                ..
            }
        );
        let config = page.config.map_err(crate::service::ServiceError::from)?;
        let mut variants: Vec<VariantForm> = config.variants.iter().map(VariantForm::from_variant).collect();
        variants.push(VariantForm::default());
        let summaries: Vec<String> = page.history.iter().map(|v| stored_summary(&v.value)).collect();
        let history = page
            .history
            .iter()
            .enumerate()
            .map(|(i, v)| VersionItem {
                version: v.version,
                created_at: v.created_at,
                created_by: v.created_by.clone().unwrap_or_else(|| "system".into()),
                summary: summaries[i].clone(),
                // History is newest first: each version against the one before it.
                // Why it was written (a rollback, a copy, a stage's defaults), then what changed.
                changes: v
                    .note
                    .clone()
                    .into_iter()
                    .chain(match (page.history.get(i + 1).map(|b| &b.value), &v.value) {
                        (Some(Ok(before)), Ok(after)) => access_changes(before, after),
                        (None, _) => vec![format!("created as {}", summaries[i])],
                        _ => vec![summaries[i].clone()],
                    })
                    .collect(),
                rollback: match &v.value {
                    Ok(then) if i > 0 => access_changes(&rules, then),
                    _ => Vec::new(),
                },
            })
            .collect();
        let scheduled = page
            .scheduled
            .iter()
            .map(|change| ScheduledItem {
                id: change.id,
                what: planned_text(&change.planned, &page.environments, &page.stages),
                due: datetime(change.due_at),
                by: change.created_label.clone(),
                status: change.status.as_str().to_string(),
                outcome: change.outcome.clone(),
            })
            .collect();
        let everywhere = page
            .environments
            .iter()
            .map(|e| {
                let stored = if e.id == page.environment.id {
                    Some(Ok(rules.clone()))
                } else {
                    page.others
                        .iter()
                        .find(|(o, _)| o.id == e.id)
                        .map(|(_, r)| r.clone())
                };
                let summary = stored
                    .as_ref()
                    .map_or_else(|| "No one".to_string(), stored_summary);
                let share = match &stored {
                    Some(Ok(rules)) => super::flag_summary::share(rules),
                    None => Some(0.0),
                    Some(Err(_)) => None,
                };
                EnvironmentAccess {
                    key: e.key.to_string(),
                    name: e.name.clone(),
                    summary,
                    share,
                }
            })
            .collect();
        let stage_color = page
            .stages
            .iter()
            .find(|s| s.id == page.flag.stage_id)
            .map(|s| s.color.clone())
            .unwrap_or_default();
        let details = FlagDetails {
            key: page.flag.key.to_string(),
            name: page.flag.name.clone(),
            description: page.flag.description.clone(),
            owner_id: page.flag.owner_id,
            permanent: page.flag.permanent,
            members: Vec::new(),
        };
        Ok(FlagView {
            details,
            stage_color,
            everywhere,
            usage: Default::default(),
            requests,
            required_approvals,
            can_bypass,
            plan,
            scheduled,
            companies_with_access: page.access.into(),
            options: page.options.into(),
            archived: page.flag.archived,
            others: page
                .others
                .iter()
                .map(|(e, rules_there)| OtherEnvironment {
                    key: e.key.to_string(),
                    name: e.name.clone(),
                    summary: stored_summary(rules_there),
                    changes: match rules_there {
                        Ok(there) => access_changes(&rules, there),
                        Err(_) => Vec::new(),
                    },
                })
                .collect(),
            config_version: config.version as i64,
            config_history: config_history_items(&page.config_history),
            default_variant: config.variants.iter().position(|v| v.is_default),
            variants,
            key: page.flag.key.to_string(),
            name: page.flag.name,
            description: page.flag.description,
            stage_id: page.flag.stage_id,
            stages: page.stages.into_iter().map(|s| (s.id, s.name)).collect(),
            environments: page
                .environments
                .iter()
                .map(|e| (e.key.to_string(), e.name.clone()))
                .collect(),
            environment: page.environment.key.to_string(),
            version: page.history.first().map(|v| v.version).unwrap_or(0),
            form: AccessForm::from_rules(&rules),
            history,
            stage_changes: page
                .stage_moves
                .into_iter()
                .map(|(stage, env, from, to)| (stage, env, access_summary(&from), access_summary(&to)))
                .collect(),
        })
    }
}

impl FlagView {
    /// What the page's confirmations (a stage move, a copy, a rollback, archiving) need to know.
    pub fn subject(&self) -> Subject {
        Subject {
            key: self.key.clone(),
            name: self.name.clone(),
            environment: self.environment.clone(),
            environment_name: self
                .environments
                .iter()
                .find(|(key, _)| *key == self.environment)
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| self.environment.clone()),
            version: self.version,
            current: self
                .history
                .first()
                .map(|v| v.summary.clone())
                .unwrap_or_else(|| "No one".into()),
            archived: self.archived,
            stage_id: self.stage_id,
            stages: self.stages.clone(),
            stage_changes: self.stage_changes.clone(),
            others: self.others.clone(),
            versions: self
                .history
                .iter()
                .map(|v| (v.version, v.summary.clone(), v.rollback.clone()))
                .collect(),
        }
    }

    /// The caller's open change requests of the page's environment, of access (`access`) or of
    /// remote config: the forms may update one instead of filing another.
    pub fn my_requests(&self, access: bool) -> Vec<i64> {
        self.requests
            .iter()
            .filter(|r| r.mine && r.access == access && r.environment == self.environment)
            .filter(|r| matches!(r.status.as_str(), "draft" | "review" | "approved"))
            .map(|r| r.id)
            .collect()
    }
}

/// The flag's change requests as the page lists them, each with what it changes against the
/// value in its environment now.
#[cfg(feature = "ssr")]
fn request_items(page: &crate::service::FlagPage, actor: &crate::service::Actor) -> Vec<RequestItem> {
    use crate::model::PlannedChange;
    let current_rules = |environment_id: i64| {
        if environment_id == page.environment.id {
            page.history.first().and_then(|v| v.value.clone().ok())
        } else {
            page.others
                .iter()
                .find(|(e, _)| e.id == environment_id)
                .and_then(|(_, rules)| rules.clone().ok())
        }
    };
    page.requests
        .iter()
        .map(|r| {
            let changes = match &r.planned {
                PlannedChange::SetAccess { rules, .. } if r.status.is_open() => {
                    match current_rules(r.environment_id) {
                        Some(before) => access_changes(&before, rules),
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            let environment = page.environments.iter().find(|e| e.id == r.environment_id);
            let required = environment.map_or(0, |e| e.required_approvals);
            let names: Vec<&str> = r.approvals.iter().map(|(_, l)| l.as_str()).collect();
            let approvals = match names.is_empty() {
                true => format!("0 of {required} approvals."),
                false => format!("{} of {required} approvals: {}.", names.len(), names.join(", ")),
            };
            RequestItem {
                id: r.id,
                status: r.status.as_str().to_string(),
                what: planned_text(&r.planned, &page.environments, &page.stages),
                changes,
                who: page
                    .request_counts
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, count)| super::access_editor::AccessCount::from(count.clone()).text(false))
                    .unwrap_or_default(),
                note: r.note.clone(),
                by: r.created_label.clone(),
                when: datetime(r.created_at),
                approvals,
                outcome: r.outcome.clone(),
                mine: actor.member_id().is_some() && actor.member_id() == r.created_by,
                environment: environment.map(|e| e.key.to_string()).unwrap_or_default(),
                access: matches!(r.planned, PlannedChange::SetAccess { .. }),
                approved_by_me: r.approvals.iter().any(|(id, _)| Some(*id) == actor.member_id()),
            }
        })
        .collect()
}

/// What a scheduled change does, in words.
#[cfg(feature = "ssr")]
pub fn planned_text(
    planned: &crate::model::PlannedChange,
    environments: &[crate::model::Environment],
    stages: &[crate::model::ReleaseStage],
) -> String {
    use crate::model::PlannedChange;
    let environment = |key: &str| {
        environments
            .iter()
            .find(|e| e.key.as_str() == key)
            .map_or_else(|| key.to_string(), |e| e.name.clone())
    };
    match planned {
        PlannedChange::SetAccess {
            environment: e,
            rules,
            ..
        } => {
            format!("Access in {} → {}", environment(e), access_summary(rules))
        }
        PlannedChange::SetRemoteConfig {
            environment: e,
            variants,
            ..
        } => {
            format!("Remote config in {} → {} values", environment(e), variants.len())
        }
        PlannedChange::MoveStage { stage_id, .. } => {
            let name = stages.iter().find(|s| s.id == *stage_id).map(|s| s.name.clone());
            format!("Move to {}", name.unwrap_or_else(|| format!("stage {stage_id}")))
        }
        PlannedChange::SetArchived { archived: true } => "Archive the flag".into(),
        PlannedChange::SetArchived { archived: false } => "Restore the flag".into(),
    }
}

/// Saves the access form now, or (with an "Apply at" time) schedules it; says which.
#[server(endpoint = "edit/save_access")]
#[allow(clippy::too_many_arguments)]
pub async fn save_access(
    flag: String,
    environment: String,
    expected_version: i64,
    form: AccessForm,
    apply_at: Option<String>,
    review_note: Option<String>,
    bypass_reason: Option<String>,
    review_draft: Option<String>,
    update_request: Option<String>,
) -> Result<String, AppError> {
    let how = super::submit::Submission::new(
        apply_at,
        review_note,
        bypass_reason,
        (review_draft, update_request),
    );
    submit_access(flag, environment, expected_version, form, how).await
}

/// Saves (or schedules, or files for review) the access `form` describes.
#[cfg(feature = "ssr")]
async fn submit_access(
    flag: String,
    environment: String,
    expected_version: i64,
    form: AccessForm,
    how: super::submit::Submission,
) -> Result<String, AppError> {
    // Without the bundle a refused form comes back as a new page: it shows what was sent.
    let kept = TypedAccess::keep(&environment, expected_version, &form);
    let rules = form.to_rules().map_err(|e| kept(e).rejected_input())?;
    let planned = crate::model::PlannedChange::SetAccess {
        environment,
        rules,
        based_on: expected_version,
    };
    super::submit::submit(flag, planned, how, "Saved as a new version.")
        .await
        .map_err(kept)
}

/// An access form as a refused save sent it, for the page to show again: only over the same
/// environment and version it was sent for.
#[derive(Serialize, Deserialize)]
struct TypedAccess {
    environment: String,
    version: i64,
    form: AccessForm,
}

impl TypedAccess {
    /// Longest form carried back (it travels in the page's address).
    #[cfg(feature = "ssr")]
    const MAX_BYTES: usize = 8 * 1024;

    #[cfg(feature = "ssr")]
    fn keep(environment: &str, version: i64, form: &AccessForm) -> impl Fn(AppError) -> AppError {
        let typed = TypedAccess {
            environment: environment.to_string(),
            version,
            form: form.clone(),
        };
        let json = serde_json::to_string(&typed).unwrap_or_default();
        move |error: AppError| {
            if json.len() <= Self::MAX_BYTES {
                error.keeping(&[("access_form", json.clone())])
            } else {
                error
            }
        }
    }

    /// The form `error` carries back for `environment` at `version`, if any.
    fn of(error: &AppError, environment: &str, version: i64) -> Option<AccessForm> {
        let typed: TypedAccess = serde_json::from_str(error.typed("access_form")?).ok()?;
        (typed.environment == environment && typed.version == version).then_some(typed.form)
    }
}

#[server(endpoint = "edit/save_config")]
#[allow(clippy::too_many_arguments)]
pub async fn save_config(
    flag: String,
    environment: String,
    expected_version: i64,
    variants: Vec<VariantForm>,
    default_variant: Option<usize>,
    apply_at: Option<String>,
    review_note: Option<String>,
    bypass_reason: Option<String>,
    review_draft: Option<String>,
    update_request: Option<String>,
) -> Result<String, AppError> {
    let variants = VariantForm::to_variants(&variants, default_variant)?;
    let planned = crate::model::PlannedChange::SetRemoteConfig {
        environment,
        variants,
        based_on: expected_version,
    };
    let how = super::submit::Submission::new(
        apply_at,
        review_note,
        bypass_reason,
        (review_draft, update_request),
    );
    super::submit::submit(flag, planned, how, "Remote config saved.").await
}

/// A flag's checks per day as a small line; a flat line when it had none.
#[component]
fn Sparkline(checks: Vec<i64>) -> impl IntoView {
    let total: i64 = checks.iter().sum();
    let top = checks.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = checks.len().max(2) as f64 - 1.0;
    let points: Vec<String> = if checks.is_empty() {
        vec!["0,19".into(), "80,19".into()]
    } else {
        checks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:.1},{:.1}", i as f64 / n * 80.0, 19.0 - *c as f64 / top * 18.0))
            .collect()
    };
    let label = format!("{total} checks in {SPARK_DAYS} days");
    let aria = label.clone();
    view! {
        <svg class="sparkline" viewBox="0 0 80 20" role="img" aria-label=aria>
            <title>{label}</title>
            <polyline points=points.join(" ")/>
        </svg>
    }
}

#[component]
fn FlagRows(flags: Vec<FlagListItem>) -> impl IntoView {
    view! {
        <table>
            <thead><tr><th>"Flag"</th><th>"Stage"</th><th>"Access"</th><th>"Checks (14 days)"</th><th>"Owner"</th><th>"Last change"</th></tr></thead>
            <tbody>
                {flags.into_iter().map(|f| view! {
                    <tr>
                        <td>
                            <a href=format!("/flags/{}", f.key)>{f.name.clone()}</a><br/><code class="muted">{f.key.clone()}</code>
                            {f.plans.iter().map(|p| view! { <br/><span class="badge plan">{format!("Plan: {p}")}</span> }).collect_view()}
                        </td>
                        <td><span class="stage" style=format!("--stage:{}", f.stage_color)>{f.stage.clone()}</span></td>
                        <td>
                            <ul class="access">
                                {f.access.into_iter().map(|(env, summary)| view! { <li><span class="muted">{env}": "</span>{summary}</li> }).collect_view()}
                            </ul>
                        </td>
                        <td><Sparkline checks=f.checks.clone()/><br/><span class="muted">{f.last_checked.map_or_else(|| "never checked".to_string(), |at| format!("last {}", datetime(at)))}</span></td>
                        <td>{f.owner.clone()}</td>
                        <td>{datetime(f.updated_at)} {(!f.updated_by.is_empty()).then(|| view! { <br/><span class="muted">{format!("by {}", f.updated_by)}</span> })}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// One column per release stage, in release order, each with its own count from the database;
/// a column longer than `BOARD_COLUMN_SIZE` links to the list of its stage, which pages.
#[component]
fn FlagBoard(columns: Vec<BoardColumn>, stages: Vec<(i64, String, String)>) -> impl IntoView {
    view! {
        <div class="board">
            {columns.into_iter().map(|column| {
                let (name, color) = stages
                    .iter()
                    .find(|(id, ..)| *id == column.stage_id)
                    .map(|(_, name, color)| (name.clone(), color.clone()))
                    .unwrap_or_default();
                let more = (column.total > column.flags.len()).then(|| view! {
                    <a class="small" href=format!("/flags?stage={}", column.stage_id)>
                        {format!("See all {} in the list", column.total)}
                    </a>
                });
                view! {
                    <section class="column" aria-label=name.clone()>
                        <h2><span class="dot" style=format!("background:{color}")></span>{name.clone()} <span class="muted">{column.total}</span></h2>
                        {if column.flags.is_empty() {
                            view! { <p class="muted">"No flags in this stage."</p> }.into_any()
                        } else {
                            column.flags.into_iter().map(|f| view! {
                                <a class="tile" href=format!("/flags/{}", f.key)>
                                    <strong>{f.name.clone()}</strong>
                                    <code class="muted">{f.key.clone()}</code>
                                    {f.access.first().map(|(env, summary)| view! { <span class="muted">{format!("{env}: {summary}")}</span> })}
                                    {f.plans.iter().map(|p| view! { <span class="badge plan">{format!("Plan: {p}")}</span> }).collect_view()}
                                </a>
                            }).collect_view().into_any()
                        }}
                        {more}
                    </section>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
pub fn FlagsPage() -> impl IntoView {
    let query = use_query_map();
    let search = move || query.read().get("q").unwrap_or_default();
    let stage = move || query.read().get("stage").and_then(|s| s.parse::<i64>().ok());
    let owner = move || query.read().get("owner").and_then(|s| s.parse::<i64>().ok());
    let archived = move || {
        query
            .read()
            .get("archived")
            .is_some_and(|a| a == "on" || a == "true")
    };
    let board = move || query.read().get("view").is_some_and(|v| v == "board");
    let page = move || super::format::page_param(&query.read());
    let flags = Resource::new(
        move || (search(), stage(), owner(), archived(), page(), board()),
        |(q, s, o, a, p, b)| list_flags(q, s, o, a, p, b),
    );
    let link = move |view_board: bool, page_number: usize| {
        let mut params = vec![format!("q={}", search()), format!("page={page_number}")];
        if let Some(s) = stage() {
            params.push(format!("stage={s}"));
        }
        if let Some(o) = owner() {
            params.push(format!("owner={o}"));
        }
        if archived() {
            params.push("archived=on".into());
        }
        if view_board {
            params.push("view=board".into());
        }
        format!("/flags?{}", params.join("&"))
    };
    view! {
        <div class="page-head">
            <h1>"Flags"</h1>
            <nav class="views" aria-label="View">
                <a href=move || link(false, 0) aria-current=move || (!board()).then_some("page")>"List"</a>
                <a href=move || link(true, 0) aria-current=move || board().then_some("page")>"Board"</a>
                <a href="/cleanup">"Clean-up"</a>
            </nav>
            <a class="button" href="/flags/new">"Create flag"</a>
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading flags…"</p> }>
            {move || flags.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(page_data) => {
                    let filters = view! {
                        <form method="get" action="/flags" class="filters">
                            <label for="q">"Search"</label>
                            <input id="q" name="q" type="search" value=search() placeholder="key or name"/>
                            <label for="stage">"Stage"</label>
                            <select id="stage" name="stage">
                                <option value="">"All stages"</option>
                                {page_data.stages.iter().map(|(id, name, _)| view! { <option value=id.to_string() selected=stage() == Some(*id)>{name.clone()}</option> }).collect_view()}
                            </select>
                            <label for="owner">"Owner"</label>
                            <select id="owner" name="owner">
                                <option value="">"Anyone"</option>
                                {page_data.members.iter().map(|(id, name)| view! { <option value=id.to_string() selected=owner() == Some(*id)>{name.clone()}</option> }).collect_view()}
                            </select>
                            <label class="inline"><input type="checkbox" name="archived" checked=archived()/>"Archived"</label>
                            {board().then(|| view! { <input type="hidden" name="view" value="board"/> })}
                            <button type="submit" class="secondary">"Filter"</button>
                        </form>
                    };
                    let body = if page_data.total == 0 && search().is_empty() && stage().is_none() && owner().is_none() && !archived() {
                        view! {
                            <section class="card empty">
                                <p>"No flags yet. Create one to start releasing a feature gradually."</p>
                                <a class="button" href="/flags/new">"Create your first flag"</a>
                            </section>
                        }.into_any()
                    } else if page_data.total == 0 {
                        view! { <section class="card empty"><p>"No flag matches these filters."</p></section> }.into_any()
                    } else if board() {
                        view! { <FlagBoard columns=page_data.columns stages=page_data.stages/> }.into_any()
                    } else {
                        let current = page_data.page;
                        let pages = page_data.total.div_ceil(PAGE_SIZE);
                        view! {
                            <section class="card">
                                <FlagRows flags=page_data.flags/>
                                <p class="muted pager">
                                    {format!("{} · page {} of {} ", if page_data.total == 1 { "1 flag".to_string() } else { format!("{} flags", page_data.total) }, current + 1, pages)}
                                    {(current > 0).then(|| view! { <a href=link(false, current - 1)>"Previous"</a> })}
                                    " "
                                    {(current + 1 < pages).then(|| view! { <a href=link(false, current + 1)>"Next"</a> })}
                                </p>
                            </section>
                        }.into_any()
                    };
                    view! { {filters} {body} }.into_any()
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn NewFlagPage() -> impl IntoView {
    let action = ServerAction::<CreateFlag>::new();
    let value = action.value();
    let options = Resource::new(|| (), |_| flag_form_options());
    // A refused form without the bundle comes back as a new page: it shows what was sent.
    let typed = move |field: &'static str| super::error::sent(value, field);
    // The key follows the name until someone edits it (needs the bundle; without it, type both).
    let (key, set_key) = signal(typed("key"));
    let (key_edited, set_key_edited) = signal(!typed("key").is_empty());
    view! {
        <h1>"Create flag"</h1>
        <section class="card narrow-card">
            <ActionForm action=action>
                <label for="name">"Name"</label>
                <input
                    id="name"
                    name="name"
                    value=typed("name")
                    required
                    aria-describedby="name-error"
                    on:input=move |ev| {
                        if !key_edited.get_untracked() {
                            set_key.set(suggested_key(&event_target_value(&ev)));
                        }
                    }
                />
                <ErrorText id="name-error" message=Signal::derive(field_error(value, "name"))/>
                <label for="key">"Key (used in code; letters, digits, - _ . ; cannot change later)"</label>
                <input
                    id="key"
                    name="key"
                    value=typed("key")
                    required
                    aria-describedby="key-error"
                    prop:value=key
                    on:input=move |ev| {
                        set_key_edited.set(true);
                        set_key.set(event_target_value(&ev));
                    }
                />
                <ErrorText id="key-error" message=Signal::derive(field_error(value, "key"))/>
                <label for="description">"Description"</label>
                <textarea id="description" name="description" rows="3">{typed("description")}</textarea>
                <Suspense fallback=|| ()>
                    {move || options.get().and_then(Result::ok).map(|(stages, members, me)| view! {
                        <label for="stage">"Release stage"</label>
                        <select id="stage" name="stage">
                            {stages.into_iter().map(|(id, name)| view! { <option value=id.to_string()>{name}</option> }).collect_view()}
                        </select>
                        <label for="owner">"Owner"</label>
                        <select id="owner" name="owner">
                            {members.into_iter().map(|(id, name)| view! { <option value=id.to_string() selected=id == me>{name}</option> }).collect_view()}
                        </select>
                    })}
                </Suspense>
                <ErrorText id="form-error" message=Signal::derive(form_error(value, &["name", "key"]))/>
                <button type="submit" disabled=move || action.pending().get()>"Create flag"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn FlagPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || params.read().get("key").unwrap_or_default();
    let environment = move || query.read().get("env").unwrap_or_default();
    let pending = move || query.with(Pending::from_query);
    let save = ServerAction::<SaveAccess>::new();
    let details_action = ServerAction::<SaveFlagDetails>::new();
    let details_saves = success_count(details_action.value());
    let confirmed = ConfirmActions::new();
    let config_action = ServerAction::<SaveConfig>::new();
    let schedule_action = ServerAction::<ScheduleFlagChange>::new();
    let cancel_action = ServerAction::<CancelScheduled>::new();
    let (schedules, cancels) = (
        success_count(schedule_action.value()),
        success_count(cancel_action.value()),
    );
    let plan_actions = PlanActions::new();
    let plan_changes = plan_actions.successes();
    let request_actions = RequestActions::new();
    let request_changes = request_actions.successes();
    // Not the versions: a failed save must leave the typed form (and its errors) in place.
    let (saves, config_saves) = (success_count(save.value()), success_count(config_action.value()));
    let detail = Resource::new(
        move || {
            (
                key(),
                environment(),
                (
                    saves.get(),
                    confirmed.versions(),
                    config_saves.get(),
                    details_saves.get(),
                ),
                (
                    schedules.get(),
                    cancels.get(),
                    plan_changes.get(),
                    request_changes.get(),
                ),
            )
        },
        |(key, environment, ..)| flag_detail(key, environment),
    );
    let config_value = config_action.value();
    let save_value = save.value();
    let notice = action_notices([
        (
            plan_actions.start.value(),
            "Plan started: its first milestone's access is in place, as a new version.",
        ),
        (
            plan_actions.advance.value(),
            "Advanced: the next milestone's access is in place, as a new version.",
        ),
        (
            plan_actions.pause.value(),
            "Done: the plan's state changed, as shown under Release plan.",
        ),
        (
            plan_actions.cancel.value(),
            "Plan cancelled: the access stays as it is.",
        ),
        (
            request_actions.approve.value(),
            "Approved: see the request's approvals below.",
        ),
        (
            request_actions.apply.value(),
            "Applied: the request's change is in place, as a new version.",
        ),
        (
            request_actions.close.value(),
            "Done: the request is closed, as shown under Change requests.",
        ),
    ]);
    // A confirmed action comes back with what it did in the address (with or without the bundle).
    notice.set(query.with_untracked(Done::from_query).map(Done::notice));
    Effect::new(move || {
        if let Some(done) = query.with(Done::from_query) {
            notice.set(Some(done.notice()));
        }
    });
    Effect::new(move || {
        if matches!(save_value.get(), Some(Ok(_))) {
            notice.set(None);
        }
    });
    let save_error = Signal::derive(move || save_value.get().and_then(Result::err));
    view! {
        {move || notice.get().map(|text| view! { <p class="notice" role="status">{text}</p> })}
        <Suspense fallback=|| view! { <p class="muted">"Loading the flag…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(flag) => {
                    let typed = save_value.with_untracked(|v| match v {
                        Some(Err(error)) => TypedAccess::of(error, &flag.environment, flag.version),
                        _ => None,
                    });
                    let form = typed.unwrap_or_else(|| flag.form.clone());
                    let flag_key = flag.key.clone();
                    let environment_key = flag.environment.clone();
                    // (stage id, stage name, what the move changes), owned for the list below.
                    let moves: Vec<(i64, String, String)> = flag
                        .stages
                        .iter()
                        .filter(|(id, _)| *id != flag.stage_id)
                        .map(|(id, name)| {
                            let changes: Vec<String> = flag
                                .stage_changes
                                .iter()
                                .filter(|(s, ..)| s == id)
                                .map(|(_, env, from, to)| format!("{env}: {from} → {to}"))
                                .collect();
                            let text = if changes.is_empty() { "no access changes".to_string() } else { changes.join("; ") };
                            (*id, name.clone(), text)
                        })
                        .collect();
                    let history = flag.history.clone();
                    let config_history = flag.config_history.clone();
                    let current_version = flag.version;
                    let others = flag.others.clone();
                    let current_summary = flag.history.first().map(|v| v.summary.clone()).unwrap_or_else(|| "No one".into());
                    let variants = flag.variants.clone();
                    let config_version = flag.config_version;
                    let default_variant = flag.default_variant;
                    let archived = flag.archived;
                    let (config_flag, config_environment) = (flag_key.clone(), environment_key.clone());
                    let subject = flag.subject();
                    let access_count = flag.companies_with_access.text(true);
                    let environment_name = flag.environments.iter().find(|(k, _)| *k == flag.environment).map(|(_, n)| n.clone()).unwrap_or_default();
                    let (my_access_requests, my_config_requests) = (flag.my_requests(true), flag.my_requests(false));
                    let (access_environment_name, config_environment_name) = (environment_name.clone(), environment_name.clone());
                    // Made anew with each render of the flag, so a save drops the last preview.
                    let preview = ServerAction::<PreviewAccess>::new();
                    let usage_environment = flag.environment.clone();
                    let stage_name = flag.stages.iter().find(|(id, _)| *id == flag.stage_id).map(|(_, n)| n.clone()).unwrap_or_default();
                    view! {
                        <FlagHeading details=flag.details.clone() stage=stage_name stage_color=flag.stage_color.clone() archived=archived/>
                        <FlagSummary everywhere=flag.everywhere.clone() working=flag.environment.clone() key=flag.key.clone()/>
                        <section class="card" id="access">
                            <h2>"Access in " {flag.environments.iter().find(|(k, _)| *k == flag.environment).map(|(_, n)| n.clone())} <span class="muted">{format!(" · version {}", flag.version)}</span></h2>
                            <div on:change=move |ev| preview_form(&ev, preview)>
                            <ActionForm action=save>
                                <input type="hidden" name="flag" value=flag.key.clone()/>
                                <input type="hidden" name="environment" value=flag.environment.clone()/>
                                <input type="hidden" name="expected_version" value=flag.version/>
                                <AccessEditor
                                    form=form
                                    prefix="access".into()
                                    environment=flag.environment.clone()
                                    options=flag.options.clone()
                                    error=save_error
                                    modes=vec![("noOne", "No one"), ("everyone", "Everyone"), ("some", "Some")]
                                />
                                {(flag.required_approvals > 0).then(|| view! {
                                    <ReviewFields prefix="access" environment_name=access_environment_name.clone() approvals=flag.required_approvals can_bypass=flag.can_bypass mine=my_access_requests.clone()/>
                                })}
                                <ApplyAt id="access-apply-at"/>
                                <button type="submit" disabled=move || save.pending().get()>{move || if save.pending().get() { "Saving…" } else { "Save access" }}</button>
                            </ActionForm>
                            </div>
                            <Notice value=save_value/>
                            <p class="muted" id="access-count" aria-live="polite">
                                {move || match preview.value().get() {
                                    Some(Ok(answer)) => answer.text(),
                                    Some(Err(error)) => format!("Could not count: {}", error.message),
                                    _ => access_count.clone(),
                                }}
                                {move || preview.pending().get().then_some(" (counting…)")}
                            </p>
                        </section>
                        <UsageCard usage=flag.usage.clone() environment=usage_environment.clone()/>
                        <RequestsCard items=flag.requests.clone() actions=request_actions/>
                        <PlanCard
                            card=flag.plan.clone()
                            flag=flag_key.clone()
                            environment=environment_key.clone()
                            environment_name=environment_name.clone()
                            current_access=current_summary.clone()
                            actions=plan_actions
                        />
                        <section class="card" id="stage">
                            <h2>"Release stage"</h2>
                            <p>"Current stage: " <strong>{flag.stages.iter().find(|(id, _)| *id == flag.stage_id).map(|(_, n)| n.clone())}</strong></p>
                            <ul class="plain">
                                {moves.into_iter().map(|(id, name, changes)| {
                                    view! {
                                        <li>
                                            <a class="button secondary small" data-noscroll="" href=Pending::Move(id).href(&flag_key)>{format!("Move to {name}…")}</a>
                                            <span class="muted">" " {changes}</span>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </section>
                        <ScheduledChanges
                            flag=flag_key.clone()
                            items=flag.scheduled.clone()
                            moves=flag.stages.iter().filter(|(id, _)| *id != flag.stage_id).cloned().collect()
                            stage_id=flag.stage_id
                            archived=archived
                            schedule=schedule_action
                            cancel=cancel_action
                        />
                        <section class="card">
                            <h2>"Copy access from another environment"</h2>
                            <ul class="plain">
                                {others.into_iter().map(|other| {
                                    let preview = format!(" {}: {} → replaces {current_summary}", other.name, other.summary);
                                    view! {
                                        <li>
                                            <a class="button secondary small" data-noscroll="" href=Pending::Copy(other.key.clone()).href(&flag_key)>{format!("Copy from {}…", other.name)}</a>
                                            <span class="muted">{preview}</span>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </section>
                        <section class="card" id="config">
                            <h2>"Remote config" <span class="muted">{format!(" · version {config_version}")}</span></h2>
                            <p class="muted">"Values are matched users first, then companies, then segments; the default goes to everyone else. Leave a key empty to remove a value."</p>
                            <ActionForm action=config_action>
                                <input type="hidden" name="flag" value=config_flag/>
                                <input type="hidden" name="environment" value=config_environment/>
                                <input type="hidden" name="expected_version" value=config_version/>
                                {variants.into_iter().enumerate().map(|(i, v)| view! {
                                    <fieldset class="variant">
                                        <legend>{if v.key.is_empty() { "New value".to_string() } else { format!("Value {}", v.key) }}</legend>
                                        <label for=format!("variant-key-{i}")>"Value key"</label>
                                        <input id=format!("variant-key-{i}") name=format!("variants[{i}][key]") value=v.key.clone() prop:value=v.key.clone()/>
                                        <JsonField index=i value=v.payload.clone() server_error=Signal::derive(field_error_owned(config_value, format!("payload-{i}")))/>
                                        <label for=format!("variant-companies-{i}")>"Companies for this value (ids, one per line)"</label>
                                        <textarea id=format!("variant-companies-{i}") name=format!("variants[{i}][companies]") rows="2">{v.companies.clone()}</textarea>
                                        <label for=format!("variant-users-{i}")>"Users for this value (ids, one per line)"</label>
                                        <textarea id=format!("variant-users-{i}") name=format!("variants[{i}][users]") rows="2">{v.users.clone()}</textarea>
                                        <label for=format!("variant-segments-{i}")>"Segments for this value (keys, one per line)"</label>
                                        <textarea id=format!("variant-segments-{i}") name=format!("variants[{i}][segments]") rows="1">{v.segments.clone()}</textarea>
                                        <label class="inline"><input type="radio" name="default_variant" value=i.to_string() checked=default_variant == Some(i) prop:checked=default_variant == Some(i)/>"Default for everyone else"</label>
                                    </fieldset>
                                }).collect_view()}
                                <ErrorText id="config-error" message=Signal::derive(form_error_prefixed(config_value, "payload-"))/>
                                {(flag.required_approvals > 0).then(|| view! {
                                    <ReviewFields prefix="config" environment_name=config_environment_name.clone() approvals=flag.required_approvals can_bypass=flag.can_bypass mine=my_config_requests.clone()/>
                                })}
                                <ApplyAt id="config-apply-at"/>
                                <button type="submit" disabled=move || config_action.pending().get()>"Save remote config"</button>
                            </ActionForm>
                            <Notice value=config_value/>
                        </section>
                        <FlagDetailsCard details=flag.details.clone() action=details_action/>
                        <section class="card">
                            <h2>"Archive"</h2>
                            <a class="button secondary small" data-noscroll="" href=Pending::Archive.href(&flag_key)>{if archived { "Restore flag…" } else { "Archive flag…" }}</a>
                            <span class="muted">{if archived { " Archived flags are not served to SDKs." } else { " Archiving stops serving the flag to SDKs; it can be restored." }}</span>
                        </section>
                        <section class="card" id="history">
                            <h2>"History"</h2>
                            <h3>"Access"</h3>
                            <table>
                                <thead><tr><th>"Version"</th><th>"Access"</th><th>"Changes"</th><th>"When"</th><th>"Who"</th><th></th></tr></thead>
                                <tbody>
                                    {history.into_iter().map(|v| {
                                        let is_current = v.version == current_version;
                                        let rollback_href = Pending::Rollback(v.version).href(&flag_key);
                                        view! {
                                            <tr>
                                                <td>{v.version}</td>
                                                <td>{v.summary.clone()}</td>
                                                <td>
                                                    <ChangeList changes=v.changes.clone()/>
                                                </td>
                                                <td>{datetime(v.created_at)}</td>
                                                <td>{v.created_by.clone()}</td>
                                                <td>
                                                    {(!is_current).then(|| view! {
                                                        <a class="button secondary small" data-noscroll="" href=rollback_href aria-label=format!("Roll back to version {}…", v.version)>"Roll back…"</a>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <h3 id="config-history">"Remote config"</h3>
                            {if config_history.is_empty() {
                                view! { <p class="muted">"No remote config saved in this environment yet."</p> }.into_any()
                            } else {
                                view! {
                                    <table>
                                        <thead><tr><th>"Version"</th><th>"Values"</th><th>"Changes"</th><th>"When"</th><th>"Who"</th></tr></thead>
                                        <tbody>
                                            {config_history.into_iter().map(|v| view! {
                                                <tr>
                                                    <td>{v.version}</td>
                                                    <td>{v.summary.clone()}</td>
                                                    <td>
                                                        <ChangeList changes=v.changes.clone()/>
                                                    </td>
                                                    <td>{datetime(v.created_at)}</td>
                                                    <td>{v.created_by.clone()}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                        </section>
                        {move || pending().map(|pending| view! { <ConfirmDialog pending flag=subject.clone() actions=confirmed/> })}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// What one version of the history changed, a line per change.
#[component]
fn ChangeList(changes: Vec<String>) -> impl IntoView {
    if changes.is_empty() {
        view! { <span class="muted">"no change"</span> }.into_any()
    } else {
        view! { <ul class="changes">{changes.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}</ul> }.into_any()
    }
}

/// The optional "Apply at" time of a form that can also be scheduled.
#[component]
fn ApplyAt(id: &'static str) -> impl IntoView {
    let hint = format!("{id}-hint");
    view! {
        <div class="apply-at">
            <label for=id>"Apply at (UTC, optional)"</label>
            <input type="datetime-local" step="1" id=id name="apply_at" aria-describedby=hint.clone()/>
            <p class="muted small" id=hint>"Leave empty to apply now. With a time, the change waits under Scheduled changes."</p>
        </div>
    }
}

/// Asks the server how many known companies the access form's unsaved rules let in (on any
/// change inside the form; only with the bundle, the server render shows the saved count).
fn preview_form(ev: &leptos::ev::Event, preview: ServerAction<PreviewAccess>) {
    use leptos::form::FromFormData;
    let Some(data) = super::access_editor::form_data_of(ev) else {
        return;
    };
    if let Ok(args) = PreviewAccess::from_form_data(&data) {
        preview.dispatch(args);
    }
}

/// What an in-page action's call came back with (`None` before it ran).
type ActionResult = MappedSignal<Option<Result<(), AppError>>>;

/// The notice of the latest in-page action that succeeded: each action's success sets its text.
fn action_notices<const N: usize>(
    actions: [(ActionResult, &'static str); N],
) -> RwSignal<Option<&'static str>> {
    let notice = RwSignal::new(None);
    for (value, text) in actions {
        Effect::new(move || {
            if matches!(value.get(), Some(Ok(()))) {
                notice.set(Some(text));
            }
        });
    }
    notice
}

/// A JSON payload input that says whether its text parses, as the user types (with the bundle).
#[component]
fn JsonField(index: usize, value: String, server_error: Signal<Option<String>>) -> impl IntoView {
    let (text, set_text) = signal(value.clone());
    let parse_error = move || {
        let text = text.get();
        if text.trim().is_empty() {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&text)
            .err()
            .map(|e| format!("not valid JSON: {e}"))
    };
    let id = format!("variant-payload-{index}");
    let error_id = format!("{id}-error");
    let stored = value.clone();
    view! {
        <label for=id.clone()>"Payload (JSON)"</label>
        <textarea
            id=id
            name=format!("variants[{index}][payload]")
            rows="3"
            class="code"
            aria-describedby=error_id.clone()
            prop:value=stored
            on:input=move |ev| set_text.set(event_target_value(&ev))
        >
            {value}
        </textarea>
        <Show when=move || parse_error().or_else(|| server_error.get()).is_some()>
            <p class="error" id=error_id.clone() role="alert">{move || parse_error().or_else(|| server_error.get())}</p>
        </Show>
    }
}

/// Like `field_error`, for a field name built at run time.
fn field_error_owned<T, S>(value: S, field: String) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(AppError {
            field: Some(f),
            message,
            ..
        })) if f == field => Some(message),
        _ => None,
    }
}

/// A failure whose field does not start with `prefix` (those show next to their inputs).
fn form_error_prefixed<T, S>(
    value: S,
    prefix: &'static str,
) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(AppError { field: Some(f), .. })) if f.starts_with(prefix) => None,
        Some(Err(error)) => Some(error.message),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_the_list() {
        use super::super::access_editor::RuleForm;
        assert_eq!(access_summary(&AccessRules::NoOne), "No one");
        assert_eq!(access_summary(&AccessRules::Everyone), "Everyone");
        let form = AccessForm {
            mode: "some".into(),
            companies: "acme\nglobex, initech".into(),
            rules: vec![RuleForm {
                rollout: "25".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let rules = form.to_rules().unwrap();
        assert_eq!(access_summary(&rules), "3 companies · anyone at 25 %");
        assert_eq!(AccessForm::from_rules(&rules).to_rules().unwrap(), rules);
    }

    #[test]
    fn keys_are_suggested_from_names() {
        assert_eq!(suggested_key("New checkout"), "new-checkout");
        assert_eq!(suggested_key("  Dark mode (beta)! "), "dark-mode-beta");
        assert_eq!(suggested_key("Ünïcode & more"), "n-code-more");
    }
}
