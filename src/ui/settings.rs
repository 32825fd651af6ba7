//! Admin settings: members and invitations, API keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{field_error, form_error, AppError, ErrorText};
use super::format::datetime;
use crate::model::member::{MemberView, Role};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvitationRow {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamData {
    pub members: Vec<MemberView>,
    pub invitations: Vec<InvitationRow>,
}

#[server(endpoint = "admin/team")]
pub async fn team() -> Result<TeamData, AppError> {
    let (service, actor) = super::server::caller()?;
    let team = service.team(&actor).await?;
    Ok(TeamData {
        members: team.members,
        invitations: team
            .invitations
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id,
                email: i.email,
                role: i.role,
                expires_at: i.expires_at,
            })
            .collect(),
    })
}

/// Creates an invitation and returns its link (shown once).
#[server(endpoint = "admin/invite")]
pub async fn invite(email: String, role: String) -> Result<String, AppError> {
    // Without the bundle a refused form comes back as a new page: it shows what was sent.
    let sent = [("email", email.clone()), ("role", role.clone())];
    invitation_link(email, &role)
        .await
        .map_err(|error| error.keeping(&sent))
}

/// Invites `email` as `role`; the link to send.
#[cfg(feature = "ssr")]
async fn invitation_link(email: String, role: &str) -> Result<String, AppError> {
    let role = parse_role(role)?;
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::Invite { email, role };
    let (_, token) = service.apply(&actor, change).await?.into_invitation()?;
    Ok(format!(
        "{}/invite/{token}",
        super::server::app_state()?.public_url
    ))
}

#[server(endpoint = "admin/revoke_invitation")]
pub async fn revoke_invitation(id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    service
        .apply(&actor, crate::service::Change::RevokeInvitation { id })
        .await?;
    Ok(())
}

#[server(endpoint = "admin/change_role")]
pub async fn change_role(member_id: i64, role: String) -> Result<(), AppError> {
    let role = parse_role(&role)?;
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::ChangeRole { member_id, role };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "admin/remove_member")]
pub async fn remove_member(member_id: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::RemoveMember { member_id };
    service.apply(&actor, change).await?;
    Ok(())
}

/// A role as the forms post it, or an error on the `role` field.
#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<Role, AppError> {
    role.parse().map_err(|message: String| {
        AppError {
            field: Some("role".into()),
            message,
            ..Default::default()
        }
        .rejected_input()
    })
}

