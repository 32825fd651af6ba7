//! Usage rows: the counts each server adds in batches (`runtime::usage`), read back per flag and
//! day, and pruned after their retention. Counts are added (`x = x + excluded.x`), so replicas
//! that flush the same hour add up; a day's sketches are each replica's own row, replaced on every
//! flush and merged when read, so two replicas never lose (or wait for) each other's companies.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyConnection, Row};

use super::{Store, StoreResult};
use crate::service::runtime::sketch::Sketch;
use crate::service::runtime::usage::{DailyExposure, HourlyCount, LastChecked, UsageBatch};

/// Rows per multi-row `INSERT`. SQLite finds each bound parameter by walking the statement's
/// list of parameter names, so binding costs grow with the square of the parameters in one
/// statement: at 200 rows of 8 values that was a twentieth of a loaded server's instructions
/// (callgrind); 50 rows keep the statements few and the binding cheap.
const CHUNK: usize = 50;

/// `($1, $2, …), (…)` for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn add_hourly(conn: &mut AnyConnection, rows: &[HourlyCount]) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO usage_hourly (environment_id, flag_key, hour, outcome, evaluated, reported) \
             VALUES {} ON CONFLICT (environment_id, flag_key, hour, outcome) DO UPDATE SET \
             evaluated = usage_hourly.evaluated + excluded.evaluated, \
             reported = usage_hourly.reported + excluded.reported",
            placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.environment_id)
                .bind(row.flag_key.as_str())
                .bind(row.hour)
                .bind(row.outcome.as_str())
                .bind(row.evaluated)
                .bind(row.reported);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn add_checked(conn: &mut AnyConnection, rows: &[LastChecked]) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO usage_last_checked (environment_id, flag_key, at) VALUES {} \
             ON CONFLICT (environment_id, flag_key) DO UPDATE SET at = CASE \
             WHEN excluded.at > usage_last_checked.at THEN excluded.at ELSE usage_last_checked.at END",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.environment_id)
                .bind(row.flag_key.as_str())
                .bind(row.at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces this replica's sketches of each (environment, flag, day): the batch holds the
/// replica's whole day so far, so nothing is read, merged or locked here, and replicas never wait
/// for each other.
async fn put_exposed(conn: &mut AnyConnection, replica: &str, rows: &[DailyExposure]) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO usage_exposures (environment_id, flag_key, day, replica, companies, users) \
             VALUES {} ON CONFLICT (environment_id, flag_key, day, replica) DO UPDATE SET \
             companies = excluded.companies, users = excluded.users",
            placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.environment_id)
                .bind(row.flag_key.as_str())
                .bind(row.day)
                .bind(replica)
                .bind(row.companies.as_slice())
                .bind(row.users.as_slice());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// One day of a flag's usage in one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// Start of the UTC day (epoch ms).
    pub day: i64,
    pub enabled: i64,
    pub disabled: i64,
    /// Config variants served, by key.
    pub variants: BTreeMap<String, i64>,
    pub companies: i64,
    pub users: i64,
}

/// A flag's usage over some days: per environment and day, and the distinct companies and
/// users over all those days (the day sketches merged).
#[derive(Clone, Debug, Default)]
pub struct UsageRows {
    /// (environment id, day) → counts.
    pub days: BTreeMap<(i64, i64), DayCounts>,
    /// Distinct over the period, per environment.
    pub companies: HashMap<i64, i64>,
    pub users: HashMap<i64, i64>,
}

/// Adds a batch of counts in the caller's transaction.
pub async fn add_usage(conn: &mut AnyConnection, batch: &UsageBatch) -> StoreResult<()> {
    add_hourly(conn, &batch.hourly).await?;
    put_exposed(conn, &batch.replica, &batch.exposed).await?;
    add_checked(conn, &batch.checked).await
}

