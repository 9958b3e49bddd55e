//! One SQLite writer thread with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` in WAL
//! mode every commit waits for an fsync. Both of Tributary's SQLite files (the
//! ingest store and the forwarder's queue) therefore hand every write to one
//! thread that owns the connection: it takes whatever jobs are waiting (up to
//! [`Settings::max_group`]), runs them in one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller with its job's own typed
//! result. One fsync covers the whole group, which is what makes durable
//! writes cheap under load, and an `Ok` is durable.
//!
//! What a writer keeps between groups (a cache, an in-memory index, the
//! timestamp a group shares) is its [`GroupState`]; each job gets it by
//! `&mut` together with the connection. The state's hooks run at the start
//! of a group, before its commit (to write what the jobs staged), after it,
//! and between groups (a WAL restart). A job's error says through
//! [`JobError::left_writes`] whether it may have written part of its work, in
//! which case the whole group rolls back; with [`Settings::isolate_jobs`]
//! each job runs in its own savepoint instead, so a failing job is undone
//! alone and never fails the others (at the price of a sub-journal copy of
//! every page it touches).
//!
//! Not every write needs its own fsync: [`GroupWriter::write_unsynced`]
//! queues a job whose loss in a power cut is harmless. A group made only of
//! such jobs waits up to [`UNSYNCED_WAIT`] for a synced job to share its
//! commit, then commits with `synchronous=NORMAL`; the WAL is appended in
//! order, so the next synced commit makes it durable too.
//!
//! With [`Settings::defer_commit`] the writer keeps one transaction open
//! across groups instead, for writers that make their writes durable
//! elsewhere first (the store's intake journal): see the `deferred` module
//! and [`GroupWriter::write_journaled`].
//!
//! ```
//! use tributary_group_commit::{GroupState, GroupWriter, Settings, SqliteJobError};
//!
//! #[derive(Default)]
//! struct Counter {
//!     groups: u64,
//! }
//!
//! impl GroupState for Counter {
//!     type Error = SqliteJobError;
//!     fn begin(&mut self) {
//!         self.groups += 1;
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let conn = rusqlite::Connection::open(dir.path().join("notes.db")).unwrap();
//! conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
//!                     CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);")
//!     .unwrap();
//! let writer = GroupWriter::spawn(conn, Counter::default(), Settings::named("notes-writer")).unwrap();
//! let id = writer
//!     .write(|conn, _state| {
//!         conn.execute("INSERT INTO notes (text) VALUES (?1)", ["durable once answered"])?;
//!         Ok(conn.last_insert_rowid())
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(id, 1);
//! # });
//! ```

mod deferred;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    time::{Duration, Instant},
};

use rusqlite::Connection;
use tokio::sync::oneshot;
use tracing::{debug, error};

/// How long unsynced jobs wait for a synced one to share its commit: every
/// commit rewrites the hot pages it touches (the right edge of each table
/// and index), so a commit of their own costs as many WAL frames as a commit
/// shared with durable writes.
pub const UNSYNCED_WAIT: Duration = Duration::from_millis(2);

