//! What server functions reach on the server: the service and who calls it, the session, the
//! client's address. Gated once here; the functions themselves stay thin.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use leptos::prelude::*;
use tower_sessions::Session;

use super::error::AppError;
use crate::service::{Actor, Service};
use crate::state::AppState;

pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::general("server state is missing"))
}

/// The service, and who calls it (the signed-in member, or nobody): what every server function
/// hands to the service, which decides what the caller may do.
pub fn caller() -> Result<(Service, Actor), AppError> {
    Ok((app_state()?.service.clone(), crate::auth::guard::caller()))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| AppError::general("your session could not be read"))
}

/// The session key of the member's working environment.
const WORKING_ENVIRONMENT: &str = "working_environment";

/// The environment a page shows: the one the request names (`?env=`), which becomes the member's
/// working environment for the rest of the session when it exists, or else the remembered one,
/// or else Production. Every page that shows one environment asks this, so a switch sticks.
pub async fn working_environment(requested: String) -> Result<String, AppError> {
    if requested.is_empty() {
        return choose_environment(requested, &[]).await;
    }
    let (service, actor) = caller()?;
    let known = service.environments(&actor).await?;
    choose_environment(requested, &known).await
}

/// [`working_environment`] with the environments already read (`known` is only consulted when
/// an environment is requested).
pub async fn choose_environment(
    requested: String,
    known: &[crate::model::Environment],
) -> Result<String, AppError> {
    let session = session().await?;
    if requested.is_empty() {
        let remembered = session.get::<String>(WORKING_ENVIRONMENT).await.ok().flatten();
        return Ok(remembered.unwrap_or_else(|| "production".into()));
    }
    if known.iter().any(|e| e.key.as_str() == requested) {
        // Failing to remember it only loses the stickiness, never the page.
        let _ = session.insert(WORKING_ENVIRONMENT, &requested).await;
    }
    Ok(requested)
}

/// The client's address, for throttling failed sign-ins: the peer's, or behind a trusted proxy
/// the one it forwarded.
pub async fn client_address() -> String {
    let Ok(ConnectInfo(peer)) = leptos_axum::extract::<ConnectInfo<SocketAddr>>().await else {
        return "unknown".into();
    };
    let headers = use_context::<axum::http::request::Parts>().map(|parts| parts.headers);
    let trusted = app_state().map(|state| state.trusted_proxies.clone());
    match (headers, trusted) {
        (Some(headers), Ok(trusted)) => {
            crate::auth::client::client_address(peer.ip(), &headers, &trusted).to_string()
        }
        _ => peer.ip().to_string(),
    }
}

/// Starts a fresh session for `member_id` (a new session id, so a planted one is useless), with
/// the member's current session epoch; also renews the caller's own session after a password
/// change ended the others.
pub async fn start_session(member_id: i64) -> Result<(), AppError> {
    let epoch = app_state()?.service.session_epoch(member_id).await?;
    let session = session().await?;
    let failed = |_| AppError::general("could not start your session; try again");
    session.cycle_id().await.map_err(failed)?;
    session
        .insert(crate::auth::session::MEMBER_ID, member_id)
        .await
        .map_err(failed)?;
    session
        .insert(crate::auth::session::EPOCH, epoch)
        .await
        .map_err(failed)?;
    Ok(())
}

/// Only same-site paths are followed after sign-in: one `/`, then no second `/` or `\\` (which a
/// browser reads as another host), and no control characters or spaces (which browsers strip, so
/// `/\t/evil.example` would become `//evil.example`, and which a header cannot carry).
pub fn safe_next(next: Option<String>) -> String {
    let same_site = |path: &str| {
        let mut chars = path.chars();
        chars.next() == Some('/')
            && !matches!(chars.next(), Some('/' | '\\'))
            && !path
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    };
    match next {
        Some(path) if same_site(&path) => path,
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_followed() {
        for kept in ["/", "/flags/checkout?env=staging", "/audit#top"] {
            assert_eq!(safe_next(Some(kept.into())), kept);
        }
        for refused in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /flags",
            "https://evil.example",
            "/flags\u{7f}",
            "flags",
            "",
        ] {
            assert_eq!(safe_next(Some(refused.into())), "/", "{refused:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
