//! Secret API keys: created (shown once), listed by prefix, revoked.

use serde_json::json;

use super::{Actor, ServiceError, ServiceResult};
use crate::auth::tokens::{random_token, sha256_hex};
use crate::store::api_keys::{insert_secret_key, revoke_secret_keys};
use crate::store::audit::{insert_audit, NewAuditEntry};
use crate::store::{now_ms, Store};

/// Characters of a secret key shown in lists and accepted by `revoke`.
const PREFIX_CHARS: usize = 16;

/// A new secret key: `sec_<environment>_<40 random characters>`. The whole key is returned once.
pub async fn create_secret_key(store: &Store, actor: &Actor, environment_key: &str) -> ServiceResult<String> {
    let environment = store.environment_by_key(environment_key).await?.ok_or_else(|| {
        ServiceError::invalid(
            "environment",
            format!("no environment has the key {environment_key:?}"),
        )
    })?;
    let short: String = environment
        .key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect();
    let key = format!("sec_{short}_{}", random_token(40));
    let prefix: String = key.chars().take(PREFIX_CHARS).collect();
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    insert_secret_key(&mut tx, environment.id, &sha256_hex(&key), &prefix, now).await?;
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "api_key.created",
            subject_type: "api_key",
            subject_key: &prefix,
            environment_id: Some(environment.id),
            after: Some(json!({ "environment": environment.key, "prefix": prefix })),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Revokes the secret key shown as `prefix` (the whole key is accepted too).
pub async fn revoke_secret_key(store: &Store, actor: &Actor, prefix: &str) -> ServiceResult<()> {
    let prefix: String = prefix
        .trim()
        .trim_end_matches('…')
        .chars()
        .take(PREFIX_CHARS)
        .collect();
    if prefix.chars().count() < PREFIX_CHARS {
        return Err(ServiceError::invalid(
            "prefix",
            format!("give the first {PREFIX_CHARS} characters of the key"),
        ));
    }
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    if revoke_secret_keys(&mut tx, &prefix, now).await? == 0 {
        return Err(ServiceError::NotFound(format!("live secret key {prefix}…")));
    }
    insert_audit(
        &mut tx,
        NewAuditEntry {
            actor_id: actor.member_id,
            actor_label: &actor.label,
            action: "api_key.revoked",
            subject_type: "api_key",
            subject_key: &prefix,
            before: Some(json!({ "prefix": prefix })),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
