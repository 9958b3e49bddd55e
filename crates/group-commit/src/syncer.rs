//! The deferred writer's sync thread: journal syncs overlap the next
//! group's work.
//!
//! A group's journaled jobs may be answered only once the journal holding
//! them is on disk, and that `fdatasync` is the longest step of a group.
//! Run on the writer thread, it would keep the next group waiting even
//! though the next group's inserts need nothing from it. So the writer
//! hands each group's sync (what [`GroupState::journal`] returns) and its
//! journaled answers to this thread, and goes on. Syncs run in the order
//! handed off; when several wait, only the last runs, since a journal's
//! sync makes everything written before it durable.
//!
//! A failed sync fails every answer handed off after it, until the writer
//! takes the failure ([`SyncLine::settle`]), rolls the open transaction
//! back and lets the state put back what was durable. The writer settles
//! before every commit and rollback, so a transaction never commits rows
//! whose journal sync is still running or has failed, and the state's
//! journal bookkeeping at a commit (which file holds what) never races a
//! sync.
//!
//! [`GroupState::journal`]: super::GroupState::journal

use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};

use tracing::error;

use super::{Completion, JobError};

/// A journal sync handed off by [`super::GroupState::journal`]: makes
/// durable what that call and every earlier one wrote, and fails with the
/// error every answer waiting for it gets.
pub type JournalSync<E> = Box<dyn FnOnce() -> Result<(), E> + Send>;

/// One group's part: its sync, if it wrote to the journal, and the answers
/// of its journaled jobs.
struct Handoff<E> {
    sync: Option<JournalSync<E>>,
    answers: Vec<Completion<E>>,
}

/// What the writer and the sync thread share.
struct Line<E> {
    state: Mutex<LineState<E>>,
    /// Signalled whenever the thread has answered a handoff.
    answered: Condvar,
}

struct LineState<E> {
    /// Handoffs not answered yet.
    waiting: usize,
    /// A sync failed: every later handoff fails with it until the writer
    /// takes it.
    failed: Option<E>,
}

/// The writer's end of the sync thread.
pub(super) struct SyncLine<E: JobError> {
    tx: Option<mpsc::Sender<Handoff<E>>>,
    line: Arc<Line<E>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<E: JobError> SyncLine<E> {
    /// Starts the sync thread, named after the writer's.
    pub(super) fn spawn(writer_thread: &str) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Handoff<E>>();
        let line = Arc::new(Line {
            state: Mutex::new(LineState {
                waiting: 0,
                failed: None,
            }),
            answered: Condvar::new(),
        });
        let shared = Arc::clone(&line);
        // Linux shows 15 bytes of a thread's name: "sqlite-writer" syncs
        // on "sqlite-sync".
        let stem = writer_thread
            .strip_suffix("-writer")
            .unwrap_or(writer_thread);
        let name: String = stem.chars().take(10).chain("-sync".chars()).collect();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&rx, &shared))?;
        Ok(Self {
            tx: Some(tx),
            line,
            thread: Some(thread),
        })
    }

    /// Queues a group's sync and the answers waiting for it; they are
    /// answered in the order handed off.
    pub(super) fn hand_off(&self, sync: Option<JournalSync<E>>, answers: Vec<Completion<E>>) {
        if sync.is_none() && answers.is_empty() {
            return;
        }
        lock(&self.line).waiting += 1;
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(Handoff { sync, answers }));
        if let Some(Err(mpsc::SendError(lost))) = sent {
            // The thread is gone (it only stops when dropped, or panicked):
            // nothing can make these durable.
            let e = E::closed();
            for c in lost.answers {
                c(Some(&e));
            }
            let mut state = lock(&self.line);
            state.waiting -= 1;
            state.failed.get_or_insert(e);
        }
    }

    /// A sync has failed and the writer has not taken it yet.
    pub(super) fn failed(&self) -> bool {
        lock(&self.line).failed.is_some()
    }

    /// Waits until every handoff is answered, and takes the failure of any
    /// sync since the last call.
    pub(super) fn settle(&self) -> Option<E> {
        let mut state = lock(&self.line);
        while state.waiting > 0 {
            state = self
                .line
                .answered
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.failed.take()
    }
}

impl<E: JobError> Drop for SyncLine<E> {
    /// Answers everything handed off before the writer thread ends.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<E>(line: &Line<E>) -> std::sync::MutexGuard<'_, LineState<E>> {
    // The state stays consistent whatever panicked while holding it: each
    // change is one field written at once.
    line.state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run<E: JobError>(rx: &mpsc::Receiver<Handoff<E>>, line: &Line<E>) {
    while let Ok(first) = rx.recv() {
        let mut handoffs = vec![first];
        handoffs.extend(rx.try_iter());
        let earlier = lock(line).failed.as_ref().map(JobError::replicate);
        let failure = match earlier {
            Some(e) => Some(e),
            // The last sync makes every earlier one's writes durable too.
            None => handoffs
                .iter_mut()
                .rev()
                .find_map(|h| h.sync.take())
                .and_then(|sync| sync().err()),
        };
        if let Some(e) = &failure {
            error!(error = %e, groups = handoffs.len(), "The journal could not be synced; its writes are refused and the open transaction is rolled back.");
        }
        let count = handoffs.len();
        for h in handoffs {
            for c in h.answers {
                c(failure.as_ref());
            }
        }
        let mut state = lock(line);
        if let Some(e) = failure {
            state.failed.get_or_insert(e);
        }
        state.waiting -= count;
        drop(state);
        line.answered.notify_all();
    }
}
