//! The access editor, shared by the flag page and the release stages' defaults.
//!
//! It is one plain form, so it works without JavaScript: the mode, companies and users (pasted
//! ids, or picked by search as you type once the page is hydrated), segments, and any number of
//! rules, each an AND of conditions followed by a sticky rollout. The server renders every saved
//! rule with one empty condition row, plus one empty rule; empty rows are left out on save. With
//! JavaScript a rule takes any number of conditions ("Add condition", "Remove"), the rows show
//! only the inputs their kind and operator need, the field inputs suggest
//! the attributes, segments and flags known in the environment, and the flag page counts live
//! which known companies the unsaved rules would let in.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{message_for, AppError, ErrorTextOwned};
use crate::model::describe::{arity, operator_label, operator_named, Arity, OPERATOR_GROUPS};
#[cfg(feature = "ssr")]
use crate::model::{
    describe::{value_kind, ValueKind},
    AccessRule, AccessRules, Condition, FlagKey, Percentage, RolloutAttribute, SegmentKey, SegmentMembership,
    TargetedAccess,
};

/// What a condition row tests, as the kind select offers it.
pub const CONDITION_KINDS: [(&str, &str); 7] = [
    ("company", "Company attribute"),
    ("user", "User attribute"),
    ("other", "Other context field"),
    ("segment", "In segment"),
    ("notSegment", "Not in segment"),
    ("flag", "Has flag"),
    ("notFlag", "Does not have flag"),
];

/// Kinds whose row has an operator and a value.
fn compares_values(kind: &str) -> bool {
    matches!(kind, "" | "company" | "user" | "other")
}

/// One condition row. An empty `field` (with an empty value) leaves the row out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionForm {
    /// Index of the rule the row belongs to.
    #[serde(default)]
    pub rule: usize,
    /// One of [`CONDITION_KINDS`].
    #[serde(default)]
    pub kind: String,
    /// The attribute or context field, the segment key or the flag key.
    #[serde(default)]
    pub field: String,
    /// The operator's wire name (`ANY_OF`).
    #[serde(default)]
    pub operator: String,
    /// The value; comma-separated for ANY_OF and NOT_ANY_OF.
    #[serde(default)]
    pub value: String,
    /// The saved values as a JSON array, posted back unchanged: while `value` still reads as
    /// they were shown, they are kept as they are (a value containing a comma stays one value).
    #[serde(default)]
    pub original: String,
}

/// One rule's own fields; its conditions are the [`ConditionForm`]s that name it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleForm {
    /// Percentage; empty on the blank rule, where it means 100 once a condition is filled in.
    #[serde(default)]
    pub rollout: String,
    /// Whose id the rollout hashes: `company` or `user`.
    #[serde(default)]
    pub rollout_by: String,
    /// Present (checkbox) to delete the rule.
    #[serde(default)]
    pub remove: String,
    /// How many conditions the saved rule had (empty on the blank rule), so clearing them all is
    /// refused instead of turning the rule into "everyone".
    #[serde(default)]
    pub had: String,
}

/// The access editor's fields, as the form posts them. Rules and conditions are flat lists
/// (a condition names its rule) so the posted names stay within the form decoder's nesting depth.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessForm {
    pub mode: String,
    #[serde(default)]
    pub companies: String,
    #[serde(default)]
    pub users: String,
    #[serde(default)]
    pub segments: String,
    #[serde(default)]
    pub rules: Vec<RuleForm>,
    #[serde(default)]
    pub conditions: Vec<ConditionForm>,
}

/// The entries of a list typed one per line or comma-separated, trimmed, first occurrence kept.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in text
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    items
}

#[cfg(feature = "ssr")]
impl ConditionForm {
    fn blank(rule: usize) -> Self {
        ConditionForm {
            rule,
            kind: "company".into(),
            operator: "IS".into(),
            ..Default::default()
        }
    }

    fn from_condition(rule: usize, condition: &Condition) -> Self {
        let attribute =
            |kind: &str, field: &str, operator: &crate::model::ContextOperator, values: &[String]| {
                ConditionForm {
                    rule,
                    kind: kind.into(),
                    field: field.into(),
                    operator: operator.as_str().into(),
                    value: values.join(", "),
                    original: serde_json::to_string(values).unwrap_or_default(),
                }
            };
        let reference = |kind: &str, field: &str| ConditionForm {
            rule,
            kind: kind.into(),
            field: field.into(),
            operator: "IS".into(),
            ..Default::default()
        };
        match condition {
            Condition::CompanyAttribute {
                attribute: a,
                operator,
                values,
            } => attribute("company", a, operator, values),
            Condition::UserAttribute {
                attribute: a,
                operator,
                values,
            } => attribute("user", a, operator, values),
            Condition::OtherContext {
                field,
                operator,
                values,
            } => attribute("other", field, operator, values),
            Condition::Segment {
                segment,
                membership: SegmentMembership::In,
            } => reference("segment", segment.as_str()),
            Condition::Segment {
                segment,
                membership: SegmentMembership::NotIn,
            } => reference("notSegment", segment.as_str()),
            Condition::FlagAccess { flag, enabled: true } => reference("flag", flag.as_str()),
            Condition::FlagAccess { flag, enabled: false } => reference("notFlag", flag.as_str()),
        }
    }

