//! Usage: the writes of the counts and of retention (applied by the change pipeline, see
//! `flusher.rs` for who applies them), and the reads behind the Usage section, the Clean-up page
//! and `gatehouse usage` / `gatehouse stale`.

use std::collections::HashMap;

use super::access::{authorize, Permission};
use super::actor::Actor;
use super::error::{ServiceError, ServiceResult};
use super::handle::Service;
use super::runtime::usage::UsageBatch;
use super::runtime::usage::DAY_MS;
use super::store::usage::{add_usage, prune_usage, put_setting, stale_announced_at};
use super::write::{Record, Write};
use crate::model::{
    EnvironmentUsage, FlagUsage, StaleFlag, StaleReason, StaleSettings, UsageDay, UsageMarker,
};

/// How long hourly counts are kept.
pub const HOURLY_DAYS: i64 = 14;
/// How long daily companies and users exposed are kept.
pub const DAILY_DAYS: i64 = 400;
/// Most days a usage read covers.
pub const MAX_DAYS: u32 = 400;

/// The names of the staleness settings.
const RELEASED_DAYS: &str = "stale.released_days";
const UNCHECKED_DAYS: &str = "stale.unchecked_days";

impl Service {
    /// A flag's usage over the last `days` days (today included), per environment (only
    /// `environment` when given), with the changes of its targeting and stage.
    pub async fn flag_usage(
        &self,
        actor: &Actor,
        flag_key: &str,
        environment: Option<&str>,
        days: u32,
    ) -> ServiceResult<FlagUsage> {
        authorize(actor, Permission::Read)?;
        if days == 0 || days > MAX_DAYS {
            let message = format!("days must be between 1 and {MAX_DAYS}");
            return Err(ServiceError::invalid("days", message));
        }
        let store = self.store();
        let flag = store.known_flag(flag_key).await?;
        let key = flag.key.as_str();
        let since = self.period_start(days);
        let mut environments = store.environments().await?;
        if let Some(wanted) = environment {
            environments.retain(|e| e.key.as_str() == wanted);
            if environments.is_empty() {
                return Err(ServiceError::NotFound(format!("environment {wanted:?}")));
            }
        }
        let rows = store.flag_usage(key, since).await?;
        let checked = store.last_checked(Some(&[key.to_string()])).await?;
        let per_environment = environments
            .iter()
            .map(|environment| {
                let days = (0..i64::from(days))
                    .map(|i| {
                        let day = since + i * DAY_MS;
                        let Some(counts) = rows.days.get(&(environment.id, day)) else {
                            return UsageDay {
                                day,
                                ..UsageDay::default()
                            };
                        };
                        UsageDay {
                            day,
                            enabled: counts.enabled,
                            disabled: counts.disabled,
                            variants: counts.variants.clone().into_iter().collect(),
                            companies: counts.companies,
                            users: counts.users,
                        }
                    })
                    .collect();
                EnvironmentUsage {
                    environment: environment.key.to_string(),
                    name: environment.name.clone(),
                    days,
                    companies: rows.companies.get(&environment.id).copied().unwrap_or(0),
                    users: rows.users.get(&environment.id).copied().unwrap_or(0),
                    last_checked: checked.get(&(key.to_string(), environment.id)).copied(),
                }
            })
            .collect();
        let markers = store
            .flag_markers(key, since)
            .await?
            .into_iter()
            .map(|(at, kind, environment)| UsageMarker {
                at,
                label: marker_label(&kind),
                environment,
            })
            .collect();
        Ok(FlagUsage {
            flag: key.to_string(),
            days,
            since,
            environments: per_environment,
            markers,
        })
    }

    /// When each of `keys` (every flag when `None`) was last checked in any environment: flag
    /// key → epoch ms.
    pub async fn last_checked(
        &self,
        actor: &Actor,
        keys: Option<&[String]>,
    ) -> ServiceResult<HashMap<String, i64>> {
        authorize(actor, Permission::Read)?;
        let mut latest: HashMap<String, i64> = HashMap::new();
        for ((key, _), at) in self.store().last_checked(keys).await? {
            let seen = latest.entry(key).or_insert(at);
            *seen = (*seen).max(at);
        }
        Ok(latest)
    }

