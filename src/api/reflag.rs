//! Reflag's runtime API: flag definitions for local evaluation (`GET /features`), remote
//! evaluation (`GET /features/evaluated`, `/features/enabled`) and server-sent updates
//! (`GET /sse/server`). Paths, parameters and JSON follow Reflag so its SDKs work unchanged.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

use super::error::ApiError;
use crate::eval::{CompiledFlag, FlatContext, Scratch};
use crate::runtime::{Runtime, Snapshot};
use crate::startup::AppState;
use crate::store::ApiKeyKind;

/// How long `waitForVersion` waits for a newer snapshot before answering with what it has.
const WAIT_FOR_VERSION: Duration = Duration::from_secs(5);

/// The query string's pairs, in order, decoded; borrowed from the query where nothing needed
/// decoding.
pub type QueryPairs<'q> = Vec<(Cow<'q, str>, Cow<'q, str>)>;

/// The query string as ordered pairs.
pub fn query_pairs(query: Option<&str>) -> QueryPairs<'_> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).collect()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim()).filter(|t| !t.is_empty())
}

/// The environment a request's key opens. Secret keys only by header; publishable keys also by
/// the `publishableKey` query parameter.
pub fn authenticate(
    runtime: &Runtime,
    headers: &HeaderMap,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
) -> Result<(Arc<Snapshot>, ApiKeyKind), ApiError> {
    let (presented, from_query) = match bearer(headers) {
        Some(key) => (key, false),
        None => match pairs.iter().find(|(k, _)| k == "publishableKey") {
            Some((_, key)) => (key.as_ref(), true),
            None => return Err(ApiError::missing_key()),
        },
    };
    let (environment_id, kind) = runtime
        .authenticate(presented)
        .ok_or_else(ApiError::invalid_key)?;
    if from_query && kind == ApiKeyKind::Secret {
        return Err(ApiError::invalid_key());
    }
    let snapshot = runtime.snapshot(environment_id).ok_or_else(ApiError::internal)?;
    Ok((snapshot, kind))
}

/// Waits (briefly) until the environment's snapshot reaches `version`.
async fn wait_for_version(runtime: &Runtime, snapshot: Arc<Snapshot>, version: Option<i64>) -> Arc<Snapshot> {
    let Some(wanted) = version.filter(|v| *v > snapshot.version()) else {
        return snapshot;
    };
    let environment_id = snapshot.environment.id;
    let mut changes = runtime.subscribe();
    let _ = runtime.refresh().await;
    let deadline = tokio::time::Instant::now() + WAIT_FOR_VERSION;
    loop {
        match runtime.snapshot(environment_id) {
            Some(current) if current.version() >= wanted => return current,
            _ => {}
        }
        if tokio::time::timeout_at(deadline, changes.recv()).await.is_err() {
            return runtime.snapshot(environment_id).unwrap_or(snapshot);
        }
    }
}

fn wait_param(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<Option<i64>, ApiError> {
    match pairs.iter().find(|(k, _)| k == "waitForVersion") {
        None => Ok(None),
        Some((_, v)) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("INVALID_PARAMETER", "waitForVersion must be a whole number")),
    }
}

/// `GET /features`: every flag's compiled definition, for SDKs that evaluate locally.
pub async fn features(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let (snapshot, kind) = match authenticate(&state.runtime, &headers, &pairs) {
        Ok(grant) => grant,
        Err(error) => return error.into_response(),
    };
    if kind != ApiKeyKind::Secret {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "SECRET_KEY_REQUIRED",
            "GET /features needs a secret key; publishable keys can use /features/evaluated",
        )
        .into_response();
    }
    let wait = match wait_param(&pairs) {
        Ok(wait) => wait,
        Err(error) => return error.into_response(),
    };
    let snapshot = wait_for_version(&state.runtime, snapshot, wait).await;
    Json(json!({
        "success": true,
        "flagStateVersion": snapshot.version(),
        "features": snapshot.definitions,
    }))
    .into_response()
}

/// The `context.*` parameters, prefix removed, in order.
fn context_params<'q>(
    pairs: &'q [(Cow<'_, str>, Cow<'_, str>)],
) -> impl Iterator<Item = (&'q str, &'q str)> + Clone {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("context.")?, v.as_ref())))
}

