//! A button that copies a text (a key, a snippet, a link) to the clipboard. It appears once the
//! page is interactive: without JavaScript the text beside it is there to select by hand.

use leptos::prelude::*;

#[component]
pub fn CopyButton(
    /// What is copied.
    #[prop(into)]
    text: String,
    /// What the button says it copies, for screen readers ("Copy the snippet").
    #[prop(into)]
    what: String,
) -> impl IntoView {
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&text);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" class="secondary small copy" hidden=move || !interactive.get()
            aria-label=what on:click=copy>
            <span aria-live="polite">{move || if copied.get() { "Copied" } else { "Copy" }}</span>
        </button>
    }
}
