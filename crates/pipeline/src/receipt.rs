//! What the pipeline did with one request, for the answer and the logs.

use serde::Serialize;
use tributary_adapter::{ErrorDetail, ItemError, VerificationOutcome};
use tributary_core::{config::SourceKind, event::EventId};

/// One request's result: how many events were accepted, how many were
/// duplicates, and which items were refused and why.
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    /// The source key.
    pub source: String,
    /// The environment slug.
    pub environment: String,
    /// The source kind (picks the answer's shape).
    #[serde(skip)]
    pub kind: SourceKind,
    /// Events stored and planned.
    pub accepted: usize,
    /// Events that repeated a key within the dedup window.
    pub duplicates: usize,
    /// Items refused, with their position and problem.
    pub rejected: Vec<RejectedItem>,
    /// Actions this request put in the outbox for the workers: the planned
    /// actions of the accepted events, less those the store ran at append.
    /// Zero means the workers have nothing new to claim.
    #[serde(skip)]
    pub queued: usize,
    /// The event-log ids written, in body order (accepted and duplicates).
    #[serde(skip)]
    pub event_ids: Vec<EventId>,
    /// Verification outcome.
    #[serde(skip)]
    pub verification: VerificationOutcome,
}

/// One refused item of a batch.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedItem {
    /// Position in the batch.
    pub index: usize,
    /// The problem, in the error shape of docs/product-decisions.md, "Answers".
    #[serde(flatten)]
    pub error: ErrorDetail,
}

impl From<&ItemError> for RejectedItem {
    fn from(e: &ItemError) -> Self {
        Self {
            index: e.index,
            error: e.detail(),
        }
    }
}
