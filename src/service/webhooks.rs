//! Webhook endpoints as admins manage them (create, edit, pause, delete, redeliver), and the
//! sender's bookkeeping (fan-out, claims, attempts) as changes of the pipeline. Sending itself is
//! `webhook_sender.rs`. The signing secret never enters the audit log or the outbox.

use base64::Engine;
use serde_json::json;

use super::error::{ServiceError, ServiceResult};
use super::store::webhooks::{self as stored, Attempt, Claimed, EndpointFields};
use super::write::{Record, Write};
use crate::model::webhook::{WebhookEndpoint, WebhookFormat, EVENT_FAMILIES};

/// Longest endpoint name and URL.
const MAX_NAME: usize = 80;
const MAX_URL: usize = 2000;
/// How many event types or families one endpoint may list.
const MAX_EVENTS: usize = 50;
/// An outbox event is fanned out for good once this much older than the pass (see
/// [`stored::fan_out`]): longer than any change's transaction.
pub const SETTLE_MS: i64 = 60_000;

/// An endpoint as an admin writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookFields {
    pub name: String,
    pub url: String,
    /// Event types (`flag.archived`) or families (`flag.*`); empty: every event.
    pub events: Vec<String>,
    pub format: WebhookFormat,
}

impl WebhookFields {
    /// The fields as the store writes them.
    fn stored(&self) -> EndpointFields<'_> {
        EndpointFields {
            name: &self.name,
            url: &self.url,
            events: &self.events,
            format: self.format,
        }
    }
}

/// What an admin does to an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookChange {
    Create(WebhookFields),
    Update {
        id: i64,
        fields: WebhookFields,
    },
    SetPaused {
        id: i64,
        paused: bool,
    },
    /// A new signing secret; the old one stops at once.
    RotateSecret {
        id: i64,
    },
    Delete {
        id: i64,
    },
    /// Sends a delivery again, from the start of the retry schedule.
    Redeliver {
        delivery_id: i64,
    },
}

/// The sender's bookkeeping (Gatehouse itself; not audited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookWork {
    /// Makes the deliveries of new outbox events.
    FanOut,
    /// Leases up to `limit` due deliveries for `lease_ms`.
    Claim { limit: i64, lease_ms: i64 },
    /// Records attempts.
    Settle(Vec<Attempt>),
}

/// The trimmed, checked fields: a name, an http(s) URL without credentials, known event names.
fn checked(fields: WebhookFields) -> ServiceResult<WebhookFields> {
    let name = fields.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ServiceError::invalid(
            "name",
            format!("give the endpoint a name of 1 to {MAX_NAME} characters"),
        ));
    }
    let url = fields.url.trim().to_string();
    let bad_url = |why: &str| ServiceError::invalid("url", format!("{url:?} {why}"));
    if url.len() > MAX_URL {
        return Err(bad_url(&format!("is longer than {MAX_URL} characters")));
    }
    let parsed = url::Url::parse(&url).map_err(|e| bad_url(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad_url("is not an http:// or https:// address"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad_url("has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad_url(
            "carries a user name or password; receivers check the signature instead",
        ));
    }
    let mut events: Vec<String> = fields
        .events
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    events.sort();
    events.dedup();
    if events.len() > MAX_EVENTS {
        return Err(ServiceError::invalid(
            "events",
            format!("an endpoint lists at most {MAX_EVENTS} event types"),
        ));
    }
    let known = |e: &str| {
        EVENT_FAMILIES.iter().any(|(family, _)| *family == e) || {
            let name = e.strip_suffix('*').unwrap_or(e);
            let (family, rest) = name.split_once('.').unwrap_or((name, ""));
            !family.is_empty()
                && e.len() <= 80
                && family.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
        }
    };
    if let Some(bad) = events.iter().find(|e| !known(e)) {
        return Err(ServiceError::invalid(
            "events",
            format!("{bad:?} is not an event type (like flag.archived) or a family (like flag.*)"),
        ));
    }
    Ok(WebhookFields {
        name,
        url,
        events,
        format: fields.format,
    })
}

/// A new signing secret as Standard Webhooks writes them: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// An endpoint's address as the audit log shows it: scheme, host and port only. The path of
/// some (a Slack incoming webhook) is a secret of its own.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}/…", parsed.scheme()),
            _ => "…".into(),
        },
        Err(_) => "…".into(),
    }
}

/// What the audit log keeps of an endpoint: neither the secret nor the URL's path.
fn shown(fields: &WebhookFields) -> serde_json::Value {
    json!({
        "name": fields.name,
        "url": shown_url(&fields.url),
        "events": fields.events,
        "format": fields.format.as_str(),
    })
}

