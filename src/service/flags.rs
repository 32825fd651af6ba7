//! Flags and what decides them per environment: creation, their own fields, versioned access
//! rules (set, copied, rolled back, taken from a stage's defaults), release-stage moves, archiving
//! and remote config. The writes run inside the change pipeline ([`super::change`]), which
//! validates every environment they touch before the commit.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error::{ServiceError, ServiceResult};
use super::stages::{resolve, StageRef};
use super::store::flags::{
    flag_in, insert_flag, insert_version, latest_version, touch_flag, update_flag, version_of, Decoded,
    FlagFields, VersionedValue,
};
use super::store::members::member_for_update;
use super::store::stages::{stage_defaults_in, stages_in};
use super::store::StoreError;
use super::write::{Record, Write};
use crate::model::{
    AccessRules, ConfigVariant, Environment, Flag, FlagKey, ReleaseStage, RemoteConfig, SegmentKey,
    TargetedAccess,
};

/// A new flag. `access` gives its first rules in some environments (by key); the others start
/// with the stage's default there, or No one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewFlag {
    pub key: String,
    pub name: String,
    pub description: String,
    /// Defaults to the first release stage.
    pub stage: Option<StageRef>,
    pub owner_id: Option<i64>,
    pub permanent: bool,
    pub archived: bool,
    pub access: BTreeMap<String, AccessRules>,
}

/// How a flag's access rules in an environment change.
#[derive(Clone, Debug, PartialEq)]
pub enum AccessChange {
    /// To these rules.
    Set(AccessRules),
    /// To the flag's current rules in another environment (by key).
    CopyFrom(String),
    /// Back to an earlier version's rules, as a new version.
    RollBackTo(i64),
    /// The current rules with one more company, user or segment (nothing changes when it is in
    /// already, or when everyone has access).
    Grant(Grantee),
    /// The current rules without one company, user or segment (No one once nothing is left).
    Revoke(Grantee),
}

/// Who a grant or revocation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    Company(String),
    User(String),
    Segment(SegmentKey),
}

/// `rules` with `grantee` given access; `None` when they already have it.
fn granted(rules: AccessRules, grantee: &Grantee) -> Option<AccessRules> {
    let mut access = match rules {
        AccessRules::Everyone => return None,
        AccessRules::NoOne => TargetedAccess::default(),
        AccessRules::Some(access) => access,
    };
    fn add<T: PartialEq + Clone>(list: &mut Vec<T>, item: &T) -> bool {
        let new = !list.contains(item);
        if new {
            list.push(item.clone());
        }
        new
    }
    let added = match grantee {
        Grantee::Company(id) => add(&mut access.companies, id),
        Grantee::User(id) => add(&mut access.users, id),
        Grantee::Segment(key) => add(&mut access.segments, key),
    };
    added.then_some(AccessRules::Some(access))
}

/// `rules` without `grantee`; `Ok(None)` when they had no access of their own.
fn revoked(rules: AccessRules, grantee: &Grantee) -> ServiceResult<Option<AccessRules>> {
    let mut access = match rules {
        AccessRules::NoOne => return Ok(None),
        AccessRules::Everyone => {
            return Err(invalid(
                "rules",
                "everyone has access here; set who has access instead of revoking one",
            ))
        }
        AccessRules::Some(access) => access,
    };
    let before = access.clone();
    match grantee {
        Grantee::Company(id) => access.companies.retain(|c| c != id),
        Grantee::User(id) => access.users.retain(|u| u != id),
        Grantee::Segment(key) => access.segments.retain(|s| s != key),
    }
    if access == before {
        return Ok(None);
    }
    let empty = access.companies.is_empty()
        && access.users.is_empty()
        && access.segments.is_empty()
        && access.rules.is_empty();
    Ok(Some(if empty {
        AccessRules::NoOne
    } else {
        AccessRules::Some(access)
    }))
}

/// Longest flag name and description, in characters.
pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

/// Trimmed text of at most `max` characters; `required` refuses empty text.
pub fn check_text(field: &str, value: &str, max: usize, required: bool) -> ServiceResult<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(invalid(field, "this cannot be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("use at most {max} characters")));
    }
    Ok(value.to_string())
}

pub fn parse_key(key: &str) -> ServiceResult<FlagKey> {
    FlagKey::parse(key.trim()).map_err(|e| invalid("key", e.to_string()))
}

