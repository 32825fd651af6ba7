//! Release stages: the app-wide, ordered steps a flag moves through, and the default access rules
//! each stage may carry per environment.
//!
//! Writes run inside the caller's transaction. [`lock_stages`] comes first in each change of the
//! order or the set of stages: it touches every stage row, which takes the rows' locks on
//! PostgreSQL (SQLite's write transaction already holds its one lock), so two admins reordering or
//! deleting at the same moment serialise instead of leaving gaps in the order or no stage at all.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, Store, StoreError, StoreResult};
use crate::model::{AccessRules, ReleaseStage};

/// A stage's default access rules in one environment, copied onto flags moved into the stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageDefault {
    pub stage_id: i64,
    pub environment_id: i64,
    pub rules: AccessRules,
}

fn stage_from_row(row: &AnyRow) -> StoreResult<ReleaseStage> {
    Ok(ReleaseStage {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        color: row.try_get("color")?,
        sort_order: row.try_get("sort_order")?,
    })
}

impl Store {
    /// Every stage in release order.
    pub async fn release_stages(&self) -> StoreResult<Vec<ReleaseStage>> {
        let mut conn = self.pool().acquire().await?;
        stages_in(&mut conn).await
    }

    /// Every stage default.
    pub async fn stage_defaults(&self) -> StoreResult<Vec<StageDefault>> {
        let mut conn = self.pool().acquire().await?;
        stage_defaults_in(&mut conn).await
    }
}

/// Every stage default, read on the caller's connection or transaction.
pub async fn stage_defaults_in(conn: &mut AnyConnection) -> StoreResult<Vec<StageDefault>> {
    let rows = sqlx::query("SELECT stage_id, environment_id, access_rules FROM stage_default_rules")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            let (stage_id, environment_id): (i64, i64) =
                (row.try_get("stage_id")?, row.try_get("environment_id")?);
            let text: String = row.try_get("access_rules")?;
            Ok(StageDefault {
                stage_id,
                environment_id,
                rules: decode_json(
                    "stage_default_rules",
                    format!("stage {stage_id}, environment {environment_id}"),
                    &text,
                )?,
            })
        })
        .collect()
}

/// Sets (`Some`) or removes (`None`) a stage's default rules in an environment.
pub async fn set_stage_default(
    conn: &mut AnyConnection,
    stage_id: i64,
    environment_id: i64,
    rules: Option<&AccessRules>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM stage_default_rules WHERE stage_id = $1 AND environment_id = $2")
        .bind(stage_id)
        .bind(environment_id)
        .execute(&mut *conn)
        .await?;
    if let Some(rules) = rules {
        sqlx::query(
            "INSERT INTO stage_default_rules (stage_id, environment_id, access_rules) VALUES ($1, $2, $3)",
        )
        .bind(stage_id)
        .bind(environment_id)
        .bind(serde_json::to_string(rules).map_err(|e| StoreError::Encode(e.to_string()))?)
        .execute(conn)
        .await?;
    }
    Ok(())
}

fn name_taken(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("a stage named {name:?} already exists"))
        }
        _ => StoreError::Database(error),
    }
}

/// Serialises stage writes for the rest of the transaction; see the module notes.
pub async fn lock_stages(conn: &mut AnyConnection) -> StoreResult<()> {
    sqlx::query("UPDATE release_stages SET sort_order = sort_order")
        .execute(conn)
        .await?;
    Ok(())
}

/// Every stage in release order, read inside the transaction.
pub async fn stages_in(conn: &mut AnyConnection) -> StoreResult<Vec<ReleaseStage>> {
    let rows = sqlx::query("SELECT id, name, color, sort_order FROM release_stages ORDER BY sort_order, id")
        .fetch_all(conn)
        .await?;
    rows.iter().map(stage_from_row).collect()
}

/// Appends a stage after the last one and returns its id.
pub async fn insert_stage(conn: &mut AnyConnection, name: &str, color: &str, now: i64) -> StoreResult<i64> {
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(sort_order) + 1, 0) FROM release_stages")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO release_stages (name, color, sort_order, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(color)
    .bind(next)
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(|e| name_taken(e, name))
}

/// Sets a stage's name and colour.
pub async fn update_stage(conn: &mut AnyConnection, id: i64, name: &str, color: &str) -> StoreResult<()> {
    let updated = sqlx::query("UPDATE release_stages SET name = $1, color = $2 WHERE id = $3")
        .bind(name)
        .bind(color)
        .bind(id)
        .execute(conn)
        .await
        .map_err(|e| name_taken(e, name))?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("stage {id}")));
    }
    Ok(())
}

/// Stores `ids` as the release order: the first gets 0, the next 1, and so on.
pub async fn renumber_stages(conn: &mut AnyConnection, ids: &[i64]) -> StoreResult<()> {
    for (order, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE release_stages SET sort_order = $1 WHERE id = $2")
            .bind(order as i64)
            .bind(*id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The keys of the flags (archived ones included) in a stage, sorted.
pub async fn flag_keys_in_stage(conn: &mut AnyConnection, stage_id: i64) -> StoreResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT key FROM flags WHERE stage_id = $1 ORDER BY key")
            .bind(stage_id)
            .fetch_all(conn)
            .await?,
    )
}

/// Moves every flag of one stage into another; returns how many moved.
pub async fn move_stage_flags(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<u64> {
    let moved =
        sqlx::query("UPDATE flags SET stage_id = $1, updated_at = $2, updated_by = $3 WHERE stage_id = $4")
            .bind(to)
            .bind(now)
            .bind(actor)
            .bind(from)
            .execute(conn)
            .await?;
    Ok(moved.rows_affected())
}

/// Deletes a stage (its default rules go with it). Fails with a database error if a flag is
/// still in it: the foreign key keeps flags from losing their stage.
pub async fn delete_stage(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    let deleted = sqlx::query("DELETE FROM release_stages WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("stage {id}")));
    }
    Ok(())
}

impl Store {
    /// `(stage id, number of flags)` for every stage that has flags, archived ones included.
    pub async fn stage_flag_counts(&self) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT stage_id, COUNT(*) AS flags FROM flags GROUP BY stage_id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("stage_id")?, row.try_get("flags")?)))
            .collect()
    }

    /// `(stage id, number of flags)` for every stage that has flags not archived.
    pub async fn live_stage_flag_counts(&self) -> StoreResult<Vec<(i64, i64)>> {
        let rows =
            sqlx::query("SELECT stage_id, COUNT(*) AS flags FROM flags WHERE archived = 0 GROUP BY stage_id")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("stage_id")?, row.try_get("flags")?)))
            .collect()
    }
}
