//! Segments: app-wide, named sets of companies that access rules and remote config refer to.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, decode_key, Store, StoreError, StoreResult};
use crate::model::{Segment, SegmentKey};

/// A stored segment with what the engine does not need.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRecord {
    pub id: i64,
    pub segment: Segment,
    pub description: String,
}

fn segment_from_row(row: &AnyRow) -> StoreResult<SegmentRecord> {
    let id: i64 = row.try_get("id")?;
    let conditions: String = row.try_get("conditions")?;
    Ok(SegmentRecord {
        id,
        segment: Segment {
            key: decode_key::<SegmentKey>("segments", id, row.try_get("key")?)?,
            name: row.try_get("name")?,
            conditions: decode_json("segments", id, &conditions)?,
        },
        description: row.try_get("description")?,
    })
}

const COLUMNS: &str = "id, key, name, description, conditions";

impl Store {
    /// Every segment, by key.
    pub async fn segments(&self) -> StoreResult<Vec<SegmentRecord>> {
        let mut conn = self.pool().acquire().await?;
        segments_in(&mut conn).await
    }
}

/// Every segment, by key, read on the caller's connection or transaction.
pub async fn segments_in(conn: &mut AnyConnection) -> StoreResult<Vec<SegmentRecord>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM segments ORDER BY key"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(segment_from_row).collect()
}

/// One segment by key, read on the caller's connection or transaction.
pub async fn segment_in(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<SegmentRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM segments WHERE key = $1"))
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(segment_from_row).transpose()
}

fn conditions_json(segment: &Segment) -> StoreResult<String> {
    serde_json::to_string(&segment.conditions).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Inserts a segment; a taken key is a `Conflict`.
pub async fn insert_segment(
    conn: &mut AnyConnection,
    segment: &Segment,
    description: &str,
    now: i64,
) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO segments (key, name, description, conditions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(segment.key.as_str())
    .bind(&segment.name)
    .bind(description)
    .bind(conditions_json(segment)?)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| StoreError::Conflict(format!("a segment with the key {} already exists", segment.key)))
}

/// Replaces a segment's name, description and conditions.
pub async fn update_segment(
    conn: &mut AnyConnection,
    segment: &Segment,
    description: &str,
    now: i64,
) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE segments SET name = $1, description = $2, conditions = $3, updated_at = $4 WHERE key = $5",
    )
    .bind(&segment.name)
    .bind(description)
    .bind(conditions_json(segment)?)
    .bind(now)
    .bind(segment.key.as_str())
    .execute(conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("segment {}", segment.key)));
    }
    Ok(())
}
