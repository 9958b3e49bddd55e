//! Redeliveries: the same event handed to the queue again.
//!
//! The product re-sends a webhook it got no timely answer for, and each copy
//! carries the same Segment `messageId` (see
//! [`crate::transform::derive_message_id`]). Queuing both would send the
//! event twice: Segment drops the repeat, but both count against its rate
//! limits and the forwarder's throughput. So the queue remembers every
//! `(environment, messageId)` it accepted, and [`crate::DurableQueue::submit`]
//! (and [`crate::DurableQueue::enqueue`]) drop a repeat, answering
//! [`crate::Submitted::Duplicate`]:
//!
//! - while the first copy is still queued, however long that lasts (an
//!   outage of days included);
//! - otherwise for [`RedeliveryWindow::max_age`] after the first copy was
//!   accepted, whether it was delivered or dead-lettered since.
//!
//! After that a repeat is queued again, as a new first copy. A redrive is the
//! operator asking for a resend and is never checked; it restarts the window.
//!
//! The check runs in the writer's transaction, right before the insert it
//! guards, so two copies arriving together (in one group, or from two
//! processes sharing the file) queue one: there is no moment between check
//! and insert where another writer could slip in. It is durable: the memory
//! is a table in the queue file, so it holds across restarts.
//!
//! Space is bounded twice: [`crate::Pruner`] forgets entries accepted more
//! than `max_age` ago and, beyond [`RedeliveryWindow::max_count`], the
//! oldest, in steps of a bounded number of rows, so under a flood the window
//! shrinks rather than the file growing. An entry whose copy is still queued
//! is never forgotten; those are bounded by the queue itself.
//!
//! ```
//! use tributary_outbound::{DurableQueue, FirstCopy, NewEntry, Submitted};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let queue = DurableQueue::open(dir.path().join("queue.db"))?;
//! let sent = || NewEntry { environment: "production".into(),
//!                          message_id: "knock-1".into(), payload: b"{}".to_vec() };
//! assert!(matches!(queue.enqueue(vec![sent()]).await?[..], [Submitted::Queued(_)]));
//! // The product's retry of the same webhook: not queued again.
//! let [Submitted::Duplicate(repeat)] = queue.enqueue(vec![sent()]).await?[..] else {
//!     unreachable!("a repeat of a queued message is dropped");
//! };
//! assert_eq!(repeat.first_copy, FirstCopy::Queued);
//! assert_eq!(queue.stats().await?.pending["production"], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```text
//! recent_messages(environment, message_id /* primary key together */,
//!                 accepted_at /* unix ms */, queue_id /* NULL when refused on arrival */,
//!                 dead_lettered_at /* unix ms, NULL unless it went to the dead letters */)
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{OutboundError, unix_ms::from_ms};

/// Default [`RedeliveryWindow::max_age`]: 24 hours, longer than the product
/// keeps retrying a webhook.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Default [`RedeliveryWindow::max_count`].
pub(crate) const DEFAULT_MAX_COUNT: u64 = 1_000_000;

/// How long, and how many, accepted `messageId`s are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedeliveryWindow {
    /// A repeat accepted less than this after the first copy is dropped
    /// (one still queued is dropped whatever its age).
    pub max_age: Duration,
    /// Beyond the newest this many, the older entries are forgotten, except
    /// those still queued.
    pub max_count: u64,
}

impl Default for RedeliveryWindow {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            max_count: DEFAULT_MAX_COUNT,
        }
    }
}

impl RedeliveryWindow {
    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), OutboundError> {
        let bad = |key: &str, problem: &str| {
            Err(OutboundError::InvalidSetting {
                key: key.to_owned(),
                problem: problem.to_owned(),
            })
        };
        if self.max_age.is_zero() {
            return bad("max_age", "must be longer than zero");
        }
        if self.max_count == 0 {
            return bad("max_count", "must be at least 1");
        }
        Ok(())
    }

    fn max_age_ms(&self) -> i64 {
        i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX)
    }
}

/// What became of the first copy of a repeated message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstCopy {
    /// Still queued: it will be sent once.
    Queued,
    /// Sent to Segment (it answered 2xx).
    Delivered,
    /// Moved to the dead letters (refused, too large, not forwarded); a
    /// redrive sends it.
    DeadLettered,
}