fn shown_stored(endpoint: &WebhookEndpoint) -> serde_json::Value {
    json!({
        "name": endpoint.name,
        "url": shown_url(&endpoint.url),
        "events": endpoint.events,
        "format": endpoint.format.as_str(),
        "paused": endpoint.paused,
    })
}

async fn existing(w: &mut Write<'_>, id: i64) -> ServiceResult<WebhookEndpoint> {
    stored::endpoint_in(w.conn(), id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("webhook endpoint {id}")))
}

/// Applies an admin's change; a creation returns the new endpoint's id.
pub async fn change(w: &mut Write<'_>, change: WebhookChange) -> ServiceResult<Option<i64>> {
    let now = w.now;
    match change {
        WebhookChange::Create(fields) => {
            let fields = checked(fields)?;
            let by = w.actor.label.clone();
            let id = stored::insert_endpoint(w.conn(), &fields.stored(), &new_secret(), &by, now).await?;
            let key = id.to_string();
            let record = Record::of("webhook.created", "webhook", &key).after(shown(&fields));
            w.record(record).await?;
            Ok(Some(id))
        }
        WebhookChange::Update { id, fields } => {
            let key = id.to_string();
            let before = existing(w, id).await?;
            let fields = checked(fields)?;
            stored::update_endpoint(w.conn(), id, &fields.stored()).await?;
            let record = Record::of("webhook.changed", "webhook", &key)
                .before(shown_stored(&before))
                .after(shown(&fields));
            w.record(record).await?;
            Ok(None)
        }
        WebhookChange::SetPaused { id, paused } => {
            let key = id.to_string();
            let before = existing(w, id).await?;
            stored::set_paused(w.conn(), id, paused, now).await?;
            let action = if paused {
                "webhook.paused"
            } else {
                "webhook.resumed"
            };
            let record = Record::of(action, "webhook", &key).before(shown_stored(&before));
            w.record(record).await?;
            Ok(None)
        }
        WebhookChange::RotateSecret { id } => {
            let key = id.to_string();
            existing(w, id).await?;
            stored::set_secret(w.conn(), id, &new_secret()).await?;
            w.record(Record::of("webhook.secret_rotated", "webhook", &key))
                .await?;
            Ok(None)
        }
        WebhookChange::Delete { id } => {
            let key = id.to_string();
            let before = existing(w, id).await?;
            stored::delete_endpoint(w.conn(), id).await?;
            let record = Record::of("webhook.deleted", "webhook", &key).before(shown_stored(&before));
            w.record(record).await?;
            Ok(None)
        }
        WebhookChange::Redeliver { delivery_id } => {
            let Some(endpoint) = stored::redeliver(w.conn(), delivery_id, now).await? else {
                return Err(ServiceError::NotFound(format!("delivery {delivery_id}")));
            };
            let key = endpoint.to_string();
            let record =
                Record::of("webhook.redelivered", "webhook", &key).after(json!({ "delivery": delivery_id }));
            w.record(record).await?;
            Ok(None)
        }
    }
}

/// Does the sender's bookkeeping; a claim returns the leased deliveries.
pub async fn work(w: &mut Write<'_>, work: WebhookWork) -> ServiceResult<Vec<Claimed>> {
    let now = w.now;
    match work {
        WebhookWork::FanOut => {
            stored::fan_out(w.conn(), now, now - SETTLE_MS).await?;
            Ok(Vec::new())
        }
        WebhookWork::Claim { limit, lease_ms } => {
            Ok(stored::claim_due(w.conn(), now, now + lease_ms, limit).await?)
        }
        WebhookWork::Settle(attempts) => {
            for attempt in &attempts {
                stored::settle(w.conn(), attempt).await?;
            }
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{checked, WebhookFields};
    use crate::model::webhook::WebhookFormat;

    fn fields(url: &str, events: &[&str]) -> WebhookFields {
        WebhookFields {
            name: " Deploys ".into(),
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            format: WebhookFormat::Standard,
        }
    }

    #[test]
    fn endpoints_are_http_addresses_without_credentials_listing_event_names() {
        let ok = checked(fields(
            " https://hooks.example.com/x ",
            &["flag.*", "flag.archived", "flag.*"],
        ))
        .unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.url.as_str()),
            ("Deploys", "https://hooks.example.com/x")
        );
        assert_eq!(ok.events, ["flag.*", "flag.archived"]);
        for (url, events, field) in [
            ("ftp://example.com", &[][..], "url"),
            ("https://user:pw@example.com/", &[], "url"),
            ("not a url", &[], "url"),
            ("http://example.com", &["Flag Archived"], "events"),
        ] {
            match checked(fields(url, events)) {
                Err(super::ServiceError::Invalid { field: f, .. }) => assert_eq!(f, field, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
