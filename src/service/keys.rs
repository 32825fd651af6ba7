//! Secret API keys: created (shown once, stored as a digest), listed by prefix, revoked. A change
//! to the keys reloads the runtime's key table, here at once and on other replicas by notice.

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::secrets::random_token;
use super::store::api_keys::{insert_secret_key, revoke_secret_keys};
use super::write::{Record, Write};
use crate::model::secret::digest;

/// Characters of a secret key shown in lists and accepted by `revoke`.
pub const PREFIX_CHARS: usize = 16;

/// A new secret key: `sec_<environment>_<40 random characters>`. The whole key is returned once.
pub async fn create_secret(w: &mut Write<'_>, environment: &str) -> ServiceResult<String> {
    let environment = w.environment(environment)?;
    let short: String = environment
        .key
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect();
    let key = format!("sec_{short}_{}", random_token(40));
    let prefix: String = key.chars().take(PREFIX_CHARS).collect();
    let now = w.now;
    insert_secret_key(w.conn(), environment.id, &digest(&key), &prefix, now).await?;
    let record = Record::of("api_key.created", "api_key", &prefix)
        .in_environment(environment.id)
        .after(json!({ "environment": environment.key, "prefix": prefix }));
    w.record(record).await?;
    w.keys_changed();
    Ok(key)
}

/// Revokes the secret key shown as `prefix` (the whole key is accepted too).
pub async fn revoke_secret(w: &mut Write<'_>, prefix: &str) -> ServiceResult<()> {
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
    let now = w.now;
    let revoked = revoke_secret_keys(w.conn(), &prefix, now).await?;
    let Some(environment_id) = revoked.first() else {
        return Err(ServiceError::NotFound(format!("live secret key {prefix}…")));
    };
    let record = Record::of("api_key.revoked", "api_key", &prefix)
        .in_environment(*environment_id)
        .before(json!({ "prefix": prefix }));
    w.record(record).await?;
    w.keys_changed();
    Ok(())
}
