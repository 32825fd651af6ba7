//! Flags, their versioned per-environment access rules and remote config, segments and the
//! release stages' default rules. Rules are stored as the JSON of the access model.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlagRow {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub description: String,
    pub stage_id: i64,
    pub owner_id: Option<i64>,
    pub archived: bool,
    pub permanent: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The member who made the last change, if any (and still a member).
    pub updated_by: Option<i64>,
}

/// One stored version of a flag's access rules (or remote config) in an environment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionRow {
    pub flag_id: i64,
    pub environment_id: i64,
    pub version: i64,
    pub json: String,
    pub created_at: i64,
    pub created_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentRow {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub description: String,
    pub conditions: String,
}

impl SegmentRow {
    /// The segment as the engine uses it; `None` for a row that no longer parses.
    pub fn to_segment(&self) -> Option<crate::model::Segment> {
        Some(crate::model::Segment {
            key: crate::model::SegmentKey::parse(self.key.clone()).ok()?,
            name: self.name.clone(),
            conditions: serde_json::from_str(&self.conditions).ok()?,
        })
    }
}

impl Store {
    /// Every stored segment that parses, by key, ready for compilation.
    pub async fn segments_by_key(
        &self,
    ) -> StoreResult<std::collections::HashMap<crate::model::SegmentKey, crate::model::Segment>> {
        Ok(self
            .segments()
            .await?
            .iter()
            .filter_map(SegmentRow::to_segment)
            .map(|segment| (segment.key.clone(), segment))
            .collect())
    }
}

const FLAG_COLUMNS: &str =
    "id, key, name, description, stage_id, owner_id, archived, permanent, created_at, updated_at, updated_by";