/// What the writer thread keeps between groups, and its hooks.
pub trait GroupState: Send + 'static {
    /// What jobs and hooks fail with.
    type Error: JobError;

    /// After `BEGIN`, before the group's first job.
    fn begin(&mut self) {}

    /// After the group's jobs, before `COMMIT`: writes what the jobs
    /// staged. An error rolls the group back.
    fn finish(&mut self, _conn: &Connection) -> Result<(), Self::Error> {
        Ok(())
    }

    /// After the commit (`Ok`) or the rollback (`Err`) of a group of `jobs`,
    /// before any caller is answered.
    fn settled(&mut self, _outcome: Result<(), &Self::Error>, _jobs: usize) {}

    /// Between two groups, outside any transaction (e.g. a WAL checkpoint).
    fn idle(&mut self, _conn: &Connection) {}

    /// Deferred commits only ([`Settings::defer_commit`]): after the jobs
    /// and [`GroupState::finish`] of a group holding journaled jobs
    /// ([`GroupWriter::write_journaled`]), before anyone is answered. Makes
    /// what those jobs staged durable outside the database (an fsynced
    /// journal), since the transaction they wrote in commits later. An
    /// error fails the group as a job's error would.
    fn journal(&mut self, _conn: &Connection) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Deferred commits only: after the open transaction committed. With
    /// `synced`, the commit ran with `synchronous=FULL` and everything in it
    /// is on disk; otherwise with `NORMAL`: it survives a crash of the
    /// process, and is on disk once a checkpoint has copied it into the
    /// database file (SQLite fsyncs the WAL before and the database after).
    /// `took` is how long the `COMMIT` ran, for the state's metrics.
    fn committed(&mut self, _synced: bool, _took: Duration) {}

    /// Deferred commits only: after the open transaction was rolled back,
    /// outside any transaction. Must put back what the journaled jobs of
    /// its earlier groups wrote (they were answered), in a transaction of
    /// its own; whatever it cannot put back it must refuse to build on.
    fn recover(&mut self, _conn: &Connection) {}
}

/// What a writer's errors must be able to say.
pub trait JobError: std::fmt::Display + Send + 'static {
    /// A failure of SQLite itself (`BEGIN`, `COMMIT`, a savepoint).
    fn sqlite(operation: &'static str, error: rusqlite::Error) -> Self;
    /// The queue is full: nothing was written.
    fn overloaded() -> Self;
    /// The writer thread has stopped.
    fn closed() -> Self;
    /// One copy per caller of a failed group (errors are rarely `Clone`).
    fn replicate(&self) -> Self;
    /// Whether a job that failed with this may have written part of its
    /// work (the group must then roll back). Jobs check what they can before
    /// writing and fail with an error that answers `false`.
    fn left_writes(&self) -> bool {
        true
    }
}

/// A plain error for writers that need nothing more.
#[derive(Debug, thiserror::Error)]
pub enum SqliteJobError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(String),
    /// The queue was full.
    #[error("the writer's queue is full")]
    Overloaded,
    /// The writer thread has stopped.
    #[error("the writer has stopped")]
    Closed,
}

impl From<rusqlite::Error> for SqliteJobError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e.to_string())
    }
}

impl JobError for SqliteJobError {
    fn sqlite(operation: &'static str, error: rusqlite::Error) -> Self {
        Self::Sqlite(format!("{operation}: {error}"))
    }
    fn overloaded() -> Self {
        Self::Overloaded
    }
    fn closed() -> Self {
        Self::Closed
    }
    fn replicate(&self) -> Self {
        match self {
            Self::Sqlite(e) => Self::Sqlite(e.clone()),
            Self::Overloaded => Self::Overloaded,
            Self::Closed => Self::Closed,
        }
    }
}

/// How a writer runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Jobs waiting at most; beyond, a write fails at once with
    /// [`JobError::overloaded`] rather than queue without bound.
    pub queue_capacity: usize,
    /// Jobs committed together at most.
    pub max_group: usize,
    /// Each job in its own savepoint (see the crate docs).
    pub isolate_jobs: bool,
    /// The thread's name (Linux shows 15 bytes of it).
    pub thread_name: String,
    /// Deferred commits: keep one transaction open across groups for up to
    /// this long (see the crate docs); `None` commits every group.
    pub defer_commit: Option<Duration>,
}

impl Settings {
    /// 65,536 waiting jobs, groups of up to 4,096, no savepoints.
    pub fn named(thread_name: impl Into<String>) -> Self {
        Self {
            queue_capacity: 65_536,
            max_group: 4_096,
            isolate_jobs: false,
            thread_name: thread_name.into(),
            defer_commit: None,
        }
    }
}

