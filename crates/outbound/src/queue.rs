//! The durable on-disk queue: SQLite in WAL mode with `synchronous=FULL`, one
//! writer thread, group commit.
//!
//! Design constraints:
//! - [`DurableQueue::enqueue`] returns `Ok` only after the transaction holding
//!   the entries has committed, and with `synchronous=FULL` a WAL commit is
//!   fsync'd: an acknowledged entry survives `kill -9` and power loss.
//! - Every operation goes through one thread that owns the connection (the
//!   workspace's group commit, [`tributary_group_commit`]). It drains whatever
//!   is waiting and runs it in one transaction, so one fsync covers many
//!   callers: that is what makes durable enqueues cheap under load. Each
//!   operation runs in its own savepoint, so one that fails is undone alone
//!   and never fails the others in its group.
//! - Row ids come from `AUTOINCREMENT`, so they only grow, even after the
//!   queue empties; a dispatcher can keep a cursor ("everything above id N")
//!   and never miss a row written later, including by another process (the
//!   CLI's redrive or backfill) sharing the file.
//! - Delivered entries are deleted; undeliverable ones move to the dead letter
//!   table in the same transaction (see [`crate::dead_letter`]). So the queue
//!   table holds only undelivered entries; the dead letters are what grows,
//!   and [`crate::retention`] bounds them.
//! - Every accepted `(environment, messageId)` is remembered, so a repeat of
//!   a queued or recently accepted message is dropped at enqueue, checked in
//!   the same transaction as the insert (see [`crate::RedeliveryWindow`]).
//! - Long work (a large redrive, pruning a backlog) goes through the writer
//!   in bounded steps, each its own operation, so enqueues keep getting
//!   through between them.
//!
//! On-disk format (one file plus its `-wal`):
//! ```text
//! queue(id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT, message_id TEXT,
//!       payload BLOB /* the message's JSON */, enqueued_at INTEGER /* unix ms */)
//! dead_letters(id, environment, message_id, payload, enqueued_at, failed_at, reason, status,
//!              redrive_requested_at /* unix ms, NULL unless a redrive is under way */)
//! recent_messages(environment, message_id, accepted_at, queue_id, dead_lettered_at)
//! ```

use std::{collections::BTreeMap, path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::error;
use tributary_group_commit::{GroupState, GroupWriter, JobError, Settings};

use crate::{
    OutboundError, QueueFailure,
    dead_letter::{self, Burial, DeadLetter, DeadLetterFilter, Pruned},
    message::EncodedMessage,
    redelivery::{self, Redelivery, RedeliveryWindow},
    unix_ms,
};

/// Dead letters moved back to the queue per transaction by a redrive.
pub const REDRIVE_BATCH: usize = 500;

/// An entry to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The environment (selects the write key at send time).
    pub environment: String,
    /// The message's `messageId`.
    pub message_id: String,
    /// The message's JSON.
    pub payload: Vec<u8>,
}

impl NewEntry {
    /// Environment, `messageId` and payload, as the tables store them.
    fn columns(&self) -> (&str, &str, &[u8]) {
        (&self.environment, &self.message_id, &self.payload)
    }
}

/// A queued entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Row id: increases with every enqueue.
    pub id: i64,
    /// The environment.
    pub environment: String,
    /// The message's `messageId`.
    pub message_id: String,
    /// The message's JSON.
    pub payload: Vec<u8>,
    /// When it was queued.
    pub enqueued_at: DateTime<Utc>,
}

impl AsRef<[u8]> for Entry {
    fn as_ref(&self) -> &[u8] {
        &self.payload
    }
}

/// Where [`DurableQueue::submit`] (or [`DurableQueue::enqueue`]) put a
/// message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for delivery, with its queue id.
    Queued(i64),
    /// Too large: recorded as a dead letter, with its dead-letter id.
    DeadLettered(i64),
    /// A repeat of a message queued, or accepted within the window: nothing
    /// was written (see [`crate::RedeliveryWindow`]).
    Duplicate(Redelivery),
}

impl Submitted {
    /// The queue id, when the message was queued.
    pub fn queued_id(&self) -> Option<i64> {
        match self {
            Self::Queued(id) => Some(*id),
            Self::DeadLettered(_) | Self::Duplicate(_) => None,
        }
    }
}

/// What [`DurableQueue::forget_messages`] forgot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Accepted longer ago than the window.
    pub by_age: u64,
    /// The oldest beyond the count cap.
    pub by_count: u64,
    /// Transactions run.
    pub steps: u64,
}

impl Forgotten {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.by_age + self.by_count
    }
}

