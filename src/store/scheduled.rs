//! Scheduled changes: planned changes to a flag, their due time and what became of them. The
//! scheduler finds due rows with [`Store::due_changes`] and claims each inside the change
//! pipeline's transaction with [`claim_due`]: on PostgreSQL a row lock taken with `SKIP LOCKED`,
//! so of several replicas exactly one applies a change, and its status moves on in the same
//! commit as the change itself.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, is_postgres, CorruptRow, Store, StoreError, StoreResult};
use crate::model::{PlannedChange, ScheduleStatus, ScheduledChange};

const COLUMNS: &str = "s.id, f.key AS flag_key, s.planned, s.due_at, s.status, s.outcome, s.created_by, \
     s.created_label, s.created_at, s.settled_at, s.request_id";

fn scheduled_from_row(row: &AnyRow) -> StoreResult<ScheduledChange> {
    let id: i64 = row.try_get("id")?;
    let planned: String = row.try_get("planned")?;
    let status: String = row.try_get("status")?;
    let status = ScheduleStatus::parse(&status).ok_or_else(|| CorruptRow {
        table: "scheduled_changes",
        id: id.to_string(),
        reason: format!("unknown status {status:?}"),
    })?;
    Ok(ScheduledChange {
        id,
        flag: row.try_get("flag_key")?,
        planned: decode_json::<PlannedChange>("scheduled_changes", id, &planned)?,
        due_at: row.try_get("due_at")?,
        status,
        outcome: row.try_get("outcome")?,
        created_by: row.try_get("created_by")?,
        created_label: row.try_get("created_label")?,
        created_at: row.try_get("created_at")?,
        settled_at: row.try_get("settled_at")?,
        request_id: row.try_get("request_id")?,
    })
}

/// A due change as the scheduler sees it before claiming it: its id and author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub id: i64,
    /// The author: a member (`None` once removed) when `by_member`, else the command line.
    pub by_member: bool,
    pub created_by: Option<i64>,
    pub created_label: String,
}

impl Due {
    /// From a row with the columns `id`, `created_kind`, `created_by` and `created_label`.
    pub fn from_row(row: &AnyRow) -> StoreResult<Due> {
        Ok(Due {
            id: row.try_get("id")?,
            by_member: row.try_get::<String, _>("created_kind")? == "member",
            created_by: row.try_get("created_by")?,
            created_label: row.try_get("created_label")?,
        })
    }
}

/// The `created_kind` column of work authored by `member`: a member, or (`None`) the operator.
pub fn created_kind(member: Option<i64>) -> &'static str {
    if member.is_some() {
        "member"
    } else {
        "operator"
    }
}

impl Store {
    /// A flag's pending changes (soonest first) and its last `settled` others (latest first).
    pub async fn scheduled_for_flag(&self, flag_id: i64, settled: i64) -> StoreResult<Vec<ScheduledChange>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id \
             WHERE s.flag_id = $1 AND s.status = 'pending' ORDER BY s.due_at, s.id"
        ))
        .bind(flag_id)
        .fetch_all(self.pool())
        .await?;
        let mut changes: Vec<ScheduledChange> =
            rows.iter().map(scheduled_from_row).collect::<Result<_, _>>()?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id \
             WHERE s.flag_id = $1 AND s.status <> 'pending' ORDER BY s.settled_at DESC, s.id DESC LIMIT $2"
        ))
        .bind(flag_id)
        .bind(settled)
        .fetch_all(self.pool())
        .await?;
        for row in &rows {
            changes.push(scheduled_from_row(row)?);
        }
        Ok(changes)
    }

    /// Every pending change, soonest first.
    pub async fn pending_changes(&self) -> StoreResult<Vec<ScheduledChange>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id \
             WHERE s.status = 'pending' ORDER BY s.due_at, s.id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(scheduled_from_row).collect()
    }

    /// A member's changes that were not applied (conflicts and failures) since `since`.
    pub async fn unapplied_changes(&self, author: i64, since: i64) -> StoreResult<Vec<ScheduledChange>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id \
             WHERE s.created_by = $1 AND s.status IN ('conflict', 'failed') AND s.settled_at >= $2 \
             ORDER BY s.settled_at DESC, s.id DESC"
        ))
        .bind(author)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(scheduled_from_row).collect()
    }

    /// Up to `limit` pending changes due at `now`, soonest first.
    pub async fn due_changes(&self, now: i64, limit: i64) -> StoreResult<Vec<Due>> {
        let rows = sqlx::query(
            "SELECT id, created_kind, created_by, created_label FROM scheduled_changes \
             WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(Due::from_row).collect()
    }
}

/// Stores a planned change of the flag `flag_id`; returns its id.
pub async fn insert_scheduled(
    conn: &mut AnyConnection,
    (flag_id, environment_id, request_id): (i64, Option<i64>, Option<i64>),
    planned: &PlannedChange,
    due_at: i64,
    (created_by, created_label): (Option<i64>, &str),
    now: i64,
) -> StoreResult<i64> {
    let planned = serde_json::to_string(planned).map_err(|e| StoreError::Encode(e.to_string()))?;
    let id = sqlx::query_scalar(
        "INSERT INTO scheduled_changes \
         (flag_id, environment_id, planned, due_at, created_kind, created_by, created_label, created_at, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(flag_id)
    .bind(environment_id)
    .bind(planned)
    .bind(due_at)
    .bind(created_kind(created_by))
    .bind(created_by)
    .bind(created_label)
    .bind(now)
    .bind(request_id)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The scheduled change `id`, read inside the caller's transaction; locked on PostgreSQL (so its
/// status cannot change under the caller).
pub async fn scheduled_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ScheduledChange>> {
    let lock = if is_postgres(conn) { " FOR UPDATE OF s" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id WHERE s.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(scheduled_from_row).transpose()
}

/// Claims the pending change `id` if it is due at `now`: `None` when it is not due, no longer
/// pending, or (PostgreSQL) being applied by another replica right now. Claimed, its row stays
/// locked until the caller's transaction ends.
pub async fn claim_due(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<Option<ScheduledChange>> {
    let lock = if is_postgres(conn) {
        " FOR UPDATE OF s SKIP LOCKED"
    } else {
        ""
    };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM scheduled_changes s JOIN flags f ON f.id = s.flag_id \
         WHERE s.id = $1 AND s.status = 'pending' AND s.due_at <= $2{lock}"
    ))
    .bind(id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(scheduled_from_row).transpose()
}

/// Moves a pending change to `status`, with `outcome` (why, or what it did), settled by `label`.
/// Returns false when it was no longer pending.
pub async fn settle(
    conn: &mut AnyConnection,
    id: i64,
    status: ScheduleStatus,
    outcome: &str,
    label: &str,
    now: i64,
) -> StoreResult<bool> {
    let updated = sqlx::query(
        "UPDATE scheduled_changes SET status = $1, outcome = $2, settled_at = $3, settled_label = $4 \
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(outcome)
    .bind(now)
    .bind(label)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Cancels the pending scheduled change of a change request, if it has one.
pub async fn cancel_for_request(
    conn: &mut AnyConnection,
    request_id: i64,
    label: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE scheduled_changes SET status = 'cancelled', outcome = 'its change request was closed', \
         settled_at = $1, settled_label = $2 WHERE request_id = $3 AND status = 'pending'",
    )
    .bind(now)
    .bind(label)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}
