//! Access tokens: created (shown once, stored as a digest), listed, revoked, and turned into the
//! [`Actor`] a request with `Authorization: Bearer <token>` acts as. Every request looks its token
//! up in the database, so a revocation or an expiry holds at once on every replica, and a
//! personal token acts with its member's role as it is now.

use serde_json::json;

use super::access::{authorize, Permission, Refusal};
use super::actor::{Actor, ActorKind};
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::secrets::random_token;
use super::store::tokens::{
    idempotent_answer_in, insert_idempotent_answer, insert_token, prune_idempotent_answers, revoke_token,
    token_by_prefix, NewToken, StoredAnswer,
};
use super::write::{Record, Write};
use crate::model::member::Role;
use crate::model::secret::digest;
use crate::model::token::{TokenKind, TokenView};

/// Random characters of a token after its marker.
const RANDOM_CHARS: usize = 40;
/// Random characters of the prefix a list shows (after the marker).
const PREFIX_RANDOM: usize = 8;
/// Longest token name.
const MAX_NAME: usize = 80;
/// Longest lifetime a token may be given, in days.
pub const MAX_DAYS: i64 = 3650;
const DAY_MS: i64 = 86_400_000;

/// A token a caller asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTokenRequest {
    pub name: String,
    /// `None`: a personal token of the acting member; `Some`: a service token with this role.
    pub service_role: Option<Role>,
    /// Days until it expires; `None`: it never does.
    pub expires_in_days: Option<i64>,
}

/// A token just created: the token itself (shown once) and how it is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedToken {
    pub token: String,
    pub prefix: String,
    pub expires_at: Option<i64>,
}

/// The permission a creation needs: one's own personal token, or an admin's service token.
pub fn create_permission(request: &NewTokenRequest) -> Permission {
    match request.service_role {
        None => Permission::OwnAccount,
        Some(_) => Permission::Administer,
    }
}

pub async fn create(w: &mut Write<'_>, request: NewTokenRequest) -> ServiceResult<CreatedToken> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ServiceError::invalid(
            "name",
            format!("give the token a name of 1 to {MAX_NAME} characters"),
        ));
    }
    let expires_at = match request.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_DAYS).contains(&days) => Some(w.now + days * DAY_MS),
        Some(_) => {
            return Err(ServiceError::invalid(
                "expiresInDays",
                format!("a token expires in 1 to {MAX_DAYS} days, or never"),
            ))
        }
    };
    let (kind, member_id) = match request.service_role {
        Some(_) => (TokenKind::Service, None),
        None => match w.actor.member_id() {
            Some(id) => (TokenKind::Personal, Some(id)),
            None => {
                return Err(ServiceError::Refused(
                    "only a member has personal tokens; create a service token instead".into(),
                ))
            }
        },
    };
    let token = format!("{}{}", kind.marker(), random_token(RANDOM_CHARS));
    let prefix: String = token.chars().take(kind.marker().len() + PREFIX_RANDOM).collect();
    let created_by = w.actor.label.clone();
    let new = NewToken {
        kind,
        name,
        prefix: &prefix,
        digest: &digest(&token),
        member_id,
        role: request.service_role,
        created_by: &created_by,
        created_at: w.now,
        expires_at,
    };
    insert_token(w.conn(), &new).await?;
    let record = Record::of("token.created", "token", &prefix).after(json!({
        "kind": kind.as_str(),
        "name": name,
        "role": request.service_role.map(Role::as_str),
        "expiresAt": expires_at,
    }));
    w.record(record).await?;
    Ok(CreatedToken {
        token,
        prefix,
        expires_at,
    })
}

