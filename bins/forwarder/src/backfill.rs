//! `tributary-forwarder backfill FILE|-`: queue an NDJSON file of webhook
//! envelopes (one per line) with a progress bar, then optionally deliver.
//!
//! The transform is the same as for live webhooks, so a line that was
//! already forwarded gets the same Segment `messageId` and is deduplicated by
//! Segment (within its ~24 h window).

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    time::Duration,
};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use tributary_outbound::{Dispatcher, DurableQueue, Submitted, Transform, TransformOutcome};

use crate::config::ForwarderConfig;

/// Lines queued per durable commit.
const CHUNK: usize = 1_000;
/// Invalid lines reported individually (the rest are only counted).
const REPORTED_ERRORS: usize = 50;

/// What a backfill did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillSummary {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Queued for delivery.
    pub queued: u64,
    /// Valid but not forwarded (type, filter, object recipient).
    pub skipped: u64,
    /// Over the size limit: kept as dead letters.
    pub dead_lettered: u64,
    /// Not valid envelopes.
    pub invalid: u64,
    /// Repeats of events queued, or accepted within the redelivery window:
    /// not queued again.
    pub duplicates: u64,
}

/// Options for [`backfill`].
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    /// The environment the events belong to.
    pub environment: String,
    /// After queuing, deliver until this environment's queue is empty.
    pub deliver: bool,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Queues every line of `input` (`-` for stdin).
pub async fn backfill(
    config: &ForwarderConfig,
    input: &Path,
    options: &BackfillOptions,
) -> anyhow::Result<BackfillSummary> {
    let env = config
        .environments
        .get(&options.environment)
        .with_context(|| {
            format!(
                "no environment named {:?} is configured",
                options.environment
            )
        })?;
    if env.write_key.is_none() {
        bail!(
            "environment {:?} has no write key, so it is not forwarded",
            options.environment
        );
    }
    let transform = Transform::new(config.transform.clone())?;
    let queue = config.open_queue()?;
    let (reader, total): (Box<dyn Read + Send>, Option<u64>) = if input == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        let len = file.metadata().map(|m| m.len()).ok();
        (Box::new(file), len)
    };
    let bar = if !options.progress {
        ProgressBar::hidden()
    } else if let Some(total) = total {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::new_spinner()
    };
    let mut summary = BackfillSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .context("reading the input")?;
        if read == 0 {
            break;
        }
        number += 1;
        bar.inc(read as u64);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let result = transform
            .apply_to_body(&line, &env.display_name)
            .and_then(|o| match o {
                TransformOutcome::Forward(m) => m.encode().map(Some),
                TransformOutcome::Skip(_) => Ok(None),
            });
        match result {
            Ok(Some(encoded)) => chunk.push(encoded),
            Ok(None) => summary.skipped += 1,
            Err(e) => {
                summary.invalid += 1;
                if summary.invalid <= REPORTED_ERRORS as u64 {
                    bar.suspend(|| eprintln!("line {number}: {e}"));
                }
            }
        }
        if chunk.len() >= CHUNK {
            flush(
                &queue,
                config,
                &options.environment,
                &mut chunk,
                &mut summary,
            )
            .await?;
            bar.set_message(format!("{} queued", summary.queued));
        }
    }
    flush(
        &queue,
        config,
        &options.environment,
        &mut chunk,
        &mut summary,
    )
    .await?;
    bar.finish_with_message(format!("{} queued", summary.queued));
    if options.deliver {
        deliver(config, &queue, &options.environment, options.progress).await?;
    }
    Ok(summary)
}

async fn flush(
    queue: &DurableQueue,
    config: &ForwarderConfig,
    environment: &str,
    chunk: &mut Vec<tributary_outbound::EncodedMessage>,
    summary: &mut BackfillSummary,
) -> anyhow::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let submitted = queue
        .submit(
            environment,
            std::mem::take(chunk),
            config.segment.max_event_bytes,
        )
        .await?;
    for s in submitted {
        match s {
            Submitted::Queued(_) => summary.queued += 1,
            Submitted::DeadLettered(_) => summary.dead_lettered += 1,
            Submitted::Duplicate(_) => summary.duplicates += 1,
        }
    }
    Ok(())
}

/// Runs a dispatcher for one environment until its queue is empty (or
/// Ctrl-C), for when no `serve` process is running.
async fn deliver(
    config: &ForwarderConfig,
    queue: &DurableQueue,
    environment: &str,
    progress: bool,
) -> anyhow::Result<()> {
    let routes = config
        .routes()
        .into_iter()
        .filter(|r| r.environment == environment)
        .collect();
    let dispatcher = Dispatcher::new(queue.clone(), config.segment.clone(), routes)?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(stop.clone()));
    let start = queue
        .stats()
        .await?
        .pending
        .get(environment)
        .copied()
        .unwrap_or(0);
    let bar = if progress {
        ProgressBar::new(start)
    } else {
        ProgressBar::hidden()
    };
    loop {
        let left = queue
            .stats()
            .await?
            .pending
            .get(environment)
            .copied()
            .unwrap_or(0);
        bar.set_position(start.saturating_sub(left));
        if left == 0 {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    bar.finish();
    stop.cancel();
    let _ = task.await;
    Ok(())
}
