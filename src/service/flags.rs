//! Flags and what decides them: creation, versioned access rules per environment, rollback,
//! release-stage moves, segments and remote config.
//!
//! Every write validates by compiling the whole environment with the change applied (so unknown
//! references and cycles are refused before anything is stored), writes the new version and its
//! audit entry in one transaction, bumps the affected environments' `flagStateVersion`, and
//! publishes the change to the runtime.

use std::collections::HashMap;

use serde_json::json;
use sqlx::AnyConnection;

use super::{Actor, ServiceError, ServiceResult};
use crate::eval::{compile_environment, compile_remote_config, CompileContext};
use crate::model::{AccessRules, FlagKey, RemoteConfig, Segment, SegmentCondition, SegmentKey};
use crate::runtime::Runtime;
use crate::store::audit::{insert_audit, NewAuditEntry};
use crate::store::flags::{self as sql, FlagRow, NewFlag, NewVersion, Versioned};
use crate::store::{now_ms, Environment, Store};

/// What a new flag needs.
#[derive(Clone, Debug, Default)]
pub struct NewFlagInput {
    pub key: String,
    pub name: String,
    pub description: String,
    /// Defaults to the first release stage.
    pub stage_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub permanent: bool,
}

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> ServiceResult<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(invalid(field, "this cannot be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("use at most {max} characters")));
    }
    Ok(value.to_string())
}

async fn environment(store: &Store, key: &str) -> ServiceResult<Environment> {
    store
        .environment_by_key(key)
        .await?
        .ok_or_else(|| invalid("environment", format!("no environment has the key {key:?}")))
}

fn parse_rules(json: &str) -> AccessRules {
    serde_json::from_str(json).unwrap_or_default()
}

/// A flag's current access rules in an environment (No one when it has none yet).
pub async fn current_access_rules(
    store: &Store,
    flag_id: i64,
    environment_id: i64,
) -> ServiceResult<AccessRules> {
    let mut conn = store.pool().acquire().await?;
    let latest = sql::latest_version(&mut conn, Versioned::AccessRules, flag_id, environment_id).await?;
    Ok(latest.map(|(_, json)| parse_rules(&json)).unwrap_or_default())
}

/// The compile inputs of an environment as stored: every segment, and every flag's current access
/// rules (No one for a flag without any).
pub(crate) async fn compile_inputs(
    store: &Store,
    environment_id: i64,
) -> ServiceResult<(HashMap<SegmentKey, Segment>, HashMap<FlagKey, AccessRules>)> {
    let segments = store.segments_by_key().await?;
    let by_id: HashMap<i64, String> = store.flags().await?.into_iter().map(|f| (f.id, f.key)).collect();
    let mut flags = HashMap::new();
    for key in by_id.values() {
        if let Ok(key) = FlagKey::parse(key.clone()) {
            flags.insert(key, AccessRules::NoOne);
        }
    }
    for row in store.current_targeting(environment_id).await? {
        if let Some(Ok(key)) = by_id.get(&row.flag_id).map(|k| FlagKey::parse(k.clone())) {
            flags.insert(key, parse_rules(&row.json));
        }
    }
    Ok((segments, flags))
}

fn compile_check(
    segments: &HashMap<SegmentKey, Segment>,
    flags: &HashMap<FlagKey, AccessRules>,
) -> ServiceResult<()> {
    compile_environment(&CompileContext { segments, flags }).map_err(|e| invalid("rules", e.to_string()))?;
    Ok(())
}

/// What an audit entry is about.
struct Subject<'a> {
    kind: &'a str,
    key: &'a str,
    environment_id: Option<i64>,
}

impl<'a> Subject<'a> {
    fn flag(key: &'a str, environment_id: Option<i64>) -> Self {
        Subject {
            kind: "flag",
            key,
            environment_id,
        }
    }
}

