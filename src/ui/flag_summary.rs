//! The top of a flag's page: who has it in every environment at a glance (with the share of a
//! rollout as a bar), the links to the page's sections, and the flag's details (name,
//! description, owner, temporary or permanent), which editors change here.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::copy::CopyButton;
use super::error::{field_error, form_error, AppError, ErrorText, Notice};

/// Who has a flag in one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentAccess {
    pub key: String,
    pub name: String,
    /// "Everyone", "No one", "Some: 2 companies, 25 % of companies"…
    pub summary: String,
    /// The share of everyone it reaches when that is one number (No one 0, Everyone 100, a
    /// rollout rule without conditions its percentage); `None` when it depends on who asks.
    pub share: Option<f64>,
}

/// The share of everyone `rules` reach when it is one number; see [`EnvironmentAccess::share`].
#[cfg(any(feature = "ssr", test))]
pub fn share(rules: &crate::model::AccessRules) -> Option<f64> {
    use crate::model::AccessRules;
    match rules {
        AccessRules::NoOne => Some(0.0),
        AccessRules::Everyone => Some(100.0),
        AccessRules::Some(targeted) => targeted
            .rules
            .iter()
            .filter(|rule| rule.conditions.is_empty())
            .map(|rule| rule.rollout_percentage.as_f64())
            .reduce(f64::max),
    }
}

/// The flag's details as its page shows and edits them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagDetails {
    pub key: String,
    pub name: String,
    pub description: String,
    pub owner_id: Option<i64>,
    pub permanent: bool,
    /// The members an owner is chosen from: (id, name).
    pub members: Vec<(i64, String)>,
}

impl FlagDetails {
    fn owner_name(&self) -> Option<String> {
        let id = self.owner_id?;
        self.members
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, name)| name.clone())
    }
}

/// Saves a flag's name, description, owner (`owner` empty: none) and type.
#[server(endpoint = "edit/flag_details")]
pub async fn save_flag_details(
    key: String,
    name: String,
    #[server(default)] description: String,
    #[server(default)] owner: String,
    #[server(default)] kind: String,
) -> Result<String, AppError> {
    let (service, actor) = super::server::caller()?;
    let change = details_change(&service, &actor, key, name, description, &owner, &kind).await?;
    service.apply(&actor, change).await?;
    Ok("Details saved.".into())
}

/// The update the details form describes, on the flag's stored stage and archiving.
#[cfg(feature = "ssr")]
async fn details_change(
    service: &crate::service::Service,
    actor: &crate::service::Actor,
    key: String,
    name: String,
    description: String,
    owner: &str,
    kind: &str,
) -> Result<crate::service::Change, AppError> {
    use crate::service::ServiceError;
    let owner_id = match owner.trim() {
        "" => None,
        id => Some(
            id.parse::<i64>()
                .map_err(|_| ServiceError::invalid("owner", "choose an owner from the list"))?,
        ),
    };
    let permanent = match kind {
        "permanent" => true,
        "temporary" | "" => false,
        _ => return Err(ServiceError::invalid("kind", "choose temporary or permanent").into()),
    };
    let flag = service.flag_detail(actor, &key).await?.flag;
    Ok(crate::service::Change::UpdateFlag {
        key: flag.key.to_string(),
        name,
        description,
        owner_id,
        permanent,
        stage: crate::service::StageRef::Id(flag.stage_id),
        archived: flag.archived,
    })
}

