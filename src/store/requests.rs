//! Change requests: a change to a protected environment, its approvals and what became of it.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, is_postgres, CorruptRow, Store, StoreError, StoreResult};
use crate::model::{ChangeRequest, PlannedChange, RequestStatus};

/// The statuses of a request that is not applied, rejected or cancelled yet.
const OPEN: &str = "'draft', 'review', 'approved', 'scheduled'";

const COLUMNS: &str = "r.id, f.key AS flag_key, r.environment_id, r.planned, r.note, r.status, r.outcome, \
     r.created_by, r.created_label, r.created_at";

fn request_from_row(row: &AnyRow) -> StoreResult<ChangeRequest> {
    let id: i64 = row.try_get("id")?;
    let planned: String = row.try_get("planned")?;
    let status: String = row.try_get("status")?;
    let status = RequestStatus::parse(&status).ok_or_else(|| CorruptRow {
        table: "change_requests",
        id: id.to_string(),
        reason: format!("unknown status {status:?}"),
    })?;
    Ok(ChangeRequest {
        id,
        flag: row.try_get("flag_key")?,
        environment_id: row.try_get("environment_id")?,
        planned: decode_json::<PlannedChange>("change_requests", id, &planned)?,
        note: row.try_get("note")?,
        status,
        outcome: row.try_get("outcome")?,
        created_by: row.try_get("created_by")?,
        created_label: row.try_get("created_label")?,
        created_at: row.try_get("created_at")?,
        approvals: Vec::new(),
    })
}

/// Reads the requests `sql` selects (with `COLUMNS`), with their approvals.
async fn read(conn: &mut AnyConnection, sql: &str, bind: i64) -> StoreResult<Vec<ChangeRequest>> {
    let rows = sqlx::query(sql).bind(bind).fetch_all(&mut *conn).await?;
    let mut requests: Vec<ChangeRequest> = rows.iter().map(request_from_row).collect::<Result<_, _>>()?;
    for request in &mut requests {
        request.approvals = approvals_in(conn, request.id).await?;
    }
    Ok(requests)
}

async fn approvals_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT member_id, member_label FROM change_request_approvals WHERE request_id = $1 ORDER BY at",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("member_id")?, row.try_get("member_label")?)))
        .collect()
}

impl Store {
    /// A flag's open requests (oldest first), then its ten latest closed ones.
    pub async fn requests_for_flag(&self, flag_id: i64) -> StoreResult<Vec<ChangeRequest>> {
        let mut conn = self.pool().acquire().await?;
        let base = format!(
            "SELECT {COLUMNS} FROM change_requests r JOIN flags f ON f.id = r.flag_id WHERE r.flag_id = $1"
        );
        let mut open = read(
            &mut conn,
            &format!("{base} AND r.status IN ({OPEN}) ORDER BY r.id"),
            flag_id,
        )
        .await?;
        let closed =
            format!("{base} AND r.status NOT IN ({OPEN}) ORDER BY r.updated_at DESC, r.id DESC LIMIT 10");
        open.extend(read(&mut conn, &closed, flag_id).await?);
        Ok(open)
    }

    /// Every request in review or approved (oldest first): what reviewers see.
    pub async fn open_requests(&self) -> StoreResult<Vec<ChangeRequest>> {
        let mut conn = self.pool().acquire().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM change_requests r JOIN flags f ON f.id = r.flag_id \
             WHERE r.status IN ('review', 'approved') AND r.id > $1 ORDER BY r.id"
        );
        read(&mut conn, &sql, 0).await
    }
}

/// The request `id`, locked (PostgreSQL) until the caller's transaction ends.
pub async fn request_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ChangeRequest>> {
    let lock = if is_postgres(conn) { " FOR UPDATE OF r" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS} FROM change_requests r JOIN flags f ON f.id = r.flag_id WHERE r.id = $1{lock}"
    );
    Ok(read(conn, &sql, id).await?.into_iter().next())
}

pub async fn insert_request(
    conn: &mut AnyConnection,
    (flag_id, environment_id): (i64, i64),
    (planned, status): (&PlannedChange, RequestStatus),
    note: &str,
    (created_by, created_label): (Option<i64>, &str),
    now: i64,
) -> StoreResult<i64> {
    let planned = serde_json::to_string(planned).map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(sqlx::query_scalar(
        "INSERT INTO change_requests (flag_id, environment_id, planned, note, status, created_by, created_label, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(flag_id)
    .bind(environment_id)
    .bind(planned)
    .bind(note)
    .bind(status.as_str())
    .bind(created_by)
    .bind(created_label)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Replaces a request's change and note and withdraws its approvals; it is in `status` after.
pub async fn edit_request(
    conn: &mut AnyConnection,
    id: i64,
    (planned, status): (&PlannedChange, RequestStatus),
    note: &str,
    now: i64,
) -> StoreResult<()> {
    let planned = serde_json::to_string(planned).map_err(|e| StoreError::Encode(e.to_string()))?;
    sqlx::query(
        "UPDATE change_requests SET planned = $1, note = $2, status = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(planned)
    .bind(note)
    .bind(status.as_str())
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM change_request_approvals WHERE request_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a member's approval (once); returns how many the request has now.
pub async fn approve(
    conn: &mut AnyConnection,
    id: i64,
    (member_id, label): (i64, &str),
    now: i64,
) -> StoreResult<usize> {
    sqlx::query(
        "INSERT INTO change_request_approvals (request_id, member_id, member_label, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id, member_id) DO NOTHING",
    )
    .bind(id)
    .bind(member_id)
    .bind(label)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(approvals_in(conn, id).await?.len())
}

pub async fn set_status(
    conn: &mut AnyConnection,
    id: i64,
    status: RequestStatus,
    outcome: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE change_requests SET status = $1, outcome = $2, updated_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(outcome)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
