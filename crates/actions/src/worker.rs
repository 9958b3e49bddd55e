//! Action workers: claim due actions from the outbox, execute each through
//! its environment's sink, record every attempt, and schedule retries.
//!
//! Isolation: each sink has its own concurrency limit and per-action-type rate
//! limiters, so a slow or failing sink holds only its own slots. Claiming is
//! bounded by the free in-flight slots, and every claim is a lease: a worker
//! that dies leaves its actions to be re-claimed when the lease expires.
//!
//! The pool claims with [`Outbox::claim_running_local`]. A store opened to
//! run some environments' `local` actions itself
//! ([`tributary_store::LocalExecution::InStore`], decided by the wiring)
//! runs most of them when they are appended; those that queued behind older
//! ones it runs in the round (effect, attempt and outbox change in one
//! transaction, no lease) and reports them. Everything else is leased and
//! runs through its environment's sink ([`crate::LocalSink`] for `local`).

use std::{
    collections::{BTreeMap, HashMap},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tributary_core::ActionType;
use tributary_store::{ActionId, AttemptOutcome, ClaimedAction, LocalRun, Outbox, StoreError};

use crate::{ActionRequest, Outcome, RetryPolicy, Sink};

/// Worker tuning.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Actions executing at once per sink.
    pub concurrency_per_sink: usize,
    /// Claimed and not yet finished actions, all sinks together.
    pub max_in_flight: usize,
    /// Most actions claimed per round trip.
    pub claim_batch: usize,
    /// How long a claim lasts before another worker may take the action.
    pub lease: Duration,
    /// How long to wait before claiming again when nothing was due.
    pub idle_poll: Duration,
    /// The retry schedule.
    pub retry: RetryPolicy,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            concurrency_per_sink: 16,
            max_in_flight: 256,
            claim_batch: 64,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(250),
            retry: RetryPolicy::DEFAULT,
        }
    }
}

struct SinkSlot {
    sink: Arc<dyn Sink>,
    permits: Semaphore,
    limiters: HashMap<ActionType, DefaultDirectRateLimiter>,
}

/// The sinks of every environment, each with its own limits.
pub struct SinkSet {
    by_environment: HashMap<String, Arc<SinkSlot>>,
}

impl SinkSet {
    /// One sink per environment slug, with that environment's rate limits
    /// per action type over the sink's own (`Sink::rate_limit`).
    pub fn new(
        sinks: impl IntoIterator<Item = (String, Arc<dyn Sink>, BTreeMap<ActionType, NonZeroU32>)>,
        concurrency: usize,
    ) -> Self {
        let by_environment = sinks
            .into_iter()
            .map(|(env, sink, limits)| {
                let limiters = ActionType::ALL
                    .into_iter()
                    .filter_map(|a| {
                        let per_second = limits.get(&a).copied().or_else(|| sink.rate_limit(a))?;
                        Some((a, RateLimiter::direct(Quota::per_second(per_second))))
                    })
                    .collect();
                let slot = SinkSlot {
                    permits: Semaphore::new(sink.concurrency(concurrency).max(1)),
                    sink,
                    limiters,
                };
                (env, Arc::new(slot))
            })
            .collect();
        Self { by_environment }
    }
}

/// Claims and executes actions until cancelled.
pub struct WorkerPool {
    outbox: Arc<dyn Outbox>,
    sinks: SinkSet,
    settings: PoolSettings,
    owner: String,
    wake: Notify,
    in_flight: Arc<Semaphore>,
    // When the claim loop last went round (ms since the epoch), for readiness.
    heartbeat: AtomicI64,
    // Finished attempts go to one recorder task that writes them in batches.
    records: mpsc::UnboundedSender<Record>,
    recorder: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Record>>>,
}

/// A message to the attempt recorder.
enum Record {
    Attempt(ActionId, AttemptOutcome),
    /// Record everything sent before this, then answer.
    Flush(oneshot::Sender<()>),
}

/// The most attempts recorded in one store call.
const RECORD_BATCH: usize = 256;

impl WorkerPool {
    /// A pool named `owner` (unique per process: it is the lease holder)
    /// taking actions from `outbox`. Which `local` actions the store runs
    /// itself is the store's setting, made when it was opened; `sinks` run
    /// the rest.
    pub fn new(
        outbox: Arc<dyn Outbox>,
        sinks: SinkSet,
        settings: PoolSettings,
        owner: impl Into<String>,
    ) -> Arc<Self> {
        let (records, recorder) = mpsc::unbounded_channel();
        Arc::new(Self {
            records,
            recorder: std::sync::Mutex::new(Some(recorder)),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            outbox,
            sinks,
            settings,
            owner: owner.into(),
            wake: Notify::new(),
            heartbeat: AtomicI64::new(0),
        })
    }

    /// True when the claim loop has gone round within `within` (it goes round
    /// at least every `idle_poll`, or every 10 s while the store is down).
    pub fn is_alive(&self, within: Duration) -> bool {
        let last = self.heartbeat.load(Ordering::Relaxed);
        last > 0
            && Utc::now().timestamp_millis() - last
                <= i64::try_from(within.as_millis()).unwrap_or(i64::MAX)
    }

