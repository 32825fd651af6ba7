//! Members: first-run setup, sign-in, invitations, roles, passwords.

use std::sync::Mutex;

use serde_json::json;

use super::{Actor, ServiceError, ServiceResult};
use crate::auth::password::{hash_password, verify_against_dummy, verify_password};
use crate::auth::throttle::Throttle;
use crate::auth::tokens::{constant_time_eq, random_token, sha256_hex};
use crate::model::member::{check_new_password, Email, MemberView, Role};
use crate::store::audit::{insert_audit, NewAuditEntry};
use crate::store::members as sql;
use crate::store::{now_ms, Invitation, Store};

/// How long an invitation link stays valid.
pub const INVITATION_DAYS: i64 = 7;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The one message for an unknown e-mail address and a wrong password alike.
pub const BAD_CREDENTIALS: &str = "the e-mail address or the password is not right";

/// The first-run token: set while no member exists, consumed by the first admin's creation.
#[derive(Debug, Default)]
pub struct SetupToken(Mutex<Option<String>>);

impl SetupToken {
    /// Issues a new token and returns it (the caller prints the link once).
    pub fn issue(&self) -> String {
        let token = random_token(32);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sha256_hex(&token));
        token
    }

    pub fn is_open(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn matches(&self, token: &str) -> bool {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_deref()
            .is_some_and(|digest| constant_time_eq(digest, &sha256_hex(token)))
    }

    fn close(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

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

fn new_password_hash(password: &str) -> ServiceResult<String> {
    check_new_password(password).map_err(|m| ServiceError::invalid("password", m))?;
    hash_password(password).map_err(|_| ServiceError::Internal)
}

fn member_json(member: &MemberView) -> serde_json::Value {
    json!({ "email": member.email, "name": member.name, "role": member.role })
}

/// Creates a member outright (first admin, command line). Audited.
pub async fn add_member(
    store: &Store,
    actor: &Actor,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> ServiceResult<MemberView> {
    let email = parse_email(email)?;
    let name = parse_name(name)?;
    let hash = new_password_hash(password)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let id = sql::insert_member(&mut tx, email.as_str(), &name, role, &hash, now).await?;
    let member = MemberView {
        id,
        email: email.to_string(),
        name,
        role,
    };
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "member.created",
            subject_type: "member",
            subject_key: email.as_str(),
            after: Some(member_json(&member)),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}

/// Creates the first admin with the setup token; refused once any member exists.
pub async fn complete_setup(
    store: &Store,
    setup: &SetupToken,
    token: &str,
    email: &str,
    name: &str,
    password: &str,
) -> ServiceResult<MemberView> {
    if !setup.matches(token) || store.member_count().await? > 0 {
        return Err(ServiceError::Refused(
            "this setup link is not valid any more; ask an admin for an invitation".into(),
        ));
    }
    let member = add_member(
        store,
        &Actor::system("first-run setup"),
        email,
        name,
        Role::Admin,
        password,
    )
    .await?;
    setup.close();
    Ok(member)
}

/// Checks credentials. The same error for an unknown address and a wrong password, after the
/// same amount of hashing work; throttled per account and per client address.
pub async fn sign_in(
    store: &Store,
    throttle: &Throttle,
    email: &str,
    password: &str,
    client_address: &str,
) -> ServiceResult<MemberView> {
    let account = email.trim().to_lowercase();
    if let Some(wait) = throttle.check(&account, client_address) {
        return Err(ServiceError::TooManyAttempts(format!(
            "too many failed sign-ins; try again in {} minutes",
            wait.as_secs().div_ceil(60)
        )));
    }
    let credentials = store.member_credentials(&account).await?;
    let verified = match &credentials {
        Some(found) => verify_password(password, &found.password_hash),
        None => {
            verify_against_dummy(password);
            false
        }
    };
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let result = match credentials {
        Some(found) if verified => {
            throttle.record_success(&account);
            insert_audit(
                &mut tx,
                NewAuditEntry {
                    actor_id: Some(found.member.id),
                    actor_label: &found.member.email,
                    action: "member.signed_in",
                    subject_type: "member",
                    subject_key: &found.member.email,
                    ..Default::default()
                },
                now,
            )
            .await?;
            Ok(found.member)
        }
        _ => {
            throttle.record_failure(&account, client_address);
            insert_audit(
                &mut tx,
                NewAuditEntry {
                    actor_label: "anonymous",
                    action: "member.sign_in_failed",
                    subject_type: "member",
                    subject_key: &account,
                    after: Some(json!({ "client": client_address })),
                    ..Default::default()
                },
                now,
            )
            .await?;
            Err(ServiceError::Refused(BAD_CREDENTIALS.into()))
        }
    };
    tx.commit().await?;
    result
}

pub async fn change_password(
    store: &Store,
    member: &MemberView,
    current: &str,
    new: &str,
) -> ServiceResult<()> {
    let hash = store
        .password_hash(member.id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("member".into()))?;
    if !verify_password(current, &hash) {
        return Err(ServiceError::invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    let new_hash = new_password_hash(new).map_err(|e| match e {
        ServiceError::Invalid { message, .. } => ServiceError::invalid("new_password", message),
        other => other,
    })?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    sql::update_password_hash(&mut tx, member.id, &new_hash, now).await?;
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: Some(member.id),
            actor_label: &member.email,
            action: "member.password_changed",
            subject_type: "member",
            subject_key: &member.email,
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates an invitation; returns the one-time token for the link (only its digest is stored).
pub async fn invite(
    store: &Store,
    actor: &Actor,
    email: &str,
    role: Role,
) -> ServiceResult<(Invitation, String)> {
    let email = parse_email(email)?;
    if store.member_credentials(email.as_str()).await?.is_some() {
        return Err(ServiceError::invalid(
            "email",
            format!("{email} is already a member"),
        ));
    }
    let token = random_token(32);
    let now = now_ms();
    let expires_at = now + INVITATION_DAYS * DAY_MS;
    let mut tx = store.pool().begin().await?;
    let id = sql::insert_invitation(
        &mut tx,
        &sha256_hex(&token),
        email.as_str(),
        role,
        actor.member_id,
        now,
        expires_at,
    )
    .await?;
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "invitation.created",
            subject_type: "invitation",
            subject_key: email.as_str(),
            after: Some(json!({ "email": email, "role": role, "expires_at": expires_at })),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
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

/// The invitation a token opens, if it can still be accepted.
pub async fn open_invitation(store: &Store, token: &str) -> ServiceResult<Invitation> {
    let invitation = store.invitation_by_token_hash(&sha256_hex(token)).await?;
    match invitation {
        Some(i) if i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now_ms() => Ok(i),
        _ => Err(ServiceError::Refused(
            "this invitation link is not valid: it was used, revoked or has expired; ask an admin for a new one"
                .into(),
        )),
    }
}

pub async fn accept_invitation(
    store: &Store,
    token: &str,
    name: &str,
    password: &str,
) -> ServiceResult<MemberView> {
    let invitation = open_invitation(store, token).await?;
    let name = parse_name(name)?;
    let hash = new_password_hash(password)?;
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    if !sql::accept_invitation(&mut tx, invitation.id, now).await? {
        return Err(ServiceError::Refused(
            "this invitation was used a moment ago".into(),
        ));
    }
    let id = sql::insert_member(&mut tx, &invitation.email, &name, invitation.role, &hash, now).await?;
    let member = MemberView {
        id,
        email: invitation.email.clone(),
        name,
        role: invitation.role,
    };
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: Some(id),
            actor_label: &member.email,
            action: "invitation.accepted",
            subject_type: "member",
            subject_key: &member.email,
            after: Some(member_json(&member)),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}

pub async fn revoke_invitation(store: &Store, actor: &Actor, id: i64) -> ServiceResult<()> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let revoked = sql::revoke_invitation(&mut tx, id, now)
        .await?
        .ok_or_else(|| ServiceError::NotFound("open invitation".into()))?;
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "invitation.revoked",
            subject_type: "invitation",
            subject_key: &revoked.email,
            before: Some(json!({ "email": revoked.email, "role": revoked.role })),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a member's role; the last admin cannot be demoted.
pub async fn change_role(
    store: &Store,
    actor: &Actor,
    member_id: i64,
    role: Role,
) -> ServiceResult<MemberView> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let before = sql::member_for_update(&mut tx, member_id).await?;
    if before.role == Role::Admin && role != Role::Admin && sql::admin_count(&mut tx).await? <= 1 {
        return Err(ServiceError::invalid(
            "role",
            "the last admin cannot be demoted; make someone else admin first",
        ));
    }
    sql::update_member_role(&mut tx, member_id, role, now).await?;
    let after = MemberView {
        role,
        ..before.clone()
    };
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "member.role_changed",
            subject_type: "member",
            subject_key: &before.email,
            before: Some(member_json(&before)),
            after: Some(member_json(&after)),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes a member; their sessions stop working on their next request. The last admin stays.
pub async fn remove_member(store: &Store, actor: &Actor, member_id: i64) -> ServiceResult<()> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let before = sql::member_for_update(&mut tx, member_id).await?;
    if before.role == Role::Admin && sql::admin_count(&mut tx).await? <= 1 {
        return Err(ServiceError::Refused("the last admin cannot be removed".into()));
    }
    sql::delete_member(&mut tx, member_id).await?;
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "member.removed",
            subject_type: "member",
            subject_key: &before.email,
            before: Some(member_json(&before)),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
