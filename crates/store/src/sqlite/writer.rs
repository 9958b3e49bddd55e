//! The store's SQLite writer: the shared group commit
//! ([`tributary_group_commit`]) with deferred commits, and the state its jobs
//! share.
//!
//! Every write is a job on a bounded queue, run with others as one group.
//! Appends are made durable by the intake journal ([`IntakeJournal`], one
//! fsynced sequential write per group) and answered then; the transaction
//! they wrote in stays open across groups and commits without an fsync at
//! most [`super::SqliteOptions::commit_every`] later (a checkpoint puts it on
//! disk, see [`IntakeJournal`]), or when a reader must see everything
//! answered ([`GroupWriter::make_visible`]); a write that needs its own
//! commit (an admin change, a rejected request) gets one with
//! `synchronous=FULL`. No savepoints: a savepoint copies every
//! page it touches into a sub-journal, which was the top cost in profiles;
//! jobs check everything they can before writing
//! ([`StoreError::refused_before_writing`]) and any later failure rolls the
//! open transaction back, after which [`Batch::replay`] puts the journaled
//! appends back.
//!
//! The workers' bookkeeping (claims, local effects, attempt records) is
//! queued unsynced: it lands in the open transaction, so a crash (kill -9 as
//! well as a power loss) before that transaction commits loses at most that
//! bookkeeping, and an action whose attempt was lost runs again (execution
//! is at least once, and the local sink's effects are lost with their
//! attempt, so it applies an action id once). What callers outside the
//! process are told (an append's 2xx, an admin change) always waits for an
//! fsync.
//!
//! The writer also owns the in-memory dedup index (see [`DedupIndex`]): jobs
//! stage their key changes in the [`Batch`], and the index takes them only
//! once the commit succeeded, so it never holds a key the database lost.

use std::{collections::HashMap, sync::Arc};

use rusqlite::{Connection, params};
use tributary_core::event::EventId;
use tributary_group_commit::{GroupState, GroupWriter, JobError, Settings};

use super::{
    checkpoint::RestartRequest,
    dictionary::Dictionaries,
    intake::IntakeJournal,
    local_run,
    ops::{self, PreparedItem},
};
use crate::{StoreError, stats::BatchStats};

/// A dedup key written in this group, not yet committed: the event it
/// points to, when it stops blocking repeats, and its `dedup_log` row.
#[derive(Clone, Copy, Debug)]
pub(super) struct DedupEntry {
    pub(super) event_id: EventId,
    pub(super) expires_ms: i64,
    pub(super) seq: i64,
}

/// Where a key may be live.
#[derive(Debug)]
pub(super) enum LiveKey {
    /// Written in this group.
    Staged(DedupEntry),
    /// Perhaps committed: the `dedup_log` rows of the index's entries that
    /// share its bits (see [`DedupIndex`]); reading them says which, if
    /// any, is the key's.
    Indexed(Vec<i64>),
}

pub(super) use super::dedup_index::DedupIndex;

/// Keys written by a group's jobs, not yet committed.
pub(super) type StagedKeys = HashMap<i64, DedupEntry>;

/// What the writer thread keeps, and what the jobs of one group share.
pub(super) struct Batch {
    /// Per-source counters of this group, written once before its commit.
    pub(super) stats: BatchStats,
    /// Dedup keys written by this group's jobs so far.
    pub(super) keys: StagedKeys,
    /// The `dedup_log` rows this group pruned (hash, seq): the index drops
    /// them once the group committed.
    pub(super) pruned_keys: Vec<(i64, i64)>,
    /// The committed dedup index.
    pub(super) index: DedupIndex,
    /// The environments whose actions the store runs itself (sorted), as
    /// the store was opened.
    pub(super) local_environments: Arc<[String]>,
    /// The outbox may hold actions of `local_environments` (left by a run
    /// with other settings): their new actions queue behind them instead of
    /// running at append, until a worker round finds none left.
    pub(super) local_backlog: bool,
    /// Asks for a WAL restart between groups.
    restart: RestartRequest,
    /// Where appends are durable before their transaction commits.
    pub(super) intake: IntakeJournal,
    /// The store's JSON dictionaries, which the local records the writer
    /// makes are packed with.
    pub(super) dictionaries: Arc<Dictionaries>,
    /// When this group's first job began (for [`Step::Group`]).
    group_started: std::time::Instant,
    /// Why the journaled appends could not be put back after a rollback:
    /// until they are, appends are refused (they would land out of order).
    pub(super) unrecovered: Option<String>,
    /// The process lock, held as long as the writer runs.
    _lock: Connection,
}

