//! The member's own account: change password.

use leptos::prelude::*;

use super::error::{field_error, form_error, AppError, ErrorText};
use super::sign_in::PasswordInput;

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
    }
}
