//! Environments: their names and production mark. They are created once, at first start, and
//! never deleted (they own API keys); `gatehouse import` may rename them.

use serde_json::json;

use super::error::ServiceResult;
use super::flags::{check_text, NAME_MAX_CHARS};
use super::store::environments::update_environment;
use super::write::{Record, Write};

/// Renames an environment and sets its production mark. Saving what is stored writes nothing.
pub async fn update(w: &mut Write<'_>, key: &str, name: &str, is_production: bool) -> ServiceResult<()> {
    let environment = w.environment(key)?;
    let name = check_text("name", name, NAME_MAX_CHARS, true)?;
    if environment.name == name && environment.is_production == is_production {
        return Ok(());
    }
    update_environment(w.conn(), environment.id, &name, is_production).await?;
    let shown =
        |name: &str, is_production: bool| json!({ "key": key, "name": name, "isProduction": is_production });
    let record = Record::of("environment.changed", "environment", key)
        .in_environment(environment.id)
        .before(shown(&environment.name, environment.is_production))
        .after(shown(&name, is_production));
    w.record(record).await
}
