//! The member's own account: change password, access tokens.

use leptos::prelude::*;

use super::error::{field_error, form_error, AppError, ErrorText};
use super::format::datetime;
use super::sign_in::PasswordInput;
use crate::model::member::Role;
use crate::model::token::{TokenKind, TokenView};

#[server(endpoint = "account/change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let client = super::server::client_address().await;
    let change = service.change_password(&actor, &current_password, &new_password, &client);
    change.await?;
    // The change ended every session of the member; this one goes on under a new id.
    super::server::start_session(actor.member_id().unwrap_or_default()).await
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    let value = action.value();
    view! {
        <h1>"Account"</h1>
        <section class="card narrow-card">
            <h2>"Change password"</h2>
            <ActionForm action=action>
                <label for="current_password">"Current password"</label>
                <PasswordInput id="current_password" name="current_password" autocomplete="current-password"/>
                <ErrorText id="current_password-error" message=Signal::derive(field_error(value, "current_password"))/>
                <label for="new_password">"New password (at least 10 characters)"</label>
                <PasswordInput id="new_password" name="new_password" autocomplete="new-password"/>
                <ErrorText id="new_password-error" message=Signal::derive(field_error(value, "new_password"))/>
                <ErrorText id="form-error" message=Signal::derive(form_error(value, &["current_password", "new_password"]))/>
                <button type="submit" disabled=move || action.pending().get()>"Change password"</button>
            </ActionForm>
            <Show when=move || matches!(value.get(), Some(Ok(())))>
                <p class="notice" role="status">"Your password was changed."</p>
            </Show>
        </section>
        <TokensSection/>
    }
}

/// The tokens the member may see: their own personal tokens, every token for an admin.
#[server(endpoint = "account/tokens")]
pub async fn tokens() -> Result<Vec<TokenView>, AppError> {
    let (service, actor) = super::server::caller()?;
    Ok(service.tokens(&actor).await?)
}

/// Creates a personal token of the member, or (with a role, admins) a service token; returns
/// the token, shown once.
#[server(endpoint = "account/create_token")]
pub async fn create_token(name: String, expires_in_days: String, role: String) -> Result<String, AppError> {
    let request = token_request(name, &expires_in_days, &role)?;
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::CreateToken(request);
    Ok(service.apply(&actor, change).await?.into_token()?.token)
}

#[cfg(feature = "ssr")]
fn token_request(name: String, days: &str, role: &str) -> Result<crate::service::NewTokenRequest, AppError> {
    let rejected = |field: &str, message: &str| {
        AppError {
            field: Some(field.into()),
            message: message.into(),
            ..Default::default()
        }
        .rejected_input()
    };
    let expires_in_days = match days.trim() {
        "" => None,
        text => Some(
            text.parse()
                .map_err(|_| rejected("expires_in_days", "give a number of days, or leave it empty"))?,
        ),
    };
    let service_role = match role.trim() {
        "" => None,
        text => Some(
            text.parse()
                .map_err(|message: String| rejected("role", &message))?,
        ),
    };
    Ok(crate::service::NewTokenRequest {
        name,
        service_role,
        expires_in_days,
    })
}

#[server(endpoint = "account/revoke_token")]
pub async fn revoke_token(prefix: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::RevokeToken { prefix })
        .await?;
    Ok(())
}

