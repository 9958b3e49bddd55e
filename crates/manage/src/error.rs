//! Why a management operation was refused.

use tributary_core::config::DocumentError;
use tributary_store::StoreError;

/// Every way a management operation can fail. Each maps to one HTTP status
/// (404, 409, 412, 422, 503) in the API.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No such source, environment or mapping.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// `source`, `environment` or `mapping`.
        what: &'static str,
        /// What was asked for.
        id: String,
    },
    /// The change was made against an older version (`If-Match`).
    #[error("`{key}` changed since it was read (now at {current})")]
    Stale {
        /// The source.
        key: String,
        /// Its current ETag.
        current: String,
    },
    /// The change would make an invalid source; nothing was changed.
    #[error("the change is invalid: {}", .0.iter().map(|e| format!("{}: {}", e.pointer, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<DocumentError>),
    /// The change conflicts with another source (a shared credential, a
    /// taken key) or with the source's state (mappings left on delete).
    #[error("{message}")]
    Conflict {
        /// JSON pointer into the request, when one field is the cause.
        pointer: String,
        /// What conflicts.
        message: String,
    },
    /// The source is defined in the configuration file: change it there.
    #[error(
        "source `{0}` is defined in the configuration file; change it there (only a mapping's active switch changes live)"
    )]
    ManagedByFile(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ManageError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Stale { .. } => "precondition_failed",
            Self::Invalid(_) => "invalid_configuration",
            Self::Conflict { .. } => "conflict",
            Self::ManagedByFile(_) => "managed_by_file",
            Self::Store(_) => "store_unavailable",
        }
    }

    /// One invalid field, as a JSON pointer and the problem.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![DocumentError {
            pointer: pointer.into(),
            message: message.into(),
        }])
    }
}
