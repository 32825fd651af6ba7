//! Members and invitations.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{CorruptRow, Store, StoreError, StoreResult};
use crate::model::member::{MemberView, Role};

/// A member with the password hash, for sign-in only.
#[derive(Clone, Debug)]
pub struct MemberCredentials {
    pub member: MemberView,
    pub password_hash: String,
}

/// An open invitation as admins see it (the token itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Invitation {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub(super) fn role_from(table: &'static str, row: &AnyRow) -> StoreResult<Role> {
    let text: String = row.try_get("role")?;
    text.parse().map_err(|reason: String| {
        StoreError::Corrupt(CorruptRow {
            table,
            id: row.try_get::<i64, _>("id").unwrap_or_default().to_string(),
            reason,
        })
    })
}

fn member_from_row(row: &AnyRow) -> StoreResult<MemberView> {
    Ok(MemberView {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role_from("members", row)?,
    })
}

fn invitation_from_row(row: &AnyRow) -> StoreResult<Invitation> {
    Ok(Invitation {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: role_from("invitations", row)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        accepted_at: row.try_get("accepted_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const INVITATION_COLUMNS: &str = "id, email, role, created_at, expires_at, accepted_at, revoked_at";

impl Store {
    pub async fn member_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM members")
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn members(&self) -> StoreResult<Vec<MemberView>> {
        let rows = sqlx::query("SELECT id, email, name, role FROM members ORDER BY name, email")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// A member and the session epoch their sessions must carry.
    pub async fn member_session(&self, id: i64) -> StoreResult<Option<(MemberView, i64)>> {
        let row = sqlx::query("SELECT id, email, name, role, session_epoch FROM members WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|row| Ok((member_from_row(row)?, row.try_get("session_epoch")?)))
            .transpose()
    }

    pub async fn member_by_id(&self, id: i64) -> StoreResult<Option<MemberView>> {
        let row = sqlx::query("SELECT id, email, name, role FROM members WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    pub async fn member_credentials(&self, email: &str) -> StoreResult<Option<MemberCredentials>> {
        let mut conn = self.pool().acquire().await?;
        member_credentials_in(&mut conn, MemberLookup::Email(email)).await
    }

    /// Invitations that can still be accepted at `now`, newest first.
    pub async fn open_invitations(&self, now: i64) -> StoreResult<Vec<Invitation>> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(invitation_from_row).collect()
    }

    pub async fn invitation_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
        let mut conn = self.pool().acquire().await?;
        invitation_by_token_hash_in(&mut conn, token_hash).await
    }
}

/// Which member [`member_credentials_in`] looks up.
pub enum MemberLookup<'a> {
    Email(&'a str),
    Id(i64),
}

/// A member with the password hash, on the caller's connection or transaction.
pub async fn member_credentials_in(
    conn: &mut AnyConnection,
    lookup: MemberLookup<'_>,
) -> StoreResult<Option<MemberCredentials>> {
    let sql = "SELECT id, email, name, role, password_hash FROM members WHERE ";
    let row = match lookup {
        MemberLookup::Email(email) => {
            sqlx::query(&format!("{sql}email = $1"))
                .bind(email)
                .fetch_optional(conn)
                .await?
        }
        MemberLookup::Id(id) => {
            sqlx::query(&format!("{sql}id = $1"))
                .bind(id)
                .fetch_optional(conn)
                .await?
        }
    };
    row.map(|row| {
        Ok(MemberCredentials {
            member: member_from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The invitation whose token has this digest, on the caller's connection or transaction.
pub async fn invitation_by_token_hash_in(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> StoreResult<Option<Invitation>> {
    let row = sqlx::query(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(invitation_from_row).transpose()
}

/// Inserts a member; a taken e-mail address is a `Conflict`.
pub async fn insert_member(
    conn: &mut AnyConnection,
    email: &str,
    name: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> StoreResult<i64> {
    let result = sqlx::query_scalar(
        "INSERT INTO members (email, name, role, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(email)
    .bind(name)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    result.ok_or_else(|| {
        StoreError::Conflict(format!("a member with the e-mail address {email} already exists"))
    })
}

pub async fn member_for_update(conn: &mut AnyConnection, id: i64) -> StoreResult<MemberView> {
    let row = sqlx::query("SELECT id, email, name, role FROM members WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound("member".into()))?;
    member_from_row(&row)
}

pub async fn admin_count(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE role = 'admin'")
            .fetch_one(conn)
            .await?,
    )
}

pub async fn update_member_role(conn: &mut AnyConnection, id: i64, role: Role, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE members SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a member that was started before now.
pub async fn end_sessions(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("UPDATE members SET session_epoch = session_epoch + 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_password_hash(
    conn: &mut AnyConnection,
    id: i64,
    hash: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE members SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_member(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM members WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_invitation(
    conn: &mut AnyConnection,
    token_hash: &str,
    email: &str,
    role: Role,
    created_by: Option<i64>,
    now: i64,
    expires_at: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO invitations (token_hash, email, role, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(token_hash)
    .bind(email)
    .bind(role.as_str())
    .bind(created_by)
    .bind(now)
    .bind(expires_at)
    .fetch_one(conn)
    .await?)
}

/// Marks an open invitation accepted; false when it was already used, revoked or expired, so two
/// concurrent acceptances cannot both succeed.
pub async fn accept_invitation(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE invitations SET accepted_at = $1 \
         WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn revoke_invitation(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> StoreResult<Option<Invitation>> {
    let result = sqlx::query(
        "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(conn)
    .await?;
    invitation_from_row(&row).map(Some)
}
