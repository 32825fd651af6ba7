//! `gatehouse usage` and `gatehouse stale`: a flag's daily checks and the companies it reached,
//! every flag's checks and last check, the stale flags, as text or as one JSON document each
//! (documented in the README).

use serde_json::{json, Value};

use crate::model::{FlagUsage, StaleFlag, StaleReason};
use crate::ui::{date, datetime};

/// One flag's row of the summary: key, checks over the period, last checked anywhere.
pub struct FlagChecks {
    pub key: String,
    pub checks: i64,
    pub last_checked: Option<i64>,
}

fn when(at: Option<i64>) -> String {
    at.map_or_else(|| "never".to_string(), datetime)
}

/// A flag's usage: per environment, a line per day with checks, enabled, disabled, variants and
/// companies and users exposed.
pub fn flag_text(usage: &FlagUsage) -> String {
    let mut out = format!(
        "{}: last {} days, since {}\n",
        usage.flag,
        usage.days,
        date(usage.since)
    );
    for environment in &usage.environments {
        out.push_str(&format!(
            "\n{} ({}): {} checks, {} companies and {} users exposed, last checked {}\n",
            environment.name,
            environment.environment,
            environment.checks(),
            environment.companies,
            environment.users,
            when(environment.last_checked)
        ));
        out.push_str("day         checks   enabled  disabled  companies  users  variants\n");
        for day in &environment.days {
            let variants: Vec<String> = day.variants.iter().map(|(k, n)| format!("{k}={n}")).collect();
            out.push_str(&format!(
                "{}  {:>7}  {:>8}  {:>8}  {:>9}  {:>5}  {}\n",
                date(day.day),
                day.checks(),
                day.enabled,
                day.disabled,
                day.companies,
                day.users,
                variants.join(" ")
            ));
        }
    }
    if !usage.markers.is_empty() {
        out.push_str("\nchanges\n");
        for marker in &usage.markers {
            let place = marker.environment.as_deref().unwrap_or("all environments");
            out.push_str(&format!("{}  {} ({place})\n", datetime(marker.at), marker.label));
        }
    }
    out
}

pub fn flag_json(usage: &FlagUsage) -> Value {
    json!({
        "flag": usage.flag,
        "days": usage.days,
        "since": date(usage.since),
        "environments": usage.environments.iter().map(|e| json!({
            "environment": e.environment,
            "name": e.name,
            "checks": e.checks(),
            "companies": e.companies,
            "users": e.users,
            "lastChecked": e.last_checked.map(datetime),
            "daily": e.days.iter().map(|d| json!({
                "date": date(d.day),
                "checks": d.checks(),
                "enabled": d.enabled,
                "disabled": d.disabled,
                "variants": d.variants.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<String, Value>>(),
                "companies": d.companies,
                "users": d.users,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "changes": usage.markers.iter().map(|m| json!({
            "at": datetime(m.at),
            "environment": m.environment,
            "change": m.label,
        })).collect::<Vec<_>>(),
    })
}

/// Every flag's checks over the period and its last check.
pub fn summary_text(days: u32, flags: &[FlagChecks]) -> String {
    let width = flags.iter().map(|f| f.key.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}  checks ({days} days)  last checked\n", "flag");
    for flag in flags {
        out.push_str(&format!(
            "{:width$}  {:>17}  {}\n",
            flag.key,
            flag.checks,
            when(flag.last_checked)
        ));
    }
    out
}

pub fn summary_json(days: u32, flags: &[FlagChecks]) -> Value {
    json!({
        "days": days,
        "flags": flags.iter().map(|f| json!({
            "key": f.key,
            "checks": f.checks,
            "lastChecked": f.last_checked.map(datetime),
        })).collect::<Vec<_>>(),
    })
}

fn reason_json(reason: &StaleReason) -> Value {
    let (kind, since, days) = match reason {
        StaleReason::Released { since, days } => ("released", since, days),
        StaleReason::Unchecked { since, days } => ("unchecked", since, days),
    };
    json!({ "kind": kind, "since": date(*since), "days": days, "text": reason.describe() })
}

pub fn stale_text(flags: &[StaleFlag]) -> String {
    if flags.is_empty() {
        return "no stale flags\n".to_string();
    }
    let mut out = String::new();
    for flag in flags {
        out.push_str(&format!("{} ({}, stage {})\n", flag.key, flag.name, flag.stage));
        for reason in &flag.reasons {
            out.push_str(&format!(
                "  {} (since {})\n",
                reason.describe(),
                date(reason.since())
            ));
        }
    }
    out
}

pub fn stale_json(flags: &[StaleFlag]) -> Value {
    json!({
        "stale": flags.iter().map(|f| json!({
            "key": f.key,
            "name": f.name,
            "stage": f.stage,
            "lastChecked": f.last_checked.map(datetime),
            "reasons": f.reasons.iter().map(reason_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
