//! Which environments a running service delivers, and why the others are
//! not delivered.
//!
//! Entries are queued only for environments with a write key, but the queue
//! outlives the configuration: an operator may remove an environment, or its
//! write key, while entries for it are still queued. No dispatcher route reads
//! them, so they would sit in the queue for good, looking like a stuck
//! forwarder. [`crate::Pruner::with_forwarding`] moves them to the dead
//! letters instead (reason [`NOT_FORWARDED`]), where retention applies and a
//! redrive brings them back once the write key is restored.
//!
//! ```
//! use tributary_outbound::{Forwarding, NotForwarded};
//!
//! let forwarding = Forwarding::new([("production".to_owned(), true), ("staging".to_owned(), false)]);
//! assert_eq!(forwarding.why_not("production"), None);
//! assert_eq!(forwarding.why_not("staging"), Some(NotForwarded::NoWriteKey));
//! assert_eq!(forwarding.why_not("qa"), Some(NotForwarded::NotConfigured));
//! assert_eq!(
//!     NotForwarded::NotConfigured.reason("qa"),
//!     "not_forwarded: environment qa is not configured"
//! );
//! ```

use std::collections::BTreeMap;

/// The code that starts the reason of dead letters moved because their
/// environment is not forwarded.
pub const NOT_FORWARDED: &str = "not_forwarded";

/// Why an environment's entries are not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotForwarded {
    /// Configured, without a write key (absent or empty).
    NoWriteKey,
    /// Absent from the configuration.
    NotConfigured,
}

impl NotForwarded {
    /// The dead-letter reason for `environment`: [`NOT_FORWARDED`], then
    /// what the operator has to fix.
    pub fn reason(self, environment: &str) -> String {
        match self {
            Self::NoWriteKey => {
                format!("{NOT_FORWARDED}: environment {environment} has no write key")
            }
            Self::NotConfigured => {
                format!("{NOT_FORWARDED}: environment {environment} is not configured")
            }
        }
    }
}

/// The configured environments and whether each is forwarded (has a write
/// key); any other environment is not configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarding {
    configured: BTreeMap<String, bool>,
}

impl Forwarding {
    /// From `(environment, has a write key)` pairs.
    pub fn new(environments: impl IntoIterator<Item = (String, bool)>) -> Self {
        Self {
            configured: environments.into_iter().collect(),
        }
    }

    /// `None` when `environment` is forwarded, else why it is not.
    pub fn why_not(&self, environment: &str) -> Option<NotForwarded> {
        match self.configured.get(environment) {
            Some(true) => None,
            Some(false) => Some(NotForwarded::NoWriteKey),
            None => Some(NotForwarded::NotConfigured),
        }
    }
}
