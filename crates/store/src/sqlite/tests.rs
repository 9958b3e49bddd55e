use rusqlite::Connection;

use super::*;
use crate::{ActionFilter, ActionStatus, test_items::keyed};

fn version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap()
}

#[tokio::test]
async fn opening_an_older_database_upgrades_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let id = EventId::generate(Utc::now());
    {
        let conn = Connection::open(&path).unwrap();
        migrate_sqlite(&conn, 1).unwrap();
        conn.execute(
            "INSERT INTO events (id, received_at, source, environment, status, error) \
             VALUES (?1, 1, 'web', 'production', 'rejected', 'bad: json')",
            [id.to_string()],
        )
        .unwrap();
        assert!(conn.prepare("SELECT 1 FROM mapping_overrides").is_err());
    }
    assert_eq!(version(&path), 1);
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(version(&path), migrate::latest());
    // Old rows survive; the new tables work.
    let old = store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(old.event.error.as_deref(), Some("bad: json"));
    store
        .set_mapping_active("web", "production", "m1", false)
        .await
        .unwrap();
    assert_eq!(store.mapping_overrides().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate_sqlite(&conn, migrate::latest()).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
    }
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .err()
        .expect("must refuse");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
}

/// Opens a bare writer (no checkpointer, no migrations beyond the journal's
/// table) on a fresh file, committing at most `commit_every` after a group.
fn bare_writer(dir: &Path, commit_every: Duration) -> writer::Writer {
    let path = dir.join("w.db");
    let lock = lock_process(&path, Duration::from_secs(1)).unwrap();
    let conn = open_writer(&path, Duration::from_secs(1), None, 4_096).unwrap();
    migrate_sqlite(&conn, migrate::latest()).unwrap();
    conn.execute_batch("CREATE TABLE notes (n INTEGER)")
        .unwrap();
    let intake =
        intake::IntakeJournal::open(&dir.join("w.db-intake"), intake::CommitMarks::default())
            .unwrap();
    let mut state = writer::Batch::new(
        lock,
        intake,
        checkpoint::RestartRequest::default(),
        std::sync::Arc::new([]),
        std::sync::Arc::new(dictionary::Dictionaries::open(&conn, Default::default(), 0).unwrap()),
    );
    state.replay(&conn, u64::MAX).unwrap();
    writer::spawn(conn, state, 64, 64, commit_every).unwrap()
}

