//! Flags as code: the whole configuration as one JSON document (`gatehouse export`), and the
//! import that makes a database match such a document (`gatehouse import`).
//!
//! The document, format `gatehouse/1`, in the order it is written:
//!
//! * `environments`: `{key, name, isProduction}` in display order. Import never creates or
//!   deletes environments (they own API keys); each listed one must exist, and its name and
//!   production mark are updated to the document's.
//! * `stages`: `{name, color, defaults}` in release order; `defaults` maps an environment key to
//!   the access rules new flags of the stage start with there. A listed stage's defaults become
//!   exactly the listed ones; a listed stage that does not exist is created after the others.
//! * `segments`: `{key, name, description, conditions}` by key, created or replaced.
//! * `flags`: `{key, name, description, stage, permanent, archived, access, remoteConfig}` by key;
//!   `access` maps an environment key to access rules, `remoteConfig` an environment key to
//!   `{variants}`. A new flag starts, in environments its `access` leaves out, with its stage's
//!   default (or No one), like a flag created in the UI.
//!
//! Rules and conditions use the access model's JSON (`model::access`), exactly as audit entries
//! show it. Maps are keyed and lists sorted so that export → import → export gives the same text.
//! Import is additive: segments, flags and stages the document leaves out are kept, never deleted.
//!
//! Import first checks everything it can — JSON shape (with the path of each problem), keys,
//! duplicates, unknown environments and stages, and that every environment still compiles with
//! the document applied (unknown segment or flag references, flag-access cycles, remote config) —
//! and reports every problem at once. Only then does it write, in one transaction, one audit entry
//! per change, bumping the `flagStateVersion` of the environments whose served flags change. An
//! entry equal to what is stored is no change, so importing the same document again writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::{Actor, ServiceError};
use crate::eval::{compile_access_rules, compile_remote_config, CompileContext};
use crate::model::{
    AccessRules, ConfigVariant, FlagKey, RemoteConfig, Segment, SegmentCondition, SegmentKey, TargetedAccess,
};
use crate::runtime::Runtime;
use crate::store::audit::{insert_audit, NewAuditEntry};
use crate::store::config_file::{self as sql, FlagFields};
use crate::store::flags::{self as flag_sql, NewFlag, NewVersion, Versioned};
use crate::store::{now_ms, Environment, ReleaseStage, Store, StoreError};

/// The value of `format` this build writes and reads.
pub const FORMAT: &str = "gatehouse/1";

/// The whole configuration; see the module docs for its meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    pub format: String,
    #[serde(default)]
    pub environments: Vec<EnvironmentEntry>,
    #[serde(default)]
    pub stages: Vec<StageEntry>,
    #[serde(default)]
    pub segments: Vec<SegmentEntry>,
    #[serde(default)]
    pub flags: Vec<FlagEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentEntry {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub is_production: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageEntry {
    pub name: String,
    pub color: String,
    /// Environment key → default access rules.
    #[serde(default)]
    pub defaults: BTreeMap<String, AccessRules>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentEntry {
    pub key: SegmentKey,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub conditions: Vec<SegmentCondition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagEntry {
    pub key: FlagKey,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The release stage's name.
    pub stage: String,
    #[serde(default)]
    pub permanent: bool,
    #[serde(default)]
    pub archived: bool,
    /// Environment key → access rules.
    #[serde(default)]
    pub access: BTreeMap<String, AccessRules>,
    /// Environment key → remote config.
    #[serde(default)]
    pub remote_config: BTreeMap<String, ConfigEntry>,
}

/// A flag's remote config in one environment. The version is the database's business.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigEntry {
    #[serde(default)]
    pub variants: Vec<ConfigVariant>,
}

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Everything wrong with the document, one line each; nothing was written.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for ConfigFileError {
    fn from(error: StoreError) -> Self {
        ConfigFileError::Service(error.into())
    }
}

impl From<sqlx::Error> for ConfigFileError {
    fn from(error: sqlx::Error) -> Self {
        ConfigFileError::Service(error.into())
    }
}

impl Document {
    /// Reads a document. A shape error is reported with the path of every offending entry, not
    /// only the first one serde meets.
    pub fn parse(text: &str) -> Result<Document, ConfigFileError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigFileError::Invalid(vec![format!("not a JSON document: {e}")]))?;
        match Document::deserialize(&value) {
            Ok(document) => Ok(document),
            Err(error) => {
                let mut problems = shape_problems(&value);
                if problems.is_empty() {
                    problems.push(error.to_string());
                }
                Err(ConfigFileError::Invalid(problems))
            }
        }
    }

    /// The document as pretty-printed JSON with a final newline: the text `gatehouse export`
    /// writes.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }
}

