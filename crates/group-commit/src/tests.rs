use std::sync::{Arc, Barrier};

use super::*;

/// Counts groups and remembers the size of each settled one.
#[derive(Default)]
struct Groups {
    begun: u64,
    sizes: Vec<(bool, usize)>,
    /// Rows `finish` writes per group, to show it runs inside the transaction.
    finish_note: Option<&'static str>,
}

impl GroupState for Groups {
    type Error = SqliteJobError;
    fn begin(&mut self) {
        self.begun += 1;
    }
    fn finish(&mut self, conn: &Connection) -> Result<(), SqliteJobError> {
        if let Some(note) = self.finish_note {
            conn.execute("INSERT INTO notes (text) VALUES (?1)", [note])?;
        }
        Ok(())
    }
    fn settled(&mut self, outcome: Result<(), &SqliteJobError>, jobs: usize) {
        self.sizes.push((outcome.is_ok(), jobs));
    }
}

/// Holds the writer thread busy for `ms` with a job of its own, returning
/// once the job runs, so jobs queued next wait together for the next group.
async fn hold_writer<S: GroupState>(
    w: &GroupWriter<S>,
    ms: u64,
) -> tokio::task::JoinHandle<Result<(), S::Error>> {
    let gate = Arc::new(Barrier::new(2));
    let inside = gate.clone();
    let w = w.clone();
    let hold = tokio::spawn(async move {
        w.write(move |_, _| {
            inside.wait();
            std::thread::sleep(Duration::from_millis(ms));
            Ok(())
        })
        .await
    });
    tokio::task::spawn_blocking(move || gate.wait())
        .await
        .unwrap();
    hold
}

fn open(dir: &std::path::Path) -> Connection {
    let conn = Connection::open(dir.join("t.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);",
    )
    .unwrap();
    conn
}

fn texts(dir: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(dir.join("t.db")).unwrap();
    let mut stmt = conn.prepare("SELECT text FROM notes ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn insert(
    text: &'static str,
) -> impl FnOnce(&Connection, &mut Groups) -> Result<i64, SqliteJobError> {
    move |conn, _| {
        conn.execute("INSERT INTO notes (text) VALUES (?1)", [text])?;
        Ok(conn.last_insert_rowid())
    }
}

/// An error that says the job stopped before writing anything.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("refused before writing")]
    Before,
    #[error("{0}")]
    Writer(#[from] SqliteJobError),
}

/// Jobs queued while the writer is busy share the next transaction, and
/// each caller gets its own job's result once that commit is done.
#[tokio::test]
async fn waiting_jobs_share_one_commit_and_each_gets_its_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let w = GroupWriter::spawn(open(dir.path()), Groups::default(), Settings::named("t")).unwrap();
    let hold = hold_writer(&w, 100).await;
    let (a, b, c, groups) = tokio::join!(
        w.write(insert("a")),
        w.write(insert("b")),
        w.write(insert("c")),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            w.write(|_, s: &mut Groups| Ok(s.sizes.clone())).await
        }
    );
    hold.await.unwrap().unwrap();
    let mut ids = vec![a.unwrap(), b.unwrap(), c.unwrap()];
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3]);
    // The holding job's group, then one group of the three inserts and the
    // reader that queued behind them.
    assert_eq!(groups.unwrap(), vec![(true, 1)]);
    let sizes = w
        .write(|_, s: &mut Groups| Ok(s.sizes.clone()))
        .await
        .unwrap();
    assert_eq!(sizes[1], (true, 4), "{sizes:?}");
    assert_eq!(texts(dir.path()), vec!["a", "b", "c"]);
}

/// Runs a good insert and, queued in the same group, a job that writes half
/// of its work and then fails (its second insert breaks `UNIQUE`); returns
/// both answers and what the file holds afterwards.
async fn beside_a_job_failing_half_way(
    settings: Settings,
) -> (
    Result<i64, SqliteJobError>,
    Result<(), SqliteJobError>,
    Vec<String>,
    GroupWriter<Groups>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let w = GroupWriter::spawn(open(dir.path()), Groups::default(), settings).unwrap();
    let hold = hold_writer(&w, 100).await;
    let (good, bad) = tokio::join!(w.write(insert("good")), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.write(|conn, _: &mut Groups| {
            conn.execute("INSERT INTO notes (text) VALUES ('half')", [])?;
            conn.execute("INSERT INTO notes (text) VALUES ('half')", [])?;
            Ok(())
        })
        .await
    });
    hold.await.unwrap().unwrap();
    let stored = texts(dir.path());
    (good, bad, stored, w, dir)
}

