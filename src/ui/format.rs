//! Formatting shared by server and browser (no clock, no locale: the same text on both sides,
//! so hydration matches).

/// `2026-11-25 14:03 UTC` for epoch milliseconds.
pub fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `2026-11-25` for epoch milliseconds (UTC).
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One line of text per access mode: "No one", "Everyone", "2 companies · 1 segment · 25 %".
#[cfg(feature = "ssr")]
pub fn access_summary(rules: &crate::model::AccessRules) -> String {
    use crate::model::AccessRules;
    match rules {
        AccessRules::NoOne => "No one".into(),
        AccessRules::Everyone => "Everyone".into(),
        AccessRules::Some(some) => {
            let count = |n: usize, one: &str, many: &str| match n {
                0 => None,
                1 => Some(format!("1 {one}")),
                n => Some(format!("{n} {many}")),
            };
            let mut parts: Vec<String> = [
                count(some.companies.len(), "company", "companies"),
                count(some.users.len(), "user", "users"),
                count(some.segments.len(), "segment", "segments"),
            ]
            .into_iter()
            .flatten()
            .collect();
            for rule in &some.rules {
                let conditions = rule.conditions.len();
                let mut text = match conditions {
                    0 => "anyone".to_string(),
                    1 => "1 condition".to_string(),
                    n => format!("{n} conditions"),
                };
                if !rule.rollout_percentage.is_full() {
                    text.push_str(&format!(" at {} %", rule.rollout_percentage.as_f64()));
                }
                parts.push(text);
            }
            if parts.is_empty() {
                "No one".into()
            } else {
                parts.join(" · ")
            }
        }
    }
}

/// The `page` of a page's query string (0 when absent or not a number).
pub(crate) fn page_param(query: &leptos_router::params::ParamsMap) -> usize {
    query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(datetime(1_764_079_380_000), "2025-11-25 14:03 UTC");
        assert_eq!(datetime(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
