//! Access tokens (kept only as SHA-256 digests) and the answers replayed for an `Idempotency-Key`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::members::role_from;
use super::{CorruptRow, Store, StoreResult};
use crate::model::member::Role;
use crate::model::token::{TokenKind, TokenView};

/// A new token's row.
pub struct NewToken<'a> {
    pub kind: TokenKind,
    pub name: &'a str,
    pub prefix: &'a str,
    pub digest: &'a str,
    pub member_id: Option<i64>,
    pub role: Option<Role>,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Tokens joined with their member: a personal token's role is its member's.
const SELECT: &str = "SELECT t.id, t.kind, t.name, t.prefix, t.member_id, m.email, \
     COALESCE(m.role, t.role) AS role, t.created_by, t.created_at, t.expires_at, t.revoked_at \
     FROM access_tokens t LEFT JOIN members m ON m.id = t.member_id";

fn token_from_row(row: &AnyRow) -> StoreResult<TokenView> {
    let kind: String = row.try_get("kind")?;
    let kind = match kind.as_str() {
        "personal" => TokenKind::Personal,
        "service" => TokenKind::Service,
        other => {
            return Err(CorruptRow {
                table: "access_tokens",
                id: row.try_get::<i64, _>("id")?.to_string(),
                reason: format!("unknown token kind {other:?}"),
            }
            .into())
        }
    };
    Ok(TokenView {
        id: row.try_get("id")?,
        kind,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        member_id: row.try_get("member_id")?,
        member_email: row.try_get("email")?,
        role: role_from("access_tokens", row)?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn insert_token(conn: &mut AnyConnection, token: &NewToken<'_>) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO access_tokens (kind, name, prefix, digest, member_id, role, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(token.kind.as_str())
    .bind(token.name)
    .bind(token.prefix)
    .bind(token.digest)
    .bind(token.member_id)
    .bind(token.role.map(Role::as_str))
    .bind(token.created_by)
    .bind(token.created_at)
    .bind(token.expires_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// The live or dead token with `prefix`, in the caller's transaction.
pub async fn token_by_prefix(conn: &mut AnyConnection, prefix: &str) -> StoreResult<Option<TokenView>> {
    let sql = format!("{SELECT} WHERE t.prefix = $1");
    let row = sqlx::query(&sql).bind(prefix).fetch_optional(&mut *conn).await?;
    row.as_ref().map(token_from_row).transpose()
}

/// Marks a token revoked at `now` (a revoked one stays as it was).
pub async fn revoke_token(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A stored answer to a creation sent with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    /// What the request was (method, path and body digest): the key may not be reused for another.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// Stores the answer for (`token_id`, `key`); false when one is there already.
pub async fn insert_idempotent_answer(
    conn: &mut AnyConnection,
    token_id: i64,
    key: &str,
    answer: &StoredAnswer,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO idempotent_requests (token_id, key, fingerprint, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id, key) DO NOTHING",
    )
    .bind(token_id)
    .bind(key)
    .bind(answer.fingerprint.as_str())
    .bind(i64::from(answer.status))
    .bind(answer.body.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the token's stored answers older than `before`.
pub async fn prune_idempotent_answers(
    conn: &mut AnyConnection,
    token_id: i64,
    before: i64,
) -> StoreResult<u64> {
    Ok(
        sqlx::query("DELETE FROM idempotent_requests WHERE token_id = $1 AND created_at < $2")
            .bind(token_id)
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// The answer stored for (`token_id`, `key`), in the caller's transaction.
pub async fn idempotent_answer_in(
    conn: &mut AnyConnection,
    token_id: i64,
    key: &str,
) -> StoreResult<Option<StoredAnswer>> {
    let row = sqlx::query(
        "SELECT fingerprint, status, body FROM idempotent_requests WHERE token_id = $1 AND key = $2",
    )
    .bind(token_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i64 = row.try_get(1)?;
    Ok(Some(StoredAnswer {
        fingerprint: row.try_get(0)?,
        status: u16::try_from(status).unwrap_or(500),
        body: row.try_get(2)?,
    }))
}

impl Store {
    /// The token whose digest is `digest`, live or not.
    pub async fn token_by_digest(&self, digest: &str) -> StoreResult<Option<TokenView>> {
        let sql = format!("{SELECT} WHERE t.digest = $1");
        let row = sqlx::query(&sql).bind(digest).fetch_optional(self.pool()).await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Every token (`member_id` `None`) or a member's own, newest first.
    pub async fn tokens(&self, member_id: Option<i64>) -> StoreResult<Vec<TokenView>> {
        let sql =
            format!("{SELECT} WHERE ($1 IS NULL OR t.member_id = $1) ORDER BY t.created_at DESC, t.id DESC");
        let rows = sqlx::query(&sql).bind(member_id).fetch_all(self.pool()).await?;
        rows.iter().map(token_from_row).collect()
    }
}
