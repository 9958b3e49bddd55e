//! What goes into the store and what comes out of it.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_core::{
    ActionType,
    dedup::DedupScope,
    event::{Event, EventId, Headers},
    plan::ActionPlan,
};
use ulid::Ulid;

use crate::StoreError;

/// An action's id: a ULID, also the idempotency key sinks send to receivers.
///
/// Its time part is the event's, so actions sort with their events and the
/// action tables grow at their right edge like the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(Ulid);

impl ActionId {
    /// A fresh id for an action of `event`.
    pub fn generate(event: EventId) -> Self {
        let ms = u64::try_from(event.as_u128() >> 80).unwrap_or(0);
        // Core's generator is the only RNG at hand; its low 80 bits are random.
        let random = EventId::generate(ms_to_time(ms)).as_u128() & ((1u128 << 80) - 1);
        Self(Ulid::from_parts(ms, random))
    }

    /// The id as the idempotency key sent to receivers.
    pub fn idempotency_key(self) -> String {
        self.0.to_string()
    }
}

fn ms_to_time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ActionId {
    type Err = ulid::DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(s).map(Self)
    }
}

/// One event to append, with the actions the mapping engine planned for it.
#[derive(Clone, Debug)]
pub struct AppendItem {
    /// The normalized event.
    pub event: Event,
    /// Its plans, in execution order; skipped plans are logged as `skipped`.
    /// A trigger may refer to the event's data instead of holding a copy
    /// (`MappingEngine::plan_by_reference`); the store keeps it once, with
    /// the event, and every plan it returns holds its data.
    pub plans: Vec<ActionPlan>,
    /// The dedup scope to check, when dedup applies to this event.
    pub dedup: Option<DedupScope>,
    /// How the event was planned, kept with it in the log.
    pub provenance: Provenance,
}

/// How an event-log entry came to be planned: what an operator needs to
/// explain its plans later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The configuration revision the plans were made with (0: the file alone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config_revision: u64,
    /// What verification made of the request: `enforced:verified`,
    /// `unenforced:failed`, `not_configured`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// For a replay: the entry replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<EventId>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What happened to one appended event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AppendOutcome {
    /// Stored with its actions. Each planned action is in the outbox, or,
    /// when the store runs its environment's actions itself
    /// ([`LocalExecution::InStore`]) and none of that environment's are
    /// waiting, already ran: see `ran_local`.
    Accepted {
        /// The event.
        event_id: EventId,
        /// One id per plan, in plan order.
        action_ids: Vec<ActionId>,
        /// The actions the store ran through the `local` sink in the append's
        /// own transaction, with their attempts recorded; never in the outbox.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ran_local: Vec<LocalRun>,
    },
    /// A repeat within the dedup window: logged as `duplicate`, nothing runs.
    Duplicate {
        /// The duplicate's own log entry.
        event_id: EventId,
        /// The event it repeats.
        original_event_id: EventId,
    },
}

impl AppendOutcome {
    /// The id of the event-log entry written for this item.
    pub fn event_id(&self) -> EventId {
        match self {
            Self::Accepted { event_id, .. } | Self::Duplicate { event_id, .. } => *event_id,
        }
    }
}

/// The most bytes of a rejected request's body kept in the event log.
pub const REJECTED_BODY_EXCERPT_BYTES: usize = 2 * 1024;

/// A request the service refused, logged so the operator can see it
/// (docs/product-decisions.md, "Answers").
#[derive(Clone, Debug)]
pub struct RejectedRequest {
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The source, when the token or key identified one.
    pub source: Option<String>,
    /// The environment, when known.
    pub environment: Option<String>,
    /// The error code answered (`invalid_json`, `bad_signature`, ...).
    pub code: String,
    /// The error message answered.
    pub message: String,
    /// The request body; only the first [`REJECTED_BODY_EXCERPT_BYTES`] are kept.
    pub body: Vec<u8>,
    /// Request headers, secrets already removed.
    pub headers: Headers,
}

