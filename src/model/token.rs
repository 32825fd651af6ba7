//! Access tokens of the management API, the MCP server and the command line against a server:
//! personal tokens act for a member with the member's role; service tokens have a name and a
//! role of their own. The token itself is shown once; lists show its prefix.

use serde::{Deserialize, Serialize};

use super::member::Role;

/// Whose a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A member's own: acts with the member's role at each request, goes with the member.
    Personal,
    /// An admin's creation for a machine, with its own role.
    Service,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "personal",
            TokenKind::Service => "service",
        }
    }

    /// What a token of this kind starts with: spotted by secret scanners, told apart at a glance.
    pub fn marker(self) -> &'static str {
        match self {
            TokenKind::Personal => "gth_pat_",
            TokenKind::Service => "gth_svc_",
        }
    }
}

/// A token as listed: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: i64,
    pub kind: TokenKind,
    pub name: String,
    /// The first characters of the token (its marker and 8 more), enough to revoke it.
    pub prefix: String,
    /// The member a personal token acts for.
    pub member_id: Option<i64>,
    pub member_email: Option<String>,
    /// The role it acts with now: the member's for a personal token.
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenView {
    /// Not revoked and not expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}
