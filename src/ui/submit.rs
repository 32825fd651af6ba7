//! How the flag page's access and remote-config forms make their change: now, at a time ("Apply
//! at"), for review in a protected environment (a change request), or, by an admin who gives a
//! reason, without review. Each answers with the notice the page shows.

#[cfg(feature = "ssr")]
use super::error::AppError;

/// The optional fields of a form that says how its change is made.
#[cfg(feature = "ssr")]
pub struct Submission {
    /// "Apply at": a time for a scheduled change.
    pub apply_at: Option<String>,
    /// Present (maybe empty) when the form is for a protected environment: the note for the
    /// reviewers.
    pub review_note: Option<String>,
    /// An admin's reason to change a protected environment without review.
    pub bypass_reason: Option<String>,
    /// Present when the request is filed as a draft, to be submitted for review later.
    pub review_draft: Option<String>,
    /// The caller's open request (by id) this change replaces, instead of filing another.
    pub update_request: Option<String>,
}

#[cfg(feature = "ssr")]
impl Submission {
    pub fn new(
        apply_at: Option<String>,
        review_note: Option<String>,
        bypass_reason: Option<String>,
        (review_draft, update_request): (Option<String>, Option<String>),
    ) -> Self {
        Submission {
            apply_at,
            review_note,
            bypass_reason,
            review_draft,
            update_request,
        }
    }
}

/// The change `planned` describes, made now.
#[cfg(feature = "ssr")]
fn direct(flag: String, planned: crate::model::PlannedChange) -> Result<crate::service::Change, AppError> {
    use crate::model::PlannedChange;
    use crate::service::{AccessChange, Change};
    match planned {
        PlannedChange::SetAccess {
            environment,
            rules,
            based_on,
        } => Ok(Change::SetAccess {
            flag,
            environment,
            change: AccessChange::Set(rules),
            expected_version: Some(based_on),
        }),
        PlannedChange::SetRemoteConfig {
            environment,
            variants,
            based_on,
        } => Ok(Change::SetRemoteConfig {
            flag,
            environment,
            variants,
            expected_version: Some(based_on),
        }),
        _ => Err(AppError::general(
            "this form changes access or remote config only",
        )),
    }
}

/// Makes `planned` as the form says; `saved` is the notice of a change made now.
#[cfg(feature = "ssr")]
pub async fn submit(
    flag: String,
    planned: crate::model::PlannedChange,
    how: Submission,
    saved: &str,
) -> Result<String, AppError> {
    use crate::service::Change;
    if let Some(at) = super::schedule::apply_at(how.apply_at.as_deref())? {
        return super::schedule::schedule(flag, at, planned).await;
    }
    let (service, actor) = super::server::caller()?;
    let bypass = how.bypass_reason.filter(|reason| !reason.trim().is_empty());
    if let (Some(note), None) = (how.review_note, &bypass) {
        if let Some(id) = how
            .update_request
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
        {
            let id: i64 = id
                .parse()
                .map_err(|_| AppError::general("choose a request to update"))?;
            service
                .apply(&actor, Change::EditChangeRequest { id, planned, note })
                .await?;
            return Ok(format!(
                "Updated change request #{id}; its approvals were withdrawn and it waits for review again."
            ));
        }
        let draft = how.review_draft.is_some();
        let change = Change::FileChangeRequest {
            flag,
            planned,
            note,
            draft,
        };
        let id = service.apply(&actor, change).await?.into_id()?;
        return Ok(match draft {
            true => {
                format!("Saved change request #{id} as a draft. Submit it for review under Change requests.")
            }
            false => format!(
                "Filed change request #{id}. It waits under Change requests until other members approve it."
            ),
        });
    }
    let change = direct(flag, planned)?;
    let change = match bypass {
        Some(reason) => Change::Bypass {
            reason,
            change: Box::new(change),
        },
        None => change,
    };
    service.apply(&actor, change).await?;
    Ok(saved.to_string())
}
