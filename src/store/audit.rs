//! The audit log: who changed what, when, with the state before and after.

use sqlx::{AnyConnection, Row};

use super::{Store, StoreResult};

/// One change to record. `before`/`after` are JSON documents of the subject.
#[derive(Clone, Debug, Default)]
pub struct NewAuditEntry<'a> {
    pub actor_id: Option<i64>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_key: &'a str,
    pub environment_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor_label: String,
    pub action: String,
    pub subject_type: String,
    pub subject_key: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub async fn insert_audit(conn: &mut AnyConnection, entry: NewAuditEntry<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_label, action, subject_type, subject_key, environment_id, before_json, after_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(now)
    .bind(entry.actor_id)
    .bind(entry.actor_label)
    .bind(entry.action)
    .bind(entry.subject_type)
    .bind(entry.subject_key)
    .bind(entry.environment_id)
    .bind(entry.before.map(|v| v.to_string()))
    .bind(entry.after.map(|v| v.to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The newest entries first, optionally only one action.
    pub async fn audit_entries(&self, action: Option<&str>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor_label, action, subject_type, subject_key, before_json, after_json FROM audit_log \
             WHERE ($1 IS NULL OR action = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(action)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor_label: row.try_get("actor_label")?,
                    action: row.try_get("action")?,
                    subject_type: row.try_get("subject_type")?,
                    subject_key: row.try_get("subject_key")?,
                    before: parse(row.try_get("before_json")?),
                    after: parse(row.try_get("after_json")?),
                })
            })
            .collect()
    }
}