/// A job that failed after writing takes its group down with it: nothing of
/// the group is stored and every caller hears of it.
#[tokio::test]
async fn a_job_that_failed_after_writing_rolls_the_group_back() {
    let (good, bad, stored, w, dir) = beside_a_job_failing_half_way(Settings::named("t")).await;
    assert!(bad.is_err());
    assert!(good.is_err(), "the group was rolled back: {good:?}");
    assert!(stored.is_empty(), "{stored:?}");
    // The writer goes on with the next group.
    w.write(insert("after")).await.unwrap();
    assert_eq!(texts(dir.path()), vec!["after"]);
}

/// With isolated jobs, a failing job is undone alone.
#[tokio::test]
async fn isolated_jobs_fail_alone() {
    let settings = Settings {
        isolate_jobs: true,
        ..Settings::named("t")
    };
    let (good, bad, stored, _w, _dir) = beside_a_job_failing_half_way(settings).await;
    assert!(bad.is_err());
    good.unwrap();
    assert_eq!(stored, vec!["good"]);
}

struct Strict;

impl GroupState for Strict {
    type Error = Refusal;
}

impl JobError for Refusal {
    fn sqlite(operation: &'static str, error: rusqlite::Error) -> Self {
        Self::Writer(SqliteJobError::sqlite(operation, error))
    }
    fn overloaded() -> Self {
        Self::Writer(SqliteJobError::Overloaded)
    }
    fn closed() -> Self {
        Self::Writer(SqliteJobError::Closed)
    }
    fn replicate(&self) -> Self {
        match self {
            Self::Before => Self::Before,
            Self::Writer(e) => Self::Writer(e.replicate()),
        }
    }
    fn left_writes(&self) -> bool {
        !matches!(self, Self::Before)
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Self::Writer(e.into())
    }
}

/// A job refused before writing fails alone, without savepoints.
#[tokio::test]
async fn a_refusal_before_writing_leaves_the_group_alone() {
    let dir = tempfile::tempdir().unwrap();
    let w = GroupWriter::spawn(open(dir.path()), Strict, Settings::named("t")).unwrap();
    let (refused, kept) = tokio::join!(
        w.write(|_, _| Err::<(), _>(Refusal::Before)),
        w.write(|conn, _| {
            conn.execute("INSERT INTO notes (text) VALUES ('kept')", [])?;
            Ok(())
        })
    );
    assert!(matches!(refused, Err(Refusal::Before)));
    kept.unwrap();
    assert_eq!(texts(dir.path()), vec!["kept"]);
}

/// `finish` writes inside the group's transaction, and a job can read what
/// the state holds.
#[tokio::test]
async fn the_state_finishes_each_group_inside_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let state = Groups {
        finish_note: None,
        ..Groups::default()
    };
    let w = GroupWriter::spawn(open(dir.path()), state, Settings::named("t")).unwrap();
    w.write(|_, s: &mut Groups| {
        s.finish_note = Some("from finish");
        Ok(())
    })
    .await
    .unwrap();
    let begun = w
        .write(|_, s: &mut Groups| {
            s.finish_note = None;
            Ok(s.begun)
        })
        .await
        .unwrap();
    assert_eq!(begun, 2);
    assert_eq!(texts(dir.path()), vec!["from finish"]);
}