/// What a job leaves for after the commit: answers its caller.
type Completion<E> = Box<dyn FnOnce(Option<&E>) + Send>;

/// What an `Ok` answer to a job promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// Committed with an fsync ([`GroupWriter::write`]).
    Commit,
    /// In the state's fsynced journal; committed later
    /// ([`GroupWriter::write_journaled`]).
    Journal,
    /// Committed or (deferred) in the open transaction; lost in a power cut
    /// ([`GroupWriter::write_unsynced`]).
    Unsynced,
    /// Deferred: commits the open transaction, without an fsync
    /// ([`GroupWriter::make_visible`]).
    Visible,
}

/// One queued write, type-erased.
trait Job<S: GroupState>: Send {
    fn execute(self: Box<Self>, conn: &Connection, state: &mut S, isolate: bool) -> Outcome<S>;
    fn abort(self: Box<Self>, err: S::Error);
    fn durability(&self) -> Durability;
}

struct Outcome<S: GroupState> {
    complete: Completion<S::Error>,
    /// The job failed after writing: the group must roll back.
    poison: Option<S::Error>,
}

struct TypedJob<F, T, E> {
    f: F,
    reply: oneshot::Sender<Result<T, E>>,
    durability: Durability,
}

impl<S, F, T> Job<S> for TypedJob<F, T, S::Error>
where
    S: GroupState,
    F: FnOnce(&Connection, &mut S) -> Result<T, S::Error> + Send,
    T: Send + 'static,
{
    fn execute(self: Box<Self>, conn: &Connection, state: &mut S, isolate: bool) -> Outcome<S> {
        let TypedJob { f, reply, .. } = *self;
        let (result, poison) = if isolate {
            isolated(conn, state, f)
        } else {
            let result = f(conn, state);
            let poison = match &result {
                Err(e) if e.left_writes() => Some(e.replicate()),
                _ => None,
            };
            (result, poison)
        };
        let complete = Box::new(move |commit: Option<&S::Error>| {
            let answer = match (result, commit) {
                (Ok(v), None) => Ok(v),
                (Ok(_), Some(e)) => Err(e.replicate()),
                (Err(e), _) => Err(e),
            };
            // The caller may have given up (timeout, dropped request): fine.
            let _ = reply.send(answer);
        });
        Outcome { complete, poison }
    }

    fn abort(self: Box<Self>, err: S::Error) {
        let _ = self.reply.send(Err(err));
    }

    fn durability(&self) -> Durability {
        self.durability
    }
}

/// Runs `f` in a savepoint, undoing it alone when it fails; only a failing
/// savepoint statement poisons the group.
fn isolated<S, F, T>(
    conn: &Connection,
    state: &mut S,
    f: F,
) -> (Result<T, S::Error>, Option<S::Error>)
where
    S: GroupState,
    F: FnOnce(&Connection, &mut S) -> Result<T, S::Error>,
{
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let e = S::Error::sqlite("savepoint", e);
        let poison = e.replicate();
        return (Err(e), Some(poison));
    }
    let result = f(conn, state);
    let close = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    match conn.execute_batch(close) {
        Ok(()) => (result, None),
        Err(e) => {
            let e = S::Error::sqlite("savepoint", e);
            let poison = e.replicate();
            (result.and(Err(e)), Some(poison))
        }
    }
}

/// The sending side of a writer's queue; clones share the thread, which
/// stops once every clone is dropped (after the jobs already queued).
pub struct GroupWriter<S: GroupState> {
    tx: SyncSender<Box<dyn Job<S>>>,
    /// A deferred transaction is open: readers on other connections may not
    /// see every answered write yet.
    open: Arc<AtomicBool>,
}

impl<S: GroupState> Clone for GroupWriter<S> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            open: Arc::clone(&self.open),
        }
    }
}

impl<S: GroupState> std::fmt::Debug for GroupWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter").finish_non_exhaustive()
    }
}

