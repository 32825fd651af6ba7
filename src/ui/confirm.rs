//! The flag page's confirmations. A stage move, a copy between environments, a rollback and
//! archiving each change what SDKs are served, so each first shows what it will change and asks
//! to confirm. The confirmation is part of the page's address (`?confirm=rollback&version=3`):
//! without JavaScript it is a page of its own, with it a dialog over the flag page. The confirmed
//! call goes back to the flag page with what was done (`?done=rolled-back`), which the page states
//! in a notice, so the result shows the same way with or without JavaScript.

use leptos::prelude::*;
use leptos_router::params::ParamsMap;
use serde::{Deserialize, Serialize};

use super::error::{form_error, AppError, ErrorText};

/// What the flag page's address asks to confirm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Moving the flag to the stage of this id.
    Move(i64),
    /// Copying the access of the environment of this key into the page's environment.
    Copy(String),
    /// Making this version of the page's environment current again.
    Rollback(i64),
    /// Archiving the flag, or restoring it when it is archived.
    Archive,
}

impl Pending {
    /// The confirmation `query` asks for, if any (an unreadable one asks for none).
    pub fn from_query(query: &ParamsMap) -> Option<Self> {
        match query.get_str("confirm")? {
            "move" => query.get_str("stage")?.parse().ok().map(Pending::Move),
            "copy" => query.get("from").map(Pending::Copy),
            "rollback" => query.get_str("version")?.parse().ok().map(Pending::Rollback),
            "archive" => Some(Pending::Archive),
            _ => None,
        }
    }

    /// The address of `flag`'s page asking for this confirmation.
    pub fn href(&self, flag: &str) -> String {
        let asks = match self {
            Pending::Move(stage) => format!("confirm=move&stage={stage}"),
            Pending::Copy(from) => format!("confirm=copy&from={from}"),
            Pending::Rollback(version) => format!("confirm=rollback&version={version}"),
            Pending::Archive => "confirm=archive".into(),
        };
        format!("/flags/{flag}?{asks}")
    }
}

/// What a confirmed action did, carried back to the flag page in its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    Moved,
    Copied,
    RolledBack,
    Archived,
    Restored,
}

impl Done {
    const ALL: [Done; 5] = [
        Done::Moved,
        Done::Copied,
        Done::RolledBack,
        Done::Archived,
        Done::Restored,
    ];

    fn code(self) -> &'static str {
        match self {
            Done::Moved => "moved",
            Done::Copied => "copied",
            Done::RolledBack => "rolled-back",
            Done::Archived => "archived",
            Done::Restored => "restored",
        }
    }

    /// What `query` says was just done, if anything.
    pub fn from_query(query: &ParamsMap) -> Option<Self> {
        let code = query.get_str("done")?;
        Done::ALL.into_iter().find(|done| done.code() == code)
    }

    pub fn notice(self) -> &'static str {
        match self {
            Done::Moved => "Moved. Where the new stage has default access, it is now in place as a new version (see the history).",
            Done::Copied => "Copied: this environment now has the other one's access, as a new version.",
            Done::RolledBack => "Rolled back: the older version's access is current again, as a new version.",
            Done::Archived => "Archived: SDKs no longer get this flag. Restore it to serve it again.",
            Done::Restored => "Restored: SDKs get this flag again, with its stored access.",
        }
    }
}

/// Sends the caller back to `flag`'s page saying what was done (a redirect for a plain form post,
/// a navigation for the bundle's call).
#[cfg(feature = "ssr")]
fn back_to_flag(flag: &str, done: Done) {
    leptos_axum::redirect(&format!("/flags/{flag}?done={}", done.code()));
}

#[server(endpoint = "edit/move_stage")]
pub async fn move_stage(flag: String, stage: i64) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::MoveStage {
        flag: flag.clone(),
        stage_id: stage,
    };
    service.apply(&actor, change).await?;
    back_to_flag(&flag, Done::Moved);
    Ok(())
}

#[server(endpoint = "edit/copy_access")]
pub async fn copy_access(
    flag: String,
    from: String,
    to: String,
    expected_version: i64,
) -> Result<(), AppError> {
    let change = crate::service::AccessChange::CopyFrom(from);
    change_access(&flag, to, change, expected_version).await?;
    back_to_flag(&flag, Done::Copied);
    Ok(())
}