/// An event-log entry's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored and planned.
    Accepted,
    /// A repeat within the dedup window.
    Duplicate,
    /// Refused by the service.
    Rejected,
}

/// An action's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Waiting in the outbox (first run or a retry).
    Pending,
    /// Leased by a worker.
    Running,
    /// Done.
    Succeeded,
    /// Failed permanently.
    Failed,
    /// Never runs (inactive mapping, invalid parameters, ...).
    Skipped,
}

macro_rules! str_enum {
    ($ty:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in the order declared.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The name stored and shown (`accepted`, `pending`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),* }
            }

            pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok(Self::$variant),)*
                    other => Err(StoreError::decode(stringify!($ty), format!("unknown status `{other}`"))),
                }
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, StoreError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(EventStatus { Accepted => "accepted", Duplicate => "duplicate", Rejected => "rejected" });
str_enum!(ActionStatus {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Skipped => "skipped",
});

/// One event-log entry as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRecord {
    /// Entry id (the event's id).
    pub id: EventId,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Source key, when known.
    pub source: Option<String>,
    /// Environment, when known.
    pub environment: Option<String>,
    /// Event type used for matching.
    pub event_type: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Dedup key.
    pub message_id: Option<String>,
    /// Status.
    pub status: EventStatus,
    /// For duplicates: the event repeated.
    pub duplicate_of: Option<EventId>,
    /// For rejected requests: the error (`code: message`).
    pub error: Option<String>,
    /// For rejected requests: the start of the body.
    pub body_excerpt: Option<String>,
    /// The normalized event (absent for rejected requests).
    pub event: Option<Event>,
    /// How it was planned (empty for rejected requests and older entries).
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// A recorded execution attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the worker claimed the action for this attempt.
    pub started_at: DateTime<Utc>,
    /// When the result was recorded.
    pub finished_at: DateTime<Utc>,
    /// `succeeded`, `failed` or `retry`.
    pub outcome: String,
    /// A short description of the receiver's answer.
    pub summary: String,
}

/// One action-log entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionRecord {
    /// The action's id (its idempotency key).
    pub id: ActionId,
    /// Its event.
    pub event_id: EventId,
    /// Position in the event's plans.
    pub position: u32,
    /// The action type.
    pub action: ActionType,
    /// The full plan (origin, payload or skip reason).
    pub plan: ActionPlan,
    /// Status.
    pub status: ActionStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// The last attempt's summary.
    pub last_error: Option<String>,
    /// When it next runs (pending actions).
    pub next_run_at: Option<DateTime<Utc>>,
    /// The worker holding it (running actions).
    pub lease_owner: Option<String>,
    /// Created with its event.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One event with its actions and their attempts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventDetail {
    /// The event-log entry.
    pub event: EventRecord,
    /// Its actions in plan order.
    pub actions: Vec<ActionRecord>,
    /// Every attempt of those actions, oldest first.
    pub attempts: Vec<(ActionId, AttemptRecord)>,
}

/// A leased action, handed to a worker by [`crate::Outbox::claim`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedAction {
    /// The action's id (its idempotency key).
    pub id: ActionId,
    /// Its event.
    pub event_id: EventId,
    /// The event's environment (the sink to use is configured per environment).
    pub environment: String,
    /// The event's source.
    pub source: String,
    /// The plan, with its resolved payload.
    pub plan: ActionPlan,
    /// This is attempt number `attempt` (1 for the first).
    pub attempt: u32,
    /// The lease ends at this time; after it, another worker may claim the action.
    pub lease_expires_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver accepted it.
    Succeeded {
        /// The receiver's answer, shortened.
        summary: String,
    },
    /// Failed for good (a 4xx other than 408/409/429, or out of retries).
    Failed {
        /// The receiver's answer or the error.
        summary: String,
    },
    /// Failed for now; run again at `at`.
    RetryAt {
        /// The receiver's answer or the error.
        summary: String,
        /// When to try again.
        at: DateTime<Utc>,
    },
}

