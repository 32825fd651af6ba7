//! Builds the server once; `main` and the integration tests share this builder.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::auth::session::{session_layer, SessionSettings};
use crate::config::DatabaseUrl;
use crate::service::{Clock, IngestLimits, OpenError, Service};
use crate::state::{AppState, IngestRates, StreamLimits};
use crate::ui::{shell, App};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
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
    /// Where "now" comes from (tests move a manual clock).
    pub clock: Clock,
    /// The bearer token `/metrics` asks for; `None` leaves it open.
    pub metrics_token: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Caps on open live-update streams: per API key, per client address, in all.
    pub streams: StreamLimits,
    /// Caps on what ingest stores and on its write queue.
    pub ingest: IngestLimits,
    /// Ingest requests per second per API key and per client address (0: no limit).
    pub ingest_rate_per_key: u32,
    pub ingest_rate_per_address: u32,
    /// How often due scheduled changes are looked for; `None` runs no scheduler (tests that
    /// move the clock and apply due changes themselves).
    pub scheduler_every: Option<std::time::Duration>,
    /// How often usage counts are written; `None` runs no flusher (tests flush by hand). A
    /// graceful shutdown flushes either way.
    pub usage_every: Option<std::time::Duration>,
    /// How often the webhook sender makes a pass; `None` runs none (tests call
    /// `Service::deliver_webhooks` themselves).
    pub webhooks_every: Option<std::time::Duration>,
    /// Count usage at all (`--count-usage`).
    pub count_usage: bool,
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
            clock: Clock::system(),
            metrics_token: None,
            trusted_proxies: Vec::new(),
            streams: StreamLimits::new(
                DEFAULT_STREAMS_PER_KEY,
                DEFAULT_STREAMS_PER_ADDRESS,
                DEFAULT_STREAMS_TOTAL,
            ),
            ingest: IngestLimits::default(),
            ingest_rate_per_key: DEFAULT_INGEST_RATE_PER_KEY,
            ingest_rate_per_address: DEFAULT_INGEST_RATE_PER_ADDRESS,
            scheduler_every: Some(SCHEDULER_EVERY),
            usage_every: Some(crate::service::FLUSH_EVERY),
            webhooks_every: Some(WEBHOOKS_EVERY),
            count_usage: true,
        }
    }
}

/// How often the server looks for due scheduled changes: they apply within this of their time.
pub const SCHEDULER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the webhook sender looks for new events and due retries.
pub const WEBHOOKS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Default caps on open live-update streams (`--max-streams-per-key`, …).
pub const DEFAULT_STREAMS_PER_KEY: usize = 10_000;
pub const DEFAULT_STREAMS_PER_ADDRESS: usize = 50;
pub const DEFAULT_STREAMS_TOTAL: usize = 20_000;
/// Default ingest rate limits, in requests per second (`--ingest-rate-per-key`, …).
pub const DEFAULT_INGEST_RATE_PER_KEY: u32 = 1_000;
pub const DEFAULT_INGEST_RATE_PER_ADDRESS: u32 = 100;

/// A bound, migrated, seeded server that has not started serving yet.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    flusher: Option<tokio::task::JoinHandle<()>>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: ServerSettings) -> Result<Application, StartupError> {
        let (service, seeded) =
            Service::serve(&settings.database_url, settings.clock.clone(), settings.ingest).await?;
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
        first_member(&service, settings.bootstrap_admin, &public_url).await?;
        for stale in service
            .runtime()
            .map(|r| r.stale_environments())
            .unwrap_or_default()
        {
            tracing::error!(
                environment = %stale.environment,
                error = %stale.error,
                "serving every other environment; this one does not build until its flags are fixed"
            );
        }
        let runtime = service
            .runtime()
            .cloned()
            .ok_or_else(|| StartupError::Bootstrap("the flags were not loaded".into()))?;
        let options = leptos_options(local_addr);
        let state = AppState::new(
            service,
            runtime,
            options,
            public_url,
            settings.trusted_proxies,
            settings.streams,
            IngestRates::new(
                settings.ingest_rate_per_key,
                settings.ingest_rate_per_address,
                settings.clock.clone(),
            ),
        );
        let router = router(state.clone(), settings.sessions, settings.metrics_token);
        // Its first pass applies what fell due while the server was down.
        let scheduler = settings
            .scheduler_every
            .map(|every| state.service.spawn_scheduler(every));
        state.runtime.usage().set_counting(settings.count_usage);
        let flusher = settings
            .usage_every
            .map(|every| state.service.spawn_usage_flusher(every));
        let sender = settings
            .webhooks_every
            .map(|every| state.service.spawn_webhook_sender(every));
        Ok(Application {
            listener,
            router,
            state,
            scheduler,
            flusher,
            sender,
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
        if let Some(scheduler) = self.scheduler {
            scheduler.abort();
        }
        if let Some(flusher) = self.flusher {
            flusher.abort();
        }
        // A delivery cut off mid-way keeps its lease and is sent again after it.
        if let Some(sender) = self.sender {
            sender.abort();
        }
        // What was counted since the last flush, so a graceful stop loses no usage.
        if let Err(error) = self.state.service.flush_usage().await {
            tracing::error!(%error, "could not write the last usage counts at shutdown");
        }
        self.state.service.close().await;
        Ok(())
    }
}

