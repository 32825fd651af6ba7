//! What the admin app and the public API reach per request. Low in the module tree: `ui`, `api`
//! and `auth` depend on it, and it depends only on the service below them, so the composition
//! root (`startup`) is imported by nothing. Handlers take the part they use through `FromRef`:
//! the public API the [`Runtime`] (and the [`Service`] for ingest), pages and server functions
//! the [`Service`].

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::service::runtime::Runtime;
use crate::service::Service;

/// One shared allocation: handing it to a request is a reference-count increment.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

#[derive(Debug)]
pub struct AppStateInner {
    pub service: Service,
    pub runtime: Runtime,
    pub leptos_options: LeptosOptions,
    /// The address people use to reach this server, for links (setup, invitations).
    pub public_url: Arc<str>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl AppState {
    pub fn new(
        service: Service,
        runtime: Runtime,
        leptos_options: LeptosOptions,
        public_url: Arc<str>,
        trusted_proxies: Vec<ipnet::IpNet>,
    ) -> Self {
        AppState(Arc::new(AppStateInner {
            service,
            runtime,
            leptos_options,
            public_url,
            trusted_proxies: trusted_proxies.into(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Service {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

impl FromRef<AppState> for Runtime {
    fn from_ref(state: &AppState) -> Self {
        state.runtime.clone()
    }
}