    /// The condition, `None` for an empty row, or the input (`condition-<index>-field`, …) that
    /// is wrong and why.
    fn to_condition(&self, index: usize) -> Result<Option<Condition>, AppError> {
        let wrong = |input: &str, message: String| AppError {
            field: Some(format!("condition-{index}-{input}")),
            message,
            ..Default::default()
        };
        let field = self.field.trim();
        if field.is_empty() {
            if self.value.trim().is_empty() || !compares_values(&self.kind) {
                return Ok(None);
            }
            return Err(wrong(
                "field",
                "choose a field for this value, or clear the value".into(),
            ));
        }
        let segment =
            || SegmentKey::parse(field.to_string()).map_err(|e| wrong("field", format!("{field}: {e}")));
        let flag = || FlagKey::parse(field.to_string()).map_err(|e| wrong("field", format!("{field}: {e}")));
        let condition = match self.kind.as_str() {
            "segment" => Condition::Segment {
                segment: segment()?,
                membership: SegmentMembership::In,
            },
            "notSegment" => Condition::Segment {
                segment: segment()?,
                membership: SegmentMembership::NotIn,
            },
            "flag" => Condition::FlagAccess {
                flag: flag()?,
                enabled: true,
            },
            "notFlag" => Condition::FlagAccess {
                flag: flag()?,
                enabled: false,
            },
            kind @ ("" | "company" | "user" | "other") => {
                let operator = operator_named(&self.operator)
                    .ok_or_else(|| wrong("operator", "choose an operator".into()))?;
                let values = self.values(operator, &wrong)?;
                // `company.plan` typed for a company attribute means `plan`.
                let prefix = match kind {
                    "user" => "user.",
                    "other" => "other.",
                    _ => "company.",
                };
                let name = field.strip_prefix(prefix).unwrap_or(field).to_string();
                if name.is_empty() || name.chars().any(char::is_whitespace) {
                    return Err(wrong("field", format!("{field:?} is not a field name")));
                }
                match kind {
                    "user" => Condition::UserAttribute {
                        attribute: name,
                        operator,
                        values,
                    },
                    "other" => Condition::OtherContext {
                        field: name,
                        operator,
                        values,
                    },
                    _ => Condition::CompanyAttribute {
                        attribute: name,
                        operator,
                        values,
                    },
                }
            }
            _ => return Err(wrong("kind", "choose what the condition tests".into())),
        };
        Ok(Some(condition))
    }

    /// The values the operator takes, checked against the kind of value it compares.
    fn values(
        &self,
        operator: crate::model::ContextOperator,
        wrong: &dyn Fn(&str, String) -> AppError,
    ) -> Result<Vec<String>, AppError> {
        if arity(operator) == Arity::None {
            return Ok(Vec::new());
        }
        let untouched = serde_json::from_str::<Vec<String>>(&self.original)
            .ok()
            .filter(|original| !original.is_empty() && original.join(", ") == self.value);
        if let Some(original) = untouched {
            return Ok(original);
        }
        let values = match arity(operator) {
            Arity::None => return Ok(Vec::new()),
            Arity::One => {
                let value = self.value.trim();
                if value.is_empty() {
                    return Err(wrong("value", "enter a value".into()));
                }
                vec![value.to_string()]
            }
            Arity::List => {
                let values = split_list(&self.value);
                if values.is_empty() {
                    return Err(wrong(
                        "value",
                        "enter one or more values, separated by commas".into(),
                    ));
                }
                values
            }
        };
        for value in &values {
            let problem = match value_kind(operator) {
                ValueKind::Number if !crate::eval::jsnum::parse_js_number(value).is_finite() => {
                    Some(format!("{value:?} is not a number"))
                }
                ValueKind::Days
                    if !crate::eval::jsnum::parse_js_number(value).is_finite()
                        || crate::eval::jsnum::parse_js_number(value) < 0.0 =>
                {
                    Some(format!("{value:?} is not a number of days"))
                }
                ValueKind::Date if !crate::eval::jsdate::parse_js_date(value).is_finite() => {
                    Some(format!("{value:?} is not a date; write it like 2026-01-31"))
                }
                _ => None,
            };
            if let Some(message) = problem {
                return Err(wrong("value", message));
            }
        }
        Ok(values)
    }
}

#[cfg(feature = "ssr")]
impl AccessForm {
    /// Fills the form from stored rules: every rule with its conditions and one empty condition
    /// row, then one empty rule with one empty row (the editor adds rows as they are needed).
    pub fn from_rules(rules: &AccessRules) -> Self {
        let mode = match rules {
            AccessRules::NoOne => "noOne",
            AccessRules::Everyone => "everyone",
            AccessRules::Some(_) => "some",
        };
        let mut form = AccessForm {
            mode: mode.into(),
            ..Default::default()
        };
        if let AccessRules::Some(some) = rules {
            form.companies = some.companies.join("\n");
            form.users = some.users.join("\n");
            form.segments = some
                .segments
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join("\n");
            for (i, rule) in some.rules.iter().enumerate() {
                form.rules.push(RuleForm {
                    had: rule.conditions.len().to_string(),
                    rollout: rule.rollout_percentage.as_f64().to_string(),
                    rollout_by: match rule.rollout_attribute {
                        RolloutAttribute::Company => "company".into(),
                        RolloutAttribute::User => "user".into(),
                    },
                    remove: String::new(),
                });
                form.conditions.extend(
                    rule.conditions
                        .iter()
                        .map(|c| ConditionForm::from_condition(i, c)),
                );
                form.conditions.push(ConditionForm::blank(i));
            }
        }
        let blank = form.rules.len();
        form.rules.push(RuleForm {
            rollout_by: "company".into(),
            ..Default::default()
        });
        form.conditions.push(ConditionForm::blank(blank));
        form
    }

