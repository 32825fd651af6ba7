//! Webhooks: endpoints an admin registers (where, which events, in which format) and the
//! deliveries of outbox events to them, each with its attempts and what the endpoint answered.

use serde::{Deserialize, Serialize};

/// How a delivery's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A Standard Webhooks message: `{"type", "timestamp", "data"}`, signed.
    Standard,
    /// A Slack incoming-webhook message: `{"text"}` with a readable sentence.
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookFormat> {
        match text {
            "standard" => Some(WebhookFormat::Standard),
            "slack" => Some(WebhookFormat::Slack),
            _ => None,
        }
    }
}

/// The event families an endpoint can ask for, with how the settings page names them. An
/// endpoint asks for families (`flag.*`) or single types (`flag.archived`); none: every event.
pub const EVENT_FAMILIES: &[(&str, &str)] = &[
    ("flag.created", "Flag created"),
    ("flag.changed", "Flag details changed"),
    (
        "flag.access_rules_*",
        "Access changed (saved, copied, rolled back)",
    ),
    ("flag.stage_*", "Stage moved"),
    ("flag.remote_config_changed", "Remote config changed"),
    ("flag.archived", "Flag archived"),
    ("flag.unarchived", "Flag restored"),
    (
        "flag.scheduled_change_*",
        "Scheduled changes (applied, failed, cancelled)",
    ),
    ("flag.plan_*", "Release plans"),
    ("flag.change_request*", "Change requests"),
    ("flag.became_stale", "Flag became stale"),
    ("segment.*", "Segments"),
    ("stage.*", "Release stages"),
    ("environment.*", "Environments"),
    ("member.*", "Members"),
];

/// Whether `kind` is one of `events` (types, or families ending in `*`); no events: every kind.
pub fn wants(events: &[String], kind: &str) -> bool {
    events.is_empty()
        || events.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => e == kind,
        })
}

/// An endpoint as the settings page and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// `whsec_…`: receivers verify signatures with it; shown to admins only.
    pub secret: String,
    pub events: Vec<String>,
    pub format: WebhookFormat,
    pub paused: bool,
    pub created_by: String,
    pub created_at: i64,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet answered with a 2xx: the next attempt is due at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt of the retry schedule (about 24 hours) failed; redelivering starts again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One delivery of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub event_kind: String,
    pub subject: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    /// The HTTP status of the last answer, when there was one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, in words (a timeout, a refused connection, a 500).
    pub last_error: Option<String>,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::wants;

    #[test]
    fn an_endpoint_wants_its_types_and_families_and_everything_when_it_names_none() {
        let events = vec!["flag.archived".to_string(), "segment.*".to_string()];
        assert!(wants(&events, "flag.archived"));
        assert!(wants(&events, "segment.changed"));
        assert!(!wants(&events, "flag.created"));
        assert!(!wants(&events, "flag.archived_later"));
        assert!(wants(&[], "member.created"));
    }
}
