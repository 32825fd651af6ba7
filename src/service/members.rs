//! Members: first-run setup, sign-in, invitations, roles, passwords.

use std::sync::Mutex;

use serde_json::json;

use super::actor::{Actor, ActorKind};
use super::change::Change;
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::secrets::{hash_password, random_token, verify_against_dummy, verify_password};
use super::store::members::{
    self as sql, invitation_by_token_hash_in, member_credentials_in, Invitation, MemberLookup,
};
use super::write::{Record, Write};
use crate::model::member::{check_new_password, Email, MemberView, Role};
use crate::model::secret::{constant_time_eq, digest};

/// How long an invitation link stays valid.
pub const INVITATION_DAYS: i64 = 7;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The one message for an unknown e-mail address and a wrong password alike.
pub const BAD_CREDENTIALS: &str = "the e-mail address or the password is not right";

/// The first-run token: set while no member exists, consumed by the first admin's creation.
#[derive(Debug, Default)]
pub struct SetupToken(Mutex<Option<String>>);

impl SetupToken {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the token if `token` is it: of two requests with the right token, one gets it.
    fn claim(&self, token: &str) -> Option<String> {
        let mut slot = self.slot();
        let digest_of_token = digest(token);
        if slot.as_deref().is_some_and(|d| constant_time_eq(d, &digest_of_token)) {
            slot.take()
        } else {
            None
        }
    }

