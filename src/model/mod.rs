//! Domain types shared by the UI, the API, the store and the engine.
//!
//! Two families live here: the Reflag *wire* model ([`RuleFilter`], [`FlagDefinition`], …) whose
//! serde form is exactly the JSON that `GET /features` serves and Reflag SDKs evaluate, and the
//! *access* model ([`AccessRules`], [`Segment`], [`RemoteConfig`], …) that the admin UI edits and
//! that `eval::compile` turns into wire rules. Nothing here does I/O, so the module also builds for
//! the browser. Validating newtypes ([`FlagKey`], [`Percentage`], …) keep invalid values out.

mod access;
mod catalog;
pub mod describe;
mod filter;
mod json;
mod keys;
pub mod member;
mod plan;
mod schedule;
pub mod secret;
pub mod token;
mod usage;
pub mod webhook;

pub use access::{
    AccessRule, AccessRules, Condition, ConfigVariant, RemoteConfig, RolloutAttribute, Segment,
    SegmentCondition, SegmentMembership, TargetedAccess,
};
pub use catalog::{ApiKeyKind, Environment, Flag, ReleaseStage, Version};
pub use filter::{
    ConfigDefinition, ContextOperator, FlagDefinition, GroupOperator, Rule, RuleFilter, Targeting,
    TargetingRule, VariantDefinition,
};
pub use json::{is_array_index, JsObject, JsValue};
pub use keys::{EnvironmentKey, FlagKey, KeyError, Percentage, PercentageError, SegmentKey};
pub use plan::{narrowing, Milestone, PlanStatus, PlanTemplate, ReleasePlan};
pub use schedule::{ChangeRequest, PlannedChange, RequestStatus, ScheduleStatus, ScheduledChange};
pub use usage::{EnvironmentUsage, FlagUsage, StaleFlag, StaleReason, StaleSettings, UsageDay, UsageMarker};
