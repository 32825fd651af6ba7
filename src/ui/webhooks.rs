//! Settings → Webhooks (admins): the endpoints that get Gatehouse's change events, each with its
//! signing secret, its recent deliveries and a redeliver button; a form to add one. Every form
//! posts to a server function, so the page works without JavaScript.

use leptos::prelude::*;

use super::error::{field_error, form_error, success_count, AppError, ErrorText, ErrorTextOwned};
use super::format::datetime;
use crate::model::webhook::{
    DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookFormat, EVENT_FAMILIES,
};

/// Deliveries shown per endpoint.
#[cfg(feature = "ssr")]
const LOG_ROWS: i64 = 20;

#[server(endpoint = "admin/webhooks")]
pub async fn webhooks() -> Result<Vec<(WebhookEndpoint, Vec<WebhookDelivery>)>, AppError> {
    let (service, actor) = super::server::caller()?;
    Ok(service.webhooks(&actor, LOG_ROWS).await?)
}

/// The endpoint fields as the form posts them: events one per line or comma-separated.
#[cfg(feature = "ssr")]
fn fields(
    name: String,
    url: String,
    events: String,
    format: String,
) -> Result<crate::service::WebhookFields, AppError> {
    let format = WebhookFormat::parse(&format).ok_or_else(|| {
        AppError {
            field: Some("format".into()),
            message: format!("{format:?} is not a format; pick Standard Webhooks or Slack"),
            ..Default::default()
        }
        .rejected_input()
    })?;
    let events = events
        .split([',', '\n', ' '])
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    Ok(crate::service::WebhookFields {
        name,
        url,
        events,
        format,
    })
}

#[server(endpoint = "admin/save_webhook")]
pub async fn save_webhook(
    id: Option<i64>,
    name: String,
    url: String,
    events: String,
    format: String,
) -> Result<String, AppError> {
    // A refused form comes back with what was typed, for the form it came from.
    let form = id.map_or_else(|| "new".to_string(), |id| id.to_string());
    let sent = [
        ("form", form),
        ("name", name.clone()),
        ("url", url.clone()),
        ("events", events.clone()),
        ("format", format.clone()),
    ];
    save_endpoint(id, name, url, events, format)
        .await
        .map_err(|error| error.keeping(&sent))
}

#[cfg(feature = "ssr")]
async fn save_endpoint(
    id: Option<i64>,
    name: String,
    url: String,
    events: String,
    format: String,
) -> Result<String, AppError> {
    use crate::service::{Change, WebhookChange};
    let (service, actor) = super::server::caller()?;
    let fields = fields(name, url, events, format)?;
    let change = match id {
        Some(id) => WebhookChange::Update { id, fields },
        None => WebhookChange::Create(fields),
    };
    service.apply(&actor, Change::Webhook(change)).await?;
    Ok(match id {
        Some(_) => "Saved the endpoint.".into(),
        None => {
            "Added the endpoint: new changes are sent to it from now on. Its signing secret is below.".into()
        }
    })
}

/// Pauses, resumes, rotates the secret of, deletes (confirmed) an endpoint, or redelivers one
/// of its deliveries: the buttons of an endpoint's card.
#[server(endpoint = "admin/webhook_action")]
pub async fn webhook_action(
    id: i64,
    action: String,
    confirm: Option<String>,
    delivery: Option<i64>,
) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let (change, done) = endpoint_action(id, &action, confirm.as_deref(), delivery)?;
    service
        .apply(&actor, crate::service::Change::Webhook(change))
        .await?;
    Ok(done.into())
}

#[cfg(feature = "ssr")]
fn endpoint_action(
    id: i64,
    action: &str,
    confirm: Option<&str>,
    delivery: Option<i64>,
) -> Result<(crate::service::WebhookChange, &'static str), AppError> {
    use crate::service::WebhookChange as C;
    let refused = |field: &str, message: &str| {
        AppError {
            field: Some(field.into()),
            message: message.into(),
            ..Default::default()
        }
        .rejected_input()
    };
    Ok(match (action, delivery) {
        ("pause", _) => (
            C::SetPaused { id, paused: true },
            "Paused: no changes are sent to it until you resume it.",
        ),
        ("resume", _) => (
            C::SetPaused { id, paused: false },
            "Resumed: changes from now on are sent to it.",
        ),
        ("rotate", _) => (
            C::RotateSecret { id },
            "New signing secret: update the receiver; the old secret no longer signs.",
        ),
        ("delete", _) if confirm == Some("on") => {
            (C::Delete { id }, "Deleted the endpoint and its delivery log.")
        }
        ("delete", _) => {
            return Err(refused(
                "confirm",
                "Tick the box to confirm deleting the endpoint and its delivery log.",
            ))
        }
        ("redeliver", Some(delivery_id)) => (
            C::Redeliver { delivery_id },
            "Sending again now; the log below shows the answer.",
        ),
        _ => return Err(refused("action", "Unknown action.")),
    })
}