/// Reads the headers and query in place: the `HeaderMap` and `RawQuery` extractors would copy
/// them for every request.
async fn evaluated(state: AppState, request: Request, only_enabled: bool) -> Response {
    let (headers, query) = (request.headers(), request.uri().query());
    let pairs = query_pairs(query);
    let (snapshot, _) = match authenticate(&state.runtime, headers, &pairs) {
        Ok(grant) => grant,
        Err(error) => return error.into_response(),
    };
    let wait = match wait_param(&pairs) {
        Ok(wait) => wait,
        Err(error) => return error.into_response(),
    };
    let fields = pairs.iter().filter(|(k, _)| k.starts_with("context.")).count();
    if fields > super::MAX_CONTEXT_FIELDS {
        return ApiError::bad_request(
            "CONTEXT_TOO_LARGE",
            format!(
                "the context has {fields} fields; at most {} are accepted",
                super::MAX_CONTEXT_FIELDS
            ),
        )
        .into_response();
    }
    let snapshot = wait_for_version(&state.runtime, snapshot, wait).await;
    // Stored attributes of the company and user (from `/company`, `/user`) fill in what the
    // request does not send; the request's own fields win.
    let (mut context, remote_context_used) = state
        .runtime
        .entities()
        .enrich_pairs(snapshot.environment.id, context_params(&pairs));
    context.bind(&snapshot.fields);
    let now = crate::store::now_ms();
    let key = pairs.iter().find(|(k, _)| k == "key").map(|(_, v)| v.as_ref());
    let flags = match key {
        Some(key) => match snapshot.position(key) {
            Some(i) => &snapshot.compiled[i..=i],
            None => {
                return ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "FLAG_NOT_FOUND",
                    format!("no flag has the key {key:?}"),
                )
                .into_response()
            }
        },
        None => &snapshot.compiled[..],
    };
    let body = evaluated_json(
        flags,
        &context,
        now,
        remote_context_used,
        snapshot.version(),
        only_enabled,
    );
    state.metrics.count_evaluations(flags.len() as u64);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The body of `/features/evaluated` (and, with `only_enabled`, `/features/enabled`): each flag
/// evaluated and appended from JSON pieces rendered when the snapshot was compiled. Rendering
/// through serde cost more than evaluating the flags; the test below holds this to serde's output.
pub fn evaluated_json(
    flags: &[CompiledFlag],
    context: &FlatContext,
    now_ms: i64,
    remote_context_used: bool,
    flag_state_version: i64,
    only_enabled: bool,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(128 + 160 * flags.len());
    body.extend_from_slice(b"{\"success\":true,\"remoteContextUsed\":");
    body.extend_from_slice(if remote_context_used { b"true" } else { b"false" });
    body.extend_from_slice(b",\"flagStateVersion\":");
    body.extend_from_slice(flag_state_version.to_string().as_bytes());
    body.extend_from_slice(b",\"features\":{");
    let mut any = false;
    let mut scratch = Scratch::default();
    for flag in flags {
        let mark = body.len();
        if any {
            body.push(b',');
        }
        if flag.write_evaluated_json(context, now_ms, only_enabled, &mut scratch, &mut body) {
            any = true;
        } else if only_enabled {
            body.truncate(mark);
        } else {
            any = true;
        }
    }
    body.extend_from_slice(b"}}");
    body
}

/// `GET /features/evaluated`: every flag evaluated for the `context.*` parameters.
pub async fn features_evaluated(State(state): State<AppState>, request: Request) -> Response {
    evaluated(state, request, false).await
}

/// `GET /features/enabled`: like `/features/evaluated`, only the enabled flags.
pub async fn features_enabled(State(state): State<AppState>, request: Request) -> Response {
    evaluated(state, request, true).await
}

/// `GET /sse/server`: a `flags-updated` message whenever the environment's flags change.
pub async fn sse_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let (snapshot, _) = match authenticate(&state.runtime, &headers, &pairs) {
        Ok(grant) => grant,
        Err(error) => return error.into_response(),
    };
    Sse::new(state.runtime.until_closed(flag_updates(
        &state.runtime,
        snapshot.environment.id,
        snapshot.environment.key.clone(),
    )))
    .keep_alive(KeepAlive::default())
    .into_response()
}

