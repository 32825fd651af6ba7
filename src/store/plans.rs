//! Release plans and their templates. Like scheduled changes, a plan that advances by itself is
//! found with [`Store::due_plans`] and claimed inside the change pipeline's transaction with
//! [`claim_plan`] (PostgreSQL: `FOR UPDATE SKIP LOCKED`), so one replica advances it once.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::scheduled::{created_kind, Due};
use super::{decode_json, is_postgres, CorruptRow, Store, StoreError, StoreResult};
use crate::model::{Milestone, PlanStatus, PlanTemplate, ReleasePlan};

fn template_from_row(row: &AnyRow) -> StoreResult<PlanTemplate> {
    let id: i64 = row.try_get("id")?;
    let milestones: String = row.try_get("milestones")?;
    Ok(PlanTemplate {
        id,
        name: row.try_get("name")?,
        milestones: decode_json("plan_templates", id, &milestones)?,
    })
}

const PLAN_COLUMNS: &str = "p.id, f.key AS flag_key, p.environment_id, p.template, p.milestones, p.current, \
     p.status, p.next_due_at, p.applied_version, p.note, p.created_label";

fn plan_from_row(row: &AnyRow) -> StoreResult<ReleasePlan> {
    let id: i64 = row.try_get("id")?;
    let milestones: String = row.try_get("milestones")?;
    let status: String = row.try_get("status")?;
    let corrupt = |reason: String| CorruptRow {
        table: "release_plans",
        id: id.to_string(),
        reason,
    };
    let status = PlanStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status {status:?}")))?;
    let milestones: Vec<Milestone> = decode_json("release_plans", id, &milestones)?;
    let current: i64 = row.try_get("current")?;
    let current = usize::try_from(current)
        .ok()
        .filter(|c| *c < milestones.len())
        .ok_or_else(|| corrupt(format!("milestone {current} of {}", milestones.len())))?;
    Ok(ReleasePlan {
        id,
        flag: row.try_get("flag_key")?,
        environment_id: row.try_get("environment_id")?,
        template: row.try_get("template")?,
        milestones,
        current,
        status,
        next_due_at: row.try_get("next_due_at")?,
        applied_version: row.try_get("applied_version")?,
        note: row.try_get("note")?,
        created_label: row.try_get("created_label")?,
    })
}

fn milestones_json(milestones: &[Milestone]) -> StoreResult<String> {
    serde_json::to_string(milestones).map_err(|e| StoreError::Encode(e.to_string()))
}

impl Store {
    /// Every plan template, by name.
    pub async fn plan_templates(&self) -> StoreResult<Vec<PlanTemplate>> {
        let rows = sqlx::query("SELECT id, name, milestones FROM plan_templates ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// A flag's plans, the running ones first, then the latest finished ones.
    pub async fn plans_for_flag(&self, flag_id: i64) -> StoreResult<Vec<ReleasePlan>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM release_plans p JOIN flags f ON f.id = p.flag_id WHERE p.flag_id = $1 \
             ORDER BY CASE WHEN p.status IN ('active', 'paused') THEN 0 ELSE 1 END, p.id DESC LIMIT 20"
        ))
        .bind(flag_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(plan_from_row).collect()
    }

    /// Every running (active or paused) plan.
    pub async fn running_plans(&self) -> StoreResult<Vec<ReleasePlan>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM release_plans p JOIN flags f ON f.id = p.flag_id \
             WHERE p.status IN ('active', 'paused') ORDER BY p.id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(plan_from_row).collect()
    }

    /// Up to `limit` active plans whose next milestone is due at `now`: (plan, its author, the
    /// milestone it is at).
    pub async fn due_plans(&self, now: i64, limit: i64) -> StoreResult<Vec<(Due, usize)>> {
        let rows = sqlx::query(
            "SELECT id, created_kind, created_by, created_label, current FROM release_plans \
             WHERE status = 'active' AND next_due_at <= $1 ORDER BY next_due_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let current = row.try_get::<i64, _>("current")?.max(0) as usize;
                Ok((Due::from_row(row)?, current))
            })
            .collect()
    }
}