/// Tries each entry (and each per-environment value inside it) on its own, so every problem is
/// named by its place in the document.
fn shape_problems(document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(top) = document.as_object() else {
        return vec!["the document must be a JSON object".into()];
    };
    for key in top.keys() {
        if !["format", "environments", "stages", "segments", "flags"].contains(&key.as_str()) {
            problems.push(format!(
                "{key}: unknown field (expected format, environments, stages, segments, flags)"
            ));
        }
    }
    match top.get("format") {
        Some(Value::String(_)) => {}
        Some(_) => problems.push(format!("format: must be the string {FORMAT:?}")),
        None => problems.push(format!("format: missing (write {FORMAT:?})")),
    }
    section::<EnvironmentEntry>(top.get("environments"), "environments", &[], &mut problems);
    section::<StageEntry>(
        top.get("stages"),
        "stages",
        &[("defaults", check_shape::<AccessRules>)],
        &mut problems,
    );
    section::<SegmentEntry>(top.get("segments"), "segments", &[], &mut problems);
    section::<FlagEntry>(
        top.get("flags"),
        "flags",
        &[
            ("access", check_shape::<AccessRules>),
            ("remoteConfig", check_shape::<ConfigEntry>),
        ],
        &mut problems,
    );
    problems
}

type ShapeCheck = fn(&Value, &str, &mut Vec<String>);

fn check_shape<T: DeserializeOwned>(value: &Value, path: &str, problems: &mut Vec<String>) {
    if let Err(error) = T::deserialize(value) {
        problems.push(format!("{path}: {error}"));
    }
}

/// Checks one array section; `maps` are per-environment objects inside each entry, checked value
/// by value and then left out of the entry's own check.
fn section<T: DeserializeOwned>(
    value: Option<&Value>,
    name: &str,
    maps: &[(&str, ShapeCheck)],
    problems: &mut Vec<String>,
) {
    let Some(value) = value else { return };
    let Some(entries) = value.as_array() else {
        problems.push(format!("{name}: must be an array"));
        return;
    };
    for (index, entry) in entries.iter().enumerate() {
        let label = entry
            .get("key")
            .or_else(|| entry.get("name"))
            .and_then(Value::as_str)
            .map(|k| format!(" ({k:?})"))
            .unwrap_or_default();
        let path = format!("{name}[{index}]{label}");
        let mut rest = entry.clone();
        if let Some(object) = rest.as_object_mut() {
            for (field, check) in maps {
                if let Some(Value::Object(values)) = object.get(*field) {
                    for (environment, value) in values {
                        check(value, &format!("{path}.{field}.{environment}"), problems);
                    }
                    object.remove(*field);
                }
            }
        }
        check_shape::<T>(&rest, &path, problems);
    }
}

/// One difference between the database and a document, in the order import applies them.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    ChangeEnvironment {
        key: String,
        from: EnvironmentEntry,
        to: EnvironmentEntry,
    },
    CreateStage {
        name: String,
        color: String,
    },
    ChangeStageColor {
        name: String,
        from: String,
        to: String,
    },
    SetStageDefault {
        stage: String,
        environment: String,
        from: Option<AccessRules>,
        to: Option<AccessRules>,
    },
    CreateSegment(SegmentEntry),
    ChangeSegment {
        from: SegmentEntry,
        to: SegmentEntry,
    },
    CreateFlag(FlagSummary),
    ChangeFlag {
        from: FlagSummary,
        to: FlagSummary,
    },
    SetAccess {
        flag: FlagKey,
        environment: String,
        from: Option<AccessRules>,
        to: AccessRules,
    },
    SetRemoteConfig {
        flag: FlagKey,
        environment: String,
        from: Option<Vec<ConfigVariant>>,
        to: Vec<ConfigVariant>,
    },
}

/// A flag without its per-environment rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagSummary {
    pub key: FlagKey,
    pub name: String,
    pub description: String,
    pub stage: String,
    pub permanent: bool,
    pub archived: bool,
}

