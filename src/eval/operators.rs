//! The scalar comparison `evaluate(fieldValue, operator, values)` of the reference (notes §3.4).
//!
//! Kept as a plain function over strings so that it can be checked against the `operator_eval`
//! vectors directly and reused by the explainer; the hot path uses the pre-parsed form in
//! `engine`, which must agree with this function (a property test checks it).

use super::jsdate::{days_ago, parse_js_date};
use super::jsnum::parse_js_number;
use crate::model::ContextOperator;

/// `evaluate(fieldValue, operator, values)` with the clock at `now_ms` (epoch milliseconds, UTC).
///
/// Divergence by design: CONTAINS/NOT_CONTAINS without a value make the reference throw (aborting
/// the whole evaluation); here they are `false`.
pub fn evaluate_operator(
    field_value: &str,
    operator: ContextOperator,
    values: &[String],
    now_ms: i64,
) -> bool {
    let value = values.first().map(String::as_str);
    match operator {
        ContextOperator::Contains => value.is_some_and(|v| contains_ci(field_value, &v.to_lowercase())),
        ContextOperator::NotContains => value.is_some_and(|v| !contains_ci(field_value, &v.to_lowercase())),
        ContextOperator::Gt => compare_numbers(field_value, value, |a, b| a > b),
        ContextOperator::Lt => compare_numbers(field_value, value, |a, b| a < b),
        ContextOperator::After | ContextOperator::Before => {
            let days = value.map_or(f64::NAN, parse_js_number);
            // Epoch milliseconds of any real date are exact in f64.
            relative_date(field_value, operator, days_ago(now_ms as f64, days))
        }
        ContextOperator::DateAfter => {
            let v = value.map_or(f64::NAN, parse_js_date);
            parse_js_date(field_value) >= v
        }
        ContextOperator::DateBefore => {
            let v = value.map_or(f64::NAN, parse_js_date);
            parse_js_date(field_value) <= v
        }
        ContextOperator::Set => !field_value.is_empty(),
        ContextOperator::NotSet => field_value.is_empty(),
        ContextOperator::Is => value == Some(field_value),
        ContextOperator::IsNot => value != Some(field_value),
        ContextOperator::AnyOf => values.iter().any(|v| v == field_value),
        ContextOperator::NotAnyOf => !values.iter().any(|v| v == field_value),
        ContextOperator::IsTrue => field_value == "true",
        ContextOperator::IsFalse => field_value == "false",
        ContextOperator::Unknown => false,
    }
}

/// `fieldValue.toLowerCase().includes(needle_lower)`; Rust's `to_lowercase` applies the same
/// Unicode default mapping (including final sigma) as JS `toLowerCase`.
pub(crate) fn contains_ci(field_value: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if field_value.is_ascii() {
        // Fast path without allocation; ASCII lower-casing is exact for ASCII haystacks, and an
        // ASCII haystack cannot contain a non-ASCII needle either way.
        let hay = field_value.as_bytes();
        let needle = needle_lower.as_bytes();
        return hay.len() >= needle.len()
            && hay
                .windows(needle.len())
                .any(|w| w.iter().zip(needle).all(|(a, b)| a.to_ascii_lowercase() == *b));
    }
    field_value.to_lowercase().contains(needle_lower)
}

/// GT/LT: JS `Number()` on both sides; NaN on either side ⇒ false (also true of `>`/`<` on NaN).
fn compare_numbers(field_value: &str, value: Option<&str>, cmp: impl Fn(f64, f64) -> bool) -> bool {
    let v = value.map_or(f64::NAN, parse_js_number);
    cmp(parse_js_number(field_value), v)
}

/// AFTER (`date > daysAgo`) / BEFORE (`date < daysAgo`); NaN anywhere ⇒ false.
fn relative_date(field_value: &str, operator: ContextOperator, threshold_ms: f64) -> bool {
    let date = parse_js_date(field_value);
    if operator == ContextOperator::After {
        date > threshold_ms
    } else {
        date < threshold_ms
    }
}
