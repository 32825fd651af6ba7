//! Members as the change pipeline writes them: created, invited, accepted, given a role, removed,
//! and their passwords. Getting in from outside (setup, sign-in) is `sign_in.rs`.

use serde_json::json;

use super::actor::ActorKind;
use super::error::{ServiceError, ServiceResult};
use super::secrets::{hash_password, random_token, verify_against_dummy, verify_password};
use super::store::members::{
    self as sql, invitation_by_token_hash_in, member_credentials_in, Invitation, MemberLookup,
};
use super::write::{Record, Write};
use crate::model::member::{check_new_password, Email, MemberView, Role};
use crate::model::secret::digest;

/// How long an invitation link stays valid.
pub const INVITATION_DAYS: i64 = 7;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn parse_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "enter a name"));
    }
    if name.chars().count() > 100 {
        return Err(ServiceError::invalid("name", "use at most 100 characters"));
    }
    Ok(name.to_string())
}

fn parse_email(email: &str) -> ServiceResult<Email> {
    Email::parse(email).map_err(|m| ServiceError::invalid("email", m))
}

/// Checks and hashes a new password (argon2 off the async threads); `field` names the input.
async fn new_password_hash(password: &str, field: &str) -> ServiceResult<String> {
    check_new_password(password).map_err(|m| ServiceError::invalid(field, m))?;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ServiceError::Internal)?
        .map_err(|_| ServiceError::Internal)
}