fn compact<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::ChangeEnvironment { key, from, to } => write!(
                f,
                "change environment {key} from {} to {}",
                compact(from),
                compact(to)
            ),
            Change::CreateStage { name, color } => write!(f, "create stage {name:?} ({color})"),
            Change::ChangeStageColor { name, from, to } => {
                write!(f, "change the colour of stage {name:?} from {from} to {to}")
            }
            Change::SetStageDefault {
                stage,
                environment,
                from,
                to,
            } => write!(
                f,
                "change the default access of stage {stage:?} in {environment} from {} to {}",
                from.as_ref().map_or("none".into(), compact),
                to.as_ref().map_or("none".into(), compact)
            ),
            Change::CreateSegment(segment) => write!(f, "create segment {}", segment.key),
            Change::ChangeSegment { from, to } => write!(
                f,
                "change segment {} from {} to {}",
                to.key,
                compact(from),
                compact(to)
            ),
            Change::CreateFlag(flag) => write!(f, "create flag {} in stage {:?}", flag.key, flag.stage),
            Change::ChangeFlag { from, to } => {
                write!(
                    f,
                    "change flag {} from {} to {}",
                    to.key,
                    compact(from),
                    compact(to)
                )
            }
            Change::SetAccess {
                flag,
                environment,
                from: None,
                to,
            } => write!(f, "set access of {flag} in {environment} to {}", compact(to)),
            Change::SetAccess {
                flag,
                environment,
                from: Some(from),
                to,
            } => write!(
                f,
                "change access of {flag} in {environment} from {} to {}",
                compact(from),
                compact(to)
            ),
            Change::SetRemoteConfig {
                flag,
                environment,
                from: None,
                to,
            } => write!(
                f,
                "set remote config of {flag} in {environment} to {}",
                compact(to)
            ),
            Change::SetRemoteConfig {
                flag,
                environment,
                from: Some(from),
                to,
            } => write!(
                f,
                "change remote config of {flag} in {environment} from {} to {}",
                compact(from),
                compact(to)
            ),
        }
    }
}

/// What the database holds, in the document's terms.
struct Current {
    environments: Vec<Environment>,
    stages: Vec<ReleaseStage>,
    /// (stage id, environment id) → default rules.
    defaults: HashMap<(i64, i64), AccessRules>,
    segments: Vec<SegmentEntry>,
    flags: Vec<(i64, FlagSummary)>,
    /// (flag id, environment id) → current access rules.
    access: HashMap<(i64, i64), AccessRules>,
    /// (flag id, environment id) → current remote config variants.
    configs: HashMap<(i64, i64), Vec<ConfigVariant>>,
}

/// Stored JSON was written from these types, so failing to read it back is a server fault.
fn stored<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, ServiceError> {
    serde_json::from_str(json).map_err(|error| {
        tracing::error!(%error, what, "stored JSON does not parse");
        ServiceError::Internal
    })
}

fn stored_key<K: TryFrom<String>>(key: &str) -> Result<K, ServiceError> {
    K::try_from(key.to_string()).map_err(|_| {
        tracing::error!(key, "stored key is not valid");
        ServiceError::Internal
    })
}

async fn load(store: &Store) -> Result<Current, ServiceError> {
    let environments = store.environments().await?;
    let stages = store.release_stages().await?;
    let mut defaults = HashMap::new();
    for (stage, environment, json) in store.stage_defaults().await? {
        defaults.insert((stage, environment), stored(&json, "stage default")?);
    }
    let mut segments = Vec::new();
    for row in store.segments().await? {
        segments.push(SegmentEntry {
            key: stored_key(&row.key)?,
            name: row.name,
            description: row.description,
            conditions: stored(&row.conditions, "segment conditions")?,
        });
    }
    // Sorted here, not in SQL: PostgreSQL's collation would order keys differently from SQLite.
    segments.sort_by(|a, b| a.key.cmp(&b.key));
    let stage_names: HashMap<i64, &str> = stages.iter().map(|s| (s.id, s.name.as_str())).collect();
    let mut flags = Vec::new();
    for row in store.flags().await? {
        let summary = FlagSummary {
            key: stored_key(&row.key)?,
            name: row.name,
            description: row.description,
            stage: stage_names
                .get(&row.stage_id)
                .copied()
                .unwrap_or_default()
                .to_string(),
            permanent: row.permanent,
            archived: row.archived,
        };
        flags.push((row.id, summary));
    }
    flags.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    let mut access = HashMap::new();
    let mut configs = HashMap::new();
    for environment in &environments {
        for row in store.current_targeting(environment.id).await? {
            access.insert((row.flag_id, environment.id), stored(&row.json, "access rules")?);
        }
        for row in store.current_configs(environment.id).await? {
            let config: RemoteConfig = stored(&row.json, "remote config")?;
            configs.insert((row.flag_id, environment.id), config.variants);
        }
    }
    Ok(Current {
        environments,
        stages,
        defaults,
        segments,
        flags,
        access,
        configs,
    })
}

