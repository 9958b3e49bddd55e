//! The embedded SQLite backend: one writer thread with group commit, WAL,
//! `synchronous=FULL`; readers on their own connections.

mod checkpoint;
mod config_log;
mod dedup_index;
mod dictionary;
mod intake;
mod local_run;
mod ops;
mod packed;
mod private;
mod read;
mod ready;
mod writer;

pub use dictionary::DictionaryOptions;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use tributary_core::{event::EventId, plan::ActionPayload};

use crate::{
    ActionFilter, ActionId, ActionRecord, AdminQueries, AppendItem, AppendOutcome, AttemptOutcome,
    ClaimRound, ClaimedAction, EventDetail, EventFilter, EventLog, EventRecord, KnownEventType,
    LocalApply, LocalEffect, LocalExecution, LocalKind, LocalRecipients, LocalRecord,
    MappingOverride, MappingOverrides, Outbox, Page, PruneReport, RejectedRequest, Retention,
    SourceStatus, StoreError, local, migrate,
};

/// The database file's name inside the configured data directory.
pub const SQLITE_FILE_NAME: &str = "tributary.db";

/// The intake journal's files are `<database file><INTAKE_SUFFIX>0` and
/// `...1` (see `intake`).
const INTAKE_SUFFIX: &str = "-intake";

/// Tuning for [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Writes waiting for the writer before callers get [`StoreError::Overloaded`].
    pub queue_capacity: usize,
    /// The most writes in one group commit.
    pub max_batch: usize,
    /// How long a write waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Reader connections kept open.
    pub readers: usize,
    /// A cap on the database size in pages (of `page_size` bytes): writes
    /// beyond it fail with [`StoreError::DiskFull`], as they would on a full disk.
    pub max_pages: Option<u64>,
    /// The page size of a database file this store creates: a power of two
    /// from 512 to 65,536. An existing file keeps the size it was created
    /// with. 8 KiB, not SQLite's 4 KiB: an event row with its JSON is about
    /// 2 KiB, and at 4 KiB most pages held one event (docs/PERFORMANCE.md).
    pub page_size: u32,
    /// How often the background checkpointer copies the WAL into the database
    /// (short intervals keep each copy, and its database fsync, small: at
    /// 5,000 events/s, 250 ms put p99 at 9-10 ms and 50 ms at 7 ms).
    pub checkpoint_every: Duration,
    /// WAL frames (one page each) past which the writer restarts the log (see
    /// docs/store.md: passive checkpoints alone never let it start over).
    pub wal_restart_frames: u32,
    /// How long the writer's transaction stays open across groups before it
    /// commits (appends are durable in the intake journal meanwhile, see
    /// docs/store.md). Longer spreads each commit's fixed pages over more
    /// events; zero commits after every group.
    pub commit_every: Duration,
    /// The environments whose actions this store runs itself
    /// ([`crate::Outbox::claim_running_local`]); none by default.
    pub local_execution: LocalExecution,
    /// When the store trains a compression dictionary for the JSON it
    /// stores (docs/store.md, "Compressed JSON").
    pub json_dictionary: DictionaryOptions,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 8_192,
            max_batch: 1_024,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_pages: None,
            page_size: 8_192,
            checkpoint_every: Duration::from_millis(50),
            wal_restart_frames: 4_096,
            commit_every: Duration::from_millis(100),
            local_execution: LocalExecution::ThroughSink,
            json_dictionary: DictionaryOptions::default(),
        }
    }
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    busy_timeout: Duration,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(self.busy_timeout)?;
        c.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16384;")?;
        plan_once(&c)?;
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.keep {
            idle.push(c);
        }
    }
}