/// The summary: each environment's access in one line (the working one first in bold), with a
/// bar for the share it reaches, and the page's sections.
#[component]
pub fn FlagSummary(everywhere: Vec<EnvironmentAccess>, working: String, key: String) -> impl IntoView {
    view! {
        <section class="card flag-summary" id="summary" aria-label="Who has this flag">
            <table class="env-access">
                <tbody>
                    {everywhere.into_iter().map(|e| {
                        let current = e.key == working;
                        view! {
                            <tr class:current=current>
                                <th scope="row"><a href=format!("/flags/{key}?env={}", e.key)>{e.name}</a></th>
                                <td>{e.summary}</td>
                                <td class="share">
                                    {e.share.map(|share| view! {
                                        <span class="bar" role="img" aria-label=format!("{share} %")>
                                            <span style=format!("width:{share}%")></span>
                                        </span>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <nav class="section-nav" aria-label="Sections of this flag">
            <a href="#access">"Access"</a>
            <a href="#usage">"Usage"</a>
            <a href="#stage">"Release stage"</a>
            <a href="#config">"Remote config"</a>
            <a href="#history">"History"</a>
            <a href="#details">"Details"</a>
        </nav>
    }
}

/// The page's heading: name, key (with a copy button), stage, type and owner.
#[component]
pub fn FlagHeading(
    details: FlagDetails,
    stage: String,
    stage_color: String,
    archived: bool,
) -> impl IntoView {
    let owner = details.owner_name();
    view! {
        <div class="page-head flag-head">
            <h1>{details.name.clone()}</h1>
            <code>{details.key.clone()}</code>
            <CopyButton text=details.key.clone() what="Copy the flag key"/>
            <span class="stage" style=format!("--stage:{stage_color}")>{stage}</span>
            <span class="badge">{if details.permanent { "permanent" } else { "temporary" }}</span>
            {archived.then(|| view! { <span class="badge bad">"archived"</span> })}
        </div>
        <p class="muted">
            {details.description.clone()}
            {(!details.description.is_empty()).then_some(" · ")}
            {match owner {
                Some(name) => format!("Owner: {name}"),
                None => "No owner".to_string(),
            }}
        </p>
    }
}

/// The details form (editors): name, description, owner, type.
#[component]
pub fn FlagDetailsCard(details: FlagDetails, action: ServerAction<SaveFlagDetails>) -> impl IntoView {
    let value = action.value();
    let kind = if details.permanent {
        "permanent"
    } else {
        "temporary"
    };
    view! {
        <section class="card narrow-card" id="details">
            <h2>"Details"</h2>
            <ActionForm action=action>
                <input type="hidden" name="key" value=details.key.clone()/>
                <label for="flag-name">"Name"</label>
                <input id="flag-name" name="name" required maxlength="120" value=details.name.clone() prop:value=details.name.clone()/>
                <ErrorText id="flag-name-error" message=Signal::derive(field_error(value, "name"))/>
                <label for="flag-description">"Description"</label>
                <textarea id="flag-description" name="description" rows="3" prop:value=details.description.clone()>{details.description.clone()}</textarea>
                <ErrorText id="flag-description-error" message=Signal::derive(field_error(value, "description"))/>
                <label for="flag-owner">"Owner"</label>
                <select id="flag-owner" name="owner">
                    <option value="" selected=details.owner_id.is_none()>"No owner"</option>
                    {details.members.iter().map(|(id, name)| view! {
                        <option value=id.to_string() selected=details.owner_id == Some(*id)>{name.clone()}</option>
                    }).collect_view()}
                </select>
                <fieldset class="inline-choices">
                    <legend>"Type"</legend>
                    <label class="inline"><input type="radio" name="kind" value="temporary" checked=kind == "temporary"/>"Temporary (a release; cleaned up once rolled out)"</label>
                    <label class="inline"><input type="radio" name="kind" value="permanent" checked=kind == "permanent"/>"Permanent (an entitlement or kill switch; never stale by age)"</label>
                </fieldset>
                <ErrorText id="flag-details-error" message=Signal::derive(form_error(value, &["name", "description"]))/>
                <button type="submit" disabled=move || action.pending().get()>"Save details"</button>
            </ActionForm>
            <Notice value=value/>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessRule, AccessRules, Percentage, RolloutAttribute, TargetedAccess};

    fn rollout(p: f64, conditions: bool) -> AccessRule {
        AccessRule {
            conditions: if conditions {
                serde_json::from_value(serde_json::json!([{ "kind": "companyAttribute", "attribute": "plan", "operator": "IS", "values": ["pro"] }]))
                    .unwrap()
            } else {
                Vec::new()
            },
            rollout_percentage: Percentage::new(p).unwrap(),
            rollout_attribute: RolloutAttribute::Company,
        }
    }

    #[test]
    fn the_share_is_one_number_only_when_it_does_not_depend_on_who_asks() {
        assert_eq!(share(&AccessRules::NoOne), Some(0.0));
        assert_eq!(share(&AccessRules::Everyone), Some(100.0));
        let targeted = |rules| {
            AccessRules::Some(TargetedAccess {
                companies: vec!["acme".into()],
                rules,
                ..Default::default()
            })
        };
        assert_eq!(share(&targeted(vec![rollout(25.0, false)])), Some(25.0));
        assert_eq!(
            share(&targeted(vec![rollout(25.0, false), rollout(40.0, false)])),
            Some(40.0)
        );
        assert_eq!(share(&targeted(vec![rollout(50.0, true)])), None);
        assert_eq!(share(&targeted(Vec::new())), None);
    }
}
