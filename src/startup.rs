//! Builds the server once; `main` and the integration tests share this builder.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::FromRef;
use axum::Router;
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::DatabaseUrl;
use crate::store::{Store, StoreError};
use crate::ui::{shell, App};

/// What every handler and server function can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

pub struct ServerSettings {
    pub database_url: DatabaseUrl,
    /// Address to listen on; port 0 picks a free one (tests).
    pub addr: String,
}

/// A bound, migrated, seeded server that has not started serving yet.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(settings: ServerSettings) -> Result<Application, StartupError> {
        let store = Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        let seeded = store.seed_defaults().await?;
        if seeded.environments > 0 || seeded.stages > 0 {
            tracing::info!(
                environments = seeded.environments,
                stages = seeded.stages,
                "seeded default environments and release stages"
            );
        }

        let listener =
            TcpListener::bind(&settings.addr)
                .await
                .map_err(|e| StartupError::Listen {
                    addr: settings.addr.clone(),
                    reason: e.to_string(),
                })?;
        let local_addr = listener.local_addr().map_err(|e| StartupError::Listen {
            addr: settings.addr.clone(),
            reason: e.to_string(),
        })?;

        let state = AppState {
            store,
            leptos_options: leptos_options(local_addr),
        };
        let router = router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        self.state.store.close().await;
        Ok(())
    }
}

/// Where the compiled site (WebAssembly bundle, CSS, assets) lives; cargo-leptos writes it to
/// `target/site`, and `LEPTOS_SITE_ROOT` points elsewhere for an installed copy.
fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("gatehouse")
        .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(if cfg!(debug_assertions) {
            Env::DEV
        } else {
            Env::PROD
        })
        .build()
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .merge(crate::api::routes())
        .leptos_routes(&state, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
