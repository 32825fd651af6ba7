//! The caps on live-update streams, applied where a stream opens: one more per API key, per
//! client address and in all, or 429 with `Retry-After` in the route's dialect.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::key::{ApiKey, Dialect};
use crate::state::{StreamPermit, Streams};

/// A place for the stream the request opens, or the refusal to send.
pub fn admit(
    key: &ApiKey,
    peer: SocketAddr,
    headers: &HeaderMap,
    streams: &Streams,
    dialect: Dialect,
) -> Result<StreamPermit, Response> {
    let address = crate::auth::client::client_address(peer.ip(), headers, &streams.trusted_proxies);
    let environment = &key.snapshot.environment;
    let key_id = format!("{}:{}", environment.id, key.kind.as_str());
    streams.limits.open(key_id, address).ok_or_else(|| {
        let message = "too many live-update streams are open; close some or retry later";
        let body = match dialect {
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
    })
}
