//! The caps on live-update streams, applied where a stream opens: one more per API key, per
//! client address and in all, or 429 with `Retry-After` in the route's dialect.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::key::{ApiKey, Dialect};
use crate::state::{StreamPermit, Streams};

/// A stream refused because a cap is reached, answered in the route's dialect.
#[derive(Debug)]
pub struct TooManyStreams(Dialect);

impl IntoResponse for TooManyStreams {
    fn into_response(self) -> Response {
        let message = "too many live-update streams are open; close some or retry later";
        let body = match self.0 {
            Dialect::Reflag => {
                json!({ "success": false, "error": { "code": "TOO_MANY_STREAMS", "message": message } })
            }
            Dialect::Ofrep => json!({ "errorCode": "GENERAL", "errorDetails": message }),
        };
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "30")],
            Json(body),
        )
            .into_response()
    }
}

/// A place for the stream the request opens.
pub fn admit(
    key: &ApiKey,
    peer: SocketAddr,
    headers: &HeaderMap,
    streams: &Streams,
    dialect: Dialect,
) -> Result<StreamPermit, TooManyStreams> {
    let address = crate::auth::client::client_address(peer.ip(), headers, &streams.trusted_proxies);
    let environment = &key.snapshot.environment;
    let key_id = format!("{}:{}", environment.id, key.kind.as_str());
    streams
        .limits
        .open(key_id, address)
        .ok_or(TooManyStreams(dialect))
}
