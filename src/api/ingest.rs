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
use crate::eval::FlatContext;
use crate::model::{JsObject, JsValue};
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

/// The UTC day of `now` as `YYYY-MM-DD`.
fn utc_day(now: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(now.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A flag check. Checks of `isEnabled` (`check`, `check-is-enabled`, `evaluate`, …) are counted;
/// config reads (`check-config`, `evaluate-config`) are accepted but not counted as exposures.
fn flag_event(object: &JsObject, now: i64) -> Decoded<Option<IngestWrite>> {
    let action = required_string(object, "action")?;
    let flag_key = required_string(object, "key")?;
    if let Some(version) = present(object, "targetingVersion") {
        if !matches!(version, JsValue::Number(_)) {
            return Err("targetingVersion must be a number".into());
        }
    }
    if let Some(context) = present(object, "evalContext") {
        as_object(context, "evalContext")?;
    }
    for field in ["evalRuleResults", "evalMissingFields"] {
        if present(object, field).is_some_and(|v| !matches!(v, JsValue::Array(_))) {
            return Err(format!("{field} must be an array"));
        }
    }
    if action.ends_with("config") {
        return Ok(None);
    }
    Ok(Some(IngestWrite::FlagCheck {
        flag_key,
        day: utc_day(now),
        enabled: matches!(object.get("evalResult"), Some(JsValue::Bool(true))),
    }))
}

/// One `/bulk` item, by its `type`.
fn bulk_item(value: &JsValue, now: i64) -> Decoded<Option<IngestWrite>> {
    let object = as_object(value, "the item")?;
    let kind = match present(object, "type") {
        Some(JsValue::String(kind)) => kind.as_str(),
        Some(_) => return Err("type must be a string".into()),
        None => return Err("type is missing".into()),
    };
    match kind {
        "user" => user(object, now).map(Some),
        "company" => company(object, now).map(Some),
        "event" => event(object, now).map(Some),
        "feature-flag-event" => flag_event(object, now),
        // Feedback prompts are a browser UI feature Gatehouse does not offer.
        "prompt-event" => Ok(None),
        other => Err(format!(
            "unknown type {other:?}; expected user, company, event, feature-flag-event or prompt-event"
        )),
    }
}

/// What each endpoint decodes its parsed body into.
type Decoder = fn(&JsValue, i64) -> Result<Vec<IngestWrite>, ApiError>;

/// A body that is one object decoded by `decode`.
fn one(
    body: &JsValue,
    now: i64,
    decode: fn(&JsObject, i64) -> Decoded<IngestWrite>,
) -> Result<Vec<IngestWrite>, ApiError> {
    let object = as_object(body, "the body").map_err(invalid)?;
    Ok(vec![decode(object, now).map_err(invalid)?])
}

fn decode_user(body: &JsValue, now: i64) -> Result<Vec<IngestWrite>, ApiError> {
    one(body, now, user)
}

fn decode_company(body: &JsValue, now: i64) -> Result<Vec<IngestWrite>, ApiError> {
    one(body, now, company)
}

fn decode_event(body: &JsValue, now: i64) -> Result<Vec<IngestWrite>, ApiError> {
    one(body, now, event)
}

fn decode_flag_event(body: &JsValue, now: i64) -> Result<Vec<IngestWrite>, ApiError> {
    let object = as_object(body, "the body").map_err(invalid)?;
    flag_event(object, now)
        .map(|write| write.into_iter().collect())
        .map_err(invalid)
}

fn decode_bulk(body: &JsValue, now: i64) -> Result<Vec<IngestWrite>, ApiError> {
    let JsValue::Array(items) = body else {
        return Err(invalid("the body of /bulk must be a JSON array of items"));
    };
    if items.len() > MAX_BULK_ITEMS {
        return Err(payload_too_large(format!(
            "a bulk request carries at most {MAX_BULK_ITEMS} items; this one has {}",
            items.len()
        )));
    }
    let mut writes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(write) = bulk_item(item, now).map_err(|e| invalid(format!("item {i}: {e}")))? {
            writes.push(write);
        }
    }
    Ok(writes)
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

/// Admits one ingest request (rate limits), decodes it and commits it through the change
/// pipeline, as the key.
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
    let writes = decode(&parsed, key.runtime.clock().now_ms())?;
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
        let IngestWrite::Company { company, user_id } = &writes[0] else {
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
    fn days_are_utc() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_700_000_000_000), "2023-11-14");
    }
}