impl AttemptOutcome {
    /// `succeeded`, `failed` or `retry`, as stored and in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::RetryAt { .. } => "retry",
        }
    }

    pub(crate) fn summary(&self) -> &str {
        match self {
            Self::Succeeded { summary }
            | Self::Failed { summary }
            | Self::RetryAt { summary, .. } => summary,
        }
    }
}

/// The most bytes of an attempt summary kept.
pub const ATTEMPT_SUMMARY_BYTES: usize = 2 * 1024;

/// Filters for [`crate::AdminQueries::list_events`]; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Source key.
    pub source: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Event type.
    pub event_type: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Status.
    pub status: Option<EventStatus>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
}

/// Which action-log entries to list; every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionFilter {
    /// Status.
    pub status: Option<ActionStatus>,
    /// Source key.
    pub source: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Action type (`trigger_workflow`, ...).
    pub action: Option<tributary_core::ActionType>,
    /// The event the actions belong to.
    pub event_id: Option<EventId>,
    /// The user id of their event.
    pub user_id: Option<String>,
    /// Their event received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Their event received before.
    pub until: Option<DateTime<Utc>>,
}

/// The most log entries SQLite examines for one page of a filter no index
/// serves (event type, user id, status on the event log; source,
/// environment, action, user id on the action log): a page then holds the
/// matches among that many entries, fewer than asked perhaps, and its
/// cursor continues below them, so a rare value never makes one read scan
/// the whole log (docs/store.md, "Admin queries").
pub const FILTER_SCAN_ROWS: usize = 20_000;

/// A page of results, newest first, and the cursor for the next one. A page
/// may hold fewer items than asked and still have a cursor: see
/// [`FILTER_SCAN_ROWS`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T, C> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `before` to get the next (older) page; `None` at the end.
    pub next_cursor: Option<C>,
}

/// Per-source status for the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// Source key.
    pub source: String,
    /// Environment.
    pub environment: String,
    /// Entries (any status) received in the last 30 days.
    pub count_30d: u64,
    /// The last time anything arrived.
    pub last_received_at: Option<DateTime<Utc>>,
}

/// A mapping's runtime `active` override.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingOverride {
    /// Source key.
    pub source: String,
    /// Environment.
    pub environment: String,
    /// Mapping id.
    pub mapping: String,
    /// The override.
    pub active: bool,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
}

/// An event type seen on a source environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnownEventType {
    /// The event type.
    pub event_type: String,
    /// Last time one arrived.
    pub last_seen_at: DateTime<Utc>,
}

/// What [`crate::Retention::prune`] removed in one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Event-log entries removed (with their actions and attempts).
    pub events: u64,
    /// Expired dedup keys removed.
    pub dedup_keys: u64,
}

/// The lease a claim takes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// What [`crate::LocalRecipients::apply_local`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalEffect {
    /// The payload was applied now.
    Applied,
    /// A trigger was applied now, but named users that were never
    /// identified (or were deleted): as in the product, no run is made for
    /// them. `run` is false when none of its recipients was known, so no
    /// run was made at all; the action still succeeds, as the product's does.
    AppliedSkipping {
        /// The user ids skipped, once each, in the trigger's order.
        unknown_recipients: Vec<String>,
        /// Whether a run was made for the other recipients.
        run: bool,
    },
    /// This action id was applied before; nothing changed.
    AlreadyApplied,
}

/// At most this many skipped recipient ids are named in a summary.
const SUMMARY_IDS: usize = 10;

/// At most this many bytes of one id are named in a summary.
const SUMMARY_ID_BYTES: usize = 64;