/// Deletes hourly rows older than `hourly_before` and daily rows older than `daily_before`
/// (epoch ms); returns how many of each.
pub async fn prune_usage(
    conn: &mut AnyConnection,
    hourly_before: i64,
    daily_before: i64,
) -> StoreResult<(u64, u64)> {
    let hourly = sqlx::query("DELETE FROM usage_hourly WHERE hour < $1")
        .bind(hourly_before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let daily = sqlx::query("DELETE FROM usage_exposures WHERE day < $1")
        .bind(daily_before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok((hourly, daily))
}

impl Store {
    /// A flag's usage from `since` (epoch ms, a day's start) on, in every environment.
    pub async fn flag_usage(&self, flag_key: &str, since: i64) -> StoreResult<UsageRows> {
        let mut usage = UsageRows::default();
        let hourly = sqlx::query(
            "SELECT environment_id, (hour / 86400000) * 86400000 AS day, outcome, \
             CAST(SUM(evaluated + reported) AS BIGINT) AS checks FROM usage_hourly \
             WHERE flag_key = $1 AND hour >= $2 GROUP BY environment_id, (hour / 86400000) * 86400000, outcome",
        )
        .bind(flag_key)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        for row in hourly {
            let (environment_id, day): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let outcome: String = row.try_get(2)?;
            let checks: i64 = row.try_get(3)?;
            let counts = usage.days.entry((environment_id, day)).or_default();
            counts.day = day;
            match outcome.as_str() {
                "enabled" => counts.enabled += checks,
                "disabled" => counts.disabled += checks,
                other => {
                    let variant = other.strip_prefix("variant:").unwrap_or(other);
                    *counts.variants.entry(variant.to_string()).or_default() += checks;
                }
            }
        }
        let daily = sqlx::query(
            "SELECT environment_id, day, companies, users FROM usage_exposures \
             WHERE flag_key = $1 AND day >= $2",
        )
        .bind(flag_key)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        // Each replica's row of a day holds its own ids: a day's count is their union, and so is
        // the period's.
        let mut days: BTreeMap<(i64, i64), (Sketch, Sketch)> = BTreeMap::new();
        let mut merged: HashMap<i64, (Sketch, Sketch)> = HashMap::new();
        for row in daily {
            let (environment_id, day): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let (c, u): (Vec<u8>, Vec<u8>) = (row.try_get(2)?, row.try_get(3)?);
            let (c, u) = match (Sketch::from_bytes(&c), Sketch::from_bytes(&u)) {
                (Some(c), Some(u)) => (c, u),
                _ => {
                    tracing::warn!(
                        flag = flag_key,
                        day,
                        "a stored usage sketch cannot be read; it is left out"
                    );
                    continue;
                }
            };
            let (day_companies, day_users) = days.entry((environment_id, day)).or_default();
            day_companies.merge(&c);
            day_users.merge(&u);
            let (companies, users) = merged.entry(environment_id).or_default();
            companies.merge(&c);
            users.merge(&u);
        }
        for ((environment_id, day), (mut companies, mut users)) in days {
            let counts = usage.days.entry((environment_id, day)).or_default();
            counts.day = day;
            counts.companies = companies.count() as i64;
            counts.users = users.count() as i64;
        }
        for (environment_id, (mut companies, mut users)) in merged {
            usage.companies.insert(environment_id, companies.count() as i64);
            usage.users.insert(environment_id, users.count() as i64);
        }
        Ok(usage)
    }

    /// When each flag was last checked, per environment: (flag key, environment id) → epoch ms;
    /// only the flags `keys` when given.
    pub async fn last_checked(&self, keys: Option<&[String]>) -> StoreResult<HashMap<(String, i64), i64>> {
        let decode = |row: &sqlx::any::AnyRow| -> StoreResult<((String, i64), i64)> {
            Ok(((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?))
        };
        let Some(keys) = keys else {
            let rows = sqlx::query("SELECT flag_key, environment_id, at FROM usage_last_checked")
                .fetch_all(self.pool())
                .await?;
            return rows.iter().map(decode).collect();
        };
        let mut out = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT flag_key, environment_id, at FROM usage_last_checked WHERE flag_key IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                let (key, at) = decode(&row)?;
                out.insert(key, at);
            }
        }
        Ok(out)
    }

    /// Checks per flag and day from `since` on, over all environments, for the flags `keys`.
    pub async fn daily_checks(
        &self,
        keys: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, Vec<(i64, i64)>>> {
        let mut out: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT flag_key, (hour / 86400000) * 86400000 AS day, \
                 CAST(SUM(evaluated + reported) AS BIGINT) FROM usage_hourly \
                 WHERE hour >= $1 AND flag_key IN ({}) \
                 GROUP BY flag_key, (hour / 86400000) * 86400000 ORDER BY 1, 2",
                list.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(since);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                let key: String = row.try_get(0)?;
                out.entry(key)
                    .or_default()
                    .push((row.try_get(1)?, row.try_get(2)?));
            }
        }
        Ok(out)
    }

    /// When each flag last moved to another release stage: flag key → epoch ms.
    pub async fn last_stage_moves(&self) -> StoreResult<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT subject_key, MAX(at) FROM change_events \
             WHERE subject_type = 'flag' AND kind = 'flag.stage_changed' GROUP BY subject_key",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// The changes of a flag's stage, access rules and remote config from `since` on, oldest
    /// first: (at, kind, environment key).
    pub async fn flag_markers(
        &self,
        flag_key: &str,
        since: i64,
    ) -> StoreResult<Vec<(i64, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT c.at, c.kind, e.key FROM change_events c \
             LEFT JOIN environments e ON e.id = c.environment_id \
             WHERE c.subject_type = 'flag' AND c.subject_key = $1 AND c.at >= $2 \
             AND (c.kind = 'flag.stage_changed' OR c.kind LIKE 'flag.access_rules%' \
                  OR c.kind LIKE 'flag.remote_config%' OR c.kind = 'flag.archived' \
                  OR c.kind = 'flag.unarchived') \
             ORDER BY c.id",
        )
        .bind(flag_key)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect()
    }

    /// A setting's stored value.
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?)
    }
}

/// Stores a setting (inside the caller's transaction).
pub async fn put_setting(conn: &mut AnyConnection, name: &str, value: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the flag `key`'s row until the transaction ends (PostgreSQL; SQLite's write lock is
/// held already) and returns when its staleness was last announced (`flag.became_stale`), if
/// ever: replicas announcing at once take turns, and the second sees the first's event.
pub async fn stale_announced_at(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<i64>> {
    if super::is_postgres(conn) {
        sqlx::query("SELECT id FROM flags WHERE key = $1 FOR UPDATE")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(sqlx::query_scalar(
        "SELECT MAX(at) FROM change_events WHERE kind = 'flag.became_stale' AND subject_type = 'flag' AND subject_key = $1",
    )
    .bind(key)
    .fetch_one(conn)
    .await?)
}
