//! One environment's flags compiled for serving, and the one function that builds them. The
//! change pipeline builds the same snapshot inside its transaction to validate a change, so what
//! passes validation is exactly what the runtime can serve.

use std::collections::HashMap;

use sqlx::AnyConnection;

use crate::eval::{
    compile_environment, compile_flags, compile_remote_config, CompileContext, CompileError, CompiledFlag,
    FieldTable,
};
use crate::model::{
    AccessRules, Environment, Flag, FlagDefinition, FlagKey, RemoteConfig, Segment, SegmentKey, Targeting,
    Version,
};
use crate::service::store::flags::{current_versions, flags_in, Decoded};
use crate::service::store::segments::segments_in;
use crate::service::store::{CorruptRow, StoreResult};

/// Everything the API needs to answer for one environment, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    pub environment: Environment,
    /// Flag definitions as `GET /features` serves them, sorted by key.
    pub definitions: Vec<FlagDefinition>,
    /// The same flags compiled for evaluation, in the same order.
    pub compiled: Vec<CompiledFlag>,
    /// The context fields the compiled rules read; bind a request's context to it before
    /// evaluating ([`crate::eval::FlatContext::bind`]).
    pub fields: FieldTable,
    index: HashMap<String, usize>,
    /// When this snapshot was built (epoch ms).
    pub built_at: i64,
}

impl Snapshot {
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn version(&self) -> i64 {
        self.environment.flag_state_version
    }
}

/// Why an environment cannot be built from what is stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
}

/// What an environment's snapshot is built from, as stored.
#[derive(Debug)]
pub struct Inputs {
    pub environment: Environment,
    /// Every flag, archived ones included (a flag-access condition may name an archived flag).
    pub flags: Vec<Flag>,
    pub segments: HashMap<SegmentKey, Segment>,
    /// The current access rules of every flag that has any, by flag id.
    pub access: HashMap<i64, Version<Decoded<AccessRules>>>,
    /// The current remote config of every flag that has one, by flag id.
    pub configs: HashMap<i64, Version<Decoded<RemoteConfig>>>,
}

/// Versions keyed by their flag's id.
fn by_flag<T>(versions: Vec<Version<T>>) -> HashMap<i64, Version<T>> {
    versions.into_iter().map(|v| (v.flag_id, v)).collect()
}

impl Inputs {
    /// Reads the inputs of `environment` on a connection or inside a transaction (which then sees
    /// its own writes).
    pub async fn load(conn: &mut AnyConnection, environment: Environment) -> StoreResult<Inputs> {
        let flags = flags_in(conn).await?;
        let segments = segments_in(conn)
            .await?
            .into_iter()
            .map(|record| (record.segment.key.clone(), record.segment))
            .collect();
        let access = by_flag(current_versions::<AccessRules>(conn, environment.id).await?);
        let configs = by_flag(current_versions::<RemoteConfig>(conn, environment.id).await?);
        Ok(Inputs {
            environment,
            flags,
            segments,
            access,
            configs,
        })
    }

    /// Every flag's current access rules by key (No one for a flag without any): what
    /// compilation resolves flag-access conditions against.
    pub fn access_by_key(&self) -> Result<HashMap<FlagKey, AccessRules>, CorruptRow> {
        self.flags
            .iter()
            .map(|flag| {
                let rules = match self.access.get(&flag.id) {
                    Some(version) => version.value.clone()?,
                    None => AccessRules::NoOne,
                };
                Ok((flag.key.clone(), rules))
            })
            .collect()
    }
}

impl Snapshot {
    /// Compiles every flag of the environment: the access rules and remote config of all flags
    /// (so a cycle or a dangling reference anywhere is an error), and serves those not archived.
    pub fn build(inputs: Inputs, built_at: i64) -> Result<Snapshot, BuildError> {
        let definitions = Self::definitions(&inputs)?;
        let (compiled, fields) = compile_flags(&definitions);
        let index = definitions
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.as_str().to_string(), i))
            .collect();
        Ok(Snapshot {
            environment: inputs.environment,
            definitions,
            compiled,
            fields,
            index,
            built_at,
        })
    }

    /// The served definitions of an environment, sorted by key: everything of [`Snapshot::build`]
    /// that can fail, so the change pipeline validates with it and skips the evaluation tables.
    pub fn definitions(inputs: &Inputs) -> Result<Vec<FlagDefinition>, BuildError> {
        let access = inputs.access_by_key()?;
        let cx = CompileContext {
            segments: &inputs.segments,
            flags: &access,
        };
        let mut compiled_rules = compile_environment(&cx)?;
        let mut definitions = Vec::new();
        for flag in &inputs.flags {
            let version = inputs.access.get(&flag.id).map_or(0, |v| v.version);
            // Archived flags are not served, but their config is checked all the same, so that
            // bringing one back cannot fail on a config stored while it was away.
            let config = match inputs.configs.get(&flag.id) {
                Some(version) => Some(compile_remote_config(&version.value.clone()?, &cx)?),
                None => None,
            };
            if flag.archived {
                continue;
            }
            definitions.push(FlagDefinition {
                key: flag.key.clone(),
                description: (!flag.description.is_empty()).then(|| flag.description.clone()),
                targeting: Targeting {
                    version: version as u64,
                    rules: compiled_rules.remove(&flag.key).unwrap_or_default(),
                },
                config,
            });
        }
        definitions.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        Ok(definitions)
    }
}
