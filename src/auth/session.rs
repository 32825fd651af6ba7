//! Sessions in the database (tower-sessions), so any replica serves any member.

use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::service::DatabaseSessionStore;

/// The session key that holds the signed-in member's id.
pub const MEMBER_ID: &str = "member_id";
/// The session key that holds the member's session epoch at sign-in (see `members.session_epoch`).
pub const EPOCH: &str = "epoch";
/// Name of the session cookie.
pub const COOKIE_NAME: &str = "gatehouse_session";

/// Cookie and expiry settings.
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    /// Send the cookie over HTTPS only.
    pub secure: bool,
    /// A session unused for this long ends.
    pub idle_minutes: i64,
}

pub fn session_layer(
    sessions: DatabaseSessionStore,
    settings: SessionSettings,
) -> SessionManagerLayer<DatabaseSessionStore> {
    // Expired rows are swept hourly; an expired session is refused on load anyway.
    tokio::spawn(
        sessions
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_secs(3600)),
    );
    SessionManagerLayer::new(sessions)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.secure)
        .with_expiry(Expiry::OnInactivity(CookieDuration::minutes(
            settings.idle_minutes,
        )))
        // Saved on every request, so the idle limit counts from the last request (sliding), not
        // from sign-in: without it an unchanged session is never written again.
        .with_always_save(true)
}

/// The member id and epoch a session carries, if it is signed in.
pub async fn member_id(session: &Session) -> Option<(i64, i64)> {
    let id = session.get::<i64>(MEMBER_ID).await.ok().flatten()?;
    let epoch = session.get::<i64>(EPOCH).await.ok().flatten().unwrap_or(0);
    Some((id, epoch))
}
