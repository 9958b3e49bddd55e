//! Why a console request failed, and the page that says so.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use tributary_manage::ManageError;
use tributary_store::StoreError;

/// A console request that could not be answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No such page, source, environment, mapping or event.
    #[error("{0}")]
    NotFound(String),
    /// A parameter could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// A state-changing request without a valid CSRF token or from another site.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The management layer refused a change (or its store failed).
    #[error(transparent)]
    Manage(ManageError),
}

impl From<ManageError> for ConsoleError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Store(e) => Self::Store(e),
            other => Self::Manage(other),
        }
    }
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Store(StoreError::Overloaded) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Manage(e) => manage_status(e),
        }
    }
}

/// The status the admin API gives the same refusal.
pub(crate) fn manage_status(e: &ManageError) -> StatusCode {
    match e {
        ManageError::NotFound { .. } => StatusCode::NOT_FOUND,
        ManageError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
        ManageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ManageError::Conflict { .. } | ManageError::ManagedByFile(_) => StatusCode::CONFLICT,
        ManageError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        ManageError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Store(e) => {
                tracing::warn!(error = %e, "Console page failed on the store.");
                "the store could not answer; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        let page = crate::layout::bare(
            status.canonical_reason().unwrap_or("Error"),
            maud::html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p { (message) }
                p { a href=(crate::layout::link("/sources")) { "Back to the console" } }
            },
        );
        (status, Html(page.into_string())).into_response()
    }
}
