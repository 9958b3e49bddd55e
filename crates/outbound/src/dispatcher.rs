//! The delivery loop: reads the durable queue per environment, cuts batches,
//! sends them, and settles every entry (delivered, or dead-lettered).
//!
//! An entry leaves the queue only after Segment answered 2xx for a request
//! holding it, or when it is moved to the dead letters. Retryable failures are
//! retried without limit (with capped backoff): an outage of hours only
//! delays delivery. Each environment has its own task, so a slow or paused
//! write key never holds up another; a 429 pauses every environment that
//! shares the write key.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use metrics::{counter, histogram};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use tributary_core::Secret;

use crate::{
    OutboundError,
    batch::{BatchLimits, Batcher, Push, encode_batch, envelope_len},
    client::{SegmentClient, SendOutcome},
    config::DeliverySettings,
    dead_letter::Burial,
    message::validate_json,
    queue::{DurableQueue, Entry},
    retry::Backoff,
};

/// One environment's destination.
#[derive(Clone, Debug)]
pub struct Destination {
    /// The environment whose queued entries this route ships.
    pub environment: String,
    /// The Segment write key for it.
    pub write_key: Secret,
}

/// Pauses per write key (keyed by a hash, so the key itself is not kept twice).
#[derive(Clone, Debug, Default)]
pub struct PauseBoard {
    until: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
}

impl PauseBoard {
    fn fingerprint(key: &Secret) -> [u8; 32] {
        Sha256::digest(key.expose().as_bytes()).into()
    }

    /// Pauses `key` until `until` (a later pause wins).
    pub fn pause(&self, key: &Secret, until: Instant) {
        let mut map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let slot = map.entry(Self::fingerprint(key)).or_insert(until);
        *slot = (*slot).max(until);
    }

    /// When `key` may send again, if it is paused now.
    pub fn paused_until(&self, key: &Secret) -> Option<Instant> {
        let map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&Self::fingerprint(key))
            .copied()
            .filter(|t| *t > Instant::now())
    }
}

/// True when a finished delivery was cut short (or its task failed).
fn settle(done: Result<Delivery, tokio::task::JoinError>) -> bool {
    match done {
        Ok(Delivery::Settled) => false,
        Ok(Delivery::Interrupted) => true,
        Err(e) => {
            error!(error = %e, "Delivery task failed; its events stay queued.");
            true
        }
    }
}

struct Shared {
    queue: DurableQueue,
    client: SegmentClient,
    settings: DeliverySettings,
    limits: BatchLimits,
    backoff: Backoff,
    pauses: PauseBoard,
}

/// Ships queued entries to Segment until shut down.
pub struct Dispatcher {
    shared: Arc<Shared>,
    routes: Vec<Destination>,
}

impl Dispatcher {
    /// A dispatcher over `queue` for `routes`.
    pub fn new(
        queue: DurableQueue,
        settings: DeliverySettings,
        routes: Vec<Destination>,
    ) -> Result<Self, OutboundError> {
        settings.validate()?;
        let client = SegmentClient::new(&settings)?;
        let limits = BatchLimits::from(&settings);
        let backoff = Backoff {
            initial: Duration::from_millis(settings.backoff_initial_ms),
            max: Duration::from_millis(settings.backoff_max_ms),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                queue,
                client,
                settings,
                limits,
                backoff,
                pauses: PauseBoard::default(),
            }),
            routes,
        })
    }

    /// The pause board (for tests and status pages).
    pub fn pauses(&self) -> PauseBoard {
        self.shared.pauses.clone()
    }

    /// Runs one task per route until `shutdown` is cancelled, then flushes
    /// what it can within the grace period and returns; the rest stays queued.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        for route in self.routes {
            let shared = Arc::clone(&self.shared);
            let shutdown = shutdown.clone();
            tasks.spawn(async move { RouteSender::new(shared, route, shutdown).run().await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                error!(error = %e, "Route sender task failed.");
            }
        }
    }
}

/// What one environment's sender and its in-flight deliveries share.
#[derive(Clone)]
struct RouteSender {
    shared: Arc<Shared>,
    route: Destination,
    shutdown: CancellationToken,
    /// Set once, when shutdown is first noticed: the end of the grace period.
    stop_by: Arc<OnceLock<Instant>>,
}

/// Whether a delivery finished or was cut short by shutdown.
#[derive(PartialEq, Eq)]
enum Delivery {
    Settled,
    Interrupted,
}

