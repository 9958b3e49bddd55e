//! Per-batch aggregates: counters and known event types are upserted once per
//! group commit, not once per event, so a hot source costs one row write per batch.

use std::collections::HashMap;

use crate::rows::day_of;

/// What one group commit adds to `source_stats` and `known_event_types`.
#[derive(Debug, Default)]
pub(crate) struct BatchStats {
    /// (source, environment, day) -> (count, last received ms).
    pub(crate) sources: HashMap<(String, String, i64), (i64, i64)>,
    /// (source, environment, event type) -> last seen ms.
    pub(crate) types: HashMap<(String, String, String), i64>,
}

impl BatchStats {
    pub(crate) fn record(
        &mut self,
        source: Option<&str>,
        environment: Option<&str>,
        event_type: Option<&str>,
        received_ms: i64,
    ) {
        let (Some(source), Some(environment)) = (source, environment) else {
            return;
        };
        let e = self
            .sources
            .entry((
                source.to_owned(),
                environment.to_owned(),
                day_of(received_ms),
            ))
            .or_insert((0, received_ms));
        e.0 += 1;
        e.1 = e.1.max(received_ms);
        if let Some(t) = event_type {
            let last = self
                .types
                .entry((source.to_owned(), environment.to_owned(), t.to_owned()))
                .or_insert(received_ms);
            *last = (*last).max(received_ms);
        }
    }

    pub(crate) fn absorb(&mut self, other: BatchStats) {
        for (k, (count, last)) in other.sources {
            let e = self.sources.entry(k).or_insert((0, last));
            e.0 += count;
            e.1 = e.1.max(last);
        }
        for (k, last) in other.types {
            let e = self.types.entry(k).or_insert(last);
            *e = (*e).max(last);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.types.is_empty()
    }
}