fn notes_seen_by_a_reader(dir: &Path) -> i64 {
    Connection::open(dir.join("w.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn worker_bookkeeping_waits_for_no_commit_and_a_reader_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let w = bare_writer(dir.path(), Duration::from_secs(3600));
    // Answered inside the open transaction: no commit, no fsync of its own.
    w.write_unsynced(|c, _| Ok(c.execute("INSERT INTO notes (n) VALUES (1)", [])?))
        .await
        .unwrap();
    assert_eq!(notes_seen_by_a_reader(dir.path()), 0);
    // A reader that must see every answered write asks for the commit.
    w.make_visible().await.unwrap();
    assert_eq!(notes_seen_by_a_reader(dir.path()), 1);
    // A write that needs its own commit gets it at once.
    w.write(|c, _| Ok(c.execute("INSERT INTO notes (n) VALUES (2)", [])?))
        .await
        .unwrap();
    assert_eq!(notes_seen_by_a_reader(dir.path()), 2);
}

#[tokio::test]
async fn an_open_transaction_commits_once_it_is_old_enough() {
    let dir = tempfile::tempdir().unwrap();
    let w = bare_writer(dir.path(), Duration::from_millis(20));
    w.write_unsynced(|c, _| Ok(c.execute("INSERT INTO notes (n) VALUES (1)", [])?))
        .await
        .unwrap();
    // No job follows: the writer's wait for the next one ends at the
    // transaction's age limit, and it commits.
    for _ in 0..200 {
        if notes_seen_by_a_reader(dir.path()) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the open transaction never committed");
}

/// The in-memory dedup index keeps 28 bits of a key's hash: keys sharing
/// them are told apart by `dedup_log`, whether one is new or both repeat.
#[tokio::test]
async fn keys_sharing_the_index_bits_are_told_apart_by_the_log() {
    // Two message ids whose hashes share their top 28 bits (a birthday
    // search: about three pairs expected among 40,000).
    let top = |key: &str| {
        let item = keyed(key, 0);
        (crate::dedup::scope_hash(item.dedup.as_ref().unwrap()) as u64) >> 36
    };
    let mut seen = std::collections::HashMap::new();
    let (a, b): (String, String) = (0..200_000)
        .map(|n| format!("k{n}"))
        .find_map(|key| {
            seen.insert(top(&key), key.clone())
                .map(|earlier| (earlier, key))
        })
        .expect("no two keys share 28 bits");
    let dir = tempfile::tempdir().unwrap();
    let open = || SqliteStore::open_dir_with(dir.path(), SqliteOptions::default());
    // Each reopen loads the index from the log: every check below goes
    // through it, none through keys staged in an open transaction.
    let first_a = {
        let store = open().await.unwrap();
        append_one(&store, &a).await
    };
    let first_b = {
        let store = open().await.unwrap();
        append_one(&store, &b).await
    };
    assert!(
        matches!(first_b, AppendOutcome::Accepted { .. }),
        "{b} was taken for {a}: {first_b:?}"
    );
    let store = open().await.unwrap();
    for (key, first) in [(&a, &first_a), (&b, &first_b)] {
        match append_one(&store, key).await {
            AppendOutcome::Duplicate {
                original_event_id, ..
            } => assert_eq!(original_event_id, first.event_id(), "{key}"),
            other => panic!("a repeat of {key} was {other:?}"),
        }
    }
}

/// How many entries the writer's dedup index holds once `expected` shows:
/// a group's keys reach the index when it settles, after its answers.
async fn index_len_reaches(store: &SqliteStore, expected: usize) -> usize {
    let mut len = usize::MAX;
    for _ in 0..200 {
        len = store
            .writer
            .write_unsynced(|_, b| Ok(b.index.len()))
            .await
            .unwrap();
        if len == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    len
}

/// A pruned `dedup_log` row leaves the index with it, and only a pruned one.
#[tokio::test]
async fn pruning_the_log_drops_its_keys_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).await.unwrap();
    let now = Utc::now();
    let mut items: Vec<_> = (0..30).map(|n| keyed(&format!("old-{n}"), 0)).collect();
    for item in &mut items {
        // Their hour-long windows ended an hour ago.
        item.event.received_at = now - chrono::Duration::hours(2);
    }
    items.extend((0..5).map(|n| keyed(&format!("new-{n}"), 0)));
    store.append(items).await.unwrap();
    assert_eq!(index_len_reaches(&store, 35).await, 35);
    let report = store
        .prune(now - chrono::Duration::days(30), now, 100)
        .await
        .unwrap();
    assert_eq!(report.dedup_keys, 30);
    assert_eq!(index_len_reaches(&store, 5).await, 5);
    // The live keys still block their repeats.
    assert!(matches!(
        append_one(&store, "new-3").await,
        AppendOutcome::Duplicate { .. }
    ));
}

async fn append_one(store: &SqliteStore, key: &str) -> AppendOutcome {
    store.append(vec![keyed(key, 10)]).await.unwrap().remove(0)
}

/// Appends of single events with a unique message id each until the store
/// refuses one; returns the ids answered `Accepted`.
async fn append_until_refused(
    store: &SqliteStore,
    limit: usize,
) -> (Vec<EventId>, Option<StoreError>) {
    let mut accepted = Vec::new();
    for n in 0..limit {
        let item = keyed(&format!("m{n}"), 3_000);
        match store.append(vec![item]).await {
            Ok(outcomes) => match &outcomes[..] {
                [AppendOutcome::Accepted { event_id, .. }] => accepted.push(*event_id),
                other => panic!("unexpected outcome {other:?}"),
            },
            Err(e) => return (accepted, Some(e)),
        }
    }
    (accepted, None)
}

#[tokio::test]
async fn a_failed_group_puts_the_earlier_answered_appends_back() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        // Never commits on its own during the test: every answered append
        // is in the open transaction and the journal only.
        commit_every: Duration::from_secs(3600),
        max_pages: Some(120),
        page_size: 4_096,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_dir_with(dir.path(), options)
        .await
        .unwrap();
    let (accepted, refused) = append_until_refused(&store, 2_000).await;
    // The append that did not fit failed its group, which rolled back the
    // open transaction holding every earlier one.
    assert!(
        matches!(refused, Some(StoreError::DiskFull(_))),
        "{refused:?}"
    );
    assert!(accepted.len() > 10, "only {} fitted", accepted.len());
    for id in &accepted {
        assert!(
            store.event_detail(*id).await.unwrap().is_some(),
            "answered event {id} is gone"
        );
    }
    // And they still block their repeats.
    let (again, _) = append_until_refused(&store, 1).await;
    assert!(again.is_empty(), "a repeat of m0 was accepted again");
}

#[tokio::test]
async fn answered_appends_are_back_after_the_process_dies_before_their_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SQLITE_FILE_NAME);
    let ids = {
        let store = SqliteStore::open_dir_with(
            dir.path(),
            SqliteOptions {
                commit_every: Duration::from_secs(3600),
                ..SqliteOptions::default()
            },
        )
        .await
        .unwrap();
        let (ids, refused) = append_until_refused(&store, 5).await;
        assert!(refused.is_none());
        // What a crash leaves: the database as last committed (a copy taken
        // now, with the transaction still open) and the journal.
        let copy = tempfile::tempdir().unwrap();
        for suffix in ["", "-wal", "-intake0", "-intake1"] {
            let from = private::with_suffix(&path, suffix);
            if from.exists() {
                std::fs::copy(
                    &from,
                    private::with_suffix(&copy.path().join(SQLITE_FILE_NAME), suffix),
                )
                .unwrap();
            }
        }
        std::mem::forget(store);
        (ids, copy)
    };
    let (ids, copy) = ids;
    let reopened = SqliteStore::open_dir(copy.path()).await.unwrap();
    for id in &ids {
        assert!(
            reopened.event_detail(*id).await.unwrap().is_some(),
            "event {id} lost"
        );
    }
    let again = reopened
        .list_events(&EventFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(again.items.len(), ids.len(), "each event once");
}

