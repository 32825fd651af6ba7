//! Environments: their names, order, production mark and `flagStateVersion`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_key, Store, StoreResult};
use crate::model::Environment;

const COLUMNS: &str = "id, key, name, sort_order, is_production, flag_state_version, required_approvals";

fn environment_from_row(row: &AnyRow) -> StoreResult<Environment> {
    let id: i64 = row.try_get("id")?;
    Ok(Environment {
        id,
        key: decode_key("environments", id, row.try_get("key")?)?,
        name: row.try_get("name")?,
        sort_order: row.try_get("sort_order")?,
        is_production: row.try_get::<i64, _>("is_production")? != 0,
        flag_state_version: row.try_get("flag_state_version")?,
        required_approvals: row.try_get("required_approvals")?,
    })
}

impl Store {
    /// Every environment in display order.
    pub async fn environments(&self) -> StoreResult<Vec<Environment>> {
        let mut conn = self.pool().acquire().await?;
        environments_in(&mut conn).await
    }
}

/// Every environment in display order, read on the caller's connection or transaction.
pub async fn environments_in(conn: &mut AnyConnection) -> StoreResult<Vec<Environment>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM environments ORDER BY sort_order, id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(environment_from_row).collect()
}

/// Renames an environment and sets its production mark.
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

/// Sets how many approvals a change in an environment needs (0: not protected).
pub async fn set_required_approvals(
    conn: &mut AnyConnection,
    environment_id: i64,
    approvals: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE environments SET required_approvals = $1 WHERE id = $2")
        .bind(approvals)
        .bind(environment_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Bumps an environment's `flagStateVersion` and returns the new value.
pub async fn bump_flag_state_version(conn: &mut AnyConnection, environment_id: i64) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE environments SET flag_state_version = flag_state_version + 1 WHERE id = $1 \
         RETURNING flag_state_version",
    )
    .bind(environment_id)
    .fetch_one(conn)
    .await?)
}
