//! The SQLite writer thread and its group commit.
//!
//! Every write is a job on a bounded queue. The one writer thread takes
//! whatever is waiting (up to `max_batch` jobs), runs them in one `BEGIN
//! IMMEDIATE` transaction and commits once. A job that fails after writing
//! fails the whole group (jobs check everything they can before writing). With `synchronous=FULL` in WAL
//! mode the commit fsyncs the WAL before `COMMIT` returns, and only then are
//! the callers answered: an `Ok` is durable.
//!
//! Not every write needs its own fsync. The workers' bookkeeping (claims,
//! local effects, attempt records) is queued with [`Writer::write_unsynced`]:
//! a group made only of such jobs commits with `synchronous=NORMAL`, which
//! writes the WAL but does not fsync it. The WAL is appended in order, so the
//! next synced commit's fsync makes those frames durable too; a power loss
//! before it loses at most that bookkeeping, and an action whose attempt was
//! lost runs again (execution is at least once, and the local sink applies an
//! action id once). What callers outside the process are told (an append's
//! 2xx, an admin change) always waits for an fsync.
//!
//! The writer also owns the in-memory dedup index (see [`DedupIndex`]): jobs
//! stage their key changes in the [`Batch`], and the index takes them only
//! once the commit succeeded, so it never holds a key the database lost.

use std::{
    collections::HashMap,
    sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError},
    time::{Duration, Instant},
};

use rusqlite::Connection;
use tokio::sync::oneshot;
use tracing::{debug, error};
use tributary_core::event::EventId;

use super::{checkpoint::RestartRequest, ops::Ahead};
use crate::{StoreError, stats::BatchStats};

/// A live dedup key: when it stops blocking repeats, and the event it points
/// to when that is at hand (a key this group wrote); a committed key's event
/// is read from `dedup_log` when a repeat needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct DedupEntry {
    pub(super) event_id: Option<EventId>,
    pub(super) expires_ms: i64,
}

/// Scope hash -> expiry (ms), for every key whose window has not passed.
///
/// Only the expiry: the map holds every key of the window (a million keys
/// is under a minute at full speed). An entry with its event id took 48
/// bytes (a ULID is 16-byte aligned) against 16, which, with the table
/// doubling as it grows, put a 60 s full-speed run at 216 MiB against 110
/// (docs/PERFORMANCE.md, "Memory over a longer run"). Repeats are rare; they
/// pay one indexed read of `dedup_log`.
pub(super) type DedupIndex = HashMap<i64, i64>;

/// Keys written by a group's jobs, not yet committed.
pub(super) type StagedKeys = HashMap<i64, DedupEntry>;

/// Action id -> the `local` sink writes computed when it was appended, for
/// actions that read nothing (a trigger: the common case). The round that
/// runs the action takes them from here instead of decoding its plan and
/// building its records on the writer thread, which the caller's thread did
/// already. Only a cache: an action missing here (after a restart, a failed
/// group, or a cleared cache) has its writes computed from its plan, with
/// the same result, so entries never need to be durable or exact.
#[derive(Default)]
pub(super) struct ReadyLocal {
    writes: HashMap<String, Ahead>,
}

/// Entries kept at most. A round takes the entries of the actions it runs,
/// so the cache holds only the actions no round has reached yet; entries
/// nobody takes (an environment that stopped running locally, a group rolled
/// back) are dropped wholesale when it fills, which bounds the memory at a
/// few MiB.
const READY_LOCAL_MAX: usize = 8_192;

impl ReadyLocal {
    pub(super) fn put(&mut self, action_id: String, writes: Ahead) {
        if self.writes.len() >= READY_LOCAL_MAX {
            self.writes.clear();
        }
        self.writes.insert(action_id, writes);
    }

    pub(super) fn take(&mut self, action_id: &str) -> Option<Ahead> {
        self.writes.remove(action_id)
    }
}

