//! The SQLite writer thread and its group commit.
//!
//! Every write is a job on a bounded queue. The one writer thread takes
//! whatever is waiting (up to `max_batch` jobs), runs them in one `BEGIN
//! IMMEDIATE` transaction and commits once. A job that fails after writing
//! fails the whole group (jobs check everything they can before writing).
//!
//! The commit itself does not wait for the disk: the connection runs with
//! `synchronous=NORMAL`, and the [`WalSyncer`] thread fsyncs the WAL after
//! the commit and only then answers the jobs that promise durability, while
//! this thread already runs the next group. An `Ok` from [`Writer::write`]
//! is durable (see `syncer` for why that is as strong as
//! `synchronous=FULL`).
//!
//! Not every write needs an fsync. The workers' bookkeeping (local effects,
//! attempt records, pruning) is queued with [`Writer::write_unsynced`] and
//! answered as soon as its group commits. A power loss before the next fsync
//! loses at most that bookkeeping, and an action whose attempt was lost runs
//! again (execution is at least once, and the local sink applies an action id
//! once). Claims use [`Writer::write_lazy`]: like bookkeeping they may wait
//! for company, but they are answered after an fsync, so a worker never acts
//! on an event that a power cut could still take back. What callers outside
//! the process are told (an append's 2xx, an admin change) always waits for
//! an fsync.
//!
//! The writer also owns the in-memory dedup index (see [`DedupIndex`]): jobs
//! stage their key changes in the [`Batch`], and the index takes them only
//! once the commit succeeded, so it never holds a key the database lost.

use std::{
    collections::HashMap,
    sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError},
    time::{Duration, Instant},
};

use rusqlite::Connection;
use tokio::sync::oneshot;
use tracing::{debug, error};
use tributary_core::event::EventId;

use super::{
    checkpoint::RestartRequest,
    syncer::{self, SyncState, WalSyncer},
};
use crate::{StoreError, stats::BatchStats};

/// A live dedup key: the event it points to and when it stops blocking repeats.
#[derive(Clone, Copy, Debug)]
pub(super) struct DedupEntry {
    pub(super) event_id: EventId,
    pub(super) expires_ms: i64,
}

/// Scope hash -> live key, for every key whose window has not passed.
pub(super) type DedupIndex = HashMap<i64, DedupEntry>;

/// What the jobs of one group commit share.
pub(super) struct Batch<'a> {
    pub(super) stats: BatchStats,
    /// Dedup keys written by this group's jobs so far.
    pub(super) keys: DedupIndex,
    /// Drop index entries expired at this time once committed (pruning).
    pub(super) expire_before: Option<i64>,
    /// The committed index.
    pub(super) index: &'a DedupIndex,
    /// A job failed half-way: the group must roll back.
    pub(super) poisoned: Option<StoreError>,
    /// This group's number once committed (counted from 1 since the writer
    /// started); the syncer reports how far it has synced in these numbers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) group: u64,
}

impl Batch<'_> {
    /// The live key for `hash`, seeing this group's uncommitted writes.
    pub(super) fn key(&self, hash: i64) -> Option<DedupEntry> {
        self.keys
            .get(&hash)
            .or_else(|| self.index.get(&hash))
            .copied()
    }
}

/// What a job leaves for after the commit: answers its caller.
pub(super) type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// When a job's caller is answered, and whether the job may wait for others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Durability {
    /// Commits with the next group; answered once an fsync covers it.
    Synced,
    /// May wait briefly to share a group; answered once an fsync covers it.
    Lazy,
    /// May wait briefly to share a group; answered at its commit.
    Unsynced,
}

impl Durability {
    fn may_wait(self) -> bool {
        self != Self::Synced
    }

    fn after_sync(self) -> bool {
        self != Self::Unsynced
    }
}

/// One queued write.
pub(super) trait Job: Send {
    /// Runs the job inside the open transaction.
    fn execute(self: Box<Self>, conn: &Connection, batch: &mut Batch<'_>) -> Completion;
    /// Answers the caller without running (the transaction could not start).
    fn abort(self: Box<Self>, err: StoreError);
    /// When the caller is answered.
    fn durability(&self) -> Durability;
}

struct WriteJob<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    durability: Durability,
}

