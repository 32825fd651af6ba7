//! Access rules in words: how the admin UI names operators, conditions and rules, and what
//! changed between two versions of a flag's access (the history's diff).

use super::access::{
    AccessRule, AccessRules, Condition, ConfigVariant, RemoteConfig, RolloutAttribute, SegmentMembership,
    TargetedAccess,
};
use super::filter::ContextOperator;

/// How many values an operator compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// SET, NOT_SET, IS_TRUE, IS_FALSE.
    None,
    One,
    /// ANY_OF, NOT_ANY_OF: a comma-separated list.
    List,
}

/// The kind of value an operator expects, which is how the editor groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Number,
    /// A number of days (AFTER, BEFORE).
    Days,
    Date,
    Presence,
    Boolean,
}

/// The editor's operator groups, in display order.
pub const OPERATOR_GROUPS: [(&str, &[ContextOperator]); 5] = [
    (
        "Text",
        &[
            ContextOperator::Is,
            ContextOperator::IsNot,
            ContextOperator::AnyOf,
            ContextOperator::NotAnyOf,
            ContextOperator::Contains,
            ContextOperator::NotContains,
        ],
    ),
    ("Number", &[ContextOperator::Gt, ContextOperator::Lt]),
    (
        "Date",
        &[
            ContextOperator::After,
            ContextOperator::Before,
            ContextOperator::DateAfter,
            ContextOperator::DateBefore,
        ],
    ),
    ("Presence", &[ContextOperator::Set, ContextOperator::NotSet]),
    ("Boolean", &[ContextOperator::IsTrue, ContextOperator::IsFalse]),
];

/// The words the editor shows for an operator.
pub fn operator_label(operator: ContextOperator) -> &'static str {
    match operator {
        ContextOperator::Is => "is",
        ContextOperator::IsNot => "is not",
        ContextOperator::AnyOf => "is any of",
        ContextOperator::NotAnyOf => "is none of",
        ContextOperator::Contains => "contains",
        ContextOperator::NotContains => "does not contain",
        ContextOperator::Gt => "is greater than",
        ContextOperator::Lt => "is less than",
        ContextOperator::After => "is within the last (days)",
        ContextOperator::Before => "is longer ago than (days)",
        ContextOperator::DateAfter => "is on or after (date)",
        ContextOperator::DateBefore => "is on or before (date)",
        ContextOperator::Set => "is set",
        ContextOperator::NotSet => "is not set",
        ContextOperator::IsTrue => "is true",
        ContextOperator::IsFalse => "is false",
        ContextOperator::Unknown => "(unknown operator)",
    }
}

pub fn arity(operator: ContextOperator) -> Arity {
    match operator {
        ContextOperator::Set
        | ContextOperator::NotSet
        | ContextOperator::IsTrue
        | ContextOperator::IsFalse => Arity::None,
        ContextOperator::AnyOf | ContextOperator::NotAnyOf => Arity::List,
        _ => Arity::One,
    }
}

pub fn value_kind(operator: ContextOperator) -> ValueKind {
    match operator {
        ContextOperator::Gt | ContextOperator::Lt => ValueKind::Number,
        ContextOperator::After | ContextOperator::Before => ValueKind::Days,
        ContextOperator::DateAfter | ContextOperator::DateBefore => ValueKind::Date,
        ContextOperator::Set | ContextOperator::NotSet => ValueKind::Presence,
        ContextOperator::IsTrue | ContextOperator::IsFalse => ValueKind::Boolean,
        _ => ValueKind::Text,
    }
}

/// The operator whose wire name is `name` (`"ANY_OF"`), if the editor offers it.
pub fn operator_named(name: &str) -> Option<ContextOperator> {
    ContextOperator::ALL.into_iter().find(|op| op.as_str() == name)
}