impl LocalEffect {
    /// What the action log records for the attempt.
    pub fn summary(&self) -> String {
        match self {
            Self::Applied => "applied to local recipients".to_owned(),
            Self::AlreadyApplied => "already applied".to_owned(),
            Self::AppliedSkipping {
                unknown_recipients,
                run,
            } => {
                let mut ids = unknown_recipients
                    .iter()
                    .take(SUMMARY_IDS)
                    .map(|id| match truncate(id, SUMMARY_ID_BYTES) {
                        cut if cut.len() < id.len() => format!("{cut}..."),
                        _ => id.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Some(more) = unknown_recipients.len().checked_sub(SUMMARY_IDS)
                    && more > 0
                {
                    ids.push_str(&format!(" and {more} more"));
                }
                if *run {
                    format!(
                        "applied to local recipients; no workflow run for {} recipient(s) never identified: {ids}",
                        unknown_recipients.len()
                    )
                } else {
                    format!("no workflow run: no recipient was ever identified ({ids})")
                }
            }
        }
    }
}

/// Which due actions the store runs itself, decided once when it is opened
/// (the service derives it from the configuration: docs/store.md, "Local
/// actions run inside the store").
///
/// Running an action in the store is right only for an environment whose
/// sink is `local` writing to this same store, with no rate limit (a limit
/// is applied where the sink runs). Both backends run them in the
/// transaction that appends them; SQLite also runs older ones in the
/// transaction that takes them from the outbox, where PostgreSQL leases them
/// like any other action.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LocalExecution {
    /// Every action is leased and runs through its environment's sink.
    #[default]
    ThroughSink,
    /// The store runs the actions of these environments itself: in the
    /// append's transaction ([`AppendOutcome::Accepted`]'s `ran_local`), or,
    /// while older actions of theirs wait in the outbox (left by a run with
    /// other settings), in [`crate::Outbox::claim_running_local`] after
    /// them. The rest are leased.
    InStore(Vec<String>),
}

impl LocalExecution {
    /// The environments whose actions the store runs itself.
    pub fn in_store(&self) -> &[String] {
        match self {
            Self::ThroughSink => &[],
            Self::InStore(environments) => environments,
        }
    }
}

/// What one round of [`crate::Outbox::claim_running_local`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimRound {
    /// Actions leased to the caller, to run through their sinks.
    pub claimed: Vec<ClaimedAction>,
    /// Actions the store ran itself through the `local` sink, each with its
    /// attempt already recorded.
    pub ran_local: Vec<LocalRun>,
    /// The round stopped at its limit: more may be due now.
    pub more: bool,
}

/// An action the store ran through the `local` sink in the same transaction
/// that appended it or took it from the outbox, and recorded its attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRun {
    /// The action.
    pub id: ActionId,
    /// Its environment.
    pub environment: String,
    /// How the attempt ended: succeeded, or failed for good (a payload the
    /// `local` sink cannot apply). Never a retry: a store error fails the
    /// whole round instead, and the actions stay due.
    pub outcome: AttemptOutcome,
}

impl LocalRun {
    /// Counts the attempt (`tributary_action_attempts_total`, like a sink's)
    /// and logs a failure; call once the run is durable.
    pub fn report(&self) {
        let name = self.outcome.name();
        metrics::counter!("tributary_action_attempts_total", "sink" => "local", "outcome" => name)
            .increment(1);
        if let AttemptOutcome::Failed { summary } = &self.outcome {
            tracing::warn!(action_id = %self.id, sink = "local", error = %summary, "Action failed permanently.");
        } else {
            tracing::debug!(action_id = %self.id, sink = "local", attempt_outcome = name, "Action attempted in the store.");
        }
    }
}

/// One action for [`crate::LocalRecipients::apply_local_many`].
#[derive(Clone, Debug, PartialEq)]
pub struct LocalApply {
    /// The action: its effect happens once per id.
    pub action: ActionId,
    /// Environment slug (local recipients are per environment).
    pub environment: String,
    /// What to apply.
    pub payload: tributary_core::plan::ActionPayload,
}

