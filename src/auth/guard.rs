//! The one place that decides who may call what.
//!
//! A server function's endpoint name starts with the access it needs: `public/` (anyone),
//! `account/` and `read/` (any member), `edit/` (editors and admins), `admin/` (admins). The
//! middleware [`guard`] resolves the session's member for every admin request, refuses
//! cross-origin writes, and refuses a server-function call whose caller lacks the endpoint's
//! access — or whose endpoint has no known prefix (fail closed). Server functions then call
//! [`authorize`] with the same access to obtain the member, which also covers in-process calls
//! made while rendering a page on the server.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;
use tower_sessions::Session;

use crate::model::member::{MemberView, Role};
use crate::startup::AppState;

/// Prefix of every server-function path.
pub const SERVER_FN_PREFIX: &str = "/api/";

/// What a caller needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Anyone,
    /// A signed-in member with at least this role.
    Member(Role),
}

/// The access an endpoint needs, read from its name; `None` for a name without a known prefix.
pub fn endpoint_access(path: &str) -> Option<Access> {
    let name = path.strip_prefix(SERVER_FN_PREFIX)?;
    let (prefix, rest) = name.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    match prefix {
        "public" => Some(Access::Anyone),
        "account" | "read" => Some(Access::Member(Role::Viewer)),
        "edit" => Some(Access::Member(Role::Editor)),
        "admin" => Some(Access::Member(Role::Admin)),
        _ => None,
    }
}

/// The signed-in member of the current request, put into request extensions by [`guard`].
#[derive(Clone, Debug)]
pub struct CurrentMember(pub MemberView);

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("sign in to continue")]
    NotSignedIn,
    #[error("your role ({have}) cannot do this; it needs {need}")]
    Forbidden { have: Role, need: Role },
    #[error("cross-origin request refused")]
    CrossOrigin,
    #[error("unknown endpoint")]
    UnknownEndpoint,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::NotSignedIn => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden { .. } | Refusal::CrossOrigin => StatusCode::FORBIDDEN,
            Refusal::UnknownEndpoint => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Checks `access` against an (optional) member.
pub fn check(access: Access, member: Option<&MemberView>) -> Result<(), Refusal> {
    match (access, member) {
        (Access::Anyone, _) => Ok(()),
        (Access::Member(_), None) => Err(Refusal::NotSignedIn),
        (Access::Member(need), Some(member)) if member.role < need => Err(Refusal::Forbidden {
            have: member.role,
            need,
        }),
        (Access::Member(_), Some(_)) => Ok(()),
    }
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

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Only the admin app is layered with this guard; the public API and the probes are routed
    // beside it (`startup::router`) and authenticate on their own.
    let path = request.uri().path().to_string();
    let is_server_fn = path.starts_with(SERVER_FN_PREFIX);
    if is_server_fn && request.method() != Method::GET && is_cross_origin(request.headers()) {
        tracing::warn!(%path, "refused a cross-origin server-function call");
        return Refusal::CrossOrigin.into_response();
    }

    let member = match request.extensions().get::<Session>().cloned() {
        Some(session) => resolve_member(&state, &session).await,
        None => None,
    };
    if let Some(member) = &member {
        request.extensions_mut().insert(CurrentMember(member.clone()));
    }

    if is_server_fn {
        let Some(access) = endpoint_access(&path) else {
            return Refusal::UnknownEndpoint.into_response();
        };
        if let Err(refusal) = check(access, member.as_ref()) {
            return refusal.into_response();
        }
    } else if member.is_none() && !is_public_page(&path) && request.method() == Method::GET {
        return sign_in_redirect(&request);
    }
    next.run(request).await
}

/// The member a session belongs to. A session of a removed member is ended here, on its next
/// request.
async fn resolve_member(state: &AppState, session: &Session) -> Option<MemberView> {
    let id = super::session::member_id(session).await?;
    match state.store.member_by_id(id).await {
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

/// Returns the calling member if they have `access`; for server functions.
pub fn authorize(access: Access) -> Result<Option<MemberView>, Refusal> {
    let member = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CurrentMember>().map(|m| m.0.clone()));
    check(access, member.as_ref())?;
    Ok(member)
}

/// Like [`authorize`] for endpoints that need a member: returns the member itself.
pub fn require(role: Role) -> Result<MemberView, Refusal> {
    authorize(Access::Member(role))?.ok_or(Refusal::NotSignedIn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_prefixes_map_to_access() {
        assert_eq!(endpoint_access("/api/public/sign_in"), Some(Access::Anyone));
        assert_eq!(
            endpoint_access("/api/read/flags"),
            Some(Access::Member(Role::Viewer))
        );
        assert_eq!(
            endpoint_access("/api/account/sign_out"),
            Some(Access::Member(Role::Viewer))
        );
        assert_eq!(
            endpoint_access("/api/edit/save_flag"),
            Some(Access::Member(Role::Editor))
        );
        assert_eq!(
            endpoint_access("/api/admin/invite"),
            Some(Access::Member(Role::Admin))
        );
        for unknown in ["/api/sign_in", "/api/other/x", "/api/admin/", "/flags", "/api/"] {
            assert_eq!(endpoint_access(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn roles_below_the_need_are_refused() {
        let member = |role| MemberView {
            id: 1,
            email: "a@b.co".into(),
            name: "A".into(),
            role,
        };
        assert_eq!(
            check(Access::Member(Role::Viewer), None),
            Err(Refusal::NotSignedIn)
        );
        assert!(check(Access::Member(Role::Editor), Some(&member(Role::Viewer))).is_err());
        assert!(check(Access::Member(Role::Admin), Some(&member(Role::Editor))).is_err());
        assert!(check(Access::Member(Role::Editor), Some(&member(Role::Admin))).is_ok());
        assert!(check(Access::Anyone, None).is_ok());
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