/// Gets the first member in: from the deployment's settings, or through a one-time setup link
/// printed in the log (the one place a token is logged: it is how the operator gets in at all).
async fn first_member(
    service: &Service,
    bootstrap: Option<(String, String)>,
    public_url: &str,
) -> Result<(), StartupError> {
    let failed = |e: crate::service::ServiceError| StartupError::Bootstrap(e.to_string());
    match bootstrap {
        Some((email, password)) => {
            if let Some(member) = service.bootstrap_admin(&email, &password).await.map_err(failed)? {
                tracing::info!(email = %member.email, "created the first admin from GATEHOUSE_ADMIN_EMAIL");
            }
        }
        None => {
            if let Some(token) = service.issue_setup_token().await.map_err(failed)? {
                tracing::info!(
                    "no member exists yet; create the first admin at {public_url}/setup?token={token}"
                );
            }
        }
    }
    Ok(())
}

/// The headers every admin page and server function answers with: no framing by other sites, no
/// MIME sniffing, no referrer sent to other sites, and a content security policy that allows
/// scripts only from this site. Pages replace the policy with one that also names their
/// inline scripts' nonce (`ui::page_policy`); everything else keeps this one.
fn security_headers(admin: Router<AppState>) -> Router<AppState> {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    let set = |name, value: HeaderValue| SetResponseHeaderLayer::if_not_present(name, value);
    let policy =
        HeaderValue::from_str(&crate::ui::page_policy(None)).expect("the policy is a valid header value");
    admin
        .layer(set(header::CONTENT_SECURITY_POLICY, policy))
        .layer(set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(set(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(set(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// The compiled site's files (bundle, stylesheet, favicon), compressed and cached by hash
/// ([`cache_control`]). They are served beside the pages, not by leptos_axum's fallback: that
/// handler answers a file inside a leptos owner made under whatever owner its thread last ran, so
/// a page rendered at the same moment could lose its headers to the file — Chromium, asking for
/// the favicon while a page was streaming, then got the page without its script nonce and
/// blocked the page's scripts.
fn site_files(options: &LeptosOptions) -> Router<AppState> {
    use tower_http::services::{ServeDir, ServeFile};
    let root = std::path::PathBuf::from(options.site_root.as_ref());
    Router::new()
        .nest_service("/pkg", ServeDir::new(root.join(options.site_pkg_dir.as_ref())))
        .route_service("/favicon.svg", ServeFile::new(root.join("favicon.svg")))
        .layer(axum::middleware::from_fn(cache_control))
        .layer(CompressionLayer::new())
}

/// Whether cargo-leptos named the bundle's files by their content (`hash-files` in Cargo.toml):
/// it then writes their hashes to `hash.txt` beside the server binary, and pages link the hashed
/// names. A binary without it (a test binary) links the plain names.
fn hash_file_beside_binary() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")))
        .is_some_and(|file| file.exists())
}

/// How long a browser may keep what the admin router answers. The bundle's hashed files
/// (`/pkg/gatehouse.<hash>.wasm`) never change under their name, so for a year; everything else
/// (pages, server functions, plain-named files) is asked for again each time.
async fn cache_control(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header::CACHE_CONTROL, HeaderValue};
    let immutable = is_hashed_asset(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() && !response.headers().contains_key(CACHE_CONTROL) {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// `/pkg/<name>.<hash>.<ext>`, the hash being cargo-leptos' (22 characters of URL-safe base64).
fn is_hashed_asset(path: &str) -> bool {
    let Some(file) = path.strip_prefix("/pkg/") else {
        return false;
    };
    let parts: Vec<&str> = file.split('.').collect();
    matches!(parts.as_slice(), [name, hash, _ext]
        if !name.is_empty()
            && hash.len() == 22
            && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Where the compiled site (WebAssembly bundle, CSS, assets) lives; cargo-leptos writes it to
/// `target/site`, and `LEPTOS_SITE_ROOT` points elsewhere for an installed copy.
fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("gatehouse")
        .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
        .site_pkg_dir("pkg")
        .hash_files(hash_file_beside_binary())
        .site_addr(addr)
        .env(if cfg!(debug_assertions) {
            Env::DEV
        } else {
            Env::PROD
        })
        .build()
}

pub fn router(state: AppState, sessions: SessionSettings, metrics_token: Option<String>) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let admin = Router::new()
        .leptos_routes(&state, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(
            state.service.clone(),
            crate::auth::guard::guard,
        ))
        .layer(session_layer(state.service.session_store(), sessions))
        .layer(axum::middleware::from_fn(cache_control))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http());
    let admin = security_headers(admin);
    let files = security_headers(site_files(&options));
    // The public API has its own request metrics (`GET /metrics`) and no per-request trace: on
    // that hot path the extra layer cost a boxed service clone per request.
    Router::new()
        .merge(crate::api::routes(metrics_token))
        .merge(crate::api::mcp::routes(&state))
        .merge(files)
        .merge(admin)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::is_hashed_asset;

    #[test]
    fn only_the_bundles_hashed_files_are_kept_for_a_year() {
        assert!(is_hashed_asset("/pkg/gatehouse.Ab-_0123456789abcdefgh.wasm"));
        assert!(is_hashed_asset("/pkg/gatehouse.Ab-_0123456789abcdefgh.css"));
        assert!(!is_hashed_asset("/pkg/gatehouse.wasm"));
        assert!(!is_hashed_asset("/pkg/gatehouse.css"));
        assert!(!is_hashed_asset("/pkg/gatehouse.short.js"));
        assert!(!is_hashed_asset("/favicon.Ab-_0123456789abcdefgh.svg"));
        assert!(!is_hashed_asset("/pkg/gatehouse.Ab-_0123456789abcdef/hi.js"));
    }
}
