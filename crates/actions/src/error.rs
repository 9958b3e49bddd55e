//! The crate's error type.

/// What can go wrong setting up sinks. Executing an action never errors: every
/// failure is an [`crate::Outcome`] recorded in the action log.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// A sink URL that cannot be used.
    #[error("invalid sink URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why.
        reason: String,
    },
}
