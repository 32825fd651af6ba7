//! The one door: every change to Gatehouse, from the admin UI, the command line, an import, the
//! ingest endpoints or anything built later, is a [`Change`] applied by [`Service::apply`] (or a
//! batch by [`Service::apply_all`]). See the module notes of [`crate::service`] for the steps.

use super::access::{authorize, Permission};
use super::actor::Actor;
use super::error::{ServiceError, ServiceResult};
use super::flags::{AccessChange, NewFlag};
use super::handle::Service;
use super::ingest::{self, IngestWrite};
use super::runtime::usage::UsageBatch;
use super::runtime::{Inputs, Snapshot};
use super::stages::{Direction, StageRef};
use super::tokens::{self, CreatedToken, NewTokenRequest};
use super::write::Write;
use super::{
    environments, flags, keys, members, plans, requests, schedule, segments, stages, usage, webhooks,
};
use crate::model::member::{MemberView, Role};
use crate::model::{
    AccessRules, ConfigVariant, Flag, Milestone, PlannedChange, ReleaseStage, ScheduleStatus,
    SegmentCondition,
};
use crate::service::store::members::Invitation;

/// A change to Gatehouse, with everything needed to apply it.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    CreateFlag(NewFlag),
    /// A flag's own fields; the stage is set as it is, without applying the stage's defaults.
    UpdateFlag {
        key: String,
        name: String,
        description: String,
        owner_id: Option<i64>,
        permanent: bool,
        stage: StageRef,
        archived: bool,
    },
    SetAccess {
        flag: String,
        environment: String,
        change: AccessChange,
        /// The version the editor started from; a save made meanwhile refuses this one.
        expected_version: Option<i64>,
    },
    /// Moves a flag into a stage and applies the stage's default rules where it has them.
    MoveStage {
        flag: String,
        stage_id: i64,
    },
    SetArchived {
        flag: String,
        archived: bool,
    },
    SetRemoteConfig {
        flag: String,
        environment: String,
        variants: Vec<ConfigVariant>,
        expected_version: Option<i64>,
    },
    /// Creates (`create`) or replaces a segment.
    SaveSegment {
        key: String,
        name: String,
        description: String,
        conditions: Vec<SegmentCondition>,
        create: bool,
    },
    AddStage {
        name: String,
        color: String,
    },
    UpdateStage {
        stage: StageRef,
        name: String,
        color: String,
    },
    ReorderStage {
        id: i64,
        direction: Direction,
    },
    /// Deletes a stage; one with flags needs the stage they move to.
    DeleteStage {
        id: i64,
        move_flags_to: Option<i64>,
    },
    /// Sets (`Some`) or clears a stage's default rules in an environment.
    SetStageDefault {
        stage: StageRef,
        environment: String,
        rules: Option<AccessRules>,
    },
    UpdateEnvironment {
        key: String,
        name: String,
        is_production: bool,
    },
    CreateSecretKey {
        environment: String,
        /// What people call it ("" for none).
        name: String,
    },
    /// Gives an environment a new publishable key; the old one works `grace_hours` more.
    RotatePublishableKey {
        environment: String,
        grace_hours: i64,
    },
    /// Names an API key ("" clears the name).
    NameApiKey {
        id: i64,
        name: String,
    },
    /// Revokes the secret key shown as `prefix` (the whole key is accepted too).
    RevokeSecretKey {
        prefix: String,
    },
    AddMember {
        email: String,
        name: String,
        role: Role,
        password: String,
    },
    Invite {
        email: String,
        role: Role,
    },
    AcceptInvitation {
        token: String,
        name: String,
        password: String,
    },
    RevokeInvitation {
        id: i64,
    },
    ChangeRole {
        member_id: i64,
        role: Role,
    },
    RemoveMember {
        member_id: i64,
    },
    /// The acting member's own password.
    ChangePassword {
        current: String,
        new: String,
    },
    /// Plans a change of a flag for `at` (epoch milliseconds) instead of making it now.
    ScheduleChange {
        flag: String,
        at: i64,
        planned: PlannedChange,
    },
    /// Cancels a pending scheduled change.
    CancelScheduled {
        id: i64,
    },
    /// Applies a scheduled change if it is due and pending (the scheduler, as its author).
    ApplyScheduled {
        id: i64,
    },
    /// Marks a due change that could not be applied (the scheduler).
    MarkScheduled {
        id: i64,
        status: ScheduleStatus,
        reason: String,
    },
    /// Creates (`id` `None`) or replaces a release-plan template.
    SavePlanTemplate {
        id: Option<i64>,
        name: String,
        milestones: Vec<Milestone>,
    },
    DeletePlanTemplate {
        id: i64,
    },
    /// Starts a template's plan for a flag in an environment (its first milestone at once).
    StartPlan {
        flag: String,
        environment: String,
        template_id: i64,
    },
    /// Moves a plan from milestone `from` to the next: by hand, or (`automatic`) by the
    /// scheduler once the wait is over.
    AdvancePlan {
        id: i64,
        from: usize,
        automatic: bool,
    },
    /// Pauses or resumes a plan; `note` says why (a pause by the scheduler).
    SetPlanPaused {
        id: i64,
        paused: bool,
        note: String,
    },
    CancelPlan {
        id: i64,
    },
    /// Sets after how many days a temporary flag counts as stale: released (final stage with
    /// Everyone in production) and unchecked (no check in any environment).
    SetStaleSettings {
        released_days: i64,
        unchecked_days: i64,
    },
    /// Sets how many other members must approve a change of access or remote config in an
    /// environment (0: not protected).
    SetProtection {
        environment: String,
        approvals: i64,
    },
    /// Files a change of a protected environment for review, or as a draft.
    FileChangeRequest {
        flag: String,
        planned: PlannedChange,
        note: String,
        draft: bool,
    },
    /// Puts a draft request up for review.
    SubmitChangeRequest {
        id: i64,
    },
    /// Replaces an open request's change (its author); withdraws its approvals.
    EditChangeRequest {
        id: i64,
        planned: PlannedChange,
        note: String,
    },
    ApproveChangeRequest {
        id: i64,
    },
    /// Rejects (a reviewer) or cancels (its author, an admin) an open request.
    CloseChangeRequest {
        id: i64,
        reject: bool,
        comment: String,
    },
    /// Applies an approved request now, or at `at` (as a scheduled change).
    ApplyChangeRequest {
        id: i64,
        at: Option<i64>,
    },
    /// An admin's change of a protected environment without review, with the reason (audited).
    Bypass {
        reason: String,
        change: Box<Change>,
    },
    /// Companies, users, events and flag checks an application reported.
    Ingest {
        environment_id: i64,
        writes: Vec<IngestWrite>,
    },
    /// A personal token of the acting member, or (with a role) an admin's service token.
    CreateToken(NewTokenRequest),
    /// Revokes the token shown as `prefix`: its owner's or an admin's doing.
    RevokeToken {
        prefix: String,
    },
    /// `change`, once per (token, key): a repeat of the key by the same token within a day
    /// changes nothing and yields [`Outcome::Replayed`] (the management API's `Idempotency-Key`).
    Idempotent {
        token_id: i64,
        key: String,
        /// What the request was (method, path, body digest): a key is not reused for another.
        fingerprint: String,
        /// What the answer names (the created flag's key), kept to answer a repeat.
        subject: String,
        change: Box<Change>,
    },
    /// Announces that a flag became stale (Gatehouse itself), once per time it does.
    AnnounceStale(crate::model::StaleFlag),
    /// An admin's change of a webhook endpoint.
    Webhook(super::webhooks::WebhookChange),
    /// The webhook sender's bookkeeping (Gatehouse itself; not audited).
    WebhookWork(super::webhooks::WebhookWork),
    /// What this server counted since its last flush (Gatehouse itself; not audited: counts are
    /// no change of configuration).
    RecordUsage(UsageBatch),
    /// Deletes the usage rows past their retention: hourly rows of hours before `hourly_before`,
    /// daily rows of days before `daily_before` (epoch ms).
    PruneUsage {
        hourly_before: i64,
        daily_before: i64,
    },
}

