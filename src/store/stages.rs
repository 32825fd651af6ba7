//! Release stages: the app-wide, ordered steps a flag moves through.

use sqlx::Row;

use super::{Store, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseStage {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub sort_order: i64,
}

impl Store {
    /// Every stage in release order.
    pub async fn release_stages(&self) -> StoreResult<Vec<ReleaseStage>> {
        let rows =
            sqlx::query("SELECT id, name, color, sort_order FROM release_stages ORDER BY sort_order, id")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| {
                Ok(ReleaseStage {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    color: row.try_get("color")?,
                    sort_order: row.try_get("sort_order")?,
                })
            })
            .collect()
    }
}
