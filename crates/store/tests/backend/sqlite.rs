//! SQLite-only behaviour: faults and the process lock.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tributary_store::{
    AdminQueries, AppendItem, AppendOutcome, DictionaryOptions, EventLog, LocalExecution,
    LocalRecipients, SqliteOptions, SqliteStore, StoreError,
};

use crate::support::*;

#[tokio::test]
async fn corrupt_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::write(&path, vec![0x5a_u8; 16 * 1024]).unwrap();
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let _first = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let err = SqliteStore::open(&path, options)
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Locked(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_is_a_typed_error_then_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let store = SqliteStore::open(&path, options).await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store.append(vec![keyed_item("k1")]).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err:?}");
    other.execute_batch("ROLLBACK").unwrap();
    let out = store.append(vec![keyed_item("k1")]).await.unwrap();
    assert!(
        matches!(out[0], AppendOutcome::Accepted { .. }),
        "the failed append must not have claimed the key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_typed_error_and_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_pages: Some(200),
        ..Default::default()
    };
    let store = SqliteStore::open(dir.path().join("t.db"), options)
        .await
        .unwrap();
    let mut stored = Vec::new();
    let mut full = None;
    for n in 0..10_000 {
        let mut item = keyed_item(&format!("k{n}"));
        item.event.raw = json!({"pad": "y".repeat(2_000)});
        match store.append(vec![item]).await {
            Ok(out) => stored.push(out[0].event_id()),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the capped database must fill up");
    assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
    assert!(err.is_unavailable());
    for id in stored {
        assert!(store.event_detail(id).await.unwrap().is_some());
    }
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_overloaded() {
    let Some(h) = sqlite_with(SqliteOptions {
        queue_capacity: 1,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let mut tasks = Vec::new();
    for n in 0..500 {
        let store = Arc::clone(&h.store);
        tasks.push(tokio::spawn(async move {
            store.append(vec![keyed_item(&format!("k{n}"))]).await
        }));
    }
    let (mut ok, mut overloaded) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Overloaded) => overloaded += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(
        overloaded > 0,
        "500 appends against a queue of 1 must shed some"
    );
    assert_eq!(ok + overloaded, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_keys_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let first = {
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let out = store.append(vec![keyed_item("survivor")]).await.unwrap();
        out[0].event_id()
    };
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let out = store.append(vec![keyed_item("survivor")]).await.unwrap();
    assert!(
        matches!(out[0], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == first),
        "{out:?}"
    );
}

/// Which actions the store runs itself is what it was opened with, from
/// the configuration, and nothing a caller passes later: opened with
/// `production` in the store, the append runs `production`'s identify and a
/// round leases only `staging`'s; opened without, the round leases both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_runs_in_the_store_the_environments_it_is_given() {
    use tributary_core::config::{StoreBackend, StoreSettings};
    for local in [LocalExecution::ThroughSink, production_in_store()] {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings {
            backend: StoreBackend::Sqlite {
                path: dir.path().to_string_lossy().into_owned(),
            },
            retention_days: 30,
            secrets_key: None,
        };
        let store = tributary_store::open(&settings, local.clone())
            .await
            .unwrap();
        let mut staging = event("web", "signup", Some("u2"));
        staging.environment = "staging".into();
        let out = store
            .append(vec![
                plain_item(
                    event("web", "signup", Some("u1")),
                    vec![identify_plan("u1", serde_json::json!({"name": "Ada"}))],
                ),
                plain_item(staging, vec![identify_plan("u2", serde_json::json!({}))]),
            ])
            .await
            .unwrap();
        let ran_at_append: Vec<(&str, &str)> = out
            .iter()
            .flat_map(|o| match o {
                AppendOutcome::Accepted { ran_local, .. } => ran_local.as_slice(),
                AppendOutcome::Duplicate { .. } => &[],
            })
            .map(|r| (r.environment.as_str(), r.outcome.name()))
            .collect();
        let round = store
            .claim_running_local("w", 10, Duration::from_secs(60))
            .await
            .unwrap();
        let leased: Vec<&str> = round
            .claimed
            .iter()
            .map(|c| c.environment.as_str())
            .collect();
        assert!(round.ran_local.is_empty(), "{:?}", round.ran_local);
        if local == LocalExecution::ThroughSink {
            assert_eq!((leased.len(), ran_at_append.len()), (2, 0), "{local:?}");
        } else {
            assert_eq!(
                (leased, ran_at_append),
                (vec!["staging"], vec![("production", "succeeded")])
            );
            let user = store
                .local_record(tributary_store::LocalKind::User, "production", "", "u1")
                .await
                .unwrap()
                .expect("the store ran the identify");
            assert_eq!(user.data["name"], "Ada");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_from_settings_and_retention_helper() {
    use tributary_core::config::{StoreBackend, StoreSettings};
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        backend: StoreBackend::Sqlite {
            path: dir.path().join("data").to_string_lossy().into_owned(),
        },
        retention_days: 30,
        secrets_key: None,
    };
    let store = tributary_store::open(&settings, LocalExecution::ThroughSink)
        .await
        .unwrap();
    assert!(
        dir.path()
            .join("data")
            .join(tributary_store::SQLITE_FILE_NAME)
            .exists()
    );
    let now = chrono::Utc::now();
    let mut items = Vec::new();
    for i in 0..1_200 {
        items.push(plain_item(
            event_at(
                "web",
                "signup",
                None,
                now - chrono::Duration::days(40) + chrono::Duration::seconds(i),
            ),
            vec![],
        ));
    }
    items.push(plain_item(event_at("web", "signup", None, now), vec![]));
    store.append(items).await.unwrap();
    let report = tributary_store::prune_older_than(store.as_ref(), settings.retention_days)
        .await
        .unwrap();
    assert_eq!(report.events, 1_200);
    let left = store
        .list_events(&Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
}

/// An item shaped like one source's traffic: the same fields and context,
/// values of its own, and a trigger whose data is the properties (even `n`:
/// the plan leaves it to the event) or a mapping's object built from them
/// (odd `n`: the plan keeps it).
fn order_item(n: usize) -> AppendItem {
    let mut e = event("web", "Order Completed", Some(&format!("user-{n}")));
    let properties = json!({
        "order_id": format!("ord-{n}"),
        "total": n as f64 * 1.25,
        "currency": "EUR",
        "products": [{"sku": format!("sku-{}", n % 40), "quantity": n % 3 + 1, "name": "Trail running shoes"}],
    });
    e.raw = json!({
        "type": "track",
        "event": "Order Completed",
        "userId": format!("user-{n}"),
        "messageId": format!("msg-{n:010}"),
        "context": {
            "library": {"name": "analytics-node", "version": format!("2.1.{}", n % 9)},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            "ip": format!("198.51.100.{}", n % 250),
        },
        "properties": properties,
    });
    e.data = properties.clone();
    let mut plan = trigger_plan("order-confirmation", &format!("user-{n}"));
    if let tributary_core::plan::PlanOutcome::Planned {
        payload: tributary_core::plan::ActionPayload::TriggerWorkflow { data, .. },
    } = &mut plan.outcome
    {
        *data = trigger_data(n, properties).into();
    }
    plain_item(e, vec![plan])
}

/// The trigger data of [`order_item`] `n`.
fn trigger_data(n: usize, properties: serde_json::Value) -> serde_json::Value {
    if n.is_multiple_of(2) {
        properties
    } else {
        json!({ "order": properties })
    }
}

/// The zstd dictionary each stored JSON column names, in row order.
fn dictionaries_named(path: &std::path::Path, sql: &str) -> Vec<(Option<u32>, usize)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Blob(b) => (
                zstd::zstd_safe::get_dict_id_from_frame(b).map(|id| id.get()),
                b.len(),
            ),
            other => (None, other.as_bytes().map_or(0, <[u8]>::len)),
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Appends orders `first..first + count`; each one's id, data and raw.
async fn append_orders(
    store: &SqliteStore,
    first: usize,
    count: usize,
) -> Vec<(
    tributary_core::event::EventId,
    serde_json::Value,
    serde_json::Value,
)> {
    let items: Vec<AppendItem> = (first..first + count).map(order_item).collect();
    let outcomes = store.append(items.clone()).await.unwrap();
    items
        .into_iter()
        .zip(outcomes)
        .map(|(item, out)| (out.event_id(), item.event.data, item.event.raw))
        .collect()
}

/// A store at `path` that trains its dictionary on its first 200 texts.
async fn training_after_200_texts(path: &std::path::Path, local: LocalExecution) -> SqliteStore {
    SqliteStore::open(
        path,
        SqliteOptions {
            json_dictionary: DictionaryOptions {
                samples: 200,
                max_age: DAY,
            },
            local_execution: local,
            ..SqliteOptions::default()
        },
    )
    .await
    .unwrap()
}

/// A store trains a dictionary on the JSON it stores, keeps it with an
/// fsync, and packs what follows with it: events and plans come out smaller
/// and read back as they went in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_json_is_packed_with_a_dictionary_trained_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = training_after_200_texts(&path, LocalExecution::ThroughSink).await;
    let mut appended = Vec::new();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dictionary: i64 = loop {
        appended.extend(append_orders(&store, n, 20).await);
        n += 20;
        store.ping().await.unwrap();
        let found = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT id FROM json_dictionaries", [], |r| r.get(0))
            .ok();
        if let Some(id) = found {
            break id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dictionary after {n} events"
        );
    };
    let trained_after = n;
    for _ in 0..5 {
        appended.extend(append_orders(&store, n, 20).await);
        n += 20;
    }
    store.ping().await.unwrap();

    for (sql, what) in [
        ("SELECT event_json FROM events ORDER BY seq", "events"),
        ("SELECT plan_json FROM actions ORDER BY seq", "plans"),
    ] {
        let named = dictionaries_named(&path, sql);
        assert_eq!(named.len(), n, "{what}");
        // The append that installs the dictionary packs with it already.
        let first = named.iter().position(|(id, _)| id.is_some()).unwrap();
        assert!(
            first <= trained_after && first >= 50,
            "{what}: first packed with it: {first}"
        );
        let (before, after) = named.split_at(first);
        assert!(
            before.iter().all(|(id, _)| id.is_none()),
            "{what} before the dictionary"
        );
        assert!(
            after
                .iter()
                .all(|(id, _)| *id == u32::try_from(dictionary).ok()),
            "{what} after it name it"
        );
        let mean =
            |rows: &[(Option<u32>, usize)]| rows.iter().map(|r| r.1).sum::<usize>() / rows.len();
        assert!(
            mean(after) * 2 < mean(before),
            "{what}: {} bytes with the dictionary against {} without",
            mean(after),
            mean(before)
        );
    }
    for (n, (id, data, raw)) in appended.iter().enumerate() {
        let d = store.event_detail(*id).await.unwrap().unwrap();
        let event = d.event.event.as_ref().expect("the stored event");
        assert_eq!((&event.data, &event.raw), (data, raw));
        match &d.actions[0].plan.outcome {
            tributary_core::plan::PlanOutcome::Planned {
                payload: tributary_core::plan::ActionPayload::TriggerWorkflow { data: planned, .. },
            } => assert_eq!(planned, &trigger_data(n, data.clone())),
            other => panic!("{other:?}"),
        }
    }
}

/// A workflow run holds its trigger's data, as large as the event's: the
/// store packs it like the event's JSON, and reads it back as it was
/// planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_runs_are_packed_with_the_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = training_after_200_texts(&path, production_in_store()).await;
    const USERS: usize = 1_000;
    let identifies = (0..USERS)
        .map(|n| {
            let user = format!("user-{n}");
            plain_item(
                event("web", "identify", Some(&user)),
                vec![identify_plan(&user, json!({"name": "A Buyer"}))],
            )
        })
        .collect();
    store.append(identifies).await.unwrap();
    // Run (action) id -> the trigger data it was planned with.
    let mut planned = std::collections::HashMap::new();
    let mut n = 0;
    let mut appended_after_dictionary = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while appended_after_dictionary < 100 {
        let items: Vec<AppendItem> = (n..n + 20).map(order_item).collect();
        let out = store.append(items.clone()).await.unwrap();
        for (item, out) in items.into_iter().zip(out) {
            let AppendOutcome::Accepted { action_ids, .. } = out else {
                panic!("{out:?}");
            };
            planned.insert(
                action_ids[0].to_string(),
                trigger_data(n, item.event.data.clone()),
            );
            n += 1;
        }
        assert!(n < USERS, "every order needs an identified user");
        store.ping().await.unwrap();
        let trained = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM json_dictionaries", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        if trained > 0 {
            appended_after_dictionary += 20;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dictionary after {n} events"
        );
    }
    let runs = store
        .local_records(
            tributary_store::LocalKind::WorkflowRun,
            "production",
            "order-confirmation",
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), n, "one run per order");
    let mut text_bytes = Vec::new();
    for run in &runs {
        assert_eq!(
            Some(&run.data["data"]),
            planned.get(&run.id),
            "run {}",
            run.id
        );
        text_bytes.push(serde_json::to_string(&run.data).unwrap().len());
    }
    // Both in id order.
    let stored = dictionaries_named(
        &path,
        "SELECT data FROM local_records WHERE kind = 'workflow_run' ORDER BY id",
    );
    // The runs appended after the dictionary (the last ids) name it, and
    // take fewer bytes than their text (these short, varied runs gain about
    // a tenth; the load generator's, 491 bytes of text, took 37 in
    // docs/PERFORMANCE.md's fifteenth step).
    let last = stored.len() - 80;
    assert!(
        stored[last..].iter().all(|(id, _)| id.is_some()),
        "{stored:?}"
    );
    let packed: usize = stored[last..].iter().map(|r| r.1).sum();
    let text: usize = text_bytes[last..].iter().sum();
    assert!(
        packed < text,
        "runs stored in {packed} bytes, {text} as text"
    );
}
