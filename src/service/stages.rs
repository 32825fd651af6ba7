//! Release stages as admins shape them: add, rename, recolour, reorder, delete, and the default
//! access rules a stage gives the flags moved into it.
//!
//! Stages are a UI concept (SDK payloads never mention them), so no change here can alter
//! evaluation: nothing bumps `flagStateVersion` or publishes to the runtime. Deleting a stage that
//! still holds flags moves them to another stage first, in the same transaction; the flags keep
//! their access rules (the target stage's defaults are not applied, since nobody previewed them).

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::runtime::Inputs;
use super::store::stages::{
    delete_stage, flag_keys_in_stage, insert_stage, lock_stages, move_stage_flags, renumber_stages,
    set_stage_default, stage_defaults_in, stages_in, update_stage,
};
use super::write::{Record, Write};
use crate::eval::{compile_access_rules, CompileContext};
use crate::model::{AccessRules, FlagKey, ReleaseStage};

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

/// A release stage as a change names it: by id (forms) or by name (imports, which may name a
/// stage created earlier in the same import).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageRef {
    Id(i64),
    Name(String),
}

/// The stage `stage` names, or an error for the `stage` field.
pub fn resolve<'s>(stages: &'s [ReleaseStage], stage: &StageRef) -> ServiceResult<&'s ReleaseStage> {
    stages
        .iter()
        .find(|s| match stage {
            StageRef::Id(id) => s.id == *id,
            StageRef::Name(name) => s.name == *name,
        })
        .ok_or_else(|| ServiceError::invalid("stage", "choose one of the release stages"))
}

fn stage_json(stage: &ReleaseStage) -> serde_json::Value {
    json!({ "name": stage.name, "color": stage.color, "order": stage.sort_order })
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
pub async fn add(w: &mut Write<'_>, name: &str, color: &str) -> ServiceResult<ReleaseStage> {
    let name = StageName::parse(name)?;
    let color = StageColor::parse(color)?;
    lock_stages(w.conn()).await?;
    check_name_free(&stages_in(w.conn()).await?, &name, None)?;
    let now = w.now;
    let id = insert_stage(w.conn(), name.as_str(), color.as_str(), now).await?;
    let stages = stages_in(w.conn()).await?;
    let stage = find(&stages, id)?.clone();
    w.record(Record::of("stage.created", "stage", name.as_str()).after(stage_json(&stage)))
        .await?;
    Ok(stage)
}

/// Renames and/or recolours a stage. Saving unchanged values writes nothing.
pub async fn update(w: &mut Write<'_>, stage: &StageRef, name: &str, color: &str) -> ServiceResult<()> {
    let name = StageName::parse(name)?;
    let color = StageColor::parse(color)?;
    lock_stages(w.conn()).await?;
    let stages = stages_in(w.conn()).await?;
    let before = match stage {
        StageRef::Id(id) => find(&stages, *id)?,
        StageRef::Name(_) => resolve(&stages, stage)?,
    }
    .clone();
    let id = before.id;
    let renamed = before.name != name.as_str();
    let recoloured = before.color != color.as_str();
    let action = match (renamed, recoloured) {
        (false, false) => return Ok(()),
        (true, false) => "stage.renamed",
        (false, true) => "stage.recoloured",
        (true, true) => "stage.changed",
    };
    check_name_free(&stages, &name, Some(id))?;
    update_stage(w.conn(), id, name.as_str(), color.as_str()).await?;
    let after = ReleaseStage {
        name: name.as_str().to_string(),
        color: color.as_str().to_string(),
        ..before.clone()
    };
    let record = Record::of(action, "stage", name.as_str())
        .before(stage_json(&before))
        .after(stage_json(&after));
    w.record(record).await
}

/// Moves a stage one place up or down and renumbers the order. At either end it stays put.
pub async fn reorder(w: &mut Write<'_>, id: i64, direction: Direction) -> ServiceResult<()> {
    lock_stages(w.conn()).await?;
    let stages = stages_in(w.conn()).await?;
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
    renumber_stages(w.conn(), &order).await?;
    let names = |ids: &[i64]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| stages.iter().find(|s| s.id == *id).map(|s| s.name.clone()))
            .collect()
    };
    let before: Vec<i64> = stages.iter().map(|s| s.id).collect();
    let record = Record::of("stage.reordered", "stage", &stages[position].name)
        .before(json!({ "order": names(&before) }))
        .after(json!({ "order": names(&order) }));
    w.record(record).await
}

/// Deletes a stage. A stage with flags needs `move_flags_to`, another stage that takes them
/// (each moved flag gets its own audit entry); the last stage cannot go.
pub async fn delete(w: &mut Write<'_>, id: i64, move_flags_to: Option<i64>) -> ServiceResult<()> {
    lock_stages(w.conn()).await?;
    let stages = stages_in(w.conn()).await?;
    let stage = find(&stages, id)?.clone();
    if stages.len() == 1 {
        return Err(ServiceError::Conflict(format!(
            "{} is the only release stage; add another before deleting it",
            stage.name
        )));
    }
    let flags = flag_keys_in_stage(w.conn(), id).await?;
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
        let (actor, now) = (w.actor.member_id(), w.now);
        move_stage_flags(w.conn(), id, target.id, actor, now).await?;
        for key in &flags {
            let record = Record::flag("flag.stage_changed", key, None)
                .before(json!({ "stage": stage.name }))
                .after(json!({ "stage": target.name, "reason": "stage deleted" }));
            w.record(record).await?;
        }
    }
    delete_stage(w.conn(), id).await?;
    let remaining: Vec<i64> = stages.iter().map(|s| s.id).filter(|s| *s != id).collect();
    renumber_stages(w.conn(), &remaining).await?;
    let record = Record::of("stage.deleted", "stage", &stage.name)
        .before(stage_json(&stage))
        .after(json!({ "movedFlags": flags, "movedTo": target.map(|t| t.name) }));
    w.record(record).await
}

/// Sets (or with `None` clears) a stage's default access rules in an environment, after checking
/// that they compile there as a flag's rules would. Flags already in the stage keep their rules.
pub async fn set_default(
    w: &mut Write<'_>,
    stage: &StageRef,
    environment: &str,
    rules: Option<AccessRules>,
) -> ServiceResult<()> {
    let environment = w.environment(environment)?;
    let stages = stages_in(w.conn()).await?;
    let stage = resolve(&stages, stage)?.clone();
    let stage_id = stage.id;
    if let Some(rules) = &rules {
        let inputs = Inputs::load(w.conn(), environment.clone()).await?;
        let flags = inputs.access_by_key()?;
        let cx = CompileContext {
            segments: &inputs.segments,
            flags: &flags,
        };
        // Checked as the rules of a flag no other flag refers to, which is what a new flag is.
        let probe = FlagKey::parse("stage-default").map_err(|_| ServiceError::Internal)?;
        compile_access_rules(&probe, rules, &cx)
            .map_err(|e| ServiceError::invalid("rules", e.to_string()))?;
    }
    let before = stage_defaults_in(w.conn())
        .await?
        .into_iter()
        .find(|d| d.stage_id == stage_id && d.environment_id == environment.id)
        .map(|d| d.rules);
    if before == rules {
        return Ok(());
    }
    set_stage_default(w.conn(), stage_id, environment.id, rules.as_ref()).await?;
    let record = Record::of("stage.default_rules_changed", "stage", &stage.name)
        .in_environment(environment.id)
        .before(before.map(|r| json!(r)))
        .after(rules.map(|r| json!(r)));
    w.record(record).await
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
