//! Reading the stored companies and users for the admin UI: a searchable, paged list and one
//! entity with its first and last sighting and the entities it is associated with.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::entities::EntityKind;
use super::{Store, StoreResult};
use crate::model::{JsObject, JsValue};

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

fn entity_from_row(row: &AnyRow) -> Result<EntityRow, sqlx::Error> {
    let attributes: String = row.try_get("attributes")?;
    Ok(EntityRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        attributes: match serde_json::from_str::<JsValue>(&attributes) {
            Ok(JsValue::Object(object)) => object,
            _ => JsObject::new(),
        },
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
            rows: rows.iter().map(entity_from_row).collect::<Result<_, _>>()?,
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
        Ok(row.as_ref().map(entity_from_row).transpose()?)
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
