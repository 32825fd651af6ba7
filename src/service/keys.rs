//! API keys: secret keys created (shown once, stored as a digest), listed by prefix, revoked;
//! publishable keys rotated (the old one may keep working for a grace period); any key named. A
//! change to the keys reloads the runtime's key table, here at once and on other replicas by
//! notice (and every replica reloads it every few seconds, which ends a grace period on time).

use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::flags::check_text;
use super::secrets::random_token;
use super::store::api_keys::{insert_secret_key, name_key, replace_publishable_key, revoke_secret_keys};
use super::store::seed::new_publishable_key;
use super::write::{Record, Write};
use crate::model::secret::digest;

/// Characters of a secret key shown in lists and accepted by `revoke`.
pub const PREFIX_CHARS: usize = 16;
/// Longest key name.
pub const KEY_NAME_MAX_CHARS: usize = 80;
/// Longest grace period of a rotated publishable key: a week.
pub const MAX_GRACE_HOURS: i64 = 168;

/// The environment's part of its keys: the first four letters and digits of its key.
fn short_name(environment: &crate::model::Environment) -> String {
    environment
        .key
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect()
}

/// A new secret key: `sec_<environment>_<40 random characters>`. The whole key is returned once.
pub async fn create_secret(w: &mut Write<'_>, environment: &str, name: &str) -> ServiceResult<String> {
    let name = check_text("name", name, KEY_NAME_MAX_CHARS, false)?;
    let environment = w.environment(environment)?;
    let key = format!("sec_{}_{}", short_name(&environment), random_token(40));
    let prefix: String = key.chars().take(PREFIX_CHARS).collect();
    let now = w.now;
    insert_secret_key(w.conn(), environment.id, &digest(&key), &prefix, &name, now).await?;
    let record = Record::of("api_key.created", "api_key", &prefix)
        .in_environment(environment.id)
        .after(json!({ "environment": environment.key, "prefix": prefix, "name": name }));
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

/// Gives an environment a new publishable key (as seeded, `pub_<environment>_<22 characters>`); the
/// old one keeps working for `grace_hours` (0: it stops at once), time to ship apps with the
/// new one. Returns the new key.
pub async fn rotate_publishable(
    w: &mut Write<'_>,
    environment: &str,
    grace_hours: i64,
) -> ServiceResult<String> {
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(ServiceError::invalid(
            "grace_hours",
            format!("the old key keeps working 0 to {MAX_GRACE_HOURS} hours"),
        ));
    }
    let environment = w.environment(environment)?;
    let key = new_publishable_key(&short_name(&environment));
    let now = w.now;
    let until = now + grace_hours * 3_600_000;
    let old = replace_publishable_key(w.conn(), environment.id, &key, until, now).await?;
    let shown = |value: &str| value.chars().take(12).collect::<String>();
    let subject = shown(&key);
    let record = Record::of("api_key.rotated", "api_key", &subject)
        .in_environment(environment.id)
        .before(json!({ "key": old.as_deref().map(shown), "works_until": until }))
        .after(json!({ "key": shown(&key) }));
    w.record(record).await?;
    w.keys_changed();
    Ok(key)
}

/// Names the key `id` ("" clears the name).
pub async fn name(w: &mut Write<'_>, id: i64, name: &str) -> ServiceResult<()> {
    let name = check_text("name", name, KEY_NAME_MAX_CHARS, false)?;
    let Some(environment_id) = name_key(w.conn(), id, &name).await? else {
        return Err(ServiceError::NotFound(format!("API key {id}")));
    };
    let subject = id.to_string();
    let record = Record::of("api_key.named", "api_key", &subject)
        .in_environment(environment_id)
        .after(json!({ "name": name }));
    w.record(record).await?;
    Ok(())
}
