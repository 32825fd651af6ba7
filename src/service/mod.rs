//! Business operations, shared by server functions, the CLI and the API.
//!
//! Every change follows the same path: validate, write in one transaction together with its
//! audit entry, commit. Errors carry the field they concern so forms can show them in place.

pub mod config_file;
pub mod flags;
pub mod keys;
pub mod members;
pub mod stages;

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Who makes a change, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub member_id: Option<i64>,
    pub label: String,
}

impl Actor {
    pub fn member(member: &crate::model::member::MemberView) -> Actor {
        Actor {
            member_id: Some(member.id),
            label: member.email.clone(),
        }
    }

    /// Changes made on the command line of the server machine.
    pub fn cli() -> Actor {
        Actor {
            member_id: None,
            label: "command line".into(),
        }
    }

    pub fn system(label: &str) -> Actor {
        Actor {
            member_id: None,
            label: label.into(),
        }
    }
}

/// A failure a caller can act on. `Invalid` names the form field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ServiceError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    TooManyAttempts(String),
    #[error("something went wrong on the server; the change was not saved")]
    Internal,
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => ServiceError::Conflict(message),
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            other => {
                tracing::error!(error = %other, "store error");
                ServiceError::Internal
            }
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
