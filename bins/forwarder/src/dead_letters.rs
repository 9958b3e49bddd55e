//! `tributary-forwarder dead-letters list|redrive|prune`.

use std::io::Write;

use tokio_util::sync::CancellationToken;
use tributary_outbound::{DeadLetterFilter, DurableQueue, PruneReport, Pruner};

use crate::config::ForwarderConfig;

/// Prints dead letters, oldest first: one line each, or one JSON object per
/// line with `json`.
pub async fn list(
    config: &ForwarderConfig,
    filter: DeadLetterFilter,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let queue = DurableQueue::open(&config.queue_path)?;
    let dead = queue.dead_letters(filter).await?;
    for d in &dead {
        if json {
            let payload: serde_json::Value = serde_json::from_slice(&d.payload)
                .unwrap_or_else(|_| String::from_utf8_lossy(&d.payload).into());
            let line = serde_json::json!({
                "id": d.id, "environment": d.environment, "messageId": d.message_id,
                "reason": d.reason, "status": d.status,
                "enqueuedAt": d.enqueued_at.to_rfc3339(), "failedAt": d.failed_at.to_rfc3339(),
                "payload": payload,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                d.id,
                d.environment,
                d.message_id,
                d.failed_at.to_rfc3339(),
                d.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                d.reason
            )?;
        }
    }
    Ok(dead.len())
}

/// Moves matching dead letters back into the queue; a running `serve`
/// process picks them up within a second.
pub async fn redrive(config: &ForwarderConfig, filter: DeadLetterFilter) -> anyhow::Result<usize> {
    let queue = DurableQueue::open(&config.queue_path)?;
    Ok(queue.redrive(filter).await?)
}

/// One pruning pass now, with the configured retention (what `serve` does at
/// start and every `prune_interval`); safe beside a running `serve`.
pub async fn prune(config: &ForwarderConfig) -> anyhow::Result<PruneReport> {
    let queue = DurableQueue::open(&config.queue_path)?;
    let pruner = Pruner::new(queue, config.retention.clone())?;
    Ok(pruner.pass(&CancellationToken::new()).await?)
}
