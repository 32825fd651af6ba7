//! API keys: one publishable key per environment (public) and any number of secret keys (kept
//! only as SHA-256 digests, [`crate::model::secret::digest`]).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{CorruptRow, Store, StoreResult};
use crate::model::ApiKeyKind;

/// A key as listed: never the secret itself, only its prefix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub environment_id: i64,
    pub kind: ApiKeyKind,
    pub prefix: String,
    /// The whole key for publishable keys (they are public); `None` for secret keys.
    pub public_value: Option<String>,
    pub created_at: i64,
    /// When it stops (stopped) working; a rotated publishable key's may lie ahead.
    pub revoked_at: Option<i64>,
    /// What people call it ("" when unnamed).
    pub name: String,
}

impl ApiKeyInfo {
    /// Whether the key works at `now`: a revoked key stops at `revoked_at`, which lies ahead
    /// for a rotated publishable key in its grace period (as [`Store::live_keys`] selects).
    pub fn works_at(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|at| at > now)
    }
}

/// A live key as the runtime holds it: a publishable key by value, a secret key by its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveKey {
    pub environment_id: i64,
    pub kind: ApiKeyKind,
    pub lookup: String,
}

fn kind_from_row(row: &AnyRow) -> StoreResult<ApiKeyKind> {
    let kind: String = row.try_get("kind")?;
    match kind.as_str() {
        "publishable" => Ok(ApiKeyKind::Publishable),
        "secret" => Ok(ApiKeyKind::Secret),
        _ => Err(CorruptRow {
            table: "api_keys",
            id: row.try_get::<i64, _>("id")?.to_string(),
            reason: format!("unknown key kind {kind:?}"),
        }
        .into()),
    }
}

impl Store {
    /// Every key of every environment, newest first within an environment.
    pub async fn api_keys(&self) -> StoreResult<Vec<ApiKeyInfo>> {
        let rows = sqlx::query(
            "SELECT k.id, k.environment_id, k.kind, k.prefix, k.public_value, k.created_at, k.revoked_at, k.name \
             FROM api_keys k JOIN environments e ON e.id = k.environment_id \
             ORDER BY e.sort_order, k.kind, k.created_at DESC, k.id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyInfo {
                    id: row.try_get("id")?,
                    environment_id: row.try_get("environment_id")?,
                    kind: kind_from_row(row)?,
                    prefix: row.try_get("prefix")?,
                    public_value: row.try_get("public_value")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
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

    /// Every key that works at `now` (not revoked, or revoked from a later time), as the runtime
    /// looks keys up.
    pub async fn live_keys(&self, now: i64) -> StoreResult<Vec<LiveKey>> {
        let rows = sqlx::query(
            "SELECT id, environment_id, kind, public_value, secret_hash FROM api_keys \
             WHERE revoked_at IS NULL OR revoked_at > $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let kind = kind_from_row(row)?;
                let column = match kind {
                    ApiKeyKind::Secret => "secret_hash",
                    ApiKeyKind::Publishable => "public_value",
                };
                let lookup: Option<String> = row.try_get(column)?;
                Ok(LiveKey {
                    environment_id: row.try_get("environment_id")?,
                    kind,
                    lookup: lookup.ok_or_else(|| CorruptRow {
                        table: "api_keys",
                        id: row.try_get::<i64, _>("id").unwrap_or_default().to_string(),
                        reason: format!("a {} key without its {column}", kind.as_str()),
                    })?,
                })
            })
            .collect()
    }
}

pub async fn insert_secret_key(
    conn: &mut AnyConnection,
    environment_id: i64,
    secret_hash: &str,
    prefix: &str,
    name: &str,
    now: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_keys (environment_id, kind, secret_hash, prefix, name, created_at) \
         VALUES ($1, 'secret', $2, $3, $4, $5) RETURNING id",
    )
    .bind(environment_id)
    .bind(secret_hash)
    .bind(prefix)
    .bind(name)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Makes `value` the environment's publishable key: the current one stops working at `until`
/// (revoked from then on). Returns the key it replaced.
pub async fn replace_publishable_key(
    conn: &mut AnyConnection,
    environment_id: i64,
    value: &str,
    until: i64,
    now: i64,
) -> StoreResult<Option<String>> {
    let old: Option<(String, String)> = sqlx::query_as(
        "SELECT public_value, name FROM api_keys \
         WHERE environment_id = $1 AND kind = 'publishable' AND revoked_at IS NULL",
    )
    .bind(environment_id)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 \
         WHERE environment_id = $2 AND kind = 'publishable' AND revoked_at IS NULL",
    )
    .bind(until)
    .bind(environment_id)
    .execute(&mut *conn)
    .await?;
    let name = old.as_ref().map_or("", |(_, name)| name.as_str());
    sqlx::query(
        "INSERT INTO api_keys (environment_id, kind, public_value, prefix, name, created_at) \
         VALUES ($1, 'publishable', $2, $3, $4, $5)",
    )
    .bind(environment_id)
    .bind(value)
    .bind(value.chars().take(12).collect::<String>())
    .bind(name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(old.map(|(value, _)| value))
}

/// Names the key `id`; its environment, or `None` when there is no such key.
pub async fn name_key(conn: &mut AnyConnection, id: i64, name: &str) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("UPDATE api_keys SET name = $1 WHERE id = $2 RETURNING environment_id")
            .bind(name)
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Revokes the live secret keys whose prefix is `prefix`; returns the environments they opened.
pub async fn revoke_secret_keys(conn: &mut AnyConnection, prefix: &str, now: i64) -> StoreResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = $1 WHERE kind = 'secret' AND prefix = $2 AND revoked_at IS NULL \
         RETURNING environment_id",
    )
    .bind(now)
    .bind(prefix)
    .fetch_all(conn)
    .await?)
}