#[tokio::test]
async fn the_wal_starts_over_under_steady_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let options = SqliteOptions {
        checkpoint_every: Duration::from_millis(5),
        wal_restart_frames: 32,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).await.unwrap();
    // Writes that never let up (32 tasks, each waiting for its own commit):
    // a passive checkpoint never catches up with them, so without restarts
    // the log would only grow.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32u32 {
        let store = store.clone();
        tasks.spawn(async move {
            for n in 0..120u32 {
                store
                    .set_mapping_active("web", "production", &format!("m{t}-{n}"), n % 2 == 0)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // The file never shrinks: its size is the most frames the log ever held
    // (a frame is a 24-byte header and a page, after a 32-byte header).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let frames = std::fs::metadata(PathBuf::from(wal))
        .unwrap()
        .len()
        .saturating_sub(32)
        / (24 + u64::from(SqliteOptions::default().page_size));
    // Measured: about 200 with restarts (more on a loaded machine), about
    // 2,600 with them turned off.
    assert!(frames < 1_200, "the WAL held up to {frames} frames");
}

#[tokio::test]
async fn stored_running_actions_read_as_pending_after_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let conn = Connection::open(&path).unwrap();
        migrate_sqlite(&conn, 2).unwrap();
        conn.execute(
            "INSERT INTO actions (id, event_id, position, action_type, source, environment, \
             plan_json, status, created_at, updated_at) \
             VALUES ('a1', 'e1', 0, 'identify_user', 'web', 'production', '{}', 'running', 1, 1)",
            [],
        )
        .unwrap();
    }
    let _store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let status: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT status FROM actions WHERE id = 'a1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "pending");
}