impl RouteSender {
    fn new(shared: Arc<Shared>, route: Destination, shutdown: CancellationToken) -> Self {
        Self {
            shared,
            route,
            shutdown,
            stop_by: Arc::new(OnceLock::new()),
        }
    }

    fn stopping(&self) -> bool {
        if self.shutdown.is_cancelled() {
            self.stop_by
                .get_or_init(|| Instant::now() + self.shared.settings.shutdown_grace());
            true
        } else {
            false
        }
    }

    fn past_grace(&self) -> bool {
        self.stopping() && self.stop_by.get().is_some_and(|t| Instant::now() >= *t)
    }

    async fn run(self) {
        let env = self.route.environment.clone();
        let shared = Arc::clone(&self.shared);
        let max_events = shared.limits.max_events;
        let flush = shared.settings.flush_interval();
        // Other processes (backfill, redrive) write to the same file without
        // waking us; poll at least this often.
        let poll = flush.clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut wake = shared.queue.subscribe();
        let mut cursor = 0_i64;
        let mut pending: VecDeque<Entry> = VecDeque::new();
        let mut failures = 0_u32;
        let max_in_flight = shared.settings.max_in_flight.max(1);
        let mut in_flight: JoinSet<Delivery> = JoinSet::new();
        let mut interrupted = false;
        info!(environment = %env, "Route sender started.");
        loop {
            while let Some(done) = in_flight.try_join_next() {
                interrupted |= settle(done);
            }
            let stopping = self.stopping();
            if interrupted || self.past_grace() {
                break;
            }
            if pending.len() < max_events {
                match shared
                    .queue
                    .fetch(&env, cursor, max_events - pending.len())
                    .await
                {
                    Ok(rows) => {
                        failures = 0;
                        if let Some(last) = rows.last() {
                            cursor = last.id;
                        }
                        pending.extend(rows);
                    }
                    Err(e) => {
                        error!(environment = %env, error = %e, "Reading the queue failed.");
                        if stopping {
                            break;
                        }
                        failures += 1;
                        let wait = shared.backoff.delay(failures);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = self.shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            }
            let Some(oldest) = pending.front() else {
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = wake.changed() => {}
                    () = tokio::time::sleep(poll) => {}
                    () = self.shutdown.cancelled() => {}
                }
                continue;
            };
            let bytes: usize = pending.iter().map(|e| e.payload.len() + 1).sum();
            let full =
                pending.len() >= max_events || envelope_len() + bytes >= shared.limits.max_bytes;
            let age = (Utc::now() - oldest.enqueued_at)
                .to_std()
                .unwrap_or_default();
            if !full && age < flush && !stopping {
                tokio::select! {
                    _ = wake.changed() => {}
                    () = tokio::time::sleep(flush - age) => {}
                    () = self.shutdown.cancelled() => {}
                }
                continue;
            }
            let mut batcher = Batcher::new(shared.limits);
            let mut too_large = Vec::new();
            while let Some(entry) = pending.pop_front() {
                match batcher.push(entry) {
                    Push::Added => {}
                    Push::Full(entry) => {
                        pending.push_front(entry);
                        break;
                    }
                    Push::TooLarge(entry) => too_large.push(entry),
                }
            }
            if !too_large.is_empty() {
                let reason = format!(
                    "larger than the {}-byte limit per event",
                    shared.limits.max_event_bytes
                );
                self.bury(too_large, "too_large", &reason, None).await;
            }
            if batcher.is_empty() {
                continue;
            }
            // At most `max_in_flight` requests per environment: wait for one
            // to finish before starting another.
            while in_flight.len() >= max_in_flight {
                if let Some(done) = in_flight.join_next().await {
                    interrupted |= settle(done);
                }
            }
            if interrupted {
                break;
            }
            let sender = self.clone();
            let batch = batcher.take();
            in_flight.spawn(async move { sender.deliver(batch).await });
        }
        // In-flight deliveries see the shutdown too and return promptly;
        // what they do not deliver stays queued.
        while let Some(done) = in_flight.join_next().await {
            settle(done);
        }
        info!(environment = %env, left_in_memory = pending.len(), "Route sender stopped.");
    }

    /// Moves `entries` to the dead letters with `reason` (kept with each
    /// row); `kind` is its bounded name for the metric's `reason` label.
    async fn bury(
        &self,
        entries: Vec<Entry>,
        kind: &'static str,
        reason: &str,
        status: Option<u16>,
    ) {
        let env = &self.route.environment;
        let n = entries.len();
        let burials = entries
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    Burial {
                        reason: reason.to_owned(),
                        status,
                    },
                )
            })
            .collect();
        match self.shared.queue.bury(burials).await {
            Ok(()) => {
                counter!("tributary_forwarder_dead_lettered_events_total", "environment" => env.clone(), "reason" => kind)
                    .increment(n as u64);
                error!(environment = %env, events = n, status, reason, "Events moved to the dead letters.");
            }
            Err(e) => {
                error!(environment = %env, events = n, error = %e, "Moving events to the dead letters failed; they stay queued.");
            }
        }
    }

    async fn deliver(&self, batch: Vec<Entry>) -> Delivery {
        let shared = Arc::clone(&self.shared);
        let env = self.route.environment.clone();
        let key = self.route.write_key.clone();
        let mut work = vec![batch];
        while let Some(mut batch) = work.pop() {
            let mut attempt = 0_u32;
            loop {
                if let Some(until) = shared.pauses.paused_until(&key) {
                    if self.stopping() {
                        return Delivery::Interrupted;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = self.shutdown.cancelled() => return Delivery::Interrupted,
                    }
                }
                if self.past_grace() {
                    return Delivery::Interrupted;
                }
                let body = encode_batch(&batch, &Utc::now());
                histogram!("tributary_forwarder_batch_events").record(batch.len() as f64);
                histogram!("tributary_forwarder_batch_bytes").record(body.len() as f64);
                let started = Instant::now();
                let outcome = shared.client.send(&key, body).await;
                histogram!("tributary_forwarder_segment_request_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                match outcome {
                    SendOutcome::Delivered => {
                        let n = batch.len();
                        let ids = batch.iter().map(|e| e.id).collect();
                        if let Err(e) = shared.queue.acknowledge(ids).await {
                            // Segment has them; after a restart they are sent
                            // again with the same messageId and deduplicated.
                            error!(environment = %env, error = %e, "Removing delivered events from the queue failed.");
                        }
                        counter!("tributary_forwarder_sent_events_total", "environment" => env.clone())
                            .increment(n as u64);
                        debug!(environment = %env, events = n, attempt, "Batch delivered.");
                        break;
                    }
                    SendOutcome::Retry { status, detail } => {
                        counter!("tributary_forwarder_retried_requests_total", "environment" => env.clone())
                            .increment(1);
                        warn!(environment = %env, status, detail, attempt, "Batch not accepted; retrying.");
                        if self.stopping() {
                            return Delivery::Interrupted;
                        }
                        let wait = shared.backoff.delay(attempt);
                        attempt = attempt.saturating_add(1);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = self.shutdown.cancelled() => return Delivery::Interrupted,
                        }
                    }
                    SendOutcome::RateLimited { retry_after } => {
                        counter!("tributary_forwarder_retried_requests_total", "environment" => env.clone())
                            .increment(1);
                        let cap = Duration::from_millis(shared.settings.max_retry_after_ms);
                        let wait = retry_after
                            .map_or_else(|| shared.backoff.delay(attempt), |d| d.min(cap));
                        attempt = attempt.saturating_add(1);
                        warn!(environment = %env, wait_ms = wait.as_millis() as u64, "Rate limited; pausing this write key.");
                        shared.pauses.pause(&key, Instant::now() + wait);
                    }
                    SendOutcome::Split { status, detail } => {
                        let mut valid = Vec::with_capacity(batch.len());
                        let mut found_invalid = false;
                        for entry in batch.drain(..) {
                            match validate_json(&entry.payload) {
                                Ok(()) => valid.push(entry),
                                Err(e) => {
                                    found_invalid = true;
                                    let reason = format!("invalid: {e}");
                                    self.bury(vec![entry], "invalid", &reason, Some(status))
                                        .await;
                                }
                            }
                        }
                        batch = valid;
                        if found_invalid {
                            // The invalid ones may have been the whole
                            // problem: send the rest again as it is.
                            if !batch.is_empty() {
                                work.push(batch);
                            }
                        } else if batch.len() > 1 {
                            warn!(environment = %env, status, events = batch.len(), "Batch refused; splitting it.");
                            let second = batch.split_off(batch.len() / 2);
                            work.push(second);
                            work.push(batch);
                        } else {
                            let reason = format!("refused by Segment with {status}: {detail}");
                            self.bury(batch, "refused", &reason, Some(status)).await;
                        }
                        break;
                    }
                    SendOutcome::Reject { status, detail } => {
                        let reason = format!("refused by Segment with {status}: {detail}");
                        self.bury(batch, "refused", &reason, Some(status)).await;
                        break;
                    }
                }
            }
        }
        Delivery::Settled
    }
}
