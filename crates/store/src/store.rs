//! The one interface both backends implement.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tributary_core::{event::EventId, plan::ActionPayload};

use crate::{
    ActionFilter, ActionId, ActionRecord, ActionStatus, AppendItem, AppendOutcome, AttemptOutcome,
    ClaimRound, ClaimedAction, EventDetail, EventFilter, EventRecord, KnownEventType, LocalApply,
    LocalEffect, LocalKind, LocalRecord, MappingOverride, Page, PruneReport, RejectedRequest,
    SourceStatus, StoreError,
};

/// Everything Tributary keeps. [`crate::SqliteStore`] and [`crate::PostgresStore`]
/// are its two implementations and pass the same test suite.
///
/// Writes are group-committed: concurrent calls are batched into one
/// transaction and one fsync. `Ok` from a write means it is durable.
#[async_trait]
pub trait Store: crate::ConfigLog + Send + Sync + 'static {
    /// Appends events with their planned actions. Each item is atomic and
    /// learns its own outcome (same order as `items`): accepted, with its
    /// actions in the outbox, or a duplicate (docs/product-decisions.md, "Dedup"),
    /// logged and not run.
    ///
    /// Fails with [`StoreError::Overloaded`] when the commit queue is full.
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError>;

    /// Logs a refused request (status `rejected`) with a bounded body excerpt.
    async fn record_rejected(&self, request: RejectedRequest) -> Result<EventId, StoreError>;

    /// Leases up to `limit` due actions to `owner` for `lease`. Actions whose
    /// lease expired are due again, so a crashed worker's work is re-claimed.
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedAction>, StoreError>;

    /// [`Store::claim`], except that due actions of `local_environments`
    /// (environments whose sink is `local`, which writes to this same store)
    /// may be run by the store itself instead of leased: taken from the
    /// outbox, applied to the local recipients and their attempt recorded, in
    /// one transaction. That needs no lease and no second write, and a crash
    /// loses the effect and the attempt together, so the action simply runs
    /// again. `limit` bounds the leased actions; the actions run here are
    /// bounded by the backend's own batch.
    ///
    /// The default runs nothing itself and leases everything due, which is
    /// always correct: the worker then runs those actions through the
    /// `local` sink like any other.
    async fn claim_running_local(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        local_environments: &[String],
    ) -> Result<ClaimRound, StoreError> {
        let _ = local_environments;
        let claimed = self.claim(owner, limit, lease).await?;
        Ok(ClaimRound {
            more: limit > 0 && claimed.len() == limit,
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

    /// [`Store::finish_attempt`] for many actions of one owner, in as few
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

    /// Applies a payload to the local recipients (the `local` sink), once per
    /// action id: a repeat returns [`LocalEffect::AlreadyApplied`] and changes nothing.
    async fn apply_local(
        &self,
        action: ActionId,
        environment: &str,
        payload: &ActionPayload,
    ) -> Result<LocalEffect, StoreError>;

    /// [`Store::apply_local`] for several actions at once, one result each in
    /// order. The outer error means none was applied. Backends that can
    /// should apply them in one transaction: the `local` sink calls this with
    /// whatever actions are waiting.
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

    /// Event types seen on a source environment, with when each was last seen.
    async fn known_event_types(
        &self,
        source: &str,
        environment: &str,
    ) -> Result<Vec<KnownEventType>, StoreError>;

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

    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
