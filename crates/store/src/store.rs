//! The store's interface, one trait per role, and [`Store`], all of them.
//!
//! A consumer takes the role it uses: the worker pool an [`Outbox`], the
//! `local` sink the [`LocalRecipients`], retention a [`Retention`], the
//! console the [`AdminQueries`]. Code that wires everything together holds
//! an `Arc<dyn Store>` and hands each part its role (an `Arc<dyn Store>`
//! coerces to any of them). Both backends implement every role and pass the
//! same test suite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tributary_core::{event::EventId, plan::ActionPayload};

use crate::{
    ActionFilter, ActionId, ActionRecord, ActionStatus, AppendItem, AppendOutcome, AttemptOutcome,
    ClaimRound, ClaimedAction, ConfigLog, EventDetail, EventFilter, EventRecord, KnownEventType,
    LocalApply, LocalEffect, LocalKind, LocalRecord, MappingOverride, Page, PruneReport,
    RejectedRequest, SourceStatus, StoreError,
};

/// Everything Tributary keeps: every role below. [`crate::SqliteStore`] and
/// [`crate::PostgresStore`] are its two implementations; anything that
/// implements all the roles is a `Store`.
///
/// Writes are group-committed: concurrent calls are batched into one
/// transaction and one fsync. `Ok` from a write means it is durable.
pub trait Store:
    EventLog + Outbox + LocalRecipients + AdminQueries + MappingOverrides + Retention + ConfigLog
{
}

impl<T> Store for T where
    T: EventLog
        + Outbox
        + LocalRecipients
        + AdminQueries
        + MappingOverrides
        + Retention
        + ConfigLog
        + ?Sized
{
}

/// The ingest side: writing events (with their planned actions) and refused
/// requests to the event log.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends events with their planned actions. Each item is atomic and
    /// learns its own outcome (same order as `items`): accepted, with its
    /// actions in the outbox or, those the store runs itself
    /// ([`crate::LocalExecution::InStore`]), already run; or a duplicate
    /// (docs/product-decisions.md, "Dedup"), logged and not run.
    ///
    /// Fails with [`StoreError::Overloaded`] when the commit queue is full.
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError>;

    /// Logs a refused request (status `rejected`) with a bounded body excerpt.
    async fn record_rejected(&self, request: RejectedRequest) -> Result<EventId, StoreError>;

    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The action outbox as the workers see it: lease due actions, record
/// their attempts.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Leases up to `limit` due actions to `owner` for `lease`. Actions whose
    /// lease expired are due again, so a crashed worker's work is re-claimed.
    /// Every due action is leased, whatever [`crate::LocalExecution`] the
    /// store was opened with.
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedAction>, StoreError>;

    /// One worker round: [`Outbox::claim`], except that the due actions of
    /// the environments the store was opened to run itself
    /// ([`crate::LocalExecution::InStore`]) are not leased but run here:
    /// taken from the outbox, applied to the local recipients and their
    /// attempt recorded, in one transaction. That needs no lease and no
    /// second write, and a crash loses the effect and the attempt together,
    /// so the action simply runs again. `limit` bounds the leased actions;
    /// the actions run here are bounded by the backend's own batch.
    ///
    /// The default runs nothing itself and leases everything due, which is
    /// always correct: the worker then runs those actions through the
    /// `local` sink like any other.
    async fn claim_running_local(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<ClaimRound, StoreError> {
        // A worker with no free slot still calls: a store that runs local
        // actions has work for it, this one has none.
        if limit == 0 {
            return Ok(ClaimRound::default());
        }
        let claimed = self.claim(owner, limit, lease).await?;
        Ok(ClaimRound {
            more: claimed.len() == limit,
            claimed,
            ran_local: Vec::new(),
        })
    }

    /// Records the attempt of a leased action and its consequence: succeeded
    /// and failed end it; retry puts it back in the outbox for `at`. Fails with
    /// [`StoreError::LeaseLost`] when `owner` no longer holds the lease.
    async fn finish_attempt(
        &self,
        action: ActionId,
        owner: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError>;

    /// [`Outbox::finish_attempt`] for many actions of one owner, in as few
    /// writes as the backend allows; one result per item, in order. The whole
    /// call fails only when nothing could be recorded.
    async fn finish_attempts(
        &self,
        owner: &str,
        attempts: Vec<(ActionId, AttemptOutcome)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut results = Vec::with_capacity(attempts.len());
        for (action, outcome) in attempts {
            results.push(self.finish_attempt(action, owner, outcome).await);
        }
        Ok(results)
    }
}

/// The `local` sink's recipients (users, objects, tenants, audiences,
/// subscriptions, workflow runs): applying actions to them and reading them.
#[async_trait]
pub trait LocalRecipients: Send + Sync + 'static {
    /// Applies a payload to the local recipients (the `local` sink), once per
    /// action id: a repeat returns [`LocalEffect::AlreadyApplied`] and changes nothing.
    async fn apply_local(
        &self,
        action: ActionId,
        environment: &str,
        payload: &ActionPayload,
    ) -> Result<LocalEffect, StoreError>;

    /// [`LocalRecipients::apply_local`] for several actions at once, one
    /// result each in order. The outer error means none was applied.
    /// Backends that can should apply them in one transaction: the `local`
    /// sink calls this with whatever actions are waiting.
    async fn apply_local_many(
        &self,
        items: Vec<LocalApply>,
    ) -> Result<Vec<Result<LocalEffect, StoreError>>, StoreError> {
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(
                self.apply_local(item.action, &item.environment, &item.payload)
                    .await,
            );
        }
        Ok(results)
    }

    /// A local record by kind, environment, scope and id.
    async fn local_record(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
        id: &str,
    ) -> Result<Option<LocalRecord>, StoreError>;

    /// Local records of one kind and scope (audience members, subscriptions, runs).
    async fn local_records(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
    ) -> Result<Vec<LocalRecord>, StoreError>;
}

