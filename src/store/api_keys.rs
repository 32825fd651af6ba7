//! API keys: one publishable key per environment (public) and any number of secret keys (kept
//! only as SHA-256 digests).

use sqlx::{AnyConnection, Row};

use super::{ApiKeyKind, Store, StoreResult};

/// A key as listed: never the secret itself, only its prefix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub environment_key: String,
    pub kind: String,
    pub prefix: String,
    /// The whole key for publishable keys (they are public); `None` for secret keys.
    pub public_value: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Which environment a presented key opens, and with what kind of key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    pub environment_id: i64,
    pub kind: ApiKeyKind,
}

impl Store {
    /// Every key of every environment, newest first within an environment.
    pub async fn api_keys(&self) -> StoreResult<Vec<ApiKeyInfo>> {
        let rows = sqlx::query(
            "SELECT k.id, e.key AS environment_key, k.kind, k.prefix, k.public_value, k.created_at, k.revoked_at \
             FROM api_keys k JOIN environments e ON e.id = k.environment_id \
             ORDER BY e.sort_order, k.kind, k.created_at DESC, k.id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyInfo {
                    id: row.try_get("id")?,
                    environment_key: row.try_get("environment_key")?,
                    kind: row.try_get("kind")?,
                    prefix: row.try_get("prefix")?,
                    public_value: row.try_get("public_value")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Looks up a presented key: a publishable key by value, a secret key by its digest.
    pub async fn key_grant(&self, presented: &str) -> StoreResult<Option<KeyGrant>> {
        let digest = crate::auth::tokens::sha256_hex(presented);
        let row = sqlx::query(
            "SELECT environment_id, kind FROM api_keys \
             WHERE revoked_at IS NULL AND (public_value = $1 OR secret_hash = $2)",
        )
        .bind(presented)
        .bind(digest)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(KeyGrant {
                environment_id: row.try_get("environment_id")?,
                kind: if kind == "secret" {
                    ApiKeyKind::Secret
                } else {
                    ApiKeyKind::Publishable
                },
            })
        })
        .transpose()
    }
}

pub async fn insert_secret_key(
    conn: &mut AnyConnection,
    environment_id: i64,
    secret_hash: &str,
    prefix: &str,
    now: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_keys (environment_id, kind, secret_hash, prefix, created_at) \
         VALUES ($1, 'secret', $2, $3, $4) RETURNING id",
    )
    .bind(environment_id)
    .bind(secret_hash)
    .bind(prefix)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Revokes the live secret keys whose prefix is `prefix`; returns how many.
pub async fn revoke_secret_keys(conn: &mut AnyConnection, prefix: &str, now: i64) -> StoreResult<u64> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE kind = 'secret' AND prefix = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(prefix)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// A live key as the runtime caches it: publishable keys by value, secret keys by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveKey {
    pub environment_id: i64,
    pub kind: ApiKeyKind,
    pub lookup: String,
}

impl Store {
    pub async fn live_keys(&self) -> StoreResult<Vec<LiveKey>> {
        let rows = sqlx::query(
            "SELECT environment_id, kind, public_value, secret_hash FROM api_keys WHERE revoked_at IS NULL",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let (kind, lookup) = if kind == "secret" {
                    (
                        ApiKeyKind::Secret,
                        row.try_get::<Option<String>, _>("secret_hash")?,
                    )
                } else {
                    (
                        ApiKeyKind::Publishable,
                        row.try_get::<Option<String>, _>("public_value")?,
                    )
                };
                Ok(LiveKey {
                    environment_id: row.try_get("environment_id")?,
                    kind,
                    lookup: lookup.unwrap_or_default(),
                })
            })
            .collect()
    }
}
