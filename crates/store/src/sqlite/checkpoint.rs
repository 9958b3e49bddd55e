//! Keeping the WAL short: a background checkpointer plus a restart request
//! the writer carries out.
//!
//! The checkpointer copies committed WAL frames into the database file on its
//! own connection with PASSIVE checkpoints, which never block the writer or
//! readers. That alone never lets the WAL start over: SQLite restarts the log
//! only when a write begins with every frame copied, and under steady writes
//! new frames always arrive while a checkpoint runs. The WAL would grow to
//! the autocheckpoint limit and then every commit would checkpoint inline,
//! with a database fsync each time. So once the log passes
//! `wal_restart_frames` (see [`super::SqliteOptions`]), the checkpointer asks the writer, which between two
//! groups runs a RESTART checkpoint: only the frames since the last passive
//! one are left to copy, and the next commit writes from the log's start.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rusqlite::Connection;

use super::{
    Readers,
    intake::CommitMarks,
    writer::{Step, record_step},
};

/// Set by the checkpointer, taken by the writer between groups.
#[derive(Clone, Default)]
pub(super) struct RestartRequest(Arc<AtomicBool>);

impl RestartRequest {
    fn ask(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Runs a RESTART checkpoint on the writer's connection if one was
    /// asked for; between two transactions, so when it completes, every
    /// commit made is on disk. True when it ran one.
    pub(super) fn serve(&self, conn: &Connection, marks: &CommitMarks) -> bool {
        if !self.0.swap(false, Ordering::AcqRel) {
            return false;
        }
        let made = marks.committed();
        match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        }) {
            Ok((busy, frames)) => {
                if busy == 0 {
                    marks.durable_through(made);
                }
                tracing::debug!(busy, frames, "WAL restart checkpoint.");
            }
            Err(e) => tracing::warn!(error = %e, "SQLite could not restart the WAL; will retry."),
        }
        true
    }
}

/// Starts the checkpointer. After each checkpoint that copied the whole WAL
/// it marks the commits made before it began as on disk (`marks`).
pub(super) fn spawn(
    readers: Weak<Readers>,
    every: Duration,
    restart_frames: i64,
    restart: RestartRequest,
    marks: CommitMarks,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        // Linux shows 15 bytes of a thread's name (top -H, ps -L).
        .name(CHECKPOINTER_THREAD.into())
        .spawn(move || {
            let conn = match readers.upgrade().map(|r| Connection::open(&r.path)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "SQLite checkpointer could not open the database; the writer checkpoints instead.");
                    return;
                }
                None => return,
            };
            yield_to_the_writer();
            loop {
                std::thread::sleep(every);
                if readers.upgrade().is_none() {
                    return;
                }
                let made = marks.committed();
                let started = std::time::Instant::now();
                let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                });
                record_step(Step::Checkpoint, started.elapsed());
                match outcome {
                    Ok((frames, copied)) => {
                        // SQLite fsyncs the WAL before copying and the
                        // database after: what it copied is on disk.
                        if frames >= 0 && copied == frames {
                            marks.durable_through(made);
                        }
                        if frames >= restart_frames {
                            restart.ask();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; will retry."),
                }
            }
        })?;
    Ok(())
}

/// The checkpointer thread's name.
pub(super) const CHECKPOINTER_THREAD: &str = "sqlite-ckpt";

/// How much the checkpointer's nice value is raised above the process's.
#[cfg(target_os = "linux")]
pub(super) const NICE_INCREMENT: i32 = 10;

/// Lowers this thread's CPU priority.
///
/// The checkpointer wakes every `checkpoint_every` with a burst of copying
/// to do, and at equal priority the scheduler lets a thread that mostly
/// sleeps preempt the busy ones at once: the writer, which every answer waits
/// for, or the runtime. The copy can wait for a gap: on two cores under full
/// load, alternated runs measured 3-5% more events/s with it lowered
/// (docs/PERFORMANCE.md, "Thread priorities"). A checkpointer that falls
/// behind only lets the WAL grow, up to `wal_autocheckpoint`. Raising one's
/// own nice value needs no privilege; on failure the thread runs as it was.
fn yield_to_the_writer() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread: this names only this one.
        let me = Some(rustix::thread::gettid());
        let result = rustix::process::getpriority_process(me).and_then(|now| {
            rustix::process::setpriority_process(me, (now + NICE_INCREMENT).min(19))
        });
        if let Err(e) = result {
            tracing::debug!(error = %e, "The checkpointer keeps its CPU priority.");
        }
    }
}