#[component]
fn RoleSelect(id: String, selected: Role) -> impl IntoView {
    view! {
        <select id=id name="role">
            {Role::ALL.into_iter().map(|role| view! {
                <option value=role.as_str() selected=role == selected>{role.label()}</option>
            }).collect_view()}
        </select>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let invite = ServerAction::<Invite>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let team = Resource::new(
        move || {
            (
                invite.version().get(),
                revoke.version().get(),
                change.version().get(),
                remove.version().get(),
            )
        },
        |_| team(),
    );
    let invite_value = invite.value();
    // A refused form without the bundle comes back as a new page: it shows what was sent.
    let typed = move |field: &'static str| super::error::sent(invite_value, field);
    let row_error = move || {
        [
            change.value().get().and_then(Result::err),
            remove.value().get().and_then(Result::err),
            revoke.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.message)
    };
    view! {
        <h1>"Members"</h1>
        <ErrorText id="members-error" message=Signal::derive(row_error)/>
        <Suspense fallback=|| view! { <p class="muted">"Loading the team…"</p> }>
            {move || team.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                // Only admins read the team, so only they see the invitation form.
                Ok(team) => view! {
                    <section class="card">
                        <table>
                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {team.members.into_iter().map(|m| {
                                    let select_id = format!("role-{}", m.id);
                                    let role_label = format!("Role of {}", m.email);
                                    let remove_label = format!("Remove {}", m.email);
                                    view! {
                                        <tr>
                                            <td>{m.name.clone()}</td>
                                            <td>{m.email.clone()}</td>
                                            <td>
                                                <ActionForm action=change attr:class="inline">
                                                    <input type="hidden" name="member_id" value=m.id/>
                                                    <label for=select_id.clone() class="sr-only">{role_label}</label>
                                                    <RoleSelect id=select_id selected=m.role/>
                                                    <button type="submit" class="secondary small">"Change role"</button>
                                                </ActionForm>
                                            </td>
                                            <td>
                                                <ActionForm action=remove attr:class="inline">
                                                    <input type="hidden" name="member_id" value=m.id/>
                                                    <button type="submit" class="danger small" aria-label=remove_label>"Remove"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <section class="card">
                        <h2>"Open invitations"</h2>
                        {if team.invitations.is_empty() {
                            view! { <p class="muted">"No open invitations. Invite someone below; the link works once and for 7 days."</p> }.into_any()
                        } else {
                            view! {
                                <table>
                                    <thead><tr><th>"Email"</th><th>"Role"</th><th>"Expires"</th><th></th></tr></thead>
                                    <tbody>
                                        {team.invitations.into_iter().map(|i| view! {
                                            <tr>
                                                <td>{i.email.clone()}</td>
                                                <td>{i.role.label()}</td>
                                                <td>{datetime(i.expires_at)}</td>
                                                <td>
                                                    <ActionForm action=revoke attr:class="inline">
                                                        <input type="hidden" name="id" value=i.id/>
                                                        <button type="submit" class="secondary small" aria-label=format!("Revoke the invitation of {}", i.email)>"Revoke"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                    <section class="card narrow-card">
                        <h2>"Invite a member"</h2>
                        <ActionForm action=invite>
                            <label for="invite-email">"Email"</label>
                            <input id="invite-email" name="email" type="email" aria-describedby="invite-email-error" required value=typed("email")/>
                            <ErrorText id="invite-email-error" message=Signal::derive(field_error(invite_value, "email"))/>
                            <label for="invite-role">"Role"</label>
                            <RoleSelect id="invite-role".to_string() selected=Role::ALL.into_iter().find(|r| r.as_str() == typed("role")).unwrap_or(Role::Editor)/>
                            <ErrorText id="invite-form-error" message=Signal::derive(form_error(invite_value, &["email"]))/>
                            <button type="submit" disabled=move || invite.pending().get()>"Create invitation link"</button>
                        </ActionForm>
                        {move || invite_value.get().and_then(Result::ok).map(|link| view! {
                            <div class="notice" role="status">
                                <p>"Send this link to the invitee. It is shown only now:"</p>
                                <div class="copy-row">
                                    <input class="copy" readonly aria-label="Invitation link" value=link.clone()/>
                                    <super::copy::CopyButton text=link what="Copy the invitation link"/>
                                </div>
                            </div>
                        })}
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: i64,
    pub environment_key: String,
    pub kind: String,
    pub name: String,
    /// The whole key when publishable, else its prefix and "…".
    pub shown: String,
    pub created_at: i64,
    /// "active", "works until …" (a rotated publishable key) or "revoked …".
    pub status: String,
    pub live: bool,
}

#[cfg(feature = "ssr")]
impl KeyRow {
    fn new(key: crate::service::ApiKeyInfo, environments: &[crate::model::Environment], now: i64) -> Self {
        let environment = environments.iter().find(|e| e.id == key.environment_id);
        let live = key.works_at(now);
        let status = match key.revoked_at {
            None => "active".to_string(),
            Some(at) if live => format!("works until {}", datetime(at)),
            Some(at) => format!("revoked {}", datetime(at)),
        };
        KeyRow {
            id: key.id,
            shown: key.public_value.unwrap_or_else(|| format!("{}…", key.prefix)),
            environment_key: environment.map(|e| e.key.to_string()).unwrap_or_default(),
            kind: key.kind.as_str().to_string(),
            name: key.name,
            created_at: key.created_at,
            status,
            live,
        }
    }
}

#[server(endpoint = "admin/api_keys")]
pub async fn api_keys() -> Result<(Vec<(String, String)>, Vec<KeyRow>), AppError> {
    let (service, actor) = super::server::caller()?;
    let (environments, keys) = service.api_keys(&actor).await?;
    let now = service.clock().now_ms();
    let rows = keys
        .into_iter()
        .map(|k| KeyRow::new(k, &environments, now))
        .collect();
    Ok((
        environments
            .into_iter()
            .map(|e| (e.key.to_string(), e.name))
            .collect(),
        rows,
    ))
}

#[server(endpoint = "admin/create_secret_key")]
pub async fn create_secret_key(
    environment: String,
    #[server(default)] name: String,
) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::CreateSecretKey { environment, name };
    Ok(service.apply(&actor, change).await?.into_secret_key()?)
}

#[server(endpoint = "admin/rotate_publishable_key")]
pub async fn rotate_publishable_key(environment: String, grace_hours: i64) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::RotatePublishableKey {
        environment,
        grace_hours,
    };
    Ok(service.apply(&actor, change).await?.into_secret_key()?)
}

#[server(endpoint = "admin/name_api_key")]
pub async fn name_api_key(id: i64, #[server(default)] name: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::NameApiKey { id, name };
    service.apply(&actor, change).await?;
    Ok(())
}

#[server(endpoint = "admin/revoke_secret_key")]
pub async fn revoke_secret_key(prefix: String) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::RevokeSecretKey { prefix };
    service.apply(&actor, change).await?;
    Ok(())
}

/// A key that was just made, shown once in full with a copy button.
#[component]
fn NewKey(title: &'static str, key: String) -> impl IntoView {
    view! {
        <section class="card notice" role="status">
            <p>{title}</p>
            <div class="copy-row">
                <input class="copy" readonly aria-label=title value=key.clone()/>
                <super::copy::CopyButton text=key what="Copy the key"/>
            </div>
        </section>
    }
}

#[component]
pub fn KeysPage() -> impl IntoView {
    let create = ServerAction::<CreateSecretKey>::new();
    let revoke = ServerAction::<RevokeSecretKey>::new();
    let rotate = ServerAction::<RotatePublishableKey>::new();
    let rename = ServerAction::<NameApiKey>::new();
    let keys = Resource::new(
        move || {
            (
                create.version().get(),
                revoke.version().get(),
                rotate.version().get(),
                rename.version().get(),
            )
        },
        |_| api_keys(),
    );
    let create_value = create.value();
    let failure = Signal::derive(move || {
        [
            revoke.value().get().and_then(Result::err),
            rotate.value().get().and_then(Result::err),
            rename.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.message)
    });
    view! {
        <h1>"API keys"</h1>
        <p class="muted">
            "Publishable keys are safe in browsers and apps. Secret keys are for servers only (GET /features); "
            "they are shown once when created and stored only as a digest."
        </p>
        {move || create_value.get().and_then(Result::ok).map(|key| view! { <NewKey title="Copy the new secret key now; it will not be shown again:" key/> })}
        {move || rotate.value().get().and_then(Result::ok).map(|key| view! { <NewKey title="The environment's new publishable key (put it in your apps):" key/> })}
        {move || rename.value().get().and_then(Result::ok).map(|()| view! { <p class="notice" role="status">"Name saved."</p> })}
        <ErrorText id="keys-error" message=failure/>
        <Suspense fallback=|| view! { <p class="muted">"Loading keys…"</p> }>
            {move || keys.get().map(|result| match result {
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                Ok((environments, keys)) => view! {
                    <section class="card">
                        <div class="table-scroll"><table class="keys">
                            <thead><tr><th>"Environment"</th><th>"Name"</th><th>"Kind"</th><th>"Key"</th><th>"Created"</th><th>"Status"</th></tr></thead>
                            <tbody>
                                {keys.into_iter().map(|k| view! { <KeyRowView k revoke rotate rename/> }).collect_view()}
                            </tbody>
                        </table></div>
                    </section>
                    <section class="card narrow-card">
                        <h2>"Create a secret key"</h2>
                        <ActionForm action=create>
                            <label for="environment">"Environment"</label>
                            <select id="environment" name="environment">
                                {environments.into_iter().map(|(key, name)| view! { <option value=key>{name}</option> }).collect_view()}
                            </select>
                            <label for="key-name">"Name " <span class="muted">"(what uses it, optional)"</span></label>
                            <input id="key-name" name="name" maxlength="80" placeholder="Billing service"/>
                            <ErrorText id="create-error" message=Signal::derive(form_error(create_value, &[]))/>
                            <button type="submit" disabled=move || create.pending().get()>"Create secret key"</button>
                        </ActionForm>
                    </section>
                }.into_any(),
            })}
        </Suspense>
        <super::requests::ProtectionSettings/>
    }
}

/// One key: its name (renamed in place), the key (a publishable one whole, with a copy button),
/// and what can be done: revoke a secret key, rotate a publishable one.
#[component]
fn KeyRowView(
    k: KeyRow,
    revoke: ServerAction<RevokeSecretKey>,
    rotate: ServerAction<RotatePublishableKey>,
    rename: ServerAction<NameApiKey>,
) -> impl IntoView {
    let prefix = k.shown.trim_end_matches('…').to_string();
    let publishable = k.kind == "publishable";
    let current_publishable = publishable && k.status == "active";
    let (id, environment) = (k.id, k.environment_key.clone());
    view! {
        <tr>
            <td data-label="Environment">{k.environment_key.clone()}</td>
            <td data-label="Name">
                {if k.name.is_empty() { view! { <span class="muted">"—"</span> }.into_any() } else { view! { <span>{k.name.clone()}</span> }.into_any() }}
                {k.live.then(|| view! {
                    <details class="inline-edit">
                        <summary>"Rename"</summary>
                        <ActionForm action=rename attr:class="inline">
                            <input type="hidden" name="id" value=id/>
                            <label for=format!("name-{id}") class="sr-only">"Name"</label>
                            <input id=format!("name-{id}") name="name" maxlength="80" value=k.name.clone()/>
                            <button type="submit" class="secondary small">"Save name"</button>
                        </ActionForm>
                    </details>
                })}
            </td>
            <td data-label="Kind">{k.kind.clone()}</td>
            <td class="key-cell" data-label="Key">
                <code>{k.shown.clone()}</code>
                {publishable.then(|| view! { <super::copy::CopyButton text=k.shown.clone() what=format!("Copy the {} publishable key", k.environment_key)/> })}
            </td>
            <td data-label="Created">{datetime(k.created_at)}</td>
            <td data-label="Status">
                <span class=if k.live { "" } else { "muted" }>{k.status.clone()}</span>
                {(k.kind == "secret" && k.live).then(|| view! {
                    <ActionForm action=revoke attr:class="inline">
                        <input type="hidden" name="prefix" value=prefix.clone()/>
                        <button type="submit" class="danger small" aria-label=format!("Revoke {prefix}")>"Revoke"</button>
                    </ActionForm>
                })}
                {current_publishable.then(|| view! {
                    <details class="inline-edit">
                        <summary>"Rotate…"</summary>
                        <ActionForm action=rotate attr:class="rotate">
                            <p class="small">"A new publishable key replaces this one. Apps still using this key keep getting flags until it stops:"</p>
                            <input type="hidden" name="environment" value=environment.clone()/>
                            <label for=format!("grace-{id}")>"This key stops working"</label>
                            <select id=format!("grace-{id}") name="grace_hours">
                                <option value="0">"at once"</option>
                                <option value="1">"in 1 hour"</option>
                                <option value="24" selected>"in 24 hours"</option>
                                <option value="168">"in 7 days"</option>
                            </select>
                            <button type="submit" class="danger small">{format!("Rotate the {environment} key")}</button>
                        </ActionForm>
                    </details>
                })}
            </td>
        </tr>
    }
}

/// The admin's settings: where each part lives.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <h1>"Settings"</h1>
        <div class="settings-grid">
            <a class="card tile-link" href="/settings/members">
                <h2>"Members"</h2>
                <p class="muted">"Invite your team, change roles, remove members."</p>
            </a>
            <a class="card tile-link" href="/settings/keys">
                <h2>"Environments and API keys"</h2>
                <p class="muted">"Publishable keys for apps, secret keys for servers; create and revoke. Protected environments (four eyes)."</p>
            </a>
            <a class="card tile-link" href="/settings/stages">
                <h2>"Release stages"</h2>
                <p class="muted">"Add, rename, recolour and reorder stages; default access per environment."</p>
            </a>
            <a class="card tile-link" href="/settings/plans">
                <h2>"Release plans"</h2>
                <p class="muted">"Plan templates: the milestones a rollout goes through, by hand or after a wait."</p>
            </a>
            <a class="card tile-link" href="/settings/webhooks">
                <h2>"Webhooks"</h2>
                <p class="muted">"Send flag changes to your tools and to Slack, signed; delivery log and redelivery."</p>
            </a>
        </div>
    }
}