/// The whole configuration as a document.
pub async fn export(store: &Store) -> Result<Document, ServiceError> {
    let current = load(store).await?;
    let environments = current
        .environments
        .iter()
        .map(|e| EnvironmentEntry {
            key: e.key.clone(),
            name: e.name.clone(),
            is_production: e.is_production,
        })
        .collect();
    let stages = current
        .stages
        .iter()
        .map(|stage| StageEntry {
            name: stage.name.clone(),
            color: stage.color.clone(),
            defaults: current
                .environments
                .iter()
                .filter_map(|e| {
                    let rules = current.defaults.get(&(stage.id, e.id))?;
                    Some((e.key.clone(), rules.clone()))
                })
                .collect(),
        })
        .collect();
    let flags = current
        .flags
        .iter()
        .map(|(id, flag)| FlagEntry {
            key: flag.key.clone(),
            name: flag.name.clone(),
            description: flag.description.clone(),
            stage: flag.stage.clone(),
            permanent: flag.permanent,
            archived: flag.archived,
            access: current
                .environments
                .iter()
                .map(|e| {
                    let rules = current.access.get(&(*id, e.id)).cloned().unwrap_or_default();
                    (e.key.clone(), rules)
                })
                .collect(),
            remote_config: current
                .environments
                .iter()
                .filter_map(|e| {
                    let variants = current.configs.get(&(*id, e.id))?.clone();
                    Some((e.key.clone(), ConfigEntry { variants }))
                })
                .collect(),
        })
        .collect();
    Ok(Document {
        format: FORMAT.into(),
        environments,
        stages,
        segments: current.segments,
        flags,
    })
}

/// Same limits as the forms (`service::flags`).
fn check_text(problems: &mut Vec<String>, path: &str, value: &str, max: usize, required: bool) {
    if required && value.trim().is_empty() {
        problems.push(format!("{path}: cannot be empty"));
    } else if value.trim() != value {
        problems.push(format!("{path}: remove the leading or trailing spaces"));
    } else if value.chars().count() > max {
        problems.push(format!("{path}: use at most {max} characters"));
    }
}

fn duplicates<'a>(problems: &mut Vec<String>, section: &str, keys: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key) {
            problems.push(format!("{section}: {key:?} appears more than once"));
        }
    }
}

/// The flag key under which stage defaults and segments are compiled on their own.
const CHECK_KEY: &str = "gatehouse-import-check";

/// Checks `document` against the database and lists what importing it would change. Nothing is
/// written.
pub async fn plan(store: &Store, document: &Document) -> Result<Vec<Change>, ConfigFileError> {
    let current = load(store).await?;
    let mut problems = Vec::new();
    if document.format != FORMAT {
        problems.push(format!(
            "format: {:?} is not a format this version reads ({FORMAT:?})",
            document.format
        ));
    }
    let environments: HashMap<&str, &Environment> =
        current.environments.iter().map(|e| (e.key.as_str(), e)).collect();
    let known = current
        .environments
        .iter()
        .map(|e| e.key.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let check_environment = |problems: &mut Vec<String>, path: &str, key: &str| {
        if !environments.contains_key(key) {
            problems.push(format!(
                "{path}: no environment has the key {key:?} (environments: {known}); create it first"
            ));
        }
    };

    duplicates(
        &mut problems,
        "environments",
        document.environments.iter().map(|e| e.key.as_str()),
    );
    duplicates(
        &mut problems,
        "stages",
        document.stages.iter().map(|s| s.name.as_str()),
    );
    duplicates(
        &mut problems,
        "segments",
        document.segments.iter().map(|s| s.key.as_str()),
    );
    duplicates(
        &mut problems,
        "flags",
        document.flags.iter().map(|f| f.key.as_str()),
    );
    for (i, entry) in document.environments.iter().enumerate() {
        let path = format!("environments[{i}] ({:?})", entry.key);
        check_environment(&mut problems, &path, &entry.key);
        check_text(&mut problems, &format!("{path}.name"), &entry.name, 200, true);
    }
    for (i, stage) in document.stages.iter().enumerate() {
        let path = format!("stages[{i}] ({:?})", stage.name);
        check_text(&mut problems, &format!("{path}.name"), &stage.name, 100, true);
        check_text(&mut problems, &format!("{path}.color"), &stage.color, 32, true);
        for environment in stage.defaults.keys() {
            check_environment(&mut problems, &format!("{path}.defaults"), environment);
        }
    }
    for (i, segment) in document.segments.iter().enumerate() {
        let path = format!("segments[{i}] ({:?})", segment.key.as_str());
        check_text(&mut problems, &format!("{path}.name"), &segment.name, 200, true);
        check_text(
            &mut problems,
            &format!("{path}.description"),
            &segment.description,
            2000,
            false,
        );
    }
    let stage_names: HashSet<&str> = current
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .chain(document.stages.iter().map(|s| s.name.as_str()))
        .collect();
    for (i, flag) in document.flags.iter().enumerate() {
        let path = format!("flags[{i}] ({:?})", flag.key.as_str());
        check_text(&mut problems, &format!("{path}.name"), &flag.name, 200, true);
        check_text(
            &mut problems,
            &format!("{path}.description"),
            &flag.description,
            2000,
            false,
        );
        if !stage_names.contains(flag.stage.as_str()) {
            problems.push(format!(
                "{path}.stage: no release stage is named {:?}; list it under \"stages\" to create it",
                flag.stage
            ));
        }
        for environment in flag.access.keys() {
            check_environment(&mut problems, &format!("{path}.access"), environment);
        }
        for (environment, config) in &flag.remote_config {
            check_environment(&mut problems, &format!("{path}.remoteConfig"), environment);
            if config
                .variants
                .iter()
                .any(|v| v.key.trim().is_empty() || v.key.chars().count() > 255)
            {
                problems.push(format!(
                    "{path}.remoteConfig.{environment}: every value needs a key of 1 to 255 characters"
                ));
            }
        }
    }
    // Compiling skips unknown environments and stages, so it can report alongside the above.
    compile_check(&current, document, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigFileError::Invalid(problems));
    }
    Ok(changes(&current, document))
}

