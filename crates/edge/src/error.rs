//! Why a request body was not read.

use std::time::Duration;

/// Why a request body was not read, or not read whole. Each binary turns it
/// into its own error answer; [`BodyError::status`] is the status to use.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the route allows (by `Content-Length`, before
    /// reading, or once the bytes read pass the limit).
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The route's limit in bytes.
        limit: usize,
    },
    /// Reading this body now would pass the budget of bytes being read at once.
    #[error("too many request bodies are being read at once; retry shortly")]
    OverBudget,
    /// The client did not send the whole body in time; nothing was accepted.
    #[error("the body was not received within {}s; nothing was accepted", after.as_secs())]
    TimedOut {
        /// The body-read timeout.
        after: Duration,
    },
    /// The connection failed while the body was read.
    #[error("the body could not be read: {0}")]
    Unreadable(String),
}

impl BodyError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            Self::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The error code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "body_too_large",
            Self::OverBudget => "over_body_budget",
            Self::TimedOut { .. } => "body_timeout",
            Self::Unreadable(_) => "unreadable_body",
        }
    }

    /// Seconds for `Retry-After`, for the errors a retry can cure.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::OverBudget => Some(1),
            _ => None,
        }
    }
}