/// Reflag's message envelope for a version change of one environment.
pub fn flag_updates(
    runtime: &Runtime,
    environment_id: i64,
    environment_key: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    BroadcastStream::new(runtime.subscribe()).filter_map(move |change| {
        let change = change.ok().filter(|c| c.environment_id == environment_id)?;
        let channel = format!("flags-state:{environment_key}");
        let data = json!({
            "id": format!("{channel}:{}", change.flag_state_version),
            "name": "flags-updated",
            "channel": channel,
            "data": json!({ "envId": environment_key, "flagStateVersion": change.flag_state_version }).to_string(),
        });
        Some(Ok(Event::default().event("message").data(data.to_string())))
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::eval::{flatten, FlagResult};
    use crate::model::{FlagDefinition, JsValue};
    use serde::Serialize;
    use serde_json::Value;

    /// One flag of a remote evaluation, in the shape Reflag's browser SDK validates.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EvaluatedFlag<'a> {
        key: &'a str,
        is_enabled: bool,
        targeting_version: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<EvaluatedConfig<'a>>,
        rule_evaluation_results: &'a [bool],
        missing_context_fields: &'a [&'a str],
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EvaluatedConfig<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<&'a str>,
        version: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a serde_json::Value>,
        rule_evaluation_results: &'a [bool],
        missing_context_fields: &'a [&'a str],
    }

    /// The body of `/features/evaluated` and `/features/enabled`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EvaluatedResponse<'a> {
        success: bool,
        remote_context_used: bool,
        flag_state_version: i64,
        features: Features<'a>,
    }

    /// The evaluated flags as an object keyed by flag key, in snapshot (key) order.
    struct Features<'a> {
        results: &'a [FlagResult<'a>],
        only_enabled: bool,
    }

    impl Serialize for Features<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            for result in self.results.iter().filter(|r| !self.only_enabled || r.is_enabled) {
                map.serialize_entry(result.key, &EvaluatedFlag::from_result(result))?;
            }
            map.end()
        }
    }

    impl<'a> EvaluatedFlag<'a> {
        fn from_result(result: &'a FlagResult<'a>) -> Self {
            EvaluatedFlag {
                key: result.key,
                is_enabled: result.is_enabled,
                targeting_version: result.targeting_version,
                config: result.config.targeting_version.map(|version| EvaluatedConfig {
                    key: result.config.key,
                    version,
                    payload: result.config.payload,
                    rule_evaluation_results: &result.config.rule_evaluation_results,
                    missing_context_fields: &result.config.missing_context_fields,
                }),
                rule_evaluation_results: &result.rule_evaluation_results,
                missing_context_fields: &result.missing_context_fields,
            }
        }
    }

    /// What serde makes of the same results (the shape Reflag's SDKs read), byte for byte.
    fn through_serde(results: &[FlagResult<'_>], remote: bool, version: i64, only_enabled: bool) -> String {
        let body = EvaluatedResponse {
            success: true,
            remote_context_used: remote,
            flag_state_version: version,
            features: Features {
                results,
                only_enabled,
            },
        };
        serde_json::to_string(&body).unwrap()
    }

    /// Flag definitions (the node SDK vectors plus one that needs escaping everywhere) and
    /// contexts to render answers for.
    pub(in crate::api) fn sample() -> (Vec<FlagDefinition>, Vec<Value>) {
        let vectors: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reflag-vectors.json")).unwrap();
        let mut definitions: Vec<FlagDefinition> = Vec::new();
        let mut contexts: Vec<Value> = vec![json!({})];
        for case in vectors["node_sdk_flags"].as_array().unwrap() {
            definitions.extend(
                serde_json::from_value::<Vec<FlagDefinition>>(case["flagDefinitions"].clone()).unwrap(),
            );
            contexts.push(case["context"].clone());
        }
        // A payload and field names that need escaping.
        definitions.push(
            serde_json::from_value(json!({
                "key": "quoted.flag_1",
                "description": null,
                "targeting": { "version": 7, "rules": [
                    { "filter": { "type": "context", "field": "company.\"odd\\name", "operator": "IS", "values": ["x"] } },
                    { "filter": { "type": "rolloutPercentage", "key": "quoted.flag_1", "partialRolloutAttribute": "user.id", "partialRolloutThreshold": 50000 } }
                ] },
                "config": { "version": 3, "variants": [
                    { "filter": { "type": "context", "field": "user.id", "operator": "SET", "values": [] }, "key": "v\"1", "payload": { "text": "line\nbreak \u{1}", "n": [1, 2.5, null] } },
                    { "filter": { "type": "constant", "value": true }, "key": "plain", "payload": null }
                ] }
            }))
            .unwrap(),
        );
        contexts.push(json!({ "user": { "id": "u1" }, "company": { "id": "c1" } }));
        (definitions, contexts)
    }

    #[test]
    fn pre_rendered_answers_equal_serde_output() {
        let (definitions, contexts) = sample();
        let flags: Vec<CompiledFlag> = definitions.iter().map(CompiledFlag::compile).collect();
        assert!(flags.len() > 5);
        for context in &contexts {
            let context: JsValue = serde_json::from_value(context.clone()).unwrap();
            let context = flatten(&context);
            let now = 1_700_000_000_000;
            let results: Vec<FlagResult<'_>> = flags.iter().map(|f| f.evaluate(&context, now)).collect();
            for (remote, only_enabled) in [(false, false), (true, true)] {
                // Compared as text: field order and escaping must match too.
                let written = evaluated_json(&flags, &context, now, remote, 42, only_enabled);
                let written = String::from_utf8(written).expect("UTF-8");
                assert_eq!(written, through_serde(&results, remote, 42, only_enabled));
            }
        }
    }
}