/// Counts for `/metrics`, `/readyz` and the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending entries by environment.
    pub pending: BTreeMap<String, u64>,
    /// Dead letters.
    pub dead_letters: u64,
}

/// What the queue's writer thread keeps: the window, and the time a group
/// of operations shares.
struct QueueState {
    window: RedeliveryWindow,
    now_ms: i64,
}

impl GroupState for QueueState {
    type Error = OutboundError;

    fn begin(&mut self) {
        self.now_ms = Utc::now().timestamp_millis();
    }
}

impl JobError for OutboundError {
    fn sqlite(operation: &'static str, error: rusqlite::Error) -> Self {
        QueueFailure::new(operation, error).into()
    }
    fn overloaded() -> Self {
        QueueFailure::new("queue", "too many operations are waiting for the writer").into()
    }
    fn closed() -> Self {
        QueueFailure::new("queue", "the queue's writer thread has stopped").into()
    }
    fn replicate(&self) -> Self {
        match self {
            Self::Queue(q) => QueueFailure::new(q.operation, &q.detail).into(),
            other => QueueFailure::new("queue", other).into(),
        }
    }
}

/// A handle on the queue; clones share one writer thread.
#[derive(Clone, Debug)]
pub struct DurableQueue {
    writer: GroupWriter<QueueState>,
    added: Arc<watch::Sender<u64>>,
}