/// The read side of the logs, for the admin API, the management layer and
/// the console: events, actions and what each source received.
#[async_trait]
pub trait AdminQueries: Send + Sync + 'static {
    /// Event-log entries matching `filter`, newest first, older than `before`.
    async fn list_events(
        &self,
        filter: &EventFilter,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Page<EventRecord, EventId>, StoreError>;

    /// One event with its actions and attempts.
    async fn event_detail(&self, id: EventId) -> Result<Option<EventDetail>, StoreError>;

    /// Actions, newest first, optionally of one status, older than `before`.
    async fn list_actions(
        &self,
        status: Option<ActionStatus>,
        before: Option<ActionId>,
        limit: usize,
    ) -> Result<Page<ActionRecord, ActionId>, StoreError> {
        self.find_actions(
            &ActionFilter {
                status,
                ..ActionFilter::default()
            },
            before,
            limit,
        )
        .await
    }

    /// Action-log entries matching `filter`, newest first.
    async fn find_actions(
        &self,
        filter: &ActionFilter,
        before: Option<ActionId>,
        limit: usize,
    ) -> Result<Page<ActionRecord, ActionId>, StoreError>;

    /// Per-source status for every source environment that received anything.
    async fn source_statuses(&self, now: DateTime<Utc>) -> Result<Vec<SourceStatus>, StoreError>;

    /// Event types seen on a source environment, with when each was last seen.
    async fn known_event_types(
        &self,
        source: &str,
        environment: &str,
    ) -> Result<Vec<KnownEventType>, StoreError>;
}

/// The mappings' runtime `active` switches, which outlive a restart and
/// win over the configuration's `active`.
#[async_trait]
pub trait MappingOverrides: Send + Sync + 'static {
    /// Sets a mapping's `active` override (persisted, takes effect at once).
    async fn set_mapping_active(
        &self,
        source: &str,
        environment: &str,
        mapping: &str,
        active: bool,
    ) -> Result<(), StoreError>;

    /// Forgets the overrides of a deleted source (`mapping: None`) or of
    /// one deleted mapping, so one made later under the same names starts
    /// from its own `active`.
    async fn forget_mapping_overrides(
        &self,
        source: &str,
        mapping: Option<(&str, &str)>,
    ) -> Result<(), StoreError>;

    /// All overrides, so the engine can load them at start.
    async fn mapping_overrides(&self) -> Result<Vec<MappingOverride>, StoreError>;

    /// One mapping's override: `None` when it was never toggled (the config decides).
    async fn mapping_active(
        &self,
        source: &str,
        environment: &str,
        mapping: &str,
    ) -> Result<Option<bool>, StoreError> {
        Ok(self
            .mapping_overrides()
            .await?
            .into_iter()
            .find(|o| o.source == source && o.environment == environment && o.mapping == mapping)
            .map(|o| o.active))
    }
}

/// Removing what is past its time (see [`crate::spawn_retention`]).
#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Removes up to `batch` event-log entries received before `cutoff` (with
    /// their actions and attempts) and up to `batch` dedup keys expired at
    /// `now`. Call repeatedly until it returns zeros; each call is one short
    /// transaction, so appends are never stalled for long.
    async fn prune(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<PruneReport, StoreError>;
}
