//! Companies, users, tracked events and flag-check counts that SDKs report through the ingest
//! endpoints (`/user`, `/company`, `/event`, `/features/events`, `/bulk`).
//!
//! One request is one transaction: its writes are committed (or none are) before the API answers,
//! so an acknowledged write survives a crash. Company and user attributes are merged, not replaced:
//! a new attribute overwrites the stored one of the same name, the others stay.

use sqlx::{Any, Row, Transaction};
use tokio_stream::{Stream, StreamExt};

use super::{Store, StoreResult};
use crate::model::{JsObject, JsValue};

/// Which table an entity lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Company,
    User,
}

/// A company or user to insert or update.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityUpsert {
    pub id: String,
    /// Attributes to merge into the stored ones.
    pub attributes: JsObject,
    /// When the SDK saw the entity (epoch ms); becomes `first_seen` of a new row.
    pub seen_at: i64,
}

/// One acknowledged ingest item.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestWrite {
    User(EntityUpsert),
    /// A company, and the user it was reported with (associated with it).
    Company {
        company: EntityUpsert,
        user_id: Option<String>,
    },
    Event {
        name: String,
        user_id: String,
        company_id: Option<String>,
        attributes: JsObject,
        at: i64,
    },
    /// A flag check: counted in `flag_exposures` for the UTC day `day` (`YYYY-MM-DD`).
    FlagCheck {
        flag_key: String,
        day: String,
        enabled: bool,
    },
}

/// A company or user as stored, with all its merged attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEntity {
    pub environment_id: i64,
    pub kind: EntityKind,
    pub id: String,
    pub attributes: JsObject,
}

/// One day's check count of a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    pub flag_key: String,
    pub day: String,
    pub checks: i64,
    pub enabled: i64,
}

/// Stored attributes text → object; anything but a JSON object reads as no attributes.
fn parse_attributes(text: &str) -> JsObject {
    match serde_json::from_str::<JsValue>(text) {
        Ok(JsValue::Object(object)) => object,
        _ => JsObject::new(),
    }
}

/// A string or number attribute as column text (`name`, `email`).
fn text_attribute(attributes: &JsObject, name: &str) -> Option<String> {
    match attributes.get(name)? {
        JsValue::String(s) => Some(s.clone()),
        JsValue::Number(n) => Some(crate::eval::jsnum::number_to_string(*n)),
        _ => None,
    }
}

