//! First-start defaults: three environments with their publishable keys and four release stages.
//!
//! Seeding is idempotent and safe when several replicas start at once: rows are inserted with
//! `ON CONFLICT DO NOTHING` and a key is only created for an environment this call inserted.

use rand::distributions::{Alphanumeric, DistString};

use super::{Store, StoreResult};

/// (key, name, is_production, publishable key prefix)
const DEFAULT_ENVIRONMENTS: [(&str, &str, bool, &str); 3] = [
    ("production", "Production", true, "prod"),
    ("staging", "Staging", false, "stag"),
    ("development", "Development", false, "dev"),
];

/// (name, colour)
const DEFAULT_STAGES: [(&str, &str); 4] = [
    ("In development", "#6b7280"),
    ("Internal", "#7c3aed"),
    ("Beta", "#d97706"),
    ("General availability", "#059669"),
];

/// What a seeding run created.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub environments: usize,
    pub stages: usize,
}

/// A publishable key in Reflag's shape, e.g. `pub_prod_Cqx4DGo1lk3Lcct5NHLjWy`.
pub fn new_publishable_key(prefix: &str) -> String {
    format!(
        "pub_{prefix}_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 22)
    )
}

impl Store {
    /// Creates the default environments and stages where none exist yet; `now` stamps them.
    pub async fn seed_defaults(&self, now: i64) -> StoreResult<SeedReport> {
        let mut report = SeedReport::default();
        let mut tx = self.pool().begin().await?;

        let environment_count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM environments")
            .fetch_one(&mut *tx)
            .await?;
        if environment_count == 0 {
            for (order, (key, name, is_production, prefix)) in DEFAULT_ENVIRONMENTS.iter().enumerate() {
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO environments (key, name, sort_order, is_production, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING RETURNING id",
                )
                .bind(*key)
                .bind(*name)
                .bind(order as i64)
                .bind(i64::from(*is_production))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = id {
                    let value = new_publishable_key(prefix);
                    sqlx::query(
                        "INSERT INTO api_keys (environment_id, kind, public_value, prefix, created_at) \
                         VALUES ($1, 'publishable', $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(&value)
                    .bind(&value[..12])
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    report.environments += 1;
                }
            }
        }

        let stage_count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM release_stages")
            .fetch_one(&mut *tx)
            .await?;
        if stage_count == 0 {
            for (order, (name, color)) in DEFAULT_STAGES.iter().enumerate() {
                let inserted = sqlx::query(
                    "INSERT INTO release_stages (name, color, sort_order, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                )
                .bind(*name)
                .bind(*color)
                .bind(order as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                report.stages += inserted.rows_affected() as usize;
            }
        }

        tx.commit().await?;
        Ok(report)
    }
}