pub async fn template_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<PlanTemplate>> {
    let row = sqlx::query("SELECT id, name, milestones FROM plan_templates WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(template_from_row).transpose()
}

/// Inserts a template (`id` `None`) or replaces one; a taken name is a `Conflict`.
pub async fn save_template(
    conn: &mut AnyConnection,
    id: Option<i64>,
    name: &str,
    milestones: &[Milestone],
    now: i64,
) -> StoreResult<i64> {
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT id FROM plan_templates WHERE LOWER(name) = LOWER($1)")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    if taken.is_some_and(|taken| Some(taken) != id) {
        return Err(StoreError::Conflict(format!(
            "a plan template is named {name:?} already"
        )));
    }
    let json = milestones_json(milestones)?;
    match id {
        None => Ok(sqlx::query_scalar(
            "INSERT INTO plan_templates (name, milestones, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(name)
        .bind(json)
        .bind(now)
        .fetch_one(conn)
        .await?),
        Some(id) => {
            let updated = sqlx::query("UPDATE plan_templates SET name = $1, milestones = $2, updated_at = $3 WHERE id = $4")
                .bind(name)
                .bind(json)
                .bind(now)
                .bind(id)
                .execute(conn)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("plan template {id}")));
            }
            Ok(id)
        }
    }
}

pub async fn delete_template(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    let deleted = sqlx::query("DELETE FROM plan_templates WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("plan template {id}")));
    }
    Ok(())
}

/// The running plan of a flag in an environment, if any.
pub async fn running_plan_in(
    conn: &mut AnyConnection,
    flag_id: i64,
    environment_id: i64,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM release_plans WHERE flag_id = $1 AND environment_id = $2 AND status IN ('active', 'paused')",
    )
    .bind(flag_id)
    .bind(environment_id)
    .fetch_optional(conn)
    .await?)
}

/// A new plan, at its first milestone.
pub struct NewPlan<'a> {
    pub flag_id: i64,
    pub environment_id: i64,
    pub template: &'a str,
    pub milestones: &'a [Milestone],
    pub next_due_at: Option<i64>,
    pub applied_version: i64,
    /// The author's member id (`None`: the command line) and label.
    pub author: (Option<i64>, &'a str),
}

pub async fn insert_plan(conn: &mut AnyConnection, plan: &NewPlan<'_>, now: i64) -> StoreResult<i64> {
    let (member, label) = plan.author;
    Ok(sqlx::query_scalar(
        "INSERT INTO release_plans (flag_id, environment_id, template, milestones, current, status, next_due_at, \
         applied_version, created_kind, created_by, created_label, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, 'active', $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(plan.flag_id)
    .bind(plan.environment_id)
    .bind(plan.template)
    .bind(milestones_json(plan.milestones)?)
    .bind(plan.next_due_at)
    .bind(plan.applied_version)
    .bind(created_kind(member))
    .bind(member)
    .bind(label)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// The plan `id`, locked (PostgreSQL) until the caller's transaction ends.
pub async fn plan_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ReleasePlan>> {
    let lock = if is_postgres(conn) { " FOR UPDATE OF p" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM release_plans p JOIN flags f ON f.id = p.flag_id WHERE p.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(plan_from_row).transpose()
}

/// Claims the active plan `id` at milestone `from` (and, when `due_by` is set, due by then):
/// `None` when it moved on, is not active or due, or (PostgreSQL) another replica holds it.
pub async fn claim_plan(
    conn: &mut AnyConnection,
    id: i64,
    from: usize,
    due_by: Option<i64>,
) -> StoreResult<Option<ReleasePlan>> {
    let lock = if is_postgres(conn) {
        " FOR UPDATE OF p SKIP LOCKED"
    } else {
        ""
    };
    let row = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM release_plans p JOIN flags f ON f.id = p.flag_id \
         WHERE p.id = $1 AND p.current = $2 AND p.status = 'active' \
         AND ($3 = 0 OR p.next_due_at <= $4){lock}"
    ))
    .bind(id)
    .bind(from as i64)
    .bind(i64::from(due_by.is_some()))
    .bind(due_by.unwrap_or(0))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(plan_from_row).transpose()
}

/// Writes where a plan stands.
pub async fn update_plan(conn: &mut AnyConnection, plan: &ReleasePlan, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE release_plans SET current = $1, status = $2, next_due_at = $3, applied_version = $4, note = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(plan.current as i64)
    .bind(plan.status.as_str())
    .bind(plan.next_due_at)
    .bind(plan.applied_version)
    .bind(&plan.note)
    .bind(now)
    .bind(plan.id)
    .execute(conn)
    .await?;
    Ok(())
}
