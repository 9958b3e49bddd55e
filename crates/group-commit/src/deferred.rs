//! Deferred commits: one transaction stays open across groups.
//!
//! Every SQLite commit rewrites the right-edge page of each table and index
//! it touched and the header page, whatever it holds, and a checkpoint
//! copies each of those pages again. With a commit per group of a few dozen
//! writes, those pages were most of what the store wrote. Here a group's
//! journaled jobs are made durable by the state's own journal
//! ([`GroupState::journal`], one sequential fsynced append) and answered;
//! the transaction they wrote in commits once it is
//! [`Settings::defer_commit`] old, when a job needs a commit of its own
//! ([`GroupWriter::write`], committed with `synchronous=FULL`), when a reader
//! needs one ([`GroupWriter::make_visible`]), or when the writer stops. Every
//! other commit runs with `synchronous=NORMAL`: the writer never waits for
//! the database's fsync, which the checkpointer pays instead, and the state
//! learns through [`GroupState::committed`] which commits were synced, so it
//! keeps its journal until a checkpoint has made the others durable.
//!
//! No savepoints: a group that fails after writing rolls back the whole open
//! transaction, and [`GroupState::recover`] puts the earlier groups'
//! journaled writes back from the journal. The unsynced jobs of those
//! groups are lost, as a power cut would lose them.
//!
//! [`GroupWriter::write`]: super::GroupWriter::write
//! [`GroupWriter::make_visible`]: super::GroupWriter::make_visible

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, RecvTimeoutError},
    },
    time::{Duration, Instant},
};

use rusqlite::Connection;
use tracing::{debug, error};

use super::{Completion, Durability, GroupState, Job, JobError, Settings, take_group};

/// The open transaction, as the loop tracks it.
struct Open<'a> {
    since: Option<Instant>,
    /// Shared with every [`super::GroupWriter`] handle.
    flag: &'a AtomicBool,
    /// The connection's `synchronous` is `FULL` (SQLite fixes it for a
    /// transaction when it begins). The connection opens with `FULL`.
    full: bool,
}

impl Open<'_> {
    /// Begins a transaction if none is open, `FULL` when `full`.
    fn begin(&mut self, conn: &Connection, full: bool) -> Result<(), rusqlite::Error> {
        if self.since.is_none() {
            if full != self.full {
                conn.execute_batch(if full {
                    "PRAGMA synchronous = FULL"
                } else {
                    "PRAGMA synchronous = NORMAL"
                })?;
                self.full = full;
            }
            conn.execute_batch("BEGIN IMMEDIATE")?;
            self.since = Some(Instant::now());
            self.flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn closed(&mut self) {
        self.since = None;
        self.flag.store(false, Ordering::SeqCst);
    }

    /// Commits the open transaction; on failure rolls it back and lets the
    /// state put back its journaled writes.
    fn commit<S: GroupState>(&mut self, conn: &Connection, state: &mut S) -> Option<S::Error> {
        self.since?;
        let started = Instant::now();
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.closed();
                state.committed(self.full, started.elapsed());
                None
            }
            Err(e) => {
                error!(error = %e, "SQLite could not commit the open transaction; its journaled writes are put back.");
                self.roll_back(conn, state);
                Some(S::Error::sqlite("commit", e))
            }
        }
    }

    /// Rolls the open transaction back and lets the state put back its
    /// journaled writes.
    fn roll_back<S: GroupState>(&mut self, conn: &Connection, state: &mut S) {
        // Leaves the connection usable whatever state the failure left it in.
        let _ = conn.execute_batch("ROLLBACK");
        self.closed();
        state.recover(conn);
    }
}

pub(super) fn run<S: GroupState>(
    conn: &Connection,
    rx: &Receiver<Box<dyn Job<S>>>,
    state: &mut S,
    settings: &Settings,
    max_age: Duration,
    flag: &AtomicBool,
) {
    let max_group = settings.max_group.max(1);
    let mut open = Open {
        since: None,
        flag,
        full: true,
    };
    loop {
        let first = match open.since {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => rx.recv_timeout(max_age.saturating_sub(t.elapsed())),
        };
        let mut jobs = Vec::new();
        let stop = take_group(rx, first, &mut jobs, max_group);
        let mut answers = Vec::new();
        let mut commit = stop;
        if !jobs.is_empty() {
            // A job that needs its own fsync'd commit gets a transaction
            // begun with FULL: what is open commits first (without one).
            let own = jobs.iter().any(|j| j.durability() == Durability::Commit);
            if own && !open.full {
                open.commit(conn, state);
            }
            if let Err(e) = open.begin(conn, own) {
                error!(error = %e, jobs = jobs.len(), "SQLite could not begin a transaction.");
                let e = S::Error::sqlite("begin", e);
                for j in jobs {
                    j.abort(e.replicate());
                }
                continue;
            }
            commit |=
                own || open.full || jobs.iter().any(|j| j.durability() == Durability::Visible);
            match run_group(conn, jobs, state) {
                Ok(done) => answers = done,
                Err((e, done)) => {
                    error!(error = %e, jobs = done.len(), "SQLite group failed; the open transaction is rolled back and its journaled writes put back.");
                    open.roll_back(conn, state);
                    for (_, c) in done {
                        c(Some(&e));
                    }
                    state.idle(conn);
                    if stop {
                        break;
                    }
                    continue;
                }
            }
        }
        commit |= open.since.is_some_and(|t| t.elapsed() >= max_age);
        // Journaled jobs stand without the commit (should it fail, `recover`
        // puts them back), so they are answered before it: a commit that is
        // due only because the transaction is old never delays an answer.
        let (journaled, after_commit): (Vec<_>, Vec<_>) = answers
            .into_iter()
            .partition(|(durability, _)| *durability == Durability::Journal);
        for (_, c) in journaled {
            c(None);
        }
        let failure = if commit {
            open.commit(conn, state)
        } else {
            None
        };
        for (_, c) in after_commit {
            c(failure.as_ref());
        }
        if open.since.is_none() {
            state.idle(conn);
        }
        if stop {
            break;
        }
    }
    debug!(
        thread = settings.thread_name,
        "SQLite writer stopped: every handle was dropped."
    );
}

type Answers<E> = Vec<(Durability, Completion<E>)>;

/// A failed group: the error, and its jobs' answers to give it to.
type Failed<E> = (E, Answers<E>);

/// Runs one group in the open transaction: its jobs, `finish`, and the
/// journal when it holds journaled jobs.
fn run_group<S: GroupState>(
    conn: &Connection,
    jobs: Vec<Box<dyn Job<S>>>,
    state: &mut S,
) -> Result<Answers<S::Error>, Failed<S::Error>> {
    let size = jobs.len();
    let journaled = jobs.iter().any(|j| j.durability() == Durability::Journal);
    state.begin();
    let mut poisoned = None;
    let mut answers = Vec::with_capacity(size);
    for j in jobs {
        let durability = j.durability();
        let outcome = j.execute(conn, state, false);
        if poisoned.is_none() {
            poisoned = outcome.poison;
        }
        answers.push((durability, outcome.complete));
    }
    let result = match poisoned {
        Some(e) => Err(e),
        None => state.finish(conn).and_then(|()| {
            if journaled {
                state.journal(conn)
            } else {
                Ok(())
            }
        }),
    };
    match result {
        Ok(()) => {
            state.settled(Ok(()), size);
            Ok(answers)
        }
        Err(e) => {
            state.settled(Err(&e), size);
            Err((e, answers))
        }
    }
}
