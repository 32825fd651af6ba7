//! The OpenFeature Remote Evaluation Protocol (OFREP v0.3): single and bulk evaluation, ETags
//! and a server-sent refetch stream, so any OpenFeature provider can use Gatehouse.
//!
//! Context mapping: an OpenFeature context becomes Reflag's `{user, company, other}`. `user` and
//! `company` objects are taken as they are; without a `user` object, `targetingKey` becomes
//! `user.id`; an `other` object and every other top-level attribute go to `other`. Stored
//! attributes of the company and user (reported through `/company`, `/user`) are merged under it.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::key::{ApiKey, Dialect};
use crate::eval::{flatten, CompiledFlag, Decided, FlagResult, FlatContext, Scratch};
use crate::model::{JsObject, JsValue};
use crate::service::runtime::usage::{Source, Subject, Tally};
use crate::state::Streams;

/// A refusal in OFREP's shape: `{"key"?, "errorCode", "errorDetails"}`.
pub struct OfrepError {
    status: StatusCode,
    body: Value,
}

impl OfrepError {
    /// The request's context could not be used; `key` is the flag asked for, if one was.
    fn context(key: Option<&str>, error: ContextError) -> Self {
        let (code, details) = match error {
            ContextError::Parse(details) => ("PARSE_ERROR", details),
            ContextError::Invalid(details) => ("INVALID_CONTEXT", details),
        };
        let mut body = json!({ "errorCode": code, "errorDetails": details });
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        OfrepError {
            status: StatusCode::BAD_REQUEST,
            body,
        }
    }

    fn flag_not_found(key: &str) -> Self {
        OfrepError {
            status: StatusCode::NOT_FOUND,
            body: json!({ "key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": format!("no flag has the key {key:?}") }),
        }
    }
}

impl IntoResponse for OfrepError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Why a request's context could not be used.
enum ContextError {
    Parse(String),
    Invalid(String),
}

/// Reads `{"context": {...}}`; an empty body, a missing or null context are an empty context.
/// Stored attributes of the context's company and user are merged under it.
fn request_context(key: &ApiKey, body: &[u8]) -> Result<FlatContext, ContextError> {
    let snapshot = &key.snapshot;
    let context = parse_context(body)?;
    if context.len() > super::limits::MAX_CONTEXT_FIELDS {
        return Err(ContextError::Invalid(format!(
            "the context has {} fields once flattened; at most {} are accepted",
            context.len(),
            super::limits::MAX_CONTEXT_FIELDS
        )));
    }
    let (mut context, _) = key.runtime.entities().enrich(snapshot.environment.id, context);
    context.bind(&snapshot.fields);
    Ok(context)
}

fn parse_context(body: &[u8]) -> Result<FlatContext, ContextError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(FlatContext::new());
    }
    let request: JsValue = serde_json::from_slice(body).map_err(|e| ContextError::Parse(e.to_string()))?;
    let Some(request) = request.as_object() else {
        return Err(ContextError::Invalid(
            "the request body must be a JSON object".into(),
        ));
    };
    let context = match request.get("context") {
        None | Some(JsValue::Null) => return Ok(FlatContext::new()),
        Some(JsValue::Object(context)) => context,
        Some(_) => return Err(ContextError::Invalid("context must be a JSON object".into())),
    };
    Ok(flatten(&reflag_context(context)))
}

/// Maps an OpenFeature evaluation context onto Reflag's `{user, company, other}`.
pub fn reflag_context(context: &JsObject) -> JsValue {
    let mut user = None;
    let mut company = None;
    let mut other: Vec<(String, JsValue)> = Vec::new();
    let mut targeting_key = None;
    for (key, value) in context.entries() {
        match (key.as_str(), value) {
            ("user", JsValue::Object(_)) => user = Some(value.clone()),
            ("company", JsValue::Object(_)) => company = Some(value.clone()),
            ("targetingKey", JsValue::String(_)) => targeting_key = Some(value.clone()),
            ("other", JsValue::Object(fields)) => other.extend(fields.entries().iter().cloned()),
            _ => other.push((key.clone(), value.clone())),
        }
    }
    if user.is_none() {
        user = targeting_key.map(|id| JsValue::object([("id", id)]));
    }
    let mut entries: Vec<(String, JsValue)> = Vec::new();
    if let Some(user) = user {
        entries.push(("user".into(), user));
    }
    if let Some(company) = company {
        entries.push(("company".into(), company));
    }
    if !other.is_empty() {
        entries.push(("other".into(), JsValue::Object(JsObject::from_entries(other))));
    }
    JsValue::Object(JsObject::from_entries(entries))
}