fn status_badge(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "badge",
        DeliveryStatus::Delivered => "badge ok",
        DeliveryStatus::Failed => "badge bad",
    }
}

#[component]
fn EndpointForm(endpoint: Option<WebhookEndpoint>, save: ServerAction<SaveWebhook>) -> impl IntoView {
    let suffix = endpoint
        .as_ref()
        .map_or_else(|| "new".to_string(), |e| e.id.to_string());
    let form = suffix.clone();
    let id = move |field: &str| format!("webhook-{suffix}-{field}");
    let value = save.value();
    // What a refused save of this form sent, shown again (also without JavaScript).
    let typed = move |field: &str| super::error::sent(value, field);
    let (name, url, events, format) = match &endpoint {
        _ if typed("form") == form => {
            let format = WebhookFormat::parse(&typed("format")).unwrap_or(WebhookFormat::Standard);
            (typed("name"), typed("url"), typed("events"), format)
        }
        Some(e) => (e.name.clone(), e.url.clone(), e.events.join("\n"), e.format),
        None => (
            String::new(),
            String::new(),
            String::new(),
            WebhookFormat::Standard,
        ),
    };
    view! {
        <ActionForm action=save attr:class="stack">
            {endpoint.as_ref().map(|e| view! { <input type="hidden" name="id" value=e.id/> })}
            <label for=id("name")>"Name"</label>
            <input id=id("name") name="name" value=name required maxlength="80" aria-describedby=id("name-error")/>
            <ErrorTextOwned id=id("name-error") message=Signal::derive(field_error(value, "name"))/>
            <label for=id("url")>"URL (http:// or https://)"</label>
            <input id=id("url") name="url" type="url" value=url required aria-describedby=id("url-error")/>
            <ErrorTextOwned id=id("url-error") message=Signal::derive(field_error(value, "url"))/>
            <label for=id("events")>"Events, one per line (empty: every event)"</label>
            <textarea id=id("events") name="events" rows="3" aria-describedby=id("events-help")>{events}</textarea>
            <p id=id("events-help") class="muted small">
                "An event type such as " <code>"flag.archived"</code> " or a family such as " <code>"flag.*"</code> "."
            </p>
            <details class="small">
                <summary>"Event types and families"</summary>
                <ul class="plain">
                    {EVENT_FAMILIES.iter().map(|(code, label)| view! { <li><code>{*code}</code> " — " {*label}</li> }).collect_view()}
                </ul>
            </details>
            <ErrorTextOwned id=id("events-error") message=Signal::derive(field_error(value, "events"))/>
            <label for=id("format")>"Format"</label>
            <select id=id("format") name="format">
                <option value="standard" selected=format == WebhookFormat::Standard>"Standard Webhooks (signed JSON)"</option>
                <option value="slack" selected=format == WebhookFormat::Slack>"Slack incoming webhook (readable text)"</option>
            </select>
            <ErrorTextOwned id=id("form-error") message=Signal::derive(form_error(value, &["name", "url", "events"]))/>
            <button type="submit" disabled=move || save.pending().get()>
                {if endpoint.is_some() { "Save endpoint" } else { "Add endpoint" }}
            </button>
        </ActionForm>
    }
}

