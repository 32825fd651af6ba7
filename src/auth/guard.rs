//! The admin app's gate: finds who is calling and asks the service's one authorization decision
//! ([`crate::service::access::authorize`]) before anything runs.
//!
//! A server function's endpoint name starts with the permission it needs: `public/` (anyone),
//! `account/` (the caller's own account), `read/` (any member), `edit/` (editors and admins),
//! `admin/` (admins). The middleware [`guard`] resolves the session's member for every admin
//! request, refuses cross-origin writes, and refuses a server-function call whose caller lacks the
//! endpoint's permission, or whose endpoint has no known prefix (fail closed). Server functions
//! then take the caller with [`caller`] and pass it to the service, which authorizes every read and
//! change again, so a function called in-process while rendering a page is covered too.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;
use tower_sessions::Session;

use crate::model::member::MemberView;
use crate::service::access::{authorize, Permission, Refusal};
use crate::service::{Actor, Service};

/// Prefix of every server-function path.
pub const SERVER_FN_PREFIX: &str = "/api/";

/// The permission an endpoint needs, read from its name; `None` for a name without a known
/// prefix.
pub fn endpoint_permission(path: &str) -> Option<Permission> {
    let name = path.strip_prefix(SERVER_FN_PREFIX)?;
    let (prefix, rest) = name.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    match prefix {
        "public" => Some(Permission::Public),
        "account" => Some(Permission::OwnAccount),
        "read" => Some(Permission::Read),
        "edit" => Some(Permission::Edit),
        "admin" => Some(Permission::Administer),
        _ => None,
    }
}

/// The signed-in member of the current request, put into request extensions by [`guard`].
#[derive(Clone, Debug)]
pub struct CurrentMember(pub MemberView);

/// Why the gate refused a request.
#[derive(Debug)]
enum Blocked {
    Denied(Refusal),
    CrossOrigin,
    UnknownEndpoint,
}

impl IntoResponse for Blocked {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Blocked::Denied(refusal @ Refusal::NotSignedIn) => {
                (StatusCode::UNAUTHORIZED, refusal.to_string())
            }
            Blocked::Denied(refusal) => (StatusCode::FORBIDDEN, refusal.to_string()),
            Blocked::CrossOrigin => (StatusCode::FORBIDDEN, "cross-origin request refused".into()),
            Blocked::UnknownEndpoint => (StatusCode::NOT_FOUND, "unknown endpoint".into()),
        };
        // The shape of the admin app's `AppError`, so a refused call reads as a message in place
        // and never as a decoding error.
        (status, Json(json!({ "field": null, "message": message }))).into_response()
    }
}

/// The actor a member (or nobody) acts as.
fn actor_of(member: Option<&MemberView>) -> Actor {
    member.map_or_else(Actor::anonymous, Actor::member)
}

/// True when a browser says the request comes from another site. Requests without `Origin`
/// come from non-browser clients or same-origin navigations of older browsers.
pub fn is_cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// Pages anyone may open; every other page needs a signed-in member.
fn is_public_page(path: &str) -> bool {
    matches!(path, "/sign-in" | "/setup" | "/favicon.svg" | "/favicon.ico")
        || path.starts_with("/invite/")
        || path.starts_with("/pkg/")
}

pub async fn guard(State(service): State<Service>, mut request: Request, next: Next) -> Response {
    // Only the admin app is layered with this guard; the public API and the probes are routed
    // beside it (`startup::router`) and authenticate on their own.
    let path = request.uri().path().to_string();
    let is_server_fn = path.starts_with(SERVER_FN_PREFIX);
    if is_server_fn && request.method() != Method::GET && is_cross_origin(request.headers()) {
        tracing::warn!(%path, "refused a cross-origin server-function call");
        return Blocked::CrossOrigin.into_response();
    }

    let member = match request.extensions().get::<Session>().cloned() {
        Some(session) => resolve_member(&service, &session).await,
        None => None,
    };
    if let Some(member) = &member {
        request.extensions_mut().insert(CurrentMember(member.clone()));
    }

    if is_server_fn {
        let Some(permission) = endpoint_permission(&path) else {
            return Blocked::UnknownEndpoint.into_response();
        };
        if let Err(refusal) = authorize(&actor_of(member.as_ref()), permission) {
            return Blocked::Denied(refusal).into_response();
        }
    } else if member.is_none() && !is_public_page(&path) && request.method() == Method::GET {
        return sign_in_redirect(&request);
    }
    next.run(request).await
}

/// The member a session belongs to. A session of a removed member, or one whose sessions were
/// ended since (password change, lower role), is ended here, on its next request.
async fn resolve_member(service: &Service, session: &Session) -> Option<MemberView> {
    let (id, epoch) = super::session::member_id(session).await?;
    match service.session_member(id, epoch).await {
        Ok(Some(member)) => Some(member),
        Ok(None) => {
            let _ = session.flush().await;
            None
        }
        Err(error) => {
            tracing::error!(%error, "could not load the session's member");
            None
        }
    }
}

fn sign_in_redirect(request: &Request<Body>) -> Response {
    let next = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = if next == "/" {
        "/sign-in".to_string()
    } else {
        format!("/sign-in?next={}", encode(next))
    };
    Redirect::to(&target).into_response()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The member behind the current server-function call, if any.
pub fn current_member() -> Option<MemberView> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CurrentMember>().map(|m| m.0.clone()))
}

/// Who calls the current server function: the signed-in member, or nobody. The service decides
/// what they may do.
pub fn caller() -> Actor {
    actor_of(current_member().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_prefixes_map_to_permissions() {
        assert_eq!(
            endpoint_permission("/api/public/sign_in"),
            Some(Permission::Public)
        );
        assert_eq!(endpoint_permission("/api/read/flags"), Some(Permission::Read));
        assert_eq!(
            endpoint_permission("/api/account/sign_out"),
            Some(Permission::OwnAccount)
        );
        assert_eq!(endpoint_permission("/api/edit/save_flag"), Some(Permission::Edit));
        assert_eq!(
            endpoint_permission("/api/admin/invite"),
            Some(Permission::Administer)
        );
        for unknown in ["/api/sign_in", "/api/other/x", "/api/admin/", "/flags", "/api/"] {
            assert_eq!(endpoint_permission(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn origin_must_match_host() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, "gatehouse.example:3000".parse().unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(!is_cross_origin(&headers(None)));
        assert!(!is_cross_origin(&headers(Some("http://gatehouse.example:3000"))));
        assert!(is_cross_origin(&headers(Some("https://evil.example"))));
        assert!(is_cross_origin(&headers(Some("null"))));
    }
}