    /// The start of the first of the last `days` UTC days, today included (epoch ms).
    fn period_start(&self, days: u32) -> i64 {
        let today = self.clock().now_ms().div_euclid(DAY_MS) * DAY_MS;
        today - (i64::from(days) - 1) * DAY_MS
    }

    /// Checks per day over the last `days` days for each of `keys`, oldest day first, over all
    /// environments: the flags list's sparklines.
    pub async fn daily_checks(
        &self,
        actor: &Actor,
        keys: &[String],
        days: u32,
    ) -> ServiceResult<HashMap<String, Vec<i64>>> {
        authorize(actor, Permission::Read)?;
        let since = self.period_start(days);
        let rows = self.store().daily_checks(keys, since).await?;
        Ok(rows
            .into_iter()
            .map(|(key, counts)| {
                let mut series = vec![0; days as usize];
                for (day, checks) in counts {
                    if let Ok(i) = usize::try_from((day - since) / DAY_MS) {
                        if let Some(slot) = series.get_mut(i) {
                            *slot += checks;
                        }
                    }
                }
                (key, series)
            })
            .collect())
    }

    /// The staleness settings (their defaults where none is stored).
    pub async fn stale_settings(&self, actor: &Actor) -> ServiceResult<StaleSettings> {
        authorize(actor, Permission::Read)?;
        let defaults = StaleSettings::default();
        let read = |value: Option<String>, default: i64, least: i64| {
            value
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|d| *d >= least)
                .unwrap_or(default)
        };
        let (released, unchecked) = (
            self.store().setting(RELEASED_DAYS).await?,
            self.store().setting(UNCHECKED_DAYS).await?,
        );
        Ok(StaleSettings {
            released_days: read(released, defaults.released_days, 0),
            unchecked_days: read(unchecked, defaults.unchecked_days, 1),
        })
    }

    /// The temporary flags that are stale now, with their reasons, stalest first. Archived and
    /// permanent flags never are.
    pub async fn stale_flags(&self, actor: &Actor) -> ServiceResult<Vec<StaleFlag>> {
        let settings = self.stale_settings(actor).await?;
        let store = self.store();
        let now = self.clock().now_ms();
        let stages = store.release_stages().await?;
        let Some(last_stage) = stages.iter().max_by_key(|s| (s.sort_order, s.id)) else {
            return Ok(Vec::new());
        };
        let flags: Vec<_> = store
            .flags()
            .await?
            .into_iter()
            .filter(|f| !f.archived && !f.permanent)
            .collect();
        // Only flags in the last stage can be stale for being released, when their production
        // access is Everyone (found by the stored text, without reading other flags' rules).
        let released: Vec<i64> = flags
            .iter()
            .filter(|f| f.stage_id == last_stage.id)
            .map(|f| f.id)
            .collect();
        // flag id → when its production access became Everyone (None: not Everyone somewhere).
        let mut everyone_since: HashMap<i64, Option<i64>> = HashMap::new();
        let production: Vec<_> = store
            .environments()
            .await?
            .into_iter()
            .filter(|e| e.is_production)
            .collect();
        for environment in &production {
            let everyone = store.everyone_since(environment.id).await?;
            for id in &released {
                let since = everyone.get(id).copied();
                let entry = everyone_since.entry(*id).or_insert(since);
                *entry = match (*entry, since) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
        let moves = store.last_stage_moves().await?;
        let checked = self.last_checked(actor, None).await?;
        let days_since = |since: i64| (now - since).div_euclid(DAY_MS);
        let mut stale = Vec::new();
        for flag in flags {
            let key = flag.key.to_string();
            let mut reasons = Vec::new();
            let released = flag.stage_id == last_stage.id && !production.is_empty();
            if let (true, Some(Some(everyone))) = (released, everyone_since.get(&flag.id)) {
                let moved = moves.get(&key).copied().unwrap_or(flag.created_at);
                let since = (*everyone).max(moved);
                if days_since(since) >= settings.released_days {
                    reasons.push(StaleReason::Released {
                        since,
                        days: days_since(since),
                    });
                }
            }
            let last_checked = checked.get(&key).copied();
            let since = last_checked.unwrap_or(flag.created_at);
            if days_since(since) >= settings.unchecked_days {
                reasons.push(StaleReason::Unchecked {
                    since,
                    days: days_since(since),
                });
            }
            if reasons.is_empty() {
                continue;
            }
            let stage = stages
                .iter()
                .find(|s| s.id == flag.stage_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            stale.push(StaleFlag {
                key,
                name: flag.name,
                stage,
                reasons,
                last_checked,
            });
        }
        stale.sort_by_key(|f| f.reasons.iter().map(StaleReason::since).min());
        Ok(stale)
    }
}

/// Most days either staleness threshold may be.
const MAX_STALE_DAYS: i64 = 3650;

/// Adds a flush's counts (`Change::RecordUsage`).
pub async fn record(w: &mut Write<'_>, batch: &UsageBatch) -> ServiceResult<()> {
    Ok(add_usage(w.conn(), batch).await?)
}

/// Deletes the usage rows past their retention (`Change::PruneUsage`).
pub async fn prune(w: &mut Write<'_>, hourly_before: i64, daily_before: i64) -> ServiceResult<(u64, u64)> {
    Ok(prune_usage(w.conn(), hourly_before, daily_before).await?)
}

/// Records that the flag became stale (`flag.became_stale`, the webhooks' "flag became stale"),
/// unless that was announced already since it became stale (`since`, its earliest reason's
/// start); true when announced now.
pub async fn announce_stale(w: &mut Write<'_>, flag: &StaleFlag) -> ServiceResult<bool> {
    let since = flag.reasons.iter().map(StaleReason::since).min().unwrap_or(0);
    if stale_announced_at(w.conn(), &flag.key)
        .await?
        .is_some_and(|at| at >= since)
    {
        return Ok(false);
    }
    let reasons: Vec<String> = flag.reasons.iter().map(StaleReason::describe).collect();
    let record = Record::of("flag.became_stale", "flag", &flag.key)
        .after(serde_json::json!({ "name": flag.name, "stage": flag.stage, "reasons": reasons }));
    w.record(record).await?;
    Ok(true)
}

/// Stores the staleness thresholds (audited as `settings.stale_changed`).
pub async fn set_stale_settings(
    w: &mut Write<'_>,
    released_days: i64,
    unchecked_days: i64,
) -> ServiceResult<()> {
    // 0 released days: a flag released to everyone is a clean-up candidate at once.
    for (field, days, least) in [
        ("released_days", released_days, 0),
        ("unchecked_days", unchecked_days, 1),
    ] {
        if !(least..=MAX_STALE_DAYS).contains(&days) {
            let message = format!("a whole number of days from {least} to {MAX_STALE_DAYS}");
            return Err(ServiceError::invalid(field, message));
        }
    }
    put_setting(w.conn(), RELEASED_DAYS, &released_days.to_string()).await?;
    put_setting(w.conn(), UNCHECKED_DAYS, &unchecked_days.to_string()).await?;
    let after = serde_json::json!({ "releasedDays": released_days, "uncheckedDays": unchecked_days });
    w.record(Record::of("settings.stale_changed", "settings", "stale").after(after))
        .await?;
    Ok(())
}

/// A chart marker's words for a change-event kind.
fn marker_label(kind: &str) -> String {
    match kind {
        "flag.stage_changed" => "stage moved",
        "flag.access_rules_changed" => "access changed",
        "flag.access_rules_copied" => "access copied",
        "flag.access_rules_rolled_back" => "access rolled back",
        "flag.stage_defaults_applied" => "stage access applied",
        "flag.remote_config_changed" => "remote config changed",
        "flag.archived" => "archived",
        "flag.unarchived" => "restored",
        other => other.strip_prefix("flag.").unwrap_or(other),
    }
    .replace('_', " ")
}