/// Makes `version` current again, unless the access changed since the preview was shown
/// (`expected_version` is the version that was current then).
#[server(endpoint = "edit/rollback")]
pub async fn rollback(
    flag: String,
    environment: String,
    version: i64,
    expected_version: i64,
) -> Result<(), AppError> {
    let change = crate::service::AccessChange::RollBackTo(version);
    change_access(&flag, environment, change, expected_version).await?;
    back_to_flag(&flag, Done::RolledBack);
    Ok(())
}

#[server(endpoint = "edit/archive_flag")]
pub async fn archive_flag(flag: String, archived: bool) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SetArchived {
        flag: flag.clone(),
        archived,
    };
    service.apply(&actor, change).await?;
    back_to_flag(&flag, if archived { Done::Archived } else { Done::Restored });
    Ok(())
}

/// Applies a change of a flag's access rules in an environment as the caller.
#[cfg(feature = "ssr")]
async fn change_access(
    flag: &str,
    environment: String,
    change: crate::service::AccessChange,
    expected_version: i64,
) -> Result<(), AppError> {
    let (service, actor) = super::server::caller()?;
    let change = crate::service::Change::SetAccess {
        flag: flag.to_string(),
        environment,
        change,
        expected_version: Some(expected_version),
    };
    service.apply(&actor, change).await?;
    Ok(())
}

/// The flag page's four confirmed actions.
#[derive(Clone, Copy)]
pub struct ConfirmActions {
    pub move_stage: ServerAction<MoveStage>,
    pub copy: ServerAction<CopyAccess>,
    pub rollback: ServerAction<Rollback>,
    pub archive: ServerAction<ArchiveFlag>,
}

impl ConfirmActions {
    pub fn new() -> Self {
        ConfirmActions {
            move_stage: ServerAction::new(),
            copy: ServerAction::new(),
            rollback: ServerAction::new(),
            archive: ServerAction::new(),
        }
    }

    /// Changes whenever one of them was called (the page reloads its flag on it).
    pub fn versions(self) -> (usize, usize, usize, usize) {
        (
            self.move_stage.version().get(),
            self.copy.version().get(),
            self.rollback.version().get(),
            self.archive.version().get(),
        )
    }
}

/// What a confirmation needs to know of the page's flag (the flag page fills it in from what it
/// read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subject {
    pub key: String,
    pub name: String,
    /// The page's environment, key and name.
    pub environment: String,
    pub environment_name: String,
    /// The current version of the access there, and the access in a few words.
    pub version: i64,
    pub current: String,
    pub archived: bool,
    pub stage_id: i64,
    pub stages: Vec<(i64, String)>,
    /// What moving to each other stage would change: (stage id, environment, from, to).
    pub stage_changes: Vec<(i64, String, String, String)>,
    pub others: Vec<OtherEnvironment>,
    /// The older versions there: (version, access in a few words, what rolling back changes).
    pub versions: Vec<(i64, String, Vec<String>)>,
}

/// Another environment of the flag, for copying its access into the page's one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OtherEnvironment {
    pub key: String,
    pub name: String,
    /// Its access now, in a few words.
    pub summary: String,
    /// What copying it here would change, a line per change.
    pub changes: Vec<String>,
}

/// What a confirmation says: the question, what is there now, what changes, and its button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub title: String,
    pub lead: String,
    /// What changes, a line each (what the flag's history would then show).
    pub changes: Vec<String>,
    pub confirm: String,
    /// Whether the button stops serving something (drawn in the danger colour).
    pub danger: bool,
}