impl Store {
    /// Applies one request's writes in a single transaction and returns every company and user
    /// it touched, with their attributes as now stored.
    pub async fn record_ingest(
        &self,
        environment_id: i64,
        writes: &[IngestWrite],
        now: i64,
    ) -> StoreResult<Vec<StoredEntity>> {
        let mut tx = self.pool().begin().await?;
        let mut touched = Vec::new();
        for write in writes {
            match write {
                IngestWrite::User(user) => {
                    touched.push(upsert(&mut tx, environment_id, EntityKind::User, user, now).await?);
                }
                IngestWrite::Company { company, user_id } => {
                    touched.push(upsert(&mut tx, environment_id, EntityKind::Company, company, now).await?);
                    if let Some(user_id) = user_id {
                        let user = EntityUpsert {
                            id: user_id.clone(),
                            attributes: JsObject::new(),
                            seen_at: company.seen_at,
                        };
                        touched.push(upsert(&mut tx, environment_id, EntityKind::User, &user, now).await?);
                        sqlx::query(
                            "INSERT INTO company_users (environment_id, company_id, user_id) \
                             VALUES ($1, $2, $3) ON CONFLICT (environment_id, company_id, user_id) DO NOTHING",
                        )
                        .bind(environment_id)
                        .bind(&company.id)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                IngestWrite::Event {
                    name,
                    user_id,
                    company_id,
                    attributes,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO events (environment_id, name, user_id, company_id, attributes, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(environment_id)
                    .bind(name)
                    .bind(user_id)
                    .bind(company_id.as_deref())
                    .bind(serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into()))
                    .bind(*at)
                    .execute(&mut *tx)
                    .await?;
                }
                IngestWrite::FlagCheck {
                    flag_key,
                    day,
                    enabled,
                } => {
                    sqlx::query(
                        "INSERT INTO flag_exposures (environment_id, flag_key, day, checks, enabled) \
                         VALUES ($1, $2, $3, 1, $4) ON CONFLICT (environment_id, flag_key, day) \
                         DO UPDATE SET checks = flag_exposures.checks + 1, \
                         enabled = flag_exposures.enabled + excluded.enabled",
                    )
                    .bind(environment_id)
                    .bind(flag_key)
                    .bind(day)
                    .bind(i64::from(*enabled))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(touched)
    }

    /// Every company and user seen after `since` (epoch ms), streamed so a large table is never
    /// held in memory twice.
    pub fn entities_seen_since(&self, since: i64) -> impl Stream<Item = StoreResult<StoredEntity>> + '_ {
        sqlx::query(
            "SELECT 'company' AS kind, environment_id, id, attributes FROM companies WHERE last_seen > $1 \
             UNION ALL \
             SELECT 'user' AS kind, environment_id, id, attributes FROM users WHERE last_seen > $2",
        )
        .bind(since)
        .bind(since)
        .fetch(self.pool())
        .map(|row| {
            let row = row?;
            let kind: String = row.try_get("kind")?;
            let attributes: String = row.try_get("attributes")?;
            Ok(StoredEntity {
                environment_id: row.try_get("environment_id")?,
                kind: if kind == "company" {
                    EntityKind::Company
                } else {
                    EntityKind::User
                },
                id: row.try_get("id")?,
                attributes: parse_attributes(&attributes),
            })
        })
    }

    /// One stored company or user, `None` when it was never reported.
    pub async fn entity(
        &self,
        environment_id: i64,
        kind: EntityKind,
        id: &str,
    ) -> StoreResult<Option<StoredEntity>> {
        let sql = match kind {
            EntityKind::Company => "SELECT attributes FROM companies WHERE environment_id = $1 AND id = $2",
            EntityKind::User => "SELECT attributes FROM users WHERE environment_id = $1 AND id = $2",
        };
        let attributes: Option<String> = sqlx::query_scalar(sql)
            .bind(environment_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(attributes.map(|text| StoredEntity {
            environment_id,
            kind,
            id: id.to_string(),
            attributes: parse_attributes(&text),
        }))
    }

    /// The users associated with a company, sorted.
    pub async fn company_user_ids(&self, environment_id: i64, company_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM company_users WHERE environment_id = $1 AND company_id = $2 ORDER BY user_id",
        )
        .bind(environment_id)
        .bind(company_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// How many events of `name` the environment recorded.
    pub async fn event_count(&self, environment_id: i64, name: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE environment_id = $1 AND name = $2")
                .bind(environment_id)
                .bind(name)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// A flag's daily check counts, oldest day first.
    pub async fn exposures(&self, environment_id: i64, flag_key: &str) -> StoreResult<Vec<Exposure>> {
        let rows = sqlx::query(
            "SELECT flag_key, day, checks, enabled FROM flag_exposures \
             WHERE environment_id = $1 AND flag_key = $2 ORDER BY day",
        )
        .bind(environment_id)
        .bind(flag_key)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Exposure {
                    flag_key: row.try_get("flag_key")?,
                    day: row.try_get("day")?,
                    checks: row.try_get("checks")?,
                    enabled: row.try_get("enabled")?,
                })
            })
            .collect()
    }
}

/// Inserts or touches the row first, so it is locked (PostgreSQL) or the write lock is held
/// (SQLite) before its attributes are read; concurrent merges into one entity then serialise
/// instead of losing each other's attributes.
async fn upsert(
    tx: &mut Transaction<'static, Any>,
    environment_id: i64,
    kind: EntityKind,
    entity: &EntityUpsert,
    now: i64,
) -> StoreResult<StoredEntity> {
    let touch = match kind {
        EntityKind::Company => {
            "INSERT INTO companies (environment_id, id, attributes, first_seen, last_seen) \
             VALUES ($1, $2, '{}', $3, $4) ON CONFLICT (environment_id, id) \
             DO UPDATE SET last_seen = excluded.last_seen RETURNING attributes"
        }
        EntityKind::User => {
            "INSERT INTO users (environment_id, id, attributes, first_seen, last_seen) \
             VALUES ($1, $2, '{}', $3, $4) ON CONFLICT (environment_id, id) \
             DO UPDATE SET last_seen = excluded.last_seen RETURNING attributes"
        }
    };
    let stored: String = sqlx::query_scalar(touch)
        .bind(environment_id)
        .bind(&entity.id)
        .bind(entity.seen_at.min(now))
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    let stored = parse_attributes(&stored);
    if entity.attributes.is_empty() {
        return Ok(StoredEntity {
            environment_id,
            kind,
            id: entity.id.clone(),
            attributes: stored,
        });
    }
    let merged = JsObject::from_entries(
        stored
            .entries()
            .iter()
            .chain(entity.attributes.entries())
            .cloned(),
    );
    let text = serde_json::to_string(&merged).unwrap_or_else(|_| "{}".into());
    match kind {
        EntityKind::Company => {
            sqlx::query(
                "UPDATE companies SET attributes = $1, name = COALESCE($2, name) \
                 WHERE environment_id = $3 AND id = $4",
            )
            .bind(text)
            .bind(text_attribute(&merged, "name"))
            .bind(environment_id)
            .bind(&entity.id)
            .execute(&mut **tx)
            .await?;
        }
        EntityKind::User => {
            sqlx::query(
                "UPDATE users SET attributes = $1, name = COALESCE($2, name), email = COALESCE($3, email) \
                 WHERE environment_id = $4 AND id = $5",
            )
            .bind(text)
            .bind(text_attribute(&merged, "name"))
            .bind(text_attribute(&merged, "email"))
            .bind(environment_id)
            .bind(&entity.id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(StoredEntity {
        environment_id,
        kind,
        id: entity.id.clone(),
        attributes: merged,
    })
}