    /// Turns the posted fields into access rules, or the input that is wrong and why.
    pub fn to_rules(&self) -> Result<AccessRules, AppError> {
        let wrong = |field: String, message: String| AppError {
            field: Some(field),
            message,
            ..Default::default()
        };
        match self.mode.as_str() {
            "noOne" => return Ok(AccessRules::NoOne),
            "everyone" => return Ok(AccessRules::Everyone),
            "some" => {}
            _ => return Err(wrong("mode".into(), "choose No one, Everyone or Some".into())),
        }
        let segments = split_list(&self.segments)
            .into_iter()
            .map(|key| {
                SegmentKey::parse(key.clone()).map_err(|e| wrong("segments".into(), format!("{key}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.conditions.iter().any(|c| c.rule >= self.rules.len()) {
            return Err(AppError::general(
                "a condition belongs to no rule; reload the page",
            ));
        }
        let mut rules = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.remove.is_empty() {
                continue;
            }
            let mut conditions = Vec::new();
            for (j, row) in self.conditions.iter().enumerate().filter(|(_, c)| c.rule == i) {
                conditions.extend(row.to_condition(j)?);
            }
            let rollout_text = rule.rollout.trim().trim_end_matches('%').trim();
            if conditions.is_empty() && rollout_text.is_empty() {
                continue;
            }
            if conditions.is_empty() && rule.had.parse::<usize>().is_ok_and(|n| n > 0) {
                return Err(wrong(
                    format!("rule-{i}-rollout"),
                    "this rule has no conditions left, so it would let everyone in at this percentage; \
                     tick \"Remove this rule\" to delete it, or keep a condition"
                        .into(),
                ));
            }
            let rollout_percentage = if rollout_text.is_empty() {
                Ok(100.0)
            } else {
                rollout_text.parse::<f64>()
            }
            .ok()
            .and_then(|p| Percentage::new(p).ok())
            .ok_or_else(|| {
                wrong(
                    format!("rule-{i}-rollout"),
                    "enter a percentage from 0 to 100 (up to 3 decimals)".into(),
                )
            })?;
            let rollout_attribute = match rule.rollout_by.as_str() {
                "" | "company" => RolloutAttribute::Company,
                "user" => RolloutAttribute::User,
                _ => {
                    return Err(wrong(
                        format!("rule-{i}-rollout_by"),
                        "choose company or user".into(),
                    ))
                }
            };
            rules.push(AccessRule {
                conditions,
                rollout_percentage,
                rollout_attribute,
            });
        }
        Ok(AccessRules::Some(TargetedAccess {
            companies: split_list(&self.companies),
            users: split_list(&self.users),
            segments,
            rules,
        }))
    }
}

/// What the field inputs suggest: attribute names seen on the environment's companies and users,
/// segment keys and flag keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EditorOptions {
    pub company_fields: Vec<String>,
    pub user_fields: Vec<String>,
    pub segments: Vec<String>,
    pub flags: Vec<String>,
}

#[cfg(feature = "ssr")]
impl From<crate::service::EditorOptions> for EditorOptions {
    fn from(options: crate::service::EditorOptions) -> Self {
        EditorOptions {
            company_fields: options.company_fields,
            user_fields: options.user_fields,
            segments: options.segments,
            flags: options.flags,
        }
    }
}

/// Known companies that a form's rules let in, out of all known companies of the environment,
/// and the listed ids no SDK has reported there yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessCount {
    pub with_access: usize,
    pub known: usize,
    pub unseen_companies: Vec<String>,
    pub unseen_users: Vec<String>,
}

impl AccessCount {
    pub fn text(&self, saved: bool) -> String {
        let rules = if saved { "the saved rules" } else { "these rules" };
        let count = match self.known {
            0 => "No companies are known in this environment yet; they arrive through the SDKs.".to_string(),
            known => format!(
                "{} of {known} known companies have access with {rules}.",
                self.with_access
            ),
        };
        match self.unseen_text() {
            Some(unseen) => format!("{count} {unseen}"),
            None => count,
        }
    }

    /// "Not seen yet in this environment: …" for listed ids no SDK reported, or `None`.
    pub fn unseen_text(&self) -> Option<String> {
        let mut parts = Vec::new();
        for (label, ids) in [
            ("companies", &self.unseen_companies),
            ("users", &self.unseen_users),
        ] {
            if !ids.is_empty() {
                parts.push(format!("{label} {}", ids.join(", ")));
            }
        }
        (!parts.is_empty()).then(|| {
            format!(
                "Not seen yet in this environment (check the spelling; ids are case-sensitive): {}.",
                parts.join("; ")
            )
        })
    }
}

#[cfg(feature = "ssr")]
impl From<crate::service::AccessCount> for AccessCount {
    fn from(count: crate::service::AccessCount) -> Self {
        AccessCount {
            with_access: count.with_access,
            known: count.known,
            unseen_companies: count.unseen_companies,
            unseen_users: count.unseen_users,
        }
    }
}

/// The live preview's answer: a count, or why the unsaved rules can't be counted yet (a field
/// still empty, a bad value). The latter is an answer, not a failure of the call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AccessPreview {
    Count(AccessCount),
    Incomplete(String),
}

impl AccessPreview {
    pub fn text(&self) -> String {
        match self {
            AccessPreview::Count(count) => count.text(false),
            AccessPreview::Incomplete(why) => format!("Can't count yet: {why}"),
        }
    }
}

