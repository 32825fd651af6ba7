//! Business operations, shared by the admin UI, the CLI and the public API: the one door every
//! change goes through, and the queries the pages read.
//!
//! Every change is one call of [`Service::apply`] (or [`Service::apply_all`] for a batch such
//! as an import): "as this actor, apply this change". The pipeline (`change.rs`) authorizes the
//! actor ([`access::authorize`], the one decision), takes a write lock on the environments the
//! change touches, writes, records one audit entry and one outbox event per change
//! (`write.rs`), validates by building every touched environment as it now stands inside the
//! same transaction, bumps their `flagStateVersion`, commits, and publishes to the runtime and
//! the other replicas.
//!
//! Within the service the dependencies point one way: `handle` (the [`Service`] value) and the
//! leaves (`error`, `actor`, `access`, `clock`, `secrets`, `throttle`) are below `write`, which is
//! below the aggregates (`flags`, `segments`, `stages`, `environments`, `keys`, `members`,
//! `ingest`, `schedule`, `plans`, `requests`), which are below `change` (the pipeline), which is below `config_file`
//! (import), `sign_in` (setup, sign-in), `scheduler` (applies due scheduled changes),
//! `flusher` (usage counts) and `webhook_sender` (sends the outbox to webhook endpoints);
//! `pages` (what each admin page reads) sits beside the aggregates.
//! Files import their siblings directly, never through this one, so no two files import each
//! other.
//!
//! The store and the runtime are declared here, as children of the service: only the service
//! (and the runtime) can reach the database. Their folders stay at the top of `src/`.

pub mod access;
mod actor;
mod change;
mod clock;
pub mod config_file;
mod environments;
mod error;
mod flags;
mod flusher;
mod handle;
mod ingest;
mod keys;
mod members;
mod page_cache;
mod pages;
mod plans;
mod requests;
mod schedule;
mod scheduler;
mod secrets;
mod segments;
mod sign_in;
mod stages;
mod throttle;
mod tokens;
mod usage;
mod webhook_sender;
mod webhooks;
mod write;

#[path = "../runtime/mod.rs"]
pub mod runtime;
#[path = "../store/mod.rs"]
mod store;

pub use access::{Permission, Refusal};
pub use actor::{Actor, ActorKind};
pub use change::{Change, Outcome};
pub use clock::Clock;
pub use error::{ServiceError, ServiceResult};
pub use flags::{AccessChange, Grantee, NewFlag};
pub use flusher::{FLUSH_EVERY, SKETCHES_EVERY};
pub use handle::{OpenError, Service};
pub use ingest::{EntityUpsert, IngestLimits, IngestWrite};
pub use pages::{
    AccessCheck, AccessCount, AuditPage, CheckFilter, EditorOptions, EntityDetail, FlagDetail, FlagList,
    FlagPage, Overview, SegmentList, StagesPage, Team,
};
pub use sign_in::BAD_CREDENTIALS;
pub use stages::{resolve as resolve_stage, Direction, StageColor, StageName, StageRef};
pub use store::api_keys::ApiKeyInfo;
pub use store::audit::{AuditFilter, AuditRecord, ChangeEvent};
pub use store::entities::{EntityKind, EntityPage, EntityRow};
pub use store::flags::{Decoded, FlagFilter};
pub use store::members::Invitation;
pub use store::segments::SegmentRecord;
pub use store::sessions::DatabaseSessionStore;
pub use store::stages::StageDefault;
pub use store::CorruptRow;
pub use throttle::ACCOUNT_FAILURES;
pub use tokens::{CreatedToken, NewTokenRequest, TokenRefusal};
pub use usage::{DAILY_DAYS, HOURLY_DAYS, MAX_DAYS};
pub use webhook_sender::{sign as sign_webhook, RETRY_AFTER_MS as WEBHOOK_RETRY_AFTER_MS};
pub use webhooks::{WebhookChange, WebhookFields};
