//! The one API-key check of the public API, shared by the Reflag routes, OFREP and both
//! server-sent event streams: an extractor that finds the key (`Authorization: Bearer`,
//! `X-API-Key`, or for publishable keys only the `publishableKey` query parameter), looks it up in
//! the runtime's key table (memory, no database) and hands the handler the environment's snapshot.
//! A refusal is answered in the dialect of the route: Reflag's error object, or OFREP's.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use crate::model::ApiKeyKind;
use crate::service::runtime::{Runtime, Snapshot};

/// What a request's key opens.
pub struct ApiKey {
    pub kind: ApiKeyKind,
    pub snapshot: Arc<Snapshot>,
    pub runtime: Runtime,
    /// The key itself when it is publishable (public by design; OFREP puts it in stream URLs).
    pub publishable: Option<Box<str>>,
}

/// Which error shape a route answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Reflag,
    Ofrep,
}

impl Dialect {
    pub fn of(path: &str) -> Dialect {
        if path.starts_with("/ofrep/") {
            Dialect::Ofrep
        } else {
            Dialect::Reflag
        }
    }
}

/// Why a key was refused.
#[derive(Debug)]
pub enum KeyRefusal {
    Missing(Dialect),
    Invalid(Dialect),
    /// The key is valid but its environment has never built since start-up (see `/readyz`).
    NotLoaded(Dialect),
}

impl IntoResponse for KeyRefusal {
    fn into_response(self) -> Response {
        match self {
            KeyRefusal::Missing(Dialect::Reflag) => ApiError::missing_key().into_response(),
            KeyRefusal::Invalid(Dialect::Reflag) => ApiError::invalid_key().into_response(),
            KeyRefusal::NotLoaded(Dialect::Reflag) => ApiError::not_loaded().into_response(),
            KeyRefusal::Missing(Dialect::Ofrep) => ofrep(
                StatusCode::UNAUTHORIZED,
                "send an API key in X-API-Key or Authorization: Bearer",
            ),
            KeyRefusal::Invalid(Dialect::Ofrep) => {
                ofrep(StatusCode::UNAUTHORIZED, "the API key is not valid")
            }
            KeyRefusal::NotLoaded(Dialect::Ofrep) => ofrep(
                StatusCode::SERVICE_UNAVAILABLE,
                "the environment's flags could not be loaded; see /readyz",
            ),
        }
    }
}

fn ofrep(status: StatusCode, details: &str) -> Response {
    (
        status,
        Json(json!({ "errorCode": "GENERAL", "errorDetails": details })),
    )
        .into_response()
}

/// What `Authorization: Bearer <token>` carries, untrimmed.
pub(super) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
}

/// The key in the headers: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn header_key(parts: &Parts) -> Option<&str> {
    let bearer = bearer(&parts.headers);
    let key = bearer.or_else(|| parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()))?;
    Some(key.trim()).filter(|k| !k.is_empty())
}

/// The `publishableKey` query parameter, decoded.
fn query_key(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "publishableKey")
        .map(|(_, v)| v.into_owned())
        .filter(|k| !k.is_empty())
}

impl<S> FromRequestParts<S> for ApiKey
where
    Runtime: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = KeyRefusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, KeyRefusal> {
        let dialect = Dialect::of(parts.uri.path());
        let runtime = Runtime::from_ref(state);
        let (grant, presented) = match header_key(parts) {
            Some(key) => (runtime.authenticate(key), Cow::Borrowed(key)),
            None => {
                let key = query_key(parts).ok_or(KeyRefusal::Missing(dialect))?;
                // Only a publishable key may travel in a URL.
                let grant = runtime
                    .authenticate(&key)
                    .filter(|(_, kind)| *kind == ApiKeyKind::Publishable);
                (grant, Cow::Owned(key))
            }
        };
        let (environment_id, kind) = grant.ok_or(KeyRefusal::Invalid(dialect))?;
        let snapshot = runtime
            .snapshot(environment_id)
            .ok_or(KeyRefusal::NotLoaded(dialect))?;
        Ok(ApiKey {
            kind,
            snapshot,
            publishable: (kind == ApiKeyKind::Publishable).then(|| presented.into()),
            runtime,
        })
    }
}