impl Batch {
    /// True when an append runs `environment`'s actions itself, in its own
    /// transaction (see `local_run`).
    pub(super) fn runs_at_append(&self, environment: &str) -> bool {
        !self.local_backlog
            && self
                .local_environments
                .binary_search_by(|e| e.as_str().cmp(environment))
                .is_ok()
    }

    /// Looks in the outbox for actions of the environments the store runs
    /// itself: at open, and after a rollback (which may have put back rows a
    /// round had run).
    pub(super) fn check_local_backlog(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.local_backlog = local_run::local_backlog(conn, &self.local_environments)?;
        if self.local_backlog {
            tracing::info!(
                "The outbox holds local actions; new ones queue behind them until the workers have run them."
            );
        }
        Ok(())
    }

    /// Where `hash`'s live key may be, seeing this group's uncommitted
    /// writes; `None` when it has none.
    pub(super) fn key(&self, hash: i64) -> Option<LiveKey> {
        if let Some(entry) = self.keys.get(&hash) {
            return Some(LiveKey::Staged(*entry));
        }
        let candidates = self.index.candidates(hash);
        (!candidates.is_empty()).then_some(LiveKey::Indexed(candidates))
    }
}

impl GroupState for Batch {
    type Error = StoreError;

    fn begin(&mut self) {
        self.stats = BatchStats::default();
        self.keys.clear();
        self.pruned_keys.clear();
        self.intake.clear_staged();
        self.group_started = std::time::Instant::now();
    }

    fn finish(&mut self, conn: &Connection) -> Result<(), StoreError> {
        record_step(Step::Group, self.group_started.elapsed());
        flush_stats(conn, &self.stats)
    }

    fn settled(&mut self, outcome: Result<(), &StoreError>, jobs: usize) {
        let keys = std::mem::take(&mut self.keys);
        if outcome.is_err() {
            return;
        }
        // How many writes share one fsync: the group commit at work.
        metrics::histogram!("tributary_store_commit_batch_size", "backend" => "sqlite")
            .record(jobs as f64);
        for (hash, entry) in keys {
            self.index.insert(hash, entry.seq);
        }
        for (hash, seq) in std::mem::take(&mut self.pruned_keys) {
            self.index.remove(hash, seq);
        }
        // A sixty-fourth of the keys at most, never the whole index at once.
        self.index.grow_ahead();
        // With a day's window the index is the store's memory per event.
        metrics::gauge!("tributary_store_dedup_index_entries").set(self.index.len() as f64);
        metrics::gauge!("tributary_store_dedup_index_bytes")
            .set(self.index.allocated_bytes() as f64);
    }

    fn idle(&mut self, conn: &Connection) {
        let started = std::time::Instant::now();
        if self.restart.serve(conn, self.intake.marks()) {
            record_step(Step::WalRestart, started.elapsed());
        }
    }

    fn journal(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let Some(last) = self.intake.staged_last() else {
            return Ok(());
        };
        // Before the write: should the write fail, the group rolls back and
        // this goes with it.
        set_applied(conn, last)?;
        let started = std::time::Instant::now();
        self.intake.write_staged().map_err(|e| {
            StoreError::Unavailable(format!("cannot write the intake journal: {e}"))
        })?;
        record_step(Step::JournalSync, started.elapsed());
        Ok(())
    }

    fn committed(&mut self, synced: bool, took: std::time::Duration) {
        record_step(Step::Commit, took);
        self.intake.committed(synced);
    }

