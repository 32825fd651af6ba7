//! Webhook endpoints and their deliveries. The outbox is the source of truth: [`fan_out`] makes
//! one delivery per (endpoint, event) the endpoint wants (a unique pair, so a repeat adds
//! nothing), [`claim_due`] leases due deliveries to one sender (on PostgreSQL with
//! `SKIP LOCKED`, so of several replicas exactly one takes each), [`settle`] records an attempt.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::{event_from_row, ChangeEvent, EVENT_COLUMNS};
use super::{decode_json, is_postgres, CorruptRow, Store, StoreResult};
use crate::model::webhook::{wants, DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookFormat};

/// An endpoint's fields as written.
pub struct EndpointFields<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub events: &'a [String],
    pub format: WebhookFormat,
}

const ENDPOINT_COLUMNS: &str = "id, name, url, secret, events, format, paused_at, created_by, created_at";

fn endpoint_from_row(row: &AnyRow) -> StoreResult<WebhookEndpoint> {
    let id: i64 = row.try_get("id")?;
    let events: String = row.try_get("events")?;
    let format: String = row.try_get("format")?;
    let format = WebhookFormat::parse(&format).ok_or_else(|| CorruptRow {
        table: "webhook_endpoints",
        id: id.to_string(),
        reason: format!("unknown format {format:?}"),
    })?;
    Ok(WebhookEndpoint {
        id,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        events: decode_json("webhook_endpoints", id, &events)?,
        format,
        paused: row.try_get::<Option<i64>, _>("paused_at")?.is_some(),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

/// The newest outbox event's id (0 with none): where a new or resumed endpoint starts.
async fn newest_event(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM change_events")
            .fetch_one(conn)
            .await?,
    )
}

/// Stores a new endpoint, which gets the events from now on; returns its id.
pub async fn insert_endpoint(
    conn: &mut AnyConnection,
    fields: &EndpointFields<'_>,
    secret: &str,
    created_by: &str,
    now: i64,
) -> StoreResult<i64> {
    let after = newest_event(&mut *conn).await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO webhook_endpoints (name, url, secret, events, format, after_event, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(fields.name)
    .bind(fields.url)
    .bind(secret)
    .bind(events_json(fields.events))
    .bind(fields.format.as_str())
    .bind(after)
    .bind(created_by)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// The endpoint `id`, in the caller's transaction.
pub async fn endpoint_in(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<WebhookEndpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(endpoint_from_row).transpose()
}

/// Rewrites an endpoint's fields.
pub async fn update_endpoint(
    conn: &mut AnyConnection,
    id: i64,
    fields: &EndpointFields<'_>,
) -> StoreResult<()> {
    sqlx::query("UPDATE webhook_endpoints SET name = $1, url = $2, events = $3, format = $4 WHERE id = $5")
        .bind(fields.name)
        .bind(fields.url)
        .bind(events_json(fields.events))
        .bind(fields.format.as_str())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Pauses an endpoint (no deliveries are made for it, nor sent), or resumes it with the events
/// from now on: what happened while it was paused is not sent.
pub async fn set_paused(conn: &mut AnyConnection, id: i64, paused: bool, now: i64) -> StoreResult<()> {
    if paused {
        sqlx::query("UPDATE webhook_endpoints SET paused_at = $1 WHERE id = $2 AND paused_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    } else {
        let after = newest_event(&mut *conn).await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET paused_at = NULL, after_event = $1 WHERE id = $2 AND paused_at IS NOT NULL",
        )
        .bind(after)
        .bind(id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Deletes an endpoint and its deliveries.
pub async fn delete_endpoint(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many outbox events one endpoint's fan-out reads at most.
const FAN_OUT_BATCH: i64 = 1000;

/// Makes the deliveries of the events each active endpoint has not had yet and wants; returns how
/// many were made. An endpoint's mark (`after_event`) moves past events written before
/// `settled_before` only: on PostgreSQL an event id is taken before its transaction commits, so a
/// younger event may still appear below the newest one; events after the mark are read again on
/// the next pass, and the unique (endpoint, event) pair keeps a repeat from adding anything.
pub async fn fan_out(conn: &mut AnyConnection, now: i64, settled_before: i64) -> StoreResult<usize> {
    let lock = if is_postgres(conn) {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS}, after_event FROM webhook_endpoints WHERE paused_at IS NULL ORDER BY id{lock}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut made = 0;
    for row in &rows {
        let endpoint = endpoint_from_row(row)?;
        let after: i64 = row.try_get("after_event")?;
        let events: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT id, at, kind FROM change_events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(FAN_OUT_BATCH)
                .fetch_all(&mut *conn)
                .await?;
        let mut mark = after;
        let mut settled = true;
        for (id, at, kind) in events {
            settled = settled && at < settled_before;
            if settled {
                mark = id;
            }
            if !wants(&endpoint.events, &kind) {
                continue;
            }
            let inserted = sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, created_at) \
                 VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            )
            .bind(endpoint.id)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            made += inserted.rows_affected() as usize;
        }
        if mark > after {
            sqlx::query("UPDATE webhook_endpoints SET after_event = $1 WHERE id = $2")
                .bind(mark)
                .bind(endpoint.id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(made)
}

/// A delivery leased to this sender, with what it takes to send it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    pub endpoint: WebhookEndpoint,
    pub event: ChangeEvent,
}

/// Leases up to `limit` deliveries due at `now` until `lease_until`: pending, of an active
/// endpoint, not leased to another sender (a lease that ran out is free again).
pub async fn claim_due(
    conn: &mut AnyConnection,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    let lock = if is_postgres(conn) {
        " FOR UPDATE OF d SKIP LOCKED"
    } else {
        ""
    };
    let ids: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT d.id, d.attempts FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND d.leased_until <= $1 AND w.paused_at IS NULL \
         ORDER BY d.next_attempt_at, d.id LIMIT $2{lock}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(ids.len());
    for (id, attempts) in ids {
        sqlx::query("UPDATE webhook_deliveries SET leased_until = $1 WHERE id = $2")
            .bind(lease_until)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let endpoint = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = $1)"
        ))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        let event = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM change_events c LEFT JOIN environments e ON e.id = c.environment_id \
             WHERE c.id = (SELECT event_id FROM webhook_deliveries WHERE id = $1)"
        ))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        claimed.push(Claimed {
            id,
            attempts,
            endpoint: endpoint_from_row(&endpoint)?,
            event: event_from_row(&event)?,
        });
    }
    Ok(claimed)
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: i64,
    pub at: i64,
    /// The answer's HTTP status, when one came.
    pub status: Option<i64>,
    /// Why it failed; `None`: delivered.
    pub error: Option<String>,
    /// When to try again after a failure; `None`: no more attempts (failed for good).
    pub retry_at: Option<i64>,
}

/// Records an attempt of a pending delivery and ends its lease; false when it was no longer
/// pending (deleted, or settled by a sender whose lease had run out).
pub async fn settle(conn: &mut AnyConnection, attempt: &Attempt) -> StoreResult<bool> {
    let status = match (&attempt.error, attempt.retry_at) {
        (None, _) => DeliveryStatus::Delivered,
        (Some(_), Some(_)) => DeliveryStatus::Pending,
        (Some(_), None) => DeliveryStatus::Failed,
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_attempt_at = $2, \
         last_status = $3, last_error = $4, next_attempt_at = $5, leased_until = 0 \
         WHERE id = $6 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(attempt.at)
    .bind(attempt.status)
    .bind(attempt.error.as_deref())
    .bind(attempt.retry_at.unwrap_or(attempt.at))
    .bind(attempt.delivery_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sends a delivery again from the start of the retry schedule; returns its endpoint's id, `None`
/// when there is no such delivery.
pub async fn redeliver(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<Option<i64>> {
    let endpoint: Option<i64> =
        sqlx::query_scalar("SELECT endpoint_id FROM webhook_deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if endpoint.is_some() {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, leased_until = 0 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    }
    Ok(endpoint)
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<WebhookDelivery> {
    let id: i64 = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let status = DeliveryStatus::parse(&status).ok_or_else(|| CorruptRow {
        table: "webhook_deliveries",
        id: id.to_string(),
        reason: format!("unknown status {status:?}"),
    })?;
    let subject_type: String = row.try_get("subject_type")?;
    let subject_key: String = row.try_get("subject_key")?;
    Ok(WebhookDelivery {
        id,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_kind: row.try_get("kind")?,
        subject: format!("{subject_type} {subject_key}"),
        status,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Whether any endpoint is active: without one, the sender's pass writes nothing.
    pub async fn has_active_webhooks(&self) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE paused_at IS NULL LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// Every endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// The newest `limit` deliveries of an endpoint, newest first.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.endpoint_id, d.event_id, c.kind, c.subject_type, c.subject_key, d.status, d.attempts, \
             d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.created_at \
             FROM webhook_deliveries d JOIN change_events c ON c.id = d.event_id \
             WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2",
        )
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

/// Replaces an endpoint's signing secret.
pub async fn set_secret(conn: &mut AnyConnection, id: i64, secret: &str) -> StoreResult<()> {
    sqlx::query("UPDATE webhook_endpoints SET secret = $1 WHERE id = $2")
        .bind(secret)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
