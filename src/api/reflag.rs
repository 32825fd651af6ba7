//! Reflag's runtime API: flag definitions for local evaluation (`GET /features`), remote
//! evaluation (`GET /features/evaluated`, `/features/enabled`) and server-sent updates
//! (`GET /sse/server`). Paths, parameters and JSON follow Reflag so its SDKs work unchanged.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

use super::error::ApiError;
use super::key::{ApiKey, Dialect};
use crate::eval::{CompiledFlag, FlatContext, Scratch};
use crate::model::ApiKeyKind;
use crate::service::runtime::usage::{Source, Subject, Tally};
use crate::service::runtime::{Runtime, Snapshot};
use crate::state::Streams;

/// How long `waitForVersion` waits for a newer snapshot before answering with what it has.
const WAIT_FOR_VERSION: Duration = Duration::from_secs(5);

/// The query string's pairs, in order, decoded; borrowed from the query where nothing needed
/// decoding.
pub type QueryPairs<'q> = Vec<(Cow<'q, str>, Cow<'q, str>)>;

/// The query string as ordered pairs.
pub fn query_pairs(query: Option<&str>) -> QueryPairs<'_> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).collect()
}

/// The snapshot to answer from: once it reaches `waitForVersion` (when asked), waiting on the
/// change broadcast at most [`WAIT_FOR_VERSION`]; a request never triggers a rebuild.
async fn at_version(key: &ApiKey, wanted: Option<i64>) -> Arc<Snapshot> {
    match wanted {
        Some(version) if version > key.snapshot.version() => {
            key.runtime
                .wait_for_version(key.snapshot.clone(), version, WAIT_FOR_VERSION)
                .await
        }
        _ => key.snapshot.clone(),
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
pub async fn features(key: ApiKey, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    if key.kind != ApiKeyKind::Secret {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "SECRET_KEY_REQUIRED",
            "GET /features needs a secret key; publishable keys can use /features/evaluated",
        ));
    }
    let wait = wait_param(&query_pairs(query.as_deref()))?;
    let snapshot = at_version(&key, wait).await;
    Ok(Json(json!({
        "success": true,
        "flagStateVersion": snapshot.version(),
        "features": snapshot.definitions,
    }))
    .into_response())
}

/// The `context.*` parameters, prefix removed, in order.
fn context_params<'q>(
    pairs: &'q [(Cow<'_, str>, Cow<'_, str>)],
) -> impl Iterator<Item = (&'q str, &'q str)> + Clone {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("context.")?, v.as_ref())))
}

/// Reads the query in place: the `RawQuery` extractor would copy it for every request.
async fn evaluated(key: ApiKey, request: Request, only_enabled: bool) -> Result<Response, ApiError> {
    let pairs = query_pairs(request.uri().query());
    let wait = wait_param(&pairs)?;
    let fields = pairs.iter().filter(|(k, _)| k.starts_with("context.")).count();
    if fields > super::limits::MAX_CONTEXT_FIELDS {
        return Err(ApiError::bad_request(
            "CONTEXT_TOO_LARGE",
            format!(
                "the context has {fields} fields; at most {} are accepted",
                super::limits::MAX_CONTEXT_FIELDS
            ),
        ));
    }
    let snapshot = at_version(&key, wait).await;
    // Stored attributes of the company and user (from `/company`, `/user`) fill in what the
    // request does not send; the request's own fields win.
    let (mut context, remote_context_used) = key
        .runtime
        .entities()
        .enrich_pairs(snapshot.environment.id, context_params(&pairs));
    context.bind(&snapshot.fields);
    let now = key.runtime.clock().now_ms();
    let start = match pairs.iter().find(|(k, _)| k == "key").map(|(_, v)| v.as_ref()) {
        Some(flag) => Some(snapshot.position(flag).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "FLAG_NOT_FOUND",
                format!("no flag has the key {flag:?}"),
            )
        })?),
        None => None,
    };
    let flags = match start {
        Some(i) => &snapshot.compiled[i..=i],
        None => &snapshot.compiled[..],
    };
    let mut tally = Tally::new(start.unwrap_or(0), flags.len());
    let body = evaluated_json(
        flags,
        &context,
        now,
        remote_context_used,
        snapshot.version(),
        only_enabled,
        &mut tally,
    );
    key.runtime.count_evaluations(flags.len() as u64);
    let subject = Subject::of(&context);
    key.runtime
        .usage()
        .count(&snapshot, now, Source::Evaluated, &tally, subject);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
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
    tally: &mut Tally,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(128 + 160 * flags.len());
    body.extend_from_slice(b"{\"success\":true,\"remoteContextUsed\":");
    body.extend_from_slice(if remote_context_used { b"true" } else { b"false" });
    body.extend_from_slice(b",\"flagStateVersion\":");
    body.extend_from_slice(flag_state_version.to_string().as_bytes());
    body.extend_from_slice(b",\"features\":{");
    let mut any = false;
    let mut scratch = Scratch::default();
    for (i, flag) in flags.iter().enumerate() {
        let mark = body.len();
        if any {
            body.push(b',');
        }
        let decided = flag.write_evaluated_json(context, now_ms, only_enabled, &mut scratch, &mut body);
        tally.add(i, decided);
        if decided.enabled == Some(true) {
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
pub async fn features_evaluated(key: ApiKey, request: Request) -> Result<Response, ApiError> {
    evaluated(key, request, false).await
}

/// `GET /features/enabled`: like `/features/evaluated`, only the enabled flags.
pub async fn features_enabled(key: ApiKey, request: Request) -> Result<Response, ApiError> {
    evaluated(key, request, true).await
}

/// `GET /sse/server`: a `flags-updated` message whenever the environment's flags change.
pub async fn sse_server(
    key: ApiKey,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(streams): State<Streams>,
) -> Result<Response, super::streams::TooManyStreams> {
    let permit = super::streams::admit(&key, peer, &headers, &streams, Dialect::Reflag)?;
    let environment = &key.snapshot.environment;
    let updates = flag_updates(&key.runtime, environment.id, environment.key.to_string())
        // The stream holds its place until it ends.
        .map(move |event| {
            let _held = &permit;
            event
        });
    Ok(Sse::new(key.runtime.until_closed(updates))
        .keep_alive(KeepAlive::default())
        .into_response())
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
                let mut tally = Tally::new(0, flags.len());
                let written = evaluated_json(&flags, &context, now, remote, 42, only_enabled, &mut tally);
                let written = String::from_utf8(written).expect("UTF-8");
                assert_eq!(written, through_serde(&results, remote, 42, only_enabled));
            }
        }
    }
}
