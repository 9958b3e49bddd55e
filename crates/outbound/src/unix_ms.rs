//! Times as the queue file stores them: Unix milliseconds.

use chrono::{DateTime, Utc};

/// A stored time; one out of chrono's range reads as the epoch.
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
