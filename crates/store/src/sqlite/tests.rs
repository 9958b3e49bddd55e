use rusqlite::Connection;

use super::*;

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

/// Opens a bare writer (no checkpointer) on a fresh file.
fn bare_writer(dir: &Path) -> writer::Writer {
    let path = dir.join("w.db");
    let lock = lock_process(&path, Duration::from_secs(1)).unwrap();
    let conn = open_writer(&path, Duration::from_secs(1), None, 4_096).unwrap();
    writer::spawn(
        conn,
        writer::DedupIndex::new(),
        lock,
        64,
        64,
        checkpoint::RestartRequest::default(),
    )
    .unwrap()
}

fn synchronous(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
}

#[tokio::test]
async fn worker_bookkeeping_commits_without_its_own_fsync() {
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let w = bare_writer(dir.path());
    // Alone, an unsynced job commits (after its short wait) without an fsync.
    assert_eq!(
        w.write_unsynced(|c, _| synchronous(c)).await.unwrap(),
        NORMAL
    );
    assert_eq!(w.write(|c, _| synchronous(c)).await.unwrap(), FULL);
    // Queued beside a synced job, it shares that job's fsync'd commit. The
    // first job holds the writer so both of the others are waiting together.
    let busy = w.write(|_, _| {
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    });
    let (busy, unsynced, synced) = tokio::join!(
        busy,
        w.write_unsynced(|c, _| synchronous(c)),
        w.write(|c, _| synchronous(c)),
    );
    busy.unwrap();
    assert_eq!(unsynced.unwrap(), FULL);
    assert_eq!(synced.unwrap(), FULL);
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
    drop(store);
    let conn = Connection::open(dir.path().join(SQLITE_FILE_NAME)).unwrap();
    let with_headers: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE instr(event_json, ?1) > 0",
            [&big],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(with_headers, 1);
}
