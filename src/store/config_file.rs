//! The writes a configuration import needs beyond the single-change ones in [`super::flags`]:
//! creating release stages, changing a stage's colour, a flag's descriptive fields and an
//! environment's name. Each takes the import's transaction, so a whole file applies or nothing does.

use sqlx::AnyConnection;

use super::{StoreError, StoreResult};

/// Appends a release stage after the existing ones and returns its id.
pub async fn insert_stage(conn: &mut AnyConnection, name: &str, color: &str, now: i64) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO release_stages (name, color, sort_order, created_at) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(sort_order), -1) + 1 FROM release_stages), $3) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(color)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| StoreError::Conflict(format!("a release stage named {name:?} already exists")))
}

pub async fn update_stage_color(conn: &mut AnyConnection, stage_id: i64, color: &str) -> StoreResult<()> {
    sqlx::query("UPDATE release_stages SET color = $1 WHERE id = $2")
        .bind(color)
        .bind(stage_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A flag's fields other than its key and its per-environment rules.
pub struct FlagFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub stage_id: i64,
    pub permanent: bool,
    pub archived: bool,
}

pub async fn update_flag_fields(
    conn: &mut AnyConnection,
    flag_id: i64,
    fields: &FlagFields<'_>,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE flags SET name = $1, description = $2, stage_id = $3, permanent = $4, archived = $5, \
         updated_at = $6, updated_by = $7 WHERE id = $8",
    )
    .bind(fields.name)
    .bind(fields.description)
    .bind(fields.stage_id)
    .bind(i64::from(fields.permanent))
    .bind(i64::from(fields.archived))
    .bind(now)
    .bind(actor)
    .bind(flag_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_environment(
    conn: &mut AnyConnection,
    environment_id: i64,
    name: &str,
    is_production: bool,
) -> StoreResult<()> {
    sqlx::query("UPDATE environments SET name = $1, is_production = $2 WHERE id = $3")
        .bind(name)
        .bind(i64::from(is_production))
        .bind(environment_id)
        .execute(conn)
        .await?;
    Ok(())
}