/// What the jobs of one group commit share.
pub(super) struct Batch<'a> {
    pub(super) stats: BatchStats,
    /// Dedup keys written by this group's jobs so far.
    pub(super) keys: StagedKeys,
    /// Drop index entries expired at this time once committed (pruning).
    pub(super) expire_before: Option<i64>,
    /// The committed index.
    pub(super) index: &'a DedupIndex,
    /// A job failed half-way: the group must roll back.
    pub(super) poisoned: Option<StoreError>,
    /// Local writes made ready by appends (not rolled back with the group:
    /// see [`ReadyLocal`]).
    pub(super) ready: &'a mut ReadyLocal,
}

impl Batch<'_> {
    /// The live key for `hash`, seeing this group's uncommitted writes.
    pub(super) fn key(&self, hash: i64) -> Option<DedupEntry> {
        self.keys.get(&hash).copied().or_else(|| {
            self.index.get(&hash).map(|&expires_ms| DedupEntry {
                event_id: None,
                expires_ms,
            })
        })
    }
}

/// What a job leaves for after the commit: answers its caller.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// One queued write.
pub(super) trait Job: Send {
    /// Runs the job inside the open transaction.
    fn execute(self: Box<Self>, conn: &Connection, batch: &mut Batch<'_>) -> Completion;
    /// Answers the caller without running (the transaction could not start).
    fn abort(self: Box<Self>, err: StoreError);
    /// Whether the caller is answered only after an fsync.
    fn synced(&self) -> bool;
}

struct WriteJob<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    synced: bool,
}

impl<F, T> Job for WriteJob<F, T>
where
    F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn execute(self: Box<Self>, conn: &Connection, batch: &mut Batch<'_>) -> Completion {
        let WriteJob { f, reply, .. } = *self;
        // No savepoint per job: a savepoint copies every page it touches into
        // a sub-journal, which was the top cost in profiles. Jobs make all
        // their checks before writing; any other failure fails the group.
        let result = f(conn, batch);
        if let Err(e) = &result
            && !e.refused_before_writing()
        {
            batch.poisoned = Some(e.replicate());
        }
        Box::new(move |commit: Option<&StoreError>| {
            let answer = match (result, commit) {
                (Ok(v), None) => Ok(v),
                (Ok(_), Some(e)) => Err(e.replicate()),
                (Err(e), _) => Err(e),
            };
            // The caller may have given up (timeout, dropped request): fine.
            let _ = reply.send(answer);
        })
    }

    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
    }

    fn synced(&self) -> bool {
        self.synced
    }
}

/// The sending side of the commit queue.
#[derive(Clone)]
pub(super) struct Writer {
    tx: SyncSender<Box<dyn Job>>,
}

impl Writer {
    /// Queues `f` for the next group commit and waits for the commit and
    /// its fsync: an `Ok` is durable.
    pub(super) async fn write<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, true).await
    }

    /// Queues `f` for the next group commit and waits for the commit, which
    /// need not fsync: for writes that are safe to lose in a power cut (see
    /// the module docs). They become durable with the next synced commit.
    pub(super) async fn write_unsynced<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, false).await
    }

    async fn queue<F, T>(&self, f: F, synced: bool) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Box::new(WriteJob { f, reply, synced })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StoreError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Starts the writer thread on `conn`. `keep` (the process lock) lives as long as the thread.
pub(super) fn spawn(
    conn: Connection,
    index: DedupIndex,
    keep: Connection,
    queue_capacity: usize,
    max_batch: usize,
    restart: RestartRequest,
) -> std::io::Result<Writer> {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue_capacity);
    std::thread::Builder::new()
        // Linux shows 15 bytes of a thread's name (top -H, ps -L).
        .name(WRITER_THREAD.into())
        .spawn(move || {
            let mut index = index;
            let mut ready = ReadyLocal::default();
            run(
                &conn,
                &rx,
                &mut index,
                &mut ready,
                max_batch.max(1),
                &restart,
            );
            drop(keep);
        })?;
    Ok(Writer { tx })
}

/// The writer thread's name.
pub(super) const WRITER_THREAD: &str = "sqlite-writer";

/// How long unsynced jobs may wait for a synced one to share its commit.
const UNSYNCED_WAIT: Duration = Duration::from_millis(2);

