//! Errors of the public API, in Reflag's shape: `{"success": false, "error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "MISSING_API_KEY",
            "send an API key as `Authorization: Bearer <key>` (or `publishableKey=<key>` for publishable keys)",
        )
    }

    pub fn invalid_key() -> Self {
        Self::new(StatusCode::FORBIDDEN, "INVALID_API_KEY", "Invalid API key")
    }

    /// The key's environment has not built since start-up (its stored flags do not compile).
    pub fn not_loaded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ENVIRONMENT_NOT_LOADED",
            "the environment's flags could not be loaded; see /readyz",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "the server could not answer; retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "success": false, "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}
