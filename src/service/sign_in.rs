//! Getting in: the first-run setup link, the first admin from the deployment's settings,
//! sign-in (throttled, recorded in the audit log) and opening an invitation link. These sit above
//! the change pipeline: creating a member goes through it like every change.

use serde_json::json;

use super::actor::Actor;
use super::change::Change;
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::members::{invalid_invitation, is_open, password_matches};
use super::secrets::random_token;
use super::store::members::Invitation;
use super::write::{Record, Write};
use crate::model::member::{Email, MemberView, Role};
use crate::model::secret::digest;

/// A refusal to hear an attempt before its wait is over.
fn too_many(what: &str, wait_ms: i64) -> ServiceError {
    let seconds = (wait_ms + 999) / 1000;
    let wait = match seconds {
        0..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 59) / 60),
    };
    ServiceError::TooManyAttempts(format!("too many {what}; try again in {wait}"))
}

/// The one message for an unknown e-mail address and a wrong password alike.
pub const BAD_CREDENTIALS: &str = "the e-mail address or the password is not right";

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
    pub async fn complete_setup(
        &self,
        token: &str,
        email: &str,
        name: &str,
        password: &str,
    ) -> ServiceResult<MemberView> {
        let refused = || {
            ServiceError::Refused(
                "this setup link is not valid any more; ask an admin for an invitation".into(),
            )
        };
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
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client_address: &str,
    ) -> ServiceResult<MemberView> {
        // Only a well-formed address becomes a throttle key or an audit subject: anything else
        // would let a caller grow the throttle's memory or write arbitrary text into the log.
        let account = Email::parse(email)
            .map_err(|message| ServiceError::invalid("email", message))?
            .as_str()
            .to_string();
        let (throttle, now) = (&self.0.throttle, self.clock().now_ms());
        if let Some(wait) = throttle.check(&account, client_address, now) {
            return Err(too_many("failed sign-ins", wait));
        }
        let credentials = self.store().member_credentials(&account).await?;
        let verified =
            password_matches(password, credentials.as_ref().map(|c| c.password_hash.clone())).await;
        let (actor, record, result) = match credentials {
            Some(found) if verified => {
                throttle.record_success(&account);
                let record = Record::of("member.signed_in", "member", &account);
                (Actor::member(&found.member), record, Ok(found.member))
            }
            _ => {
                throttle.record_failure(&account, client_address, now);
                let record = Record::of("member.sign_in_failed", "member", &account)
                    .after(json!({ "client": client_address }));
                (
                    Actor::anonymous(),
                    record,
                    Err(ServiceError::Refused(BAD_CREDENTIALS.into())),
                )
            }
        };
        let tx = self.store().begin_write(&[]).await?;
        let mut w = Write::new(tx, &actor, self.clock().now_ms()).await?;
        w.record(record).await?;
        w.commit().await?;
        result
    }

    /// The member a session belongs to, `None` when they were removed or the session was
    /// started before their sessions were ended (`epoch`: what the session carries).
    pub async fn session_member(&self, id: i64, epoch: i64) -> ServiceResult<Option<MemberView>> {
        let found = self.store().member_session(id).await?;
        Ok(found.and_then(|(member, current)| (current == epoch).then_some(member)))
    }

    /// The epoch a session of the member starts with.
    pub async fn session_epoch(&self, id: i64) -> ServiceResult<i64> {
        let found = self.store().member_session(id).await?;
        found
            .map(|(_, epoch)| epoch)
            .ok_or_else(|| ServiceError::NotFound("member".into()))
    }

    /// The acting member's own password, after checking the current one; throttled like
    /// sign-in, per account and per client address.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
        client: &str,
    ) -> ServiceResult<()> {
        let account = actor.label.clone();
        let (throttle, now) = (&self.0.throttle, self.clock().now_ms());
        if let Some(wait) = throttle.check(&account, client, now) {
            return Err(too_many("wrong passwords", wait));
        }
        let change = Change::ChangePassword {
            current: current.into(),
            new: new.into(),
        };
        let result = self.apply(actor, change).await;
        if matches!(&result, Err(ServiceError::Invalid { field, .. }) if field == "current_password") {
            throttle.record_failure(&account, client, now);
        }
        result.map(|_| ())
    }
}