impl Preview {
    /// The preview of `pending` on `flag`'s page; an error when it names a stage, environment or
    /// version the page does not have (an old link).
    pub fn new(pending: &Pending, flag: &Subject) -> Result<Self, String> {
        let (environment, current) = (&flag.environment_name, &flag.current);
        match pending {
            Pending::Move(stage) => {
                let name = flag
                    .stages
                    .iter()
                    .find(|(id, _)| id == stage && *id != flag.stage_id)
                    .map(|(_, name)| name.clone())
                    .ok_or("That stage is not one this flag can move to.")?;
                let changes: Vec<String> = flag
                    .stage_changes
                    .iter()
                    .filter(|(s, ..)| s == stage)
                    .map(|(_, env, from, to)| format!("{env}: {from} → {to}"))
                    .collect();
                let lead = if changes.is_empty() {
                    format!("{name} sets no default access, so who gets the flag stays as it is; only its stage changes.")
                } else {
                    format!("{name} has default access: it replaces what these environments have now, each as a new version you can roll back.")
                };
                Ok(Preview {
                    title: format!("Move {} to {name}?", flag.name),
                    lead,
                    changes,
                    confirm: format!("Move to {name}"),
                    danger: false,
                })
            }
            Pending::Copy(from) => {
                let other = flag
                    .others
                    .iter()
                    .find(|o| &o.key == from)
                    .ok_or("That environment is not one this flag can copy from.")?;
                Ok(Preview {
                    title: format!("Copy access from {} to {environment}?", other.name),
                    lead: format!(
                        "{environment} now: {current}. After the copy: {}, as a new version you can roll back.",
                        other.summary
                    ),
                    changes: nothing_or(other.changes.clone()),
                    confirm: format!("Copy from {}", other.name),
                    danger: false,
                })
            }
            Pending::Rollback(version) => {
                let (_, summary, changes) = flag
                    .versions
                    .iter()
                    .find(|(v, ..)| v == version && *v != flag.version)
                    .ok_or("That version is not one this environment can roll back to.")?;
                Ok(Preview {
                    title: format!("Roll {environment} back to version {version}?"),
                    lead: format!(
                        "Now (version {}): {current}. After: {}, as version {}.",
                        flag.version,
                        summary,
                        flag.version + 1
                    ),
                    changes: nothing_or(changes.clone()),
                    confirm: format!("Roll back to version {version}"),
                    danger: false,
                })
            }
            Pending::Archive if flag.archived => Ok(Preview {
                title: format!("Restore {}?", flag.name),
                lead: "SDKs get the flag again, with the access each environment has stored:".into(),
                changes: access_everywhere(flag),
                confirm: "Restore flag".into(),
                danger: false,
            }),
            Pending::Archive => Ok(Preview {
                title: format!("Archive {}?", flag.name),
                lead: "SDKs stop getting the flag in every environment: it evaluates as off for everyone. \
                       Its access is kept, and restoring it serves it again. Who has it now:"
                    .into(),
                changes: access_everywhere(flag),
                confirm: "Archive flag".into(),
                danger: true,
            }),
        }
    }
}

fn nothing_or(changes: Vec<String>) -> Vec<String> {
    if changes.is_empty() {
        vec!["Nothing changes: the access is already the same.".into()]
    } else {
        changes
    }
}

/// Each environment's access now, the page's own first.
fn access_everywhere(flag: &Subject) -> Vec<String> {
    let here = format!("{}: {}", flag.environment_name, flag.current);
    std::iter::once(here)
        .chain(flag.others.iter().map(|o| format!("{}: {}", o.name, o.summary)))
        .collect()
}

/// The dialog asking to confirm `pending` on `flag`'s page. Cancel (or Escape, with the bundle)
/// goes back to the flag page.
#[component]
pub fn ConfirmDialog(pending: Pending, flag: Subject, actions: ConfirmActions) -> impl IntoView {
    let cancel = format!("/flags/{}", flag.key);
    let escape_to = cancel.clone();
    let navigate = leptos_router::hooks::use_navigate();
    let dialog = NodeRef::<leptos::html::Div>::new();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            navigate(&escape_to, Default::default());
        }
        #[cfg(feature = "hydrate")]
        if ev.key() == "Tab" {
            if let Some(element) = dialog.get() {
                keep_focus_inside(&element, &ev);
            }
        }
    };
    // Focus moves into the dialog when it opens (keyboard and screen-reader users land on it).
    Effect::new(move || {
        if let Some(element) = dialog.get() {
            let _ = element.focus();
        }
    });
    let body = match Preview::new(&pending, &flag) {
        Ok(preview) => {
            let form = confirm_form(&pending, &flag, actions, &preview);
            view! {
                <h2 id="confirm-title">{preview.title}</h2>
                <p id="confirm-lead">{preview.lead}</p>
                <ul class="changes">{preview.changes.into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}</ul>
                {form}
            }
            .into_any()
        }
        Err(message) => view! {
            <h2 id="confirm-title">"Nothing to confirm"</h2>
            <p id="confirm-lead">{message}</p>
        }
        .into_any(),
    };
    view! {
        <div class="dialog-backdrop" on:keydown=on_key>
            <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="confirm-title"
                aria-describedby="confirm-lead" tabindex="-1" node_ref=dialog>
                {body}
                <a class="button secondary" href=cancel>"Cancel"</a>
            </div>
        </div>
    }
}

