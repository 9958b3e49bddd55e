//! Crash safety: a child process appends under load and is killed with
//! SIGKILL at random moments; every append it saw acknowledged must be in the
//! database after reopening, exactly once, with exactly its planned actions.
//!
//! The child is this test binary re-executed with `TRIBUTARY_CRASH_CHILD` set,
//! running [`crash_child`]; it prints `ACK <event id> <action id> <key>` for
//! every item whose append returned `Ok`, flushing each line. With
//! `TRIBUTARY_CRASH_IN_STORE` set it runs its environment's `local` actions
//! in the store, at append: each must then have run exactly once.
//!
//! A SQLite child trains its compression dictionary early (after 200
//! texts), so most rounds pack with one; the parent, a process that never
//! saw it, must read every event and plan back.

mod support;

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use rand::Rng;
use serde_json::json;
use tributary_core::event::EventId;
use tributary_store::{
    ActionStatus, AppendItem, AppendOutcome, DictionaryOptions, EventFilter, EventStatus,
    LocalExecution, LocalKind, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store,
};

use support::*;

const CHILD_ENV: &str = "TRIBUTARY_CRASH_CHILD";
const IN_STORE_ENV: &str = "TRIBUTARY_CRASH_IN_STORE";

/// The child's body; a no-op unless re-executed by the parent test.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var("TRIBUTARY_CRASH_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let in_store = std::env::var(IN_STORE_ENV).is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store = open_store(&path, in_store).await;
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..16u32 {
            let (store, out) = (Arc::clone(&store), Arc::clone(&out));
            tasks.push(tokio::spawn(async move {
                for n in 0u32.. {
                    // Batches of 1-3 events; every key is new, and some repeat
                    // a key acknowledged earlier in this round.
                    let mut items = Vec::new();
                    for k in 0..(1 + n % 3) {
                        let key = if n % 7 == 6 {
                            format!("r{round}-t{t}-n{}-k0", n - 6)
                        } else {
                            format!("r{round}-t{t}-n{n}-k{k}")
                        };
                        let e = event("web", "signup", Some("u1"));
                        let dedup = Some(scope_for(&e, &key, DAY));
                        items.push(AppendItem {
                            event: e,
                            plans: vec![
                                identify_plan("u1", json!({"n": n})),
                                if in_store {
                                    trigger_plan("welcome", "u1")
                                } else {
                                    skipped_plan()
                                },
                            ],
                            dedup,
                            provenance: Default::default(),
                        });
                    }
                    let keys: Vec<String> = items
                        .iter()
                        .map(|i| i.dedup.as_ref().unwrap().key.clone())
                        .collect();
                    let Ok(outcomes) = store.append(items).await else {
                        continue;
                    };
                    let mut out = out.lock().unwrap();
                    for (o, key) in outcomes.iter().zip(keys) {
                        match o {
                            AppendOutcome::Accepted {
                                event_id,
                                action_ids,
                                ..
                            } => {
                                writeln!(out, "ACK {event_id} {} {key}", action_ids[0]).unwrap();
                            }
                            AppendOutcome::Duplicate {
                                event_id,
                                original_event_id,
                            } => {
                                writeln!(out, "DUP {event_id} {original_event_id} {key}").unwrap();
                            }
                        }
                    }
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// `target` is a SQLite file path, or `postgres:<schema>`; `in_store`: the
/// store runs `production`'s actions itself (SQLite).
async fn open_store(target: &str, in_store: bool) -> Arc<dyn Store> {
    match target.strip_prefix("postgres:") {
        Some(schema) => {
            let url = std::env::var("TRIBUTARY_TEST_POSTGRES").expect("postgres url");
            let options = PostgresOptions {
                schema: Some(schema.to_owned()),
                pool_size: 6,
                ..Default::default()
            };
            Arc::new(
                PostgresStore::connect(&url, options)
                    .await
                    .expect("connect"),
            )
        }
        None => Arc::new(
            SqliteStore::open(
                target,
                SqliteOptions {
                    local_execution: if in_store {
                        production_in_store()
                    } else {
                        LocalExecution::ThroughSink
                    },
                    json_dictionary: DictionaryOptions {
                        samples: 200,
                        ..DictionaryOptions::default()
                    },
                    ..SqliteOptions::default()
                },
            )
            .await
            .expect("open"),
        ),
    }
}

#[derive(Debug)]
enum Ack {
    Accepted {
        event: EventId,
        action: String,
        key: String,
    },
    Duplicate {
        event: EventId,
        original: EventId,
    },
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    let tag = parts.next()?;
    let a: EventId = parts.next()?.parse().ok()?;
    let b = parts.next()?;
    let key = parts.next()?.to_owned();
    match tag {
        "ACK" => Some(Ack::Accepted {
            event: a,
            action: b.to_owned(),
            key,
        }),
        "DUP" => Some(Ack::Duplicate {
            event: a,
            original: b.parse().ok()?,
        }),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("crash.db");
    crash_rounds(db.to_str().expect("utf-8 path"), 6, false).await;
}

/// The same with the `local` sink's actions run at append: a replayed
/// append runs them again only because the transaction that ran them first
/// was lost with the crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_runs_in_store_actions_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("crash.db");
    crash_rounds(db.to_str().expect("utf-8 path"), 6, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_loses_nothing_acknowledged_postgres() {
    if postgres_url().is_none() {
        return;
    }
    crash_rounds(&format!("postgres:{}", fresh_schema()), 4, false).await;
}

async fn crash_rounds(db: &str, rounds: u32, in_store: bool) {
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand::rng();
    let mut acks = Vec::new();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, db)
            .env("TRIBUTARY_CRASH_ROUND", round.to_string())
            .env(IN_STORE_ENV, if in_store { "1" } else { "" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut mine = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ack) = parse(&line) {
                    mine.push(ack);
                    let _ = tx.send(());
                }
            }
            mine
        });
        // Wait until the child is appending (opening and migrating take a
        // moment on a busy machine), then kill it at a random moment.
        let started =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)).is_ok())
                .await
                .expect("wait");
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..600))).await;
        child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix.
        child.wait().expect("reap");
        let mine = reader.join().expect("reader");
        assert!(
            started,
            "round {round}: the child never acknowledged an append"
        );
        acks.extend(mine);
    }

    let store = open_store(db, in_store).await;
    let mut accepted_keys: HashMap<String, EventId> = HashMap::new();
    let mut checked = 0;
    for ack in &acks {
        match ack {
            Ack::Accepted { event, action, key } => {
                let d = store
                    .event_detail(*event)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged event {event} lost"));
                assert_eq!(d.event.status, EventStatus::Accepted);
                assert_eq!(
                    d.actions.len(),
                    2,
                    "event {event} must have exactly its planned actions"
                );
                assert_eq!(d.actions[0].id.to_string(), *action);
                if in_store {
                    for a in &d.actions {
                        assert_eq!((a.status, a.attempts), (ActionStatus::Succeeded, 1));
                    }
                    assert_eq!(d.attempts.len(), 2, "one attempt per action");
                    let run = store
                        .local_record(
                            LocalKind::WorkflowRun,
                            "production",
                            "welcome",
                            &d.actions[1].id.to_string(),
                        )
                        .await
                        .unwrap();
                    assert!(run.is_some(), "the trigger of {event} took effect");
                } else {
                    assert_eq!(d.actions[0].status, ActionStatus::Pending);
                    assert_eq!(d.actions[1].status, ActionStatus::Skipped);
                }
                assert!(
                    accepted_keys.insert(key.clone(), *event).is_none(),
                    "key {key} accepted twice"
                );
                checked += 1;
            }
            Ack::Duplicate { event, original } => {
                let d = store
                    .event_detail(*event)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged duplicate {event} lost"));
                assert_eq!(d.event.status, EventStatus::Duplicate);
                assert_eq!(d.event.duplicate_of, Some(*original));
                assert!(d.actions.is_empty());
            }
        }
    }
    assert!(checked > 0);

    // Nothing is stored twice, and no key is accepted twice (acknowledged or not).
    let mut seen = HashSet::new();
    let mut keys = HashSet::new();
    let mut pending = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_events(&EventFilter::default(), cursor, 1_000)
            .await
            .unwrap();
        for e in &page.items {
            assert!(seen.insert(e.id));
            if e.status == EventStatus::Accepted {
                assert!(
                    keys.insert(e.message_id.clone().unwrap()),
                    "key accepted twice"
                );
                pending += 1;
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // The outbox holds exactly one runnable action per accepted event, or,
    // when they ran at append, none.
    let claimed = store
        .claim("audit", 1_000_000, Duration::from_secs(60))
        .await
        .unwrap();
    let runnable = if in_store { 0 } else { pending };
    assert_eq!(claimed.len(), runnable);
    let claimed_events: HashSet<EventId> = claimed.iter().map(|c| c.event_id).collect();
    assert_eq!(claimed_events.len(), runnable);
    let packed = if db.starts_with("postgres:") {
        0
    } else {
        packed_with_a_dictionary(db)
    };
    eprintln!(
        "crash test ({db}): {rounds} rounds, {checked} acknowledged accepts verified, {} events stored, {packed} packed with a dictionary",
        seen.len()
    );
    if !db.starts_with("postgres:") {
        assert!(packed > 0, "no round packed with a dictionary");
    }
}

/// How many stored events name a compression dictionary (read above, so
/// this process loaded it from the store).
fn packed_with_a_dictionary(path: &str) -> usize {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT event_json FROM events").unwrap();
    stmt.query_map([], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Blob(b) => {
                zstd::zstd_safe::get_dict_id_from_frame(b).is_some()
            }
            _ => false,
        })
    })
    .unwrap()
    .filter(|named| *named.as_ref().unwrap())
    .count()
}
