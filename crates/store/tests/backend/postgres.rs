//! PostgreSQL-only behaviour: several stores on one database, lost connections.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tributary_store::{
    AppendOutcome, EventLog, LocalExecution, PostgresOptions, PostgresStore, Store, StoreError,
};

use crate::support::*;

/// Two stores on one fresh schema, each with its own pool, as two replicas.
async fn two_replicas(url: &str, local: LocalExecution) -> [Arc<dyn Store>; 2] {
    let schema = fresh_schema();
    let connect = || {
        PostgresStore::connect(
            url,
            PostgresOptions {
                schema: Some(schema.clone()),
                pool_size: 6,
                local_execution: local.clone(),
                ..Default::default()
            },
        )
    };
    [
        Arc::new(connect().await.unwrap()),
        Arc::new(connect().await.unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_accept_each_key_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    // Two pools, as two replicas would have.
    let [a, b] = two_replicas(&url, LocalExecution::ThroughSink).await;
    let keys: Vec<String> = (0..150).map(|n| format!("msg-{n}")).collect();
    let mut tasks = Vec::new();
    for (i, store) in [a, b].into_iter().cycle().take(8).enumerate() {
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let mut outs = Vec::new();
            // Each task walks the keys in its own order, in batches of 1-4.
            let mut order: Vec<&String> = keys.iter().collect();
            order.rotate_left(i * 17 % keys.len());
            if i % 2 == 1 {
                order.reverse();
            }
            for chunk in order.chunks(1 + i % 4) {
                let items = chunk.iter().map(|k| keyed_item(k)).collect();
                let keys: Vec<String> = chunk.iter().map(|k| (*k).clone()).collect();
                let out = store.append(items).await.unwrap();
                outs.extend(keys.into_iter().zip(out));
            }
            outs
        }));
    }
    let mut accepted: HashMap<String, Vec<_>> = HashMap::new();
    let mut duplicates = Vec::new();
    for t in tasks {
        for (key, out) in t.await.unwrap() {
            match out {
                AppendOutcome::Accepted { event_id, .. } => {
                    accepted.entry(key).or_default().push(event_id)
                }
                AppendOutcome::Duplicate {
                    original_event_id, ..
                } => duplicates.push((key, original_event_id)),
            }
        }
    }
    assert_eq!(accepted.len(), keys.len());
    for (key, ids) in &accepted {
        assert_eq!(ids.len(), 1, "key {key} accepted {} times", ids.len());
    }
    assert_eq!(duplicates.len(), keys.len() * 7);
    for (key, original) in duplicates {
        assert_eq!(
            accepted[&key][0], original,
            "duplicate of {key} points elsewhere"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_a_typed_error_and_the_pool_reconnects() {
    let Some(url) = postgres_url() else {
        return;
    };
    let name = fresh_schema();
    let store = PostgresStore::connect(
        &url,
        PostgresOptions {
            schema: Some(name.clone()),
            application_name: name.clone(),
            pool_size: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store.append(vec![keyed_item("before")]).await.unwrap();
    store.ping().await.unwrap();
    // Kill every server process of this store, as a restart or a network cut would.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed > 0);
    let mut recovered = false;
    for n in 0..20 {
        match store.append(vec![keyed_item(&format!("after-{n}"))]).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(e) => {
                assert!(
                    e.is_unavailable(),
                    "a lost connection must be a fault, got {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(recovered, "the pool never reconnected");
    store.ping().await.unwrap();
    let out = store.append(vec![keyed_item("before")]).await.unwrap();
    assert!(matches!(out[0], AppendOutcome::Duplicate { .. }));
}

#[tokio::test]
async fn an_unreachable_server_is_a_typed_error() {
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let err = PostgresStore::connect("postgres://nobody@127.0.0.1:9/none", options)
        .await
        .err()
        .expect("must fail");
    assert!(err.is_unavailable(), "{err:?}");
    let err = PostgresStore::connect("not a url", PostgresOptions::default())
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "store.url",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_overloaded() {
    let Some(h) = postgres_with(PostgresOptions {
        queue_capacity: 1,
        committers: 1,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let mut tasks = Vec::new();
    for n in 0..300 {
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
    assert!(overloaded > 0);
    assert_eq!(ok + overloaded, 300);
}

/// Two replicas running local actions at append, at once, on the same users:
/// every append commits (a deadlock between them would be retried, not
/// surfaced), every action runs once with one attempt, and no identify's
/// merge is lost to another's (each writes a key of its own, so a lost
/// update would drop one), while groups of triggers alone run beside them
/// without the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_local_actions_at_append_once_each() {
    let Some(url) = postgres_url() else {
        return;
    };
    let [a, b] = two_replicas(&url, production_in_store()).await;
    let users = 5;
    let mut tasks = Vec::new();
    for (task, store) in [a.clone(), b].into_iter().cycle().take(6).enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut ran = Vec::new();
            for round in 0..20 {
                let user = format!("u{}", (task + round) % users);
                let plans = if task % 3 == 2 {
                    // Triggers alone: no lock taken.
                    vec![trigger_plan("welcome", &user)]
                } else {
                    vec![
                        identify_plan(
                            &user,
                            serde_json::json!({ format!("t{task}r{round}"): round }),
                        ),
                        trigger_plan("welcome", &user),
                    ]
                };
                let out = store
                    .append(vec![plain_item(event("web", "signup", Some(&user)), plans)])
                    .await
                    .unwrap();
                match &out[0] {
                    AppendOutcome::Accepted { ran_local, .. } => {
                        for r in ran_local {
                            assert_eq!(r.outcome.name(), "succeeded", "{r:?}");
                            ran.push(r.id);
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
            ran
        }));
    }
    let mut ran = Vec::new();
    for t in tasks {
        ran.extend(t.await.unwrap());
    }
    // Four identifying tasks of 20 rounds run two actions each, two trigger-only tasks one.
    assert_eq!(ran.len(), 4 * 20 * 2 + 2 * 20);
    let unique: std::collections::HashSet<_> = ran.iter().collect();
    assert_eq!(unique.len(), ran.len());
    for task in [0, 1, 3, 4] {
        for round in 0..20 {
            let user = format!("u{}", (task + round) % users);
            let record = a
                .local_record(tributary_store::LocalKind::User, "production", "", &user)
                .await
                .unwrap()
                .expect("identified");
            assert_eq!(
                record.data[format!("t{task}r{round}")],
                round,
                "a merge into {user} was lost: {}",
                record.data
            );
        }
    }
    let left = a.claim("w", 100, Duration::from_secs(60)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}
