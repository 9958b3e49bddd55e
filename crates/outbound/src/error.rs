//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// Input that is not JSON at all.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),

    /// Valid JSON that breaks the expected shape: names the field (a JSON
    /// pointer into the input) and the problem.
    #[error("invalid field {field}: {problem}")]
    InvalidField {
        /// JSON pointer into the input, e.g. `/data/recipient`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A Segment message that Segment would accept with a 200 and then drop.
    #[error("invalid Segment message, field {field}: {problem}")]
    InvalidMessage {
        /// JSON pointer into the Segment message, e.g. `/userId`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A serialized message over the per-event limit.
    #[error("message is {size} bytes, over the {limit}-byte limit per event")]
    MessageTooLarge {
        /// Serialized size in bytes.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },

    /// Settings that cannot work (a limit of zero, an unparsable host ...).
    #[error("invalid setting {key}: {problem}")]
    InvalidSetting {
        /// The setting's key as written in the configuration.
        key: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The durable queue failed (disk full, corrupt file, closed).
    #[error("queue: {0}")]
    Queue(#[from] QueueFailure),

    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

impl OutboundError {
    /// The JSON pointer of the offending field, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } | Self::InvalidMessage { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn invalid_message(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidMessage {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A failure of the durable queue, with the operation that failed.
#[derive(Debug)]
pub struct QueueFailure {
    /// What the queue was doing.
    pub operation: &'static str,
    /// The underlying problem.
    pub detail: String,
}

impl fmt::Display for QueueFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.detail)
    }
}

impl std::error::Error for QueueFailure {}

impl QueueFailure {
    pub(crate) fn new(operation: &'static str, detail: impl fmt::Display) -> Self {
        Self {
            operation,
            detail: detail.to_string(),
        }
    }
}