/// Counts, for the editor's live preview, the known companies that the unsaved form lets in.
#[server(endpoint = "read/preview_access")]
pub async fn preview_access(
    environment: String,
    form: AccessForm,
    flag: Option<String>,
) -> Result<AccessPreview, AppError> {
    let (service, actor) = super::server::caller()?;
    let rules = match form.to_rules() {
        Ok(rules) => rules,
        Err(problem) => return Ok(AccessPreview::Incomplete(problem.message)),
    };
    match service
        .count_access(&actor, &environment, flag.as_deref(), &rules)
        .await
    {
        Ok(count) => Ok(AccessPreview::Count(count.into())),
        Err(crate::service::ServiceError::Invalid { message, .. }) => Ok(AccessPreview::Incomplete(message)),
        Err(error) => Err(error.into()),
    }
}

/// Stored companies or users of an environment matching `query` (id, name or email), for the
/// pickers: `(id, label)`, at most ten, most recently seen first.
#[server(endpoint = "read/search_ids")]
pub async fn search_ids(
    environment: String,
    kind: String,
    query: String,
) -> Result<Vec<(String, String)>, AppError> {
    use crate::service::EntityKind;
    let kind = match kind.as_str() {
        "company" => EntityKind::Company,
        "user" => EntityKind::User,
        _ => return Err(AppError::general("search companies or users").rejected_input()),
    };
    let (service, actor) = super::server::caller()?;
    let (_, _, page) = service
        .search_entities(&actor, &environment, kind, &query, 0, 10)
        .await?;
    Ok(page.rows.into_iter().map(picker_entry).collect())
}

/// Ids a picker shows as chips; the rest of a long list is counted.
const CHIPS_SHOWN: usize = 50;

/// For the pickers' chips: per id (newline-separated, the first [`CHIPS_SHOWN`]) its stored name
/// and email, or `None` when the environment never saw it.
#[server(endpoint = "read/id_labels")]
pub async fn id_labels(
    environment: String,
    kind: String,
    ids: String,
) -> Result<Vec<(String, Option<String>)>, AppError> {
    let kind = match kind.as_str() {
        "company" => crate::service::EntityKind::Company,
        "user" => crate::service::EntityKind::User,
        _ => return Err(AppError::general("name companies or users").rejected_input()),
    };
    let (service, actor) = super::server::caller()?;
    let ids: Vec<String> = split_list(&ids).into_iter().take(CHIPS_SHOWN).collect();
    Ok(service.entity_labels(&actor, &environment, kind, &ids).await?)
}

/// A stored company or user as the pickers list it: its id and a label of its name and email.
#[cfg(feature = "ssr")]
fn picker_entry(row: crate::service::EntityRow) -> (String, String) {
    let label = [row.name, row.email]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    (row.id, label)
}

/// The data of the form an event happened in (for live previews that post the unsaved form).
pub(crate) fn form_data_of(ev: &leptos::ev::Event) -> Option<leptos::web_sys::FormData> {
    use leptos::wasm_bindgen::JsCast;
    let form = ev
        .target()
        .and_then(|target| target.dyn_into::<leptos::web_sys::Element>().ok())
        .and_then(|element| element.closest("form").ok().flatten())
        .and_then(|form| form.dyn_into::<leptos::web_sys::HtmlFormElement>().ok())?;
    leptos::web_sys::FormData::new_with_form(&form).ok()
}

/// What the picker adds for the typed text: the id of the known company or user it names (by
/// its id in any letter case, its name or its email, or the one match of the search), else the
/// text as typed (an id not seen yet, which the live count then points out).
fn resolve_pick(typed: &str, matches: &[(String, String)]) -> String {
    let typed = typed.trim();
    let lower = typed.to_lowercase();
    let names = |(id, label): &&(String, String)| {
        id.to_lowercase() == lower || label.split(" · ").any(|part| part.to_lowercase() == lower)
    };
    matches
        .iter()
        .find(|(id, _)| id == typed)
        .or_else(|| matches.iter().find(names))
        .or_else(|| matches.first().filter(|_| matches.len() == 1))
        .map_or_else(|| typed.to_string(), |(id, _)| id.clone())
}

