//! What each admin page shows, one query per page: the page's server function decodes its
//! arguments, calls one of these with the caller, and maps the answer to its view. Every query is
//! authorized ([`Permission::Read`], or what the page needs) like a change is. Stored rules come
//! back as [`Decoded`] values, so a page can say which row cannot be read instead of showing
//! "No one" for it.

use std::collections::HashMap;

use super::access::{authorize, Permission};
use super::actor::Actor;
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::page_cache::Counted;
use super::runtime::{Inputs, Runtime};
use super::store::api_keys::ApiKeyInfo;
use super::store::audit::{AuditFilter, AuditRecord, ChangeEvent};
use super::store::entities::{EntityKind, EntityPage, EntityRow};
use super::store::flags::{current_versions, latest_version, Decoded, FlagFilter};
use super::store::members::Invitation;
use super::store::segments::SegmentRecord;
use super::store::stages::StageDefault;
use crate::eval::{
    compile_access_rules, explain_flag, CompileContext, CompiledRules, Explanation, FlatContext,
};
use crate::model::member::MemberView;
use crate::model::webhook::{WebhookDelivery, WebhookEndpoint};
use crate::model::ChangeRequest;
use crate::model::{
    AccessRules, Condition, Environment, Flag, FlagKey, JsObject, JsValue, PlanTemplate, ReleasePlan,
    ReleaseStage, RemoteConfig, ScheduledChange, Segment, SegmentCondition, SegmentKey, TargetedAccess,
    Version,
};

/// Most flags an access editor suggests: a page may hold a dozen editors (the release stages'
/// defaults), and with 10,000 flags every one listing them all made pages of megabytes. Any key
/// can still be typed; the server checks it on save.
pub const SUGGESTED_AT_MOST: usize = 200;

/// Most ids [`Service::entity_labels`] looks up at once.
pub const LABELS_AT_ONCE: usize = 100;

/// The suggestions of the access editor in one environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EditorOptions {
    pub company_fields: Vec<String>,
    pub user_fields: Vec<String>,
    pub segments: Vec<String>,
    pub flags: Vec<String>,
}

/// Known companies that rules let in, out of all known companies of the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessCount {
    pub with_access: usize,
    pub known: usize,
    /// Company ids, then user ids, the rules list by name that no SDK has reported in the
    /// environment yet (a typo, or a customer not seen so far).
    pub unseen_companies: Vec<String>,
    pub unseen_users: Vec<String>,
}

/// The start page.
#[derive(Clone, Debug, PartialEq)]
pub struct Overview {
    pub environments: Vec<Environment>,
    pub stages: Vec<ReleaseStage>,
    /// Every pending scheduled change, soonest first.
    pub scheduled: Vec<ScheduledChange>,
    /// The caller's own scheduled changes of the last 30 days that could not be applied.
    pub not_applied: Vec<ScheduledChange>,
    /// Open change requests the caller may approve (not their own, not approved by them yet).
    pub to_review: Vec<ChangeRequest>,
    /// `(stage id, flags)` of the flags not archived, for the stages that have any.
    pub flags_per_stage: Vec<(i64, i64)>,
    /// The newest entries of the audit log.
    pub recent: Vec<AuditRecord>,
    /// Each environment's publishable key, by environment id (safe to show: it ships in
    /// browser code).
    pub publishable_keys: Vec<(i64, String)>,
}

/// Audit entries the overview shows.
const OVERVIEW_RECENT: i64 = 6;

/// A flag's current access rules in each environment, by environment name.
pub type AccessByEnvironment = Vec<(String, Decoded<AccessRules>)>;

/// One page of the flags list.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagList {
    pub flags: Vec<(Flag, AccessByEnvironment)>,
    pub total: i64,
    pub environments: Vec<Environment>,
    pub stages: Vec<ReleaseStage>,
    pub members: Vec<MemberView>,
}

/// A flag with its current access rules and their version in every environment.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagDetail {
    pub flag: Flag,
    pub stages: Vec<ReleaseStage>,
    /// Per environment: the current rules and their version (0: never set, No one).
    pub access: Vec<(Environment, AccessRules, i64)>,
}

