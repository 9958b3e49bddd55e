//! The WAL syncer: makes commits durable on its own thread, so the writer
//! never waits for the disk.
//!
//! The writer commits every group with `synchronous=NORMAL`: SQLite writes
//! the group's frames to the WAL file and returns without an fsync. The group
//! then hands the completions of its synced jobs to this thread, which calls
//! `fdatasync` on the WAL file and only then answers them. Meanwhile the
//! writer is already running the next group, so the disk's flush and the
//! next group's CPU work overlap instead of adding up.
//!
//! Why that is as durable as `synchronous=FULL` (which fsyncs the WAL inside
//! `COMMIT`): an fsync flushes every page of the file written before it was
//! called, whoever wrote it, and the syncer only syncs after the group's
//! `COMMIT` returned. So when a caller is answered, its frames, the commit
//! frame and every earlier frame are on disk, which is what recovery needs to
//! replay the transaction. A WAL restart is no exception: the restart
//! checkpoint copies and syncs everything before the log starts over, and
//! the new header is written before the next commit's frames, so the fsync
//! after that commit covers the header too. Callers are answered in commit
//! order, batched: one fsync answers every group that committed before it
//! started.
//!
//! A failed fsync leaves the page cache and the disk in an unknown relation
//! (Linux may drop the dirty pages), so the store stops writing: every later
//! write fails with `Unavailable` until the process restarts and SQLite
//! recovers from what is on disk.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{Receiver, Sender},
    },
    time::Instant,
};

use tracing::error;

use super::writer::Completion;
use crate::StoreError;

/// Completions waiting for the fsync that makes their group durable.
struct Synced {
    /// The writer's count of committed groups when this one committed.
    group: u64,
    completions: Vec<Completion>,
}

/// The writer's handle on the syncer thread.
pub(super) struct WalSyncer {
    tx: Sender<Synced>,
    state: Arc<SyncState>,
}

/// What the writer (and tests) can see of the syncer.
#[derive(Default)]
pub(super) struct SyncState {
    /// Set once an fsync failed: nothing written after it can be promised.
    broken: AtomicBool,
    /// The last group whose frames an fsync is known to have covered.
    synced_through: AtomicU64,
    /// Groups handed over and not yet answered.
    in_flight: AtomicU64,
}

impl SyncState {
    pub(super) fn broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// No fsync is running or waiting.
    pub(super) fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// The highest committed group number already on disk.
    #[cfg(test)]
    pub(super) fn synced_through(&self) -> u64 {
        self.synced_through.load(Ordering::Acquire)
    }
}

impl WalSyncer {
    /// Starts the thread that syncs `<db>-wal`.
    pub(super) fn spawn(db_path: &Path) -> io::Result<Self> {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        let mut file = WalFile {
            path: PathBuf::from(wal),
            open: None,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let state = Arc::new(SyncState::default());
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name("tributary-sqlite-sync".into())
            .spawn(move || run(&rx, &mut file, &shared))?;
        Ok(Self { tx, state })
    }

    /// Answers `completions` once an fsync after this call has returned;
    /// `group` is the writer's number for the group that just committed.
    pub(super) fn after_sync(&self, group: u64, completions: Vec<Completion>) {
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(lost) = self.tx.send(Synced { group, completions }) {
            self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
            // The thread is gone (it only stops when this handle is dropped,
            // so this is a panic in it): nobody can promise durability.
            let e = StoreError::Unavailable("the SQLite WAL syncer stopped".into());
            for c in lost.0.completions {
                c(Some(&e));
            }
        }
    }

    pub(super) fn state(&self) -> &Arc<SyncState> {
        &self.state
    }
}

fn run(rx: &Receiver<Synced>, wal: &mut WalFile, state: &SyncState) {
    // `recv` hands out what was queued before the writer hung up, so the
    // last groups are still synced and answered at shutdown.
    while let Ok(first) = rx.recv() {
        let mut group = first.group;
        let mut waiting = first.completions;
        let mut taken = 1;
        while let Ok(more) = rx.try_recv() {
            group = group.max(more.group);
            waiting.extend(more.completions);
            taken += 1;
        }
        if state.broken() {
            answer(waiting, Some(&broken_error()));
            state.in_flight.fetch_sub(taken, Ordering::AcqRel);
            continue;
        }
        let started = Instant::now();
        let result = wal.sync();
        metrics::histogram!("tributary_store_wal_sync_seconds", "backend" => "sqlite")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                state.synced_through.fetch_max(group, Ordering::AcqRel);
                answer(waiting, None);
            }
            Err(e) => {
                state.broken.store(true, Ordering::Release);
                error!(error = %e, path = %wal.path.display(), "fsync of the SQLite WAL failed; the store refuses writes until the process restarts.");
                answer(
                    waiting,
                    Some(&StoreError::Unavailable(format!(
                        "fsync of the SQLite WAL failed: {e}"
                    ))),
                );
            }
        }
        state.in_flight.fetch_sub(taken, Ordering::AcqRel);
    }
}

fn answer(completions: Vec<Completion>, err: Option<&StoreError>) {
    for c in completions {
        c(err);
    }
}

/// The error every write gets once an fsync failed.
pub(super) fn broken_error() -> StoreError {
    StoreError::Unavailable(
        "an fsync of the SQLite WAL failed earlier; restart the process so SQLite recovers from what is on disk".into(),
    )
}

/// The WAL file, reopened if SQLite ever replaced it.
struct WalFile {
    path: PathBuf,
    open: Option<(File, FileId)>,
}

impl WalFile {
    fn sync(&mut self) -> io::Result<()> {
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) => FileId::of(&m),
            // SQLite deletes the WAL only when its last connection closes,
            // after checkpointing every frame into the database file and
            // syncing that: nothing is left to sync.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let current = match &self.open {
            Some((file, id)) if *id == on_disk => file,
            _ => {
                let file = File::open(&self.path)?;
                let id = FileId::of(&file.metadata()?);
                // A new WAL file: its directory entry has to survive too.
                #[cfg(unix)]
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                &self.open.insert((file, id)).0
            }
        };
        current.sync_data()
    }
}

/// Which file a path names, so a replaced WAL is noticed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(m.dev(), m.ino())
    }

    /// Without inode numbers the file is reopened at every sync.
    #[cfg(not(unix))]
    fn of(_: &std::fs::Metadata) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(0, NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