fn flag_from_row(row: &AnyRow) -> Result<FlagRow, sqlx::Error> {
    Ok(FlagRow {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
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

fn version_from_row(row: &AnyRow) -> Result<VersionRow, sqlx::Error> {
    Ok(VersionRow {
        flag_id: row.try_get("flag_id")?,
        environment_id: row.try_get("environment_id")?,
        version: row.try_get("version")?,
        json: row.try_get("json")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

fn segment_from_row(row: &AnyRow) -> Result<SegmentRow, sqlx::Error> {
    Ok(SegmentRow {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        conditions: row.try_get("conditions")?,
    })
}

/// The newest version of every flag in an environment, from a versions table.
/// `only` narrows the flags (`AND flag_id IN (…)`, empty for all of them).
fn current_versions_sql(kind: Versioned, only: &str) -> String {
    let (table, column) = kind.table_and_column();
    format!(
        "SELECT t.flag_id, t.environment_id, t.version, t.{column} AS json, t.created_at, m.email AS created_by \
         FROM {table} t \
         JOIN (SELECT flag_id, MAX(version) AS version FROM {table} WHERE environment_id = $1{only} GROUP BY flag_id) latest \
           ON latest.flag_id = t.flag_id AND latest.version = t.version \
         LEFT JOIN members m ON m.id = t.created_by \
         WHERE t.environment_id = $1 ORDER BY t.flag_id"
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
    ) -> StoreResult<(Vec<FlagRow>, i64)> {
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
            binds.push(Bind::Text(super::entities_query::contains_pattern(search)));
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
        Ok((rows.iter().map(flag_from_row).collect::<Result<_, _>>()?, total))
    }

    /// The current access rules of the given flags in an environment.
    pub async fn current_targeting_of(
        &self,
        environment_id: i64,
        flag_ids: &[i64],
    ) -> StoreResult<Vec<VersionRow>> {
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
        Ok(rows.iter().map(version_from_row).collect::<Result<_, _>>()?)
    }

    /// Every flag, archived ones included, by key.
    pub async fn flags(&self) -> StoreResult<Vec<FlagRow>> {
        let rows = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags ORDER BY key"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(flag_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn flag_by_key(&self, key: &str) -> StoreResult<Option<FlagRow>> {
        let row = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(flag_from_row).transpose()?)
    }

    /// The current access rules of every flag in an environment.
    pub async fn current_targeting(&self, environment_id: i64) -> StoreResult<Vec<VersionRow>> {
        let rows = sqlx::query(&current_versions_sql(Versioned::AccessRules, ""))
            .bind(environment_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(version_from_row).collect::<Result<_, _>>()?)
    }

    /// The current remote config of every flag that has one in an environment.
    pub async fn current_configs(&self, environment_id: i64) -> StoreResult<Vec<VersionRow>> {
        let rows = sqlx::query(&current_versions_sql(Versioned::RemoteConfig, ""))
            .bind(environment_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(version_from_row).collect::<Result<_, _>>()?)
    }

    /// Every version of a flag's access rules in an environment, newest first.
    pub async fn targeting_history(&self, flag_id: i64, environment_id: i64) -> StoreResult<Vec<VersionRow>> {
        let rows = sqlx::query(
            "SELECT t.flag_id, t.environment_id, t.version, t.access_rules AS json, t.created_at, m.email AS created_by \
             FROM flag_targeting_versions t LEFT JOIN members m ON m.id = t.created_by \
             WHERE t.flag_id = $1 AND t.environment_id = $2 ORDER BY t.version DESC",
        )
        .bind(flag_id)
        .bind(environment_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(version_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn segments(&self) -> StoreResult<Vec<SegmentRow>> {
        let rows = sqlx::query("SELECT id, key, name, description, conditions FROM segments ORDER BY key")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(segment_from_row).collect::<Result<_, _>>()?)
    }

    /// `(stage_id, environment_id, access rules JSON)` for every stage default.
    pub async fn stage_defaults(&self) -> StoreResult<Vec<(i64, i64, String)>> {
        let rows = sqlx::query("SELECT stage_id, environment_id, access_rules FROM stage_default_rules")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("stage_id")?,
                    row.try_get("environment_id")?,
                    row.try_get("access_rules")?,
                ))
            })
            .collect()
    }
}

pub struct NewFlag<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub stage_id: i64,
    pub owner_id: Option<i64>,
    pub permanent: bool,
}

pub async fn insert_flag(
    conn: &mut AnyConnection,
    flag: &NewFlag<'_>,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO flags (key, name, description, stage_id, owner_id, permanent, created_at, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(flag.key)
    .bind(flag.name)
    .bind(flag.description)
    .bind(flag.stage_id)
    .bind(flag.owner_id)
    .bind(i64::from(flag.permanent))
    .bind(now)
    .bind(actor)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| StoreError::Conflict(format!("a flag with the key {} already exists", flag.key)))
}

pub async fn flag_for_update(conn: &mut AnyConnection, key: &str) -> StoreResult<FlagRow> {
    let row = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
        .bind(key)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("flag {key}")))?;
    Ok(flag_from_row(&row)?)
}