    /// Puts back a claimed token whose setup failed.
    fn restore(&self, claimed: String) {
        *self.slot() = Some(claimed);
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
async fn password_matches(password: &str, hash: Option<String>) -> bool {
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
pub async fn add(w: &mut Write<'_>, email: &str, name: &str, role: Role, password: &str) -> ServiceResult<MemberView> {
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
        return Err(ServiceError::invalid("email", format!("{email} is already a member")));
    }
    let token = random_token(32);
    let (actor, now) = (w.actor.member_id(), w.now);
    let expires_at = now + INVITATION_DAYS * DAY_MS;
    let id = sql::insert_invitation(w.conn(), &digest(&token), email.as_str(), role, actor, now, expires_at).await?;
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

fn invalid_invitation() -> ServiceError {
    ServiceError::Refused(
        "this invitation link is not valid: it was used, revoked or has expired; ask an admin for a new one".into(),
    )
}

fn is_open(invitation: &Invitation, now: i64) -> bool {
    invitation.accepted_at.is_none() && invitation.revoked_at.is_none() && invitation.expires_at > now
}

/// Accepts an invitation: creates its member, signed in as whoever holds the link.
pub async fn accept_invitation(w: &mut Write<'_>, token: &str, name: &str, password: &str) -> ServiceResult<MemberView> {
    let invitation = invitation_by_token_hash_in(w.conn(), &digest(token))
        .await?
        .filter(|i| is_open(i, w.now))
        .ok_or_else(invalid_invitation)?;
    let name = parse_name(name)?;
    let hash = new_password_hash(password, "password").await?;
    let now = w.now;
    if !sql::accept_invitation(w.conn(), invitation.id, now).await? {
        return Err(ServiceError::Refused("this invitation was used a moment ago".into()));
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
        return Err(ServiceError::Refused("only a member has a password to change".into()));
    };
    let stored = member_credentials_in(w.conn(), MemberLookup::Id(id))
        .await?
        .ok_or_else(|| ServiceError::NotFound("member".into()))?;
    if !password_matches(current, Some(stored.password_hash)).await {
        return Err(ServiceError::invalid("current_password", "this is not your current password"));
    }
    let hash = new_password_hash(new, "new_password").await?;
    let now = w.now;
    sql::update_password_hash(w.conn(), id, &hash, now).await?;
    w.record(Record::of("member.password_changed", "member", &stored.member.email))
        .await
}

impl Service {
    /// Issues the first-run token when no member exists yet; returns it (the caller prints the
    /// link once).
    pub async fn issue_setup_token(&self) -> ServiceResult<Option<String>> {
        if self.store().member_count().await? > 0 {
            return Ok(None);
        }
        let token = random_token(32);
        self.0.setup.restore(digest(&token));
        Ok(Some(token))
    }

    /// Creates the first admin from the deployment's settings while no member exists; `None`
    /// when there are members already.
    pub async fn bootstrap_admin(&self, email: &str, password: &str) -> ServiceResult<Option<MemberView>> {
        if self.store().member_count().await? > 0 {
            return Ok(None);
        }
        let change = Change::AddMember {
            email: email.into(),
            name: "Admin".into(),
            role: Role::Admin,
            password: password.into(),
        };
        let actor = Actor::system("GATEHOUSE_ADMIN_EMAIL");
        self.apply(&actor, change).await?.into_member().map(Some)
    }

    /// True while the first-run setup link works.
    pub fn setup_is_open(&self) -> bool {
        self.0.setup.slot().is_some()
    }

    /// Creates the first admin with the setup token. Of two requests with the token, only the one
    /// that claims it first goes on; a failed attempt gives the token back.
    pub async fn complete_setup(&self, token: &str, email: &str, name: &str, password: &str) -> ServiceResult<MemberView> {
        let refused = || ServiceError::Refused("this setup link is not valid any more; ask an admin for an invitation".into());
        let claimed = self.0.setup.claim(token).ok_or_else(refused)?;
        let change = Change::AddMember {
            email: email.into(),
            name: name.into(),
            role: Role::Admin,
            password: password.into(),
        };
        let created = match self.store().member_count().await {
            Ok(0) => self.apply(&Actor::system("first-run setup"), change).await,
            Ok(_) => Err(refused()),
            Err(error) => Err(error.into()),
        };
        match created.and_then(|outcome| outcome.into_member()) {
            Ok(member) => Ok(member),
            Err(error) => {
                if !matches!(&error, ServiceError::Refused(_)) {
                    self.0.setup.restore(claimed);
                }
                Err(error)
            }
        }
    }

    /// The invitation a token opens, if it can still be accepted.
    pub async fn open_invitation(&self, token: &str) -> ServiceResult<Invitation> {
        self.store()
            .invitation_by_token_hash(&digest(token))
            .await?
            .filter(|i| is_open(i, self.clock().now_ms()))
            .ok_or_else(invalid_invitation)
    }

    /// Checks credentials. The same error for an unknown address and a wrong password, after the
    /// same amount of hashing work; throttled per account and per client address. The attempt
    /// is recorded in the audit log either way.
    pub async fn sign_in(&self, email: &str, password: &str, client_address: &str) -> ServiceResult<MemberView> {
        let account = email.trim().to_lowercase();
        let throttle = &self.0.throttle;
        if let Some(wait) = throttle.check(&account, client_address) {
            return Err(ServiceError::TooManyAttempts(format!(
                "too many failed sign-ins; try again in {} minutes",
                wait.as_secs().div_ceil(60)
            )));
        }
        let credentials = self.store().member_credentials(&account).await?;
        let verified = password_matches(password, credentials.as_ref().map(|c| c.password_hash.clone())).await;
        let (actor, record, result) = match credentials {
            Some(found) if verified => {
                throttle.record_success(&account);
                let record = Record::of("member.signed_in", "member", &account);
                (Actor::member(&found.member), record, Ok(found.member))
            }
            _ => {
                throttle.record_failure(&account, client_address);
                let record = Record::of("member.sign_in_failed", "member", &account)
                    .after(json!({ "client": client_address }));
                (Actor::anonymous(), record, Err(ServiceError::Refused(BAD_CREDENTIALS.into())))
            }
        };
        let tx = self.store().begin_write(&[]).await?;
        let mut w = Write::new(tx, &actor, self.clock().now_ms()).await?;
        w.record(record).await?;
        w.commit().await?;
        result
    }

    /// The member a session belongs to, `None` when they were removed.
    pub async fn member(&self, id: i64) -> ServiceResult<Option<MemberView>> {
        Ok(self.store().member_by_id(id).await?)
    }
}
