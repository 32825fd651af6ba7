//! The access model the admin UI edits (DESIGN.md "Access rules", "Segment", remote config).
//!
//! These types describe *intent* (companies, users, segments, conditions, a rollout percentage);
//! `eval::compile` turns them into the wire [`RuleFilter`](super::RuleFilter) trees that SDKs
//! evaluate. Serde uses camelCase and explicit tags so the JSON is readable in audit entries and
//! exports.

use super::filter::ContextOperator;
use super::keys::{FlagKey, Percentage, SegmentKey};
use serde::{Deserialize, Serialize};

/// Who gets a flag in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum AccessRules {
    /// Nobody, including anonymous users (compiles to no rules).
    #[default]
    NoOne,
    /// Everybody, including anonymous users (compiles to one constant-true rule).
    Everyone,
    /// Targeted access: OR of companies, users, segments and rules.
    Some(TargetedAccess),
}

/// The "Some" mode: each listed company, user and segment is one alternative, and so is each rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetedAccess {
    #[serde(default)]
    pub companies: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub segments: Vec<SegmentKey>,
    #[serde(default)]
    pub rules: Vec<AccessRule>,
}

/// AND of conditions, then a sticky rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub rollout_percentage: Percentage,
    /// Which id the rollout hashes; Reflag's UI default is the company.
    #[serde(default)]
    pub rollout_attribute: RolloutAttribute,
}

/// The entity a percentage rollout is sticky for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum RolloutAttribute {
    /// Hash `company.id`: everyone in a company gets the same answer (B2B default).
    #[default]
    Company,
    /// Hash `user.id`.
    User,
}

impl RolloutAttribute {
    /// The flattened context field hashed by the rollout.
    pub fn field(self) -> &'static str {
        match self {
            RolloutAttribute::Company => "company.id",
            RolloutAttribute::User => "user.id",
        }
    }
}

/// One condition of an [`AccessRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Condition {
    /// `company.<attribute>` (the company id is attribute `id`).
    CompanyAttribute {
        attribute: String,
        operator: ContextOperator,
        #[serde(default)]
        values: Vec<String>,
    },
    /// `user.<attribute>` (`id`, `email`, custom attributes).
    UserAttribute {
        attribute: String,
        operator: ContextOperator,
        #[serde(default)]
        values: Vec<String>,
    },
    /// `other.<field>`: request-scoped data such as an event id.
    OtherContext {
        field: String,
        operator: ContextOperator,
        #[serde(default)]
        values: Vec<String>,
    },
    /// The company is (not) in a segment; inlined from the segment's current definition.
    Segment {
        segment: SegmentKey,
        membership: SegmentMembership,
    },
    /// Another flag is (not) enabled; inlined from that flag's access rules.
    FlagAccess { flag: FlagKey, enabled: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SegmentMembership {
    In,
    NotIn,
}

/// An app-wide group of companies: AND of its conditions (no conditions ⇒ every company).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub key: SegmentKey,
    pub name: String,
    #[serde(default)]
    pub conditions: Vec<SegmentCondition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SegmentCondition {
    CompanyAttribute {
        attribute: String,
        operator: ContextOperator,
        #[serde(default)]
        values: Vec<String>,
    },
    /// The company id is one of `companies`.
    CompanyList { companies: Vec<String> },
}

/// Remote config of a flag in one environment, variants in UI order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RemoteConfig {
    pub version: u64,
    #[serde(default)]
    pub variants: Vec<ConfigVariant>,
}

/// A config value and its targeting in this environment. Percentage rollouts and other context
/// are deliberately absent: Reflag does not support them for remote config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigVariant {
    pub key: String,
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub companies: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub segments: Vec<SegmentKey>,
    /// Served when nothing more specific matched; at most one per flag.
    #[serde(default)]
    pub is_default: bool,
}