impl<S: GroupState> GroupWriter<S> {
    /// Starts the writer thread on `conn`, which must be in WAL mode with
    /// `synchronous=FULL` (the writer turns it down to `NORMAL` only for a
    /// group of unsynced jobs, and back).
    pub fn spawn(conn: Connection, state: S, settings: Settings) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue_capacity.max(1));
        let open = Arc::new(AtomicBool::new(false));
        let open_flag = Arc::clone(&open);
        std::thread::Builder::new()
            .name(settings.thread_name.clone())
            .spawn(move || {
                let mut state = state;
                match settings.defer_commit {
                    Some(age) => deferred::run(&conn, &rx, &mut state, &settings, age, &open_flag),
                    None => run(&conn, &rx, &mut state, &settings),
                }
            })?;
        Ok(Self { tx, open })
    }

    /// Queues `f` for the next group commit and waits for the commit and its
    /// fsync: an `Ok` is durable.
    pub async fn write<F, T>(&self, f: F) -> Result<T, S::Error>
    where
        F: FnOnce(&Connection, &mut S) -> Result<T, S::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Commit).await
    }

    /// Deferred commits: queues `f` and waits until the state's
    /// [`GroupState::journal`] hook has made its group durable; the
    /// transaction it wrote in commits later (within
    /// [`Settings::defer_commit`]). Without deferred commits, as
    /// [`GroupWriter::write`].
    pub async fn write_journaled<F, T>(&self, f: F) -> Result<T, S::Error>
    where
        F: FnOnce(&Connection, &mut S) -> Result<T, S::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Journal).await
    }

    /// Waits until every write answered so far is committed, so readers on
    /// other connections see it: with deferred commits and a transaction
    /// open, queues a commit; otherwise returns at once.
    pub async fn make_visible(&self) -> Result<(), S::Error> {
        if !self.open.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.queue(|_, _| Ok(()), Durability::Visible).await
    }

    /// Queues `f` for the next group commit and waits for the commit, which
    /// need not fsync: for writes that are safe to lose in a power cut (see
    /// the crate docs). They become durable with the next synced commit.
    pub async fn write_unsynced<F, T>(&self, f: F) -> Result<T, S::Error>
    where
        F: FnOnce(&Connection, &mut S) -> Result<T, S::Error> + Send + 'static,
        T: Send + 'static,
    {
        self.queue(f, Durability::Unsynced).await
    }

    async fn queue<F, T>(&self, f: F, durability: Durability) -> Result<T, S::Error>
    where
        F: FnOnce(&Connection, &mut S) -> Result<T, S::Error> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Box::new(TypedJob {
            f,
            reply,
            durability,
        })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(S::Error::overloaded()),
            Err(TrySendError::Disconnected(_)) => return Err(S::Error::closed()),
        }
        rx.await.map_err(|_| S::Error::closed())?
    }
}

fn run<S: GroupState>(
    conn: &Connection,
    rx: &Receiver<Box<dyn Job<S>>>,
    state: &mut S,
    settings: &Settings,
) {
    let max_group = settings.max_group.max(1);
    // The connection opens with synchronous=FULL.
    let mut synced = true;
    // Unsynced jobs waiting to ride along with the next synced group.
    let mut waiting: Vec<Box<dyn Job<S>>> = Vec::new();
    let mut waiting_since = Instant::now();
    loop {
        let first = if waiting.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(UNSYNCED_WAIT.saturating_sub(waiting_since.elapsed()))
        };
        let fresh = waiting.is_empty();
        let mut jobs = std::mem::take(&mut waiting);
        let stop = take_group(rx, first, &mut jobs, max_group);
        let needs_sync = jobs
            .iter()
            .any(|j| matches!(j.durability(), Durability::Commit | Durability::Journal));
        if !needs_sync
            && !stop
            && jobs.len() < max_group
            && (fresh || waiting_since.elapsed() < UNSYNCED_WAIT)
        {
            if fresh {
                waiting_since = Instant::now();
            }
            waiting = jobs;
            continue;
        }
        if !jobs.is_empty() && set_synchronous(conn, needs_sync, &mut synced, &mut jobs) {
            commit_group(conn, jobs, state, settings.isolate_jobs);
        }
        state.idle(conn);
        if stop {
            break;
        }
    }
    debug!(
        thread = settings.thread_name,
        "SQLite writer stopped: every handle was dropped."
    );
}