fn attribute_text(subject: &str, attribute: &str, operator: ContextOperator, values: &[String]) -> String {
    let label = operator_label(operator);
    let label = label.split(" (").next().unwrap_or(label);
    match arity(operator) {
        Arity::None => format!("{subject}.{attribute} {label}"),
        Arity::One => format!(
            "{subject}.{attribute} {label} {}",
            values.first().map(String::as_str).unwrap_or("")
        ),
        Arity::List => format!("{subject}.{attribute} {label} {}", values.join(", ")),
    }
    .trim_end()
    .to_string()
}

/// One condition in words: `company.plan is any of pro, team`, `in segment beta`.
pub fn describe_condition(condition: &Condition) -> String {
    match condition {
        Condition::CompanyAttribute {
            attribute,
            operator,
            values,
        } => attribute_text("company", attribute, *operator, values),
        Condition::UserAttribute {
            attribute,
            operator,
            values,
        } => attribute_text("user", attribute, *operator, values),
        Condition::OtherContext {
            field,
            operator,
            values,
        } => attribute_text("other", field, *operator, values),
        Condition::Segment {
            segment,
            membership: SegmentMembership::In,
        } => format!("in segment {}", segment.as_str()),
        Condition::Segment {
            segment,
            membership: SegmentMembership::NotIn,
        } => format!("not in segment {}", segment.as_str()),
        Condition::FlagAccess { flag, enabled: true } => format!("has flag {}", flag.as_str()),
        Condition::FlagAccess { flag, enabled: false } => {
            format!("does not have flag {}", flag.as_str())
        }
    }
}

/// One rule in words: its conditions joined by "and", then the rollout if it is partial.
pub fn describe_rule(rule: &AccessRule) -> String {
    let conditions = if rule.conditions.is_empty() {
        "anyone".to_string()
    } else {
        rule.conditions
            .iter()
            .map(describe_condition)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    if rule.rollout_percentage.is_full() {
        conditions
    } else {
        let by = match rule.rollout_attribute {
            RolloutAttribute::Company => "companies",
            RolloutAttribute::User => "users",
        };
        format!("{conditions}, {} % of {by}", rule.rollout_percentage.as_f64())
    }
}

pub fn mode_name(rules: &AccessRules) -> &'static str {
    match rules {
        AccessRules::NoOne => "No one",
        AccessRules::Everyone => "Everyone",
        AccessRules::Some(_) => "Some",
    }
}

fn list_changes(what: &str, old: &[String], new: &[String], out: &mut Vec<String>) {
    let added: Vec<&str> = new
        .iter()
        .filter(|v| !old.contains(v))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old
        .iter()
        .filter(|v| !new.contains(v))
        .map(String::as_str)
        .collect();
    if !added.is_empty() {
        out.push(format!("+ {what} {}", added.join(", ")));
    }
    if !removed.is_empty() {
        out.push(format!("− {what} {}", removed.join(", ")));
    }
}

/// What changed from `old` to `new`, one line per change: `+ companies acme`, `− segment beta`,
/// `rule 1: … → …`. Empty when the two are equal.
pub fn access_changes(old: &AccessRules, new: &AccessRules) -> Vec<String> {
    let mut out = Vec::new();
    if std::mem::discriminant(old) != std::mem::discriminant(new) {
        out.push(format!("{} → {}", mode_name(old), mode_name(new)));
    }
    let empty = TargetedAccess::default();
    let targeted = |rules: &AccessRules| -> TargetedAccess {
        match rules {
            AccessRules::Some(some) => some.clone(),
            _ => empty.clone(),
        }
    };
    let (old, new) = (targeted(old), targeted(new));
    list_changes("companies", &old.companies, &new.companies, &mut out);
    list_changes("users", &old.users, &new.users, &mut out);
    let keys = |segments: &[super::SegmentKey]| -> Vec<String> {
        segments.iter().map(|s| s.as_str().to_string()).collect()
    };
    list_changes("segments", &keys(&old.segments), &keys(&new.segments), &mut out);
    for i in 0..old.rules.len().max(new.rules.len()) {
        match (old.rules.get(i), new.rules.get(i)) {
            (Some(a), Some(b)) if a != b => out.push(format!(
                "rule {}: {} → {}",
                i + 1,
                describe_rule(a),
                describe_rule(b)
            )),
            (None, Some(b)) => out.push(format!("+ rule {}: {}", i + 1, describe_rule(b))),
            (Some(a), None) => out.push(format!("− rule {}: {}", i + 1, describe_rule(a))),
            _ => {}
        }
    }
    out
}

