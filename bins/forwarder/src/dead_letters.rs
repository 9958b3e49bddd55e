//! `tributary-forwarder dead-letters list|redrive|prune`.

use std::{collections::BTreeSet, io::Write};

use anyhow::bail;
use tokio_util::sync::CancellationToken;
use tributary_outbound::{DeadLetterFilter, NotForwarded, Pruner, REDRIVE_BATCH, RetentionReport};

use crate::config::ForwarderConfig;

/// Prints dead letters, oldest first: one line each, or one JSON object per
/// line with `json`.
pub async fn list(
    config: &ForwarderConfig,
    filter: DeadLetterFilter,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let queue = config.open_queue()?;
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

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedriveSummary {
    /// Dead letters moved back to the queue.
    pub requeued: usize,
    /// Dead letters left where they are (only with `--all`) because their
    /// environment is not forwarded: environment, count, why.
    pub skipped: Vec<(String, u64, NotForwarded)>,
}

/// Moves matching dead letters back into the queue; a running `serve`
/// process picks them up within a second.
///
/// Dead letters of an environment this configuration does not forward
/// (no write key, or not configured) are never re-queued: no route would
/// send them, and `serve` would move them straight back to the dead letters.
/// Asking for one by environment or id is refused naming the environment;
/// `--all` (no filter) leaves them and reports them in
/// [`RedriveSummary::skipped`].
pub async fn redrive(
    config: &ForwarderConfig,
    filter: DeadLetterFilter,
) -> anyhow::Result<RedriveSummary> {
    let forwarding = config.forwarding();
    let queue = config.open_queue()?;
    let mut summary = RedriveSummary::default();
    if filter.environment.is_none() && filter.ids.is_none() {
        for (environment, count) in queue.dead_letter_counts().await? {
            if let Some(why) = forwarding.why_not(&environment) {
                summary.skipped.push((environment, count, why));
                continue;
            }
            let one = DeadLetterFilter {
                environment: Some(environment),
                ..filter.clone()
            };
            summary.requeued += queue.redrive(one).await?;
        }
        // Rows marked by an interrupted redrive of any environment.
        while queue.finish_redrives(REDRIVE_BATCH).await? > 0 {}
        return Ok(summary);
    }
    let environments: BTreeSet<String> = match (&filter.environment, &filter.ids) {
        (Some(environment), None) => BTreeSet::from([environment.clone()]),
        _ => queue
            .dead_letters(filter.clone())
            .await?
            .into_iter()
            .map(|d| d.environment)
            .collect(),
    };
    for environment in &environments {
        if let Some(why) = forwarding.why_not(environment) {
            bail!(
                "refusing to redrive dead letters of environment {environment}: {}; \
                 they would return to the dead letters. Give it a write key in the \
                 configuration, restart `serve`, then redrive",
                explain(environment, why)
            );
        }
    }
    summary.requeued = queue.redrive(filter).await?;
    Ok(summary)
}

/// Why `environment` is not forwarded, for an operator.
pub fn explain(environment: &str, why: NotForwarded) -> String {
    match why {
        NotForwarded::NoWriteKey => {
            format!(
                "it has no write key ([environments.{environment}] write_key is absent or empty)"
            )
        }
        NotForwarded::NotConfigured => {
            format!("it is not configured (no [environments.{environment}])")
        }
    }
}

/// One pruning pass now, with the configured retention (what `serve` does at
/// start and every `prune_interval`); safe beside a running `serve`.
pub async fn prune(config: &ForwarderConfig) -> anyhow::Result<RetentionReport> {
    let queue = config.open_queue()?;
    let pruner = Pruner::new(queue, config.retention.clone())?;
    Ok(pruner.pass(&CancellationToken::new()).await?)
}
