//! Public HTTP routes that are not the admin UI: health and readiness probes, and (with later
//! issues) the runtime evaluation API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::startup::AppState;

pub mod error;
pub mod ofrep;
pub mod reflag;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/features", get(reflag::features))
        .route("/features/evaluated", get(reflag::features_evaluated))
        .route("/features/enabled", get(reflag::features_enabled))
        .route("/sse/server", get(reflag::sse_server))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_flags))
        .route("/ofrep/v1/evaluate/flags/", post(ofrep::evaluate_flags))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_flag))
        .route("/ofrep/v1/events", get(ofrep::events))
}

/// The process is up and serving requests.
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// The database answers and carries every migration of this build; 503 otherwise, so a load
/// balancer keeps traffic away from a replica that cannot serve it.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.is_ready().await {
        Json(json!({ "status": "ready", "database": state.store.backend().name() })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": state.store.backend().name() })),
        )
            .into_response()
    }
}
