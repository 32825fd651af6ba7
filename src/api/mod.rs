//! Public HTTP routes that are not the admin UI: health and readiness probes, metrics, the
//! OpenAPI description, the runtime API (Reflag evaluation and ingest, OFREP) and the management
//! API (`/api/v1`, [`v1`]).
//!
//! Every route here passes the same guards: a body limit (`GATEHOUSE_MAX_BODY_BYTES`, default
//! 1 MiB), a query-string limit, request metrics; the routes browsers call also answer CORS.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::service::runtime::Runtime;
use crate::service::Service;
use crate::state::AppState;
use guard::ApiGuard;

pub mod error;
mod guard;
pub mod ingest;
mod key;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod ofrep;
pub mod reflag;
pub mod streams;
pub mod v1;

/// The OpenAPI 3.1 description of the routes below.
const OPENAPI: &str = include_str!("openapi.json");

/// The public routes; `/metrics` asks for `metrics_token` as a bearer token when one is set.
pub fn routes(metrics_token: Option<String>) -> Router<AppState> {
    let max_body_bytes = limits::max_body_bytes();
    let metrics = std::sync::Arc::new(metrics::Metrics::default());
    let browser = Router::new()
        .route("/features/evaluated", get(reflag::features_evaluated))
        .route("/features/enabled", get(reflag::features_enabled))
        .route("/sse/server", get(reflag::sse_server))
        // The browser SDK's live channel: the same flags-updated messages (it refetches on
        // them). Reflag also pushes feedback prompts here; Gatehouse has none to push.
        .route("/sse/client", get(reflag::sse_server))
        .route("/user", post(ingest::post_user))
        .route("/company", post(ingest::post_company))
        .route("/event", post(ingest::post_event))
        .route("/features/events", post(ingest::post_flag_event))
        .route("/bulk", post(ingest::post_bulk))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_flags))
        .route("/ofrep/v1/evaluate/flags/", post(ofrep::evaluate_flags))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_flag))
        .route("/ofrep/v1/events", get(ofrep::events))
        .layer(ApiGuard::new(metrics.clone(), max_body_bytes, true));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get({
                let metrics = metrics.clone();
                let token: Option<std::sync::Arc<str>> = metrics_token.map(Into::into);
                move |State(runtime): State<Runtime>, headers: axum::http::HeaderMap| async move {
                    match &token {
                        Some(token) if !metrics::authorized(&headers, token) => (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Bearer")],
                            Json(
                                json!({ "error": "send the metrics token as Authorization: Bearer <token>" }),
                            ),
                        )
                            .into_response(),
                        _ => metrics::respond(&metrics, &runtime),
                    }
                }
            }),
        )
        .route("/openapi.json", get(openapi))
        .route("/features", get(reflag::features))
        .layer(ApiGuard::new(metrics.clone(), max_body_bytes, false))
        .merge(browser)
        .merge(v1::routes().layer(ApiGuard::new(metrics, max_body_bytes, false)))
}

/// `GET /openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The process is up and serving requests.
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// The database answers and carries every migration of this build; 503 otherwise, so a load
/// balancer keeps traffic away from a replica that cannot serve it. An environment whose stored
/// flags do not build is named under `stale` (with the version it serves, if any): the replica
/// still serves the others, and that one from its last good snapshot, so it stays ready.
async fn readyz(State(service): State<Service>, State(runtime): State<Runtime>) -> Response {
    let database = service.backend().name();
    if !service.database_ready().await {
        let body = json!({ "status": "unavailable", "database": database });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let stale = runtime.stale_environments();
    let status = if stale.is_empty() { "ready" } else { "degraded" };
    Json(json!({ "status": status, "database": database, "stale": stale })).into_response()
}
