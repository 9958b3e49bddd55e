//! Dead-letter retention: how long dead letters are kept and how many, and
//! the background task that prunes the rest.
//!
//! Dead letters are the only rows that accumulate in the queue file
//! (delivered entries are deleted on Segment's 2xx), so without a policy a
//! forwarder with a wrong write key, or a sender of oversize events, grows
//! its file without bound. [`Pruner`] removes, in bounded transactions,
//! dead letters older than [`RetentionPolicy::max_age`] and then, in each
//! environment, the oldest beyond [`RetentionPolicy::max_count`]; rows being redriven are never
//! touched (see [`crate::dead_letter`]). Given a [`crate::Forwarding`]
//! ([`Pruner::with_forwarding`]), a pass first moves queued entries of
//! environments that are not forwarded to the dead letters, in the same
//! bounded steps, so they fall under retention instead of staying queued
//! with no route to send them. A pass also forgets the `messageId`s the
//! queue remembers past its [`crate::RedeliveryWindow`] (see
//! [`crate::RedeliveryWindow`]), in steps of `batch_size`.
//!
//! ```
//! use tokio_util::sync::CancellationToken;
//! use tributary_outbound::{Burial, DurableQueue, NewEntry, Pruner, RetentionPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let queue = DurableQueue::open(dir.path().join("queue.db"))?;
//! let refused = |n: usize| (
//!     NewEntry { environment: "production".into(), message_id: format!("knock-{n}"),
//!                payload: b"{}".to_vec() },
//!     Burial { reason: "Segment answered 401".into(), status: Some(401) },
//! );
//! queue.dead_letter_new((0..5).map(refused).collect()).await?;
//! // Keep 30 days of dead letters, and at most 3 of them.
//! let policy = RetentionPolicy { max_count: Some(3), ..RetentionPolicy::default() };
//! let pruner = Pruner::new(queue.clone(), policy)?;
//! let report = pruner.pass(&CancellationToken::new()).await?;
//! assert_eq!((report.by_age, report.by_count), (0, 2));
//! assert_eq!(queue.stats().await?.dead_letters, 3);
//! // In a service: `tokio::spawn(pruner.run(shutdown_token))`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use chrono::Utc;
use metrics::counter;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    DurableQueue, Forgotten, OutboundError,
    dead_letter::{Burial, Pruned},
    forwarding::Forwarding,
};

/// Default [`RetentionPolicy::max_age`]: 30 days.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// Default [`RetentionPolicy::max_count`].
pub(crate) const DEFAULT_MAX_COUNT: u64 = 100_000;
/// Default [`RetentionPolicy::interval`].
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// Default [`RetentionPolicy::batch_size`].
pub(crate) const DEFAULT_BATCH_SIZE: usize = 500;

/// What to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Dead letters that failed longer ago than this are removed; `None`
    /// keeps them regardless of age.
    pub max_age: Option<Duration>,
    /// At most this many dead letters are kept per environment, the oldest
    /// removed first, so one environment's flood never erases another's;
    /// `None` for no cap.
    pub max_count: Option<u64>,
    /// Time between pruning passes (the first runs at start).
    pub interval: Duration,
    /// Rows removed per transaction (which also stops at about
    /// [`crate::dead_letter::STEP_BYTES`] of payload): what bounds how long
    /// the pruner holds the queue's writer at a time.
    pub batch_size: usize,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            max_age: Some(DEFAULT_MAX_AGE),
            max_count: Some(DEFAULT_MAX_COUNT),
            interval: DEFAULT_INTERVAL,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