impl FirstCopy {
    /// A stable code for answers and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Why an entry was dropped as a repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redelivery {
    /// Where the first copy is.
    pub first_copy: FirstCopy,
    /// When the first copy was accepted.
    pub first_accepted_at: DateTime<Utc>,
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recent_messages (
    environment TEXT NOT NULL,
    message_id TEXT NOT NULL,
    accepted_at INTEGER NOT NULL,
    queue_id INTEGER,
    dead_lettered_at INTEGER,
    PRIMARY KEY (environment, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recent_messages_by_accepted_at
    ON recent_messages(accepted_at, environment, message_id);";

/// Creates the table; on a file written before it existed, remembers what is
/// queued there, so a repeat of a row queued before the upgrade is caught.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let existed = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recent_messages'")?
        .exists([])?;
    conn.execute_batch(SCHEMA)?;
    if !existed {
        conn.execute_batch(
            "INSERT OR IGNORE INTO recent_messages (environment, message_id, accepted_at, queue_id)
             SELECT environment, message_id, enqueued_at, id FROM queue ORDER BY id",
        )?;
    }
    Ok(())
}

/// The earlier copy of `(environment, message_id)` if one counts: still
/// queued, or accepted within the window.
pub(crate) fn earlier_copy(
    conn: &Connection,
    environment: &str,
    message_id: &str,
    now_ms: i64,
    window: &RedeliveryWindow,
) -> rusqlite::Result<Option<Redelivery>> {
    let found = conn
        .prepare_cached(
            "SELECT r.accepted_at, r.dead_lettered_at IS NOT NULL,
                    EXISTS (SELECT 1 FROM queue q WHERE q.id = r.queue_id)
             FROM recent_messages r WHERE r.environment = ?1 AND r.message_id = ?2",
        )?
        .query_row(params![environment, message_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })
        .optional()?;
    let Some((accepted_at, dead_lettered, queued)) = found else {
        return Ok(None);
    };
    let first_copy = if queued {
        FirstCopy::Queued
    } else if now_ms.saturating_sub(accepted_at) >= window.max_age_ms() {
        return Ok(None);
    } else if dead_lettered {
        FirstCopy::DeadLettered
    } else {
        FirstCopy::Delivered
    };
    Ok(Some(Redelivery {
        first_copy,
        first_accepted_at: from_ms(accepted_at),
    }))
}

/// Remembers a newly accepted first copy (replacing an expired entry):
/// queued as `queue_id`, or dead-lettered on arrival when `queue_id` is
/// `None`.
pub(crate) fn remember(
    conn: &Connection,
    environment: &str,
    message_id: &str,
    queue_id: Option<i64>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let dead_lettered_at = queue_id.is_none().then_some(now_ms);
    conn.prepare_cached(
        "INSERT INTO recent_messages (environment, message_id, accepted_at, queue_id, dead_lettered_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (environment, message_id) DO UPDATE SET
             accepted_at = excluded.accepted_at, queue_id = excluded.queue_id,
             dead_lettered_at = excluded.dead_lettered_at",
    )?
    .execute(params![
        environment,
        message_id,
        now_ms,
        queue_id,
        dead_lettered_at
    ])?;
    Ok(())
}

/// Notes that queue row `queue_id` moved to the dead letters (before the row
/// is deleted), so a repeat is answered with where the first copy went.
pub(crate) fn dead_lettered(conn: &Connection, queue_id: i64, now_ms: i64) -> rusqlite::Result<()> {
    let key: Option<(String, String)> = conn
        .prepare_cached("SELECT environment, message_id FROM queue WHERE id = ?1")?
        .query_row([queue_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((environment, message_id)) = key {
        conn.prepare_cached(
            "UPDATE recent_messages SET dead_lettered_at = ?4
             WHERE environment = ?1 AND message_id = ?2 AND queue_id = ?3",
        )?
        .execute(params![environment, message_id, queue_id, now_ms])?;
    }
    Ok(())
}

/// Where a forgetting pass is: the last entry it looked at, in
/// `recent_messages_by_accepted_at` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    accepted_at: i64,
    environment: String,
    message_id: String,
}

impl Position {
    fn key(&self) -> (i64, &str, &str) {
        (self.accepted_at, &self.environment, &self.message_id)
    }

    /// Before every entry.
    pub(crate) fn start() -> Self {
        Self {
            accepted_at: i64::MIN,
            environment: String::new(),
            message_id: String::new(),
        }
    }
}

/// What one pass forgets: entries accepted before `age_ms` (the window),
/// and entries up to and including `beyond_cap` in index order (the oldest
/// beyond the count cap), whichever reaches further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cutoff {
    age_ms: i64,
    beyond_cap: Option<Position>,
}

impl Cutoff {
    /// The upper bound of the entries to look at, in index order, and
    /// whether it is itself included. Ties on `accepted_at` (a group commit
    /// stamps all its entries alike) are split by key, so the cap never
    /// forgets more than it must.
    fn bound(&self) -> (Position, bool) {
        let by_age = Position {
            accepted_at: self.age_ms,
            environment: String::new(),
            message_id: String::new(),
        };
        match &self.beyond_cap {
            Some(cap) if cap.key() >= by_age.key() => (cap.clone(), true),
            _ => (by_age, false),
        }
    }
}

/// The pass's cutoff, computed once so the pass ends while entries keep
/// aging. Finding the cap's cutoff walks `max_count` index entries, once per
/// pass.
pub(crate) fn cutoff(
    conn: &Connection,
    now_ms: i64,
    window: &RedeliveryWindow,
) -> rusqlite::Result<Cutoff> {
    let beyond_cap = conn
        .prepare_cached(
            "SELECT accepted_at, environment, message_id
             FROM recent_messages INDEXED BY recent_messages_by_accepted_at
             ORDER BY accepted_at DESC, environment DESC, message_id DESC LIMIT 1 OFFSET ?1",
        )?
        .query_row([i64::try_from(window.max_count).unwrap_or(i64::MAX)], |r| {
            Ok(Position {
                accepted_at: r.get(0)?,
                environment: r.get(1)?,
                message_id: r.get(2)?,
            })
        })
        .optional()?;
    Ok(Cutoff {
        age_ms: now_ms.saturating_sub(window.max_age_ms()),
        beyond_cap,
    })
}

/// What one forgetting step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) by_age: usize,
    pub(crate) by_count: usize,
    /// Where the next step starts; `None` once nothing is left to look at.
    pub(crate) next: Option<Position>,
}

/// Looks at up to `limit` entries past the cutoff, oldest first, after
/// `after`, and forgets those whose copy is no longer queued. Still-queued
/// ones are stepped over (the position moves past them), so a backlog older
/// than the window costs each step at most `limit` rows read.
pub(crate) fn forget(
    conn: &Connection,
    cutoff: &Cutoff,
    after: &Position,
    limit: usize,
) -> rusqlite::Result<Step> {
    let (bound, inclusive) = cutoff.bound();
    let sql = format!(
        "SELECT r.accepted_at, r.environment, r.message_id,
                EXISTS (SELECT 1 FROM queue q WHERE q.id = r.queue_id)
         FROM recent_messages r INDEXED BY recent_messages_by_accepted_at
         WHERE (r.accepted_at, r.environment, r.message_id) {} (?1, ?2, ?3)
           AND (r.accepted_at, r.environment, r.message_id) > (?4, ?5, ?6)
         ORDER BY r.accepted_at, r.environment, r.message_id LIMIT ?7",
        if inclusive { "<=" } else { "<" }
    );
    let candidates: Vec<(i64, String, String, bool)> = conn
        .prepare_cached(&sql)?
        .query_map(
            params![
                bound.accepted_at,
                bound.environment,
                bound.message_id,
                after.accepted_at,
                after.environment,
                after.message_id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut step = Step::default();
    let mut delete = conn
        .prepare_cached("DELETE FROM recent_messages WHERE environment = ?1 AND message_id = ?2")?;
    let full = candidates.len() >= limit;
    let mut last = None;
    for (accepted_at, environment, message_id, queued) in candidates {
        if !queued {
            delete.execute(params![environment, message_id])?;
            if accepted_at < cutoff.age_ms {
                step.by_age += 1;
            } else {
                step.by_count += 1;
            }
        }
        last = Some(Position {
            accepted_at,
            environment,
            message_id,
        });
    }
    step.next = if full { last } else { None };
    Ok(step)
}
