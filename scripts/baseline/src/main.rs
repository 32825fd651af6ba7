//! `gatehouse-baseline ADDR`: serves `GET /` and `POST /` with a constant JSON body on a
//! multi-threaded tokio runtime, like Gatehouse's. The load test's upper bound for this machine.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const BODY: &str = r#"{"success":true,"features":{"baseline":{"key":"baseline","isEnabled":true,"targetingVersion":1}}}"#;

async fn constant() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3999".into());
    let app = Router::new().route("/", get(constant).post(constant));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
