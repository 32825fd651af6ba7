//! The one middleware every public API route passes: the body limit (declared lengths checked
//! up front, axum's `DefaultBodyLimit` for the rest), the query-string limit, request metrics,
//! and (for the routes browsers call) CORS.
//!
//! Written as a plain tower service rather than three stacked layers (`from_fn` twice and
//! tower-http's `CorsLayer`): axum clones a route's whole service stack for every request, and
//! those layers cost an allocation or a deep copy of their settings each time. Here a clone is
//! one `Arc` and the handler's own service, and the response future is not boxed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pin_project_lite::pin_project;
use serde_json::json;
use tower::{Layer, Service};

use super::error::ApiError;
use super::limits::MAX_QUERY_BYTES;
use super::metrics::Metrics;

/// What the guard of a group of routes enforces and records.
#[derive(Debug)]
struct Settings {
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    /// Answer CORS (preflights and the headers of every response).
    cors: bool,
}

/// The layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct ApiGuard {
    settings: Arc<Settings>,
}

impl ApiGuard {
    pub fn new(metrics: Arc<Metrics>, max_body_bytes: usize, cors: bool) -> Self {
        ApiGuard {
            settings: Arc::new(Settings {
                metrics,
                max_body_bytes,
                cors,
            }),
        }
    }
}

/// Also sets the body limit that axum's body extractors read (`DefaultBodyLimit`), so a route
/// is wrapped once: every `Router::layer` call boxes the routes again, one more allocation per
/// request.
impl<S> Layer<S> for ApiGuard {
    type Service = GuardService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner: DefaultBodyLimit::max(self.settings.max_body_bytes).layer(inner),
            settings: self.settings.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GuardService<S> {
    inner: S,
    settings: Arc<Settings>,
}

/// CORS for browsers: any origin, the headers Reflag's browser SDK and the OFREP web provider
/// send, and a readable `ETag`.
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET,POST,OPTIONS");
const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("content-type,authorization,x-api-key,if-none-match,reflag-sdk-version");
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("etag");
const MAX_AGE: HeaderValue = HeaderValue::from_static("3600");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const VARY: HeaderValue =
    HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");

fn add_cors(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    headers.append(header::VARY, VARY);
}

/// The answer to a preflight; the origin and `Vary` are added like on every response.
fn preflight() -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
    response
}

/// A refusal in the error shape the route's clients read: OFREP's for `/ofrep/`, Reflag's
/// otherwise.
fn refuse(ofrep: bool, status: StatusCode, code: &'static str, message: String) -> Response {
    if ofrep {
        (
            status,
            Json(json!({ "errorCode": "GENERAL", "errorDetails": message })),
        )
            .into_response()
    } else {
        ApiError::new(status, code, message).into_response()
    }
}

fn too_large(ofrep: bool, max_body_bytes: usize) -> Response {
    refuse(
        ofrep,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("the request body is larger than {max_body_bytes} bytes"),
    )
}

impl<S> GuardService<S> {
    /// The answer given without calling the route: an over-long query string, a declared body
    /// over the limit, or a CORS preflight.
    fn answer_early(&self, request: &Request, ofrep: bool) -> Option<Response> {
        if request.uri().query().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
            return Some(refuse(
                ofrep,
                StatusCode::URI_TOO_LONG,
                "URI_TOO_LONG",
                format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
            ));
        }
        let max = self.settings.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Some(too_large(ofrep, max));
        }
        let headers = request.headers();
        let is_preflight = self.settings.cors
            && request.method() == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        is_preflight.then(preflight)
    }
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let ofrep = request.uri().path().starts_with("/ofrep/");
        let settings = self.settings.clone();
        let state = match self.answer_early(&request, ofrep) {
            Some(response) => State::Early {
                response: Some(response),
            },
            None => State::Route {
                future: self.inner.call(request),
            },
        };
        GuardFuture {
            state,
            done: Done {
                settings,
                route,
                method,
                ofrep,
                started,
            },
        }
    }
}

/// What the guard needs once the response is there.
struct Done {
    settings: Arc<Settings>,
    route: Option<MatchedPath>,
    method: Method,
    ofrep: bool,
    started: Instant,
}

impl Done {
    fn finish(&self, mut response: Response) -> Response {
        let settings = &self.settings;
        // The body limit's own refusals (bodies without a declared length) get the JSON shape.
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if !json {
                response = too_large(self.ofrep, settings.max_body_bytes);
            }
        }
        if settings.cors {
            add_cors(response.headers_mut());
        }
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        settings.metrics.observe(
            route,
            self.method.as_str(),
            response.status().as_u16(),
            self.started.elapsed(),
        );
        response
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Early { response: Option<Response> },
        Route { #[pin] future: F },
    }
}

pin_project! {
    /// The route's response, finished by the guard.
    pub struct GuardFuture<F> {
        #[pin]
        state: State<F>,
        done: Done,
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            StateProj::Early { response } => match response.take() {
                Some(response) => response,
                // Polled again after completion: answer nothing new.
                None => return Poll::Pending,
            },
            StateProj::Route { future } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Ok(this.done.finish(response)))
    }
}
