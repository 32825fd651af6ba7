//! The evaluation engine: pure functions from rules + context + clock to decisions.
//!
//! Bit-compatible with `@reflag/flag-evaluation` 1.0.1 (flattening, JS number and date coercions,
//! the SHA-256 rollout hash, short-circuit order, missing-field reporting, first-match value), plus
//! what a server needs around it: compilation of the UI access model into wire rules
//! ([`compile`]), rule lists compiled once per snapshot ([`CompiledFlag`]) and evaluated in bulk
//! with one flattening per request ([`evaluate_flags`]), decision explanations ([`explain`]) and the
//! `gatehouse evaluate` command ([`cli`]). No I/O, no clock and no global state: time is an argument (epoch
//! milliseconds, UTC), so the module also builds for wasm32.

pub mod cli;
pub mod compile;
mod engine;
pub mod explain;
mod fields;
mod flags;
mod flatten;
mod hash;
pub mod jsdate;
pub mod jsnum;
mod operators;

pub use compile::{
    compile_access_rules, compile_environment, compile_remote_config, CompileContext, CompileError,
};
pub use engine::{CompiledRules, RulesOutcome};
pub use explain::{explain_flag, explain_rules, Explanation};
pub use fields::FieldTable;
pub use flags::{
    compile_flags, evaluate_flag_rules, evaluate_flags, CompiledFlag, ConfigResult, Decided, FlagResult,
    RulesEvaluation, Scratch,
};
pub use flatten::{flatten, FlatContext};
pub use hash::{hash_int, rollout_bucket};
pub use operators::evaluate_operator;