/// Errors a job returns before its first write (checked in `ops`), so the
/// group can still commit the other jobs.
fn before_any_write(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::LeaseLost { .. }
            | StoreError::NotFound { .. }
            | StoreError::InvalidInput { .. }
    )
}

/// One item's outcome inside a job that handles many (attempts, local
/// effects): an error found before the item wrote anything is that item's
/// result and the others go on; any other error fails the job, and its group.
pub(super) fn item_result<T>(
    r: Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    match r {
        Err(e) if before_any_write(&e) => Ok(Err(e)),
        other => other.map(Ok),
    }
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
            && !before_any_write(e)
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

    fn durability(&self) -> Durability {
        self.durability
    }
}

/// The sending side of the commit queue.
#[derive(Clone)]
pub(super) struct Writer {
    tx: SyncSender<Box<dyn Job>>,
    sync: std::sync::Arc<SyncState>,
}

impl Writer {
    /// Queues `f` for the next group commit and waits for the commit and an
    /// fsync after it: an `Ok` is durable.
    pub(super) async fn write<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Synced).await
    }

    /// Like [`Writer::write`], but `f` may wait up to 2 ms to share a group
    /// with other writes: for writes nobody outside the process waits on,
    /// whose effects must still not outrun durability (claims).
    pub(super) async fn write_lazy<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Lazy).await
    }

    /// Queues `f` for a group commit and waits for the commit only, not for
    /// an fsync: for writes that are safe to lose in a power cut (see the
    /// module docs). They become durable with the next fsync.
    pub(super) async fn write_unsynced<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Unsynced).await
    }

    /// What the syncer has made durable so far (for tests).
    #[cfg(test)]
    pub(super) fn sync_state(&self) -> &SyncState {
        &self.sync
    }

    async fn queue<F, T>(&self, f: F, durability: Durability) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(&Connection, &mut Batch<'a>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        if self.sync.broken() {
            return Err(syncer::broken_error());
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Box::new(WriteJob {
            f,
            reply,
            durability,
        })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StoreError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Starts the writer thread on `conn` (opened on `path`, with
/// `synchronous=NORMAL`) and its WAL syncer. `keep` (the process lock) lives
/// as long as the thread.
pub(super) fn spawn(
    conn: Connection,
    path: &std::path::Path,
    index: DedupIndex,
    keep: Connection,
    queue_capacity: usize,
    max_batch: usize,
    restart: RestartRequest,
) -> std::io::Result<Writer> {
    let syncer = WalSyncer::spawn(path)?;
    let sync = std::sync::Arc::clone(syncer.state());
    let (tx, rx) = std::sync::mpsc::sync_channel(queue_capacity);
    std::thread::Builder::new()
        .name("tributary-sqlite-writer".into())
        .spawn(move || {
            let mut index = index;
            let mut groups = Groups {
                syncer,
                committed: 0,
            };
            run(
                &conn,
                &rx,
                &mut index,
                max_batch.max(1),
                &restart,
                &mut groups,
            );
            drop(keep);
        })?;
    Ok(Writer { tx, sync })
}

/// Where committed groups go: numbered, then to the syncer.
struct Groups {
    syncer: WalSyncer,
    committed: u64,
}

/// How long jobs that may wait (claims, bookkeeping) wait for an urgent one
/// (an append) to share its commit.
const UNSYNCED_WAIT: Duration = Duration::from_millis(2);

/// How often a group waiting for the syncer looks again (it has no way to
/// be woken by the syncer and by a new job at once).
const SYNC_POLL: Duration = Duration::from_micros(150);

/// The group being built: its transaction is open and its jobs have run.
struct OpenGroup {
    stats: BatchStats,
    keys: DedupIndex,
    expire_before: Option<i64>,
    poisoned: Option<StoreError>,
    number: u64,
    completions: Vec<(Durability, Completion)>,
    urgent: bool,
    since: Instant,
}

impl OpenGroup {
    fn begin(conn: &Connection, groups: &Groups) -> Result<Self, StoreError> {
        if groups.syncer.state().broken() {
            return Err(syncer::broken_error());
        }
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
            let e = StoreError::from(e);
            error!(error = %e, "SQLite could not begin a transaction.");
            e
        })?;
        Ok(Self {
            stats: BatchStats::default(),
            keys: DedupIndex::new(),
            expire_before: None,
            poisoned: None,
            number: groups.committed + 1,
            completions: Vec::new(),
            urgent: false,
            since: Instant::now(),
        })
    }

    fn execute(&mut self, conn: &Connection, job: Box<dyn Job>, index: &DedupIndex) {
        let durability = job.durability();
        self.urgent |= !durability.may_wait();
        let mut batch = Batch {
            stats: std::mem::take(&mut self.stats),
            keys: std::mem::take(&mut self.keys),
            expire_before: self.expire_before,
            index,
            poisoned: self.poisoned.take(),
            group: self.number,
        };
        let completion = job.execute(conn, &mut batch);
        self.stats = batch.stats;
        self.keys = batch.keys;
        self.expire_before = batch.expire_before;
        self.poisoned = batch.poisoned;
        self.completions.push((durability, completion));
    }

    /// Whether to commit now: the group is full, or it has something to
    /// commit for and the disk is free. While the syncer flushes the last
    /// group, this one keeps taking (and running) jobs, so one fsync covers
    /// as much as the disk's latency lets arrive, and the writer's CPU work
    /// overlaps the flush instead of waiting for it.
    fn ready(&self, max_batch: usize, groups: &Groups) -> bool {
        self.completions.len() >= max_batch
            || ((self.urgent || self.since.elapsed() >= UNSYNCED_WAIT)
                && groups.syncer.state().idle())
    }

    /// How long to wait for another job before looking again.
    fn patience(&self) -> Duration {
        if self.urgent {
            SYNC_POLL
        } else {
            UNSYNCED_WAIT
                .saturating_sub(self.since.elapsed())
                .max(SYNC_POLL)
        }
    }
}

