//! Companies, users, tracked events and flag-check counts that SDKs report through the ingest
//! endpoints (`/user`, `/company`, `/event`, `/features/events`, `/bulk`).
//!
//! One request is one transaction: its writes are committed (or none are) before the API answers,
//! so an acknowledged write survives a crash. Company and user attributes are merged, not replaced:
//! a new attribute overwrites the stored one of the same name, the others stay.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio_stream::{Stream, StreamExt};

use super::{decode_json, CorruptRow, Store, StoreResult};
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
}

/// A company or user as stored, with all its merged attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEntity {
    pub environment_id: i64,
    pub kind: EntityKind,
    pub id: String,
    pub attributes: JsObject,
}

/// A company or user an ingest wrote, with the length of its attributes as stored JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct Ingested {
    pub entity: StoredEntity,
    pub stored_bytes: usize,
}

/// A stored `attributes` column of the company or user `id` in `table`: a JSON object.
fn parse_attributes(table: &'static str, id: &str, text: &str) -> Result<JsObject, CorruptRow> {
    match decode_json::<JsValue>(table, id, text)? {
        JsValue::Object(object) => Ok(object),
        _ => Err(CorruptRow {
            table,
            id: id.to_string(),
            reason: "attributes are not a JSON object".into(),
        }),
    }
}

