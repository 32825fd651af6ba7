//! Whether the WebAssembly bundle has taken over the page yet.

use leptos::prelude::*;

/// True once the WebAssembly bundle has taken over the page. Effects only run in the browser,
/// so end-to-end tests wait for `data-hydrated="true"` before they interact.
pub fn use_hydrated() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated
}