    fn recover(&mut self, conn: &Connection) {
        if let Err(e) = self.check_local_backlog(conn) {
            // Queueing behind an outbox that may be empty only costs time.
            tracing::warn!(error = %e, "Cannot look for waiting local actions; appends queue them.");
            self.local_backlog = true;
        }
        let up_to = self.intake.written();
        match self.replay(conn, up_to) {
            Ok(records) => {
                self.unrecovered = None;
                tracing::info!(records, "Put the journaled appends back after a rollback.");
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot put the journaled appends back; appends are refused until they are.");
                self.unrecovered = Some(e.to_string());
            }
        }
    }
}

impl Batch {
    /// Re-applies the journaled appends numbered up to `up_to` that the
    /// database does not hold, in one committed transaction, after
    /// reloading the dedup index from the database: at open, and after the
    /// open transaction was rolled back. Returns how many records it applied.
    ///
    /// The index is loaded as it stood when the first of them was received,
    /// so each is judged against the keys it was judged against when it was
    /// answered.
    pub(super) fn replay(&mut self, conn: &Connection, up_to: u64) -> Result<usize, StoreError> {
        let applied: i64 =
            conn.query_row("SELECT applied_seq FROM intake_journal", [], |r| r.get(0))?;
        let applied = u64::try_from(applied).unwrap_or(0);
        let records = self
            .intake
            .read(applied, up_to)
            .map_err(|e| StoreError::Unavailable(format!("cannot read the intake journal: {e}")))?;
        let mut appends = Vec::with_capacity(records.len());
        for (seq, payload) in &records {
            let items = ops::items_of_record(payload).map_err(|e| {
                StoreError::Unavailable(format!("intake journal record {seq} is unreadable: {e}"))
            })?;
            appends.push(items);
        }
        let since = appends
            .iter()
            .flatten()
            .map(PreparedItem::received)
            .min()
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        self.index = super::load_dedup_index(conn, since)?;
        let last = records.last().map_or(applied, |(seq, _)| *seq);
        // Always a synced commit, even of nothing: it also puts on disk
        // every earlier commit the journal's files may still be kept for
        // (the WAL is fsynced as a whole), so both files can be reused.
        let before: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")?;
        self.begin();
        let done = (|| {
            for items in appends {
                ops::append(conn, items, self)?;
            }
            flush_stats(conn, &self.stats)?;
            set_applied(conn, last)?;
            conn.execute_batch("COMMIT")?;
            Ok::<_, StoreError>(())
        })();
        let _ = conn.execute_batch(&format!("PRAGMA synchronous = {before}"));
        if let Err(e) = done {
            let _ = conn.execute_batch("ROLLBACK");
            self.settled(Err(&e), 0);
            return Err(e);
        }
        self.settled(Ok(()), records.len());
        self.intake.replayed();
        Ok(records.len())
    }
}

/// A step of the store's writing that answers can wait behind: the label
/// of `tributary_store_sqlite_step_seconds`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    /// An append's wait in the writer's queue, from its handing over to the
    /// start of its job (the groups ahead of it, their journal syncs and
    /// commits), recorded for each append that ran.
    Queue,
    /// A group's jobs, run one after the other in the open transaction
    /// (the appends' inserts, the local actions run with them, the
    /// workers' bookkeeping): every answer of the group waits for them.
    Group,
    /// The intake journal's write and `fdatasync`: every append's answer
    /// waits for it.
    JournalSync,
    /// The open transaction's `COMMIT` (no fsync unless a write needed
    /// one): the group whose answers are due waits for it.
    Commit,
    /// The RESTART checkpoint the writer runs between groups: the next
    /// group waits for it.
    WalRestart,
    /// A PASSIVE checkpoint on the checkpointer's own thread: nothing waits
    /// for it directly, but its writeback shares the disk with the others.
    Checkpoint,
}

impl Step {
    fn label(self) -> &'static str {
        match self {
            Step::Queue => "queue",
            Step::Group => "group",
            Step::JournalSync => "journal_sync",
            Step::Commit => "commit",
            Step::WalRestart => "wal_restart",
            Step::Checkpoint => "checkpoint",
        }
    }
}

/// A step slower than this is logged (at most once per
/// `SLOW_STEP_LOG_EVERY_MS`), so an operator can tell a slow answer's cause.
const SLOW_STEP: std::time::Duration = std::time::Duration::from_millis(50);
const SLOW_STEP_LOG_EVERY_MS: i64 = 10_000;