/// Tab and Shift+Tab cycle through the dialog's controls instead of leaving it for the page
/// behind (which `aria-modal` tells screen readers is out of reach).
#[cfg(feature = "hydrate")]
fn keep_focus_inside(dialog: &web_sys::HtmlElement, ev: &web_sys::KeyboardEvent) {
    use wasm_bindgen::JsCast;
    let Ok(list) = dialog
        .query_selector_all("a[href], button:not([disabled]), input:not([type=hidden]), select, textarea")
    else {
        return;
    };
    let controls: Vec<web_sys::HtmlElement> = (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|node| node.dyn_into().ok())
        .collect();
    let (Some(first), Some(last)) = (controls.first(), controls.last()) else {
        return;
    };
    let active = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.active_element());
    let is_active = |element: &web_sys::HtmlElement| {
        active
            .as_ref()
            .is_some_and(|a| a == element.unchecked_ref::<web_sys::Element>())
    };
    let on_dialog = active
        .as_ref()
        .is_some_and(|a| a == dialog.unchecked_ref::<web_sys::Element>());
    if ev.shift_key() && (is_active(first) || on_dialog) {
        ev.prevent_default();
        let _ = last.focus();
    } else if !ev.shift_key() && is_active(last) {
        ev.prevent_default();
        let _ = first.focus();
    }
}

/// The form that carries out `pending` once confirmed, with its error in place.
fn confirm_form(pending: &Pending, flag: &Subject, actions: ConfirmActions, preview: &Preview) -> AnyView {
    let (label, danger) = (preview.confirm.clone(), preview.danger);
    let (key, environment, version_now) = (flag.key.clone(), flag.environment.clone(), flag.version);
    let archived = (!flag.archived).to_string();
    match pending.clone() {
        Pending::Move(stage) => {
            let action = actions.move_stage;
            view! {
                <ActionForm action=action attr:class="confirm-form">
                    <input type="hidden" name="flag" value=key/>
                    <input type="hidden" name="stage" value=stage/>
                    <ConfirmButton label=label danger=danger pending=action.pending() error=Signal::derive(form_error(action.value(), &[]))/>
                </ActionForm>
            }
            .into_any()
        }
        Pending::Copy(from) => {
            let action = actions.copy;
            view! {
                <ActionForm action=action attr:class="confirm-form">
                    <input type="hidden" name="flag" value=key/>
                    <input type="hidden" name="from" value=from/>
                    <input type="hidden" name="to" value=environment/>
                    <input type="hidden" name="expected_version" value=version_now/>
                    <ConfirmButton label=label danger=danger pending=action.pending() error=Signal::derive(form_error(action.value(), &[]))/>
                </ActionForm>
            }
            .into_any()
        }
        Pending::Rollback(version) => {
            let action = actions.rollback;
            view! {
                <ActionForm action=action attr:class="confirm-form">
                    <input type="hidden" name="flag" value=key/>
                    <input type="hidden" name="environment" value=environment/>
                    <input type="hidden" name="version" value=version/>
                    <input type="hidden" name="expected_version" value=version_now/>
                    <ConfirmButton label=label danger=danger pending=action.pending() error=Signal::derive(form_error(action.value(), &[]))/>
                </ActionForm>
            }
            .into_any()
        }
        Pending::Archive => {
            let action = actions.archive;
            view! {
                <ActionForm action=action attr:class="confirm-form">
                    <input type="hidden" name="flag" value=key/>
                    <input type="hidden" name="archived" value=archived/>
                    <ConfirmButton label=label danger=danger pending=action.pending() error=Signal::derive(form_error(action.value(), &[]))/>
                </ActionForm>
            }
            .into_any()
        }
    }
}