impl EntityKind {
    fn table(self) -> &'static str {
        match self {
            EntityKind::Company => "companies",
            EntityKind::User => "users",
        }
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

/// Applies one request's writes in the caller's transaction and returns every company and user
/// it touched, with their attributes as now stored.
pub async fn record_ingest(
    conn: &mut AnyConnection,
    environment_id: i64,
    writes: &[IngestWrite],
    now: i64,
) -> StoreResult<Vec<Ingested>> {
    let mut touched = Vec::new();
    for write in writes {
        match write {
            IngestWrite::User(user) => {
                touched.push(upsert(conn, environment_id, EntityKind::User, user, now).await?);
            }
            IngestWrite::Company { company, user_id } => {
                touched.push(upsert(conn, environment_id, EntityKind::Company, company, now).await?);
                if let Some(user_id) = user_id {
                    let user = EntityUpsert {
                        id: user_id.clone(),
                        attributes: JsObject::new(),
                        seen_at: company.seen_at,
                    };
                    touched.push(upsert(conn, environment_id, EntityKind::User, &user, now).await?);
                    sqlx::query(
                        "INSERT INTO company_users (environment_id, company_id, user_id) \
                         VALUES ($1, $2, $3) ON CONFLICT (environment_id, company_id, user_id) DO NOTHING",
                    )
                    .bind(environment_id)
                    .bind(&company.id)
                    .bind(user_id)
                    .execute(&mut *conn)
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
                .bind(
                    serde_json::to_string(attributes)
                        .map_err(|e| super::StoreError::Encode(e.to_string()))?,
                )
                .bind(*at)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(touched)
}

impl Store {
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
            let kind = if kind == "company" {
                EntityKind::Company
            } else {
                EntityKind::User
            };
            let id: String = row.try_get("id")?;
            Ok(StoredEntity {
                environment_id: row.try_get("environment_id")?,
                kind,
                attributes: parse_attributes(kind.table(), &id, &attributes)?,
                id,
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
        Ok(attributes
            .map(|text| {
                Ok::<_, CorruptRow>(StoredEntity {
                    environment_id,
                    kind,
                    id: id.to_string(),
                    attributes: parse_attributes(kind.table(), id, &text)?,
                })
            })
            .transpose()?)
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
}

/// Inserts or touches the row first, so it is locked (PostgreSQL) or the write lock is held
/// (SQLite) before its attributes are read; concurrent merges into one entity then serialise
/// instead of losing each other's attributes.
async fn upsert(
    conn: &mut AnyConnection,
    environment_id: i64,
    kind: EntityKind,
    entity: &EntityUpsert,
    now: i64,
) -> StoreResult<Ingested> {
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
        .fetch_one(&mut *conn)
        .await?;
    let stored_bytes = stored.len();
    let stored = parse_attributes(kind.table(), &entity.id, &stored)?;
    if entity.attributes.is_empty() {
        return Ok(Ingested {
            entity: StoredEntity {
                environment_id,
                kind,
                id: entity.id.clone(),
                attributes: stored,
            },
            stored_bytes,
        });
    }
    let merged = JsObject::from_entries(
        stored
            .entries()
            .iter()
            .chain(entity.attributes.entries())
            .cloned(),
    );
    let text = serde_json::to_string(&merged).map_err(|e| super::StoreError::Encode(e.to_string()))?;
    let stored_bytes = text.len();
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
            .execute(&mut *conn)
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
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(Ingested {
        entity: StoredEntity {
            environment_id,
            kind,
            id: entity.id.clone(),
            attributes: merged,
        },
        stored_bytes,
    })
}

/// A company or user row as the UI lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityRow {
    pub id: String,
    pub name: Option<String>,
    /// Users only.
    pub email: Option<String>,
    pub attributes: JsObject,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// One page of a search, and how many entities match in all.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityPage {
    pub rows: Vec<EntityRow>,
    pub total: i64,
}

fn table_columns(kind: EntityKind) -> (&'static str, &'static str) {
    match kind {
        EntityKind::Company => (
            "companies",
            "id, name, CAST(NULL AS TEXT) AS email, attributes, first_seen, last_seen",
        ),
        EntityKind::User => ("users", "id, name, email, attributes, first_seen, last_seen"),
    }
}

fn entity_from_row(kind: EntityKind, row: &AnyRow) -> StoreResult<EntityRow> {
    let attributes: String = row.try_get("attributes")?;
    let id: String = row.try_get("id")?;
    Ok(EntityRow {
        attributes: parse_attributes(kind.table(), &id, &attributes)?,
        id,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
    })
}

/// A `LIKE` pattern matching `needle` anywhere, lowercased, with `\` escaping `%` and `_`.
pub(super) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Companies or users of an environment whose id, name (or a user's email) contains `search`
    /// (any case), most recently seen first.
    pub async fn search_entities(
        &self,
        environment_id: i64,
        kind: EntityKind,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<EntityPage> {
        let (table, columns) = table_columns(kind);
        let email = match kind {
            EntityKind::Company => "",
            EntityKind::User => r" OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\'",
        };
        let filter = format!(
            "environment_id = $1 AND (LOWER(id) LIKE $2 ESCAPE '\\' \
             OR LOWER(COALESCE(name, '')) LIKE $2 ESCAPE '\\'{email})"
        );
        let pattern = contains_pattern(search.trim());
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {filter}"))
            .bind(environment_id)
            .bind(&pattern)
            .fetch_one(self.pool())
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM {table} WHERE {filter} ORDER BY last_seen DESC, id LIMIT $3 OFFSET $4"
        ))
        .bind(environment_id)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok(EntityPage {
            rows: rows
                .iter()
                .map(|row| entity_from_row(kind, row))
                .collect::<StoreResult<_>>()?,
            total,
        })
    }

    /// One company or user with its sightings, `None` when it was never reported.
    pub async fn entity_row(
        &self,
        environment_id: i64,
        kind: EntityKind,
        id: &str,
    ) -> StoreResult<Option<EntityRow>> {
        let (table, columns) = table_columns(kind);
        let row = sqlx::query(&format!(
            "SELECT {columns} FROM {table} WHERE environment_id = $1 AND id = $2"
        ))
        .bind(environment_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|row| entity_from_row(kind, row)).transpose()
    }

    /// The companies a user was reported with, sorted.
    pub async fn user_company_ids(&self, environment_id: i64, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT company_id FROM company_users WHERE environment_id = $1 AND user_id = $2 ORDER BY company_id",
        )
        .bind(environment_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(contains_pattern("Acme"), "%acme%");
        assert_eq!(contains_pattern("50%_off"), r"%50\%\_off%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