/// The default access rules of every (stage name, environment id) once the document is applied:
/// a listed stage's defaults are exactly the listed ones.
fn desired_defaults(current: &Current, document: &Document) -> HashMap<(String, i64), AccessRules> {
    let mut defaults = HashMap::new();
    for stage in &current.stages {
        if document.stages.iter().any(|s| s.name == stage.name) {
            continue;
        }
        for environment in &current.environments {
            if let Some(rules) = current.defaults.get(&(stage.id, environment.id)) {
                defaults.insert((stage.name.clone(), environment.id), rules.clone());
            }
        }
    }
    for stage in &document.stages {
        for environment in &current.environments {
            if let Some(rules) = stage.defaults.get(&environment.key) {
                defaults.insert((stage.name.clone(), environment.id), rules.clone());
            }
        }
    }
    defaults
}

/// The access rules a flag of the document has in an environment once applied.
fn desired_access(
    current: &Current,
    defaults: &HashMap<(String, i64), AccessRules>,
    flag: &FlagEntry,
    environment: &Environment,
) -> AccessRules {
    if let Some(rules) = flag.access.get(&environment.key) {
        return rules.clone();
    }
    match current.flags.iter().find(|(_, f)| f.key == flag.key) {
        Some((id, _)) => current
            .access
            .get(&(*id, environment.id))
            .cloned()
            .unwrap_or_default(),
        None => defaults
            .get(&(flag.stage.clone(), environment.id))
            .cloned()
            .unwrap_or_default(),
    }
}

/// Compiles every environment as it would be after the import, as each service write does for one
/// change, and records every failure.
fn compile_check(current: &Current, document: &Document, problems: &mut Vec<String>) {
    let mut segments: HashMap<SegmentKey, Segment> = HashMap::new();
    for entry in current.segments.iter().chain(&document.segments) {
        segments.insert(
            entry.key.clone(),
            Segment {
                key: entry.key.clone(),
                name: entry.name.clone(),
                conditions: entry.conditions.clone(),
            },
        );
    }
    let Ok(check_key) = FlagKey::parse(CHECK_KEY) else {
        return;
    };
    let no_flags = HashMap::new();
    let alone = CompileContext {
        segments: &segments,
        flags: &no_flags,
    };
    for segment in &document.segments {
        let uses = AccessRules::Some(TargetedAccess {
            segments: vec![segment.key.clone()],
            ..TargetedAccess::default()
        });
        if let Err(error) = compile_access_rules(&check_key, &uses, &alone) {
            problems.push(format!("segment {}: {error}", segment.key));
        }
    }
    let defaults = desired_defaults(current, document);
    for environment in &current.environments {
        let mut flags: HashMap<FlagKey, AccessRules> = current
            .flags
            .iter()
            .map(|(id, f)| {
                let rules = current
                    .access
                    .get(&(*id, environment.id))
                    .cloned()
                    .unwrap_or_default();
                (f.key.clone(), rules)
            })
            .collect();
        for flag in &document.flags {
            flags.insert(
                flag.key.clone(),
                desired_access(current, &defaults, flag, environment),
            );
        }
        let cx = CompileContext {
            segments: &segments,
            flags: &flags,
        };
        let mut keys: Vec<&FlagKey> = flags.keys().collect();
        keys.sort();
        for key in keys {
            if let Err(error) = compile_access_rules(key, &flags[key], &cx) {
                problems.push(format!("flag {key}, access in {}: {error}", environment.key));
            }
        }
        for stage in &document.stages {
            if let Some(rules) = stage.defaults.get(&environment.key) {
                if let Err(error) = compile_access_rules(&check_key, rules, &cx) {
                    problems.push(format!(
                        "stage {:?}, default access in {}: {error}",
                        stage.name, environment.key
                    ));
                }
            }
        }
        for flag in &document.flags {
            if let Some(config) = flag.remote_config.get(&environment.key) {
                let config = RemoteConfig {
                    version: 0,
                    variants: config.variants.clone(),
                };
                if let Err(error) = compile_remote_config(&config, &cx) {
                    problems.push(format!(
                        "flag {}, remote config in {}: {error}",
                        flag.key, environment.key
                    ));
                }
            }
        }
    }
}

