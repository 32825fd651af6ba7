//! Reflag's tracking endpoints: `POST /user`, `/company`, `/event`, `/features/events` and
//! `/bulk`. Bodies are decoded here into [`IngestWrite`]s (ids may be strings or numbers; numbers
//! are stringified the JavaScript way, as the SDKs do when they build the context); a request is
//! written in one transaction and acknowledged with `{"success": true}` only after it committed.
//! Any malformed item rejects the whole request with a 400 that names the problem.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::key::ApiKey;
use crate::auth::client::client_address;
use crate::eval::jsdate::parse_js_date;
use crate::eval::jsnum::number_to_string;
use crate::eval::{Decided, FlatContext};
use crate::model::{JsObject, JsValue};
use crate::service::runtime::usage::{Source, Subject, Tally};
use crate::service::{Actor, EntityUpsert, IngestWrite, Service, ServiceError};
use crate::state::{Ingest, RateLimited};

/// Most items one `/bulk` request may carry (the SDKs send at most 100).
pub const MAX_BULK_ITEMS: usize = 1000;
/// Most flattened attribute fields one company, user or event may carry per request.
pub const MAX_ATTRIBUTE_FIELDS: usize = 200;
/// Longest id, event name, flag key or action accepted.
const MAX_TEXT_BYTES: usize = 1024;

pub fn payload_too_large(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_REQUEST", message)
}

/// Decodes one item's fields; the message names the field at fault.
type Decoded<T> = Result<T, String>;

fn as_object<'a>(value: &'a JsValue, what: &str) -> Decoded<&'a JsObject> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} must be a JSON object"))
}

fn present<'a>(object: &'a JsObject, field: &str) -> Option<&'a JsValue> {
    object.get(field).filter(|v| !matches!(v, JsValue::Null))
}

/// Text that fits a database column: bounded, no NUL (PostgreSQL rejects it in TEXT).
fn checked_text(field: &str, text: String) -> Decoded<String> {
    if text.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("{field} is longer than {MAX_TEXT_BYTES} bytes"));
    }
    if text.contains('\0') {
        return Err(format!("{field} must not contain NUL characters"));
    }
    Ok(text)
}

/// An id: a string, or a number stringified as JavaScript's `String(n)` does.
fn optional_id(object: &JsObject, field: &str) -> Decoded<Option<String>> {
    let text = match present(object, field) {
        None => return Ok(None),
        Some(JsValue::String(s)) => s.clone(),
        Some(JsValue::Number(n)) if n.is_finite() => number_to_string(*n),
        Some(_) => return Err(format!("{field} must be a string or a number")),
    };
    checked_text(field, text).map(Some)
}

fn required_id(object: &JsObject, field: &str) -> Decoded<String> {
    optional_id(object, field)?.ok_or_else(|| format!("{field} is missing"))
}

fn required_string(object: &JsObject, field: &str) -> Decoded<String> {
    match present(object, field) {
        Some(JsValue::String(s)) => checked_text(field, s.clone()),
        Some(_) => Err(format!("{field} must be a string")),
        None => Err(format!("{field} is missing")),
    }
}

/// `attributes`: absent or null is none; otherwise an object of bounded size.
fn attributes(object: &JsObject) -> Decoded<JsObject> {
    match present(object, "attributes") {
        None => Ok(JsObject::new()),
        Some(JsValue::Object(attributes)) => {
            let fields = FlatContext::from_object(attributes).len();
            if fields > MAX_ATTRIBUTE_FIELDS {
                return Err(format!(
                    "attributes has {fields} fields once flattened; at most {MAX_ATTRIBUTE_FIELDS} are accepted"
                ));
            }
            Ok(attributes.clone())
        }
        Some(_) => Err("attributes must be a JSON object".into()),
    }
}

/// `timestamp`: epoch milliseconds or a date string; absent means now.
fn timestamp(object: &JsObject, now: i64) -> Decoded<i64> {
    let at = match present(object, "timestamp") {
        None => return Ok(now),
        Some(JsValue::Number(n)) => *n,
        Some(JsValue::String(s)) => parse_js_date(s),
        Some(_) => return Err("timestamp must be a date string or epoch milliseconds".into()),
    };
    if at.is_finite() && at.abs() < 8.64e15 {
        Ok(at as i64)
    } else {
        Err("timestamp is not a valid date".into())
    }
}

