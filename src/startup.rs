//! Builds the server once; `main` and the integration tests share this builder.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::Router;
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::auth::session::{session_layer, SessionSettings};
use crate::auth::throttle::Throttle;
use crate::config::DatabaseUrl;
use crate::model::member::Role;
use crate::runtime::Runtime;
use crate::service::members::{add_member, SetupToken};
use crate::service::Actor;
use crate::store::{Store, StoreError};
use crate::ui::{shell, App};

/// What every handler and server function can reach: one shared allocation, so handing it to a
/// request is a reference-count increment (a field-by-field clone showed up in the API profile).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

#[derive(Debug)]
pub struct AppStateInner {
    pub store: Store,
    pub runtime: Runtime,
    pub leptos_options: LeptosOptions,
    pub throttle: Arc<Throttle>,
    pub setup: Arc<SetupToken>,
    /// The address people use to reach this server, for links (setup, invitations).
    pub public_url: Arc<str>,
    /// Request and evaluation counters of the public API (`GET /metrics`).
    pub metrics: Arc<crate::api::metrics::Metrics>,
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
    #[error("cannot load the flags: {0}")]
    Runtime(String),
    #[error("cannot create the first admin from GATEHOUSE_ADMIN_EMAIL: {0}")]
    Bootstrap(String),
}

pub struct ServerSettings {
    pub database_url: DatabaseUrl,
    /// Address to listen on; port 0 picks a free one (tests).
    pub addr: String,
    /// The URL people reach the server at; defaults to `http://<addr>`.
    pub public_url: Option<String>,
    pub sessions: SessionSettings,
    /// First admin's e-mail and password, used only while no member exists.
    pub bootstrap_admin: Option<(String, String)>,
}

impl ServerSettings {
    /// Defaults for a local server (tests, development).
    pub fn local(database_url: DatabaseUrl, addr: &str) -> Self {
        ServerSettings {
            database_url,
            addr: addr.into(),
            public_url: None,
            sessions: SessionSettings {
                secure: false,
                idle_minutes: 12 * 60,
            },
            bootstrap_admin: None,
        }
    }
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

        let listener = TcpListener::bind(&settings.addr)
            .await
            .map_err(|e| StartupError::Listen {
                addr: settings.addr.clone(),
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| StartupError::Listen {
            addr: settings.addr.clone(),
            reason: e.to_string(),
        })?;

        let public_url: Arc<str> = settings
            .public_url
            .map(|url| url.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{local_addr}"))
            .into();
        let setup = Arc::new(SetupToken::default());
        if store.member_count().await? == 0 {
            match settings.bootstrap_admin {
                Some((email, password)) => {
                    let actor = Actor::system("GATEHOUSE_ADMIN_EMAIL");
                    let member = add_member(&store, &actor, &email, "Admin", Role::Admin, &password)
                        .await
                        .map_err(|e| StartupError::Bootstrap(e.to_string()))?;
                    tracing::info!(email = %member.email, "created the first admin from GATEHOUSE_ADMIN_EMAIL");
                }
                None => {
                    // The one place a token is logged: it is how the operator gets in at all.
                    let token = setup.issue();
                    tracing::info!(
                        "no member exists yet; create the first admin at {public_url}/setup?token={token}"
                    );
                }
            }
        }

        let runtime = Runtime::load(store.clone())
            .await
            .map_err(|e| StartupError::Runtime(e.to_string()))?;
        runtime.spawn_watchers();
        let state = AppState(Arc::new(AppStateInner {
            store,
            runtime,
            leptos_options: leptos_options(local_addr),
            throttle: Arc::new(Throttle::default()),
            setup,
            public_url,
            metrics: Arc::default(),
        }));
        let router = router(state.clone(), settings.sessions);
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
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let runtime = self.state.runtime.clone();
        let shutdown = async move {
            shutdown.await;
            runtime.close();
        };
        axum::serve(
            self.listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
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

pub fn router(state: AppState, sessions: SessionSettings) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let admin = Router::new()
        .leptos_routes(&state, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard::guard,
        ))
        .layer(session_layer(&state.store, sessions))
        .layer(TraceLayer::new_for_http());
    // The public API has its own request metrics (`GET /metrics`) and no per-request trace: on
    // that hot path the extra layer cost a boxed service clone per request.
    Router::new()
        .merge(crate::api::routes(&state))
        .merge(admin)
        .with_state(state)
}