/// The differences between a valid document and the database, in the order to apply them.
fn changes(current: &Current, document: &Document) -> Vec<Change> {
    let mut changes = Vec::new();
    for entry in &document.environments {
        let Some(environment) = current.environments.iter().find(|e| e.key == entry.key) else {
            continue;
        };
        let from = EnvironmentEntry {
            key: environment.key.clone(),
            name: environment.name.clone(),
            is_production: environment.is_production,
        };
        if &from != entry {
            changes.push(Change::ChangeEnvironment {
                key: entry.key.clone(),
                from,
                to: entry.clone(),
            });
        }
    }
    for stage in &document.stages {
        let existing = current.stages.iter().find(|s| s.name == stage.name);
        match existing {
            None => changes.push(Change::CreateStage {
                name: stage.name.clone(),
                color: stage.color.clone(),
            }),
            Some(existing) if existing.color != stage.color => changes.push(Change::ChangeStageColor {
                name: stage.name.clone(),
                from: existing.color.clone(),
                to: stage.color.clone(),
            }),
            Some(_) => {}
        }
        for environment in &current.environments {
            let from = existing.and_then(|s| current.defaults.get(&(s.id, environment.id)).cloned());
            let to = stage.defaults.get(&environment.key).cloned();
            if from != to {
                changes.push(Change::SetStageDefault {
                    stage: stage.name.clone(),
                    environment: environment.key.clone(),
                    from,
                    to,
                });
            }
        }
    }
    for segment in &document.segments {
        match current.segments.iter().find(|s| s.key == segment.key) {
            None => changes.push(Change::CreateSegment(segment.clone())),
            Some(existing) if existing != segment => changes.push(Change::ChangeSegment {
                from: existing.clone(),
                to: segment.clone(),
            }),
            Some(_) => {}
        }
    }
    let defaults = desired_defaults(current, document);
    for flag in &document.flags {
        let summary = FlagSummary {
            key: flag.key.clone(),
            name: flag.name.clone(),
            description: flag.description.clone(),
            stage: flag.stage.clone(),
            permanent: flag.permanent,
            archived: flag.archived,
        };
        let existing = current.flags.iter().find(|(_, f)| f.key == flag.key);
        match existing {
            None => changes.push(Change::CreateFlag(summary)),
            Some((_, from)) if *from != summary => changes.push(Change::ChangeFlag {
                from: from.clone(),
                to: summary,
            }),
            Some(_) => {}
        }
        for environment in &current.environments {
            let from = existing.and_then(|(id, _)| current.access.get(&(*id, environment.id)).cloned());
            let to = desired_access(current, &defaults, flag, environment);
            // A missing version serves No one, so writing No one over it would change nothing.
            let unchanged = match &from {
                Some(from) => *from == to,
                None => existing.is_some() && to == AccessRules::NoOne,
            };
            if !unchanged {
                changes.push(Change::SetAccess {
                    flag: flag.key.clone(),
                    environment: environment.key.clone(),
                    from,
                    to,
                });
            }
            if let Some(config) = flag.remote_config.get(&environment.key) {
                let from = existing.and_then(|(id, _)| current.configs.get(&(*id, environment.id)).cloned());
                if from.as_ref() != Some(&config.variants) {
                    changes.push(Change::SetRemoteConfig {
                        flag: flag.key.clone(),
                        environment: environment.key.clone(),
                        from,
                        to: config.variants.clone(),
                    });
                }
            }
        }
    }
    changes
}

