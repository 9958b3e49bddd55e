//! The sink interface: where an action's effect happens. Three real
//! implementations: the local store, Knock's API, a signed webhook.

use std::{future::Future, num::NonZeroU32, pin::Pin};

use serde::Serialize;
use tributary_core::{
    ActionType,
    plan::{ActionPayload, PlanOrigin},
};

use crate::Outcome;

/// A boxed future, so sinks can sit behind `dyn Sink`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One action to execute, as claimed from the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionRequest {
    /// The action's id: also its idempotency key wherever the receiver takes one.
    pub action_id: String,
    /// The event that planned it.
    pub event_id: String,
    /// Environment slug.
    pub environment: String,
    /// Source key.
    pub source: String,
    /// What to do, holding all its data: as the store returns a claimed
    /// action (a trigger's data is never a reference to its event here).
    pub payload: ActionPayload,
    /// What made the engine plan it: says whether a trigger carries inline
    /// entities, and whether an inline plan's entity travels with its trigger.
    /// Not part of the webhook sink's body, which stays the resolved action.
    #[serde(skip)]
    pub origin: PlanOrigin,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Where actions take effect. Implementations must be safe to call again
/// with the same `action_id` (execution is at least once).
pub trait Sink: Send + Sync {
    /// `local`, `knock` or `webhook`: for logs and metrics.
    fn kind(&self) -> &'static str;

    /// The most attempts per second this sink takes for `action`, if limited.
    fn rate_limit(&self, action: ActionType) -> Option<NonZeroU32>;

    /// How many of this sink's actions may execute at once, given the
    /// configured `concurrency_per_sink`.
    fn concurrency(&self, configured: usize) -> usize {
        configured
    }

    /// False when executing `request` makes no call of its own (the knock
    /// sink's inline identification, sent inside its trigger's call): such an
    /// action takes no slot of its action type's rate limit.
    fn is_rate_limited(&self, request: &ActionRequest) -> bool {
        let _ = request;
        true
    }

    /// Makes one attempt. Never panics; every failure is an [`Outcome`].
    fn execute<'a>(&'a self, request: &'a ActionRequest) -> BoxFuture<'a, Outcome>;
}
