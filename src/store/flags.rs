//! Flags and their versioned per-environment access rules and remote config. Every change of a
//! flag's rules (or config) in an environment is a new row; the highest version is current, older
//! ones are the history a rollback returns to. Rules are stored as the JSON of the access model.

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{decode_json, decode_key, CorruptRow, Store, StoreError, StoreResult};
use crate::model::{AccessRules, Flag, RemoteConfig, Version};

/// A stored value that decoded, or the row that did not.
pub type Decoded<T> = Result<T, CorruptRow>;

const FLAG_COLUMNS: &str =
    "id, key, name, description, stage_id, owner_id, archived, permanent, created_at, updated_at, updated_by";

fn flag_from_row(row: &AnyRow) -> StoreResult<Flag> {
    let id: i64 = row.try_get("id")?;
    Ok(Flag {
        id,
        key: decode_key("flags", id, row.try_get("key")?)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        stage_id: row.try_get("stage_id")?,
        owner_id: row.try_get("owner_id")?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        permanent: row.try_get::<i64, _>("permanent")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// Which versions table a read or write concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioned {
    AccessRules,
    RemoteConfig,
}

impl Versioned {
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            Versioned::AccessRules => ("flag_targeting_versions", "access_rules"),
            Versioned::RemoteConfig => ("flag_config_versions", "targeting"),
        }
    }
}

/// A value kept in a versions table.
pub trait VersionedValue: DeserializeOwned + serde::Serialize {
    const KIND: Versioned;
    /// Applies what the row says outside the JSON (the version number, for remote config).
    fn with_version(self, _version: i64) -> Self {
        self
    }
}

impl VersionedValue for AccessRules {
    const KIND: Versioned = Versioned::AccessRules;
}

impl VersionedValue for RemoteConfig {
    const KIND: Versioned = Versioned::RemoteConfig;
    fn with_version(mut self, version: i64) -> Self {
        self.version = version as u64;
        self
    }
}

fn version_from_row<T: VersionedValue>(row: &AnyRow) -> StoreResult<Version<Decoded<T>>> {
    let (table, _) = T::KIND.table_and_column();
    let id: i64 = row.try_get("id")?;
    let version: i64 = row.try_get("version")?;
    let json: String = row.try_get("json")?;
    Ok(Version {
        flag_id: row.try_get("flag_id")?,
        environment_id: row.try_get("environment_id")?,
        version,
        value: decode_json::<T>(table, id, &json).map(|value| value.with_version(version)),
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        note: Some(row.try_get::<String, _>("note")?).filter(|note| !note.is_empty()),
    })
}

/// The newest version of every flag in an environment, from a versions table.
/// `only` narrows the flags (`AND flag_id IN (…)`, empty for all of them).
fn current_versions_sql(kind: Versioned, only: &str) -> String {
    let (table, column) = kind.table_and_column();
    format!(
        "SELECT t.id, t.flag_id, t.environment_id, t.version, t.{column} AS json, t.created_at, t.note, \
         m.email AS created_by FROM {table} t \
         JOIN (SELECT flag_id, MAX(version) AS version FROM {table} WHERE environment_id = $1{only} GROUP BY flag_id) latest \
           ON latest.flag_id = t.flag_id AND latest.version = t.version \
         LEFT JOIN members m ON m.id = t.created_by \
         WHERE t.environment_id = $1 ORDER BY t.flag_id"
    )
}

/// The versions of one flag in one environment (`$1`, `$2`) from a versions table, newest first,
/// with `extra` appended to the `WHERE` clause and `limit` after the order.
fn flag_versions_sql(kind: Versioned, extra: &str, limit: &str) -> String {
    let (table, column) = kind.table_and_column();
    format!(
        "SELECT t.id, t.flag_id, t.environment_id, t.version, t.{column} AS json, t.created_at, t.note, \
         m.email AS created_by FROM {table} t LEFT JOIN members m ON m.id = t.created_by \
         WHERE t.flag_id = $1 AND t.environment_id = $2{extra} ORDER BY t.version DESC{limit}"
    )
}

/// What the flags list filters by; `search` matches key or name anywhere, in any case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagFilter {
    pub search: String,
    pub stage: Option<i64>,
    pub owner: Option<i64>,
    pub archived: bool,
}

/// A value bound to a dynamically built query.
enum Bind {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Int(n) => query.bind(*n),
            Bind::Text(t) => query.bind(t.as_str()),
        };
    }
    query
}

