//! What the store keeps, as the rest of Gatehouse sees it once a row is decoded: environments,
//! release stages, flags and the versions of their per-environment rules.

use serde::{Deserialize, Serialize};

use super::keys::{EnvironmentKey, FlagKey};

/// An environment (Production, Staging, …) with the version counter SDKs use for freshness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: i64,
    pub key: EnvironmentKey,
    pub name: String,
    pub sort_order: i64,
    pub is_production: bool,
    /// Bumped in the transaction of every change that can alter evaluation here.
    pub flag_state_version: i64,
    /// How many other members must approve a change of access or remote config here; 0: the
    /// environment is not protected.
    #[serde(default)]
    pub required_approvals: i64,
}

/// The two kinds of API key: publishable (public, client-safe) and secret (server-side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyKind {
    Publishable,
    Secret,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyKind::Publishable => "publishable",
            ApiKeyKind::Secret => "secret",
        }
    }
}

/// A release stage: app-wide, ordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseStage {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub sort_order: i64,
}

/// A flag without its per-environment rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub id: i64,
    pub key: FlagKey,
    pub name: String,
    pub description: String,
    pub stage_id: i64,
    pub owner_id: Option<i64>,
    pub archived: bool,
    pub permanent: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The member who made the last change, if any (and still a member).
    pub updated_by: Option<i64>,
}

/// One stored version of a flag's access rules or remote config in one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version<T> {
    pub flag_id: i64,
    pub environment_id: i64,
    pub version: i64,
    pub value: T,
    pub created_at: i64,
    /// The e-mail address of the member who saved it, if a member did (and still exists).
    pub created_by: Option<String>,
    /// Why it was written, when not typed by hand ("rolled back to version 3").
    pub note: Option<String>,
}

impl<T, E> Version<Result<T, E>> {
    /// The version with its value decoded, or why the stored value could not be.
    pub fn transpose(self) -> Result<Version<T>, E> {
        Ok(Version {
            flag_id: self.flag_id,
            environment_id: self.environment_id,
            version: self.version,
            value: self.value?,
            created_at: self.created_at,
            created_by: self.created_by,
            note: self.note,
        })
    }
}
