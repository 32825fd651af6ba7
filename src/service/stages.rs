//! Release stages as admins shape them: add, rename, recolour, reorder and delete.
//!
//! Stages are a UI concept (SDK payloads never mention them), so no change here can alter
//! evaluation: nothing bumps `flagStateVersion` or publishes to the runtime. Deleting a stage that
//! still holds flags moves them to another stage first, in the same transaction; the flags keep
//! their access rules (the target stage's defaults are not applied, since nobody previewed them).
//! A stage's per-environment default rules are set by [`super::flags::set_stage_default`].

use serde_json::json;
use sqlx::AnyConnection;

use super::{Actor, ServiceError, ServiceResult};
use crate::store::audit::{insert_audit, NewAuditEntry};
use crate::store::stages_write as sql;
use crate::store::{now_ms, ReleaseStage, Store};

/// Longest stage name, in characters.
pub const NAME_MAX_CHARS: usize = 60;

/// A stage name: trimmed, 1 to [`NAME_MAX_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageName(String);

impl StageName {
    pub fn parse(raw: &str) -> ServiceResult<StageName> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ServiceError::invalid("name", "give the stage a name"));
        }
        if name.chars().count() > NAME_MAX_CHARS {
            return Err(ServiceError::invalid(
                "name",
                format!("use at most {NAME_MAX_CHARS} characters"),
            ));
        }
        Ok(StageName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#rrggbb`, stored lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageColor(String);

impl StageColor {
    pub fn parse(raw: &str) -> ServiceResult<StageColor> {
        let color = raw.trim().to_ascii_lowercase();
        let valid =
            color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(ServiceError::invalid(
                "color",
                "enter a colour as # and six hex digits, like #7c3aed",
            ));
        }
        Ok(StageColor(color))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which way a stage moves in the release order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

fn stage_json(stage: &ReleaseStage) -> serde_json::Value {
    json!({ "name": stage.name, "color": stage.color, "order": stage.sort_order })
}

async fn audit(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    subject_key: &str,
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
            subject_type: "stage",
            subject_key,
            environment_id: None,
            before,
            after,
        },
        now,
    )
    .await?;
    Ok(())
}

fn find(stages: &[ReleaseStage], id: i64) -> ServiceResult<&ReleaseStage> {
    stages
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ServiceError::NotFound("release stage".into()))
}

/// Names compare without case: "Beta" and "beta" side by side would only confuse.
fn check_name_free(stages: &[ReleaseStage], name: &StageName, except: Option<i64>) -> ServiceResult<()> {
    let wanted = name.as_str().to_lowercase();
    if stages
        .iter()
        .any(|s| Some(s.id) != except && s.name.to_lowercase() == wanted)
    {
        return Err(ServiceError::invalid(
            "name",
            format!("a stage named {:?} already exists", name.as_str()),
        ));
    }
    Ok(())
}

