//! Why the pipeline refused a request.

use tributary_adapter::{AdapterError, ErrorCategory};
use tributary_script::ScriptError;
use tributary_store::StoreError;

use crate::RejectedItem;

/// A refused request. Every variant but `Store` was logged in the event log as
/// `rejected`; the service maps each to its status (docs/product-decisions.md,
/// "Answers").
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// No source environment has this token.
    #[error("no source is configured for this URL")]
    UnknownToken,
    /// No source environment has this write key, or none was presented.
    #[error("{message}")]
    UnknownWriteKey {
        /// What was wrong.
        message: String,
    },
    /// The adapter refused the whole request.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// Every item of the body was refused.
    #[error("no event in the request could be accepted")]
    AllItemsRejected {
        /// Each item's problem.
        items: Vec<RejectedItem>,
    },
    /// The source environment's preprocess script did not verify the
    /// request while enforced, or failed (docs/preprocess-scripts.md, "Errors and answers").
    #[error("{message}")]
    Script {
        /// `script_unverified`, or the script error's code.
        code: &'static str,
        /// What the sender is told: the script and the line, never what
        /// its exception said.
        message: String,
        /// Enforce was on: the answer is 401, else 422.
        enforced: bool,
    },
    /// Every preprocess script thread is busy: nothing was accepted, the
    /// sender should retry.
    #[error(transparent)]
    ScriptBusy(ScriptError),
    /// The store could not take the events (overloaded or down): nothing was
    /// acknowledged, the sender should retry.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PipelineError {
    /// The error category the answer's status comes from, for adapter-like errors.
    pub fn category(&self) -> Option<ErrorCategory> {
        match self {
            Self::Adapter(e) => Some(e.category()),
            Self::AllItemsRejected { .. } => Some(ErrorCategory::Schema),
            Self::UnknownWriteKey { .. } => Some(ErrorCategory::Unauthorized),
            Self::Script { enforced: true, .. } => Some(ErrorCategory::Unauthorized),
            Self::Script {
                enforced: false, ..
            } => Some(ErrorCategory::Schema),
            Self::UnknownToken | Self::ScriptBusy(_) | Self::Store(_) => None,
        }
    }
}