/// A flag's page in one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagPage {
    pub flag: Flag,
    pub stages: Vec<ReleaseStage>,
    pub environments: Vec<Environment>,
    pub environment: Environment,
    /// Every version of the access rules here, newest first.
    pub history: Vec<Version<Decoded<AccessRules>>>,
    /// What moving to each other stage would change: `(stage id, environment key, current,
    /// the stage's default)` where they differ.
    pub stage_moves: Vec<(i64, String, AccessRules, AccessRules)>,
    /// The other environments with the flag's current rules there.
    pub others: Vec<(Environment, Decoded<AccessRules>)>,
    pub config: Decoded<RemoteConfig>,
    /// Every version of the remote config here, newest first.
    pub config_history: Vec<Version<Decoded<RemoteConfig>>>,
    /// Known companies the saved rules let in (as served), out of all known.
    pub access: AccessCount,
    pub options: EditorOptions,
    /// The flag's pending scheduled changes (soonest first), then its latest settled ones.
    pub scheduled: Vec<ScheduledChange>,
    /// The flag's release plans, the running ones first.
    pub plans: Vec<ReleasePlan>,
    /// The templates a plan can start from.
    pub templates: Vec<PlanTemplate>,
    /// The flag's change requests: the open ones, then the latest closed ones.
    pub requests: Vec<ChangeRequest>,
    /// Who an open request's access would let in: (request id, the count).
    pub request_counts: Vec<(i64, AccessCount)>,
}

/// The segments list for one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentList {
    /// Each segment, the flags that use it, and how many known companies it holds.
    pub segments: Vec<(SegmentRecord, Vec<String>, usize)>,
    pub environments: Vec<Environment>,
    pub environment: Environment,
    pub companies: usize,
    /// When the companies were counted (epoch ms).
    pub counted_at: i64,
}

/// A company or user and what it is associated with.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityDetail {
    pub environments: Vec<Environment>,
    pub environment: Environment,
    pub row: Option<EntityRow>,
    /// The users of a company, or the companies of a user.
    pub related: Vec<String>,
}

/// The flags of an environment decided for one company or user, and one page of them explained.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessCheck {
    pub context: FlatContext,
    /// For a user: the company evaluated with, and how many companies the user belongs to.
    pub company: Option<(String, usize)>,
    /// `(key, name, explanation)` per flag of the page, by key.
    pub flags: Vec<(String, String, Explanation)>,
    /// Served flags in the environment.
    pub total: usize,
    /// Of those, how many are enabled for the company or user.
    pub enabled: usize,
    /// How many match the filter (the pages' total).
    pub matching: usize,
}

/// Which flags of an access check are explained: those whose key or name contains `search` (any
/// case), enabled or disabled ones only when `enabled` says so, one page of `size`.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckFilter {
    pub search: String,
    pub enabled: Option<bool>,
    pub page: usize,
    pub size: usize,
}

impl CheckFilter {
    /// Every flag, on one page.
    pub fn all() -> CheckFilter {
        CheckFilter {
            search: String::new(),
            enabled: None,
            page: 0,
            size: usize::MAX,
        }
    }

    fn admits(&self, needle: &str, key: &str, name: &str, enabled: bool) -> bool {
        self.enabled.is_none_or(|wanted| wanted == enabled)
            && (needle.is_empty()
                || key.to_lowercase().contains(needle)
                || name.to_lowercase().contains(needle))
    }
}

/// One page of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub total: i64,
    pub actors: Vec<String>,
}

/// The release-stages settings.
#[derive(Clone, Debug, PartialEq)]
pub struct StagesPage {
    /// Each stage and how many flags are in it.
    pub stages: Vec<(ReleaseStage, i64)>,
    pub environments: Vec<Environment>,
    pub defaults: Vec<StageDefault>,
    /// The editor's suggestions per environment key.
    pub options: Vec<(String, EditorOptions)>,
}

/// The team settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub members: Vec<MemberView>,
    pub invitations: Vec<Invitation>,
}

/// The segments a rule set refers to, directly or through a condition.
fn referenced_segments(rules: &AccessRules) -> Vec<&SegmentKey> {
    let AccessRules::Some(TargetedAccess { segments, rules, .. }) = rules else {
        return Vec::new();
    };
    let in_rules = rules.iter().flat_map(|r| &r.conditions).filter_map(|c| match c {
        Condition::Segment { segment, .. } => Some(segment),
        _ => None,
    });
    segments.iter().chain(in_rules).collect()
}

impl Service {
    fn serving(&self) -> ServiceResult<&Runtime> {
        self.runtime().ok_or(ServiceError::Internal)
    }

    /// The environment with `key`; the production one (then the first) when `key` is empty or
    /// unknown.
    fn pick(environments: &[Environment], key: &str) -> ServiceResult<Environment> {
        environments
            .iter()
            .find(|e| e.key.as_str() == key)
            .or_else(|| environments.iter().find(|e| e.is_production))
            .or_else(|| environments.first())
            .cloned()
            .ok_or_else(|| ServiceError::NotFound("environment".into()))
    }

    pub async fn environments(&self, actor: &Actor) -> ServiceResult<Vec<Environment>> {
        authorize(actor, Permission::Read)?;
        Ok(self.store().environments().await?)
    }

