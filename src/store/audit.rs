//! The record of changes: the audit log people read (who changed what, when, with the state
//! before and after) and the change-event outbox machines read (the same change as an event, for
//! notifications, webhooks and usage markers). Both rows of a change are written by
//! [`insert_change`], in the change's own transaction.
//!
//! The audit log as the admin UI reads it is filtered by who, what and when, newest first, one
//! page at a time. Absent filters are passed as values that match everything (`''`, the widest
//! time range) rather than as NULL, so one SQL text serves both backends: PostgreSQL cannot infer
//! the type of a parameter that is only ever compared with NULL.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, Store, StoreResult};

/// A change as the audit log and the outbox record it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_key: &'a str,
    pub environment_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Record<'a> {
    /// A change of a flag, in one environment or (`None`) in all of them.
    pub fn flag(action: &'a str, key: &'a str, environment_id: Option<i64>) -> Self {
        Record {
            action,
            subject_type: "flag",
            subject_key: key,
            environment_id,
            before: None,
            after: None,
        }
    }

    pub fn of(action: &'a str, subject_type: &'a str, subject_key: &'a str) -> Self {
        Record {
            action,
            subject_type,
            subject_key,
            environment_id: None,
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, before: impl Into<Option<Value>>) -> Self {
        self.before = before.into();
        self
    }

    pub fn after(mut self, after: impl Into<Option<Value>>) -> Self {
        self.after = after.into();
        self
    }

    pub fn in_environment(mut self, environment_id: i64) -> Self {
        self.environment_id = Some(environment_id);
        self
    }
}

/// Writes a change's audit entry and its outbox event; returns the event's id.
pub async fn insert_change(
    conn: &mut AnyConnection,
    (actor_id, actor_label): (Option<i64>, &str),
    change: &Record<'_>,
    now: i64,
) -> StoreResult<i64> {
    let audit_id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (at, actor_id, actor_label, action, subject_type, subject_key, environment_id, before_json, after_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(now)
    .bind(actor_id)
    .bind(actor_label)
    .bind(change.action)
    .bind(change.subject_type)
    .bind(change.subject_key)
    .bind(change.environment_id)
    .bind(change.before.as_ref().map(Value::to_string))
    .bind(change.after.as_ref().map(Value::to_string))
    .fetch_one(&mut *conn)
    .await?;
    let payload = serde_json::json!({ "before": change.before, "after": change.after });
    Ok(sqlx::query_scalar(
        "INSERT INTO change_events (at, audit_id, kind, subject_type, subject_key, environment_id, actor_id, actor_label, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(now)
    .bind(audit_id)
    .bind(change.action)
    .bind(change.subject_type)
    .bind(change.subject_key)
    .bind(change.environment_id)
    .bind(actor_id)
    .bind(actor_label)
    .bind(payload.to_string())
    .fetch_one(conn)
    .await?)
}

/// One event of the outbox.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeEvent {
    pub id: i64,
    pub at: i64,
    pub audit_id: i64,
    pub kind: String,
    pub subject_type: String,
    pub subject_key: String,
    pub environment_key: Option<String>,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    /// `{"before": …, "after": …}`.
    pub payload: Value,
}

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

fn parse_json(id: i64, text: Option<String>) -> StoreResult<Option<Value>> {
    Ok(text.map(|t| decode_json("audit_log", id, &t)).transpose()?)
}

fn record_from_row(row: &AnyRow) -> StoreResult<AuditRecord> {
    let id: i64 = row.try_get("id")?;
    Ok(AuditRecord {
        id,
        at: row.try_get("at")?,
        actor_label: row.try_get("actor_label")?,
        action: row.try_get("action")?,
        subject_type: row.try_get("subject_type")?,
        subject_key: row.try_get("subject_key")?,
        environment_key: row.try_get("environment_key")?,
        before: parse_json(id, row.try_get("before_json")?)?,
        after: parse_json(id, row.try_get("after_json")?)?,
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
        rows.iter().map(record_from_row).collect()
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

    /// The outbox events after `after_id`, oldest first, at most `limit`.
    pub async fn change_events(&self, after_id: i64, limit: i64) -> StoreResult<Vec<ChangeEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM change_events c \
             LEFT JOIN environments e ON e.id = c.environment_id \
             WHERE c.id > $1 ORDER BY c.id LIMIT $2"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// The columns [`event_from_row`] reads, of `change_events c` joined with `environments e`.
pub const EVENT_COLUMNS: &str = "c.id, c.at, c.audit_id, c.kind, c.subject_type, c.subject_key, \
     e.key AS environment_key, c.actor_id, c.actor_label, c.payload";

pub fn event_from_row(row: &AnyRow) -> StoreResult<ChangeEvent> {
    let id: i64 = row.try_get("id")?;
    let payload: String = row.try_get("payload")?;
    Ok(ChangeEvent {
        id,
        at: row.try_get("at")?,
        audit_id: row.try_get("audit_id")?,
        kind: row.try_get("kind")?,
        subject_type: row.try_get("subject_type")?,
        subject_key: row.try_get("subject_key")?,
        environment_key: row.try_get("environment_key")?,
        actor_id: row.try_get("actor_id")?,
        actor_label: row.try_get("actor_label")?,
        payload: decode_json("change_events", id, &payload)?,
    })
}