/// The flag with `key`, read inside the transaction.
pub async fn flag(w: &mut Write<'_>, key: &str) -> ServiceResult<Flag> {
    flag_in(w.conn(), key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {key}")))
}

/// A flag's fields as audit entries show them.
fn summary(flag: &Flag, stages: &[ReleaseStage]) -> Value {
    let stage = stages
        .iter()
        .find(|s| s.id == flag.stage_id)
        .map(|s| s.name.as_str());
    json!({
        "key": flag.key,
        "name": flag.name,
        "description": flag.description,
        "stage": stage,
        "ownerId": flag.owner_id,
        "permanent": flag.permanent,
        "archived": flag.archived,
    })
}

/// The current version and value of a flag's rules (or config) in an environment: (0, None)
/// when it has none yet.
async fn current<T: VersionedValue>(
    w: &mut Write<'_>,
    flag: &Flag,
    environment: &Environment,
) -> ServiceResult<(i64, Option<T>)> {
    let (version, value) = stored::<T>(w, flag, environment).await?;
    Ok((version, value.transpose()?))
}

/// Like [`current`], but an unreadable stored value is handed back rather than refused: a change
/// that replaces the value (a save, an import) is how it gets repaired.
async fn stored<T: VersionedValue>(
    w: &mut Write<'_>,
    flag: &Flag,
    environment: &Environment,
) -> ServiceResult<(i64, Option<Decoded<T>>)> {
    let latest = latest_version::<T>(w.conn(), flag.id, environment.id).await?;
    Ok(latest.map_or((0, None), |v| (v.version, Some(v.value))))
}

/// A stored value as an audit entry shows it before a change: the value, or why it could not
/// be read.
fn shown_before<T: serde::Serialize>(version: i64, value: Option<Decoded<T>>, name: &str) -> Option<Value> {
    value.map(|value| match value {
        Ok(value) => json!({ "version": version, name: value }),
        Err(row) => json!({ "version": version, "unreadable": row.to_string() }),
    })
}

/// Creates a flag with version 1 of its rules in every environment: the given rules, else its
/// stage's default there, else No one.
pub async fn create(w: &mut Write<'_>, new: NewFlag) -> ServiceResult<Flag> {
    let key = parse_key(&new.key)?;
    let name = check_text("name", &new.name, NAME_MAX_CHARS, true)?;
    let description = check_text("description", &new.description, DESCRIPTION_MAX_CHARS, false)?;
    for environment in new.access.keys() {
        w.environment(environment)?;
    }
    let stages = stages_in(w.conn()).await?;
    let stage_id = match &new.stage {
        Some(stage) => resolve(&stages, stage)?.id,
        None => stages
            .first()
            .map(|s| s.id)
            .ok_or_else(|| invalid("stage", "there is no release stage"))?,
    };
    check_owner(w, new.owner_id).await?;
    let fields = FlagFields {
        name: &name,
        description: &description,
        stage_id,
        owner_id: new.owner_id,
        permanent: new.permanent,
        archived: new.archived,
    };
    let (actor, now) = (w.actor.member_id(), w.now);
    let id = insert_flag(w.conn(), key.as_str(), &fields, actor, now).await?;
    let defaults = stage_defaults_in(w.conn()).await?;
    let mut access = serde_json::Map::new();
    for environment in w.environments.clone() {
        let rules = match new.access.get(environment.key.as_str()) {
            Some(rules) => rules.clone(),
            None => defaults
                .iter()
                .find(|d| d.stage_id == stage_id && d.environment_id == environment.id)
                .map(|d| d.rules.clone())
                .unwrap_or_default(),
        };
        insert_version(w.conn(), (id, environment.id, 1), (&rules, None), actor, now).await?;
        access.insert(environment.key.to_string(), json!(rules));
    }
    let created = flag_in(w.conn(), key.as_str())
        .await?
        .ok_or(ServiceError::Internal)?;
    let mut after = summary(&created, &stages);
    after["access"] = Value::Object(access);
    w.record(Record::flag("flag.created", key.as_str(), None).after(after))
        .await?;
    w.touch_all();
    Ok(created)
}

/// Refuses an owner who is not a member.
async fn check_owner(w: &mut Write<'_>, owner_id: Option<i64>) -> ServiceResult<()> {
    let Some(id) = owner_id else { return Ok(()) };
    match member_for_update(w.conn(), id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(invalid("owner_id", format!("no member has the id {id}"))),
        Err(other) => Err(other.into()),
    }
}

/// A flag's own fields, as [`super::Change::UpdateFlag`] sets them.
pub struct Details {
    pub name: String,
    pub description: String,
    pub owner_id: Option<i64>,
    pub permanent: bool,
    pub stage: StageRef,
    pub archived: bool,
}

/// Sets a flag's own fields. Saving what is stored writes nothing.
pub async fn update(w: &mut Write<'_>, key: &str, details: Details) -> ServiceResult<()> {
    let name = check_text("name", &details.name, NAME_MAX_CHARS, true)?;
    let description = check_text("description", &details.description, DESCRIPTION_MAX_CHARS, false)?;
    let before = flag(w, key).await?;
    let stages = stages_in(w.conn()).await?;
    let stage_id = resolve(&stages, &details.stage)?.id;
    let after = Flag {
        name,
        description,
        owner_id: details.owner_id,
        permanent: details.permanent,
        stage_id,
        archived: details.archived,
        ..before.clone()
    };
    if after == before {
        return Ok(());
    }
    if after.owner_id != before.owner_id {
        check_owner(w, after.owner_id).await?;
    }
    let fields = FlagFields {
        name: &after.name,
        description: &after.description,
        stage_id: after.stage_id,
        owner_id: after.owner_id,
        permanent: after.permanent,
        archived: after.archived,
    };
    let (actor, now) = (w.actor.member_id(), w.now);
    update_flag(w.conn(), before.id, &fields, actor, now).await?;
    let record = Record::flag("flag.changed", key, None)
        .before(summary(&before, &stages))
        .after(summary(&after, &stages));
    w.record(record).await?;
    w.touch_all();
    Ok(())
}

/// Saves new access rules for a flag in an environment as a new version; returns it.
pub async fn set_access(
    w: &mut Write<'_>,
    key: &str,
    environment: &str,
    change: AccessChange,
    expected_version: Option<i64>,
) -> ServiceResult<i64> {
    let environment = w.environment(environment)?;
    let flag = flag(w, key).await?;
    let (rules, action, detail) = match change {
        AccessChange::Set(rules) => (rules, "flag.access_rules_changed", None),
        AccessChange::CopyFrom(source) => {
            if source == environment.key.as_str() {
                return Err(invalid("from", "choose another environment to copy from"));
            }
            let source = w.environment(&source)?;
            let (_, rules) = current::<AccessRules>(w, &flag, &source).await?;
            let detail = ("copiedFrom", json!(source.key));
            (
                rules.unwrap_or_default(),
                "flag.access_rules_copied",
                Some(detail),
            )
        }
        AccessChange::RollBackTo(version) => {
            let old = version_of::<AccessRules>(w.conn(), flag.id, environment.id, version)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("version {version} of {key}")))?;
            let detail = ("rolledBackTo", json!(version));
            (old.value?, "flag.access_rules_rolled_back", Some(detail))
        }
        AccessChange::Grant(grantee) => {
            let (version, rules) = current::<AccessRules>(w, &flag, &environment).await?;
            match granted(rules.unwrap_or_default(), &grantee) {
                Some(rules) => (rules, "flag.access_rules_changed", None),
                // They have access already: the version stays.
                None => return Ok(version),
            }
        }
        AccessChange::Revoke(grantee) => {
            let (version, rules) = current::<AccessRules>(w, &flag, &environment).await?;
            match revoked(rules.unwrap_or_default(), &grantee)? {
                Some(rules) => (rules, "flag.access_rules_changed", None),
                None => return Ok(version),
            }
        }
    };
    write_access(w, &flag, &environment, &rules, expected_version, action, detail).await
}