fn run(
    conn: &Connection,
    rx: &Receiver<Box<dyn Job>>,
    index: &mut DedupIndex,
    ready: &mut ReadyLocal,
    max_batch: usize,
    restart: &RestartRequest,
) {
    // The connection opens with synchronous=FULL.
    let mut synced = true;
    // Unsynced jobs (worker bookkeeping) waiting to ride along with the next
    // synced group: every commit rewrites the hot pages it touches (the right
    // edge of each table and index), so a commit of its own costs as many
    // WAL frames as a commit shared with appends. Profiles at 5,000 events/s
    // had the worker's separate commits tripling the writer's WAL writes.
    let mut waiting: Vec<Box<dyn Job>> = Vec::new();
    let mut waiting_since = Instant::now();
    loop {
        let first = if waiting.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(UNSYNCED_WAIT.saturating_sub(waiting_since.elapsed()))
        };
        let fresh = waiting.is_empty();
        let mut jobs = std::mem::take(&mut waiting);
        let stop = match first {
            Ok(j) => {
                jobs.push(j);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let needs_sync = jobs.iter().any(|j| j.synced());
        if !needs_sync
            && !stop
            && jobs.len() < max_batch
            && (fresh || waiting_since.elapsed() < UNSYNCED_WAIT)
        {
            if fresh {
                waiting_since = Instant::now();
            }
            waiting = jobs;
            continue;
        }
        if !jobs.is_empty() {
            commit_with(conn, jobs, index, ready, needs_sync, &mut synced);
        }
        restart.serve(conn);
        if stop {
            break;
        }
    }
    debug!("SQLite writer stopped: every store handle was dropped.");
}

/// Commits `jobs`, first setting `synchronous` to what they need.
fn commit_with(
    conn: &Connection,
    jobs: Vec<Box<dyn Job>>,
    index: &mut DedupIndex,
    ready: &mut ReadyLocal,
    needs_sync: bool,
    synced: &mut bool,
) {
    if needs_sync != *synced {
        let pragma = if needs_sync {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        match conn.execute_batch(pragma) {
            Ok(()) => *synced = needs_sync,
            // Staying on FULL is only slower; leaving NORMAL is a must.
            Err(e) if needs_sync => {
                let e = StoreError::from(e);
                error!(error = %e, "SQLite could not turn fsync back on; the group is refused.");
                for j in jobs {
                    j.abort(e.replicate());
                }
                return;
            }
            Err(e) => debug!(error = %e, "SQLite stayed on synchronous=FULL."),
        }
    }
    commit_group(conn, jobs, index, ready);
}

fn commit_group(
    conn: &Connection,
    jobs: Vec<Box<dyn Job>>,
    index: &mut DedupIndex,
    ready: &mut ReadyLocal,
) {
    let size = jobs.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = StoreError::from(e);
        error!(error = %e, jobs = size, "SQLite could not begin a transaction.");
        for j in jobs {
            j.abort(e.replicate());
        }
        return;
    }
    let mut batch = Batch {
        stats: BatchStats::default(),
        keys: HashMap::new(),
        expire_before: None,
        index,
        poisoned: None,
        ready,
    };
    let completions: Vec<Completion> = jobs
        .into_iter()
        .map(|j| j.execute(conn, &mut batch))
        .collect();
    let result = match batch.poisoned.take() {
        Some(e) => Err(e),
        None => super::ops::flush_stats(conn, &batch.stats)
            .and_then(|()| conn.execute_batch("COMMIT").map_err(StoreError::from)),
    };
    let Batch {
        keys,
        expire_before,
        ..
    } = batch;
    let failure = result.err();
    match &failure {
        None => {
            // How many writes share one fsync: the group commit at work.
            metrics::histogram!("tributary_store_commit_batch_size", "backend" => "sqlite")
                .record(size as f64);
            index.extend(keys.into_iter().map(|(h, e)| (h, e.expires_ms)));
            if let Some(t) = expire_before {
                index.retain(|_, expires_ms| *expires_ms > t);
            }
        }
        Some(e) => {
            error!(error = %e, jobs = size, "SQLite group commit failed; nothing in it was stored.");
            // Leaves the connection usable for the next group whatever state
            // the failed commit left it in.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    for c in completions {
        c(failure.as_ref());
    }
}
