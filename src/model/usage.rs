//! What the usage pages, the CLI and the stale-flag rules read: a flag's checks per day and
//! environment, the companies and users it reached, when it was last checked, and why a flag is
//! stale.

use serde::{Deserialize, Serialize};

/// One UTC day of a flag's usage in one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    /// Start of the day (epoch ms).
    pub day: i64,
    /// Checks that found the flag enabled, and disabled (evaluated by the server or reported by
    /// SDKs).
    pub enabled: i64,
    pub disabled: i64,
    /// Config variants served, by key.
    pub variants: Vec<(String, i64)>,
    /// Distinct companies and users the flag was enabled for.
    pub companies: i64,
    pub users: i64,
}

impl UsageDay {
    pub fn checks(&self) -> i64 {
        self.enabled + self.disabled
    }
}

/// A flag's usage in one environment over a period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentUsage {
    pub environment: String,
    pub name: String,
    /// Every day of the period, oldest first (days without checks are zeros).
    pub days: Vec<UsageDay>,
    /// Distinct companies and users the flag was enabled for over the whole period.
    pub companies: i64,
    pub users: i64,
    /// When the flag was last checked here (epoch ms), ever.
    pub last_checked: Option<i64>,
}

impl EnvironmentUsage {
    pub fn checks(&self) -> i64 {
        self.days.iter().map(UsageDay::checks).sum()
    }
}

/// A change of the flag's targeting or stage, drawn on the usage chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageMarker {
    pub at: i64,
    /// The environment it changed, for targeting; `None` for a stage move.
    pub environment: Option<String>,
    pub label: String,
}

/// A flag's usage over the last `days` days.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagUsage {
    pub flag: String,
    pub days: u32,
    /// Start of the first day (epoch ms).
    pub since: i64,
    pub environments: Vec<EnvironmentUsage>,
    pub markers: Vec<UsageMarker>,
}

/// Why a flag is stale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StaleReason {
    /// In the final release stage with Everyone in production since `since`.
    Released { since: i64, days: i64 },
    /// Not checked in any environment since `since` (its last check, or its creation).
    Unchecked { since: i64, days: i64 },
}

impl StaleReason {
    pub fn since(&self) -> i64 {
        match self {
            StaleReason::Released { since, .. } | StaleReason::Unchecked { since, .. } => *since,
        }
    }

    /// The reason in a sentence.
    pub fn describe(&self) -> String {
        match self {
            StaleReason::Released { days, .. } => {
                format!("released: in the final stage with Everyone in production for {days} days")
            }
            StaleReason::Unchecked { days, .. } => {
                format!("unused: not checked in any environment for {days} days")
            }
        }
    }
}

/// A temporary flag that is finished or unused and should leave the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleFlag {
    pub key: String,
    pub name: String,
    pub stage: String,
    pub reasons: Vec<StaleReason>,
    /// When the flag was last checked anywhere (epoch ms).
    pub last_checked: Option<i64>,
}

/// When a temporary flag counts as stale (settings, in days).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleSettings {
    /// Days in the final stage with Everyone in production.
    pub released_days: i64,
    /// Days without any check in any environment.
    pub unchecked_days: i64,
}

impl Default for StaleSettings {
    fn default() -> Self {
        StaleSettings {
            released_days: 14,
            unchecked_days: 30,
        }
    }
}