/// Appends `rules` as the next version and records it under `action`.
async fn write_access(
    w: &mut Write<'_>,
    flag: &Flag,
    environment: &Environment,
    rules: &AccessRules,
    expected_version: Option<i64>,
    action: &str,
    detail: Option<(&str, Value)>,
) -> ServiceResult<i64> {
    w.check_protection(environment)?;
    let (current_version, current_rules) = stored::<AccessRules>(w, flag, environment).await?;
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(ServiceError::Conflict(format!(
            "someone else changed {} in {} meanwhile (now version {current_version}, you edited version {}); \
             reload to see their change",
            flag.key,
            environment.name,
            expected_version.unwrap_or_default()
        )));
    }
    let version = current_version + 1;
    let (actor, now) = (w.actor.member_id(), w.now);
    let note = detail.as_ref().map(|(name, value)| version_note(w, name, value));
    let value = (rules, note.as_deref());
    insert_version(w.conn(), (flag.id, environment.id, version), value, actor, now).await?;
    touch_flag(w.conn(), flag.id, actor, now).await?;
    let before = shown_before(current_version, current_rules, "rules");
    let mut after = json!({ "version": version, "rules": rules });
    if let Some((name, value)) = detail {
        after[name] = value;
    }
    let record = Record::flag(action, flag.key.as_str(), Some(environment.id))
        .before(before)
        .after(after);
    w.record(record).await?;
    w.touch(environment.id);
    Ok(version)
}

/// What the history says of a version written by a copy, a rollback or a stage move.
fn version_note(w: &Write<'_>, name: &str, value: &Value) -> String {
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
    match name {
        "rolledBackTo" => format!("rolled back to version {text}"),
        "copiedFrom" => {
            let source = w.environments.iter().find(|e| e.key.as_str() == text);
            format!(
                "copied from {}",
                source.map_or(text.as_str(), |e| e.name.as_str())
            )
        }
        "stage" => format!("the {text} stage's default access"),
        _ => format!("{name}: {text}"),
    }
}