/// The embedded store (the default): one SQLite file in WAL mode.
///
/// Every write goes through one writer thread that group-commits whatever is
/// queued; reads run on separate connections on the blocking pool and never
/// wait for the writer.
#[derive(Clone)]
pub struct SqliteStore {
    writer: writer::Writer,
    readers: Arc<Readers>,
    /// The environments whose actions the store runs itself, as opened:
    /// appends for them keep their payloads and compute their read-free
    /// local writes ahead, off the writer (`ops::prepare`).
    local_environments: Arc<[String]>,
    /// What appends pack their JSON with (`dictionary`).
    dictionaries: Arc<dictionary::Dictionaries>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/tributary.db` with default options.
    pub async fn open_dir(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_dir_with(dir, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) `dir/tributary.db` with `options`.
    pub async fn open_dir_with(
        dir: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        private::create_dir(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        Self::open(dir.join(SQLITE_FILE_NAME), options).await
    }

    /// Opens (creating if needed) the database file at `path`, applying any
    /// missing migrations.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let max_pages = options.max_pages;
        let page_size = options.page_size;
        if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(StoreError::InvalidInput {
                field: "page_size",
                problem: format!("{page_size} is not a power of two from 512 to 65536"),
            });
        }
        let busy_timeout = options.busy_timeout;
        let local_environments: Arc<[String]> = {
            let mut v = options.local_execution.in_store().to_vec();
            v.sort();
            v.dedup();
            v.into()
        };
        let restart = checkpoint::RestartRequest::default();
        let state_restart = restart.clone();
        let marks = intake::CommitMarks::default();
        let state_marks = marks.clone();
        let state_local = Arc::clone(&local_environments);
        let dictionary_options = options.json_dictionary.clone();
        let (conn, state, path, dictionaries) = tokio::task::spawn_blocking(move || {
            private::prepare_files(&path).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))
            })?;
            let lock = lock_process(&path, busy_timeout)?;
            let conn = open_writer(&path, busy_timeout, max_pages, page_size)?;
            migrate_sqlite(&conn, migrate::latest())?;
            let dictionaries = Arc::new(dictionary::Dictionaries::open(
                &conn,
                dictionary_options,
                Utc::now().timestamp_millis(),
            )?);
            let journal_path = private::with_suffix(&path, INTAKE_SUFFIX);
            let intake = intake::IntakeJournal::open(&journal_path, state_marks).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", journal_path.display()))
            })?;
            let mut state = writer::Batch::new(
                lock,
                intake,
                state_restart,
                state_local,
                Arc::clone(&dictionaries),
            );
            state.check_local_backlog(&conn)?;
            let replayed = state.replay(&conn, u64::MAX)?;
            if replayed > 0 {
                tracing::info!(
                    records = replayed,
                    "Applied the intake journal's appends the database did not hold."
                );
            }
            Ok::<_, StoreError>((conn, state, path, dictionaries))
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        tracing::debug!(keys = state.index.len(), "Loaded the live dedup keys.");
        let writer = writer::spawn(
            conn,
            state,
            options.queue_capacity,
            options.max_batch,
            options.commit_every,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        let readers = Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
            keep: options.readers,
            busy_timeout: options.busy_timeout,
        });
        checkpoint::spawn(
            Arc::downgrade(&readers),
            options.checkpoint_every,
            i64::from(options.wal_restart_frames),
            restart,
            marks,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            writer,
            readers,
            local_environments,
            dictionaries,
        })
    }

    /// Stores a newly trained dictionary with an fsync, then packs with it
    /// (see `dictionary`): once, on the append that finds it ready.
    async fn install_dictionary(&self, trained: dictionary::Trained) {
        let now = Utc::now().timestamp_millis();
        let stored = self
            .writer
            .write(move |conn, _| dictionary::insert(conn, &trained, now).map(|()| trained))
            .await;
        match stored {
            Ok(trained) => self.dictionaries.install(&trained, now),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot store the trained compression dictionary; trying again later.");
                self.dictionaries.retry_later(now);
            }
        }
    }

    /// One round on the writer: with `run_local`, runs the due actions of
    /// the environments the store runs itself; leases up to `limit` of the
    /// others.
    async fn round(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
        run_local: bool,
    ) -> Result<ClaimRound, StoreError> {
        let owner = owner.to_owned();
        // Unsynced like the claim and attempt jobs it replaces: a power cut
        // loses the effect and its attempt together, and the action runs again.
        let round = self
            .writer
            .write_unsynced(move |conn, batch| {
                local_run::claim_running_local(conn, batch, &owner, limit, lease, run_local)
            })
            .await?;
        Ok(ClaimRound {
            claimed: round
                .claimed
                .into_iter()
                .map(ops::ClaimedRow::decode)
                .collect::<Result<_, _>>()?,
            ran_local: round.ran,
            more: round.more,
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        // Reads see every write answered before them (an event after its
        // 2xx): the writer's open transaction commits first if need be.
        self.writer.make_visible().await?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let r = f(&conn);
            readers.give_back(conn);
            r
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// Holds an exclusive lock on `<db>-lock` for the life of the writer: the
/// in-memory dedup index is only right if this process is the only writer.
fn lock_process(path: &Path, wait: Duration) -> Result<Connection, StoreError> {
    let lock = Connection::open(private::with_suffix(path, "-lock"))?;
    // A store being dropped in this process releases the lock when its writer
    // thread ends: waiting a little lets a reopen follow a drop.
    lock.busy_timeout(wait)?;
    // In exclusive locking mode SQLite keeps the lock after the first write
    // transaction until the connection closes (or the process dies).
    let taken = lock
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE;
             BEGIN EXCLUSIVE;
             CREATE TABLE IF NOT EXISTS owner (pid INTEGER);
             COMMIT;",
        )
        .map_err(StoreError::from);
    match taken {
        Ok(()) => Ok(lock),
        Err(StoreError::Locked(_)) => Err(StoreError::Locked(format!(
            "{} is open in another process; one process writes a SQLite store",
            path.display()
        ))),
        Err(e) => Err(e),
    }
}

/// Loads the keys whose window had not passed at `now` (ms), a replaced
/// key's older rows too (reading the rows tells them apart).
fn load_dedup_index(conn: &Connection, now: i64) -> Result<writer::DedupIndex, StoreError> {
    let mut index = writer::DedupIndex::default();
    let mut stmt = conn.prepare("SELECT hash, seq FROM dedup_log WHERE expires_at > ?1")?;
    let mut rows = stmt.query([now])?;
    while let Some(r) = rows.next()? {
        index.insert(r.get(0)?, r.get(1)?);
    }
    Ok(index)
}

fn open_writer(
    path: &Path,
    busy_timeout: Duration,
    max_pages: Option<u64>,
    page_size: u32,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    // Takes effect only on a new, empty file; before WAL mode, which fixes it.
    conn.execute_batch(&format!("PRAGMA page_size = {page_size}"))?;
    // WAL: readers never block the writer. synchronous=FULL: the WAL is
    // fsynced at every commit, which is what makes an Ok durable.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "SQLite refused WAL mode (got `{mode}`)"
        )));
    }
    // Checkpoints run on their own thread (see `checkpoint`); the writer only
    // checkpoints itself if the WAL grows past 64 MiB.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 16384;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -8192;
         PRAGMA temp_store = MEMORY;",
    )?;
    if let Some(pages) = max_pages {
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    plan_once(&conn)?;
    // Reading the schema surfaces a corrupt or foreign file now, not at the first write.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// Keeps each cached statement's plan whatever values are bound. The bundled
/// SQLite is built with STAT4, which otherwise re-prepares a statement
/// whenever a parameter in a range condition changes (the claim's
/// `run_at <= ?`): profiles showed the writer re-parsing the claim query at
/// every claim.
fn plan_once(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Applies migrations up to `target` (tests use a lower target to build an old database).
pub(crate) fn migrate_sqlite(conn: &Connection, target: u32) -> Result<(), StoreError> {
    conn.execute_batch(migrate::CREATE_TABLE)?;
    let current: u32 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > migrate::latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: migrate::latest(),
        });
    }
    for m in migrate::MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version: m.version,
            name: m.name,
            reason: e.to_string(),
        };
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
        let applied = conn.execute_batch(m.sqlite).and_then(|()| {
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, Utc::now().timestamp_millis()],
            )
        });
        match applied {
            Ok(_) => conn.execute_batch("COMMIT").map_err(fail)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(fail(e));
            }
        }
        tracing::info!(
            version = m.version,
            name = m.name,
            "Applied SQLite migration."
        );
    }
    Ok(())
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.dictionaries
            .start_sampling_if_due(Utc::now().timestamp_millis());
        if let Some(trained) = self.dictionaries.take_trained() {
            self.install_dictionary(trained).await;
        }
        let prepared = ops::prepare(items, &self.local_environments, &self.dictionaries)?;
        // Encoded here, off the writer thread.
        let record = ops::journal_record(&prepared)?;
        let queued = std::time::Instant::now();
        let (began, outcomes) = self
            .writer
            .write_journaled(move |conn, batch| {
                // Only the clock is read on the writer: the histogram is
                // recorded by the caller, off the writer's path.
                let began = std::time::Instant::now();
                if let Some(why) = &batch.unrecovered {
                    return Err(StoreError::Unavailable(format!(
                        "journaled appends are not back in the database yet: {why}"
                    )));
                }
                let outcomes = ops::append(conn, prepared, batch)?;
                batch.intake.stage(&record);
                Ok((began, outcomes))
            })
            .await?;
        writer::record_step(writer::Step::Queue, began.duration_since(queued));
        for outcome in &outcomes {
            if let AppendOutcome::Accepted { ran_local, .. } = outcome {
                ran_local.iter().for_each(crate::LocalRun::report);
            }
        }
        Ok(outcomes)
    }

    async fn record_rejected(&self, request: RejectedRequest) -> Result<EventId, StoreError> {
        self.writer
            .write(move |conn, batch| ops::record_rejected(conn, &request, batch))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedAction>, StoreError> {
        Ok(self.round(owner, limit, lease, false).await?.claimed)
    }

    async fn claim_running_local(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<ClaimRound, StoreError> {
        if limit == 0 && self.local_environments.is_empty() {
            return Ok(ClaimRound::default());
        }
        self.round(owner, limit, lease, true).await
    }

    async fn finish_attempt(
        &self,
        action: ActionId,
        owner: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        self.writer
            .write_unsynced(move |conn, _| ops::finish_attempt(conn, action, &owner, &outcome))
            .await
    }

    async fn finish_attempts(
        &self,
        owner: &str,
        attempts: Vec<(ActionId, AttemptOutcome)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let owner = owner.to_owned();
        // One writer job for the lot: the per-job hand-off to the writer
        // thread cost as much as the statements.
        self.writer
            .write_unsynced(move |conn, _| {
                attempts
                    .iter()
                    .map(|(action, outcome)| {
                        crate::error::item_result(ops::finish_attempt(
                            conn, *action, &owner, outcome,
                        ))
                    })
                    .collect()
            })
            .await
    }
}

#[async_trait]
impl LocalRecipients for SqliteStore {
    async fn apply_local(
        &self,
        action: ActionId,
        environment: &str,
        payload: &ActionPayload,
    ) -> Result<LocalEffect, StoreError> {
        let item = LocalApply {
            action,
            environment: environment.to_owned(),
            payload: payload.clone(),
        };
        self.apply_local_many(vec![item])
            .await?
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    async fn apply_local_many(
        &self,
        items: Vec<LocalApply>,
    ) -> Result<Vec<Result<LocalEffect, StoreError>>, StoreError> {
        let prepared: Vec<Result<ops::PreparedLocal, StoreError>> = items
            .into_iter()
            .map(|i| ops::prepare_local(i.action, i.environment, i.payload))
            .collect();
        // One writer job for the lot, as for `finish_attempts`.
        self.writer
            .write_unsynced(move |conn, batch| {
                prepared
                    .into_iter()
                    .map(|p| {
                        crate::error::item_result(
                            p.and_then(|p| ops::apply_local(conn, p, &batch.dictionaries)),
                        )
                    })
                    .collect()
            })
            .await
    }

    async fn local_record(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
        id: &str,
    ) -> Result<Option<LocalRecord>, StoreError> {
        let (scope, id) = (local::stored_scope(environment, scope), id.to_owned());
        self.read(move |c| read::local_record(c, kind, &scope, &id))
            .await
    }

    async fn local_records(
        &self,
        kind: LocalKind,
        environment: &str,
        scope: &str,
    ) -> Result<Vec<LocalRecord>, StoreError> {
        let scope = local::stored_scope(environment, scope);
        self.read(move |c| read::local_records(c, kind, &scope))
            .await
    }
}

#[async_trait]
impl AdminQueries for SqliteStore {
    async fn list_events(
        &self,
        filter: &EventFilter,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Page<EventRecord, EventId>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| read::list_events(c, &filter, before, limit))
            .await
    }

    async fn event_detail(&self, id: EventId) -> Result<Option<EventDetail>, StoreError> {
        self.read(move |c| read::event_detail(c, id)).await
    }

    async fn find_actions(
        &self,
        filter: &ActionFilter,
        before: Option<ActionId>,
        limit: usize,
    ) -> Result<Page<ActionRecord, ActionId>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| read::find_actions(c, &filter, before, limit))
            .await
    }

    async fn source_statuses(&self, now: DateTime<Utc>) -> Result<Vec<SourceStatus>, StoreError> {
        self.read(move |c| read::source_statuses(c, now)).await
    }

    async fn known_event_types(
        &self,
        source: &str,
        environment: &str,
    ) -> Result<Vec<KnownEventType>, StoreError> {
        let (s, e) = (source.to_owned(), environment.to_owned());
        self.read(move |c| read::known_event_types(c, &s, &e)).await
    }
}

#[async_trait]
impl MappingOverrides for SqliteStore {
    async fn set_mapping_active(
        &self,
        source: &str,
        environment: &str,
        mapping: &str,
        active: bool,
    ) -> Result<(), StoreError> {
        let (s, e, m) = (
            source.to_owned(),
            environment.to_owned(),
            mapping.to_owned(),
        );
        self.writer
            .write(move |conn, _| ops::set_mapping_active(conn, &s, &e, &m, active))
            .await
    }

    async fn forget_mapping_overrides(
        &self,
        source: &str,
        mapping: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let source = source.to_owned();
        let mapping = mapping.map(|(e, m)| (e.to_owned(), m.to_owned()));
        self.writer
            .write(move |conn, _| {
                ops::forget_mapping_overrides(
                    conn,
                    &source,
                    mapping.as_ref().map(|(e, m)| (e.as_str(), m.as_str())),
                )
            })
            .await
    }

    async fn mapping_overrides(&self) -> Result<Vec<MappingOverride>, StoreError> {
        self.read(read::mapping_overrides).await
    }
}

#[async_trait]
impl Retention for SqliteStore {
    async fn prune(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<PruneReport, StoreError> {
        self.writer
            .write_unsynced(move |conn, b| ops::prune(conn, cutoff, now, batch, b))
            .await
    }
}

#[cfg(test)]
mod tests;