impl Store {
    /// One page of the flags that match `filter`, by key, and how many match in all. The filter,
    /// count and page are the database's work, so the list stays fast with many flags.
    pub async fn flags_page(
        &self,
        filter: &FlagFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Flag>, i64)> {
        let mut clauses = vec!["archived = $1".to_string()];
        let mut binds = vec![Bind::Int(i64::from(filter.archived))];
        if let Some(stage) = filter.stage {
            binds.push(Bind::Int(stage));
            clauses.push(format!("stage_id = ${}", binds.len()));
        }
        if let Some(owner) = filter.owner {
            binds.push(Bind::Int(owner));
            clauses.push(format!("owner_id = ${}", binds.len()));
        }
        let search = filter.search.trim();
        if !search.is_empty() {
            binds.push(Bind::Text(super::entities::contains_pattern(search)));
            let n = binds.len();
            clauses.push(format!(
                "(LOWER(key) LIKE ${n} ESCAPE '\\' OR LOWER(name) LIKE ${n} ESCAPE '\\')"
            ));
        }
        let filter_sql = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) AS n FROM flags WHERE {filter_sql}");
        let total: i64 = bind_all(sqlx::query(&count_sql), &binds)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let page_sql = format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE {filter_sql} ORDER BY key LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let rows = bind_all(sqlx::query(&page_sql), &binds)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        Ok((rows.iter().map(flag_from_row).collect::<StoreResult<_>>()?, total))
    }

    /// The current access rules of the given flags in an environment (flags without any are
    /// left out).
    pub async fn current_access_rules_of(
        &self,
        environment_id: i64,
        flag_ids: &[i64],
    ) -> StoreResult<Vec<Version<Decoded<AccessRules>>>> {
        if flag_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..flag_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let only = format!(" AND flag_id IN ({})", list.join(", "));
        let sql = current_versions_sql(Versioned::AccessRules, &only);
        let mut query = sqlx::query(&sql).bind(environment_id);
        for id in flag_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every flag, archived ones included, by key.
    pub async fn flags(&self) -> StoreResult<Vec<Flag>> {
        let mut conn = self.pool().acquire().await?;
        flags_in(&mut conn).await
    }

    /// The keys of the first `limit` flags not archived, by key (the editors' suggestions).
    pub async fn flag_keys(&self, limit: usize) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT key FROM flags WHERE archived = $1 ORDER BY key LIMIT $2")
            .bind(0_i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| Ok(row.try_get("key")?)).collect()
    }

    /// For each flag whose current access rules in the environment are Everyone, when that
    /// version was written. Matched on the stored text (the rules are written by one serializer),
    /// so no other flag's rules are read or decoded.
    pub async fn everyone_since(
        &self,
        environment_id: i64,
    ) -> StoreResult<std::collections::HashMap<i64, i64>> {
        // As `insert_version` writes it.
        let everyone =
            serde_json::to_string(&AccessRules::Everyone).map_err(|e| StoreError::Encode(e.to_string()))?;
        let (table, column) = Versioned::AccessRules.table_and_column();
        let sql = format!(
            "SELECT t.flag_id, t.created_at FROM {table} t \
             JOIN (SELECT flag_id, MAX(version) AS version FROM {table} WHERE environment_id = $1 GROUP BY flag_id) latest \
               ON latest.flag_id = t.flag_id AND latest.version = t.version \
             WHERE t.environment_id = $1 AND t.{column} = $2"
        );
        let rows = sqlx::query(&sql)
            .bind(environment_id)
            .bind(everyone)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Every flag's key and name, by key.
    pub async fn flag_names(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT key, name FROM flags ORDER BY key")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("name")?)))
            .collect()
    }

    /// The flag `key`; not found when there is none.
    pub async fn known_flag(&self, key: &str) -> StoreResult<Flag> {
        let mut conn = self.pool().acquire().await?;
        flag_in(&mut conn, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("flag {key:?}")))
    }

    /// Every version of a flag's access rules (or config) in an environment, newest first.
    pub async fn history<T: VersionedValue>(
        &self,
        flag_id: i64,
        environment_id: i64,
    ) -> StoreResult<Vec<Version<Decoded<T>>>> {
        let rows = sqlx::query(&flag_versions_sql(T::KIND, "", ""))
            .bind(flag_id)
            .bind(environment_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(version_from_row).collect()
    }
}

/// Every flag, archived ones included, by key, read on the caller's connection or transaction.
pub async fn flags_in(conn: &mut AnyConnection) -> StoreResult<Vec<Flag>> {
    let rows = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags ORDER BY key"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(flag_from_row).collect()
}