/// Verifies a password against a stored hash (argon2 off the async threads).
pub(super) async fn password_matches(password: &str, hash: Option<String>) -> bool {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&password, &hash),
        None => {
            verify_against_dummy(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn member_json(member: &MemberView) -> serde_json::Value {
    json!({ "email": member.email, "name": member.name, "role": member.role })
}

/// Creates a member outright (first admin, command line).
pub async fn add(
    w: &mut Write<'_>,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> ServiceResult<MemberView> {
    let email = parse_email(email)?;
    let name = parse_name(name)?;
    let hash = new_password_hash(password, "password").await?;
    let now = w.now;
    let id = sql::insert_member(w.conn(), email.as_str(), &name, role, &hash, now).await?;
    let member = MemberView {
        id,
        email: email.to_string(),
        name,
        role,
    };
    let record = Record::of("member.created", "member", email.as_str()).after(member_json(&member));
    w.record(record).await?;
    Ok(member)
}

/// Creates an invitation; returns the one-time token for the link (only its digest is stored).
pub async fn invite(w: &mut Write<'_>, email: &str, role: Role) -> ServiceResult<(Invitation, String)> {
    let email = parse_email(email)?;
    if member_credentials_in(w.conn(), MemberLookup::Email(email.as_str()))
        .await?
        .is_some()
    {
        return Err(ServiceError::invalid(
            "email",
            format!("{email} is already a member"),
        ));
    }
    let token = random_token(32);
    let (actor, now) = (w.actor.member_id(), w.now);
    let expires_at = now + INVITATION_DAYS * DAY_MS;
    let id = sql::insert_invitation(
        w.conn(),
        &digest(&token),
        email.as_str(),
        role,
        actor,
        now,
        expires_at,
    )
    .await?;
    let record = Record::of("invitation.created", "invitation", email.as_str())
        .after(json!({ "email": email, "role": role, "expires_at": expires_at }));
    w.record(record).await?;
    let invitation = Invitation {
        id,
        email: email.to_string(),
        role,
        created_at: now,
        expires_at,
        accepted_at: None,
        revoked_at: None,
    };
    Ok((invitation, token))
}

pub(super) fn invalid_invitation() -> ServiceError {
    ServiceError::Refused(
        "this invitation link is not valid: it was used, revoked or has expired; ask an admin for a new one"
            .into(),
    )
}

pub(super) fn is_open(invitation: &Invitation, now: i64) -> bool {
    invitation.accepted_at.is_none() && invitation.revoked_at.is_none() && invitation.expires_at > now
}

/// Accepts an invitation: creates its member, signed in as whoever holds the link.
pub async fn accept_invitation(
    w: &mut Write<'_>,
    token: &str,
    name: &str,
    password: &str,
) -> ServiceResult<MemberView> {
    let invitation = invitation_by_token_hash_in(w.conn(), &digest(token))
        .await?
        .filter(|i| is_open(i, w.now))
        .ok_or_else(invalid_invitation)?;
    let name = parse_name(name)?;
    let hash = new_password_hash(password, "password").await?;
    let now = w.now;
    if !sql::accept_invitation(w.conn(), invitation.id, now).await? {
        return Err(ServiceError::Refused(
            "this invitation was used a moment ago".into(),
        ));
    }
    let id = sql::insert_member(w.conn(), &invitation.email, &name, invitation.role, &hash, now).await?;
    let member = MemberView {
        id,
        email: invitation.email.clone(),
        name,
        role: invitation.role,
    };
    let record = Record::of("invitation.accepted", "member", &member.email).after(member_json(&member));
    w.record(record).await?;
    Ok(member)
}

pub async fn revoke_invitation(w: &mut Write<'_>, id: i64) -> ServiceResult<()> {
    let now = w.now;
    let revoked = sql::revoke_invitation(w.conn(), id, now)
        .await?
        .ok_or_else(|| ServiceError::NotFound("open invitation".into()))?;
    let record = Record::of("invitation.revoked", "invitation", &revoked.email)
        .before(json!({ "email": revoked.email, "role": revoked.role }));
    w.record(record).await
}

/// Changes a member's role; the last admin cannot be demoted.
pub async fn change_role(w: &mut Write<'_>, member_id: i64, role: Role) -> ServiceResult<MemberView> {
    let before = sql::member_for_update(w.conn(), member_id).await?;
    if before.role == Role::Admin && role != Role::Admin && sql::admin_count(w.conn()).await? <= 1 {
        return Err(ServiceError::invalid(
            "role",
            "the last admin cannot be demoted; make someone else admin first",
        ));
    }
    let now = w.now;
    sql::update_member_role(w.conn(), member_id, role, now).await?;
    if role < before.role {
        // Sessions opened with the higher role end; the member signs in again.
        sql::end_sessions(w.conn(), member_id).await?;
    }
    let after = MemberView {
        role,
        ..before.clone()
    };
    let record = Record::of("member.role_changed", "member", &before.email)
        .before(member_json(&before))
        .after(member_json(&after));
    w.record(record).await?;
    Ok(after)
}

/// Removes a member; their sessions stop working on their next request. The last admin stays.
pub async fn remove(w: &mut Write<'_>, member_id: i64) -> ServiceResult<()> {
    let before = sql::member_for_update(w.conn(), member_id).await?;
    if before.role == Role::Admin && sql::admin_count(w.conn()).await? <= 1 {
        return Err(ServiceError::Refused("the last admin cannot be removed".into()));
    }
    sql::delete_member(w.conn(), member_id).await?;
    let record = Record::of("member.removed", "member", &before.email).before(member_json(&before));
    w.record(record).await
}

/// The acting member's own password, after checking the current one.
pub async fn change_password(w: &mut Write<'_>, current: &str, new: &str) -> ServiceResult<()> {
    let ActorKind::Member { id, .. } = w.actor.kind else {
        return Err(ServiceError::Refused(
            "only a member has a password to change".into(),
        ));
    };
    let stored = member_credentials_in(w.conn(), MemberLookup::Id(id))
        .await?
        .ok_or_else(|| ServiceError::NotFound("member".into()))?;
    if !password_matches(current, Some(stored.password_hash)).await {
        return Err(ServiceError::invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    let hash = new_password_hash(new, "new_password").await?;
    let now = w.now;
    sql::update_password_hash(w.conn(), id, &hash, now).await?;
    // Every other session of the member ends; the caller renews its own.
    sql::end_sessions(w.conn(), id).await?;
    w.record(Record::of(
        "member.password_changed",
        "member",
        &stored.member.email,
    ))
    .await
}
