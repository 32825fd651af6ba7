//! The service's one error type: what a caller (a form, the CLI, the API) can act on.

use serde::{Deserialize, Serialize};

use super::access::Refusal;
use super::store::StoreError;

/// A failure a caller can act on. `Invalid` names the form field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ServiceError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may not do this (not signed in, or a role too low).
    #[error(transparent)]
    Denied(#[from] Refusal),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    TooManyAttempts(String),
    /// A cap on what is stored is reached (companies or users of an environment).
    #[error("{0}")]
    LimitReached(String),
    /// Too much work is already waiting; the same request may succeed a moment later.
    #[error("{0}")]
    Busy(String),
    /// Stored data that does not decode; the message names the table and the row.
    #[error("stored data cannot be read ({0}); ask an admin to repair or replace it")]
    Corrupt(String),
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
            StoreError::Corrupt(row) => {
                tracing::error!(table = row.table, id = %row.id, reason = %row.reason, "a stored row cannot be read");
                ServiceError::Corrupt(row.to_string())
            }
            other => {
                tracing::error!(error = %other, "store error");
                ServiceError::Internal
            }
        }
    }
}

impl From<super::store::CorruptRow> for ServiceError {
    fn from(row: super::store::CorruptRow) -> Self {
        StoreError::Corrupt(row).into()
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