/// A full queue refuses at once instead of growing.
#[tokio::test]
async fn a_full_queue_refuses_new_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        queue_capacity: 1,
        max_group: 1,
        ..Settings::named("t")
    };
    let w = GroupWriter::spawn(open(dir.path()), Groups::default(), settings).unwrap();
    let hold = hold_writer(&w, 100).await;
    let queued = {
        let w = w.clone();
        tokio::spawn(async move { w.write(insert("queued")).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let refused = w.write(insert("refused")).await;
    assert!(
        matches!(refused, Err(SqliteJobError::Overloaded)),
        "{refused:?}"
    );
    hold.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    assert_eq!(texts(dir.path()), vec!["queued"]);
}

/// Unsynced jobs alone commit without an fsync; beside a synced job they
/// share its fsync'd commit.
#[tokio::test]
async fn unsynced_jobs_commit_without_their_own_fsync() {
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;
    fn synchronous(conn: &Connection, _: &mut Groups) -> Result<i64, SqliteJobError> {
        Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
    }
    let dir = tempfile::tempdir().unwrap();
    let w = GroupWriter::spawn(open(dir.path()), Groups::default(), Settings::named("t")).unwrap();
    assert_eq!(w.write_unsynced(synchronous).await.unwrap(), NORMAL);
    assert_eq!(w.write(synchronous).await.unwrap(), FULL);
    let hold = hold_writer(&w, 50).await;
    let (unsynced, synced) = tokio::join!(w.write_unsynced(synchronous), w.write(synchronous));
    hold.await.unwrap().unwrap();
    assert_eq!(unsynced.unwrap(), FULL);
    assert_eq!(synced.unwrap(), FULL);
}

/// A state with a journal of its own: the texts its journaled jobs staged
/// are "made durable" (kept here) per group, and `recover` writes back what
/// a rollback took away.
#[derive(Default)]
struct Journaled {
    staged: Vec<&'static str>,
    journal: Vec<&'static str>,
    committed: Vec<bool>,
    recovered: usize,
    /// When set, `committed` returns only once this yields or its sender
    /// is dropped: a commit that takes as long as the test wants.
    slow_commit: Option<std::sync::mpsc::Receiver<()>>,
}

impl GroupState for Journaled {
    type Error = SqliteJobError;
    fn begin(&mut self) {
        self.staged.clear();
    }
    fn journal(&mut self, _conn: &Connection) -> Result<(), SqliteJobError> {
        self.journal.append(&mut self.staged);
        Ok(())
    }
    fn committed(&mut self, synced: bool, _took: Duration) {
        if let Some(gate) = &self.slow_commit {
            let _ = gate.recv();
        }
        self.committed.push(synced);
        self.journal.clear();
    }
    fn recover(&mut self, conn: &Connection) {
        self.recovered += 1;
        conn.execute_batch("BEGIN").unwrap();
        for text in &self.journal {
            conn.execute("INSERT INTO notes (text) VALUES (?1)", [text])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        self.journal.clear();
    }
}

fn journaled(
    text: &'static str,
) -> impl FnOnce(&Connection, &mut Journaled) -> Result<(), SqliteJobError> {
    move |conn, state| {
        conn.execute("INSERT INTO notes (text) VALUES (?1)", [text])?;
        state.staged.push(text);
        Ok(())
    }
}

/// Deferred commits: journaled jobs are answered with the transaction still
/// open, a reader's request commits it without an fsync, a job needing its
/// own commit gets a synced one, and a failing group rolls everything open
/// back and lets the state put the journaled jobs back.
#[tokio::test]
async fn deferred_commits_answer_from_the_journal_and_recover_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        defer_commit: Some(Duration::from_secs(3600)),
        ..Settings::named("t")
    };
    let w = GroupWriter::spawn(open(dir.path()), Journaled::default(), settings).unwrap();
    w.write_journaled(journaled("a")).await.unwrap();
    assert!(texts(dir.path()).is_empty(), "committed too early");
    w.make_visible().await.unwrap();
    assert_eq!(texts(dir.path()), vec!["a"]);
    w.write(insert_journaled("b")).await.unwrap();
    assert_eq!(texts(dir.path()), vec!["a", "b"]);
    let commits = w
        .write_unsynced(|_, s: &mut Journaled| Ok(s.committed.clone()))
        .await
        .unwrap();
    assert_eq!(
        commits,
        vec![false, true],
        "visible without fsync, own commit with"
    );
    // Open again, then a job that fails after writing ("c" repeats UNIQUE).
    w.write_journaled(journaled("c")).await.unwrap();
    w.write_journaled(journaled("d")).await.unwrap();
    let failed = w.write_journaled(journaled("c")).await;
    assert!(failed.is_err());
    w.make_visible().await.unwrap();
    assert_eq!(texts(dir.path()), vec!["a", "b", "c", "d"]);
    let recovered = w
        .write_unsynced(|_, s: &mut Journaled| Ok(s.recovered))
        .await
        .unwrap();
    assert_eq!(recovered, 1);
}

fn insert_journaled(
    text: &'static str,
) -> impl FnOnce(&Connection, &mut Journaled) -> Result<(), SqliteJobError> {
    move |conn, _| {
        conn.execute("INSERT INTO notes (text) VALUES (?1)", [text])?;
        Ok(())
    }
}

/// A commit that is due only because the open transaction is old enough
/// runs after the group's journaled jobs are answered: they do not wait for
/// it, however long it takes.
#[tokio::test]
async fn a_commit_due_by_age_does_not_hold_up_journaled_answers() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        defer_commit: Some(Duration::ZERO),
        ..Settings::named("t")
    };
    let (finish_commit, slow_commit) = std::sync::mpsc::channel();
    let state = Journaled {
        slow_commit: Some(slow_commit),
        ..Journaled::default()
    };
    let w = GroupWriter::spawn(open(dir.path()), state, settings).unwrap();
    // The commit after this group blocks until `finish_commit` is dropped.
    let answer =
        tokio::time::timeout(Duration::from_secs(10), w.write_journaled(journaled("a"))).await;
    drop(finish_commit);
    assert!(
        matches!(answer, Ok(Ok(()))),
        "the journaled answer waited for the commit: {answer:?}"
    );
    w.make_visible().await.unwrap();
    assert_eq!(texts(dir.path()), vec!["a"]);
}
