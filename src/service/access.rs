//! The one authorization decision. Every change and every read of the service asks
//! [`authorize`]; the admin app's guard asks it too, before a server function runs, with the
//! permission its endpoint's name announces.

use serde::{Deserialize, Serialize};

use super::actor::{Actor, ActorKind};
use crate::model::member::Role;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Anyone: signing in, and the setup and invitation links that carry their own token.
    Public,
    /// Read the configuration and the audit log: any member.
    Read,
    /// Change one's own account (password, sign-out): any member.
    OwnAccount,
    /// Change flags, their access and remote config, segments and stage defaults: editors.
    Edit,
    /// Members, invitations, API keys, release stages and environments: admins.
    Administer,
    /// Report companies, users, events and flag checks of one environment: its API keys.
    Ingest { environment_id: i64 },
    /// Gatehouse's own bookkeeping (the scheduler marking a change it could not apply): Gatehouse
    /// itself and the operator only.
    Internal,
}

impl Permission {
    /// The least role a member needs, `None` for what members cannot do at all (ingest).
    pub fn least_role(self) -> Option<Role> {
        match self {
            Permission::Public | Permission::Read | Permission::OwnAccount => Some(Role::Viewer),
            Permission::Edit => Some(Role::Editor),
            Permission::Administer => Some(Role::Admin),
            Permission::Ingest { .. } | Permission::Internal => None,
        }
    }
}

/// Why a call was refused, worded for the person who made it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refusal {
    #[error("sign in to continue")]
    NotSignedIn,
    #[error("only {need}s can do this, and you are signed in as {have}; ask an admin if you need it")]
    Forbidden { have: Role, need: Role },
    #[error("this key cannot do this")]
    WrongKey,
}

/// May `actor` do what `permission` covers?
pub fn authorize(actor: &Actor, permission: Permission) -> Result<(), Refusal> {
    match (&actor.kind, permission) {
        (_, Permission::Public) => Ok(()),
        (ActorKind::Operator | ActorKind::System, _) => Ok(()),
        (
            ActorKind::ApiKey { environment_id },
            Permission::Ingest {
                environment_id: wanted,
            },
        ) if *environment_id == wanted => Ok(()),
        (ActorKind::ApiKey { .. }, _) => Err(Refusal::WrongKey),
        (ActorKind::Anonymous, _) => Err(Refusal::NotSignedIn),
        (ActorKind::Member { role, .. } | ActorKind::Service { role, .. }, permission) => {
            match permission.least_role() {
                Some(need) if *role >= need => Ok(()),
                Some(need) => Err(Refusal::Forbidden { have: *role, need }),
                None => Err(Refusal::WrongKey),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: Role) -> Actor {
        Actor {
            kind: ActorKind::Member { id: 1, role },
            label: "a@b.co".into(),
        }
    }

    #[test]
    fn members_need_the_least_role_of_the_permission() {
        assert!(authorize(&member(Role::Viewer), Permission::Read).is_ok());
        assert_eq!(
            authorize(&member(Role::Viewer), Permission::Edit),
            Err(Refusal::Forbidden {
                have: Role::Viewer,
                need: Role::Editor
            })
        );
        assert!(authorize(&member(Role::Editor), Permission::Edit).is_ok());
        assert!(authorize(&member(Role::Editor), Permission::Administer).is_err());
        assert!(authorize(&member(Role::Admin), Permission::Administer).is_ok());
        assert!(authorize(&member(Role::Admin), Permission::Ingest { environment_id: 1 }).is_err());
    }

    #[test]
    fn keys_ingest_into_their_own_environment_only() {
        let key = Actor::api_key(1);
        assert!(authorize(&key, Permission::Ingest { environment_id: 1 }).is_ok());
        assert_eq!(
            authorize(&key, Permission::Ingest { environment_id: 2 }),
            Err(Refusal::WrongKey)
        );
        assert_eq!(authorize(&key, Permission::Read), Err(Refusal::WrongKey));
    }

    #[test]
    fn nobody_signed_in_reaches_only_public_calls() {
        let anonymous = Actor::anonymous();
        assert!(authorize(&anonymous, Permission::Public).is_ok());
        assert_eq!(authorize(&anonymous, Permission::Read), Err(Refusal::NotSignedIn));
        assert!(authorize(&Actor::cli(), Permission::Administer).is_ok());
    }
}
