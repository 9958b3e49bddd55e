//! PostgreSQL's `finish_attempts` records a batch in one statement; this checks
//! it against `finish_attempt` called once per item (the per-action path) on a
//! batch with every kind of item: each outcome, a repeated action, another
//! worker's lease and an action never claimed.

mod support;

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::json;
use tributary_core::event::EventId;
use tributary_store::{ActionId, ActionStatus, AppendOutcome, AttemptOutcome, Store, StoreError};

use support::{event, identify_plan, plain_item, postgres};

fn accepted(o: &AppendOutcome) -> (EventId, Vec<ActionId>) {
    match o {
        AppendOutcome::Accepted {
            event_id,
            action_ids,
            ..
        } => (*event_id, action_ids.clone()),
        other => panic!("expected accepted, got {other:?}"),
    }
}

/// What an action looks like afterwards, without ids and clocks.
#[derive(Debug, PartialEq)]
struct Seen {
    status: ActionStatus,
    attempts: u32,
    last_error: Option<String>,
    /// `Some(true)` when due at the retry time, `Some(false)` at another
    /// (an unclaimed action's creation time).
    next_run_at_retry: Option<bool>,
    lease_owner: Option<String>,
    log: Vec<(u32, String, String)>,
}

async fn seen(store: &dyn Store, event: EventId, id: ActionId, retry_at: DateTime<Utc>) -> Seen {
    let detail = store.event_detail(event).await.unwrap().unwrap();
    let a = detail.actions.iter().find(|a| a.id == id).unwrap();
    Seen {
        status: a.status,
        attempts: a.attempts,
        last_error: a.last_error.clone(),
        next_run_at_retry: a.next_run_at.map(|at| at == retry_at),
        lease_owner: a.lease_owner.clone(),
        log: detail
            .attempts
            .iter()
            .filter(|(of, _)| *of == id)
            .map(|(_, r)| (r.attempt, r.outcome.clone(), r.summary.clone()))
            .collect(),
    }
}

/// Runs the scenario; returns each item's result (true: recorded) and the
/// state of the six actions in role order.
async fn scenario(batched: bool, retry_at: DateTime<Utc>) -> Option<(Vec<bool>, Vec<Seen>)> {
    let h = postgres().await?;
    let store = &*h.store;
    let mut actions = Vec::new();
    for n in 0..6 {
        let user = format!("u{n}");
        let out = store
            .append(vec![plain_item(
                event("web", "signup", Some(&user)),
                vec![identify_plan(&user, json!({"n": n}))],
            )])
            .await
            .unwrap();
        let (event_id, ids) = accepted(&out[0]);
        actions.push((ids[0], event_id));
    }
    let lease = Duration::from_secs(600);
    let mut mine: Vec<ActionId> = store
        .claim("w1", 4, lease)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    mine.sort();
    let theirs = store.claim("w2", 1, lease).await.unwrap()[0].id;
    let claimed: HashSet<ActionId> = mine.iter().copied().chain([theirs]).collect();
    let never = actions
        .iter()
        .map(|(id, _)| *id)
        .find(|id| !claimed.contains(id))
        .unwrap();
    let ok = |s: &str| AttemptOutcome::Succeeded { summary: s.into() };
    let batch = vec![
        (mine[0], ok("HTTP 200")),
        (
            mine[1],
            AttemptOutcome::Failed {
                summary: "HTTP 400 bad request".into(),
            },
        ),
        (
            mine[2],
            AttemptOutcome::RetryAt {
                at: retry_at,
                summary: "HTTP 503".into(),
            },
        ),
        (
            mine[0],
            AttemptOutcome::Failed {
                summary: "again".into(),
            },
        ),
        (theirs, ok("not mine")),
        (never, ok("never claimed")),
        (
            mine[3],
            AttemptOutcome::RetryAt {
                at: retry_at,
                summary: "timeout".into(),
            },
        ),
    ];
    let results: Vec<Result<(), StoreError>> = if batched {
        store.finish_attempts("w1", batch).await.unwrap()
    } else {
        let mut results = Vec::new();
        for (id, outcome) in batch {
            results.push(store.finish_attempt(id, "w1", outcome).await);
        }
        results
    };
    let recorded = results
        .iter()
        .map(|r| match r {
            Ok(()) => true,
            Err(StoreError::LeaseLost { owner, .. }) if owner == "w1" => false,
            Err(e) => panic!("unexpected {e:?}"),
        })
        .collect();
    let event_of = |id: ActionId| actions.iter().find(|(a, _)| *a == id).unwrap().1;
    let mut state = Vec::new();
    for id in mine.iter().copied().chain([theirs, never]) {
        state.push(seen(store, event_of(id), id, retry_at).await);
    }
    Some((recorded, state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_batch_matches_one_call_per_action() {
    let retry_at =
        DateTime::from_timestamp_millis(Utc::now().timestamp_millis() + 3_600_000).unwrap();
    let Some((batched, after_batch)) = scenario(true, retry_at).await else {
        return;
    };
    let (one_by_one, after_each) = scenario(false, retry_at).await.unwrap();
    assert_eq!(
        batched,
        vec![true, true, true, false, false, false, true],
        "{after_batch:#?}"
    );
    assert_eq!(batched, one_by_one);
    assert_eq!(after_batch, after_each);
    // Spot checks, so that equal-but-wrong would not pass.
    assert_eq!(after_batch[0].status, ActionStatus::Succeeded);
    assert_eq!(
        after_batch[0].log,
        vec![(1, "succeeded".into(), "HTTP 200".into())]
    );
    assert_eq!(after_batch[1].status, ActionStatus::Failed);
    assert_eq!(
        after_batch[1].last_error.as_deref(),
        Some("HTTP 400 bad request")
    );
    assert_eq!(after_batch[2].status, ActionStatus::Pending);
    assert_eq!(after_batch[2].next_run_at_retry, Some(true));
    assert_eq!(after_batch[5].next_run_at_retry, Some(false));
    assert_eq!(after_batch[2].lease_owner, None);
    assert_eq!(after_batch[4].lease_owner.as_deref(), Some("w2"));
    assert!(after_batch[4].log.is_empty() && after_batch[5].log.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_batch_is_nothing() {
    let Some(h) = postgres().await else {
        return;
    };
    assert!(
        h.store
            .finish_attempts("w1", Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}
