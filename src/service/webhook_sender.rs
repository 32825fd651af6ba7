//! The webhook sender: each pass fans new outbox events out to the endpoints that want them,
//! leases the due deliveries (on PostgreSQL with `SKIP LOCKED`: of several replicas exactly one
//! sends each), sends them at once, each signed as Standard Webhooks says, and records every
//! attempt: a 2xx answer delivers, anything else retries after 5 s, 30 s, 2 min, … up to about
//! 24 hours, then the delivery has failed (an admin can redeliver it). The database holds every
//! step, so a restart loses nothing. Requests go only to the configured URL (no redirects, no
//! proxies) and give up after 10 s; they run beside the pipeline, never inside a change.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::actor::Actor;
use super::change::{Change, Outcome};
use super::clock::Clock;
use super::error::ServiceResult;
use super::handle::Service;
use super::store::webhooks::{Attempt, Claimed};
use super::webhooks::WebhookWork;
use crate::model::webhook::WebhookFormat;

/// Who the sender's bookkeeping is recorded as.
const SENDER: &str = "webhook sender";
/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds: well past a request's timeout, so a live sender never loses one, and
/// a crashed sender's deliveries are taken up again a minute later.
const LEASE_MS: i64 = 60_000;
/// Deliveries one pass claims at a time.
const BATCH: i64 = 20;
/// The waits after the 1st, 2nd, … failed attempt: 23 h 43 min in all, then the delivery fails.
pub const RETRY_AFTER_MS: [i64; 10] = [
    5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 28_800_000,
];

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Gatehouse-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook client's settings are valid")
});

/// The `webhook-signature` of a message: `v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's bytes, of `"{id}.{timestamp}.{body}"`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = b64
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

/// A delivery's body: a Standard Webhooks message, or a Slack message in words.
pub fn body(claimed: &Claimed) -> Vec<u8> {
    let event = &claimed.event;
    let message = match claimed.endpoint.format {
        WebhookFormat::Standard => serde_json::json!({
            "type": event.kind,
            "timestamp": rfc3339(event.at),
            "data": {
                "eventId": event.id,
                "subject": { "type": event.subject_type, "key": event.subject_key },
                "environment": event.environment_key,
                "actor": event.actor_label,
                "before": event.payload.get("before"),
                "after": event.payload.get("after"),
            },
        }),
        WebhookFormat::Slack => serde_json::json!({ "text": in_words(event) }),
    };
    message.to_string().into_bytes()
}

/// Epoch milliseconds as an RFC 3339 time (`2026-12-06T01:30:00.123Z`).
fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// "ana@example.com: flag `checkout`, access rules changed in production".
pub fn in_words(event: &super::store::audit::ChangeEvent) -> String {
    let what = event
        .kind
        .split_once('.')
        .map_or(event.kind.as_str(), |(_, what)| what);
    let place = event
        .environment_key
        .as_ref()
        .map(|e| format!(" in {e}"))
        .unwrap_or_default();
    format!(
        "{}: {} `{}`, {}{place}",
        event.actor_label,
        event.subject_type,
        event.subject_key,
        what.replace('_', " ")
    )
}

/// Sends one delivery and says what came of it.
async fn send(claimed: Claimed, clock: Clock) -> Attempt {
    let id = format!("evt_{}", claimed.event.id);
    let timestamp = clock.now_ms().div_euclid(1000);
    let body = body(&claimed);
    let signature = sign(&claimed.endpoint.secret, &id, timestamp, &body);
    let answer = CLIENT
        .post(&claimed.endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let (status, error) = match answer {
        Ok(answer) if answer.status().is_success() => (Some(answer.status().as_u16()), None),
        Ok(answer) if answer.status().is_redirection() => (
            Some(answer.status().as_u16()),
            Some(format!(
                "the endpoint answered {} (redirects are not followed)",
                answer.status()
            )),
        ),
        Ok(answer) => (
            Some(answer.status().as_u16()),
            Some(format!("the endpoint answered {}", answer.status())),
        ),
        Err(error) if error.is_timeout() => (None, Some(format!("no answer within {} s", TIMEOUT.as_secs()))),
        // Without the URL: a Slack address is a secret of its own.
        Err(error) if error.is_connect() => (None, Some("could not connect to the endpoint".into())),
        Err(error) => (None, Some(error.without_url().to_string())),
    };
    let at = clock.now_ms();
    let retry_at = match error {
        None => None,
        Some(_) => RETRY_AFTER_MS
            .get(claimed.attempts as usize)
            .map(|wait| at + wait),
    };
    Attempt {
        delivery_id: claimed.id,
        at,
        status: status.map(i64::from),
        error,
        retry_at,
    }
}

impl Service {
    /// One pass of the sender: fans out new events, sends what is due (a batch at a time, until
    /// none is left), records the attempts; returns how many were delivered.
    pub async fn deliver_webhooks(&self) -> ServiceResult<usize> {
        // Most installations have no endpoint: a read, not a write transaction, every second.
        if !self.store().has_active_webhooks().await? {
            return Ok(0);
        }
        let actor = Actor::system(SENDER);
        self.apply(&actor, Change::WebhookWork(WebhookWork::FanOut))
            .await?;
        let mut delivered = 0;
        loop {
            let claim = WebhookWork::Claim {
                limit: BATCH,
                lease_ms: LEASE_MS,
            };
            let claimed = match self.apply(&actor, Change::WebhookWork(claim)).await? {
                Outcome::Claimed(claimed) => claimed,
                other => return Err(other.unexpected()),
            };
            let full = claimed.len() as i64 == BATCH;
            if claimed.is_empty() {
                return Ok(delivered);
            }
            let mut sends = tokio::task::JoinSet::new();
            for delivery in claimed {
                sends.spawn(send(delivery, self.clock().clone()));
            }
            let mut attempts = Vec::new();
            while let Some(attempt) = sends.join_next().await {
                // A send that panicked keeps its lease; the delivery is taken up again after it.
                if let Ok(attempt) = attempt {
                    attempts.push(attempt);
                }
            }
            delivered += attempts.iter().filter(|a| a.error.is_none()).count();
            self.apply(&actor, Change::WebhookWork(WebhookWork::Settle(attempts)))
                .await?;
            if !full {
                return Ok(delivered);
            }
        }
    }

    /// Runs a pass of the sender every `every` (the first at once: what fell due while the
    /// server was down).
    pub fn spawn_webhook_sender(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = service.deliver_webhooks().await {
                    tracing::warn!(%error, "webhook pass failed; trying again at the next");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
