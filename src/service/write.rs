//! One change pipeline's transaction: the environments it holds, who acts, the time, and what the
//! writes have touched. Every change records itself through [`Write::record`], the one place that
//! writes an audit entry and its outbox event.

use std::collections::BTreeSet;

use sqlx::{Any, AnyConnection, Transaction};

use super::actor::Actor;
use super::error::{ServiceError, ServiceResult};
use super::store::audit::insert_change;
pub use super::store::audit::Record;
use super::store::entities::Ingested;
use super::store::environments::environments_in;
use crate::model::Environment;

/// The open transaction of one call of the pipeline.
pub struct Write<'a> {
    tx: Transaction<'static, Any>,
    pub actor: &'a Actor,
    pub now: i64,
    /// Every environment, as the transaction reads them.
    pub environments: Vec<Environment>,
    /// Environments whose served flags the writes changed: validated, bumped and published.
    touched: BTreeSet<i64>,
    keys_changed: bool,
    /// Companies and users an ingest stored, for the runtime's cache after the commit.
    pub ingested: Vec<Ingested>,
    /// The writes carry a review: an approved change request, or an admin's audited bypass. A
    /// member may change a protected environment only so.
    pub reviewed: bool,
}

impl<'a> Write<'a> {
    /// Opens the pipeline's view of a begun transaction.
    pub async fn new(
        mut tx: Transaction<'static, Any>,
        actor: &'a Actor,
        now: i64,
    ) -> ServiceResult<Write<'a>> {
        let environments = environments_in(&mut tx).await?;
        Ok(Write {
            tx,
            actor,
            now,
            environments,
            touched: BTreeSet::new(),
            keys_changed: false,
            ingested: Vec::new(),
            reviewed: false,
        })
    }

    /// The transaction's connection, for the store's write functions.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The environment with `key`, or an error for the `environment` field.
    pub fn environment(&self, key: &str) -> ServiceResult<Environment> {
        self.environments
            .iter()
            .find(|e| e.key.as_str() == key)
            .cloned()
            .ok_or_else(|| {
                ServiceError::invalid("environment", format!("no environment has the key {key:?}"))
            })
    }

    /// Refuses a member's unreviewed change of the access or remote config of a protected
    /// environment. The command line and Gatehouse itself are not held to it (they act for the
    /// operator, who has the database anyway).
    pub fn check_protection(&self, environment: &Environment) -> ServiceResult<()> {
        if environment.required_approvals == 0 || self.reviewed || self.actor.is_operator() {
            return Ok(());
        }
        let n = environment.required_approvals;
        Err(ServiceError::Refused(format!(
            "{} is protected: a change here needs the approval of {n} other member{}; file a change request{}",
            environment.name,
            if n == 1 { "" } else { "s" },
            if self.actor.role() == Some(crate::model::member::Role::Admin) {
                " (or save without review, giving a reason)"
            } else {
                ""
            }
        )))
    }

    /// Marks an environment's served flags as changed.
    pub fn touch(&mut self, environment_id: i64) {
        self.touched.insert(environment_id);
    }

    /// Marks every environment's served flags as changed (flags, segments: all environments).
    pub fn touch_all(&mut self) {
        let ids: Vec<i64> = self.environments.iter().map(|e| e.id).collect();
        self.touched.extend(ids);
    }

    pub fn keys_changed(&mut self) {
        self.keys_changed = true;
    }

    pub fn touched(&self) -> Vec<i64> {
        self.touched.iter().copied().collect()
    }

    /// Writes the change's audit entry and its outbox event.
    pub async fn record(&mut self, record: Record<'_>) -> ServiceResult<()> {
        let actor = (self.actor.member_id(), self.actor.label.as_str());
        insert_change(&mut self.tx, actor, &record, self.now).await?;
        Ok(())
    }

    /// Commits; returns what to publish: the touched environments and whether keys changed.
    pub async fn commit(self) -> ServiceResult<Committed> {
        self.tx.commit().await?;
        Ok(Committed {
            touched: self.touched.into_iter().collect(),
            keys_changed: self.keys_changed,
            ingested: self.ingested,
        })
    }
}

/// What a committed pipeline call changed.
pub struct Committed {
    pub touched: Vec<i64>,
    pub keys_changed: bool,
    pub ingested: Vec<Ingested>,
}