/// One flag by key, read on the caller's connection or transaction.
pub async fn flag_in(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<Flag>> {
    let row = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(flag_from_row).transpose()
}

/// The current version of every flag's rules (or config) in an environment.
pub async fn current_versions<T: VersionedValue>(
    conn: &mut AnyConnection,
    environment_id: i64,
) -> StoreResult<Vec<Version<Decoded<T>>>> {
    let rows = sqlx::query(&current_versions_sql(T::KIND, ""))
        .bind(environment_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(version_from_row).collect()
}

/// The newest version of one flag's rules (or config) in an environment.
pub async fn latest_version<T: VersionedValue>(
    conn: &mut AnyConnection,
    flag_id: i64,
    environment_id: i64,
) -> StoreResult<Option<Version<Decoded<T>>>> {
    let row = sqlx::query(&flag_versions_sql(T::KIND, "", " LIMIT 1"))
        .bind(flag_id)
        .bind(environment_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(version_from_row).transpose()
}

/// One version of a flag's rules (or config) in an environment.
pub async fn version_of<T: VersionedValue>(
    conn: &mut AnyConnection,
    flag_id: i64,
    environment_id: i64,
    version: i64,
) -> StoreResult<Option<Version<Decoded<T>>>> {
    let row = sqlx::query(&flag_versions_sql(T::KIND, " AND t.version = $3", ""))
        .bind(flag_id)
        .bind(environment_id)
        .bind(version)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(version_from_row).transpose()
}

/// Appends `value` as version `version` of a flag's rules (or config) in an environment; the
/// unique key turns a concurrent writer's duplicate into a `Conflict`.
pub async fn insert_version<T: VersionedValue>(
    conn: &mut AnyConnection,
    (flag_id, environment_id, version): (i64, i64, i64),
    (value, note): (&T, Option<&str>),
    actor: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    let (table, column) = T::KIND.table_and_column();
    let json = serde_json::to_string(value).map_err(|e| StoreError::Encode(e.to_string()))?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO {table} (flag_id, environment_id, version, {column}, created_at, created_by, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (flag_id, environment_id, version) DO NOTHING"
    ))
    .bind(flag_id)
    .bind(environment_id)
    .bind(version)
    .bind(json)
    .bind(now)
    .bind(actor)
    .bind(note.unwrap_or_default())
    .execute(conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "someone else saved a change at the same moment; reload and try again".into(),
        ));
    }
    Ok(())
}

/// A flag's fields other than its key and its per-environment rules.
pub struct FlagFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub stage_id: i64,
    pub owner_id: Option<i64>,
    pub permanent: bool,
    pub archived: bool,
}

/// Inserts a flag and returns its id; a key taken in any letter case is a `Conflict`
/// (`New-Billing` and `new-billing` would be two flags an SDK user cannot tell apart).
pub async fn insert_flag(
    conn: &mut AnyConnection,
    key: &str,
    fields: &FlagFields<'_>,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<i64> {
    let taken: Option<String> = sqlx::query_scalar("SELECT key FROM flags WHERE lower(key) = lower($1)")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(taken) = taken {
        let message = if taken == key {
            format!("a flag with the key {key} already exists")
        } else {
            format!("a flag with the key {taken} already exists; keys are unique regardless of case")
        };
        return Err(StoreError::Conflict(message));
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO flags (key, name, description, stage_id, owner_id, permanent, archived, created_at, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(fields.name)
    .bind(fields.description)
    .bind(fields.stage_id)
    .bind(fields.owner_id)
    .bind(i64::from(fields.permanent))
    .bind(i64::from(fields.archived))
    .bind(now)
    .bind(actor)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| StoreError::Conflict(format!("a flag with the key {key} already exists")))
}

/// Sets every field of a flag but its key (and marks who changed it when).
pub async fn update_flag(
    conn: &mut AnyConnection,
    flag_id: i64,
    fields: &FlagFields<'_>,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE flags SET name = $1, description = $2, stage_id = $3, owner_id = $4, permanent = $5, \
         archived = $6, updated_at = $7, updated_by = $8 WHERE id = $9",
    )
    .bind(fields.name)
    .bind(fields.description)
    .bind(fields.stage_id)
    .bind(fields.owner_id)
    .bind(i64::from(fields.permanent))
    .bind(i64::from(fields.archived))
    .bind(now)
    .bind(actor)
    .bind(flag_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a flag as changed now by `actor` (its rules changed, not its own fields).
pub async fn touch_flag(conn: &mut AnyConnection, id: i64, actor: Option<i64>, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE flags SET updated_at = $1, updated_by = $2 WHERE id = $3")
        .bind(now)
        .bind(actor)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