fn user(object: &JsObject, now: i64) -> Decoded<IngestWrite> {
    Ok(IngestWrite::User(EntityUpsert {
        id: required_id(object, "userId")?,
        attributes: attributes(object)?,
        seen_at: timestamp(object, now)?,
    }))
}

fn company(object: &JsObject, now: i64) -> Decoded<IngestWrite> {
    Ok(IngestWrite::Company {
        company: EntityUpsert {
            id: required_id(object, "companyId")?,
            attributes: attributes(object)?,
            seen_at: timestamp(object, now)?,
        },
        user_id: optional_id(object, "userId")?,
    })
}

fn event(object: &JsObject, now: i64) -> Decoded<IngestWrite> {
    Ok(IngestWrite::Event {
        name: required_string(object, "event")?,
        user_id: required_id(object, "userId")?,
        company_id: optional_id(object, "companyId")?,
        attributes: attributes(object)?,
        at: timestamp(object, now)?,
    })
}

/// A flag check an SDK reported: counted in memory with the server's own evaluations
/// (`runtime::usage`), never written per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub flag_key: String,
    /// The `isEnabled` answer the SDK got; `None` for a config read.
    pub enabled: Option<bool>,
    /// The config variant a config read got.
    pub variant: Option<String>,
    pub company: Option<String>,
    pub user: Option<String>,
}

/// What one request reports: writes for the store, checks for the counters.
#[derive(Debug, Default)]
pub struct Reports {
    pub writes: Vec<IngestWrite>,
    pub checks: Vec<Check>,
}

/// The `id` of `evalContext.<entity>`, as a string.
fn context_id(context: Option<&JsObject>, entity: &str) -> Decoded<Option<String>> {
    let Some(object) = context
        .and_then(|c| present(c, entity))
        .and_then(JsValue::as_object)
    else {
        return Ok(None);
    };
    optional_id(object, "id").map_err(|e| format!("evalContext.{entity}.{e}"))
}

/// A flag check: `check`, `check-is-enabled`, `evaluate`, … report `isEnabled` calls (the result
/// is a boolean), `check-config` and `evaluate-config` report config reads (the result is the
/// variant `{key, payload}`).
fn flag_event(object: &JsObject) -> Decoded<Check> {
    let action = required_string(object, "action")?;
    let flag_key = required_string(object, "key")?;
    if let Some(version) = present(object, "targetingVersion") {
        if !matches!(version, JsValue::Number(_)) {
            return Err("targetingVersion must be a number".into());
        }
    }
    let context = match present(object, "evalContext") {
        Some(context) => Some(as_object(context, "evalContext")?),
        None => None,
    };
    for field in ["evalRuleResults", "evalMissingFields"] {
        if present(object, field).is_some_and(|v| !matches!(v, JsValue::Array(_))) {
            return Err(format!("{field} must be an array"));
        }
    }
    let result = present(object, "evalResult");
    let (enabled, variant) = if action.ends_with("config") {
        let variant = result
            .and_then(JsValue::as_object)
            .and_then(|config| present(config, "key"))
            .and_then(|key| match key {
                JsValue::String(key) => Some(key.clone()),
                _ => None,
            });
        (None, variant)
    } else {
        (Some(matches!(result, Some(JsValue::Bool(true)))), None)
    };
    Ok(Check {
        flag_key,
        enabled,
        variant,
        company: context_id(context, "company")?,
        user: context_id(context, "user")?,
    })
}

/// One `/bulk` item, by its `type`.
fn bulk_item(value: &JsValue, now: i64, reports: &mut Reports) -> Decoded<()> {
    let object = as_object(value, "the item")?;
    let kind = match present(object, "type") {
        Some(JsValue::String(kind)) => kind.as_str(),
        Some(_) => return Err("type must be a string".into()),
        None => return Err("type is missing".into()),
    };
    match kind {
        "user" => reports.writes.push(user(object, now)?),
        "company" => reports.writes.push(company(object, now)?),
        "event" => reports.writes.push(event(object, now)?),
        "feature-flag-event" => reports.checks.push(flag_event(object)?),
        // Feedback prompts are a browser UI feature Gatehouse does not offer.
        "prompt-event" => {}
        other => {
            return Err(format!(
                "unknown type {other:?}; expected user, company, event, feature-flag-event or prompt-event"
            ))
        }
    }
    Ok(())
}