/// Longest payload quoted in a change line; longer ones are cut with "…".
const PAYLOAD_QUOTED: usize = 60;

/// A payload as the history quotes it: compact JSON, cut when long.
fn quoted(payload: &serde_json::Value) -> String {
    let text = payload.to_string();
    match text.char_indices().nth(PAYLOAD_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A remote config in a few words: `2 values, default basic` or `no values`.
pub fn config_summary(config: &RemoteConfig) -> String {
    let values = match config.variants.len() {
        0 => return "no values".to_string(),
        1 => "1 value".to_string(),
        n => format!("{n} values"),
    };
    match config.variants.iter().find(|v| v.is_default) {
        Some(default) => format!("{values}, default {}", default.key),
        None => values,
    }
}

/// What changed from one remote config to the next, one line per change: `+ value premium
/// {"seats":10}`, `− value trial`, `value premium: payload {…} → {…}`, `value premium: +
/// companies acme`, `default basic → premium`. Empty when the two are equal.
pub fn config_changes(old: &RemoteConfig, new: &RemoteConfig) -> Vec<String> {
    let mut out = Vec::new();
    let find = |config: &RemoteConfig, key: &str| config.variants.iter().find(|v| v.key == key).cloned();
    for variant in &new.variants {
        let Some(before) = find(old, &variant.key) else {
            out.push(format!("+ value {} {}", variant.key, quoted(&variant.payload)));
            continue;
        };
        let mut changes = Vec::new();
        if before.payload != variant.payload {
            changes.push(format!(
                "payload {} → {}",
                quoted(&before.payload),
                quoted(&variant.payload)
            ));
        }
        let keys = |v: &ConfigVariant| -> Vec<String> {
            v.segments.iter().map(|s| s.as_str().to_string()).collect()
        };
        list_changes("companies", &before.companies, &variant.companies, &mut changes);
        list_changes("users", &before.users, &variant.users, &mut changes);
        list_changes("segments", &keys(&before), &keys(variant), &mut changes);
        out.extend(changes.into_iter().map(|c| format!("value {}: {c}", variant.key)));
    }
    for variant in old.variants.iter().filter(|v| find(new, &v.key).is_none()) {
        out.push(format!("− value {}", variant.key));
    }
    let default = |config: &RemoteConfig| {
        config
            .variants
            .iter()
            .find(|v| v.is_default)
            .map(|v| v.key.clone())
    };
    match (default(old), default(new)) {
        (Some(a), Some(b)) if a != b => out.push(format!("default {a} → {b}")),
        (None, Some(b)) => out.push(format!("default → {b}")),
        (Some(a), None) => out.push(format!("no default (was {a})")),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(key: &str, payload: serde_json::Value, companies: &[&str], is_default: bool) -> ConfigVariant {
        ConfigVariant {
            key: key.into(),
            payload,
            companies: companies.iter().map(|c| c.to_string()).collect(),
            users: vec![],
            segments: vec![],
            is_default,
        }
    }

    #[test]
    fn config_changes_name_values_payloads_targets_and_the_default() {
        let old = RemoteConfig {
            version: 1,
            variants: vec![
                variant("basic", serde_json::json!({ "seats": 5 }), &[], true),
                variant("premium", serde_json::json!({ "seats": 50 }), &["acme"], false),
                variant("trial", serde_json::json!(null), &[], false),
            ],
        };
        let new = RemoteConfig {
            version: 2,
            variants: vec![
                variant("basic", serde_json::json!({ "seats": 5 }), &[], false),
                variant(
                    "premium",
                    serde_json::json!({ "seats": 100 }),
                    &["acme", "globex"],
                    true,
                ),
                variant("huge", serde_json::json!({ "text": "x".repeat(100) }), &[], false),
            ],
        };
        assert_eq!(
            config_changes(&old, &new),
            [
                "value premium: payload {\"seats\":50} → {\"seats\":100}".to_string(),
                "value premium: + companies globex".into(),
                format!("+ value huge {{\"text\":\"{}…", "x".repeat(51)),
                "− value trial".into(),
                "default basic → premium".into(),
            ]
        );
        assert!(config_changes(&new, &new).is_empty());
        assert_eq!(config_summary(&old), "3 values, default basic");
        assert_eq!(config_summary(&RemoteConfig::default()), "no values");
    }

    use crate::model::{FlagKey, Percentage, SegmentKey};

    fn plan_rule(values: &[&str], rollout: f64) -> AccessRule {
        AccessRule {
            conditions: vec![Condition::CompanyAttribute {
                attribute: "plan".into(),
                operator: ContextOperator::AnyOf,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            rollout_percentage: Percentage::new(rollout).unwrap(),
            rollout_attribute: RolloutAttribute::Company,
        }
    }

    #[test]
    fn rules_read_as_sentences() {
        assert_eq!(
            describe_rule(&plan_rule(&["pro", "team"], 100.0)),
            "company.plan is any of pro, team"
        );
        assert_eq!(
            describe_rule(&plan_rule(&["pro"], 25.0)),
            "company.plan is any of pro, 25 % of companies"
        );
        let rule = AccessRule {
            conditions: vec![
                Condition::UserAttribute {
                    attribute: "email".into(),
                    operator: ContextOperator::Set,
                    values: vec![],
                },
                Condition::Segment {
                    segment: SegmentKey::parse("beta").unwrap(),
                    membership: SegmentMembership::NotIn,
                },
                Condition::FlagAccess {
                    flag: FlagKey::parse("new-ui").unwrap(),
                    enabled: true,
                },
            ],
            rollout_percentage: Percentage::new(10.0).unwrap(),
            rollout_attribute: RolloutAttribute::User,
        };
        assert_eq!(
            describe_rule(&rule),
            "user.email is set and not in segment beta and has flag new-ui, 10 % of users"
        );
    }

    #[test]
    fn changes_name_each_field_that_differs() {
        let old = AccessRules::Some(TargetedAccess {
            companies: vec!["acme".into(), "globex".into()],
            rules: vec![plan_rule(&["pro"], 25.0)],
            ..Default::default()
        });
        let new = AccessRules::Some(TargetedAccess {
            companies: vec!["acme".into(), "initech".into()],
            segments: vec![SegmentKey::parse("beta").unwrap()],
            rules: vec![plan_rule(&["pro"], 50.0), plan_rule(&["team"], 100.0)],
            ..Default::default()
        });
        assert_eq!(
            access_changes(&old, &new),
            vec![
                "+ companies initech",
                "− companies globex",
                "+ segments beta",
                "rule 1: company.plan is any of pro, 25 % of companies → company.plan is any of pro, 50 % of companies",
                "+ rule 2: company.plan is any of team",
            ]
        );
        assert!(access_changes(&new, &new).is_empty());
        assert_eq!(
            access_changes(&AccessRules::NoOne, &AccessRules::Everyone),
            vec!["No one → Everyone"]
        );
        assert_eq!(
            access_changes(&AccessRules::Everyone, &old),
            vec![
                "Everyone → Some",
                "+ companies acme, globex",
                "+ rule 1: company.plan is any of pro, 25 % of companies"
            ]
        );
    }

    #[test]
    fn every_offered_operator_is_in_one_group() {
        for op in ContextOperator::ALL {
            let groups = OPERATOR_GROUPS
                .iter()
                .filter(|(_, ops)| ops.contains(&op))
                .count();
            assert_eq!(groups, 1, "{op:?}");
            assert_eq!(operator_named(op.as_str()), Some(op));
        }
    }
}
