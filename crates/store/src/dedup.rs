//! The dedup index's shared rules (docs/product-decisions.md, "Dedup"); the
//! backends hold the rows.
//!
//! A key's scope (key + event type + source + environment) is hashed to a
//! 64-bit integer, the primary key of a narrow `dedup` table. The full scope
//! is not stored twice: a hit is verified against the event it points to.

use sha2::{Digest, Sha256};
use tributary_core::dedup::DedupScope;

/// The scope's row key: the first 8 bytes of SHA-256 over the length-prefixed
/// scope fields, so it is stable across processes, builds and backends.
pub(crate) fn scope_hash(scope: &DedupScope) -> i64 {
    let mut h = Sha256::new();
    for part in [
        &scope.environment,
        &scope.source,
        &scope.event_type,
        &scope.key,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// The dedup row found for a hash, joined with the event it points to.
#[derive(Debug)]
pub(crate) struct ExistingKey {
    pub(crate) event_id: String,
    pub(crate) expires_at_ms: i64,
    /// The scope of the event the row points to; `None` when it was pruned.
    pub(crate) scope: Option<(String, String, String, String)>,
    /// Planned (not skipped) actions of that event.
    pub(crate) planned: i64,
    /// Of those, the ones that failed permanently.
    pub(crate) failed: i64,
}

/// What to do with an event whose scope was checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// First time seen: insert the key.
    Insert,
    /// Seen, but the window passed or every action failed: point the key here.
    Replace,
    /// A duplicate of this event.
    Duplicate(String),
    /// The hash is taken by a different scope (a 64-bit collision): the event
    /// runs without dedup, like an event without a key.
    Unchecked,
}

/// Decides for `scope`, received at `received_ms`, given the row found.
pub(crate) fn judge(
    scope: &DedupScope,
    received_ms: i64,
    existing: Option<&ExistingKey>,
) -> Verdict {
    let Some(existing) = existing else {
        return Verdict::Insert;
    };
    let Some((environment, source, event_type, key)) = &existing.scope else {
        // The event it pointed to was pruned: the key is free again.
        return Verdict::Replace;
    };
    // The stored columns went through `rows::clean`, so compare cleaned values.
    let clean = crate::rows::clean;
    if *environment != clean(&scope.environment)
        || *source != clean(&scope.source)
        || *event_type != clean(&scope.event_type)
        || *key != clean(&scope.key)
    {
        return Verdict::Unchecked;
    }
    if existing.expires_at_ms <= received_ms {
        return Verdict::Replace;
    }
    // Re-run when every action of the earlier event failed permanently
    // (docs/product-decisions.md, "Dedup"). An earlier event with nothing to
    // run is simply a duplicate.
    if existing.planned > 0 && existing.failed == existing.planned {
        return Verdict::Replace;
    }
    Verdict::Duplicate(existing.event_id.clone())
}

/// When a key checked at `received_ms` stops blocking repeats.
pub(crate) fn expires_at(scope: &DedupScope, received_ms: i64) -> i64 {
    let window = i64::try_from(scope.window.as_millis()).unwrap_or(i64::MAX);
    received_ms.saturating_add(window)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn scope(key: &str) -> DedupScope {
        DedupScope {
            key: key.into(),
            event_type: "signup".into(),
            source: "web".into(),
            environment: "production".into(),
            window: Duration::from_secs(60),
        }
    }

    fn existing(planned: i64, failed: i64, expires: i64) -> ExistingKey {
        ExistingKey {
            event_id: "E1".into(),
            expires_at_ms: expires,
            scope: Some((
                "production".into(),
                "web".into(),
                "signup".into(),
                "k".into(),
            )),
            planned,
            failed,
        }
    }

    #[test]
    fn hashes_separate_fields() {
        let a = scope("ab");
        let mut b = scope("b");
        b.event_type = "signupa".into();
        assert_ne!(scope_hash(&a), scope_hash(&b));
        assert_eq!(scope_hash(&a), scope_hash(&scope("ab")));
    }

    #[test]
    fn verdicts_follow_the_dedup_rules() {
        let s = scope("k");
        assert_eq!(judge(&s, 0, None), Verdict::Insert);
        assert_eq!(
            judge(&s, 10, Some(&existing(1, 0, 100))),
            Verdict::Duplicate("E1".into())
        );
        assert_eq!(judge(&s, 100, Some(&existing(1, 0, 100))), Verdict::Replace);
        assert_eq!(judge(&s, 10, Some(&existing(2, 2, 100))), Verdict::Replace);
        assert_eq!(
            judge(&s, 10, Some(&existing(2, 1, 100))),
            Verdict::Duplicate("E1".into())
        );
        assert_eq!(
            judge(&s, 10, Some(&existing(0, 0, 100))),
            Verdict::Duplicate("E1".into())
        );
        assert_eq!(
            judge(&scope("other"), 10, Some(&existing(1, 0, 100))),
            Verdict::Unchecked
        );
        let pruned = ExistingKey {
            scope: None,
            ..existing(1, 0, 100)
        };
        assert_eq!(judge(&s, 10, Some(&pruned)), Verdict::Replace);
    }
}