/// Adds `first` (what the wait for a job gave) and whatever else is waiting
/// to `jobs`, up to `max_group`; true when every handle is gone (stop once
/// these are done).
fn take_group<S: GroupState>(
    rx: &Receiver<Box<dyn Job<S>>>,
    first: Result<Box<dyn Job<S>>, RecvTimeoutError>,
    jobs: &mut Vec<Box<dyn Job<S>>>,
    max_group: usize,
) -> bool {
    let stop = match first {
        Ok(j) => {
            jobs.push(j);
            false
        }
        Err(RecvTimeoutError::Timeout) => false,
        Err(RecvTimeoutError::Disconnected) => true,
    };
    while jobs.len() < max_group {
        match rx.try_recv() {
            Ok(j) => jobs.push(j),
            Err(_) => break,
        }
    }
    stop
}

/// Sets `synchronous` to what the group needs; false when the group was
/// refused (fsync could not be turned back on), its jobs answered.
fn set_synchronous<S: GroupState>(
    conn: &Connection,
    needs_sync: bool,
    synced: &mut bool,
    jobs: &mut Vec<Box<dyn Job<S>>>,
) -> bool {
    if needs_sync == *synced {
        return true;
    }
    let pragma = if needs_sync {
        "PRAGMA synchronous = FULL"
    } else {
        "PRAGMA synchronous = NORMAL"
    };
    match conn.execute_batch(pragma) {
        Ok(()) => {
            *synced = needs_sync;
            true
        }
        // Staying on FULL is only slower; leaving NORMAL is a must.
        Err(e) if needs_sync => {
            error!(error = %e, "SQLite could not turn fsync back on; the group is refused.");
            let e = S::Error::sqlite("synchronous", e);
            for j in jobs.drain(..) {
                j.abort(e.replicate());
            }
            false
        }
        Err(e) => {
            debug!(error = %e, "SQLite stayed on synchronous=FULL.");
            true
        }
    }
}

fn commit_group<S: GroupState>(
    conn: &Connection,
    jobs: Vec<Box<dyn Job<S>>>,
    state: &mut S,
    isolate: bool,
) {
    let size = jobs.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        error!(error = %e, jobs = size, "SQLite could not begin a transaction.");
        let e = S::Error::sqlite("begin", e);
        for j in jobs {
            j.abort(e.replicate());
        }
        return;
    }
    state.begin();
    let mut poisoned = None;
    let mut completions = Vec::with_capacity(size);
    for j in jobs {
        let outcome = j.execute(conn, state, isolate);
        if poisoned.is_none() {
            poisoned = outcome.poison;
        }
        completions.push(outcome.complete);
    }
    let result = match poisoned {
        Some(e) => Err(e),
        None => state.finish(conn).and_then(|()| {
            conn.execute_batch("COMMIT")
                .map_err(|e| S::Error::sqlite("commit", e))
        }),
    };
    if let Err(e) = &result {
        error!(error = %e, jobs = size, "SQLite group commit failed; nothing in it was stored.");
        // Leaves the connection usable for the next group whatever state
        // the failed commit left it in.
        let _ = conn.execute_batch("ROLLBACK");
        state.settled(Err(e), size);
    } else {
        state.settled(Ok(()), size);
    }
    let failure = result.err();
    for c in completions {
        c(failure.as_ref());
    }
}

#[cfg(test)]
mod tests;
