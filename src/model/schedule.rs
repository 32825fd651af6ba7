//! Changes to a flag planned for a later time, and what became of them.

use serde::{Deserialize, Serialize};

use super::access::{AccessRules, ConfigVariant};

/// A change to one flag that can wait for its time. Each carries what it was made against, so a
/// flag that moved on meanwhile is not overwritten blindly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PlannedChange {
    /// New access rules in an environment, made against version `based_on` of the rules there.
    #[serde(rename_all = "camelCase")]
    SetAccess {
        environment: String,
        rules: AccessRules,
        based_on: i64,
    },
    /// New remote config in an environment, made against version `based_on` of the config there.
    #[serde(rename_all = "camelCase")]
    SetRemoteConfig {
        environment: String,
        variants: Vec<ConfigVariant>,
        based_on: i64,
    },
    /// A move from the stage `from_stage_id` into `stage_id` (with the stage's default access).
    #[serde(rename_all = "camelCase")]
    MoveStage { stage_id: i64, from_stage_id: i64 },
    /// Archiving (or restoring) the flag.
    #[serde(rename_all = "camelCase")]
    SetArchived { archived: bool },
}

impl PlannedChange {
    /// The environment the change is limited to, by key.
    pub fn environment(&self) -> Option<&str> {
        match self {
            PlannedChange::SetAccess { environment, .. }
            | PlannedChange::SetRemoteConfig { environment, .. } => Some(environment),
            PlannedChange::MoveStage { .. } | PlannedChange::SetArchived { .. } => None,
        }
    }
}

/// Where a scheduled change stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScheduleStatus {
    /// Waiting for its time.
    Pending,
    Applied,
    /// Not applied: the flag changed after the change was scheduled.
    Conflict,
    /// Not applied: it could no longer be made (its author lost the right, it no longer
    /// validates).
    Failed,
    Cancelled,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Pending => "pending",
            ScheduleStatus::Applied => "applied",
            ScheduleStatus::Conflict => "conflict",
            ScheduleStatus::Failed => "failed",
            ScheduleStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ScheduleStatus> {
        [
            ScheduleStatus::Pending,
            ScheduleStatus::Applied,
            ScheduleStatus::Conflict,
            ScheduleStatus::Failed,
            ScheduleStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A stored scheduled change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledChange {
    pub id: i64,
    pub flag: String,
    pub planned: PlannedChange,
    /// When it is due, in epoch milliseconds.
    pub due_at: i64,
    pub status: ScheduleStatus,
    /// Why it was not applied (a conflict, a failure), or what applying it produced.
    pub outcome: String,
    pub created_by: Option<i64>,
    pub created_label: String,
    pub created_at: i64,
    pub settled_at: Option<i64>,
    /// The approved change request it applies, if any (it carries that review).
    pub request_id: Option<i64>,
}

/// Where a change request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestStatus {
    /// Still being written by its author; not yet for review.
    Draft,
    /// Waiting for approvals.
    Review,
    /// Approved by enough members; anyone who may edit can apply it (now or at a time).
    Approved,
    /// Approved and waiting for its time as a scheduled change.
    Scheduled,
    Applied,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Draft => "draft",
            RequestStatus::Review => "review",
            RequestStatus::Approved => "approved",
            RequestStatus::Scheduled => "scheduled",
            RequestStatus::Applied => "applied",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<RequestStatus> {
        [
            RequestStatus::Draft,
            RequestStatus::Review,
            RequestStatus::Approved,
            RequestStatus::Scheduled,
            RequestStatus::Applied,
            RequestStatus::Rejected,
            RequestStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Not applied, rejected or cancelled yet.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            RequestStatus::Applied | RequestStatus::Rejected | RequestStatus::Cancelled
        )
    }

    /// Waiting for (more) approvals or to be applied: what reviewers see.
    pub fn in_review(self) -> bool {
        matches!(self, RequestStatus::Review | RequestStatus::Approved)
    }
}

/// A change to a protected environment waiting for other members' approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: i64,
    pub flag: String,
    pub environment_id: i64,
    /// The change, with the version it was made against.
    pub planned: PlannedChange,
    /// Why, for the reviewers.
    pub note: String,
    pub status: RequestStatus,
    /// What applying, rejecting or cancelling said.
    pub outcome: String,
    pub created_by: Option<i64>,
    pub created_label: String,
    pub created_at: i64,
    /// Who approved it, since its last edit: (member id, label).
    pub approvals: Vec<(i64, String)>,
}
