//! The audit log as the admin UI reads it: filtered by who, what and when, newest first, one page
//! at a time.
//!
//! Absent filters are passed as values that match everything (`''`, the widest time range) rather
//! than as NULL, so one SQL text serves both backends: PostgreSQL cannot infer the type of a
//! parameter that is only ever compared with NULL.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreResult};

/// Which entries to return. Empty texts and `None` times do not filter.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exactly this actor label (a member's email, "command line", …).
    pub actor: String,
    /// Case-insensitive text found in `"<subject type> <subject key>"`.
    pub subject: String,
    /// Entries at or after this time (epoch ms).
    pub from: Option<i64>,
    /// Entries at or before this time (epoch ms).
    pub to: Option<i64>,
}

/// One entry with the key of its environment, if it concerns one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor_label: String,
    pub action: String,
    pub subject_type: String,
    pub subject_key: String,
    pub environment_key: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

const FILTER: &str = "($1 = '' OR a.actor_label = $1) \
     AND ($2 = '' OR LOWER(a.subject_type || ' ' || a.subject_key) LIKE $2 ESCAPE '\\') \
     AND a.at >= $3 AND a.at <= $4";

/// The bind values of [`FILTER`], in placeholder order.
fn filter_values(filter: &AuditFilter) -> (String, String, i64, i64) {
    let needle = filter.subject.trim().to_lowercase();
    let pattern = if needle.is_empty() {
        String::new()
    } else {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    };
    (
        filter.actor.trim().to_string(),
        pattern,
        filter.from.unwrap_or(i64::MIN),
        filter.to.unwrap_or(i64::MAX),
    )
}

fn record_from_row(row: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_label: row.try_get("actor_label")?,
        action: row.try_get("action")?,
        subject_type: row.try_get("subject_type")?,
        subject_key: row.try_get("subject_key")?,
        environment_key: row.try_get("environment_key")?,
        before: parse(row.try_get("before_json")?),
        after: parse(row.try_get("after_json")?),
    })
}

impl Store {
    /// The entries matching `filter`, newest first, skipping `offset` and returning at most `limit`.
    pub async fn filtered_audit_entries(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let (actor, subject, from, to) = filter_values(filter);
        let sql = format!(
            "SELECT a.id, a.at, a.actor_label, a.action, a.subject_type, a.subject_key, \
             e.key AS environment_key, a.before_json, a.after_json \
             FROM audit_log a LEFT JOIN environments e ON e.id = a.environment_id \
             WHERE {FILTER} ORDER BY a.at DESC, a.id DESC LIMIT $5 OFFSET $6"
        );
        let rows = sqlx::query(&sql)
            .bind(actor)
            .bind(subject)
            .bind(from)
            .bind(to)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    /// How many entries match `filter`.
    pub async fn filtered_audit_count(&self, filter: &AuditFilter) -> StoreResult<i64> {
        let (actor, subject, from, to) = filter_values(filter);
        let sql = format!("SELECT COUNT(*) FROM audit_log a WHERE {FILTER}");
        Ok(sqlx::query_scalar(&sql)
            .bind(actor)
            .bind(subject)
            .bind(from)
            .bind(to)
            .fetch_one(self.pool())
            .await?)
    }

    /// Every actor label that appears in the log, sorted, for the "who" filter.
    pub async fn audit_actor_labels(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT actor_label FROM audit_log ORDER BY actor_label")
                .fetch_all(self.pool())
                .await?,
        )
    }
}
