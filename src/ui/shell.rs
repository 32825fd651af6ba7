//! The frame around every signed-in page: navigation, the member, sign-out.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use super::error::AppError;
use super::hydration::use_hydrated;
use crate::model::member::{MemberView, Role};

/// The signed-in member, or `None` (public pages call this too).
#[server(endpoint = "public/whoami")]
pub async fn whoami() -> Result<Option<MemberView>, AppError> {
    Ok(crate::auth::guard::current_member())
}

#[server(endpoint = "account/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let session = super::server::session().await?;
    session
        .flush()
        .await
        .map_err(|_| AppError::general("could not end the session"))?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

/// The member for the pages inside the shell.
#[derive(Clone, Copy)]
pub struct CurrentMember(pub Resource<Result<Option<MemberView>, AppError>>);

/// True when the current member has at least `role`.
pub fn member_has(role: Role) -> impl Fn() -> bool + Copy {
    let current = expect_context::<CurrentMember>().0;
    move || matches!(current.get(), Some(Ok(Some(member))) if member.role >= role)
}

/// Every environment as `(key, name)`, in display order, and the member's working environment
/// (the one `requested` names from now on, when it exists), for the environment switcher.
#[server(endpoint = "read/environments")]
pub async fn environments(requested: String) -> Result<(Vec<(String, String)>, String), AppError> {
    let (service, actor) = super::server::caller()?;
    let environments = service.environments(&actor).await?;
    let working = super::server::choose_environment(requested, &environments).await?;
    let choices = environments.into_iter().map(|e| (e.key.to_string(), e.name));
    Ok((choices.collect(), working))
}

/// Switches the member's working environment: pages show the environment `?env=` names and
/// remember it in the session; pages without `?env=` show the remembered one.
#[component]
fn EnvironmentSwitcher() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let requested = move || query.read().get("env").unwrap_or_default();
    let environments = Resource::new(requested, environments);
    let location = leptos_router::hooks::use_location();
    view! {
        <Suspense fallback=|| ()>
            {move || environments.get().and_then(Result::ok).map(|(environments, working)| view! {
                <form method="get" action=move || location.pathname.get() class="env-switch">
                    <label for="env-switch">"Working environment"</label>
                    <select id="env-switch" name="env">
                        {environments.into_iter().map(|(key, name)| {
                            let selected = key == working;
                            view! { <option value=key selected=selected prop:selected=selected>{name}</option> }
                        }).collect_view()}
                    </select>
                    <button type="submit" class="secondary small">"Switch"</button>
                </form>
            })}
        </Suspense>
    }
}

#[component]
pub fn Shell() -> impl IntoView {
    let hydrated = use_hydrated();
    let member = Resource::new(|| (), |_| whoami());
    provide_context(CurrentMember(member));
    let sign_out = ServerAction::<SignOut>::new();
    let is_admin = member_has(Role::Admin);
    view! {
        <header class="topbar">
            <a class="logo" href="/">"Gatehouse"</a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Overview"</A>
                <A href="/flags">"Flags"</A>
                <A href="/segments">"Segments"</A>
                <A href="/audit">"Audit log"</A>
                <A href="/companies">"Companies"</A>
                <A href="/users">"Users"</A>
                <Suspense fallback=|| ()>
                    <Show when=is_admin>
                        <A href="/settings">"Settings"</A>
                    </Show>
                </Suspense>
            </nav>
            <EnvironmentSwitcher/>
            <div class="who">
                <Suspense fallback=|| ()>
                    // The member's name leads to their account (password, access tokens): one
                    // item fewer in the nav, which then fits one line at 1366 px.
                    {move || member.get().and_then(Result::ok).flatten().map(|m| view! {
                        <a class="account" href="/account" title="Your account: password and access tokens">
                            {m.name} " · " <span class="muted">{m.role.label()}</span>
                        </a>
                    })}
                </Suspense>
                <ActionForm action=sign_out>
                    <button type="submit" class="secondary small">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
        <main data-hydrated=move || hydrated.get().to_string()>
            <Outlet/>
        </main>
    }
}