/// One flag's OFREP answer.
/// One flag's OFREP answer, serialised without an intermediate `Value` tree.
#[derive(serde::Serialize)]
struct Resolution<'a> {
    key: &'a str,
    /// Absent when no remote-config value matched: the provider's code default applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<ResolvedValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    reason: &'static str,
    metadata: ResolutionMetadata,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum ResolvedValue<'a> {
    Boolean(bool),
    Payload(&'a Value),
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ResolutionMetadata {
    targeting_version: u64,
    flag_state_version: i64,
}

fn resolution<'a>(result: &'a FlagResult<'a>, flag_state_version: i64) -> Resolution<'a> {
    let metadata = ResolutionMetadata {
        targeting_version: result.targeting_version,
        flag_state_version,
    };
    if result.config.targeting_version.is_some() {
        return match result.config.key {
            Some(variant) => Resolution {
                key: result.key,
                value: Some(ResolvedValue::Payload(
                    result.config.payload.unwrap_or(&Value::Null),
                )),
                variant: Some(variant),
                reason: "TARGETING_MATCH",
                metadata,
            },
            None => Resolution {
                key: result.key,
                value: None,
                variant: None,
                reason: "DEFAULT",
                metadata,
            },
        };
    }
    let reason = match (result.is_enabled, result.decided_by_rollout) {
        (true, true) => "SPLIT",
        (true, false) => "TARGETING_MATCH",
        (false, _) => "DEFAULT",
    };
    Resolution {
        key: result.key,
        value: Some(ResolvedValue::Boolean(result.is_enabled)),
        variant: None,
        reason,
        metadata,
    }
}

/// The bulk answer, as serde renders it: the reference for [`bulk_json`].
#[cfg(test)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkAnswer<'a> {
    flags: Vec<Resolution<'a>>,
    metadata: BulkMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_streams: Option<Value>,
}

