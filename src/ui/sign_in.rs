//! Getting in: sign in, first-run setup, accepting an invitation.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::error::{field_error, form_error, AppError, ErrorText};
use super::hydration::use_hydrated;

#[server(endpoint = "public/sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use super::server::{caller, client_address, safe_next, start_session};
    let (service, _) = caller()?;
    let member = service
        .sign_in(&email, &password, &client_address().await)
        .await?;
    start_session(member.id).await?;
    leptos_axum::redirect(&safe_next(next));
    Ok(())
}

#[server(endpoint = "public/complete_setup")]
pub async fn complete_setup(
    token: String,
    email: String,
    name: String,
    password: String,
) -> Result<(), AppError> {
    use super::server::{caller, start_session};
    let (service, _) = caller()?;
    let member = service.complete_setup(&token, &email, &name, &password).await?;
    start_session(member.id).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// The e-mail address and role an invitation link is for.
#[server(endpoint = "public/invitation")]
pub async fn invitation(token: String) -> Result<(String, String), AppError> {
    let (service, _) = super::server::caller()?;
    let invitation = service.open_invitation(&token).await?;
    Ok((invitation.email, invitation.role.label().to_string()))
}

#[server(endpoint = "public/accept_invitation")]
pub async fn accept_invitation(token: String, name: String, password: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::AcceptInvitation {
        token,
        name,
        password,
    };
    let member = service.apply(&actor, change).await?.into_member()?;
    super::server::start_session(member.id).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// A password input with a show/hide toggle (the toggle needs the bundle; the input does not).
#[component]
pub fn PasswordInput(id: &'static str, name: &'static str, autocomplete: &'static str) -> impl IntoView {
    let hydrated = use_hydrated();
    let (shown, set_shown) = signal(false);
    view! {
        <div class="with-button">
            <input
                id=id
                name=name
                type=move || if shown.get() { "text" } else { "password" }
                autocomplete=autocomplete
                aria-describedby=format!("{id}-error")
                required
            />
            <button
                type="button"
                class="secondary"
                aria-controls=id
                aria-label=move || if shown.get() { "Hide password" } else { "Show password" }
                aria-pressed=move || shown.get().to_string()
                disabled=move || !hydrated.get()
                on:click=move |_| set_shown.update(|s| *s = !*s)
            >
                {move || if shown.get() { "Hide" } else { "Show" }}
            </button>
        </div>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let hydrated = use_hydrated();
    let action = ServerAction::<SignIn>::new();
    let value = action.value();
    let next = move || use_query_map().read().get("next").unwrap_or_default();
    view! {
        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1 class="brand">"Gatehouse"</h1>
            <section class="card">
                <h2>"Sign in"</h2>
                <ActionForm action=action>
                    <input type="hidden" name="next" value=next/>
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required/>
                    <label for="password">"Password"</label>
                    <PasswordInput id="password" name="password" autocomplete="current-password"/>
                    <ErrorText id="password-error" message=Signal::derive(form_error(value, &[]))/>
                    <button type="submit" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <p class="muted">"No account yet? Ask an admin of your team for an invitation link."</p>
            </section>
        </main>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let hydrated = use_hydrated();
    let action = ServerAction::<CompleteSetup>::new();
    let value = action.value();
    let token = move || use_query_map().read().get("token").unwrap_or_default();
    view! {
        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1 class="brand">"Gatehouse"</h1>
            <section class="card">
                <h2>"Create the first admin"</h2>
                <p class="muted">"This link works once, while Gatehouse has no members."</p>
                <ActionForm action=action>
                    <input type="hidden" name="token" value=token/>
                    <label for="name">"Your name"</label>
                    <input id="name" name="name" autocomplete="name" aria-describedby="name-error" required/>
                    <ErrorText id="name-error" message=Signal::derive(field_error(value, "name"))/>
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" aria-describedby="email-error" required/>
                    <ErrorText id="email-error" message=Signal::derive(field_error(value, "email"))/>
                    <label for="password">"Password (at least 10 characters)"</label>
                    <PasswordInput id="password" name="password" autocomplete="new-password"/>
                    <ErrorText id="password-error" message=Signal::derive(field_error(value, "password"))/>
                    <ErrorText id="form-error" message=Signal::derive(form_error(value, &["name", "email", "password"]))/>
                    <button type="submit" disabled=move || action.pending().get()>"Create admin and sign in"</button>
                </ActionForm>
            </section>
        </main>
    }
}

#[component]
pub fn InvitationPage() -> impl IntoView {
    let hydrated = use_hydrated();
    let action = ServerAction::<AcceptInvitation>::new();
    let value = action.value();
    let token = move || use_params_map().read().get("token").unwrap_or_default();
    let details = Resource::new(token, invitation);
    view! {
        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1 class="brand">"Gatehouse"</h1>
            <section class="card">
                <h2>"Join your team"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Checking the invitation…"</p> }>
                    {move || details.get().map(|result| match result {
                        Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                        Ok((email, role)) => view! {
                            <p>"You are invited as " <strong>{role}</strong> " with the address " <strong>{email}</strong> "."</p>
                            <ActionForm action=action>
                                <input type="hidden" name="token" value=token/>
                                <label for="name">"Your name"</label>
                                <input id="name" name="name" autocomplete="name" aria-describedby="name-error" required/>
                                <ErrorText id="name-error" message=Signal::derive(field_error(value, "name"))/>
                                <label for="password">"Choose a password (at least 10 characters)"</label>
                                <PasswordInput id="password" name="password" autocomplete="new-password"/>
                                <ErrorText id="password-error" message=Signal::derive(field_error(value, "password"))/>
                                <ErrorText id="form-error" message=Signal::derive(form_error(value, &["name", "password"]))/>
                                <button type="submit" disabled=move || action.pending().get()>"Join"</button>
                            </ActionForm>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
        </main>
    }
}