/// Checks `document` and, if it is valid, makes the database match it in one transaction.
/// Returns the changes made (none when the database already matched).
pub async fn apply(
    store: &Store,
    runtime: &Runtime,
    actor: &Actor,
    document: &Document,
) -> Result<Vec<Change>, ConfigFileError> {
    let changes = plan(store, document).await?;
    if changes.is_empty() {
        return Ok(changes);
    }
    let environments = store.environments().await?;
    let environment_id = |key: &str| {
        environments
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.id)
            .ok_or_else(|| ServiceError::NotFound(format!("environment {key}")))
    };
    let mut stage_ids: HashMap<String, i64> = store
        .release_stages()
        .await?
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    let mut flag_ids: HashMap<String, i64> =
        store.flags().await?.into_iter().map(|f| (f.key, f.id)).collect();
    let stage_id = |ids: &HashMap<String, i64>, name: &str| {
        ids.get(name)
            .copied()
            .ok_or_else(|| ServiceError::NotFound(format!("release stage {name:?}")))
    };
    let every_environment: Vec<i64> = environments.iter().map(|e| e.id).collect();
    let mut changed_environments = BTreeSet::new();
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    for change in &changes {
        match change {
            Change::ChangeEnvironment { key, from, to } => {
                let id = environment_id(key)?;
                sql::update_environment(&mut tx, id, &to.name, to.is_production).await?;
                let subject = Subject::new("environment", key, Some(id));
                audit(
                    &mut tx,
                    actor,
                    "environment.changed",
                    subject,
                    Some(json!(from)),
                    Some(json!(to)),
                    now,
                )
                .await?;
            }
            Change::CreateStage { name, color } => {
                let id = sql::insert_stage(&mut tx, name, color, now).await?;
                stage_ids.insert(name.clone(), id);
                let after = json!({ "name": name, "color": color });
                audit(
                    &mut tx,
                    actor,
                    "stage.created",
                    Subject::new("stage", name, None),
                    None,
                    Some(after),
                    now,
                )
                .await?;
            }
            Change::ChangeStageColor { name, from, to } => {
                sql::update_stage_color(&mut tx, stage_id(&stage_ids, name)?, to).await?;
                let (before, after) = (json!({ "color": from }), json!({ "color": to }));
                let subject = Subject::new("stage", name, None);
                audit(
                    &mut tx,
                    actor,
                    "stage.changed",
                    subject,
                    Some(before),
                    Some(after),
                    now,
                )
                .await?;
            }
            Change::SetStageDefault {
                stage,
                environment,
                from,
                to,
            } => {
                let environment = environment_id(environment)?;
                let rules = to
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(internal)?;
                flag_sql::set_stage_default(
                    &mut tx,
                    stage_id(&stage_ids, stage)?,
                    environment,
                    rules.as_deref(),
                )
                .await?;
                let subject = Subject::new("stage", stage, Some(environment));
                let action = "stage.default_rules_changed";
                audit(
                    &mut tx,
                    actor,
                    action,
                    subject,
                    Some(json!(from)),
                    Some(json!(to)),
                    now,
                )
                .await?;
            }
            Change::CreateSegment(segment) => {
                let conditions = serde_json::to_string(&segment.conditions).map_err(internal)?;
                let key = segment.key.as_str();
                flag_sql::insert_segment(
                    &mut tx,
                    key,
                    &segment.name,
                    &segment.description,
                    &conditions,
                    now,
                )
                .await?;
                let subject = Subject::new("segment", key, None);
                audit(
                    &mut tx,
                    actor,
                    "segment.created",
                    subject,
                    None,
                    Some(json!(segment)),
                    now,
                )
                .await?;
                changed_environments.extend(&every_environment);
            }
            Change::ChangeSegment { from, to } => {
                let conditions = serde_json::to_string(&to.conditions).map_err(internal)?;
                let key = to.key.as_str();
                flag_sql::update_segment(&mut tx, key, &to.name, &to.description, &conditions, now).await?;
                let subject = Subject::new("segment", key, None);
                audit(
                    &mut tx,
                    actor,
                    "segment.changed",
                    subject,
                    Some(json!(from)),
                    Some(json!(to)),
                    now,
                )
                .await?;
                changed_environments.extend(&every_environment);
            }
            Change::CreateFlag(flag) => {
                let new = NewFlag {
                    key: flag.key.as_str(),
                    name: &flag.name,
                    description: &flag.description,
                    stage_id: stage_id(&stage_ids, &flag.stage)?,
                    owner_id: None,
                    permanent: flag.permanent,
                };
                let id = flag_sql::insert_flag(&mut tx, &new, actor.member_id, now).await?;
                if flag.archived {
                    let fields = flag_fields(flag, new.stage_id);
                    sql::update_flag_fields(&mut tx, id, &fields, actor.member_id, now).await?;
                }
                flag_ids.insert(flag.key.to_string(), id);
                let subject = Subject::new("flag", flag.key.as_str(), None);
                audit(
                    &mut tx,
                    actor,
                    "flag.created",
                    subject,
                    None,
                    Some(json!(flag)),
                    now,
                )
                .await?;
                changed_environments.extend(&every_environment);
            }
            Change::ChangeFlag { from, to } => {
                let id = flag_id(&flag_ids, &to.key)?;
                let fields = flag_fields(to, stage_id(&stage_ids, &to.stage)?);
                sql::update_flag_fields(&mut tx, id, &fields, actor.member_id, now).await?;
                let subject = Subject::new("flag", to.key.as_str(), None);
                audit(
                    &mut tx,
                    actor,
                    "flag.changed",
                    subject,
                    Some(json!(from)),
                    Some(json!(to)),
                    now,
                )
                .await?;
                changed_environments.extend(&every_environment);
            }
            Change::SetAccess {
                flag,
                environment,
                to,
                ..
            } => {
                let (flag_id, environment) = (flag_id(&flag_ids, flag)?, environment_id(environment)?);
                let json = serde_json::to_string(to).map_err(internal)?;
                let kind = Versioned::AccessRules;
                let (version, before) = latest(&mut tx, kind, flag_id, environment).await?;
                insert_version(&mut tx, kind, (flag_id, environment, version), &json, actor, now).await?;
                flag_sql::touch_flag(&mut tx, flag_id, actor.member_id, now).await?;
                let before = before.map(|rules| json!({ "version": version - 1, "rules": rules }));
                let after = json!({ "version": version, "rules": to });
                let subject = Subject::new("flag", flag.as_str(), Some(environment));
                let action = "flag.access_rules_changed";
                audit(&mut tx, actor, action, subject, before, Some(after), now).await?;
                changed_environments.insert(environment);
            }
            Change::SetRemoteConfig {
                flag,
                environment,
                to,
                ..
            } => {
                let (flag_id, environment) = (flag_id(&flag_ids, flag)?, environment_id(environment)?);
                let kind = Versioned::RemoteConfig;
                let (version, before) = latest(&mut tx, kind, flag_id, environment).await?;
                let config = RemoteConfig {
                    version: version as u64,
                    variants: to.clone(),
                };
                let json = serde_json::to_string(&config).map_err(internal)?;
                insert_version(&mut tx, kind, (flag_id, environment, version), &json, actor, now).await?;
                let subject = Subject::new("flag", flag.as_str(), Some(environment));
                let action = "flag.remote_config_changed";
                audit(&mut tx, actor, action, subject, before, Some(json!(config)), now).await?;
                changed_environments.insert(environment);
            }
        }
    }
    for environment in changed_environments {
        flag_sql::bump_flag_state_version(&mut tx, environment).await?;
    }
    tx.commit().await?;
    runtime.publish().await;
    Ok(changes)
}