    pub async fn release_stages(&self, actor: &Actor) -> ServiceResult<Vec<ReleaseStage>> {
        authorize(actor, Permission::Read)?;
        Ok(self.store().release_stages().await?)
    }

    pub async fn members(&self, actor: &Actor) -> ServiceResult<Vec<MemberView>> {
        authorize(actor, Permission::Read)?;
        Ok(self.store().members().await?)
    }

    pub async fn overview(&self, actor: &Actor) -> ServiceResult<Overview> {
        let environments = self.environments(actor).await?;
        let month_ago = self.clock().now_ms() - 30 * 24 * 3600 * 1000;
        let not_applied = match actor.member_id() {
            Some(id) => self.store().unapplied_changes(id, month_ago).await?,
            None => Vec::new(),
        };
        let me = actor.member_id();
        let to_review = self
            .store()
            .open_requests()
            .await?
            .into_iter()
            .filter(|r| {
                me.is_some() && r.created_by != me && !r.approvals.iter().any(|(id, _)| Some(*id) == me)
            })
            .collect();
        let mut publishable_keys = Vec::with_capacity(environments.len());
        for environment in &environments {
            if let Some(key) = self.store().publishable_key(environment.id).await? {
                publishable_keys.push((environment.id, key));
            }
        }
        let recent = self
            .store()
            .filtered_audit_entries(&AuditFilter::default(), 0, OVERVIEW_RECENT)
            .await?;
        Ok(Overview {
            to_review,
            environments,
            stages: self.store().release_stages().await?,
            scheduled: self.store().pending_changes().await?,
            not_applied,
            flags_per_stage: self.store().live_stage_flag_counts().await?,
            recent,
            publishable_keys,
        })
    }

    /// The release-plan templates, and the stages their milestones can move a flag to.
    pub async fn plan_templates(
        &self,
        actor: &Actor,
    ) -> ServiceResult<(Vec<PlanTemplate>, Vec<ReleaseStage>)> {
        authorize(actor, Permission::Read)?;
        Ok((
            self.store().plan_templates().await?,
            self.store().release_stages().await?,
        ))
    }

    /// Every running release plan (the flags list and the board show their progress).
    pub async fn running_plans(&self, actor: &Actor) -> ServiceResult<Vec<ReleasePlan>> {
        authorize(actor, Permission::Read)?;
        Ok(self.store().running_plans().await?)
    }

