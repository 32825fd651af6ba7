//! Release plans: an ordered list of milestones a flag's access in one environment goes through
//! (internal companies → 10 % → 50 % → everyone), each reached by hand or after a wait, and the
//! templates they are made from.

use serde::{Deserialize, Serialize};

use super::access::{AccessRules, TargetedAccess};

/// One step of a plan: the access it gives and, optionally, the stage it moves the flag to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Milestone {
    pub name: String,
    pub rules: AccessRules,
    /// The release stage (by name) the flag moves to when the milestone is reached.
    #[serde(default)]
    pub stage: Option<String>,
    /// How long after this milestone is reached the next one follows by itself, in
    /// milliseconds; `None`: by hand.
    #[serde(default)]
    pub advance_after_ms: Option<i64>,
}

/// A named list of milestones, defined once in settings and applied to flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanTemplate {
    pub id: i64,
    pub name: String,
    pub milestones: Vec<Milestone>,
}

/// Where a plan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlanStatus {
    /// Advancing: by hand, and by itself where a milestone has a wait.
    Active,
    /// Held: nothing advances by itself until it is resumed.
    Paused,
    /// Its last milestone is reached.
    Completed,
    Cancelled,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Paused => "paused",
            PlanStatus::Completed => "completed",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<PlanStatus> {
        [
            PlanStatus::Active,
            PlanStatus::Paused,
            PlanStatus::Completed,
            PlanStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A flag's plan in one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePlan {
    pub id: i64,
    pub flag: String,
    pub environment_id: i64,
    /// The template it was made from (its milestones are copied: editing the template later does
    /// not change a running plan).
    pub template: String,
    pub milestones: Vec<Milestone>,
    /// The index of the milestone reached last.
    pub current: usize,
    pub status: PlanStatus,
    /// When the next milestone follows by itself, if it does.
    pub next_due_at: Option<i64>,
    /// The version of the access rules the plan wrote last: another version means someone
    /// changed the access by hand since.
    pub applied_version: i64,
    /// Why the plan was paused by Gatehouse, if it was.
    pub note: String,
    pub created_label: String,
}

impl ReleasePlan {
    /// The milestone after the current one, if any.
    pub fn next(&self) -> Option<&Milestone> {
        self.milestones.get(self.current + 1)
    }
}

/// Why `later` gives less access than `earlier` would, if it does. Along a plan, access only
/// grows, so companies that had the flag keep it (percentages grow on the same sticky buckets):
/// every company, user and segment stays, every rule stays (same conditions, same attribute)
/// with at least its percentage, and after Everyone comes only Everyone.
pub fn narrowing(earlier: &AccessRules, later: &AccessRules) -> Option<String> {
    match (earlier, later) {
        (_, AccessRules::Everyone) | (AccessRules::NoOne, _) => None,
        (AccessRules::Everyone, _) => Some("after Everyone, every milestone must be Everyone".into()),
        (AccessRules::Some(_), AccessRules::NoOne) => Some("No one would take access away".into()),
        (AccessRules::Some(a), AccessRules::Some(b)) => narrowing_targets(a, b),
    }
}

fn narrowing_targets(a: &TargetedAccess, b: &TargetedAccess) -> Option<String> {
    if let Some(company) = a.companies.iter().find(|c| !b.companies.contains(c)) {
        return Some(format!("company {company} would lose access"));
    }
    if let Some(user) = a.users.iter().find(|u| !b.users.contains(u)) {
        return Some(format!("user {user} would lose access"));
    }
    if let Some(segment) = a.segments.iter().find(|s| !b.segments.contains(s)) {
        return Some(format!("segment {segment} would lose access"));
    }
    for rule in &a.rules {
        let kept = b.rules.iter().any(|r| {
            r.conditions == rule.conditions
                && r.rollout_attribute == rule.rollout_attribute
                && r.rollout_percentage >= rule.rollout_percentage
        });
        if !kept {
            return Some(format!(
                "a rollout of {} % would shrink or go away; percentages only grow along a plan",
                f64::from(rule.rollout_percentage.threshold()) / 1000.0
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::access::AccessRule;
    use super::super::keys::Percentage;
    use super::*;

    fn rollout(p: f64) -> AccessRules {
        AccessRules::Some(TargetedAccess {
            rules: vec![AccessRule {
                conditions: Vec::new(),
                rollout_percentage: Percentage::new(p).unwrap(),
                rollout_attribute: Default::default(),
            }],
            ..Default::default()
        })
    }

    #[test]
    fn access_only_grows_along_a_plan() {
        assert_eq!(narrowing(&rollout(10.0), &rollout(50.0)), None);
        assert_eq!(narrowing(&rollout(50.0), &AccessRules::Everyone), None);
        assert_eq!(narrowing(&AccessRules::NoOne, &rollout(10.0)), None);
        assert!(narrowing(&rollout(50.0), &rollout(10.0))
            .unwrap()
            .contains("50 %"));
        assert!(narrowing(&AccessRules::Everyone, &rollout(10.0)).is_some());
        assert!(narrowing(&rollout(10.0), &AccessRules::NoOne).is_some());
        let internal = AccessRules::Some(TargetedAccess {
            companies: vec!["acme".into()],
            ..Default::default()
        });
        assert!(narrowing(&internal, &rollout(10.0)).unwrap().contains("acme"));
    }
}