/// Revokes the token shown as `prefix` (the whole token is accepted too): its owner's or, for
/// any token, an admin's doing.
pub async fn revoke(w: &mut Write<'_>, prefix: &str) -> ServiceResult<()> {
    let prefix: String = prefix.trim().trim_end_matches('…').to_string();
    let marker_len = TokenKind::Personal.marker().len();
    let prefix: String = prefix.chars().take(marker_len + PREFIX_RANDOM).collect();
    let not_found = || ServiceError::NotFound(format!("token {prefix}…"));
    let Some(token) = token_by_prefix(w.conn(), &prefix).await? else {
        return Err(not_found());
    };
    let own = token.member_id.is_some() && token.member_id == w.actor.member_id();
    if !own && !w.actor.is_admin() {
        // Someone else's token is as good as absent to a member who may not manage it.
        return Err(not_found());
    }
    if token.revoked_at.is_some() {
        return Err(ServiceError::Refused(format!(
            "token {prefix}… is already revoked"
        )));
    }
    let now = w.now;
    revoke_token(w.conn(), token.id, now).await?;
    let record = Record::of("token.revoked", "token", &prefix).before(json!({
        "kind": token.kind.as_str(),
        "name": token.name,
    }));
    w.record(record).await?;
    Ok(())
}

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_MS: i64 = DAY_MS;

/// Remembers (`token_id`, `key`) for the request `fingerprint` about `subject`; returns the first
/// request's subject when the key was seen within a day (then nothing is to change), and refuses
/// a key reused for another request. The token's older keys are forgotten here.
pub async fn remember(
    w: &mut Write<'_>,
    token_id: i64,
    key: &str,
    fingerprint: &str,
    subject: &str,
) -> ServiceResult<Option<String>> {
    if key.is_empty() || key.len() > 255 || !key.is_ascii() {
        return Err(ServiceError::invalid(
            "Idempotency-Key",
            "an Idempotency-Key is 1 to 255 ASCII characters",
        ));
    }
    let now = w.now;
    prune_idempotent_answers(w.conn(), token_id, now - IDEMPOTENCY_MS).await?;
    let answer = StoredAnswer {
        fingerprint: fingerprint.to_string(),
        status: 201,
        body: subject.to_string(),
    };
    if insert_idempotent_answer(w.conn(), token_id, key, &answer, now).await? {
        return Ok(None);
    }
    match idempotent_answer_in(w.conn(), token_id, key).await? {
        Some(first) if first.fingerprint == fingerprint => Ok(Some(first.body)),
        _ => Err(ServiceError::invalid(
            "Idempotency-Key",
            "this Idempotency-Key was sent with another request; use a new key for a new request",
        )),
    }
}

/// Why a bearer token was refused, worded for the one who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("send an access token as `Authorization: Bearer <token>`")]
    Missing,
    #[error("this token is not known")]
    Unknown,
    #[error("this token was revoked")]
    Revoked,
    #[error("this token expired")]
    Expired,
}

impl Service {
    /// The actor a bearer token acts as, and the token's id.
    pub async fn authenticate_token(&self, token: &str) -> ServiceResult<Result<(Actor, i64), TokenRefusal>> {
        let token = token.trim();
        if !token.starts_with(TokenKind::Personal.marker()) && !token.starts_with(TokenKind::Service.marker())
        {
            return Ok(Err(TokenRefusal::Unknown));
        }
        let Some(found) = self.store().token_by_digest(&digest(token)).await? else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        if found.revoked_at.is_some() {
            return Ok(Err(TokenRefusal::Revoked));
        }
        if !found.is_live(self.clock().now_ms()) {
            return Ok(Err(TokenRefusal::Expired));
        }
        let actor = match (found.kind, found.member_id) {
            (TokenKind::Personal, Some(id)) => Actor {
                kind: ActorKind::Member { id, role: found.role },
                label: format!(
                    "{} (token {})",
                    found.member_email.as_deref().unwrap_or("member"),
                    found.name
                ),
            },
            _ => Actor {
                kind: ActorKind::Service {
                    token_id: found.id,
                    role: found.role,
                },
                label: format!("service token {}", found.name),
            },
        };
        Ok(Ok((actor, found.id)))
    }

    /// The tokens `actor` may see: every token for an admin, one's own personal tokens otherwise.
    pub async fn tokens(&self, actor: &Actor) -> ServiceResult<Vec<TokenView>> {
        authorize(actor, Permission::OwnAccount)?;
        if actor.is_admin() {
            return Ok(self.store().tokens(None).await?);
        }
        match actor.member_id() {
            Some(id) => Ok(self.store().tokens(Some(id)).await?),
            None => Err(Refusal::WrongKey.into()),
        }
    }
}