fn page_size(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_new_file_takes_the_page_size_and_an_existing_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    let store = SqliteStore::open(&new, SqliteOptions::default())
        .await
        .unwrap();
    drop(store);
    assert_eq!(page_size(&new), 8_192);

    // A store created before the default changed, with rows in it.
    let old = dir.path().join("old.db");
    let id = EventId::generate(Utc::now());
    {
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
            .unwrap();
        migrate_sqlite(&conn, migrate::latest()).unwrap();
        conn.execute(
            "INSERT INTO events (id, received_at, source, environment, status, error) \
             VALUES (?1, 1, 'web', 'production', 'rejected', 'bad: json')",
            [id.to_string()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&old, SqliteOptions::default())
        .await
        .unwrap();
    store
        .set_mapping_active("web", "production", "m1", false)
        .await
        .unwrap();
    assert!(store.event_detail(id).await.unwrap().is_some());
    drop(store);
    assert_eq!(page_size(&old), 4_096);
}

#[tokio::test]
async fn a_page_size_sqlite_would_ignore_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0, 1_000, 256, 131_072] {
        let err = SqliteStore::open(
            dir.path().join("p.db"),
            SqliteOptions {
                page_size: bad,
                ..SqliteOptions::default()
            },
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(
                err,
                StoreError::InvalidInput {
                    field: "page_size",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
}

/// (name, nice value) of each of this process's threads.
#[cfg(target_os = "linux")]
fn threads() -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // The name in `stat` may hold spaces: the fields after it are
        // state, ppid, ...; nice is the 19th field overall.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = after.split(' ').nth(16).unwrap().parse().unwrap();
        out.push((comm.trim().to_owned(), nice));
    }
    out
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_checkpointer_runs_below_the_writers_priority() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(&dir.path().join("nice.db"), SqliteOptions::default())
        .await
        .unwrap();
    let base = rustix::process::getpriority_process(None).unwrap();
    let expected = (base + checkpoint::NICE_INCREMENT).min(19);
    // A new thread shows its parent's name until it sets its own, and the
    // checkpointer opens its connection before lowering itself; other tests'
    // stores may be starting theirs too. So wait until both threads show
    // and every checkpointer has lowered itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let all = threads();
        let ckpt: Vec<i32> = all
            .iter()
            .filter(|(n, _)| n == checkpoint::CHECKPOINTER_THREAD)
            .map(|(_, nice)| *nice)
            .collect();
        let writers: Vec<i32> = all
            .iter()
            .filter(|(n, _)| n == writer::WRITER_THREAD)
            .map(|(_, nice)| *nice)
            .collect();
        assert!(writers.iter().all(|n| *n == base), "{all:?}");
        if !writers.is_empty() && !ckpt.is_empty() && ckpt.iter().all(|n| *n == expected) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{all:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn store_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data").join("store");
    let store = SqliteStore::open_dir(&dir).await.unwrap();
    store
        .record_rejected(RejectedRequest {
            received_at: Utc::now(),
            source: None,
            environment: None,
            code: "c".into(),
            message: "m".into(),
            body: Vec::new(),
            headers: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("data")), 0o700);
    let db = dir.join(SQLITE_FILE_NAME);
    for suffix in ["", "-wal", "-shm", "-lock"] {
        let file = private::with_suffix(&db, suffix);
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    // A store made before this rule is tightened when opened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open_dir(&dir).await.unwrap();
    assert_eq!(mode(&db), 0o600);
}

#[tokio::test]
async fn a_batchs_headers_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).await.unwrap();
    let big = "h".repeat(1_000);
    let headers = tributary_core::event::Headers::stored([("x-big", big.as_str())], &[]);
    let now = Utc::now();
    let items: Vec<AppendItem> = (0..50)
        .map(|i| {
            let mut event = tributary_core::event::Event {
                id: EventId::generate(now),
                environment: "production".into(),
                source: "web".into(),
                kind: tributary_core::event::EventKind::Track,
                event: format!("e{i}"),
                user_id: None,
                anonymous_id: None,
                data: serde_json::json!({}),
                timestamp: now,
                received_at: now,
                message_id: None,
                raw: serde_json::json!({"type": "track"}),
                headers: Default::default(),
                preprocess: None,
            };
            event.headers = headers.clone();
            AppendItem {
                event,
                plans: vec![],
                dedup: None,
                provenance: Default::default(),
            }
        })
        .collect();
    store.append(items).await.unwrap();
    // Read through the store once, so the writer's open transaction commits
    // before another connection looks.
    store.ping().await.unwrap();
    let conn = Connection::open(dir.path().join(SQLITE_FILE_NAME)).unwrap();
    let mut stmt = conn.prepare("SELECT event_json FROM events").unwrap();
    let with_headers = stmt
        .query_map([], |r| r.get::<_, packed::StoredJson>(0))
        .unwrap()
        .filter(|j| j.as_ref().unwrap().0.contains(&big))
        .count();
    assert_eq!(with_headers, 1);
}

/// SQLite's plan for `sql` run with `args`, one line per step.
fn query_plan(conn: &Connection, sql: &str, args: &[String]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_partial_status_index_serves_every_status_it_holds() {
    let conn = Connection::open_in_memory().unwrap();
    migrate_sqlite(&conn, migrate::latest()).unwrap();
    for &status in ActionStatus::ALL {
        let filter = ActionFilter {
            status: Some(status),
            ..ActionFilter::default()
        };
        let (sql, mut args) = crate::rows::actions_query(&filter, None, |n| format!("?{n}"));
        args.push("50".into());
        let plan = query_plan(&conn, &sql, &args);
        // `succeeded` is left out of the index: its actions are found
        // walking the log by id, where they are most of the rows.
        assert_eq!(
            plan.contains("actions_by_status"),
            status != ActionStatus::Succeeded,
            "{status:?}: {plan}"
        );
        // A filter the indexes serve only in part selects its window by status.
        let narrowed = ActionFilter {
            source: Some("web".into()),
            ..filter
        };
        let clauses = crate::rows::actions_window(&narrowed, None).unwrap();
        let window = crate::rows::window_query("actions", &clauses, 1, |n| format!("?{n}"));
        let args: Vec<String> = clauses.into_iter().map(|(_, v)| v).collect();
        let plan = query_plan(&conn, &window, &args);
        assert_eq!(
            plan.contains("actions_by_status"),
            status != ActionStatus::Succeeded,
            "{status:?} window: {plan}"
        );
    }
}