    /// One page of the flags that match `filter`, with their access summary inputs per
    /// environment (only the shown flags' rules are read).
    pub async fn flag_list(
        &self,
        actor: &Actor,
        filter: &FlagFilter,
        page: usize,
        size: usize,
    ) -> ServiceResult<FlagList> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let offset = page.saturating_mul(size).min(i64::MAX as usize) as i64;
        let (shown, total) = store.flags_page(filter, offset, size as i64).await?;
        let environments = store.environments().await?;
        let ids: Vec<i64> = shown.iter().map(|f| f.id).collect();
        let mut access: HashMap<(i64, i64), Decoded<AccessRules>> = HashMap::new();
        for environment in &environments {
            for version in store.current_access_rules_of(environment.id, &ids).await? {
                access.insert((version.flag_id, environment.id), version.value);
            }
        }
        let flags = shown
            .into_iter()
            .map(|flag| {
                let per_environment = environments
                    .iter()
                    .map(|e| {
                        let rules = access.remove(&(flag.id, e.id)).unwrap_or(Ok(AccessRules::NoOne));
                        (e.name.clone(), rules)
                    })
                    .collect();
                (flag, per_environment)
            })
            .collect();
        Ok(FlagList {
            flags,
            total,
            environments,
            stages: store.release_stages().await?,
            members: store.members().await?,
        })
    }

    /// A flag with its access in every environment (the management API's read of one flag).
    pub async fn flag_detail(&self, actor: &Actor, key: &str) -> ServiceResult<FlagDetail> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let flag = store.known_flag(key).await?;
        let mut access = Vec::new();
        for environment in store.environments().await? {
            let current = store.current_access_rules_of(environment.id, &[flag.id]).await?;
            let (rules, version) = match current.into_iter().next() {
                Some(version) => (version.value?, version.version),
                None => (AccessRules::NoOne, 0),
            };
            access.push((environment, rules, version));
        }
        Ok(FlagDetail {
            flag,
            stages: store.release_stages().await?,
            access,
        })
    }

    /// The flag `key`'s remote config in the environment `environment` (its key; not found
    /// when there is none).
    pub async fn flag_config(
        &self,
        actor: &Actor,
        key: &str,
        environment: &str,
    ) -> ServiceResult<RemoteConfig> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let flag = store.known_flag(key).await?;
        let environments = store.environments().await?;
        let Some(environment) = environments.iter().find(|e| e.key.as_str() == environment) else {
            return Err(ServiceError::NotFound(format!("environment {environment:?}")));
        };
        let mut conn = store.pool().acquire().await?;
        let config = latest_version::<RemoteConfig>(&mut conn, flag.id, environment.id).await?;
        Ok(config.map_or(Ok(RemoteConfig::default()), |v| v.value)?)
    }

    /// What moving the flag `key` into each other stage would replace: `(stage id, environment
    /// key, current rules, the stage's default)` where they differ, read from the flag's own
    /// rules (the management API's and the command line's preview; the flag page has the same).
    pub async fn stage_move_preview(
        &self,
        actor: &Actor,
        key: &str,
    ) -> ServiceResult<(FlagDetail, Vec<(i64, String, AccessRules, AccessRules)>)> {
        let detail = self.flag_detail(actor, key).await?;
        let defaults = self.store().stage_defaults().await?;
        let mut moves = Vec::new();
        for (environment, current, _) in &detail.access {
            for default in defaults
                .iter()
                .filter(|d| d.environment_id == environment.id && d.stage_id != detail.flag.stage_id)
            {
                if *current != default.rules {
                    moves.push((
                        default.stage_id,
                        environment.key.to_string(),
                        current.clone(),
                        default.rules.clone(),
                    ));
                }
            }
        }
        Ok((detail, moves))
    }

    /// A flag's page in the environment `environment` (production when unknown).
    pub async fn flag_page(&self, actor: &Actor, key: &str, environment: &str) -> ServiceResult<FlagPage> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let flag = store.known_flag(key).await?;
        let environments = store.environments().await?;
        let current = Self::pick(&environments, environment)?;
        let history = store.history::<AccessRules>(flag.id, current.id).await?;
        let stages = store.release_stages().await?;
        let defaults = store.stage_defaults().await?;
        let mut conn = store.pool().acquire().await?;
        let mut others = Vec::new();
        let mut stage_moves = Vec::new();
        for environment in &environments {
            let rules = latest_version::<AccessRules>(&mut conn, flag.id, environment.id)
                .await?
                .map_or(Ok(AccessRules::NoOne), |v| v.value);
            for default in defaults
                .iter()
                .filter(|d| d.environment_id == environment.id && d.stage_id != flag.stage_id)
            {
                if let Ok(current) = &rules {
                    if *current != default.rules {
                        let change = (current.clone(), default.rules.clone());
                        stage_moves.push((default.stage_id, environment.key.to_string(), change.0, change.1));
                    }
                }
            }
            if environment.id != current.id {
                others.push((environment.clone(), rules));
            }
        }
        drop(conn);
        let config_history = store.history::<RemoteConfig>(flag.id, current.id).await?;
        let config = config_history
            .first()
            .map_or(Ok(RemoteConfig::default()), |v| v.value.clone());
        let mut access = self.served_access(&flag.key, current.id)?;
        if let Some(Ok(rules)) = history.first().map(|v| &v.value) {
            (access.unseen_companies, access.unseen_users) = self.unseen(current.id, rules)?;
        }
        let options = self.editor_options(current.id).await?;
        let scheduled = store.scheduled_for_flag(flag.id, 10).await?;
        let plans = store.plans_for_flag(flag.id).await?;
        let templates = store.plan_templates().await?;
        let requests = store.requests_for_flag(flag.id).await?;
        let mut request_counts = Vec::new();
        for request in requests.iter().filter(|r| r.status.is_open()) {
            let crate::model::PlannedChange::SetAccess {
                environment, rules, ..
            } = &request.planned
            else {
                continue;
            };
            // A request that no longer compiles says so when it is applied.
            if let Ok(count) = self.count_access(actor, environment, Some(key), rules).await {
                request_counts.push((request.id, count));
            }
        }
        Ok(FlagPage {
            request_counts,
            requests,
            scheduled,
            plans,
            templates,
            flag,
            stages,
            environments,
            environment: current,
            history,
            stage_moves,
            others,
            config,
            config_history,
            access,
            options,
        })
    }

    /// How many known companies the served rules of a flag let in (kept while the environment's
    /// flags and the companies are the same: [`super::page_cache`]).
    fn served_access(&self, key: &FlagKey, environment_id: i64) -> ServiceResult<AccessCount> {
        let runtime = self.serving()?;
        let now = self.clock().now_ms();
        let Some(snapshot) = runtime.snapshot(environment_id) else {
            return Ok(AccessCount::default());
        };
        let generation = runtime.entities().generation();
        let at = (environment_id, key.as_str(), snapshot.version(), generation);
        if let Some((with_access, known)) = self.0.pages.served(at, now) {
            return Ok(AccessCount {
                with_access,
                known,
                ..Default::default()
            });
        }
        let companies = runtime.entities().company_contexts(environment_id);
        let with_access = snapshot.position(key.as_str()).map_or(0, |i| {
            let compiled = &snapshot.compiled[i];
            companies
                .iter()
                .filter(|c| compiled.evaluate(c, now).is_enabled)
                .count()
        });
        self.0.pages.keep_served(at, now, (with_access, companies.len()));
        Ok(AccessCount {
            with_access,
            known: companies.len(),
            ..Default::default()
        })
    }

    /// The company and user ids `rules` list that the environment has never seen.
    fn unseen(&self, environment_id: i64, rules: &AccessRules) -> ServiceResult<(Vec<String>, Vec<String>)> {
        let AccessRules::Some(targeted) = rules else {
            return Ok(Default::default());
        };
        let entities = self.serving()?.entities();
        Ok((
            entities.unseen(environment_id, EntityKind::Company, &targeted.companies),
            entities.unseen(environment_id, EntityKind::User, &targeted.users),
        ))
    }

    async fn editor_options(&self, environment_id: i64) -> ServiceResult<EditorOptions> {
        let (company_fields, user_fields) = self.serving()?.entities().attribute_names(environment_id);
        let segments = self
            .store()
            .segments()
            .await?
            .into_iter()
            .map(|s| s.segment.key.to_string())
            .take(SUGGESTED_AT_MOST)
            .collect();
        let flags = self.store().flag_keys(SUGGESTED_AT_MOST).await?;
        Ok(EditorOptions {
            company_fields,
            user_fields,
            segments,
            flags,
        })
    }

    /// How many known companies of the environment `rules` would let in, compiled against the
    /// stored segments and the other flags' access as a save would (for a flag, under its own
    /// key). A compile failure is an `Invalid` error on the `rules` field.
    pub async fn count_access(
        &self,
        actor: &Actor,
        environment: &str,
        flag: Option<&str>,
        rules: &AccessRules,
    ) -> ServiceResult<AccessCount> {
        authorize(actor, Permission::Read)?;
        let environments = self.store().environments().await?;
        let environment = environments
            .into_iter()
            .find(|e| e.key.as_str() == environment)
            .ok_or_else(|| ServiceError::NotFound(format!("environment {environment}")))?;
        let environment_id = environment.id;
        let mut conn = self.store().pool().acquire().await?;
        let inputs = Inputs::load(&mut conn, environment).await?;
        drop(conn);
        let mut flags = inputs.access_by_key()?;
        let probe = FlagKey::parse(flag.unwrap_or("access-preview"))
            .map_err(|e| ServiceError::invalid("key", e.to_string()))?;
        flags.insert(probe.clone(), rules.clone());
        let cx = CompileContext {
            segments: &inputs.segments,
            flags: &flags,
        };
        let compiled = compile_access_rules(&probe, rules, &cx)
            .map_err(|e| ServiceError::invalid("rules", e.to_string()))?;
        let engine = CompiledRules::compile(compiled.iter().map(|r| &r.filter));
        let now = self.clock().now_ms();
        let companies = self.serving()?.entities().company_contexts(environment_id);
        let with_access = companies
            .iter()
            .filter(|company| engine.evaluate(company, now).matched.is_some())
            .count();
        let (unseen_companies, unseen_users) = self.unseen(environment_id, rules)?;
        Ok(AccessCount {
            with_access,
            known: companies.len(),
            unseen_companies,
            unseen_users,
        })
    }

    /// Companies or users of an environment whose id, name (or a user's email) contains
    /// `search`, most recently seen first.
    pub async fn search_entities(
        &self,
        actor: &Actor,
        environment: &str,
        kind: EntityKind,
        search: &str,
        page: usize,
        size: usize,
    ) -> ServiceResult<(Vec<Environment>, Environment, EntityPage)> {
        authorize(actor, Permission::Read)?;
        let environments = self.store().environments().await?;
        let chosen = Self::pick(&environments, environment)?;
        let search: String = search.chars().take(100).collect();
        let offset = page.saturating_mul(size).min(i64::MAX as usize) as i64;
        let found = self
            .store()
            .search_entities(chosen.id, kind, &search, offset, size as i64)
            .await?;
        Ok((environments, chosen, found))
    }

    /// The names of companies (or users) of an environment for the access editor's chips: per id,
    /// `None` when it was never reported there. At most [`LABELS_AT_ONCE`] ids are looked up.
    pub async fn entity_labels(
        &self,
        actor: &Actor,
        environment: &str,
        kind: EntityKind,
        ids: &[String],
    ) -> ServiceResult<Vec<(String, Option<String>)>> {
        authorize(actor, Permission::Read)?;
        let environments = self.store().environments().await?;
        let chosen = Self::pick(&environments, environment)?;
        let ids = &ids[..ids.len().min(LABELS_AT_ONCE)];
        let labels = self.serving()?.entities().labels(chosen.id, kind, ids);
        Ok(ids.iter().cloned().zip(labels).collect())
    }

    /// One company or user of an environment.
    pub async fn entity_detail(
        &self,
        actor: &Actor,
        kind: EntityKind,
        environment: &str,
        id: &str,
    ) -> ServiceResult<EntityDetail> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let environments = store.environments().await?;
        let chosen = Self::pick(&environments, environment)?;
        let row = store.entity_row(chosen.id, kind, id).await?;
        let related = match kind {
            EntityKind::Company => store.company_user_ids(chosen.id, id).await?,
            EntityKind::User => store.user_company_ids(chosen.id, id).await?,
        };
        Ok(EntityDetail {
            environments,
            environment: chosen,
            row,
            related,
        })
    }

    /// Every served flag of the environment decided for one company or user, with its stored
    /// attributes, as the SDKs would see it, and the flags `filter` picks explained; works for ids
    /// never reported too (id only). Deciding is the evaluation API's work (microseconds a
    /// flag); only the page is explained, so the check stays fast with many flags.
    pub async fn check_access(
        &self,
        actor: &Actor,
        kind: EntityKind,
        environment: &str,
        id: &str,
        filter: &CheckFilter,
    ) -> ServiceResult<AccessCheck> {
        authorize(actor, Permission::Read)?;
        let id = id.trim();
        if id.is_empty() {
            let what = match kind {
                EntityKind::Company => "company",
                EntityKind::User => "user",
            };
            return Err(ServiceError::invalid("id", format!("enter the id of a {what}")));
        }
        let environments = self.store().environments().await?;
        let chosen = Self::pick(&environments, environment)?;
        let stored = self.store().entity(chosen.id, kind, id).await?;
        let snapshot = self.serving()?.snapshot(chosen.id).ok_or_else(|| {
            ServiceError::Refused("the environment's flags are not loaded; try again".into())
        })?;
        let names: HashMap<String, String> = self.store().flag_names().await?.into_iter().collect();
        let mut entities = vec![entity_value(kind, id, stored.as_ref().map(|s| &s.attributes))];
        // A user is evaluated as the SDKs see them: with their company (the first, by id, of
        // those they were reported with), so company rules apply to them too.
        let mut company = None;
        if kind == EntityKind::User {
            let companies = self.store().user_company_ids(chosen.id, id).await?;
            if let Some(first) = companies.first() {
                let stored = self.store().entity(chosen.id, EntityKind::Company, first).await?;
                entities.push(entity_value(
                    EntityKind::Company,
                    first,
                    stored.as_ref().map(|s| &s.attributes),
                ));
                company = Some((first.clone(), companies.len()));
            }
        }
        let mut context = crate::eval::flatten(&JsValue::object(entities));
        context.bind(&snapshot.fields);
        let now = self.clock().now_ms();
        let needle = filter.search.trim().to_lowercase();
        let (mut enabled, mut matching) = (0, Vec::new());
        for (i, compiled) in snapshot.compiled.iter().enumerate() {
            let on = compiled.evaluate_targeting(&context, now).matched.is_some();
            enabled += usize::from(on);
            let key = compiled.key();
            let name = names.get(key).map_or(key, String::as_str);
            if filter.admits(&needle, key, name, on) {
                matching.push(i);
            }
        }
        let start = filter.page.saturating_mul(filter.size);
        let flags = matching
            .iter()
            .skip(start)
            .take(filter.size)
            .map(|&i| {
                let definition = &snapshot.definitions[i];
                let key = definition.key.to_string();
                let name = names.get(&key).cloned().unwrap_or_else(|| key.clone());
                (key, name, explain_flag(definition, &context, now))
            })
            .collect();
        Ok(AccessCheck {
            context,
            company,
            flags,
            total: snapshot.compiled.len(),
            enabled,
            matching: matching.len(),
        })
    }

    /// For each segment, the keys (sorted) of the flags whose current access rules in any
    /// environment refer to it.
    async fn flags_using_segments(
        &self,
        environments: &[Environment],
    ) -> ServiceResult<HashMap<SegmentKey, Vec<String>>> {
        let keys: HashMap<i64, String> = self
            .store()
            .flags()
            .await?
            .into_iter()
            .map(|f| (f.id, f.key.to_string()))
            .collect();
        let mut conn = self.store().pool().acquire().await?;
        let mut used: HashMap<SegmentKey, Vec<String>> = HashMap::new();
        for environment in environments {
            for version in current_versions::<AccessRules>(&mut conn, environment.id).await? {
                let (Some(flag), Ok(rules)) = (keys.get(&version.flag_id), &version.value) else {
                    continue;
                };
                for segment in referenced_segments(rules) {
                    let flags = used.entry(segment.clone()).or_default();
                    if !flags.contains(flag) {
                        flags.push(flag.clone());
                    }
                }
            }
        }
        used.values_mut().for_each(|flags| flags.sort());
        Ok(used)
    }

    /// The segments, what uses them and how many known companies of the environment each holds
    /// (kept between views while they hold: [`super::page_cache`]).
    pub async fn segment_list(&self, actor: &Actor, environment: &str) -> ServiceResult<SegmentList> {
        authorize(actor, Permission::Read)?;
        let environments = self.store().environments().await?;
        let chosen = Self::pick(&environments, environment)?;
        let records = self.store().segments().await?;
        let mut used_by = match self.0.pages.used_by(&environments) {
            Some(used) => used,
            None => {
                let used = self.flags_using_segments(&environments).await?;
                self.0.pages.keep_used_by(&environments, &used);
                used
            }
        };
        let counted = self.segment_counts(chosen.id, &records).await?;
        let segments = records
            .into_iter()
            .map(|record| {
                let users = used_by.remove(&record.segment.key).unwrap_or_default();
                let matching = counted.counts.get(&record.segment.key).copied().unwrap_or(0);
                (record, users, matching)
            })
            .collect();
        Ok(SegmentList {
            segments,
            environments,
            environment: chosen,
            companies: counted.companies,
            counted_at: counted.at,
        })
    }

    /// How many known companies of the environment each segment holds, counted again only when
    /// the kept counts no longer hold; the counting runs off the request threads.
    async fn segment_counts(&self, environment_id: i64, records: &[SegmentRecord]) -> ServiceResult<Counted> {
        let segments: HashMap<SegmentKey, Segment> = records
            .iter()
            .map(|r| (r.segment.key.clone(), r.segment.clone()))
            .collect();
        let fingerprint = super::page_cache::fingerprint(records.iter().map(|r| &r.segment));
        let entities = self.serving()?.entities();
        // Read before the companies, so a company reported meanwhile makes the next view recount.
        let generation = entities.generation();
        let now = self.clock().now_ms();
        if let Some(kept) = self.0.pages.counts(environment_id, fingerprint, generation, now) {
            return Ok(kept);
        }
        let companies = entities.company_contexts(environment_id);
        let counted = tokio::task::spawn_blocking(move || -> ServiceResult<Counted> {
            let mut counts = HashMap::with_capacity(segments.len());
            for key in segments.keys() {
                counts.insert(key.clone(), count_matching(&segments, key, &companies, now)?);
            }
            Ok(Counted {
                segments: fingerprint,
                generation,
                at: now,
                companies: companies.len(),
                counts,
            })
        })
        .await
        .map_err(|_| ServiceError::Internal)??;
        self.0.pages.keep_counts(environment_id, counted.clone());
        Ok(counted)
    }

    /// One segment and the flags that use it.
    pub async fn segment_page(
        &self,
        actor: &Actor,
        key: &str,
    ) -> ServiceResult<(SegmentRecord, Vec<String>)> {
        authorize(actor, Permission::Read)?;
        let record = self
            .store()
            .segments()
            .await?
            .into_iter()
            .find(|r| r.segment.key.as_str() == key)
            .ok_or_else(|| ServiceError::NotFound(format!("segment {key}")))?;
        let environments = self.store().environments().await?;
        let used_by = self
            .flags_using_segments(&environments)
            .await?
            .remove(&record.segment.key)
            .unwrap_or_default();
        Ok((record, used_by))
    }

    /// How many known companies of each environment unsaved segment conditions match:
    /// `(environment name, matching, known)`. A condition that does not compile is an `Invalid`
    /// error on `conditions`.
    pub async fn preview_segment(
        &self,
        actor: &Actor,
        conditions: Vec<SegmentCondition>,
    ) -> ServiceResult<Vec<(String, usize, usize)>> {
        authorize(actor, Permission::Read)?;
        let segment = Segment {
            key: SegmentKey::parse("segment-preview").map_err(|_| ServiceError::Internal)?,
            name: "preview".into(),
            conditions,
        };
        let mut segments: HashMap<SegmentKey, Segment> = self
            .store()
            .segments()
            .await?
            .into_iter()
            .map(|r| (r.segment.key.clone(), r.segment))
            .collect();
        let key = segment.key.clone();
        segments.insert(key.clone(), segment);
        let now = self.clock().now_ms();
        let mut counts = Vec::new();
        for environment in self.store().environments().await? {
            let companies = self.serving()?.entities().company_contexts(environment.id);
            let matching = count_matching(&segments, &key, &companies, now)?;
            counts.push((environment.name, matching, companies.len()));
        }
        Ok(counts)
    }

    /// One page of the audit log entries that match `filter`, newest first.
    pub async fn audit_page(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        page: i64,
        size: i64,
    ) -> ServiceResult<AuditPage> {
        authorize(actor, Permission::Read)?;
        let store = self.store();
        let page = page.max(0);
        Ok(AuditPage {
            total: store.filtered_audit_count(filter).await?,
            entries: store
                .filtered_audit_entries(filter, page.saturating_mul(size), size)
                .await?,
            actors: store.audit_actor_labels().await?,
        })
    }

    /// The change-event outbox after event `after_id`, oldest first, at most `limit` events.
    pub async fn change_events(
        &self,
        actor: &Actor,
        after_id: i64,
        limit: i64,
    ) -> ServiceResult<Vec<ChangeEvent>> {
        authorize(actor, Permission::Read)?;
        Ok(self.store().change_events(after_id, limit).await?)
    }

    pub async fn stages_page(&self, actor: &Actor) -> ServiceResult<StagesPage> {
        authorize(actor, Permission::Administer)?;
        let store = self.store();
        let counts = store.stage_flag_counts().await?;
        let stages = store
            .release_stages()
            .await?
            .into_iter()
            .map(|s| {
                let flags = counts.iter().find(|(id, _)| *id == s.id).map_or(0, |(_, n)| *n);
                (s, flags)
            })
            .collect();
        let environments = store.environments().await?;
        let mut options = Vec::new();
        for environment in &environments {
            options.push((
                environment.key.to_string(),
                self.editor_options(environment.id).await?,
            ));
        }
        Ok(StagesPage {
            stages,
            defaults: store.stage_defaults().await?,
            environments,
            options,
        })
    }

    pub async fn team(&self, actor: &Actor) -> ServiceResult<Team> {
        authorize(actor, Permission::Administer)?;
        Ok(Team {
            members: self.store().members().await?,
            invitations: self.store().open_invitations(self.clock().now_ms()).await?,
        })
    }

    /// Every API key (secret ones by prefix only) and the environments.
    pub async fn api_keys(&self, actor: &Actor) -> ServiceResult<(Vec<Environment>, Vec<ApiKeyInfo>)> {
        authorize(actor, Permission::Administer)?;
        Ok((self.store().environments().await?, self.store().api_keys().await?))
    }

    /// The webhook endpoints, each with its newest `deliveries` deliveries (admins: the
    /// endpoints carry their signing secrets).
    pub async fn webhooks(
        &self,
        actor: &Actor,
        deliveries: i64,
    ) -> ServiceResult<Vec<(WebhookEndpoint, Vec<WebhookDelivery>)>> {
        authorize(actor, Permission::Administer)?;
        let mut endpoints = Vec::new();
        for endpoint in self.store().webhook_endpoints().await? {
            let log = self.store().webhook_deliveries(endpoint.id, deliveries).await?;
            endpoints.push((endpoint, log));
        }
        Ok(endpoints)
    }
}