    /// Claims at once instead of waiting for the next poll (call after appends).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown`, then lets executing actions finish (each is
    /// bounded by its sink's timeout) and returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let recorder = self
            .recorder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .map(|rx| tokio::spawn(self.clone().record(rx)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut backoff = self.settings.idle_poll;
        while !shutdown.is_cancelled() {
            self.heartbeat
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
            while tasks.try_join_next().is_some() {}
            let free = self
                .in_flight
                .available_permits()
                .min(self.settings.claim_batch);
            // Claims even with no free slot: a store that runs local actions
            // itself has work for the round, and one that does not answers
            // at once.
            let round = self
                .outbox
                .claim_running_local(&self.owner, free, self.settings.lease)
                .await;
            let idle = match round {
                Ok(round) if !round.claimed.is_empty() || !round.ran_local.is_empty() => {
                    backoff = self.settings.idle_poll;
                    metrics::counter!("tributary_outbox_popped_total")
                        .increment((round.claimed.len() + round.ran_local.len()) as u64);
                    round.ran_local.iter().for_each(LocalRun::report);
                    for action in round.claimed {
                        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                            break;
                        };
                        let pool = self.clone();
                        tasks.spawn(async move {
                            pool.execute(action).await;
                            drop(permit);
                        });
                    }
                    // More may be due now: the round stopped at its limit, or
                    // an action run in the store was holding back its event's
                    // next one. Go again at once.
                    if round.more || !round.ran_local.is_empty() {
                        continue;
                    }
                    self.settings.idle_poll
                }
                Ok(_) => self.settings.idle_poll,
                Err(e) => {
                    // The store is down: back off, up to 10 s, and keep trying.
                    tracing::warn!(error = %e, "Claiming actions failed.");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        // Every attempt made is recorded before `run` returns.
        let (done, flushed) = oneshot::channel();
        if self.records.send(Record::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
        if let Some(r) = recorder {
            r.abort();
        }
    }

    /// Writes finished attempts in batches: whatever is waiting, up to
    /// [`RECORD_BATCH`], in one store call.
    async fn record(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while let Some(first) = rx.recv().await {
            let mut flush = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Record::Attempt(id, outcome) => batch.push((id, outcome)),
                    Record::Flush(done) => {
                        flush = Some(done);
                        break;
                    }
                }
                if batch.len() < RECORD_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                let ids: Vec<ActionId> = batch.iter().map(|(id, _)| *id).collect();
                match self
                    .outbox
                    .finish_attempts(&self.owner, std::mem::take(&mut batch))
                    .await
                {
                    Ok(results) => {
                        for (id, result) in ids.iter().zip(results) {
                            match result {
                                Ok(()) => {}
                                Err(StoreError::LeaseLost { .. }) => {
                                    tracing::warn!(action_id = %id, "Lease lost before the attempt was recorded; another worker owns the action.")
                                }
                                Err(e) => {
                                    tracing::error!(action_id = %id, error = %e, "Could not record an attempt.")
                                }
                            }
                        }
                    }
                    // The leases will expire and the actions run again: at least once.
                    Err(e) => {
                        tracing::error!(attempts = ids.len(), error = %e, "Could not record attempts.")
                    }
                }
                // A finished action may have been holding back the next one of its event.
                self.wake();
            }
            if let Some(done) = flush {
                let _ = done.send(());
            }
        }
    }

    async fn execute(&self, action: ClaimedAction) {
        let started = Instant::now();
        let Some(payload) = action.plan.payload().cloned() else {
            // Skipped plans are never claimed; if one is, end it rather than loop.
            self.finish(
                &action,
                AttemptOutcome::Failed {
                    summary: "the plan has no payload".to_owned(),
                },
                "none",
            );
            return;
        };
        let Some(slot) = self.sinks.by_environment.get(&action.environment).cloned() else {
            self.finish(
                &action,
                AttemptOutcome::Failed {
                    summary: format!(
                        "no sink is configured for environment `{}`",
                        action.environment
                    ),
                },
                "none",
            );
            return;
        };
        let request = ActionRequest {
            action_id: action.id.to_string(),
            event_id: action.event_id.to_string(),
            environment: action.environment.clone(),
            source: action.source.clone(),
            payload,
            origin: action.plan.origin.clone(),
            attempt: action.attempt,
        };
        let Ok(_permit) = slot.permits.acquire().await else {
            return;
        };
        if slot.sink.is_rate_limited(&request)
            && let Some(limiter) = slot.limiters.get(&action.plan.action)
        {
            limiter.until_ready().await;
        }
        let outcome = slot.sink.execute(&request).await;
        let recorded = self.to_attempt(&action, outcome);
        tracing::debug!(
            action_id = %action.id,
            sink = slot.sink.kind(),
            attempt = action.attempt,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Action attempted."
        );
        self.finish(&action, recorded, slot.sink.kind());
    }

    fn to_attempt(&self, action: &ClaimedAction, outcome: Outcome) -> AttemptOutcome {
        match outcome {
            Outcome::Succeeded { summary, .. } => AttemptOutcome::Succeeded { summary },
            Outcome::Failed { error, .. } => AttemptOutcome::Failed { summary: error },
            Outcome::Retry {
                error, retry_after, ..
            } => match self
                .settings
                .retry
                .next_delay(action.attempt, retry_after, &mut rand::rng())
            {
                Some(delay) => AttemptOutcome::RetryAt {
                    summary: error,
                    at: Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
                },
                None => AttemptOutcome::Failed {
                    summary: format!("gave up after {} attempts; last: {error}", action.attempt),
                },
            },
        }
    }

    fn finish(&self, action: &ClaimedAction, outcome: AttemptOutcome, sink: &'static str) {
        let name = outcome.name();
        metrics::counter!("tributary_action_attempts_total", "sink" => sink, "outcome" => name)
            .increment(1);
        if name == "failed" {
            tracing::warn!(action_id = %action.id, sink, "Action failed permanently.");
        }
        if self
            .records
            .send(Record::Attempt(action.id, outcome))
            .is_err()
        {
            // The recorder is gone (the pool is stopping): the lease expires
            // and the action runs again.
            tracing::warn!(action_id = %action.id, "Attempt not recorded: the worker pool is stopping.");
        }
    }
}