/// A confirmation's button, with the call's error above it and its progress on it.
#[component]
fn ConfirmButton(
    label: String,
    danger: bool,
    #[prop(into)] pending: Signal<bool>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <ErrorText id="confirm-error" message=error/>
        <button type="submit" class=if danger { "danger" } else { "" } disabled=move || pending.get()>
            {move || if pending.get() { "Working…".to_string() } else { label.clone() }}
        </button>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ParamsMap {
        let mut map = ParamsMap::new();
        for (key, value) in pairs {
            map.insert(key.to_string(), value.to_string());
        }
        map
    }

    /// A flag in Beta, at version 3 in Production (1 company), with Staging open to everyone.
    fn flag() -> Subject {
        Subject {
            key: "checkout".into(),
            name: "Checkout".into(),
            environment: "production".into(),
            environment_name: "Production".into(),
            version: 3,
            current: "1 company".into(),
            archived: false,
            stage_id: 2,
            stages: vec![(1, "Internal".into()), (2, "Beta".into()), (3, "GA".into())],
            stage_changes: vec![(3, "Production".into(), "1 company".into(), "Everyone".into())],
            others: vec![OtherEnvironment {
                key: "staging".into(),
                name: "Staging".into(),
                summary: "Everyone".into(),
                changes: vec!["Some → Everyone".into(), "− companies acme".into()],
            }],
            versions: vec![(
                2,
                "No one".into(),
                vec!["Some → No one".into(), "− companies acme".into()],
            )],
        }
    }

    #[test]
    fn the_address_of_a_confirmation_reads_back_as_the_same_confirmation() {
        for pending in [
            Pending::Move(3),
            Pending::Copy("staging".into()),
            Pending::Rollback(2),
            Pending::Archive,
        ] {
            let href = pending.href("checkout");
            let (path, asks) = href.split_once('?').unwrap();
            assert_eq!(path, "/flags/checkout");
            let pairs: Vec<(&str, &str)> = asks
                .split('&')
                .map(|pair| pair.split_once('=').unwrap())
                .collect();
            assert_eq!(Pending::from_query(&query(&pairs)), Some(pending));
        }
        assert_eq!(
            Pending::from_query(&query(&[("confirm", "rollback"), ("version", "x")])),
            None
        );
        assert_eq!(Pending::from_query(&query(&[("confirm", "explode")])), None);
        assert_eq!(Pending::from_query(&query(&[])), None);
        for done in Done::ALL {
            assert_eq!(Done::from_query(&query(&[("done", done.code())])), Some(done));
        }
        assert_eq!(Done::from_query(&query(&[("done", "nothing")])), None);
    }

    #[test]
    fn each_confirmation_previews_what_it_changes() {
        let flag = flag();
        let moving = Preview::new(&Pending::Move(3), &flag).unwrap();
        assert_eq!(moving.title, "Move Checkout to GA?");
        assert_eq!(moving.changes, ["Production: 1 company → Everyone"]);
        let quiet = Preview::new(&Pending::Move(1), &flag).unwrap();
        assert!(quiet.changes.is_empty());
        assert!(quiet.lead.contains("only its stage changes"), "{}", quiet.lead);

        let copy = Preview::new(&Pending::Copy("staging".into()), &flag).unwrap();
        assert_eq!(copy.title, "Copy access from Staging to Production?");
        assert!(copy
            .lead
            .starts_with("Production now: 1 company. After the copy: Everyone"));
        assert_eq!(copy.changes, ["Some → Everyone", "− companies acme"]);

        let rollback = Preview::new(&Pending::Rollback(2), &flag).unwrap();
        assert_eq!(
            rollback.lead,
            "Now (version 3): 1 company. After: No one, as version 4."
        );
        assert_eq!(rollback.changes, ["Some → No one", "− companies acme"]);
        assert_eq!(rollback.confirm, "Roll back to version 2");

        let archive = Preview::new(&Pending::Archive, &flag).unwrap();
        assert!(archive.danger);
        assert_eq!(archive.changes, ["Production: 1 company", "Staging: Everyone"]);
        let restore = Preview::new(
            &Pending::Archive,
            &Subject {
                archived: true,
                ..flag.clone()
            },
        )
        .unwrap();
        assert_eq!(
            (restore.confirm.as_str(), restore.danger),
            ("Restore flag", false)
        );
    }

    #[test]
    fn an_old_or_forged_confirmation_offers_nothing_to_confirm() {
        let flag = flag();
        for pending in [
            Pending::Move(2),
            Pending::Move(9),
            Pending::Copy("production".into()),
            Pending::Rollback(3),
            Pending::Rollback(99),
        ] {
            assert!(Preview::new(&pending, &flag).is_err(), "{pending:?}");
        }
    }
}
