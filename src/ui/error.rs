//! The error every server function returns: a message, and the form field it concerns (if any),
//! so forms can show it next to that field, with or without JavaScript.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub field: Option<String>,
    pub message: String,
    /// What the refused form sent, by field name, so that a plain HTML form (no JavaScript), which
    /// comes back as a new page, shows it again next to the message ([`AppError::keeping`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub typed: Vec<(String, String)>,
}

impl AppError {
    pub fn general(message: impl Into<String>) -> Self {
        AppError {
            message: message.into(),
            ..AppError::default()
        }
    }

    /// This error, carrying what the form sent (`(field name, value)`) back to the form.
    pub fn keeping(mut self, typed: &[(&str, String)]) -> Self {
        self.typed = typed
            .iter()
            .map(|(field, value)| (field.to_string(), value.clone()))
            .collect();
        self
    }

    /// What the refused form sent in `field`, if it was kept.
    pub fn typed(&self, field: &str) -> Option<&str> {
        self.typed
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    }

    /// This error refuses what the caller sent (a form that does not validate): the call answers
    /// 422 instead of 500.
    #[cfg(feature = "ssr")]
    pub fn rejected_input(self) -> Self {
        set_error_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        self
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::general(value.to_string())
    }
}

/// Gives a failed server-function call a fitting 4xx status. Plain HTML form posts keep the
/// redirect back to the form (the error travels in the URL), so their status is left alone.
#[cfg(feature = "ssr")]
fn set_error_status(status: axum::http::StatusCode) {
    let is_form_post = use_context::<axum::http::request::Parts>().is_some_and(|parts| {
        parts.method == axum::http::Method::POST
            && parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
    });
    if let (false, Some(response)) = (is_form_post, use_context::<leptos_axum::ResponseOptions>()) {
        response.set_status(status);
    }
}

#[cfg(feature = "ssr")]
impl From<crate::service::ServiceError> for AppError {
    fn from(error: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError;
        use axum::http::StatusCode;
        set_error_status(match &error {
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Denied(crate::service::Refusal::NotSignedIn) => StatusCode::UNAUTHORIZED,
            ServiceError::Denied(_) | ServiceError::Refused(_) => StatusCode::FORBIDDEN,
            ServiceError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceError::TooManyAttempts(_) | ServiceError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::LimitReached(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        });
        match error {
            ServiceError::Invalid { field, message } => AppError {
                field: Some(field),
                message,
                ..Default::default()
            },
            other => AppError::general(other.to_string()),
        }
    }
}

/// The message for `field` in the latest result of `value`, if it failed there.
pub fn field_error<T, S>(value: S, field: &'static str) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(AppError {
            field: Some(f),
            message,
            ..
        })) if f == field => Some(message),
        _ => None,
    }
}

/// The message of a failure that concerns no single field (or a field the form does not show).
pub fn form_error<T, S>(
    value: S,
    fields: &'static [&'static str],
) -> impl Fn() -> Option<String> + Send + Sync + 'static
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Err(AppError { field, message, .. })) => match field {
            Some(f) if fields.contains(&f.as_str()) => None,
            _ => Some(message),
        },
        _ => None,
    }
}

/// A message shown under a field; announced to screen readers.
#[component]
pub fn ErrorText(#[prop(into)] message: Signal<Option<String>>, id: &'static str) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p class="error" id=id role="alert">{move || message.get().unwrap_or_default()}</p>
        </Show>
    }
}

/// What a refused form sent in `field` ("" when nothing was refused), read from its action's
/// value: without the bundle a refused form comes back as a new page, which shows it again.
pub fn sent<T, S>(value: S, field: &str) -> String
where
    S: WithUntracked<Value = Option<Result<T, AppError>>>,
{
    value.with_untracked(|v| match v {
        Some(Err(error)) => error.typed(field).unwrap_or_default().to_string(),
        _ => String::new(),
    })
}

/// How many submissions of an action have succeeded, given its `value()`. Page data should reload
/// on this rather than on the action's version, which counts failures too: reloading after a
/// failure would redraw the form from the saved data and drop what the user typed.
pub fn success_count<T, S>(value: S) -> Signal<usize>
where
    T: 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    let count = RwSignal::new(0usize);
    Effect::new(move || {
        if matches!(value.get(), Some(Ok(_))) {
            count.update(|n| *n += 1);
        }
    });
    count.into()
}

/// The notice a succeeded action answered with (its `Ok` text), for where its form is.
#[component]
pub fn Notice<S>(value: S) -> impl IntoView
where
    S: Get<Value = Option<Result<String, AppError>>> + Send + Sync + 'static,
{
    move || match value.get() {
        Some(Ok(text)) => Some(view! { <p class="notice" role="status">{text}</p> }),
        _ => None,
    }
}

/// [`ErrorText`] for ids built at run time (one per row or input).
#[component]
pub fn ErrorTextOwned(id: String, message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p class="error" id=id.clone() role="alert">{move || message.get().unwrap_or_default()}</p>
        </Show>
    }
}

/// The message of `error` when it names `field`.
pub fn message_for(error: Signal<Option<AppError>>, field: String) -> Signal<Option<String>> {
    Signal::derive(move || {
        error
            .get()
            .filter(|e| e.field.as_deref() == Some(field.as_str()))
            .map(|e| e.message)
    })
}