/// A list of ids (a textarea, posted as `name`) shown as chips with the names of the known ones
/// (an id never reported is marked "not seen yet"), removable with JavaScript, and a search box
/// that suggests stored companies or users as you type and adds the chosen one.
#[component]
fn IdPicker(
    kind: &'static str,
    environment: String,
    id: String,
    name: String,
    label: String,
    value: String,
) -> impl IntoView {
    let list = NodeRef::<leptos::html::Textarea>::new();
    let search = NodeRef::<leptos::html::Input>::new();
    let ids = RwSignal::new(split_list(&value));
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    let shown = Memo::new(move |_| ids.with(|ids| ids.iter().take(CHIPS_SHOWN).cloned().collect::<Vec<_>>()));
    let labels_environment = environment.clone();
    let labels = Resource::new(
        move || shown.get(),
        move |shown| {
            let environment = labels_environment.clone();
            async move {
                if shown.is_empty() {
                    return Ok(Vec::new());
                }
                id_labels(environment, kind.to_string(), shown.join("\n")).await
            }
        },
    );
    // Filled by a search the input starts; a signal, not a resource, so the server render never
    // waits for it (there is nothing to search before someone types).
    let matches = RwSignal::new(Vec::<(String, String)>::new());
    let search_for = move |query: String| {
        let environment = environment.clone();
        leptos::task::spawn_local(async move {
            let found = if query.trim().is_empty() {
                Vec::new()
            } else {
                search_ids(environment, kind.to_string(), query)
                    .await
                    .unwrap_or_default()
            };
            matches.set(found);
        });
    };
    // The textarea is what is posted; the chips follow it.
    let set_list = move |new: Vec<String>| {
        if let Some(list) = list.get() {
            list.set_value(&new.join("\n"));
        }
        ids.set(new);
    };
    let add = move || {
        let (Some(list), Some(search)) = (list.get(), search.get()) else {
            return;
        };
        let chosen = resolve_pick(&search.value(), &matches.get_untracked());
        if chosen.is_empty() {
            return;
        }
        let mut now = split_list(&list.value());
        if !now.contains(&chosen) {
            now.push(chosen);
        }
        set_list(now);
        search.set_value("");
        matches.set(Vec::new());
    };
    let remove = move |gone: String| {
        if let Some(list) = list.get() {
            let mut now = split_list(&list.value());
            now.retain(|id| *id != gone);
            set_list(now);
        }
    };
    let chips = move || {
        let known = labels.get().and_then(Result::ok).unwrap_or_default();
        let all = ids.get();
        let more = all.len().saturating_sub(CHIPS_SHOWN);
        (!all.is_empty()).then(|| {
            let chips = all
                .into_iter()
                .take(CHIPS_SHOWN)
                .map(|id| {
                    let label = known.iter().find(|(k, _)| *k == id).map(|(_, l)| l.clone());
                    let name = label.clone().flatten().filter(|n| !n.is_empty());
                    let unseen = matches!(label, Some(None));
                    let gone = id.clone();
                    view! {
                        <li class="chip">
                            {name.map(|name| view! { <span class="chip-name">{name}</span> })}
                            <code>{id.clone()}</code>
                            {unseen.then(|| view! { <span class="chip-unseen">"not seen yet"</span> })}
                            {move || hydrated.get().then(|| {
                                let gone = gone.clone();
                                view! {
                                    <button type="button" class="chip-remove" title="Remove" aria-label=format!("Remove {}", gone)
                                        on:click=move |_| remove(gone.clone())>"×"</button>
                                }
                            })}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <ul class="chips">
                    {chips}
                    {(more > 0).then(|| view! { <li class="chip more">{format!("and {more} more")}</li> })}
                </ul>
            }
        })
    };
    let (search_id, options_id) = (format!("{id}-search"), format!("{id}-matches"));
    let search_label = format!("Find a {kind} to add");
    // The property as well as the text: an in-page action re-renders the list with what is
    // stored, and a textarea shows its text only until it was edited.
    let stored = value.clone();
    view! {
        <div class="picker">
            <label for=id.clone()>{label}</label>
            <Transition fallback=|| ()>{chips}</Transition>
            <textarea id=id.clone() name=name rows="3" node_ref=list prop:value=stored
                on:input=move |ev| ids.set(split_list(&event_target_value(&ev)))>{value}</textarea>
            <div class="picker-search">
                <label for=search_id.clone() class="small">{search_label}</label>
                <input
                    id=search_id
                    type="search"
                    list=options_id.clone()
                    autocomplete="off"
                    placeholder="id, name or email"
                    node_ref=search
                    on:input=move |ev| search_for(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" {
                            ev.prevent_default();
                            add();
                        }
                    }
                />
                <button type="button" class="secondary small" on:click=move |_| add()>"Add"</button>
                <datalist id=options_id>
                    {move || {
                        matches
                            .get()
                            .into_iter()
                            .map(|(id, label)| view! { <option value=id>{label}</option> })
                            .collect_view()
                    }}
                </datalist>
            </div>
        </div>
    }
}

/// The suggestion list a condition kind's field uses (a kind and its negation share one).
fn suggestions_for(kind: &str) -> &str {
    match kind {
        "notSegment" => "segment",
        "notFlag" => "flag",
        other => other,
    }
}

/// One condition row of a rule.
#[component]
fn ConditionRow(
    index: usize,
    row: ConditionForm,
    prefix: String,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let kind = RwSignal::new(if row.kind.is_empty() {
        "company".to_string()
    } else {
        row.kind.clone()
    });
    let operator = RwSignal::new(row.operator.clone());
    let id = |input: &str| format!("{prefix}-condition-{index}-{input}");
    let name = |input: &str| format!("form[conditions][{index}][{input}]");
    let (kind_id, field_id, operator_id, value_id) = (id("kind"), id("field"), id("operator"), id("value"));
    let lists = prefix.clone();
    let kinds = CONDITION_KINDS
        .into_iter()
        .map(|(value, label)| {
            let selected = value == kind.get_untracked();
            view! { <option value=value selected=selected prop:selected=selected>{label}</option> }
        })
        .collect_view();
    let groups = OPERATOR_GROUPS
        .into_iter()
        .map(|(group, operators)| {
            let options = operators
                .iter()
                .map(|op| {
                    let selected = op.as_str() == row.operator;
                    view! { <option value=op.as_str() selected=selected prop:selected=selected>{operator_label(*op)}</option> }
                })
                .collect_view();
            view! { <optgroup label=group>{options}</optgroup> }
        })
        .collect_view();
    // Inputs a row's kind or operator doesn't use are hidden only once the page is hydrated:
    // without JavaScript, changing the kind must still leave the operator and value usable.
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    let compares = move || compares_values(&kind.get());
    let takes_value =
        move || compares() && operator_named(&operator.get()).is_none_or(|op| arity(op) != Arity::None);
    let errors = ["kind", "field", "operator", "value"].map(|input| {
        let field = format!("condition-{index}-{input}");
        (format!("{prefix}-{field}-error"), message_for(error, field))
    });
    let [kind_error, field_error, operator_error, value_error] = errors;
    // Removing a row empties it (the server leaves empty rows out) and hides it.
    let (field_input, value_input) = (
        NodeRef::<leptos::html::Input>::new(),
        NodeRef::<leptos::html::Input>::new(),
    );
    let removed = RwSignal::new(false);
    let remove = move |_| {
        for input in [field_input.get(), value_input.get()].into_iter().flatten() {
            input.set_value("");
        }
        removed.set(true);
    };
    view! {
        <div class="condition" class:hidden=move || removed.get()>
            <input type="hidden" name=name("rule") value=row.rule/>
            <input type="hidden" name=name("original") value=row.original.clone()/>
            <div>
                <label for=kind_id.clone() class="small">"Condition"</label>
                <select id=kind_id name=name("kind") on:change=move |ev| kind.set(event_target_value(&ev))>{kinds}</select>
                <ErrorTextOwned id=kind_error.0 message=kind_error.1/>
            </div>
            <div>
                <label for=field_id.clone() class="small">"Field"</label>
                <input
                    id=field_id
                    name=name("field")
                    value=row.field.clone()
                    prop:value=row.field.clone()
                    list=move || format!("{lists}-{}", suggestions_for(&kind.get()))
                    node_ref=field_input
                    autocomplete="off"
                    placeholder=move || if compares() { "plan" } else { "key" }
                />
                <ErrorTextOwned id=field_error.0 message=field_error.1/>
            </div>
            <div class:hidden=move || hydrated.get() && !compares()>
                <label for=operator_id.clone() class="small">"Operator"</label>
                <select id=operator_id name=name("operator") on:change=move |ev| operator.set(event_target_value(&ev))>{groups}</select>
                <ErrorTextOwned id=operator_error.0 message=operator_error.1/>
            </div>
            <div class:hidden=move || hydrated.get() && !takes_value()>
                <label for=value_id.clone() class="small">"Value"</label>
                <input id=value_id name=name("value") value=row.value.clone() prop:value=row.value.clone() placeholder="pro, team" node_ref=value_input/>
                <ErrorTextOwned id=value_error.0 message=value_error.1/>
            </div>
            <div class="remove-condition" hidden=move || !hydrated.get()>
                <button type="button" class="secondary small" on:click=remove aria-label="Remove this condition">"Remove"</button>
            </div>
        </div>
    }
}

/// The whole editor: mode, pickers, segments, rules. `prefix` keeps element ids unique when a
/// page holds several editors; `error` is the last save's error for this editor.
#[component]
pub fn AccessEditor(
    form: AccessForm,
    prefix: String,
    environment: String,
    options: EditorOptions,
    error: Signal<Option<AppError>>,
    /// `(value, label)` of the mode radios.
    modes: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    let mode = form.mode.clone();
    let radios = modes
        .into_iter()
        .map(|(value, label)| {
            let checked = mode == value;
            view! { <label class="inline"><input type="radio" name="form[mode]" value=value checked=checked prop:checked=checked/>{label}</label> }
        })
        .collect_view();
    let id = |field: &str| format!("{prefix}-{field}");
    let saved_rules = form.rules.len().saturating_sub(1);
    // Rows added in the page: (rule, row index), numbered on from the rendered ones.
    let added = RwSignal::new(Vec::<(usize, usize)>::new());
    let first_added = form.conditions.len();
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    let rules = form
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let is_new = i == saved_rules;
            let legend = if is_new { "New rule".to_string() } else { format!("Rule {}", i + 1) };
            let rows = form
                .conditions
                .iter()
                .enumerate()
                .filter(|(_, c)| c.rule == i)
                .map(|(j, row)| {
                    view! { <ConditionRow index=j row=row.clone() prefix=prefix.clone() error=error/> }
                })
                .collect_view();
            let (rollout_id, by_id, remove_id) = (
                format!("{prefix}-rule-{i}-rollout"),
                format!("{prefix}-rule-{i}-by"),
                format!("{prefix}-rule-{i}-remove"),
            );
            let rollout_error = (format!("{rollout_id}-error"), message_for(error, format!("rule-{i}-rollout")));
            let by_user = rule.rollout_by == "user";
            let more_prefix = prefix.clone();
            let more = move || {
                added
                    .get()
                    .into_iter()
                    .filter(|(r, _)| *r == i)
                    .map(|(r, j)| {
                        let row = ConditionForm {
                            rule: r,
                            kind: "company".into(),
                            operator: "IS".into(),
                            ..Default::default()
                        };
                        view! { <ConditionRow index=j row prefix=more_prefix.clone() error=error/> }
                    })
                    .collect_view()
            };
            let add_condition = move |_| {
                added.update(|rows| {
                    let next = first_added + rows.len();
                    rows.push((i, next));
                });
            };
            view! {
                <fieldset class="rule">
                    <legend>{legend}</legend>
                    <p class="muted small">
                        {if is_new {
                            "Fill in a condition or a percentage to add a rule. Every condition must hold."
                        } else {
                            "Every condition must hold; then the rollout decides. Clear a field to drop its condition."
                        }}
                    </p>
                    <input type="hidden" name=format!("form[rules][{i}][had]") value=rule.had.clone()/>
                    {rows}
                    {more}
                    <button type="button" class="secondary small add-condition" hidden=move || !hydrated.get() on:click=add_condition>"Add condition"</button>
                    <div class="rollout">
                        <div>
                            <label for=rollout_id.clone()>"Rollout percentage"</label>
                            <input
                                id=rollout_id.clone()
                                name=format!("form[rules][{i}][rollout]")
                                value=rule.rollout.clone()
                                prop:value=rule.rollout.clone()
                                inputmode="decimal"
                                placeholder="100"
                                aria-describedby=rollout_error.0.clone()
                            />
                        </div>
                        <div>
                            <label for=by_id.clone()>"Sticky per"</label>
                            <select id=by_id name=format!("form[rules][{i}][rollout_by]")>
                                <option value="company" selected=!by_user prop:selected=!by_user>"company"</option>
                                <option value="user" selected=by_user prop:selected=by_user>"user"</option>
                            </select>
                        </div>
                        {(!is_new).then(|| view! {
                            <label class="inline" for=remove_id.clone()>
                                <input type="checkbox" id=remove_id.clone() name=format!("form[rules][{i}][remove]") value="on" prop:checked=false/>
                                "Remove this rule"
                            </label>
                        })}
                    </div>
                    <ErrorTextOwned id=rollout_error.0 message=rollout_error.1/>
                </fieldset>
            }
        })
        .collect_view();
    let datalist = |suffix: &str, values: &[String], hint: &'static str| {
        let options = values
            .iter()
            .map(|v| view! { <option value=v.clone()>{hint}</option> })
            .collect_view();
        view! { <datalist id=format!("{prefix}-{suffix}")>{options}</datalist> }
    };
    let lists = view! {
        {datalist("company", &options.company_fields, "company attribute")}
        {datalist("user", &options.user_fields, "user attribute")}
        {datalist("other", &[], "")}
        {datalist("segment", &options.segments, "segment")}
        {datalist("flag", &options.flags, "flag")}
    };
    let segments_hint = if options.segments.is_empty() {
        "No segments yet; create them under Segments.".to_string()
    } else {
        format!("Known: {}", options.segments.join(", "))
    };
    let (segments_id, segments_error_id) = (id("segments"), id("segments-error"));
    let known = |field: &str| {
        field == "segments"
            || field == "mode"
            || field.starts_with("condition-")
            || field.starts_with("rule-")
    };
    let general = Signal::derive(move || {
        error
            .get()
            .filter(|e| !e.field.as_deref().is_some_and(known))
            .map(|e| e.message)
    });
    view! {
        <fieldset>
            <legend>"Who gets it"</legend>
            {radios}
        </fieldset>
        <ErrorTextOwned id=id("mode-error") message=message_for(error, "mode".into())/>
        <div class="targets">
            <IdPicker
                kind="company"
                environment=environment.clone()
                id=id("companies")
                name="form[companies]".into()
                label="Companies (ids, one per line)".into()
                value=form.companies.clone()
            />
            <IdPicker
                kind="user"
                environment=environment
                id=id("users")
                name="form[users]".into()
                label="Users (ids, one per line)".into()
                value=form.users.clone()
            />
            <div>
                <label for=segments_id.clone()>"Segments (keys, one per line)"</label>
                <textarea id=segments_id name="form[segments]" rows="3" aria-describedby=segments_error_id.clone() prop:value=form.segments.clone()>{form.segments.clone()}</textarea>
                <p class="muted small">{segments_hint}</p>
                <ErrorTextOwned id=segments_error_id message=message_for(error, "segments".into())/>
            </div>
        </div>
        {rules}
        {lists}
        <ErrorTextOwned id=id("error") message=general/>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::{AccessRules, ContextOperator};

    fn some(rules: Vec<AccessRule>) -> AccessRules {
        AccessRules::Some(TargetedAccess {
            companies: vec!["acme".into()],
            users: vec![],
            segments: vec![SegmentKey::parse("beta").unwrap()],
            rules,
        })
    }

    #[test]
    fn every_rule_and_condition_survives_the_form() {
        let rules = some(vec![
            AccessRule {
                conditions: vec![
                    Condition::CompanyAttribute {
                        attribute: "plan".into(),
                        operator: ContextOperator::AnyOf,
                        values: vec!["pro".into(), "team".into()],
                    },
                    Condition::UserAttribute {
                        attribute: "email".into(),
                        operator: ContextOperator::Contains,
                        values: vec!["@acme.com".into()],
                    },
                    Condition::OtherContext {
                        field: "region".into(),
                        operator: ContextOperator::Set,
                        values: vec![],
                    },
                    Condition::Segment {
                        segment: SegmentKey::parse("beta").unwrap(),
                        membership: SegmentMembership::NotIn,
                    },
                    Condition::FlagAccess {
                        flag: FlagKey::parse("new-ui").unwrap(),
                        enabled: false,
                    },
                ],
                rollout_percentage: Percentage::new(12.5).unwrap(),
                rollout_attribute: RolloutAttribute::User,
            },
            AccessRule {
                conditions: vec![],
                rollout_percentage: Percentage::FULL,
                rollout_attribute: RolloutAttribute::Company,
            },
        ]);
        let form = AccessForm::from_rules(&rules);
        // Two saved rules and a blank one; each rule has a blank condition row.
        assert_eq!(form.rules.len(), 3);
        assert_eq!(form.conditions.len(), 5 + 1 + 1 + 1);
        assert_eq!(form.to_rules().unwrap(), rules);
        for rules in [AccessRules::NoOne, AccessRules::Everyone] {
            assert_eq!(AccessForm::from_rules(&rules).to_rules().unwrap(), rules);
        }
    }

    #[test]
    fn the_blank_rule_becomes_a_rule_once_filled_in() {
        let mut form = AccessForm::from_rules(&some(vec![]));
        form.rules[0].rollout = "25 %".into();
        let AccessRules::Some(access) = form.to_rules().unwrap() else {
            panic!()
        };
        assert_eq!(access.rules.len(), 1);
        assert_eq!(access.rules[0].rollout_percentage, Percentage::new(25.0).unwrap());
        assert!(access.rules[0].conditions.is_empty());

        let mut form = AccessForm::from_rules(&some(vec![]));
        // A row added in the page ("Add condition"), after the rendered blank one.
        form.conditions.push(ConditionForm {
            rule: 0,
            kind: "company".into(),
            operator: "IS".into(),
            ..Default::default()
        });
        form.conditions[1].kind = "user".into();
        form.conditions[1].field = "user.role".into();
        form.conditions[1].value = "admin".into();
        let AccessRules::Some(access) = form.to_rules().unwrap() else {
            panic!()
        };
        assert_eq!(
            access.rules[0].conditions,
            vec![Condition::UserAttribute {
                attribute: "role".into(),
                operator: ContextOperator::Is,
                values: vec!["admin".into()],
            }]
        );
        assert!(access.rules[0].rollout_percentage.is_full());
    }

    #[test]
    fn untouched_values_keep_their_commas_and_a_cleared_rule_is_refused() {
        let rule = AccessRule {
            conditions: vec![Condition::CompanyAttribute {
                attribute: "name".into(),
                operator: ContextOperator::AnyOf,
                values: vec!["Acme, Inc.".into(), "Globex".into()],
            }],
            rollout_percentage: Percentage::FULL,
            rollout_attribute: RolloutAttribute::Company,
        };
        let form = AccessForm::from_rules(&some(vec![rule.clone()]));
        assert_eq!(form.to_rules().unwrap(), some(vec![rule]));
        // Edited text is split again.
        let mut edited = form.clone();
        edited.conditions[0].value = "Initech, Hooli".into();
        let AccessRules::Some(access) = edited.to_rules().unwrap() else {
            panic!()
        };
        assert!(matches!(&access.rules[0].conditions[0],
            Condition::CompanyAttribute { values, .. } if values == &["Initech".to_string(), "Hooli".to_string()]));
        // Clearing every condition of a saved rule would open it to everyone: refused.
        let mut cleared = form;
        cleared.conditions[0].field.clear();
        cleared.conditions[0].value.clear();
        assert_eq!(
            cleared.to_rules().unwrap_err().field.as_deref(),
            Some("rule-0-rollout")
        );
        cleared.rules[0].remove = "on".into();
        assert_eq!(cleared.to_rules().unwrap(), some(vec![]));
    }

    #[test]
    fn a_removed_rule_is_left_out() {
        let rule = AccessRule {
            conditions: vec![],
            rollout_percentage: Percentage::new(50.0).unwrap(),
            rollout_attribute: RolloutAttribute::Company,
        };
        let mut form = AccessForm::from_rules(&some(vec![rule]));
        form.rules[0].remove = "on".into();
        assert_eq!(form.to_rules().unwrap(), some(vec![]));
    }

    #[test]
    fn wrong_inputs_are_named() {
        let field = |form: &AccessForm| form.to_rules().unwrap_err().field.unwrap();
        let mut base = AccessForm::from_rules(&some(vec![]));
        base.conditions.push(ConditionForm {
            rule: 0,
            kind: "company".into(),
            operator: "IS".into(),
            ..Default::default()
        });
        let mut form = base.clone();
        form.rules[0].rollout = "150".into();
        assert_eq!(field(&form), "rule-0-rollout");
        let mut form = base.clone();
        form.conditions[0].field = "seats".into();
        form.conditions[0].operator = "GT".into();
        form.conditions[0].value = "many".into();
        assert_eq!(field(&form), "condition-0-value");
        form.conditions[0].operator = "DATE_AFTER".into();
        form.conditions[0].value = "not a date".into();
        assert_eq!(field(&form), "condition-0-value");
        form.conditions[0].operator = "NOPE".into();
        assert_eq!(field(&form), "condition-0-operator");
        let mut form = base.clone();
        form.conditions[1].value = "orphan value".into();
        assert_eq!(field(&form), "condition-1-field");
        let mut form = base.clone();
        form.conditions[0].kind = "segment".into();
        form.conditions[0].field = "Not A Key!".into();
        assert_eq!(field(&form), "condition-0-field");
        let mut form = base;
        form.segments = "bad key!".into();
        assert_eq!(field(&form), "segments");
    }

    #[test]
    fn the_picker_adds_the_id_of_what_was_typed() {
        let matches = vec![
            ("acme".to_string(), "Acme Inc".to_string()),
            ("acme-eu".to_string(), "Acme Europe · ops@acme.eu".to_string()),
        ];
        assert_eq!(resolve_pick("acme", &matches), "acme");
        assert_eq!(resolve_pick("ACME-EU", &matches), "acme-eu");
        assert_eq!(resolve_pick(" acme inc ", &matches), "acme");
        assert_eq!(resolve_pick("ops@acme.eu", &matches), "acme-eu");
        assert_eq!(resolve_pick("Acme", &matches[..1]), "acme", "the one match");
        assert_eq!(resolve_pick("Ac", &matches), "Ac", "two matches: as typed");
        assert_eq!(resolve_pick("globex", &[]), "globex");
    }
}