#[cfg(test)]
#[derive(serde::Serialize)]
struct BulkMetadata {
    version: String,
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn evaluate_flag(
    api_key: ApiKey,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, OfrepError> {
    let context = request_context(&api_key, &body).map_err(|e| OfrepError::context(Some(&key), e))?;
    let snapshot = &api_key.snapshot;
    let position = snapshot
        .position(&key)
        .ok_or_else(|| OfrepError::flag_not_found(&key))?;
    let now = api_key.runtime.clock().now_ms();
    let result = snapshot.compiled[position].evaluate(&context, now);
    api_key.runtime.count_evaluations(1);
    let mut tally = Tally::new(position, 1);
    let decided = Decided {
        enabled: Some(result.is_enabled),
        variant: result
            .config
            .key
            .and_then(|variant| snapshot.compiled[position].variant_index(variant)),
    };
    tally.add(0, decided);
    api_key
        .runtime
        .usage()
        .count(snapshot, now, Source::Evaluated, &tally, Subject::of(&context));
    Ok(Json(resolution(&result, snapshot.version())).into_response())
}

/// True when an `If-None-Match` header lists `etag` (or `*`); weak validators compare too.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// The bulk answer's body: each flag's resolution appended from pieces rendered when the
/// snapshot was compiled (serde's rendering of [`BulkAnswer`] is the reference; see the test).
fn bulk_json(
    flags: &[CompiledFlag],
    context: &FlatContext,
    now_ms: i64,
    flag_state_version: i64,
    event_streams: Option<&Value>,
    tally: &mut Tally,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(96 + 110 * flags.len());
    body.extend_from_slice(b"{\"flags\":[");
    let mut scratch = Scratch::default();
    let version = flag_state_version.to_string();
    for (i, flag) in flags.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let decided = flag.write_ofrep_json(context, now_ms, &version, &mut scratch, &mut body);
        tally.add(i, decided);
    }
    body.extend_from_slice(b"],\"metadata\":{\"version\":\"");
    body.extend_from_slice(version.as_bytes());
    body.extend_from_slice(b"\"}");
    if let Some(streams) = event_streams {
        body.extend_from_slice(b",\"eventStreams\":");
        body.extend_from_slice(streams.to_string().as_bytes());
    }
    body.push(b'}');
    body
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment, sorted by key, with an ETag.
pub async fn evaluate_flags(key: ApiKey, headers: HeaderMap, body: Bytes) -> Result<Response, OfrepError> {
    let context = request_context(&key, &body).map_err(|e| OfrepError::context(None, e))?;
    let now = key.runtime.clock().now_ms();
    // Browsers cannot send headers on an EventSource; only a publishable key may ride in the URL.
    let event_streams = key.publishable.as_deref().map(|publishable| {
        let uri = format!(
            "/ofrep/v1/events?publishableKey={}",
            url::form_urlencoded::byte_serialize(publishable.as_bytes()).collect::<String>()
        );
        json!([{ "type": "sse", "endpoint": { "requestUri": uri }, "inactivityDelaySec": 120 }])
    });
    let snapshot = &key.snapshot;
    let mut tally = Tally::new(0, snapshot.compiled.len());
    let body = bulk_json(
        &snapshot.compiled,
        &context,
        now,
        snapshot.version(),
        event_streams.as_ref(),
        &mut tally,
    );
    key.runtime.count_evaluations(snapshot.compiled.len() as u64);
    key.runtime
        .usage()
        .count(snapshot, now, Source::Evaluated, &tally, Subject::of(&context));
    // A strong validator of the body's bytes. xxh3 is a fixed algorithm, so every replica gives
    // the same body the same tag; nothing here needs a cryptographic hash.
    let etag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(&body));
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// `GET /ofrep/v1/events?publishableKey=…`: `refetchEvaluation` whenever the environment changes.
pub async fn events(
    key: ApiKey,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(streams): State<Streams>,
) -> Result<Response, super::streams::TooManyStreams> {
    let permit = super::streams::admit(&key, peer, &headers, &streams, Dialect::Ofrep)?;
    let environment_id = key.snapshot.environment.id;
    let clock = key.runtime.clock().clone();
    let stream = BroadcastStream::new(key.runtime.subscribe()).filter_map(move |change| {
        // The stream holds its place until it ends.
        let _held = &permit;
        let change = change.ok().filter(|c| c.environment_id == environment_id)?;
        let data = json!({ "type": "refetchEvaluation", "lastModified": clock.now_ms() / 1000 });
        Some(Ok::<_, Infallible>(
            Event::default()
                .event("message")
                .id(change.flag_state_version.to_string())
                .data(data.to_string()),
        ))
    });
    Ok(Sse::new(key.runtime.until_closed(stream))
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_rendered_bulk_answers_equal_serde_output() {
        let (definitions, contexts) = super::super::reflag::tests::sample();
        let flags: Vec<CompiledFlag> = definitions.iter().map(CompiledFlag::compile).collect();
        let streams = json!([{ "type": "sse", "endpoint": { "requestUri": "/ofrep/v1/events?publishableKey=pub_x" }, "inactivityDelaySec": 120 }]);
        for context in &contexts {
            let context: JsValue = serde_json::from_value(context.clone()).unwrap();
            let context = flatten(&context);
            let now = 1_700_000_000_000;
            let results: Vec<FlagResult<'_>> = flags.iter().map(|f| f.evaluate(&context, now)).collect();
            for event_streams in [None, Some(streams.clone())] {
                // Compared as text: field order and escaping must match too.
                let reference = serde_json::to_string(&BulkAnswer {
                    flags: results.iter().map(|r| resolution(r, 9)).collect(),
                    metadata: BulkMetadata { version: "9".into() },
                    event_streams: event_streams.clone(),
                })
                .unwrap();
                let mut tally = Tally::new(0, flags.len());
                let written = bulk_json(&flags, &context, now, 9, event_streams.as_ref(), &mut tally);
                assert_eq!(String::from_utf8(written).expect("UTF-8"), reference);
            }
        }
    }
}
