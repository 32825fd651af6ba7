//! The sign-in page.

use leptos::prelude::*;

use super::use_hydrated;

#[component]
pub fn SignInPage() -> impl IntoView {
    let hydrated = use_hydrated();
    let (show_password, set_show_password) = signal(false);
    view! {
        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1 class="brand">"Gatehouse"</h1>
            <section class="card">
                <h2>"Sign in"</h2>
                <form method="post" action="/sign-in">
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required/>
                    <label for="password">"Password"</label>
                    <div class="with-button">
                        <input
                            id="password"
                            name="password"
                            type=move || if show_password.get() { "text" } else { "password" }
                            autocomplete="current-password"
                            required
                        />
                        <button
                            type="button"
                            class="secondary"
                            aria-controls="password"
                            aria-pressed=move || show_password.get().to_string()
                            // Until the bundle loads the button can do nothing; say so.
                            disabled=move || !hydrated.get()
                            on:click=move |_| set_show_password.update(|shown| *shown = !*shown)
                        >
                            {move || if show_password.get() { "Hide" } else { "Show" }}
                        </button>
                    </div>
                    <button type="submit">"Sign in"</button>
                </form>
            </section>
        </main>
    }
}
