//! Environments and their API keys.

use sqlx::Row;

use super::{Store, StoreResult};

/// An environment (Production, Staging, ...) with the version counter SDKs use for freshness.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Environment {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub sort_order: i64,
    pub is_production: bool,
    pub flag_state_version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyKind {
    Publishable,
    Secret,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyKind::Publishable => "publishable",
            ApiKeyKind::Secret => "secret",
        }
    }
}

fn environment_from_row(row: &sqlx::any::AnyRow) -> Result<Environment, sqlx::Error> {
    Ok(Environment {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        sort_order: row.try_get("sort_order")?,
        is_production: row.try_get::<i64, _>("is_production")? != 0,
        flag_state_version: row.try_get("flag_state_version")?,
    })
}

const ENVIRONMENT_COLUMNS: &str = "id, key, name, sort_order, is_production, flag_state_version";

impl Store {
    /// Every environment in display order.
    pub async fn environments(&self) -> StoreResult<Vec<Environment>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENVIRONMENT_COLUMNS} FROM environments ORDER BY sort_order, id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(environment_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn environment_by_key(&self, key: &str) -> StoreResult<Option<Environment>> {
        let row = sqlx::query(&format!(
            "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE key = $1"
        ))
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(environment_from_row).transpose()?)
    }

    /// The publishable key of an environment (each has exactly one).
    pub async fn publishable_key(&self, environment_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT public_value FROM api_keys \
             WHERE environment_id = $1 AND kind = 'publishable' AND revoked_at IS NULL",
        )
        .bind(environment_id)
        .fetch_optional(self.pool())
        .await?)
    }
}
