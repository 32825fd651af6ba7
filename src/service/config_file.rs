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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::actor::Actor;
use super::change::Change;
use super::error::ServiceError;
use super::flags::{AccessChange, NewFlag, DESCRIPTION_MAX_CHARS, NAME_MAX_CHARS};
use super::handle::Service;
use super::stages::{StageColor, StageName, StageRef};
use super::store::flags::{current_versions, Decoded};
use crate::eval::{compile_access_rules, compile_remote_config, CompileContext};
use crate::model::{
    AccessRules, ConfigVariant, Environment, FlagKey, ReleaseStage, RemoteConfig, Segment, SegmentCondition,
    SegmentKey, TargetedAccess,
};

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

/// One difference between the database and a document, in the order `plan` finds them.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
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

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::ChangeEnvironment { key, from, to } => write!(
                f,
                "change environment {key} from {} to {}",
                compact(from),
                compact(to)
            ),
            Difference::CreateStage { name, color } => write!(f, "create stage {name:?} ({color})"),
            Difference::ChangeStageColor { name, from, to } => {
                write!(f, "change the colour of stage {name:?} from {from} to {to}")
            }
            Difference::SetStageDefault {
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
            Difference::CreateSegment(segment) => write!(f, "create segment {}", segment.key),
            Difference::ChangeSegment { from, to } => write!(
                f,
                "change segment {} from {} to {}",
                to.key,
                compact(from),
                compact(to)
            ),
            Difference::CreateFlag(flag) => write!(f, "create flag {} in stage {:?}", flag.key, flag.stage),
            Difference::ChangeFlag { from, to } => {
                write!(
                    f,
                    "change flag {} from {} to {}",
                    to.key,
                    compact(from),
                    compact(to)
                )
            }
            Difference::SetAccess {
                flag,
                environment,
                from: None,
                to,
            } => write!(f, "set access of {flag} in {environment} to {}", compact(to)),
            Difference::SetAccess {
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
            Difference::SetRemoteConfig {
                flag,
                environment,
                from: None,
                to,
            } => write!(
                f,
                "set remote config of {flag} in {environment} to {}",
                compact(to)
            ),
            Difference::SetRemoteConfig {
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
    /// (flag id, environment id) → current access rules, or the row that does not decode (an
    /// import that lists the flag's rules there replaces it).
    access: HashMap<(i64, i64), Decoded<AccessRules>>,
    /// (flag id, environment id) → current remote config variants.
    configs: HashMap<(i64, i64), Decoded<Vec<ConfigVariant>>>,
}

impl Current {
    /// The rules compilation sees for a flag in an environment: unreadable ones as No one, so the
    /// document's problems are still reported (the change pipeline refuses them if they stay).
    fn rules(&self, flag_id: i64, environment_id: i64) -> AccessRules {
        match self.access.get(&(flag_id, environment_id)) {
            Some(Ok(rules)) => rules.clone(),
            _ => AccessRules::NoOne,
        }
    }
}

async fn load(service: &Service) -> Result<Current, ServiceError> {
    let store = service.store();
    let environments = store.environments().await?;
    let stages = store.release_stages().await?;
    let defaults = store
        .stage_defaults()
        .await?
        .into_iter()
        .map(|d| ((d.stage_id, d.environment_id), d.rules))
        .collect();
    let mut segments: Vec<SegmentEntry> = store
        .segments()
        .await?
        .into_iter()
        .map(|record| SegmentEntry {
            key: record.segment.key,
            name: record.segment.name,
            description: record.description,
            conditions: record.segment.conditions,
        })
        .collect();
    // Sorted here, not in SQL: PostgreSQL's collation would order keys differently from SQLite.
    segments.sort_by(|a, b| a.key.cmp(&b.key));
    let stage_names: HashMap<i64, &str> = stages.iter().map(|s| (s.id, s.name.as_str())).collect();
    let mut flags: Vec<(i64, FlagSummary)> = store
        .flags()
        .await?
        .into_iter()
        .map(|flag| {
            let summary = FlagSummary {
                key: flag.key,
                name: flag.name,
                description: flag.description,
                stage: stage_names
                    .get(&flag.stage_id)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                permanent: flag.permanent,
                archived: flag.archived,
            };
            (flag.id, summary)
        })
        .collect();
    flags.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    let mut access = HashMap::new();
    let mut configs = HashMap::new();
    let mut conn = store.pool().acquire().await.map_err(ServiceError::from)?;
    for environment in &environments {
        for version in current_versions::<AccessRules>(&mut conn, environment.id).await? {
            access.insert((version.flag_id, environment.id), version.value);
        }
        for version in current_versions::<RemoteConfig>(&mut conn, environment.id).await? {
            let variants = version.value.map(|config| config.variants);
            configs.insert((version.flag_id, environment.id), variants);
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

/// The whole configuration as a document. Unreadable stored rules are an error that names them:
/// an export must say exactly what is stored.
pub async fn export(service: &Service, actor: &Actor) -> Result<Document, ServiceError> {
    super::access::authorize(actor, super::access::Permission::Read)?;
    let current = load(service).await?;
    let environments = current
        .environments
        .iter()
        .map(|e| EnvironmentEntry {
            key: e.key.to_string(),
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
                    Some((e.key.to_string(), rules.clone()))
                })
                .collect(),
        })
        .collect();
    let mut flags = Vec::with_capacity(current.flags.len());
    for (id, flag) in &current.flags {
        let mut access = BTreeMap::new();
        let mut remote_config = BTreeMap::new();
        for e in &current.environments {
            let rules = match current.access.get(&(*id, e.id)) {
                Some(rules) => rules.clone()?,
                None => AccessRules::NoOne,
            };
            access.insert(e.key.to_string(), rules);
            if let Some(variants) = current.configs.get(&(*id, e.id)) {
                let variants = variants.clone()?;
                remote_config.insert(e.key.to_string(), ConfigEntry { variants });
            }
        }
        flags.push(FlagEntry {
            key: flag.key.clone(),
            name: flag.name.clone(),
            description: flag.description.clone(),
            stage: flag.stage.clone(),
            permanent: flag.permanent,
            archived: flag.archived,
            access,
            remote_config,
        });
    }
    Ok(Document {
        format: FORMAT.into(),
        environments,
        stages,
        segments: current.segments,
        flags,
    })
}

/// Same limits as the forms (`service::flags`).
/// The forms' own validator ([`super::flags::check_text`]), and no leading or trailing spaces:
/// a form trims them, but an import that trimmed would export a different text.
fn check_text(problems: &mut Vec<String>, path: &str, value: &str, max: usize, required: bool) {
    match super::flags::check_text(path, value, max, required) {
        Err(error) => problems.push(format!("{path}: {error}")),
        Ok(trimmed) if trimmed != value => {
            problems.push(format!("{path}: remove the leading or trailing spaces"))
        }
        Ok(_) => {}
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
pub async fn plan(
    service: &Service,
    actor: &Actor,
    document: &Document,
) -> Result<Vec<Difference>, ConfigFileError> {
    super::access::authorize(actor, super::access::Permission::Read).map_err(ServiceError::from)?;
    let current = load(service).await?;
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
        check_text(
            &mut problems,
            &format!("{path}.name"),
            &entry.name,
            NAME_MAX_CHARS,
            true,
        );
    }
    for (i, stage) in document.stages.iter().enumerate() {
        let path = format!("stages[{i}] ({:?})", stage.name);
        // The same validators as the stage forms.
        if let Err(error) = StageName::parse(&stage.name) {
            problems.push(format!("{path}.name: {error}"));
        } else if stage.name.trim() != stage.name {
            problems.push(format!("{path}.name: remove the leading or trailing spaces"));
        }
        if let Err(error) = StageColor::parse(&stage.color) {
            problems.push(format!("{path}.color: {error}"));
        } else if StageColor::parse(&stage.color).is_ok_and(|c| c.as_str() != stage.color) {
            problems.push(format!(
                "{path}.color: write the colour in lowercase, as {:?}",
                stage.color.to_lowercase()
            ));
        }
        for environment in stage.defaults.keys() {
            check_environment(&mut problems, &format!("{path}.defaults"), environment);
        }
    }
    for (i, segment) in document.segments.iter().enumerate() {
        let path = format!("segments[{i}] ({:?})", segment.key.as_str());
        check_text(
            &mut problems,
            &format!("{path}.name"),
            &segment.name,
            NAME_MAX_CHARS,
            true,
        );
        check_text(
            &mut problems,
            &format!("{path}.description"),
            &segment.description,
            DESCRIPTION_MAX_CHARS,
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
        check_text(
            &mut problems,
            &format!("{path}.name"),
            &flag.name,
            NAME_MAX_CHARS,
            true,
        );
        check_text(
            &mut problems,
            &format!("{path}.description"),
            &flag.description,
            DESCRIPTION_MAX_CHARS,
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
            if let Some(rules) = stage.defaults.get(environment.key.as_str()) {
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
    if let Some(rules) = flag.access.get(environment.key.as_str()) {
        return rules.clone();
    }
    match current.flags.iter().find(|(_, f)| f.key == flag.key) {
        Some((id, _)) => current.rules(*id, environment.id),
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
            .map(|(id, f)| (f.key.clone(), current.rules(*id, environment.id)))
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
            if let Some(rules) = stage.defaults.get(environment.key.as_str()) {
                if let Err(error) = compile_access_rules(&check_key, rules, &cx) {
                    problems.push(format!(
                        "stage {:?}, default access in {}: {error}",
                        stage.name, environment.key
                    ));
                }
            }
        }
        for flag in &document.flags {
            if let Some(config) = flag.remote_config.get(environment.key.as_str()) {
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

/// The differences between a valid document and the database.
fn changes(current: &Current, document: &Document) -> Vec<Difference> {
    let mut changes = Vec::new();
    for entry in &document.environments {
        let Some(environment) = current.environments.iter().find(|e| e.key.as_str() == entry.key) else {
            continue;
        };
        let from = EnvironmentEntry {
            key: environment.key.to_string(),
            name: environment.name.clone(),
            is_production: environment.is_production,
        };
        if &from != entry {
            changes.push(Difference::ChangeEnvironment {
                key: entry.key.clone(),
                from,
                to: entry.clone(),
            });
        }
    }
    for stage in &document.stages {
        let existing = current.stages.iter().find(|s| s.name == stage.name);
        match existing {
            None => changes.push(Difference::CreateStage {
                name: stage.name.clone(),
                color: stage.color.clone(),
            }),
            Some(existing) if existing.color != stage.color => changes.push(Difference::ChangeStageColor {
                name: stage.name.clone(),
                from: existing.color.clone(),
                to: stage.color.clone(),
            }),
            Some(_) => {}
        }
        for environment in &current.environments {
            let from = existing.and_then(|s| current.defaults.get(&(s.id, environment.id)).cloned());
            let to = stage.defaults.get(environment.key.as_str()).cloned();
            if from != to {
                changes.push(Difference::SetStageDefault {
                    stage: stage.name.clone(),
                    environment: environment.key.to_string(),
                    from,
                    to,
                });
            }
        }
    }
    for segment in &document.segments {
        match current.segments.iter().find(|s| s.key == segment.key) {
            None => changes.push(Difference::CreateSegment(segment.clone())),
            Some(existing) if existing != segment => changes.push(Difference::ChangeSegment {
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
            None => changes.push(Difference::CreateFlag(summary)),
            Some((_, from)) if *from != summary => changes.push(Difference::ChangeFlag {
                from: from.clone(),
                to: summary,
            }),
            Some(_) => {}
        }
        for environment in &current.environments {
            let stored = existing.and_then(|(id, _)| current.access.get(&(*id, environment.id)));
            let to = desired_access(current, &defaults, flag, environment);
            // A missing version serves No one, so writing No one over it would change nothing;
            // an unreadable one is always replaced.
            let unchanged = match stored {
                Some(Ok(from)) => *from == to,
                Some(Err(_)) => false,
                None => existing.is_some() && to == AccessRules::NoOne,
            };
            if !unchanged {
                changes.push(Difference::SetAccess {
                    flag: flag.key.clone(),
                    environment: environment.key.to_string(),
                    from: stored.and_then(|s| s.clone().ok()),
                    to,
                });
            }
            if let Some(config) = flag.remote_config.get(environment.key.as_str()) {
                let from = existing.and_then(|(id, _)| current.configs.get(&(*id, environment.id)));
                if !matches!(from, Some(Ok(variants)) if *variants == config.variants) {
                    changes.push(Difference::SetRemoteConfig {
                        flag: flag.key.clone(),
                        environment: environment.key.to_string(),
                        from: from.and_then(|f| f.clone().ok()),
                        to: config.variants.clone(),
                    });
                }
            }
        }
    }
    changes
}

/// Checks `document` and, if it is valid, makes the database match it: every difference becomes a
/// change of the pipeline, and all of them apply in one transaction (or none does). Returns the
/// differences (none when the database already matched).
pub async fn apply(
    service: &Service,
    actor: &Actor,
    document: &Document,
) -> Result<Vec<Difference>, ConfigFileError> {
    // Importing changes configuration: refused to a reader even when the document changes nothing.
    super::access::authorize(actor, super::access::Permission::Edit).map_err(ServiceError::from)?;
    let differences = plan(service, actor, document).await?;
    if differences.is_empty() {
        return Ok(differences);
    }
    let owners: HashMap<FlagKey, Option<i64>> = service
        .store()
        .flags()
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .map(|f| (f.key, f.owner_id))
        .collect();
    let changes = pipeline_changes(&differences, &owners);
    service
        .apply_all(actor, changes)
        .await
        .map_err(|error| match error {
            ServiceError::Invalid { message, .. } => ConfigFileError::Invalid(vec![message]),
            other => ConfigFileError::Service(other),
        })?;
    Ok(differences)
}

/// The differences as changes of the pipeline, in an order where each finds what it refers to:
/// environments, stages, segments, flags (new flags with their first rules), stage defaults last.
fn pipeline_changes(differences: &[Difference], owners: &HashMap<FlagKey, Option<i64>>) -> Vec<Change> {
    let created: Vec<&FlagKey> = differences
        .iter()
        .filter_map(|d| match d {
            Difference::CreateFlag(flag) => Some(&flag.key),
            _ => None,
        })
        .collect();
    let mut early = Vec::new();
    let mut flags = Vec::new();
    let mut defaults = Vec::new();
    for difference in differences {
        match difference {
            Difference::ChangeEnvironment { key, to, .. } => early.push(Change::UpdateEnvironment {
                key: key.clone(),
                name: to.name.clone(),
                is_production: to.is_production,
            }),
            Difference::CreateStage { name, color } => early.push(Change::AddStage {
                name: name.clone(),
                color: color.clone(),
            }),
            Difference::ChangeStageColor { name, to, .. } => early.push(Change::UpdateStage {
                stage: StageRef::Name(name.clone()),
                name: name.clone(),
                color: to.clone(),
            }),
            Difference::SetStageDefault {
                stage,
                environment,
                to,
                ..
            } => defaults.push(Change::SetStageDefault {
                stage: StageRef::Name(stage.clone()),
                environment: environment.clone(),
                rules: to.clone(),
            }),
            Difference::CreateSegment(segment) | Difference::ChangeSegment { to: segment, .. } => {
                early.push(Change::SaveSegment {
                    key: segment.key.to_string(),
                    name: segment.name.clone(),
                    description: segment.description.clone(),
                    conditions: segment.conditions.clone(),
                    create: matches!(difference, Difference::CreateSegment(_)),
                })
            }
            Difference::CreateFlag(flag) => flags.push(Change::CreateFlag(NewFlag {
                key: flag.key.to_string(),
                name: flag.name.clone(),
                description: flag.description.clone(),
                stage: Some(StageRef::Name(flag.stage.clone())),
                owner_id: None,
                permanent: flag.permanent,
                archived: flag.archived,
                access: differences
                    .iter()
                    .filter_map(|d| match d {
                        Difference::SetAccess {
                            flag: key,
                            environment,
                            to,
                            ..
                        } if *key == flag.key => Some((environment.clone(), to.clone())),
                        _ => None,
                    })
                    .collect(),
            })),
            Difference::ChangeFlag { to, .. } => flags.push(Change::UpdateFlag {
                key: to.key.to_string(),
                name: to.name.clone(),
                description: to.description.clone(),
                owner_id: owners.get(&to.key).copied().flatten(),
                permanent: to.permanent,
                stage: StageRef::Name(to.stage.clone()),
                archived: to.archived,
            }),
            // A new flag's first rules travel with its creation.
            Difference::SetAccess { flag, .. } if created.contains(&flag) => {}
            Difference::SetAccess {
                flag,
                environment,
                to,
                ..
            } => flags.push(Change::SetAccess {
                flag: flag.to_string(),
                environment: environment.clone(),
                change: AccessChange::Set(to.clone()),
                expected_version: None,
            }),
            Difference::SetRemoteConfig {
                flag,
                environment,
                to,
                ..
            } => flags.push(Change::SetRemoteConfig {
                flag: flag.to_string(),
                environment: environment.clone(),
                variants: to.clone(),
                expected_version: None,
            }),
        }
    }
    early.into_iter().chain(flags).chain(defaults).collect()
}