/// Records how long `step` took, and logs it when slow.
pub(super) fn record_step(step: Step, took: std::time::Duration) {
    static LAST_LOGGED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    metrics::histogram!("tributary_store_sqlite_step_seconds", "step" => step.label())
        .record(took.as_secs_f64());
    if took < SLOW_STEP {
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let last = LAST_LOGGED_MS.load(std::sync::atomic::Ordering::Relaxed);
    if now - last >= SLOW_STEP_LOG_EVERY_MS
        && LAST_LOGGED_MS
            .compare_exchange(
                last,
                now,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
    {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(
            step = step.label(),
            ms,
            "A store write step was slow (tributary_store_sqlite_step_seconds has them all)."
        );
    }
}

/// Records, in the open transaction, the last journal record it holds.
fn set_applied(conn: &Connection, seq: u64) -> Result<(), StoreError> {
    // Sequence numbers never reach `i64::MAX`.
    conn.prepare_cached("UPDATE intake_journal SET applied_seq = ?1")?
        .execute([i64::try_from(seq).unwrap_or(i64::MAX)])?;
    Ok(())
}

impl JobError for StoreError {
    fn sqlite(_operation: &'static str, error: rusqlite::Error) -> Self {
        error.into()
    }
    fn overloaded() -> Self {
        Self::Overloaded
    }
    fn closed() -> Self {
        Self::Closed
    }
    fn replicate(&self) -> Self {
        StoreError::replicate(self)
    }
    fn left_writes(&self) -> bool {
        !self.refused_before_writing()
    }
}

/// Upserts the batch's aggregates; runs once per group commit.
fn flush_stats(conn: &Connection, stats: &BatchStats) -> Result<(), StoreError> {
    if stats.is_empty() {
        return Ok(());
    }
    let mut s = conn.prepare_cached(
        "INSERT INTO source_stats (source, environment, day, count, last_received) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source, environment, day) DO UPDATE SET \
         count = source_stats.count + excluded.count, \
         last_received = max(source_stats.last_received, excluded.last_received)",
    )?;
    for ((source, env, day), (count, last)) in &stats.sources {
        s.execute(params![source, env, day, count, last])?;
    }
    let mut t = conn.prepare_cached(
        "INSERT INTO known_event_types (source, environment, event_type, last_seen) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source, environment, event_type) DO UPDATE SET \
         last_seen = max(known_event_types.last_seen, excluded.last_seen)",
    )?;
    for ((source, env, ty), last) in &stats.types {
        t.execute(params![source, env, ty, last])?;
    }
    Ok(())
}

/// The sending side of the commit queue.
pub(super) type Writer = GroupWriter<Batch>;

impl Batch {
    /// The writer's state before its first group; `lock` (the process lock)
    /// lives as long as the writer. Call [`Batch::check_local_backlog`] and
    /// then [`Batch::replay`] before the first group: replay runs local
    /// actions as appends do, and loads the dedup index.
    pub(super) fn new(
        lock: Connection,
        intake: IntakeJournal,
        restart: RestartRequest,
        local_environments: Arc<[String]>,
        dictionaries: Arc<Dictionaries>,
    ) -> Self {
        Self {
            stats: BatchStats::default(),
            keys: HashMap::new(),
            pruned_keys: Vec::new(),
            index: DedupIndex::default(),
            local_environments,
            local_backlog: false,
            restart,
            intake,
            dictionaries,
            group_started: std::time::Instant::now(),
            unrecovered: None,
            _lock: lock,
        }
    }
}

/// Starts the writer thread on `conn` with `state`; an open transaction
/// commits at most `commit_every` after it began.
pub(super) fn spawn(
    conn: Connection,
    state: Batch,
    queue_capacity: usize,
    max_batch: usize,
    commit_every: std::time::Duration,
) -> std::io::Result<Writer> {
    let settings = Settings {
        queue_capacity,
        max_group: max_batch,
        defer_commit: Some(commit_every),
        ..Settings::named(WRITER_THREAD)
    };
    GroupWriter::spawn(conn, state, settings)
}

/// The writer thread's name (Linux shows 15 bytes of it: top -H, ps -L).
pub(super) const WRITER_THREAD: &str = "sqlite-writer";