#[component]
fn DeliveryLog(
    endpoint_id: i64,
    deliveries: Vec<WebhookDelivery>,
    act: ServerAction<WebhookAction>,
) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="empty">"No deliveries yet. The next flag change this endpoint wants is sent within a second."</p> }.into_any();
    }
    view! {
        <table>
            <thead><tr><th>"Event"</th><th>"Status"</th><th>"Attempts"</th><th>"Last answer"</th><th>"Next attempt"</th><th></th></tr></thead>
            <tbody>
                {deliveries.into_iter().map(|d| {
                    let answer = match (&d.last_error, d.last_status) {
                        (Some(error), _) => error.clone(),
                        (None, Some(status)) => format!("{status}"),
                        (None, None) => "—".into(),
                    };
                    let next = match d.status {
                        DeliveryStatus::Pending => datetime(d.next_attempt_at),
                        _ => "—".into(),
                    };
                    view! {
                        <tr>
                            <td><code>{d.event_kind.clone()}</code><br/><span class="muted small">{format!("{} · {}", d.subject, datetime(d.created_at))}</span></td>
                            <td><span class=status_badge(d.status)>{d.status.as_str()}</span></td>
                            <td>{d.attempts}</td>
                            <td>{answer}</td>
                            <td>{next}</td>
                            <td>
                                <ActionForm action=act attr:class="inline">
                                    <input type="hidden" name="id" value=endpoint_id/>
                                    <input type="hidden" name="delivery" value=d.id/>
                                    <button type="submit" name="action" value="redeliver" class="secondary small" aria-label=format!("Redeliver event {}", d.event_id)>"Redeliver"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }.into_any()
}

#[component]
fn EndpointCard(
    endpoint: WebhookEndpoint,
    deliveries: Vec<WebhookDelivery>,
    save: ServerAction<SaveWebhook>,
    act: ServerAction<WebhookAction>,
) -> impl IntoView {
    let id = endpoint.id;
    let confirm_id = format!("webhook-{id}-confirm");
    let events = if endpoint.events.is_empty() {
        "every event".to_string()
    } else {
        endpoint.events.join(", ")
    };
    let format = match endpoint.format {
        WebhookFormat::Standard => "Standard Webhooks",
        WebhookFormat::Slack => "Slack",
    };
    let (toggle, toggle_label) = if endpoint.paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    view! {
        <section class="card">
            <h2>{endpoint.name.clone()} {endpoint.paused.then(|| view! { <span class="badge bad">"paused"</span> })}</h2>
            <p><code class="wrap">{endpoint.url.clone()}</code></p>
            <p class="muted">{format!("{format} · {events} · added by {} {}", endpoint.created_by, datetime(endpoint.created_at))}</p>
            <label for=format!("webhook-{id}-secret")>"Signing secret (verify the webhook-signature header with it)"</label>
            <div class="copy-row">
                <input id=format!("webhook-{id}-secret") class="copy" readonly value=endpoint.secret.clone()/>
                <super::copy::CopyButton text=endpoint.secret.clone() what="Copy the signing secret"/>
            </div>
            <div class="actions">
                <ActionForm action=act attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" name="action" value=toggle class="secondary small">{toggle_label}</button>
                </ActionForm>
                <ActionForm action=act attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" name="action" value="rotate" class="secondary small">"Rotate secret"</button>
                </ActionForm>
                <ActionForm action=act attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <label for=confirm_id.clone() class="check"><input type="checkbox" id=confirm_id.clone() name="confirm" required=true/>" Delete it and its log"</label>
                    <button type="submit" name="action" value="delete" class="danger small">"Delete"</button>
                </ActionForm>
            </div>
            <h3>"Recent deliveries"</h3>
            <DeliveryLog endpoint_id=id deliveries act/>
            <details>
                <summary>"Edit"</summary>
                <EndpointForm endpoint=Some(endpoint) save/>
            </details>
        </section>
    }
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let save = ServerAction::<SaveWebhook>::new();
    let act = ServerAction::<WebhookAction>::new();
    let (saved, acted) = (success_count(save.value()), success_count(act.value()));
    let data = Resource::new(move || (saved.get(), acted.get()), |_| webhooks());
    let notice = move || {
        [save.value().get(), act.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::ok)
    };
    let act_error = form_error(act.value(), &[]);
    view! {
        <h1>"Webhooks"</h1>
        <p class="muted">
            "Gatehouse posts every change an endpoint asks for (a flag created, access changed, a stage moved, …), "
            "signed as the Standard Webhooks specification says. A failed delivery is retried for about 24 hours "
            "(after 5 s, 30 s, 2 min, 10 min, …); requests time out after 10 s and follow no redirects."
        </p>
        {move || notice().map(|text| view! { <p class="notice" role="status">{text}</p> })}
        <ErrorText id="webhook-action-error" message=Signal::derive(act_error)/>
        <Suspense fallback=|| view! { <p class="muted">"Loading webhooks…"</p> }>
            {move || data.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok(endpoints) if endpoints.is_empty() => view! {
                    <section class="card"><p class="empty">"No endpoints yet. Add one below: a URL that accepts POST requests, or a Slack incoming-webhook URL."</p></section>
                }.into_any(),
                Ok(endpoints) => endpoints.into_iter().map(|(endpoint, deliveries)| view! {
                    <EndpointCard endpoint deliveries save act/>
                }).collect_view().into_any(),
            })}
        </Suspense>
        <section class="card narrow-card">
            <h2>"Add an endpoint"</h2>
            <EndpointForm endpoint=None save/>
        </section>
    }
}