fn run(
    conn: &Connection,
    rx: &Receiver<Box<dyn Job>>,
    index: &mut DedupIndex,
    max_batch: usize,
    restart: &RestartRequest,
    groups: &mut Groups,
) {
    // Jobs that may wait (claims, worker bookkeeping) ride along with the
    // next urgent group: every commit rewrites the hot pages it touches (the
    // right edge of each table and index), so a commit of its own costs as
    // many WAL frames as a commit shared with appends.
    let mut open: Option<OpenGroup> = None;
    let mut stop = false;
    loop {
        if let Some(group) = open.take_if(|g| stop || g.ready(max_batch, groups)) {
            commit(conn, group, index, groups);
            restart.serve(conn);
            continue;
        }
        if stop {
            break;
        }
        let next = match &open {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(g) => rx.recv_timeout(g.patience()),
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                stop = true;
                continue;
            }
        };
        let group = match &mut open {
            Some(g) => g,
            None => match OpenGroup::begin(conn, groups) {
                Ok(g) => open.insert(g),
                Err(e) => {
                    job.abort(e);
                    continue;
                }
            },
        };
        group.execute(conn, job, index);
        while group.completions.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => group.execute(conn, job, index),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
    }
    debug!("SQLite writer stopped: every store handle was dropped.");
}

fn commit(conn: &Connection, mut group: OpenGroup, index: &mut DedupIndex, groups: &mut Groups) {
    let size = group.completions.len();
    let result = match group.poisoned.take() {
        Some(e) => Err(e),
        None => super::ops::flush_stats(conn, &group.stats)
            .and_then(|()| conn.execute_batch("COMMIT").map_err(StoreError::from)),
    };
    if let Err(e) = result {
        error!(error = %e, jobs = size, "SQLite group commit failed; nothing in it was stored.");
        // Leaves the connection usable for the next group whatever state
        // the failed commit left it in.
        let _ = conn.execute_batch("ROLLBACK");
        for (_, c) in group.completions {
            c(Some(&e));
        }
        return;
    }
    // How many writes share one commit: the group commit at work.
    metrics::histogram!("tributary_store_commit_batch_size", "backend" => "sqlite")
        .record(size as f64);
    index.extend(group.keys);
    if let Some(t) = group.expire_before {
        index.retain(|_, e| e.expires_ms > t);
    }
    groups.committed = group.number;
    let mut after_sync = Vec::new();
    for (durability, c) in group.completions {
        if durability.after_sync() {
            after_sync.push(c);
        } else {
            c(None);
        }
    }
    if !after_sync.is_empty() {
        groups.syncer.after_sync(group.number, after_sync);
    }
}