/// Moves a flag into a stage and, in every environment where the stage has default rules that
/// differ from the flag's, applies them as a new version.
pub async fn move_stage(w: &mut Write<'_>, key: &str, stage_id: i64) -> ServiceResult<()> {
    let stages = stages_in(w.conn()).await?;
    let stage = resolve(&stages, &StageRef::Id(stage_id))?.clone();
    let before = flag(w, key).await?;
    if before.stage_id == stage_id {
        return Ok(());
    }
    let after = Flag {
        stage_id,
        ..before.clone()
    };
    let fields = FlagFields {
        name: &after.name,
        description: &after.description,
        stage_id,
        owner_id: after.owner_id,
        permanent: after.permanent,
        archived: after.archived,
    };
    let (actor, now) = (w.actor.member_id(), w.now);
    update_flag(w.conn(), before.id, &fields, actor, now).await?;
    let from = stages
        .iter()
        .find(|s| s.id == before.stage_id)
        .map(|s| s.name.clone());
    let record = Record::flag("flag.stage_changed", key, None)
        .before(json!({ "stage": from }))
        .after(json!({ "stage": stage.name }));
    w.record(record).await?;
    let defaults = stage_defaults_in(w.conn()).await?;
    for environment in w.environments.clone() {
        let Some(default) = defaults
            .iter()
            .find(|d| d.stage_id == stage_id && d.environment_id == environment.id)
        else {
            continue;
        };
        let (_, current) = current::<AccessRules>(w, &after, &environment).await?;
        if current.as_ref() != Some(&default.rules) {
            let detail = Some(("stage", json!(stage.name)));
            write_access(
                w,
                &after,
                &environment,
                &default.rules,
                None,
                "flag.stage_defaults_applied",
                detail,
            )
            .await?;
        }
    }
    Ok(())
}

/// Archives a flag (it stops being served) or brings it back.
pub async fn set_archived(w: &mut Write<'_>, key: &str, archived: bool) -> ServiceResult<()> {
    let flag = flag(w, key).await?;
    if flag.archived == archived {
        return Ok(());
    }
    let fields = FlagFields {
        name: &flag.name,
        description: &flag.description,
        stage_id: flag.stage_id,
        owner_id: flag.owner_id,
        permanent: flag.permanent,
        archived,
    };
    let (actor, now) = (w.actor.member_id(), w.now);
    update_flag(w.conn(), flag.id, &fields, actor, now).await?;
    let action = if archived {
        "flag.archived"
    } else {
        "flag.unarchived"
    };
    let record = Record::flag(action, key, None)
        .before(json!({ "archived": flag.archived }))
        .after(json!({ "archived": archived }));
    w.record(record).await?;
    w.touch_all();
    Ok(())
}

/// Saves a flag's remote config in an environment as a new version; returns it.
pub async fn set_remote_config(
    w: &mut Write<'_>,
    key: &str,
    environment: &str,
    variants: Vec<ConfigVariant>,
    expected_version: Option<i64>,
) -> ServiceResult<i64> {
    check_variants(&variants)?;
    let environment = w.environment(environment)?;
    w.check_protection(&environment)?;
    let flag = flag(w, key).await?;
    let (current_version, current_config) = stored::<RemoteConfig>(w, &flag, &environment).await?;
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(ServiceError::Conflict(format!(
            "someone else changed the remote config of {key} in {} meanwhile; reload to see their change",
            environment.name
        )));
    }
    let version = current_version + 1;
    let config = RemoteConfig {
        version: version as u64,
        variants,
    };
    let (actor, now) = (w.actor.member_id(), w.now);
    insert_version(
        w.conn(),
        (flag.id, environment.id, version),
        (&config, None),
        actor,
        now,
    )
    .await?;
    touch_flag(w.conn(), flag.id, actor, now).await?;
    let record = Record::flag("flag.remote_config_changed", key, Some(environment.id))
        .before(current_config.map(|config| match config {
            Ok(config) => json!(config),
            Err(row) => json!({ "unreadable": row.to_string() }),
        }))
        .after(json!(config));
    w.record(record).await?;
    w.touch(environment.id);
    Ok(version)
}

/// Refuses remote-config values without a usable key.
pub fn check_variants(variants: &[ConfigVariant]) -> ServiceResult<()> {
    for variant in variants {
        if variant.key.trim().is_empty() || variant.key.chars().count() > 255 {
            return Err(invalid(
                "variants",
                "every value needs a key of 1 to 255 characters",
            ));
        }
    }
    Ok(())
}