pub async fn set_flag_stage(
    conn: &mut AnyConnection,
    id: i64,
    stage_id: i64,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE flags SET stage_id = $1, updated_at = $2, updated_by = $3 WHERE id = $4")
        .bind(stage_id)
        .bind(now)
        .bind(actor)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_flag_archived(
    conn: &mut AnyConnection,
    id: i64,
    archived: bool,
    actor: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE flags SET archived = $1, updated_at = $2, updated_by = $3 WHERE id = $4")
        .bind(i64::from(archived))
        .bind(now)
        .bind(actor)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch_flag(conn: &mut AnyConnection, id: i64, actor: Option<i64>, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE flags SET updated_at = $1, updated_by = $2 WHERE id = $3")
        .bind(now)
        .bind(actor)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Which versions table a write goes to.
#[derive(Clone, Copy, Debug)]
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

/// The newest version (number and JSON) of a flag's rules or config in an environment.
pub async fn latest_version(
    conn: &mut AnyConnection,
    kind: Versioned,
    flag_id: i64,
    environment_id: i64,
) -> StoreResult<Option<(i64, String)>> {
    let (table, column) = kind.table_and_column();
    let row = sqlx::query(&format!(
        "SELECT version, {column} AS json FROM {table} WHERE flag_id = $1 AND environment_id = $2 \
         ORDER BY version DESC LIMIT 1"
    ))
    .bind(flag_id)
    .bind(environment_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| Ok((row.try_get("version")?, row.try_get("json")?)))
        .transpose()
}

/// A specific version's JSON.
pub async fn version_json(
    conn: &mut AnyConnection,
    kind: Versioned,
    flag_id: i64,
    environment_id: i64,
    version: i64,
) -> StoreResult<Option<String>> {
    let (table, column) = kind.table_and_column();
    Ok(sqlx::query_scalar(&format!(
        "SELECT {column} FROM {table} WHERE flag_id = $1 AND environment_id = $2 AND version = $3"
    ))
    .bind(flag_id)
    .bind(environment_id)
    .bind(version)
    .fetch_optional(conn)
    .await?)
}

/// A version to append to a flag's history in one environment.
pub struct NewVersion<'a> {
    pub kind: Versioned,
    pub flag_id: i64,
    pub environment_id: i64,
    pub version: i64,
    pub json: &'a str,
    pub actor: Option<i64>,
}

/// Appends a version; the unique key turns a concurrent writer's duplicate into a `Conflict`.
pub async fn insert_version(conn: &mut AnyConnection, new: NewVersion<'_>, now: i64) -> StoreResult<()> {
    let (table, column) = new.kind.table_and_column();
    let inserted = sqlx::query(&format!(
        "INSERT INTO {table} (flag_id, environment_id, version, {column}, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (flag_id, environment_id, version) DO NOTHING"
    ))
    .bind(new.flag_id)
    .bind(new.environment_id)
    .bind(new.version)
    .bind(new.json)
    .bind(now)
    .bind(new.actor)
    .execute(conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "someone else saved a change at the same moment; reload and try again".into(),
        ));
    }
    Ok(())
}

/// Bumps an environment's `flagStateVersion` and returns the new value.
pub async fn bump_flag_state_version(conn: &mut AnyConnection, environment_id: i64) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE environments SET flag_state_version = flag_state_version + 1 WHERE id = $1 RETURNING flag_state_version",
    )
    .bind(environment_id)
    .fetch_one(conn)
    .await?)
}

pub async fn insert_segment(
    conn: &mut AnyConnection,
    key: &str,
    name: &str,
    description: &str,
    conditions: &str,
    now: i64,
) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO segments (key, name, description, conditions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(name)
    .bind(description)
    .bind(conditions)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    id.ok_or_else(|| StoreError::Conflict(format!("a segment with the key {key} already exists")))
}

pub async fn update_segment(
    conn: &mut AnyConnection,
    key: &str,
    name: &str,
    description: &str,
    conditions: &str,
    now: i64,
) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE segments SET name = $1, description = $2, conditions = $3, updated_at = $4 WHERE key = $5",
    )
    .bind(name)
    .bind(description)
    .bind(conditions)
    .bind(now)
    .bind(key)
    .execute(conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("segment {key}")));
    }
    Ok(())
}

pub async fn segment_for_update(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<SegmentRow>> {
    let row = sqlx::query("SELECT id, key, name, description, conditions FROM segments WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(segment_from_row).transpose()?)
}

pub async fn set_stage_default(
    conn: &mut AnyConnection,
    stage_id: i64,
    environment_id: i64,
    access_rules: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM stage_default_rules WHERE stage_id = $1 AND environment_id = $2")
        .bind(stage_id)
        .bind(environment_id)
        .execute(&mut *conn)
        .await?;
    if let Some(rules) = access_rules {
        sqlx::query(
            "INSERT INTO stage_default_rules (stage_id, environment_id, access_rules) VALUES ($1, $2, $3)",
        )
        .bind(stage_id)
        .bind(environment_id)
        .bind(rules)
        .execute(conn)
        .await?;
    }
    Ok(())
}