/// `{company: {…attributes, id}}` (or `user`): the id checked wins over a stored `id` attribute.
/// A company or user as the context's `company` or `user` object: its attributes and its id.
fn entity_value(kind: EntityKind, id: &str, attributes: Option<&JsObject>) -> (&'static str, JsValue) {
    let entries = attributes
        .map(|a| a.entries().to_vec())
        .unwrap_or_default()
        .into_iter()
        .chain([("id".to_string(), JsValue::String(id.to_string()))]);
    let entity = JsValue::Object(JsObject::from_entries(entries));
    let name = match kind {
        EntityKind::Company => "company",
        EntityKind::User => "user",
    };
    (name, entity)
}

/// How many of `companies` are in the segment `key`, evaluated as a flag that targets only that
/// segment.
fn count_matching(
    segments: &HashMap<SegmentKey, Segment>,
    key: &SegmentKey,
    companies: &[FlatContext],
    now_ms: i64,
) -> ServiceResult<usize> {
    let probe = FlagKey::parse("segment-preview").map_err(|_| ServiceError::Internal)?;
    let rules = AccessRules::Some(TargetedAccess {
        segments: vec![key.clone()],
        ..Default::default()
    });
    let flags = HashMap::new();
    let cx = CompileContext {
        segments,
        flags: &flags,
    };
    let compiled = compile_access_rules(&probe, &rules, &cx)
        .map_err(|e| ServiceError::invalid("conditions", e.to_string()))?;
    let engine = CompiledRules::compile(compiled.iter().map(|r| &r.filter));
    Ok(companies
        .iter()
        .filter(|company| engine.evaluate(company, now_ms).matched.is_some())
        .count())
}