impl DurableQueue {
    /// Opens (or creates) the queue file and starts its writer thread,
    /// remembering accepted messages for [`RedeliveryWindow::default`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboundError> {
        Self::open_with(path, RedeliveryWindow::default())
    }

    /// [`DurableQueue::open`] with the window within which a repeat of an
    /// accepted message is dropped; the window is validated.
    pub fn open_with(
        path: impl AsRef<Path>,
        window: RedeliveryWindow,
    ) -> Result<Self, OutboundError> {
        window.validate()?;
        let path = path.as_ref();
        let fail =
            |e: rusqlite::Error| QueueFailure::new("open", format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(fail)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(
                QueueFailure::new("open", format!("journal mode is {mode}, not WAL")).into(),
            );
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous=FULL;
             BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 environment TEXT NOT NULL,
                 message_id TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 enqueued_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS queue_by_environment ON queue(environment, id);
             {}",
            dead_letter::SCHEMA
        ))
        .map_err(fail)?;
        // In the same IMMEDIATE transaction as the tables, so two processes
        // opening an old file at once cannot both add the column.
        dead_letter::migrate(&conn)
            .and_then(|()| redelivery::migrate(&conn))
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(fail)?;
        let (added, _) = watch::channel(0);
        let state = QueueState { window, now_ms: 0 };
        let settings = Settings {
            isolate_jobs: true,
            ..Settings::named("outbound-queue")
        };
        let writer =
            GroupWriter::spawn(conn, state, settings).map_err(|e| QueueFailure::new("open", e))?;
        Ok(Self {
            writer,
            added: Arc::new(added),
        })
    }

    /// Runs `f` in the writer's next group; `Ok` once its commit is on disk.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection, &QueueState) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, OutboundError> {
        self.writer
            .write(move |conn, state| {
                f(conn, state).map_err(|e| {
                    error!(operation, error = %e, "Queue operation failed.");
                    QueueFailure::new(operation, e).into()
                })
            })
            .await
    }

    /// Wakes dispatchers; called before answering, so a caller that sees
    /// its entry queued also finds the wake-up already posted.
    fn wake_dispatchers(&self) {
        self.added.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Queues entries, except repeats of messages queued or accepted within
    /// the window (see [`crate::RedeliveryWindow`]), which are dropped in the same
    /// transaction; `Ok` (one [`Submitted::Queued`] or
    /// [`Submitted::Duplicate`] per entry, in order) only once the new ones
    /// are on disk.
    pub async fn enqueue(&self, entries: Vec<NewEntry>) -> Result<Vec<Submitted>, OutboundError> {
        self.submit_entries(entries.into_iter().map(|e| (e, None)).collect())
            .await
    }

    async fn submit_entries(
        &self,
        entries: Vec<(NewEntry, Option<Burial>)>,
    ) -> Result<Vec<Submitted>, OutboundError> {
        let submitted = self
            .run("enqueue", move |conn, state| {
                submit(conn, &entries, state.now_ms, &state.window)
            })
            .await?;
        self.wake_dispatchers();
        Ok(submitted)
    }

    /// Records entries that are refused before queuing (over the size limit)
    /// directly as dead letters, durably. Not checked for repeats, nor
    /// remembered: [`DurableQueue::submit`] is the path that does both.
    pub async fn dead_letter_new(
        &self,
        entries: Vec<(NewEntry, Burial)>,
    ) -> Result<Vec<i64>, OutboundError> {
        self.run("dead-letter", move |conn, state| {
            entries
                .iter()
                .map(|(e, burial)| dead_letter::insert(conn, e.columns(), burial, state.now_ms))
                .collect()
        })
        .await
    }

    /// Up to `limit` entries of `environment` with ids above `after`, oldest
    /// first.
    pub async fn fetch(
        &self,
        environment: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboundError> {
        let environment = environment.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("fetch", move |conn, _| {
            conn.prepare_cached(
                "SELECT id, environment, message_id, payload, enqueued_at FROM queue
                 WHERE environment = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?
            .query_map(params![environment, after, limit], |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    environment: r.get(1)?,
                    message_id: r.get(2)?,
                    payload: r.get(3)?,
                    enqueued_at: unix_ms::from_ms(r.get(4)?),
                })
            })?
            .collect()
        })
        .await
    }

    /// Removes delivered entries.
    pub async fn acknowledge(&self, ids: Vec<i64>) -> Result<(), OutboundError> {
        self.run("acknowledge", move |conn, _| {
            let mut stmt = conn.prepare_cached("DELETE FROM queue WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
            Ok(())
        })
        .await
    }

    /// Moves entries to the dead letters.
    pub async fn bury(&self, entries: Vec<(i64, Burial)>) -> Result<(), OutboundError> {
        self.run("dead-letter", move |conn, state| {
            for (id, burial) in &entries {
                dead_letter::bury(conn, *id, burial, state.now_ms)?;
            }
            Ok(())
        })
        .await
    }

    /// Lists dead letters, oldest first.
    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, OutboundError> {
        self.run("list dead letters", move |conn, _| {
            dead_letter::list(conn, &filter)
        })
        .await
    }

    /// Moves matching dead letters back into the queue (with their
    /// `messageId`); returns how many it asked for. Returns once every marked
    /// row has moved, in transactions of at most [`REDRIVE_BATCH`] rows and
    /// about [`crate::STEP_BYTES`], so a redrive of millions does not stall enqueues.
    pub async fn redrive(&self, filter: DeadLetterFilter) -> Result<usize, OutboundError> {
        let requested = self.request_redrive(filter).await?;
        while self.finish_redrives(REDRIVE_BATCH).await? > 0 {}
        Ok(requested)
    }

    /// The first step of [`DurableQueue::redrive`]: marks matching dead
    /// letters as being redriven, which protects them from pruning; returns
    /// how many were newly marked.
    pub async fn request_redrive(&self, filter: DeadLetterFilter) -> Result<usize, OutboundError> {
        self.run("request redrive", move |conn, state| {
            dead_letter::mark_for_redrive(conn, &filter, state.now_ms)
        })
        .await
    }

    /// The second step: moves marked dead letters (from any redrive,
    /// including one interrupted by a crash) to the end of the queue, at most
    /// `limit` rows and about [`crate::STEP_BYTES`] of payload in one transaction;
    /// returns how many moved, 0 once none are left.
    pub async fn finish_redrives(&self, limit: usize) -> Result<usize, OutboundError> {
        let moved = self
            .run("redrive", move |conn, state| {
                dead_letter::move_marked(conn, limit, state.now_ms)
            })
            .await?;
        self.wake_dispatchers();
        Ok(moved)
    }

    /// Removes dead letters in one transaction, at most `limit` rows and
    /// about [`crate::STEP_BYTES`] of payload (0 once nothing is left to remove):
    /// those that failed before `failed_before` (oldest first), then, in each
    /// environment holding more than `keep_at_most`, its oldest. Dead letters being
    /// redriven are neither removed nor counted. See
    /// [`crate::retention::Pruner`] for the loop that calls this.
    pub async fn prune_dead_letters(
        &self,
        failed_before: Option<DateTime<Utc>>,
        keep_at_most: Option<u64>,
        limit: usize,
    ) -> Result<Pruned, OutboundError> {
        let failed_before_ms = failed_before.map(|t| t.timestamp_millis());
        self.run("prune dead letters", move |conn, _| {
            dead_letter::prune(conn, failed_before_ms, keep_at_most, limit)
        })
        .await
    }

    /// Moves queued entries of `environment` to the dead letters with
    /// `burial`, oldest first, in one transaction of at most `limit` rows and
    /// about [`crate::STEP_BYTES`] of payload; returns how many moved, 0 once
    /// none are left. For an environment nobody delivers (see
    /// [`crate::Forwarding`]): a dispatcher sending that environment's
    /// entries would find them gone after delivery and leave dead-letter
    /// copies behind.
    pub async fn bury_environment(
        &self,
        environment: &str,
        burial: Burial,
        limit: usize,
    ) -> Result<usize, OutboundError> {
        let environment = environment.to_owned();
        self.run("dead-letter an environment's queue", move |conn, state| {
            dead_letter::bury_environment(conn, &environment, &burial, limit, state.now_ms)
        })
        .await
    }

    /// Dead letters per environment.
    pub async fn dead_letter_counts(&self) -> Result<BTreeMap<String, u64>, OutboundError> {
        self.run("count dead letters", |conn, _| {
            dead_letter::count_by_environment(conn)
        })
        .await
    }

    /// Pending and dead-letter counts.
    pub async fn stats(&self) -> Result<QueueStats, OutboundError> {
        self.run("stats", |conn, _| {
            let pending = conn
                .prepare_cached("SELECT environment, COUNT(*) FROM queue GROUP BY environment")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .map(|r| r.map(|(env, n)| (env, u64::try_from(n).unwrap_or(0))))
                .collect::<rusqlite::Result<_>>()?;
            let dead: i64 =
                conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
            Ok(QueueStats {
                pending,
                dead_letters: u64::try_from(dead).unwrap_or(0),
            })
        })
        .await
    }

    /// Queues encoded messages for `environment`, except those over
    /// `max_event_bytes`, which go straight to the dead letters (Segment would
    /// refuse them; retrying cannot help), and repeats (see
    /// [`crate::RedeliveryWindow`]), which are dropped. All in one transaction;
    /// `Ok` only once it is on disk.
    pub async fn submit(
        &self,
        environment: &str,
        messages: Vec<EncodedMessage>,
        max_event_bytes: usize,
    ) -> Result<Vec<Submitted>, OutboundError> {
        let entries = messages
            .into_iter()
            .map(|m| {
                let size = m.json.len();
                let burial = (size > max_event_bytes).then(|| Burial {
                    reason: format!(
                        "{size} bytes, over the {max_event_bytes}-byte limit per event"
                    ),
                    status: None,
                });
                let entry = NewEntry {
                    environment: environment.to_owned(),
                    message_id: m.message_id,
                    payload: m.json,
                };
                (entry, burial)
            })
            .collect();
        self.submit_entries(entries).await
    }

    /// Forgets remembered messages (see [`crate::RedeliveryWindow`]) accepted
    /// longer ago than the window and, beyond its count cap, the oldest;
    /// never one still queued. Runs in transactions that each read at most
    /// `limit` entries, until none is left or `stop` is cancelled.
    pub async fn forget_messages(
        &self,
        limit: usize,
        stop: &CancellationToken,
    ) -> Result<Forgotten, OutboundError> {
        let cutoff = self
            .run("forget remembered messageIds", |conn, state| {
                redelivery::cutoff(conn, state.now_ms, &state.window)
            })
            .await?;
        let mut after = redelivery::Position::start();
        let mut forgotten = Forgotten::default();
        loop {
            let (cutoff, limit) = (cutoff.clone(), limit.max(1));
            let step = self
                .run("forget remembered messageIds", move |conn, _| {
                    redelivery::forget(conn, &cutoff, &after, limit)
                })
                .await?;
            forgotten.by_age += step.by_age as u64;
            forgotten.by_count += step.by_count as u64;
            forgotten.steps += 1;
            match step.next {
                Some(next) if !stop.is_cancelled() => after = next,
                _ => return Ok(forgotten),
            }
            // Let other tasks' queue operations in before the next step.
            tokio::task::yield_now().await;
        }
    }

    /// A receiver that changes whenever this process queues entries, so
    /// dispatchers wake without polling.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.added.subscribe()
    }
}