fn internal(_: serde_json::Error) -> ServiceError {
    ServiceError::Internal
}

fn flag_fields<'a>(flag: &'a FlagSummary, stage_id: i64) -> FlagFields<'a> {
    FlagFields {
        name: &flag.name,
        description: &flag.description,
        stage_id,
        permanent: flag.permanent,
        archived: flag.archived,
    }
}

fn flag_id(ids: &HashMap<String, i64>, key: &FlagKey) -> Result<i64, ServiceError> {
    ids.get(key.as_str())
        .copied()
        .ok_or_else(|| ServiceError::NotFound(format!("flag {key}")))
}

/// The number the next version of a flag's rules or config gets, and the current one's JSON.
async fn latest(
    conn: &mut AnyConnection,
    kind: Versioned,
    flag_id: i64,
    environment_id: i64,
) -> Result<(i64, Option<Value>), ServiceError> {
    let latest = flag_sql::latest_version(conn, kind, flag_id, environment_id).await?;
    let next = latest.as_ref().map_or(1, |(v, _)| v + 1);
    Ok((
        next,
        latest.and_then(|(_, json)| serde_json::from_str(&json).ok()),
    ))
}

/// Appends version `at.2` for flag `at.0` in environment `at.1`.
async fn insert_version(
    conn: &mut AnyConnection,
    kind: Versioned,
    at: (i64, i64, i64),
    json: &str,
    actor: &Actor,
    now: i64,
) -> Result<(), ServiceError> {
    let (flag_id, environment_id, version) = at;
    let new = NewVersion {
        kind,
        flag_id,
        environment_id,
        version,
        json,
        actor: actor.member_id,
    };
    flag_sql::insert_version(conn, new, now).await?;
    Ok(())
}

/// What an audit entry is about.
struct Subject<'a> {
    kind: &'a str,
    key: &'a str,
    environment_id: Option<i64>,
}

impl<'a> Subject<'a> {
    fn new(kind: &'a str, key: &'a str, environment_id: Option<i64>) -> Self {
        Subject {
            kind,
            key,
            environment_id,
        }
    }
}

async fn audit(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<Value>,
    after: Option<Value>,
    now: i64,
) -> Result<(), ServiceError> {
    let entry = NewAuditEntry {
        actor_id: actor.member_id,
        actor_label: &actor.label,
        action,
        subject_type: subject.kind,
        subject_key: subject.key,
        environment_id: subject.environment_id,
        before,
        after,
    };
    insert_audit(conn, entry, now).await?;
    Ok(())
}
