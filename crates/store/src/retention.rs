//! Background pruning of the logs, by default after 30 days
//! (docs/product-decisions.md, "Guarantees").

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::task::JoinHandle;

use crate::{PruneReport, Retention, StoreError};

/// Rows per prune transaction: small, so a prune never holds the writer long.
pub const PRUNE_BATCH: usize = 500;

/// Prunes everything older than `days`, batch by batch, until nothing is left.
pub async fn prune_older_than(store: &dyn Retention, days: u32) -> Result<PruneReport, StoreError> {
    let now = Utc::now();
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let mut total = PruneReport::default();
    loop {
        let r = store.prune(cutoff, now, PRUNE_BATCH).await?;
        total.events += r.events;
        total.dedup_keys += r.dedup_keys;
        if r.events == 0 && r.dedup_keys == 0 {
            return Ok(total);
        }
        // Lets queued appends in between batches.
        tokio::task::yield_now().await;
    }
}

/// Runs [`prune_older_than`] every `every` until the task is aborted.
pub fn spawn_retention(store: Arc<dyn Retention>, days: u32, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match prune_older_than(store.as_ref(), days).await {
                Ok(r) if r.events > 0 || r.dedup_keys > 0 => {
                    tracing::info!(
                        events = r.events,
                        dedup_keys = r.dedup_keys,
                        "Pruned old log entries."
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Pruning failed; will retry at the next interval.")
                }
            }
        }
    })
}