/// What each endpoint decodes its parsed body into.
type Decoder = fn(&JsValue, i64) -> Result<Reports, ApiError>;

/// A body that is one object decoded by `decode`.
fn one(
    body: &JsValue,
    now: i64,
    decode: fn(&JsObject, i64) -> Decoded<IngestWrite>,
) -> Result<Reports, ApiError> {
    let object = as_object(body, "the body").map_err(invalid)?;
    Ok(Reports {
        writes: vec![decode(object, now).map_err(invalid)?],
        checks: Vec::new(),
    })
}

fn decode_user(body: &JsValue, now: i64) -> Result<Reports, ApiError> {
    one(body, now, user)
}

fn decode_company(body: &JsValue, now: i64) -> Result<Reports, ApiError> {
    one(body, now, company)
}

fn decode_event(body: &JsValue, now: i64) -> Result<Reports, ApiError> {
    one(body, now, event)
}

fn decode_flag_event(body: &JsValue, _now: i64) -> Result<Reports, ApiError> {
    let object = as_object(body, "the body").map_err(invalid)?;
    Ok(Reports {
        writes: Vec::new(),
        checks: vec![flag_event(object).map_err(invalid)?],
    })
}

fn decode_bulk(body: &JsValue, now: i64) -> Result<Reports, ApiError> {
    let JsValue::Array(items) = body else {
        return Err(invalid("the body of /bulk must be a JSON array of items"));
    };
    if items.len() > MAX_BULK_ITEMS {
        return Err(payload_too_large(format!(
            "a bulk request carries at most {MAX_BULK_ITEMS} items; this one has {}",
            items.len()
        )));
    }
    let mut reports = Reports::default();
    for (i, item) in items.iter().enumerate() {
        bulk_item(item, now, &mut reports).map_err(|e| invalid(format!("item {i}: {e}")))?;
    }
    Ok(reports)
}

/// A request refused by a rate limit: 429 with the seconds until the bucket has a token.
fn rate_limited(limited: RateLimited) -> Response {
    let seconds = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let whose = if limited.per_address {
        "this client address"
    } else {
        "this API key"
    };
    let message = format!("too many ingest requests from {whose}; retry in {seconds} s");
    let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message);
    ([(header::RETRY_AFTER, seconds.to_string())], error).into_response()
}

/// What the change pipeline's refusal means to the application that reported.
fn refused(error: ServiceError) -> Response {
    match error {
        ServiceError::Invalid { message, .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ENTITY_TOO_LARGE", message).into_response()
        }
        ServiceError::LimitReached(message) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ENTITY_LIMIT_REACHED", message).into_response()
        }
        ServiceError::Busy(message) => {
            let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "BUSY", message);
            ([(header::RETRY_AFTER, "1")], error).into_response()
        }
        error => {
            tracing::error!(%error, "could not record ingested data");
            ApiError::internal().into_response()
        }
    }
}

/// Everything an ingest route takes from its request besides the key and the body: the service,
/// the rate limits and the client's address.
pub struct Request {
    service: Service,
    rates: std::sync::Arc<crate::state::IngestRates>,
    address: std::net::IpAddr,
}

impl<S> FromRequestParts<S> for Request
where
    S: Send + Sync,
    Service: FromRef<S>,
    Ingest: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0);
        let ingest = Ingest::from_ref(state);
        Ok(Request {
            service: Service::from_ref(state),
            address: client_address(peer.ip(), &parts.headers, &ingest.trusted_proxies),
            rates: ingest.rates,
        })
    }
}