/// The kinds of records the `local` sink keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalKind {
    /// A user; scope is empty.
    User,
    /// An object; scope is the collection.
    Object,
    /// A tenant; scope is empty.
    Tenant,
    /// An audience; scope is empty.
    Audience,
    /// An audience member; scope is the audience key, id is the user id
    /// (with `@tenant` appended for tenant-scoped members).
    AudienceMember,
    /// A subscription; scope is `collection/object_id`, id is the recipient
    /// (a user id, or `collection/id` for an object).
    Subscription,
    /// A workflow run; scope is the workflow key, id is the action id.
    WorkflowRun,
}

str_enum!(LocalKind {
    User => "user",
    Object => "object",
    Tenant => "tenant",
    Audience => "audience",
    AudienceMember => "audience_member",
    Subscription => "subscription",
    WorkflowRun => "workflow_run",
});

/// A stored local record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocalRecord {
    /// Kind.
    pub kind: LocalKind,
    /// The environment it belongs to: each environment has its own recipients.
    pub environment: String,
    /// Scope (see [`LocalKind`]).
    pub scope: String,
    /// Id.
    pub id: String,
    /// The merged attributes.
    pub data: Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Cuts a string to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first ULID string of millisecond `t`: ids below it were received before `t`.
pub(crate) fn id_floor(t: DateTime<Utc>) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    Ulid::from_parts(ms, 0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_summary_names_at_most_ten_short_ids() {
        let mut unknown: Vec<String> = (0..12).map(|n| format!("u{n}")).collect();
        unknown[0] = "é".repeat(40);
        let summary = LocalEffect::AppliedSkipping {
            unknown_recipients: unknown,
            run: true,
        }
        .summary();
        assert!(
            summary.starts_with(&format!(
                "applied to local recipients; no workflow run for 12 recipient(s) never identified: {}..., u1,",
                "é".repeat(32)
            )),
            "{summary}"
        );
        assert!(summary.ends_with("u9 and 2 more"), "{summary}");
        let none = LocalEffect::AppliedSkipping {
            unknown_recipients: vec!["u3".into()],
            run: false,
        };
        assert_eq!(
            none.summary(),
            "no workflow run: no recipient was ever identified (u3)"
        );
    }

    proptest::proptest! {
        #[test]
        fn truncate_keeps_a_char_boundary_prefix(s in "\\PC{0,40}", max in 0usize..50) {
            let t = truncate(&s, max);
            proptest::prop_assert!(t.len() <= max);
            proptest::prop_assert!(s.starts_with(t));
            // Nothing more of `s` fits: the next char would pass `max`.
            if let Some(c) = s[t.len()..].chars().next() {
                proptest::prop_assert!(t.len() + c.len_utf8() > max);
            }
        }

        #[test]
        fn status_and_id_names_round_trip(ms in 0u64..(1 << 47), random in proptest::num::u128::ANY, name in "[a-z_]{0,12}") {
            let id = ActionId::generate(EventId::from_parts(ms, random));
            proptest::prop_assert_eq!(id.to_string().parse::<ActionId>().ok(), Some(id));
            // The action sorts with its event's millisecond.
            proptest::prop_assert_eq!(id.to_string()[..10].to_owned(), EventId::from_parts(ms, 0).to_string()[..10].to_owned());
            for status in ["accepted", "duplicate", "rejected"] {
                proptest::prop_assert_eq!(status.parse::<EventStatus>().map(EventStatus::as_str).ok(), Some(status));
            }
            // Unknown names are typed errors, never panics.
            let known = ["pending", "running", "succeeded", "failed", "skipped"];
            proptest::prop_assert_eq!(name.parse::<ActionStatus>().is_ok(), known.contains(&name.as_str()));
        }

        #[test]
        fn id_floor_orders_like_time(a in 0i64..(1 << 45), b in 0i64..(1 << 45)) {
            let (ta, tb) = (from_ms(a), from_ms(b));
            proptest::prop_assert_eq!(id_floor(ta).cmp(&id_floor(tb)), a.cmp(&b));
        }
    }
}