async fn audit(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    now: i64,
) -> ServiceResult<()> {
    insert_audit(
        conn,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action,
            subject_type: subject.kind,
            subject_key: subject.key,
            environment_id: subject.environment_id,
            before,
            after,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Creates a flag. In every environment it starts with its stage's default rules, or No one.
pub async fn create_flag(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    input: NewFlagInput,
) -> ServiceResult<FlagRow> {
    let key = FlagKey::parse(input.key.trim()).map_err(|e| invalid("key", e.to_string()))?;
    let name = check_text("name", &input.name, 200, true)?;
    let description = check_text("description", &input.description, 2000, false)?;
    let stages = store.release_stages().await?;
    let stage_id = match input.stage_id {
        Some(id) if stages.iter().any(|s| s.id == id) => id,
        Some(_) => return Err(invalid("stage", "choose one of the release stages")),
        None => stages
            .first()
            .map(|s| s.id)
            .ok_or_else(|| invalid("stage", "there is no release stage"))?,
    };
    let defaults = store.stage_defaults().await?;
    let environments = store.environments().await?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let new = NewFlag {
        key: key.as_str(),
        name: &name,
        description: &description,
        stage_id,
        owner_id: input.owner_id,
        permanent: input.permanent,
    };
    let id = sql::insert_flag(&mut tx, &new, actor.member_id, now).await?;
    for environment in &environments {
        let rules = defaults
            .iter()
            .find(|(stage, env, _)| *stage == stage_id && *env == environment.id)
            .map(|(_, _, json)| json.clone())
            .unwrap_or_else(|| json!(AccessRules::NoOne).to_string());
        sql::insert_version(
            &mut tx,
            NewVersion {
                kind: Versioned::AccessRules,
                flag_id: id,
                environment_id: environment.id,
                version: 1,
                json: &rules,
                actor: actor.member_id,
            },
            now,
        )
        .await?;
        sql::bump_flag_state_version(&mut tx, environment.id).await?;
    }
    let after = json!({ "key": key.as_str(), "name": name, "description": description, "stageId": stage_id });
    audit(
        &mut tx,
        actor,
        "flag.created",
        Subject::flag(key.as_str(), None),
        None,
        Some(after),
        now,
    )
    .await?;
    tx.commit().await?;
    runtime.publish().await;
    store
        .flag_by_key(key.as_str())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {key}")))
}

/// Saves new access rules for a flag in an environment as a new version. `expected_version` is
/// the version the editor started from; if someone saved meanwhile, the save is refused.
pub async fn set_access_rules(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    environment_key: &str,
    rules: AccessRules,
    expected_version: Option<i64>,
) -> ServiceResult<i64> {
    let environment = environment(store, environment_key).await?;
    let key = FlagKey::parse(flag_key).map_err(|e| invalid("key", e.to_string()))?;
    let (segments, mut flags) = compile_inputs(store, environment.id).await?;
    flags.insert(key.clone(), rules.clone());
    compile_check(&segments, &flags)?;
    write_access_rules(
        store,
        runtime,
        actor,
        flag_key,
        &environment,
        &rules,
        expected_version,
        "flag.access_rules_changed",
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write_access_rules(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    environment: &Environment,
    rules: &AccessRules,
    expected_version: Option<i64>,
    action: &str,
) -> ServiceResult<i64> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let flag = sql::flag_for_update(&mut tx, flag_key).await?;
    let current = sql::latest_version(&mut tx, Versioned::AccessRules, flag.id, environment.id).await?;
    let current_version = current.as_ref().map(|(v, _)| *v).unwrap_or(0);
    if let Some(expected) = expected_version {
        if expected != current_version {
            return Err(ServiceError::Conflict(format!(
                "someone else changed {flag_key} in {} meanwhile (now version {current_version}, you edited \
                 version {expected}); reload to see their change",
                environment.name
            )));
        }
    }
    let version = current_version + 1;
    let json = serde_json::to_string(rules).map_err(|_| ServiceError::Internal)?;
    sql::insert_version(
        &mut tx,
        NewVersion {
            kind: Versioned::AccessRules,
            flag_id: flag.id,
            environment_id: environment.id,
            version,
            json: &json,
            actor: actor.member_id,
        },
        now,
    )
    .await?;
    sql::touch_flag(&mut tx, flag.id, actor.member_id, now).await?;
    sql::bump_flag_state_version(&mut tx, environment.id).await?;
    let before = current.map(|(v, j)| json!({ "version": v, "rules": parse_rules(&j) }));
    let after = json!({ "version": version, "rules": rules });
    audit(
        &mut tx,
        actor,
        action,
        Subject::flag(flag_key, Some(environment.id)),
        before,
        Some(after),
        now,
    )
    .await?;
    tx.commit().await?;
    runtime.publish().await;
    Ok(version)
}

/// Re-applies an old version's rules as a new version.
pub async fn rollback_access_rules(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    environment_key: &str,
    to_version: i64,
) -> ServiceResult<i64> {
    let environment = environment(store, environment_key).await?;
    let flag = store
        .flag_by_key(flag_key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {flag_key}")))?;
    let mut conn = store.pool().acquire().await?;
    let json = sql::version_json(
        &mut conn,
        Versioned::AccessRules,
        flag.id,
        environment.id,
        to_version,
    )
    .await?
    .ok_or_else(|| ServiceError::NotFound(format!("version {to_version} of {flag_key}")))?;
    drop(conn);
    let rules = parse_rules(&json);
    let key = FlagKey::parse(flag_key).map_err(|e| invalid("key", e.to_string()))?;
    let (segments, mut flags) = compile_inputs(store, environment.id).await?;
    flags.insert(key, rules.clone());
    compile_check(&segments, &flags)?;
    write_access_rules(
        store,
        runtime,
        actor,
        flag_key,
        &environment,
        &rules,
        None,
        "flag.access_rules_rolled_back",
    )
    .await
}

/// What moving a flag into a stage would change, per environment: `(environment key, current
/// rules, the stage's default)` for every environment where the stage has a default that differs.
pub async fn preview_stage_move(
    store: &Store,
    flag_key: &str,
    stage_id: i64,
) -> ServiceResult<Vec<(String, AccessRules, AccessRules)>> {
    Ok(preview_stage_moves(store, flag_key, &[stage_id])
        .await?
        .into_iter()
        .map(|(_, environment, current, default)| (environment, current, default))
        .collect())
}

/// [`preview_stage_move`] for several stages at once, `(stage id, environment key, current,
/// default)`, reading the flag, the defaults and each environment's current rules once.
pub async fn preview_stage_moves(
    store: &Store,
    flag_key: &str,
    stage_ids: &[i64],
) -> ServiceResult<Vec<(i64, String, AccessRules, AccessRules)>> {
    let flag = store
        .flag_by_key(flag_key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {flag_key}")))?;
    let defaults = store.stage_defaults().await?;
    let mut changes = Vec::new();
    for environment in store.environments().await? {
        let mut current = None;
        for &stage_id in stage_ids {
            let Some((_, _, default)) = defaults
                .iter()
                .find(|(s, e, _)| *s == stage_id && *e == environment.id)
            else {
                continue;
            };
            let default = parse_rules(default);
            let current = match &current {
                Some(rules) => rules,
                None => current.insert(current_access_rules(store, flag.id, environment.id).await?),
            };
            if *current != default {
                changes.push((stage_id, environment.key.clone(), current.clone(), default));
            }
        }
    }
    Ok(changes)
}

/// Moves a flag into a stage and applies the stage's default rules where it has them.
pub async fn move_to_stage(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    stage_id: i64,
) -> ServiceResult<()> {
    let stages = store.release_stages().await?;
    let stage = stages
        .iter()
        .find(|s| s.id == stage_id)
        .ok_or_else(|| invalid("stage", "choose one of the release stages"))?;
    let changes = preview_stage_move(store, flag_key, stage_id).await?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let flag = sql::flag_for_update(&mut tx, flag_key).await?;
    sql::set_flag_stage(&mut tx, flag.id, stage_id, actor.member_id, now).await?;
    let before_stage = stages
        .iter()
        .find(|s| s.id == flag.stage_id)
        .map(|s| s.name.clone());
    audit(
        &mut tx,
        actor,
        "flag.stage_changed",
        Subject::flag(flag_key, None),
        Some(json!({ "stage": before_stage })),
        Some(json!({ "stage": stage.name })),
        now,
    )
    .await?;
    for environment in store.environments().await? {
        sql::bump_flag_state_version(&mut tx, environment.id).await?;
    }
    tx.commit().await?;
    for (environment_key, _, default) in changes {
        let environment = environment(store, &environment_key).await?;
        write_access_rules(
            store,
            runtime,
            actor,
            flag_key,
            &environment,
            &default,
            None,
            "flag.stage_defaults_applied",
        )
        .await?;
    }
    runtime.publish().await;
    Ok(())
}

/// A segment as a form or an import gives it.
#[derive(Clone, Debug, Default)]
pub struct SegmentInput {
    pub key: String,
    pub name: String,
    pub description: String,
    pub conditions: Vec<SegmentCondition>,
}

/// Creates (`create`) or replaces a segment. Every environment is checked, since any flag may
/// use the segment.
pub async fn save_segment(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    input: SegmentInput,
    create: bool,
) -> ServiceResult<()> {
    let key = SegmentKey::parse(input.key.trim()).map_err(|e| invalid("key", e.to_string()))?;
    let name = check_text("name", &input.name, 200, true)?;
    let description = check_text("description", &input.description, 2000, false)?;
    let conditions = input.conditions;
    let segment = Segment {
        key: key.clone(),
        name: name.clone(),
        conditions,
    };
    let environments = store.environments().await?;
    for environment in &environments {
        let (mut segments, flags) = compile_inputs(store, environment.id).await?;
        segments.insert(key.clone(), segment.clone());
        compile_check(&segments, &flags).map_err(|e| match e {
            ServiceError::Invalid { message, .. } => invalid("conditions", message),
            other => other,
        })?;
    }
    let conditions = serde_json::to_string(&segment.conditions).map_err(|_| ServiceError::Internal)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let before = sql::segment_for_update(&mut tx, key.as_str()).await?;
    if create {
        sql::insert_segment(&mut tx, key.as_str(), &name, &description, &conditions, now).await?;
    } else {
        sql::update_segment(&mut tx, key.as_str(), &name, &description, &conditions, now).await?;
    }
    for environment in &environments {
        sql::bump_flag_state_version(&mut tx, environment.id).await?;
    }
    let before = before.map(|row| json!({ "name": row.name, "description": row.description, "conditions": serde_json::from_str::<serde_json::Value>(&row.conditions).ok() }));
    let after = json!({ "name": name, "description": description, "conditions": segment.conditions });
    let action = if create {
        "segment.created"
    } else {
        "segment.changed"
    };
    audit(
        &mut tx,
        actor,
        action,
        Subject {
            kind: "segment",
            key: key.as_str(),
            environment_id: None,
        },
        before,
        Some(after),
        now,
    )
    .await?;
    tx.commit().await?;
    runtime.publish().await;
    Ok(())
}

/// Saves a flag's remote config in an environment as a new version.
pub async fn set_remote_config(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    environment_key: &str,
    mut config: RemoteConfig,
    expected_version: Option<i64>,
) -> ServiceResult<i64> {
    let environment = environment(store, environment_key).await?;
    for variant in &config.variants {
        if variant.key.trim().is_empty() || variant.key.chars().count() > 255 {
            return Err(invalid(
                "variants",
                "every value needs a key of 1 to 255 characters",
            ));
        }
    }
    let (segments, flags) = compile_inputs(store, environment.id).await?;
    compile_remote_config(
        &config,
        &CompileContext {
            segments: &segments,
            flags: &flags,
        },
    )
    .map_err(|e| invalid("variants", e.to_string()))?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let flag = sql::flag_for_update(&mut tx, flag_key).await?;
    let current = sql::latest_version(&mut tx, Versioned::RemoteConfig, flag.id, environment.id).await?;
    let current_version = current.as_ref().map(|(v, _)| *v).unwrap_or(0);
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(ServiceError::Conflict(format!(
            "someone else changed the remote config of {flag_key} in {} meanwhile; reload to see their change",
            environment.name
        )));
    }
    let version = current_version + 1;
    config.version = version as u64;
    let json = serde_json::to_string(&config).map_err(|_| ServiceError::Internal)?;
    sql::insert_version(
        &mut tx,
        NewVersion {
            kind: Versioned::RemoteConfig,
            flag_id: flag.id,
            environment_id: environment.id,
            version,
            json: &json,
            actor: actor.member_id,
        },
        now,
    )
    .await?;
    sql::bump_flag_state_version(&mut tx, environment.id).await?;
    let before = current.and_then(|(_, j)| serde_json::from_str::<serde_json::Value>(&j).ok());
    audit(
        &mut tx,
        actor,
        "flag.remote_config_changed",
        Subject::flag(flag_key, Some(environment.id)),
        before,
        Some(json!(config)),
        now,
    )
    .await?;
    tx.commit().await?;
    runtime.publish().await;
    Ok(version)
}

/// Archives a flag (it stops being served to SDKs) or brings it back.
pub async fn set_archived(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    archived: bool,
) -> ServiceResult<()> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let flag = sql::flag_for_update(&mut tx, flag_key).await?;
    if flag.archived == archived {
        return Ok(());
    }
    sql::set_flag_archived(&mut tx, flag.id, archived, actor.member_id, now).await?;
    for environment in store.environments().await? {
        sql::bump_flag_state_version(&mut tx, environment.id).await?;
    }
    let action = if archived {
        "flag.archived"
    } else {
        "flag.unarchived"
    };
    let (before, after) = (
        json!({ "archived": flag.archived }),
        json!({ "archived": archived }),
    );
    audit(
        &mut tx,
        actor,
        action,
        Subject::flag(flag_key, None),
        Some(before),
        Some(after),
        now,
    )
    .await?;
    tx.commit().await?;
    runtime.publish().await;
    Ok(())
}

/// Copies a flag's current access rules from one environment to another as a new version there.
pub async fn copy_access_rules(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    flag_key: &str,
    from_environment: &str,
    to_environment: &str,
    expected_version: Option<i64>,
) -> ServiceResult<i64> {
    if from_environment == to_environment {
        return Err(invalid("from", "choose another environment to copy from"));
    }
    let source = environment(store, from_environment).await?;
    let flag = store
        .flag_by_key(flag_key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {flag_key}")))?;
    let rules = current_access_rules(store, flag.id, source.id).await?;
    let target = environment(store, to_environment).await?;
    let key = FlagKey::parse(flag_key).map_err(|e| invalid("key", e.to_string()))?;
    let (segments, mut flags) = compile_inputs(store, target.id).await?;
    flags.insert(key, rules.clone());
    compile_check(&segments, &flags)?;
    write_access_rules(
        store,
        runtime,
        actor,
        flag_key,
        &target,
        &rules,
        expected_version,
        "flag.access_rules_copied",
    )
    .await
}

/// The current remote config of a flag in an environment and its version (0: none yet).
pub async fn remote_config(
    store: &Store,
    flag_key: &str,
    environment_key: &str,
) -> ServiceResult<RemoteConfig> {
    let environment = environment(store, environment_key).await?;
    let flag = store
        .flag_by_key(flag_key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("flag {flag_key}")))?;
    Ok(store
        .current_configs(environment.id)
        .await?
        .into_iter()
        .find(|row| row.flag_id == flag.id)
        .and_then(|row| {
            let mut config: RemoteConfig = serde_json::from_str(&row.json).ok()?;
            config.version = row.version as u64;
            Some(config)
        })
        .unwrap_or_default())
}

/// Sets (or with `None` clears) a release stage's default access rules in an environment.
/// Flags already in the stage keep their rules.
pub async fn set_stage_default(
    store: &Store,
    actor: &Actor,
    stage_id: i64,
    environment_key: &str,
    rules: Option<AccessRules>,
) -> ServiceResult<()> {
    let environment = environment(store, environment_key).await?;
    let stage = store
        .release_stages()
        .await?
        .into_iter()
        .find(|s| s.id == stage_id)
        .ok_or_else(|| invalid("stage", "choose one of the release stages"))?;
    if let Some(rules) = &rules {
        let (segments, mut flags) = compile_inputs(store, environment.id).await?;
        flags.insert(
            FlagKey::parse("stage-default-check").map_err(|_| ServiceError::Internal)?,
            rules.clone(),
        );
        compile_check(&segments, &flags)?;
    }
    let json = rules
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|_| ServiceError::Internal)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::set_stage_default(&mut tx, stage_id, environment.id, json.as_deref()).await?;
    audit(
        &mut tx,
        actor,
        "stage.default_rules_changed",
        Subject {
            kind: "stage",
            key: &stage.name,
            environment_id: Some(environment.id),
        },
        None,
        Some(json!(rules)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