impl RetentionPolicy {
    /// Keeps everything (no pruning); a pass still finishes interrupted
    /// redrives.
    pub fn keep_all() -> Self {
        Self {
            max_age: None,
            max_count: None,
            ..Self::default()
        }
    }

    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), OutboundError> {
        let bad = |key: &str, problem: &str| {
            Err(OutboundError::InvalidSetting {
                key: key.to_owned(),
                problem: problem.to_owned(),
            })
        };
        if self.max_age == Some(Duration::ZERO) {
            return bad(
                "max_age",
                "must be longer than zero (zero would remove dead letters as they are written)",
            );
        }
        if self.max_count == Some(0) {
            return bad(
                "max_count",
                "must be at least 1 (zero would remove dead letters as they are written)",
            );
        }
        if self.interval.is_zero() {
            return bad("interval", "must be longer than zero");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Removed for being older than the retention age.
    pub by_age: u64,
    /// Removed for being the oldest beyond the cap.
    pub by_count: u64,
    /// Pruning transactions run (the last one found nothing to remove, or
    /// the pass was stopped).
    pub batches: u64,
    /// Dead letters of interrupted redrives moved to the queue.
    pub redriven: u64,
    /// Queued entries of environments not forwarded, moved to the dead
    /// letters (only with [`Pruner::with_forwarding`]).
    pub not_forwarded: u64,
    /// Remembered `messageId`s forgotten (past the redelivery window, or
    /// the oldest beyond its cap).
    pub forgotten: Forgotten,
}

impl RetentionReport {
    /// Dead letters removed.
    pub fn pruned(&self) -> u64 {
        self.by_age + self.by_count
    }

    fn add(&mut self, batch: Pruned) {
        self.by_age += batch.by_age as u64;
        self.by_count += batch.by_count as u64;
        self.batches += 1;
    }
}

/// Applies a [`RetentionPolicy`] to a queue's dead letters.
#[derive(Clone, Debug)]
pub struct Pruner {
    queue: DurableQueue,
    policy: RetentionPolicy,
    forwarding: Option<Forwarding>,
}

impl Pruner {
    /// A pruner for `queue`; the policy is validated.
    pub fn new(queue: DurableQueue, policy: RetentionPolicy) -> Result<Self, OutboundError> {
        policy.validate()?;
        Ok(Self {
            queue,
            policy,
            forwarding: None,
        })
    }

    /// Also moves, at every pass, queued entries of environments that
    /// `forwarding` does not deliver to the dead letters (reason
    /// [`crate::NOT_FORWARDED`]), in the same bounded steps as pruning.
    /// Only for the process whose [`crate::Dispatcher`] has exactly the
    /// routes `forwarding` says are forwarded: entries of a forwarded
    /// environment are never touched, so none being delivered is moved.
    pub fn with_forwarding(mut self, forwarding: Forwarding) -> Self {
        self.forwarding = Some(forwarding);
        self
    }

    /// One pass at once, then one every `interval`, until `stop`. Failures
    /// are logged and retried at the next pass: retention must never take
    /// the forwarder down.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.pass(&stop).await {
                warn!(error = %e, "Pruning dead letters failed; trying again at the next pass.");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.policy.interval) => {}
            }
        }
    }

    /// One pass: finishes interrupted redrives, then removes what the policy
    /// says, one transaction of at most `batch_size` rows (and about
    /// [`crate::dead_letter::STEP_BYTES`]) at a time, until a transaction
    /// finds nothing to remove or `stop` is cancelled.
    pub async fn pass(&self, stop: &CancellationToken) -> Result<RetentionReport, OutboundError> {
        let batch = self.policy.batch_size;
        let mut report = RetentionReport::default();
        loop {
            let moved = self.queue.finish_redrives(batch).await?;
            report.redriven += moved as u64;
            if moved == 0 || stop.is_cancelled() {
                break;
            }
        }
        if let Some(forwarding) = &self.forwarding {
            report.not_forwarded = self.bury_not_forwarded(forwarding, stop).await?;
        }
        report.forgotten = self.queue.forget_messages(batch, stop).await?;
        counter!("tributary_forwarder_forgotten_message_ids_total", "reason" => "age")
            .increment(report.forgotten.by_age);
        counter!("tributary_forwarder_forgotten_message_ids_total", "reason" => "count")
            .increment(report.forgotten.by_count);
        if report.forgotten.total() > 0 {
            info!(
                forgotten = report.forgotten.total(),
                by_age = report.forgotten.by_age,
                by_count = report.forgotten.by_count,
                steps = report.forgotten.steps,
                "Forgot messageIds past the redelivery window; repeats of them are queued again."
            );
        }
        if self.policy.max_age.is_none() && self.policy.max_count.is_none() {
            return Ok(report);
        }
        // One cutoff for the whole pass, so a pass ends even while new dead
        // letters keep aging past a moving one.
        let failed_before = self.policy.max_age.map(|age| {
            chrono::Duration::from_std(age)
                .ok()
                .and_then(|age| Utc::now().checked_sub_signed(age))
                .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
        });
        loop {
            let pruned = self
                .queue
                .prune_dead_letters(failed_before, self.policy.max_count, batch)
                .await?;
            report.add(pruned);
            counter!("tributary_forwarder_pruned_dead_letters_total", "reason" => "age")
                .increment(pruned.by_age as u64);
            counter!("tributary_forwarder_pruned_dead_letters_total", "reason" => "count")
                .increment(pruned.by_count as u64);
            if pruned.total() == 0 || stop.is_cancelled() {
                break;
            }
            // Let other tasks' queue operations in before the next batch.
            tokio::task::yield_now().await;
        }
        if report.redriven > 0 {
            info!(
                redriven = report.redriven,
                "Finished interrupted redrives: dead letters moved back to the queue."
            );
        }
        if report.pruned() > 0 {
            info!(
                pruned = report.pruned(),
                by_age = report.by_age,
                by_count = report.by_count,
                batches = report.batches,
                max_age_secs = self.policy.max_age.map(|a| a.as_secs()),
                max_count = self.policy.max_count,
                "Pruned dead letters."
            );
        } else {
            debug!(batches = report.batches, "No dead letters to prune.");
        }
        Ok(report)
    }

    /// Moves entries of every environment `forwarding` does not deliver to
    /// the dead letters; returns how many moved.
    async fn bury_not_forwarded(
        &self,
        forwarding: &Forwarding,
        stop: &CancellationToken,
    ) -> Result<u64, OutboundError> {
        let mut total = 0;
        let pending = self.queue.stats().await?.pending;
        for environment in pending.keys() {
            let Some(why) = forwarding.why_not(environment) else {
                continue;
            };
            let reason = why.reason(environment);
            let mut count = 0_u64;
            loop {
                let burial = Burial {
                    reason: reason.clone(),
                    status: None,
                };
                let moved = self
                    .queue
                    .bury_environment(environment, burial, self.policy.batch_size)
                    .await? as u64;
                count += moved;
                counter!("tributary_forwarder_dead_lettered_events_total", "environment" => environment.clone(), "reason" => "not_forwarded")
                    .increment(moved);
                if moved == 0 || stop.is_cancelled() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            if count > 0 {
                warn!(
                    environment = %environment,
                    count,
                    reason = %reason,
                    "Moved queued events of an environment that is not forwarded to the dead letters; restore its write key, then redrive them."
                );
            }
            total += count;
            if stop.is_cancelled() {
                break;
            }
        }
        Ok(total)
    }
}