/// Queues each entry, or dead-letters it on arrival when it has a burial,
/// unless it repeats one queued or accepted within the window.
fn submit(
    conn: &Connection,
    entries: &[(NewEntry, Option<Burial>)],
    now_ms: i64,
    window: &RedeliveryWindow,
) -> rusqlite::Result<Vec<Submitted>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO queue (environment, message_id, payload, enqueued_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut out = Vec::with_capacity(entries.len());
    for (e, burial) in entries {
        if let Some(earlier) =
            redelivery::earlier_copy(conn, &e.environment, &e.message_id, now_ms, window)?
        {
            out.push(Submitted::Duplicate(earlier));
            continue;
        }
        let (submitted, queue_id) = match burial {
            None => {
                insert.execute(params![e.environment, e.message_id, e.payload, now_ms])?;
                let id = conn.last_insert_rowid();
                (Submitted::Queued(id), Some(id))
            }
            Some(burial) => {
                let id = dead_letter::insert(conn, e.columns(), burial, now_ms)?;
                (Submitted::DeadLettered(id), None)
            }
        };
        redelivery::remember(conn, &e.environment, &e.message_id, queue_id, now_ms)?;
        out.push(submitted);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue ids of entries that must all have been queued.
    fn queued(submitted: Vec<Submitted>) -> Vec<i64> {
        submitted
            .iter()
            .map(|s| s.queued_id().unwrap_or_else(|| panic!("not queued: {s:?}")))
            .collect()
    }

    fn entry(env: &str, n: usize) -> NewEntry {
        NewEntry {
            environment: env.into(),
            message_id: format!("m-{n}"),
            payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
        }
    }

    #[tokio::test]
    async fn entries_survive_reopening_and_leave_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let q = DurableQueue::open(&path).unwrap();
            let ids = queued(
                q.enqueue((0..5).map(|n| entry("prod", n)).collect())
                    .await
                    .unwrap(),
            );
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            q.enqueue(vec![entry("dev", 9)]).await.unwrap();
        }
        let q = DurableQueue::open(&path).unwrap();
        let got = q.fetch("prod", 0, 100).await.unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].message_id, "m-0");
        let after = q.fetch("prod", got[1].id, 2).await.unwrap();
        assert_eq!(
            after
                .iter()
                .map(|e| e.message_id.as_str())
                .collect::<Vec<_>>(),
            ["m-2", "m-3"]
        );
        q.acknowledge(got.iter().map(|e| e.id).collect())
            .await
            .unwrap();
        assert!(q.fetch("prod", 0, 100).await.unwrap().is_empty());
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.pending.get("dev"), Some(&1));
        assert_eq!(stats.pending.get("prod"), None);
    }

    #[tokio::test]
    async fn ids_keep_growing_after_the_queue_empties() {
        let dir = tempfile::tempdir().unwrap();
        let q = DurableQueue::open(dir.path().join("q.db")).unwrap();
        let first = queued(q.enqueue(vec![entry("p", 1)]).await.unwrap())[0];
        q.acknowledge(vec![first]).await.unwrap();
        let second = queued(q.enqueue(vec![entry("p", 2)]).await.unwrap())[0];
        assert!(second > first);
    }

    #[tokio::test]
    async fn dead_letters_are_listed_and_redriven_with_their_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let q = DurableQueue::open(dir.path().join("q.db")).unwrap();
        let ids = queued(
            q.enqueue(vec![entry("p", 1), entry("p", 2), entry("s", 3)])
                .await
                .unwrap(),
        );
        let burial = |r: &str| Burial {
            reason: r.into(),
            status: Some(400),
        };
        q.bury(vec![(ids[0], burial("bad")), (ids[2], burial("worse"))])
            .await
            .unwrap();
        q.dead_letter_new(vec![(
            entry("p", 4),
            Burial {
                reason: "too large".into(),
                status: None,
            },
        )])
        .await
        .unwrap();
        let all = q.dead_letters(DeadLetterFilter::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].reason, "bad");
        assert_eq!(all[0].status, Some(400));
        assert_eq!(all[2].status, None);
        let only_p = DeadLetterFilter {
            environment: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(q.dead_letters(only_p.clone()).await.unwrap().len(), 2);
        let watcher = q.subscribe();
        assert_eq!(q.redrive(only_p).await.unwrap(), 2);
        assert!(watcher.has_changed().unwrap());
        let pending = q.fetch("p", ids[1], 10).await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|e| e.message_id.as_str())
                .collect::<Vec<_>>(),
            ["m-1", "m-4"]
        );
        let left = q.dead_letters(DeadLetterFilter::default()).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].environment, "s");
        let by_id = DeadLetterFilter {
            ids: Some(vec![left[0].id, 999]),
            ..Default::default()
        };
        assert_eq!(q.redrive(by_id).await.unwrap(), 1);
        assert_eq!(q.stats().await.unwrap().dead_letters, 0);
    }

    #[tokio::test]
    async fn concurrent_enqueues_are_grouped_and_all_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let q = DurableQueue::open(dir.path().join("q.db")).unwrap();
        let mut tasks = Vec::new();
        for n in 0..200 {
            let q = q.clone();
            tasks.push(tokio::spawn(
                async move { q.enqueue(vec![entry("p", n)]).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(q.fetch("p", 0, 1_000).await.unwrap().len(), 200);
    }
}
