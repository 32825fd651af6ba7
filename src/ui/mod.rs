//! The admin UI: a Leptos app rendered on the server and hydrated in the browser.
//!
//! Pages post plain HTML forms to server functions, so every page works before (or without) the
//! WebAssembly bundle; once hydrated, the same forms submit without a full reload.

mod access_editor;
mod account;
mod audit;
mod cleanup;
mod confirm;
mod copy;
mod entities_ui;
pub mod error;
mod flag_summary;
mod flags;
mod format;
pub use format::{date, datetime};
pub mod home;
mod hydration;
mod plans;
mod requests;
mod schedule;
mod segments;
#[cfg(feature = "ssr")]
mod server;
mod settings;
mod shell;
mod sign_in;
mod stages;
mod submit;
mod usage;
mod webhooks;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use account::AccountPage;
use audit::AuditPage;
use entities_ui::{CompaniesPage, CompanyPage, UserPage, UsersPage};
use flags::{FlagPage, FlagsPage, NewFlagPage};
use home::HomePage;
use plans::PlanTemplatesPage;
use segments::{NewSegmentPage, SegmentPage, SegmentsPage};
use settings::{KeysPage, MembersPage, SettingsPage};
use shell::Shell;
use sign_in::{InvitationPage, SetupPage, SignInPage};
use stages::StagesPage;

/// The HTML document around the app; used by the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet id="gatehouse" options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The policy every admin page is served with, allowing this page's own inline scripts (the
/// hydration loader and streamed resources, which carry the request's nonce) and scripts and
/// WebAssembly from this site; nothing inline or from elsewhere. Styles come from this site's
/// stylesheet; `style` attributes carry the stage colours.
pub fn page_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".into(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; style-src-attr 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
         form-action 'self'; object-src 'none'"
    )
}

/// Sends [`page_policy`] with the nonce leptos_axum made for this response.
#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&page_policy(Some(&nonce))) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Gatehouse"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/sign-in") view=SignInPage/>
                <Route path=path!("/setup") view=SetupPage/>
                <Route path=path!("/invite/:token") view=InvitationPage ssr=SsrMode::InOrder/>
                // Rendered once every resource has loaded: suspended data is in the HTML itself,
                // so pages read fine without JavaScript, and the status (a 404 for a flag that
                // does not exist) is known before the first byte is sent. Applies to every page
                // nested here.
                <ParentRoute path=path!("") view=Shell ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage/>
                    <Route path=path!("flags") view=FlagsPage/>
                    <Route path=path!("flags/new") view=NewFlagPage/>
                    <Route path=path!("flags/:key") view=FlagPage/>
                    <Route path=path!("segments") view=SegmentsPage/>
                    <Route path=path!("segments/new") view=NewSegmentPage/>
                    <Route path=path!("segments/:key") view=SegmentPage/>
                    <Route path=path!("audit") view=AuditPage/>
                    <Route path=path!("cleanup") view=cleanup::CleanupPage/>
                    <Route path=path!("companies") view=CompaniesPage/>
                    <Route path=path!("companies/:id") view=CompanyPage/>
                    <Route path=path!("users") view=UsersPage/>
                    <Route path=path!("users/:id") view=UserPage/>
                    <Route path=path!("account") view=AccountPage/>
                    <Route path=path!("settings") view=SettingsPage/>
                    <Route path=path!("settings/members") view=MembersPage/>
                    <Route path=path!("settings/keys") view=KeysPage/>
                    <Route path=path!("settings/stages") view=StagesPage/>
                    <Route path=path!("settings/plans") view=PlanTemplatesPage/>
                    <Route path=path!("settings/webhooks") view=webhooks::WebhooksPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <main class="narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to the start page"</a> "."</p>
        </main>
    }
}
