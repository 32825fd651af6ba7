//! The Reflag wire model of targeting rules, exactly as served by `GET /features`.
//!
//! Field names and tags follow the JSON of `@reflag/flag-evaluation` 1.0.1 (notes §2), so these
//! types round-trip what Reflag SDKs send and expect. Unknown filter types and operators are kept
//! deserializable (they evaluate to `false`, as in the reference) instead of rejecting the payload.

use super::json::JsValue;
use super::keys::FlagKey;
use serde::{Deserialize, Serialize};

/// A node of a rule's filter tree; `type` discriminates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RuleFilter {
    /// Logical AND/OR over the children, evaluated left to right with short-circuit.
    Group {
        operator: GroupOperator,
        filters: Vec<RuleFilter>,
    },
    /// Logical NOT.
    Negation { filter: Box<RuleFilter> },
    /// Compares one flattened context field with `values`.
    Context {
        field: String,
        operator: ContextOperator,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        values: Option<Vec<String>>,
    },
    /// `hashInt(key + "." + ctx[attribute]) < threshold`; the threshold is percent × 1000.
    #[serde(rename_all = "camelCase")]
    RolloutPercentage {
        /// Absent on the wire ⇒ the reference hashes the text `undefined` as the key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        partial_rollout_attribute: String,
        partial_rollout_threshold: f64,
    },
    /// Always `value`.
    Constant { value: bool },
    /// A `type` this version does not know; the reference evaluates it to `false`.
    #[serde(other)]
    Unknown,
}

impl RuleFilter {
    /// A context leaf with the given values.
    pub fn context(field: impl Into<String>, operator: ContextOperator, values: Vec<String>) -> Self {
        RuleFilter::Context {
            field: field.into(),
            operator,
            values: Some(values),
        }
    }

    pub fn and(filters: Vec<RuleFilter>) -> Self {
        RuleFilter::Group {
            operator: GroupOperator::And,
            filters,
        }
    }

    pub fn or(filters: Vec<RuleFilter>) -> Self {
        RuleFilter::Group {
            operator: GroupOperator::Or,
            filters,
        }
    }

    pub fn negate(filter: RuleFilter) -> Self {
        RuleFilter::Negation {
            filter: Box::new(filter),
        }
    }
}

/// `and` / `or` of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupOperator {
    And,
    /// Also any operator other than `and`: the reference folds with `||` unless the operator is
    /// exactly `"and"`.
    #[serde(other)]
    Or,
}

/// The comparison of a `context` filter (notes §3.4). `values` are always strings on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContextOperator {
    Is,
    IsNot,
    AnyOf,
    NotAnyOf,
    Contains,
    NotContains,
    Gt,
    Lt,
    /// "Less than X days ago".
    After,
    /// "More than X days ago".
    Before,
    DateAfter,
    DateBefore,
    Set,
    NotSet,
    IsTrue,
    IsFalse,
    /// An operator this version does not know; evaluates to `false` like the reference's default
    /// branch (still subject to the missing-field check).
    #[serde(other)]
    Unknown,
}

impl ContextOperator {
    /// All operators the UI may offer, in the order of notes §1.3.
    pub const ALL: [ContextOperator; 16] = [
        ContextOperator::Is,
        ContextOperator::IsNot,
        ContextOperator::Set,
        ContextOperator::NotSet,
        ContextOperator::Contains,
        ContextOperator::NotContains,
        ContextOperator::AnyOf,
        ContextOperator::NotAnyOf,
        ContextOperator::Lt,
        ContextOperator::Gt,
        ContextOperator::IsTrue,
        ContextOperator::IsFalse,
        ContextOperator::After,
        ContextOperator::Before,
        ContextOperator::DateBefore,
        ContextOperator::DateAfter,
    ];

    /// The wire name (`"ANY_OF"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ContextOperator::Is => "IS",
            ContextOperator::IsNot => "IS_NOT",
            ContextOperator::AnyOf => "ANY_OF",
            ContextOperator::NotAnyOf => "NOT_ANY_OF",
            ContextOperator::Contains => "CONTAINS",
            ContextOperator::NotContains => "NOT_CONTAINS",
            ContextOperator::Gt => "GT",
            ContextOperator::Lt => "LT",
            ContextOperator::After => "AFTER",
            ContextOperator::Before => "BEFORE",
            ContextOperator::DateAfter => "DATE_AFTER",
            ContextOperator::DateBefore => "DATE_BEFORE",
            ContextOperator::Set => "SET",
            ContextOperator::NotSet => "NOT_SET",
            ContextOperator::IsTrue => "IS_TRUE",
            ContextOperator::IsFalse => "IS_FALSE",
            ContextOperator::Unknown => "UNKNOWN",
        }
    }

    /// SET / NOT_SET treat an absent field as `""` instead of reporting it missing.
    pub fn tolerates_missing(self) -> bool {
        matches!(self, ContextOperator::Set | ContextOperator::NotSet)
    }
}

/// A rule of `evaluateFlagRules`: a filter and the value returned when it is the first to match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule<V = JsValue> {
    pub filter: RuleFilter,
    /// Absent in JSON ⇒ JS `undefined`, written back as `null`.
    #[serde(default)]
    pub value: V,
}

/// One flag as served by `GET /features` (node-SDK `FlagAPIResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagDefinition {
    pub key: FlagKey,
    #[serde(default)]
    pub description: Option<String>,
    pub targeting: Targeting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigDefinition>,
}

/// Access rules on the wire: no `value`, the SDK gives each rule the value `true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targeting {
    pub version: u64,
    pub rules: Vec<TargetingRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetingRule {
    pub filter: RuleFilter,
}

/// Remote config on the wire: variants matched first-match in array order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDefinition {
    pub version: u64,
    pub variants: Vec<VariantDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantDefinition {
    pub key: String,
    /// Any JSON including `null`; note `serde_json::Value` objects are key-sorted unless the
    /// crate enables serde_json's `preserve_order`.
    #[serde(default)]
    pub payload: serde_json::Value,
    pub filter: RuleFilter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_round_trip_the_wire_json() {
        let wire = json!({"type": "group", "operator": "and", "filters": [
            {"type": "context", "field": "company.id", "operator": "IS", "values": ["acme_inc"]},
            {"type": "rolloutPercentage", "key": "huddle", "partialRolloutAttribute": "company.id",
             "partialRolloutThreshold": 100000.0},
            {"type": "negation", "filter": {"type": "constant", "value": false}}
        ]});
        let filter: RuleFilter = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&filter).unwrap(), wire);
    }

    #[test]
    fn unknown_types_and_operators_are_tolerated() {
        let f: RuleFilter = serde_json::from_value(json!({"type": "future", "x": 1})).unwrap();
        assert_eq!(f, RuleFilter::Unknown);
        let f: RuleFilter = serde_json::from_value(
            json!({"type": "context", "field": "a", "operator": "REGEX", "values": ["x"]}),
        )
        .unwrap();
        assert!(matches!(
            f,
            RuleFilter::Context {
                operator: ContextOperator::Unknown,
                ..
            }
        ));
    }
}
