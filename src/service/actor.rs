//! Who makes a change or asks a question: a member, the operator at the server's command line,
//! Gatehouse itself, an application with an API key, or nobody yet (sign-in, setup, invitations).

use crate::model::member::{MemberView, Role};

/// The kind of caller, which decides what it may do ([`super::access::authorize`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorKind {
    /// A signed-in member acting with their role.
    Member { id: i64, role: Role },
    /// Someone with a shell on the server (the `gatehouse` commands): may do everything.
    Operator,
    /// Gatehouse itself (first-run setup, the first admin from the environment).
    System,
    /// A service token of the management API, with the role an admin gave it.
    Service { token_id: i64, role: Role },
    /// An application holding an API key of one environment (the ingest endpoints).
    ApiKey { environment_id: i64 },
    /// Nobody signed in; holds a token at most (setup, invitation links) or is signing in.
    Anonymous,
}

/// A caller, and the label the audit log records for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub label: String,
}

impl Actor {
    pub fn member(member: &MemberView) -> Actor {
        Actor {
            kind: ActorKind::Member {
                id: member.id,
                role: member.role,
            },
            label: member.email.clone(),
        }
    }

    /// Changes made on the command line of the server machine.
    pub fn cli() -> Actor {
        Actor {
            kind: ActorKind::Operator,
            label: "command line".into(),
        }
    }

    pub fn system(label: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            label: label.into(),
        }
    }

    pub fn api_key(environment_id: i64) -> Actor {
        Actor {
            kind: ActorKind::ApiKey { environment_id },
            label: "API key".into(),
        }
    }

    pub fn anonymous() -> Actor {
        Actor {
            kind: ActorKind::Anonymous,
            label: "anonymous".into(),
        }
    }

    /// The role the actor acts with: a member's or a service token's.
    pub fn role(&self) -> Option<Role> {
        match self.kind {
            ActorKind::Member { role, .. } | ActorKind::Service { role, .. } => Some(role),
            _ => None,
        }
    }

    /// May manage everything: an admin (member or service token), the operator or Gatehouse.
    pub fn is_admin(&self) -> bool {
        matches!(self.kind, ActorKind::Operator | ActorKind::System) || self.role() == Some(Role::Admin)
    }

    /// The operator or Gatehouse itself, who are not held to reviews (they have the database).
    pub fn is_operator(&self) -> bool {
        matches!(self.kind, ActorKind::Operator | ActorKind::System)
    }

    /// The member behind the actor, if any: recorded as the author of what they write.
    pub fn member_id(&self) -> Option<i64> {
        match self.kind {
            ActorKind::Member { id, .. } => Some(id),
            _ => None,
        }
    }
}
