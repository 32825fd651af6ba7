//! Gatehouse: a self-hosted feature-flag service.
//!
//! The crate is built twice by cargo-leptos: with `ssr` as the server (binary `gatehouse`) and with
//! `hydrate` as the browser bundle. Dependencies point one way:
//! `ui`/`api` → `service` → `store` + `runtime` → `eval` → `model`. `model`, `eval` and `ui` compile
//! for both targets; everything that touches the network, the database or the clock is server-only
//! and gated once, here.

// The admin pages' view trees are deep; the release (wasm, LTO) build exceeds the default
// trait-query depth of 128 without this.
#![recursion_limit = "256"]

pub mod eval;
pub mod model;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod api;
#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod cli_target;
#[cfg(feature = "ssr")]
pub mod code_refs;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod typegen;
#[cfg(feature = "ssr")]
pub mod usage_report;

/// Browser entry point: attaches the client to the server-rendered HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(ui::App);
}