/// Adds a stage after the last one.
pub async fn add_stage(store: &Store, actor: &Actor, name: &str, color: &str) -> ServiceResult<ReleaseStage> {
    let name = StageName::parse(name)?;
    let color = StageColor::parse(color)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::lock_stages(&mut tx).await?;
    check_name_free(&sql::stages_in(&mut tx).await?, &name, None)?;
    let id = sql::insert_stage(&mut tx, name.as_str(), color.as_str(), now).await?;
    let stage = sql::stages_in(&mut tx)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(ServiceError::Internal)?;
    audit(
        &mut tx,
        actor,
        "stage.created",
        name.as_str(),
        None,
        Some(stage_json(&stage)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(stage)
}

/// Renames and/or recolours a stage. Saving unchanged values writes nothing.
pub async fn update_stage(
    store: &Store,
    actor: &Actor,
    id: i64,
    name: &str,
    color: &str,
) -> ServiceResult<()> {
    let name = StageName::parse(name)?;
    let color = StageColor::parse(color)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::lock_stages(&mut tx).await?;
    let stages = sql::stages_in(&mut tx).await?;
    let before = find(&stages, id)?.clone();
    let renamed = before.name != name.as_str();
    let recoloured = before.color != color.as_str();
    let action = match (renamed, recoloured) {
        (false, false) => return Ok(()),
        (true, false) => "stage.renamed",
        (false, true) => "stage.recoloured",
        (true, true) => "stage.changed",
    };
    check_name_free(&stages, &name, Some(id))?;
    sql::update_stage(&mut tx, id, name.as_str(), color.as_str()).await?;
    let after = ReleaseStage {
        name: name.as_str().to_string(),
        color: color.as_str().to_string(),
        ..before.clone()
    };
    audit(
        &mut tx,
        actor,
        action,
        name.as_str(),
        Some(stage_json(&before)),
        Some(stage_json(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves a stage one place up or down and renumbers the order. At either end it stays put.
pub async fn move_stage(store: &Store, actor: &Actor, id: i64, direction: Direction) -> ServiceResult<()> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::lock_stages(&mut tx).await?;
    let stages = sql::stages_in(&mut tx).await?;
    let position = stages
        .iter()
        .position(|s| s.id == id)
        .ok_or_else(|| ServiceError::NotFound("release stage".into()))?;
    let other = match direction {
        Direction::Up => position.checked_sub(1),
        Direction::Down => Some(position + 1).filter(|p| *p < stages.len()),
    };
    let Some(other) = other else {
        return Ok(());
    };
    let mut order: Vec<i64> = stages.iter().map(|s| s.id).collect();
    order.swap(position, other);
    sql::renumber_stages(&mut tx, &order).await?;
    let names = |ids: &[i64]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| stages.iter().find(|s| s.id == *id).map(|s| s.name.clone()))
            .collect()
    };
    let before: Vec<i64> = stages.iter().map(|s| s.id).collect();
    audit(
        &mut tx,
        actor,
        "stage.reordered",
        &stages[position].name,
        Some(json!({ "order": names(&before) })),
        Some(json!({ "order": names(&order) })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a stage. A stage with flags needs `move_flags_to`, another stage that takes them
/// (each moved flag gets its own audit entry); the last stage cannot go.
pub async fn delete_stage(
    store: &Store,
    actor: &Actor,
    id: i64,
    move_flags_to: Option<i64>,
) -> ServiceResult<()> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::lock_stages(&mut tx).await?;
    let stages = sql::stages_in(&mut tx).await?;
    let stage = find(&stages, id)?.clone();
    if stages.len() == 1 {
        return Err(ServiceError::Conflict(format!(
            "{} is the only release stage; add another before deleting it",
            stage.name
        )));
    }
    let flags = sql::flag_keys_in_stage(&mut tx, id).await?;
    let target = match move_flags_to.filter(|_| !flags.is_empty()) {
        None if flags.is_empty() => None,
        None => {
            return Err(ServiceError::invalid(
                "move_to",
                format!(
                    "{} holds {} flag(s); choose the stage they move to",
                    stage.name,
                    flags.len()
                ),
            ))
        }
        Some(target) if target == id => {
            return Err(ServiceError::invalid(
                "move_to",
                "choose another stage than the one you delete",
            ))
        }
        Some(target) => Some(
            stages
                .iter()
                .find(|s| s.id == target)
                .ok_or_else(|| ServiceError::invalid("move_to", "choose one of the other stages"))?
                .clone(),
        ),
    };
    if let Some(target) = &target {
        sql::move_stage_flags(&mut tx, id, target.id, actor.member_id, now).await?;
        for key in &flags {
            insert_audit(
                &mut tx,
                NewAuditEntry {
                    actor_id: actor.member_id,
                    actor_label: &actor.label,
                    action: "flag.stage_changed",
                    subject_type: "flag",
                    subject_key: key,
                    environment_id: None,
                    before: Some(json!({ "stage": stage.name })),
                    after: Some(json!({ "stage": target.name, "reason": "stage deleted" })),
                },
                now,
            )
            .await?;
        }
    }
    sql::delete_stage(&mut tx, id).await?;
    let remaining: Vec<i64> = stages.iter().map(|s| s.id).filter(|s| *s != id).collect();
    sql::renumber_stages(&mut tx, &remaining).await?;
    audit(
        &mut tx,
        actor,
        "stage.deleted",
        &stage.name,
        Some(stage_json(&stage)),
        Some(json!({ "movedFlags": flags, "movedTo": target.map(|t| t.name) })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_six_hex_digits_stored_lowercase() {
        assert_eq!(StageColor::parse(" #7C3AED ").unwrap().as_str(), "#7c3aed");
        for bad in ["7c3aed", "#7c3ae", "#7c3aedd", "#7c3aeg", "", "#éééééé"] {
            assert!(StageColor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(StageName::parse("  Beta ").unwrap().as_str(), "Beta");
        assert!(StageName::parse("   ").is_err());
        assert!(StageName::parse(&"x".repeat(NAME_MAX_CHARS + 1)).is_err());
    }
}