/// What applying a change produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done,
    Flag(Flag),
    /// The new version of the rules or config that was saved.
    Version(i64),
    Stage(ReleaseStage),
    /// A new secret key, shown once.
    SecretKey(String),
    /// An invitation and the token of its link, shown once.
    Invitation(Invitation, String),
    Member(MemberView),
    /// The id of a scheduled change.
    Scheduled(i64),
    /// Whether a due scheduled change was applied (or a plan advanced) by this call.
    Applied(bool),
    /// The id of what was created (a plan, a plan template).
    Id(i64),
    /// An `Idempotency-Key` seen before: nothing was changed; the first request's subject.
    Replayed(String),
    /// A new access token, shown once.
    Token(CreatedToken),
    /// Webhook deliveries leased to the caller to send.
    Claimed(Vec<super::store::webhooks::Claimed>),
    /// How many hourly and daily usage rows were deleted.
    Pruned {
        hourly: u64,
        daily: u64,
    },
}

impl Outcome {
    pub(super) fn unexpected(self) -> ServiceError {
        tracing::error!(outcome = ?self, "a change produced an outcome its caller did not expect");
        ServiceError::Internal
    }

    pub fn into_flag(self) -> ServiceResult<Flag> {
        match self {
            Outcome::Flag(flag) => Ok(flag),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_version(self) -> ServiceResult<i64> {
        match self {
            Outcome::Version(version) => Ok(version),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_secret_key(self) -> ServiceResult<String> {
        match self {
            Outcome::SecretKey(key) => Ok(key),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_token(self) -> ServiceResult<CreatedToken> {
        match self {
            Outcome::Token(created) => Ok(created),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_invitation(self) -> ServiceResult<(Invitation, String)> {
        match self {
            Outcome::Invitation(invitation, token) => Ok((invitation, token)),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_scheduled(self) -> ServiceResult<i64> {
        match self {
            Outcome::Scheduled(id) => Ok(id),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_id(self) -> ServiceResult<i64> {
        match self {
            Outcome::Id(id) => Ok(id),
            other => Err(other.unexpected()),
        }
    }

    pub fn into_member(self) -> ServiceResult<MemberView> {
        match self {
            Outcome::Member(member) => Ok(member),
            other => Err(other.unexpected()),
        }
    }
}

/// The environments a change holds while it applies.
enum Scope {
    Nothing,
    Every,
    One(String),
}

impl Change {
    /// What the actor needs to make the change.
    pub fn permission(&self) -> Permission {
        match self {
            Change::CreateFlag(_)
            | Change::UpdateFlag { .. }
            | Change::SetAccess { .. }
            | Change::MoveStage { .. }
            | Change::SetArchived { .. }
            | Change::SetRemoteConfig { .. }
            | Change::SaveSegment { .. }
            | Change::ScheduleChange { .. }
            | Change::CancelScheduled { .. }
            | Change::ApplyScheduled { .. }
            | Change::StartPlan { .. }
            | Change::AdvancePlan { .. }
            | Change::SetPlanPaused { .. }
            | Change::CancelPlan { .. }
            | Change::FileChangeRequest { .. }
            | Change::SubmitChangeRequest { .. }
            | Change::EditChangeRequest { .. }
            | Change::ApproveChangeRequest { .. }
            | Change::CloseChangeRequest { .. }
            | Change::ApplyChangeRequest { .. } => Permission::Edit,
            Change::SetProtection { .. } | Change::Bypass { .. } => Permission::Administer,
            Change::Idempotent { change, .. } => change.permission(),
            Change::SetStaleSettings { .. } => Permission::Administer,
            Change::SavePlanTemplate { .. } | Change::DeletePlanTemplate { .. } => Permission::Administer,
            Change::MarkScheduled { .. }
            | Change::RecordUsage(_)
            | Change::PruneUsage { .. }
            | Change::WebhookWork(_)
            | Change::AnnounceStale(_) => Permission::Internal,
            Change::Webhook(_) => Permission::Administer,
            Change::AddStage { .. }
            | Change::UpdateStage { .. }
            | Change::ReorderStage { .. }
            | Change::DeleteStage { .. }
            | Change::SetStageDefault { .. }
            | Change::UpdateEnvironment { .. }
            | Change::CreateSecretKey { .. }
            | Change::RotatePublishableKey { .. }
            | Change::NameApiKey { .. }
            | Change::RevokeSecretKey { .. }
            | Change::AddMember { .. }
            | Change::Invite { .. }
            | Change::RevokeInvitation { .. }
            | Change::ChangeRole { .. }
            | Change::RemoveMember { .. } => Permission::Administer,
            Change::AcceptInvitation { .. } => Permission::Public,
            Change::CreateToken(request) => tokens::create_permission(request),
            Change::RevokeToken { .. } => Permission::OwnAccount,
            Change::ChangePassword { .. } => Permission::OwnAccount,
            Change::Ingest { environment_id, .. } => Permission::Ingest {
                environment_id: *environment_id,
            },
        }
    }

    /// The environments whose served flags the change can alter: held (PostgreSQL row locks)
    /// from before anything is read until the commit.
    fn scope(&self) -> Scope {
        match self {
            Change::CreateFlag(_)
            | Change::UpdateFlag { .. }
            | Change::MoveStage { .. }
            | Change::SetArchived { .. }
            | Change::SaveSegment { .. }
            | Change::ApplyScheduled { .. }
            | Change::StartPlan { .. }
            | Change::AdvancePlan { .. }
            | Change::ApplyChangeRequest { .. } => Scope::Every,
            Change::Bypass { change, .. } | Change::Idempotent { change, .. } => change.scope(),
            Change::SetAccess { environment, .. }
            | Change::SetRemoteConfig { environment, .. }
            | Change::SetStageDefault { environment, .. } => Scope::One(environment.clone()),
            Change::UpdateEnvironment { key, .. } => Scope::One(key.clone()),
            _ => Scope::Nothing,
        }
    }

    /// The form field a refusal of the change's validation belongs to.
    fn validation_field(&self) -> &'static str {
        match self {
            Change::SaveSegment { .. } => "conditions",
            Change::SetRemoteConfig { .. } => "variants",
            _ => "rules",
        }
    }

    async fn write(self, w: &mut Write<'_>) -> ServiceResult<Outcome> {
        match self {
            Change::CreateFlag(new) => flags::create(w, new).await.map(Outcome::Flag),
            Change::UpdateFlag {
                key,
                name,
                description,
                owner_id,
                permanent,
                stage,
                archived,
            } => {
                let details = flags::Details {
                    name,
                    description,
                    owner_id,
                    permanent,
                    stage,
                    archived,
                };
                flags::update(w, &key, details).await.map(|()| Outcome::Done)
            }
            Change::SetAccess {
                flag,
                environment,
                change,
                expected_version,
            } => flags::set_access(w, &flag, &environment, change, expected_version)
                .await
                .map(Outcome::Version),
            Change::MoveStage { flag, stage_id } => flags::move_stage(w, &flag, stage_id)
                .await
                .map(|()| Outcome::Done),
            Change::SetArchived { flag, archived } => flags::set_archived(w, &flag, archived)
                .await
                .map(|()| Outcome::Done),
            Change::SetRemoteConfig {
                flag,
                environment,
                variants,
                expected_version,
            } => flags::set_remote_config(w, &flag, &environment, variants, expected_version)
                .await
                .map(Outcome::Version),
            Change::SaveSegment {
                key,
                name,
                description,
                conditions,
                create,
            } => segments::save(w, &key, &name, &description, conditions, create)
                .await
                .map(|()| Outcome::Done),
            Change::AddStage { name, color } => stages::add(w, &name, &color).await.map(Outcome::Stage),
            Change::UpdateStage { stage, name, color } => stages::update(w, &stage, &name, &color)
                .await
                .map(|()| Outcome::Done),
            Change::ReorderStage { id, direction } => {
                stages::reorder(w, id, direction).await.map(|()| Outcome::Done)
            }
            Change::DeleteStage { id, move_flags_to } => {
                stages::delete(w, id, move_flags_to).await.map(|()| Outcome::Done)
            }
            Change::SetStageDefault {
                stage,
                environment,
                rules,
            } => stages::set_default(w, &stage, &environment, rules)
                .await
                .map(|()| Outcome::Done),
            Change::UpdateEnvironment {
                key,
                name,
                is_production,
            } => environments::update(w, &key, &name, is_production)
                .await
                .map(|()| Outcome::Done),
            Change::CreateSecretKey { environment, name } => keys::create_secret(w, &environment, &name)
                .await
                .map(Outcome::SecretKey),
            Change::RotatePublishableKey {
                environment,
                grace_hours,
            } => keys::rotate_publishable(w, &environment, grace_hours)
                .await
                .map(Outcome::SecretKey),
            Change::NameApiKey { id, name } => keys::name(w, id, &name).await.map(|()| Outcome::Done),
            Change::RevokeSecretKey { prefix } => {
                keys::revoke_secret(w, &prefix).await.map(|()| Outcome::Done)
            }
            Change::AddMember {
                email,
                name,
                role,
                password,
            } => members::add(w, &email, &name, role, &password)
                .await
                .map(Outcome::Member),
            Change::Invite { email, role } => members::invite(w, &email, role)
                .await
                .map(|(invitation, token)| Outcome::Invitation(invitation, token)),
            Change::AcceptInvitation {
                token,
                name,
                password,
            } => members::accept_invitation(w, &token, &name, &password)
                .await
                .map(Outcome::Member),
            Change::RevokeInvitation { id } => {
                members::revoke_invitation(w, id).await.map(|()| Outcome::Done)
            }
            Change::ChangeRole { member_id, role } => members::change_role(w, member_id, role)
                .await
                .map(Outcome::Member),
            Change::RemoveMember { member_id } => members::remove(w, member_id).await.map(|()| Outcome::Done),
            Change::ChangePassword { current, new } => members::change_password(w, &current, &new)
                .await
                .map(|()| Outcome::Done),
            Change::ScheduleChange { flag, at, planned } => schedule::schedule(w, &flag, at, planned)
                .await
                .map(Outcome::Scheduled),
            Change::CancelScheduled { id } => schedule::cancel(w, id).await.map(|()| Outcome::Done),
            Change::ApplyScheduled { id } => schedule::apply(w, id).await.map(Outcome::Applied),
            Change::MarkScheduled { id, status, reason } => schedule::mark(w, id, status, &reason)
                .await
                .map(|()| Outcome::Done),
            Change::SavePlanTemplate { id, name, milestones } => {
                plans::save_template(w, id, &name, milestones)
                    .await
                    .map(Outcome::Id)
            }
            Change::DeletePlanTemplate { id } => plans::delete_template(w, id).await.map(|()| Outcome::Done),
            Change::StartPlan {
                flag,
                environment,
                template_id,
            } => plans::start(w, &flag, &environment, template_id)
                .await
                .map(Outcome::Id),
            Change::AdvancePlan { id, from, automatic } => {
                plans::advance(w, id, from, automatic).await.map(Outcome::Applied)
            }
            Change::SetPlanPaused { id, paused, note } => plans::set_paused(w, id, paused, &note)
                .await
                .map(|()| Outcome::Done),
            Change::CancelPlan { id } => plans::cancel(w, id).await.map(|()| Outcome::Done),
            Change::SetStaleSettings {
                released_days,
                unchecked_days,
            } => usage::set_stale_settings(w, released_days, unchecked_days)
                .await
                .map(|()| Outcome::Done),
            Change::SetProtection {
                environment,
                approvals,
            } => requests::protect(w, &environment, approvals)
                .await
                .map(|()| Outcome::Done),
            Change::SubmitChangeRequest { id } => requests::submit(w, id).await.map(|()| Outcome::Done),
            Change::FileChangeRequest {
                flag,
                planned,
                note,
                draft,
            } => requests::file(w, &flag, planned, &note, draft)
                .await
                .map(Outcome::Id),
            Change::EditChangeRequest { id, planned, note } => requests::edit(w, id, planned, &note)
                .await
                .map(|()| Outcome::Done),
            Change::ApproveChangeRequest { id } => requests::approve(w, id).await.map(|()| Outcome::Done),
            Change::CloseChangeRequest { id, reject, comment } => requests::close(w, id, reject, &comment)
                .await
                .map(|()| Outcome::Done),
            Change::ApplyChangeRequest { id, at } => requests::apply(w, id, at).await.map(|()| Outcome::Done),
            Change::Bypass { reason, change } => {
                let (flag, environment) = match change.as_ref() {
                    Change::SetAccess {
                        flag, environment, ..
                    }
                    | Change::SetRemoteConfig {
                        flag, environment, ..
                    } => (flag.clone(), environment.clone()),
                    _ => {
                        return Err(ServiceError::invalid(
                            "change",
                            "only access and remote config changes bypass review",
                        ))
                    }
                };
                requests::bypass(w, &flag, &environment, &reason).await?;
                let outcome = Box::pin(change.write(w)).await;
                w.reviewed = false;
                outcome
            }
            Change::Ingest {
                environment_id,
                writes,
            } => ingest::record(w, environment_id, &writes)
                .await
                .map(|()| Outcome::Done),
            Change::CreateToken(request) => tokens::create(w, request).await.map(Outcome::Token),
            Change::Idempotent {
                token_id,
                key,
                fingerprint,
                subject,
                change,
            } => {
                if let Some(first) = tokens::remember(w, token_id, &key, &fingerprint, &subject).await? {
                    return Ok(Outcome::Replayed(first));
                }
                Box::pin(change.write(w)).await
            }
            Change::RevokeToken { prefix } => tokens::revoke(w, &prefix).await.map(|()| Outcome::Done),
            Change::AnnounceStale(flag) => usage::announce_stale(w, &flag).await.map(Outcome::Applied),
            Change::Webhook(change) => webhooks::change(w, change)
                .await
                .map(|id| id.map_or(Outcome::Done, Outcome::Id)),
            Change::WebhookWork(work) => webhooks::work(w, work).await.map(Outcome::Claimed),
            Change::RecordUsage(batch) => usage::record(w, &batch).await.map(|()| Outcome::Done),
            Change::PruneUsage {
                hourly_before,
                daily_before,
            } => usage::prune(w, hourly_before, daily_before)
                .await
                .map(|(hourly, daily)| Outcome::Pruned { hourly, daily }),
        }
    }
}

impl Service {
    /// Applies one change as `actor`; see [`Service::apply_all`].
    pub async fn apply(&self, actor: &Actor, change: Change) -> ServiceResult<Outcome> {
        let field = change.validation_field();
        let mut outcomes = self
            .apply_all(actor, vec![change])
            .await
            .map_err(|error| match error {
                ServiceError::Invalid { field: f, message } if f == VALIDATION => {
                    ServiceError::invalid(field, message)
                }
                other => other,
            })?;
        Ok(outcomes.pop().unwrap_or(Outcome::Done))
    }

    /// Applies changes as `actor`, all or none, in one transaction: authorize each, hold the
    /// environments they touch, write them in order (each with its audit entry and outbox event),
    /// build every touched environment as it now stands (a refusal names what does not compile),
    /// bump the touched environments' `flagStateVersion`, commit, publish.
    pub async fn apply_all(&self, actor: &Actor, changes: Vec<Change>) -> ServiceResult<Vec<Outcome>> {
        for change in &changes {
            authorize(actor, change.permission())?;
        }
        let held = self.held_environments(&changes).await?;
        let ingests = changes.iter().any(|c| matches!(c, Change::Ingest { .. }));
        let runtime = self.runtime();
        // An ingest's result reaches the runtime's cache in commit order (see `Entities`).
        let _cache = match (ingests, runtime) {
            (true, Some(runtime)) => Some(runtime.entities().lock_writes().await),
            _ => None,
        };
        let tx = self.store().begin_write(&held).await?;
        let mut w = Write::new(tx, actor, self.clock().now_ms()).await?;
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            outcomes.push(change.write(&mut w).await?);
        }
        for environment_id in w.touched() {
            validate(&mut w, environment_id).await?;
            super::store::environments::bump_flag_state_version(w.conn(), environment_id).await?;
        }
        if ingests {
            let cache = runtime.map(|r| r.entities());
            ingest::check(&w.ingested, cache, &self.0.ingest.limits)?;
        }
        let committed = w.commit().await?;
        if let Some(runtime) = runtime {
            runtime
                .entities()
                .apply(committed.ingested.into_iter().map(|i| i.entity));
        }
        if !committed.touched.is_empty() || committed.keys_changed {
            self.publish(committed.touched.is_empty()).await;
        }
        Ok(outcomes)
    }

    /// The ids of the environments the changes hold.
    async fn held_environments(&self, changes: &[Change]) -> ServiceResult<Vec<i64>> {
        if changes.iter().all(|c| matches!(c.scope(), Scope::Nothing)) {
            return Ok(Vec::new());
        }
        let environments = self.store().environments().await?;
        let mut held = Vec::new();
        for change in changes {
            match change.scope() {
                Scope::Nothing => {}
                Scope::Every => held.extend(environments.iter().map(|e| e.id)),
                Scope::One(key) => held.extend(
                    environments
                        .iter()
                        .filter(|e| e.key.as_str() == key)
                        .map(|e| e.id),
                ),
            }
        }
        Ok(held)
    }
}

impl Service {
    /// Applies one ingest request as `actor` (an API key of the environment). Runs to completion
    /// even when the client goes away, so the runtime's cache never misses a committed write.
    /// Takes a place in the bounded write queue first: with every place taken (requests being
    /// written or waiting to be), it refuses at once with [`ServiceError::Busy`].
    pub async fn ingest(
        &self,
        actor: Actor,
        environment_id: i64,
        writes: Vec<IngestWrite>,
    ) -> ServiceResult<()> {
        let gate = &self.0.ingest;
        let Ok(place) = gate.queue.clone().try_acquire_owned() else {
            return Err(ServiceError::Busy(format!(
                "{} ingest requests are already waiting to be written; retry in a moment",
                gate.limits.queue
            )));
        };
        let service = self.clone();
        let task = tokio::spawn(async move {
            let _place = place;
            service
                .apply(
                    &actor,
                    Change::Ingest {
                        environment_id,
                        writes,
                    },
                )
                .await
        });
        match task.await {
            Ok(result) => result.map(|_| ()),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(ServiceError::Internal),
        }
    }
}

/// The field of a validation refusal before [`Service::apply`] names the change's own field.
const VALIDATION: &str = "validation";

/// Builds the environment as the transaction now sees it, exactly as the runtime will serve it.
async fn validate(w: &mut Write<'_>, environment_id: i64) -> ServiceResult<()> {
    let environment = w
        .environments
        .iter()
        .find(|e| e.id == environment_id)
        .cloned()
        .ok_or(ServiceError::Internal)?;
    let name = environment.name.clone();
    let inputs = Inputs::load(w.conn(), environment).await?;
    Snapshot::definitions(&inputs).map_err(|error| {
        ServiceError::invalid(VALIDATION, format!("{error} (in {name}); nothing was saved"))
    })?;
    Ok(())
}