/// Access tokens for the management API (`/api/v1`): a member's personal tokens, and for an
/// admin every token and the creation of service tokens.
#[component]
fn TokensSection() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| tokens(),
    );
    let created = create.value();
    let is_admin = super::shell::member_has(Role::Admin);
    // After a token is created the form starts over (the token itself is shown above it).
    let (name_input, days_input) = (
        NodeRef::<leptos::html::Input>::new(),
        NodeRef::<leptos::html::Input>::new(),
    );
    Effect::new(move |_| {
        if matches!(created.get(), Some(Ok(_))) {
            for input in [name_input.get(), days_input.get()].into_iter().flatten() {
                input.set_value("");
            }
        }
    });
    view! {
        <section class="card" aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">"Access tokens"</h2>
            <p class="muted">
                "A personal token lets scripts, CI and agents use the management API (/api/v1) as you, with your role. "
                "It is shown once; Gatehouse keeps only a digest."
            </p>
            {move || created.get().and_then(Result::ok).map(|token| view! {
                <div class="notice" role="status">
                    <p>"Copy the new token now; it will not be shown again:"</p>
                    <div class="copy-row">
                        <input class="copy" readonly aria-label="New token" value=token.clone()/>
                        <super::copy::CopyButton text=token what="Copy the token"/>
                    </div>
                </div>
            })}
            <ErrorText id="revoke-token-error" message=Signal::derive(move || revoke.value().get().and_then(Result::err).map(|e| e.message))/>
            <Show when=move || matches!(revoke.value().get(), Some(Ok(())))>
                <p class="notice" role="status">"The token was revoked; it is refused from now on."</p>
            </Show>
            <Suspense fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || tokens.get().map(|result| match result {
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                    Ok(list) => view! { <TokenTable tokens=list revoke=revoke/> }.into_any(),
                })}
            </Suspense>
            <h3>"Create a token"</h3>
            <ActionForm action=create>
                <label for="token-name">"Name (what it is for)"</label>
                <input id="token-name" name="name" required maxlength="80" placeholder="ci" node_ref=name_input/>
                <ErrorText id="token-name-error" message=Signal::derive(field_error(created, "name"))/>
                <label for="token-days">"Expires in (days, empty: never)"</label>
                <input id="token-days" name="expires_in_days" inputmode="numeric" placeholder="90" node_ref=days_input/>
                <ErrorText id="token-days-error" message=Signal::derive(field_error(created, "expires_in_days"))/>
                // Whether the member is an admin comes from a resource: read inside a Suspense, so
                // the hydrated page agrees with the server's.
                <Suspense fallback=|| view! { <input type="hidden" name="role" value=""/> }>
                <Show when=is_admin fallback=|| view! { <input type="hidden" name="role" value=""/> }>
                    <label for="token-role">"Kind"</label>
                    <select id="token-role" name="role">
                        <option value="">"Personal token (acts as me)"</option>
                        <option value="viewer">"Service token: viewer"</option>
                        <option value="editor">"Service token: editor"</option>
                        <option value="admin">"Service token: admin"</option>
                    </select>
                </Show>
                </Suspense>
                <ErrorText id="token-form-error" message=Signal::derive(form_error(created, &["name", "expires_in_days"]))/>
                <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenView>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    view! {
        <table>
            <thead><tr><th>"Name"</th><th>"Token"</th><th>"Kind"</th><th>"Role"</th><th>"Expires"</th><th>"Status"</th></tr></thead>
            <tbody>
                {tokens.into_iter().map(|t| {
                    let prefix = t.prefix.clone();
                    let kind = match (t.kind, &t.member_email) {
                        (TokenKind::Personal, Some(email)) => format!("personal ({email})"),
                        (TokenKind::Personal, None) => "personal".to_string(),
                        (TokenKind::Service, _) => "service".to_string(),
                    };
                    view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td><code>{format!("{}…", t.prefix)}</code></td>
                            <td>{kind}</td>
                            <td>{t.role.label()}</td>
                            <td>{t.expires_at.map_or("never".to_string(), datetime)}</td>
                            <td>
                                {match t.revoked_at {
                                    Some(at) => view! { <span class="muted">{format!("revoked {}", datetime(at))}</span> }.into_any(),
                                    None => view! {
                                        <ActionForm action=revoke attr:class="inline">
                                            <input type="hidden" name="prefix" value=prefix.clone()/>
                                            <button type="submit" class="danger small" aria-label=format!("Revoke {} ({prefix}…)", t.name)>"Revoke"</button>
                                        </ActionForm>
                                    }.into_any(),
                                }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