/// Counts reported checks of the environment's flags (checks of unknown keys are dropped: what
/// is counted stays bounded by the flags that exist).
fn count_checks(key: &ApiKey, now: i64, checks: &[Check]) {
    let snapshot = &key.snapshot;
    for check in checks {
        let Some(position) = snapshot.position(&check.flag_key) else {
            continue;
        };
        let flag = &snapshot.compiled[position];
        let mut tally = Tally::new(position, 1);
        let decided = Decided {
            enabled: check.enabled,
            variant: check.variant.as_deref().and_then(|v| flag.variant_index(v)),
        };
        tally.add(0, decided);
        let subject = Subject {
            company: check.company.as_deref(),
            user: check.user.as_deref(),
        };
        key.runtime
            .usage()
            .count(snapshot, now, Source::Reported, &tally, subject);
    }
}

/// Admits one ingest request (rate limits), decodes it and commits it through the change
/// pipeline, as the key; reported checks go to the usage counters.
async fn ingest(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
    decode: Decoder,
) -> Result<Response, ApiError> {
    let Request {
        service,
        rates,
        address,
    } = request;
    let environment_id = key.snapshot.environment.id;
    if let Err(limited) = rates.check((environment_id, key.kind.as_str()), address) {
        return Ok(rate_limited(limited));
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(payload_too_large(
                "the request body is larger than this server accepts",
            ))
        }
        Err(rejection) => return Err(invalid(rejection.body_text())),
    };
    let parsed: JsValue = serde_json::from_slice(&body)
        .map_err(|error| invalid(format!("the body is not valid JSON: {error}")))?;
    let now = key.runtime.clock().now_ms();
    let Reports { writes, checks } = decode(&parsed, now)?;
    count_checks(&key, now, &checks);
    if !writes.is_empty() {
        let actor = Actor::api_key(environment_id);
        if let Err(error) = service.ingest(actor, environment_id, writes).await {
            return Ok(refused(error));
        }
    }
    Ok(Json(json!({ "success": true })).into_response())
}

/// `POST /user` `{userId, attributes?, timestamp?}`.
pub async fn post_user(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(key, request, body, decode_user).await
}

/// `POST /company` `{companyId, attributes?, timestamp?, userId?}`.
pub async fn post_company(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(key, request, body, decode_company).await
}

/// `POST /event` `{event, userId, companyId?, attributes?, timestamp?}`.
pub async fn post_event(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(key, request, body, decode_event).await
}

/// `POST /features/events` `{action, key, targetingVersion, evalContext, evalResult, …}`.
pub async fn post_flag_event(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(key, request, body, decode_flag_event).await
}

/// `POST /bulk`: an array of typed items, written together.
pub async fn post_bulk(
    key: ApiKey,
    request: Request,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(key, request, body, decode_bulk).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> JsValue {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numeric_ids_are_stringified_like_javascript() {
        let writes = decode_company(&parse(r#"{"companyId": 1e21, "userId": 42}"#), 0).unwrap();
        let IngestWrite::Company { company, user_id } = &writes.writes[0] else {
            panic!("a company write")
        };
        assert_eq!(company.id, "1e+21");
        assert_eq!(user_id.as_deref(), Some("42"));
    }

    #[test]
    fn missing_fields_are_named() {
        let error = decode_user(&parse(r#"{"attributes": {}}"#), 0).unwrap_err();
        assert_eq!(error.message, "userId is missing");
        let error = decode_bulk(
            &parse(r#"[{"type": "user", "userId": "u"}, {"type": "nope"}]"#),
            0,
        )
        .unwrap_err();
        assert!(
            error.message.starts_with("item 1: unknown type"),
            "{}",
            error.message
        );
    }

    #[test]
    fn checks_and_config_reads_are_told_apart() {
        let reports = decode_bulk(
            &parse(
                r#"[{"type": "feature-flag-event", "action": "check-is-enabled", "key": "a",
                     "evalResult": true, "evalContext": {"company": {"id": 7}, "user": {"id": "u"}}},
                    {"type": "feature-flag-event", "action": "check-config", "key": "a",
                     "evalResult": {"key": "gold", "payload": 1}}]"#,
            ),
            0,
        )
        .unwrap();
        assert!(reports.writes.is_empty());
        assert_eq!(reports.checks[0].enabled, Some(true));
        assert_eq!(reports.checks[0].company.as_deref(), Some("7"));
        assert_eq!(reports.checks[0].user.as_deref(), Some("u"));
        assert_eq!(reports.checks[1].enabled, None);
        assert_eq!(reports.checks[1].variant.as_deref(), Some("gold"));
    }
}
