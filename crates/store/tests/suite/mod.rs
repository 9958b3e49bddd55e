//! The behaviour every backend must have; `tests/store.rs` runs each case
//! against SQLite and PostgreSQL.

#![allow(unreachable_pub)]

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::json;
use tributary_core::plan::{ActionPayload, ActionPlan, AudienceMember, RecipientRef, TriggerData};
use tributary_store::{
    ActionFilter, ActionStatus, AppendItem, AppendOutcome, AttemptOutcome, EventFilter,
    EventStatus, LocalApply, LocalEffect, LocalExecution, LocalKind, REJECTED_BODY_EXCERPT_BYTES,
    RejectedRequest, StoreError,
};

use crate::support::*;

/// A local record's data in the `development` environment, if it exists.
async fn dev_data(
    s: &Arc<dyn tributary_store::Store>,
    kind: LocalKind,
    scope: &str,
    id: &str,
) -> Option<serde_json::Value> {
    local_data(s, "development", kind, scope, id).await
}

async fn local_data(
    s: &Arc<dyn tributary_store::Store>,
    environment: &str,
    kind: LocalKind,
    scope: &str,
    id: &str,
) -> Option<serde_json::Value> {
    s.local_record(kind, environment, scope, id)
        .await
        .unwrap()
        .map(|r| r.data)
}

fn accepted(
    o: &AppendOutcome,
) -> (
    tributary_core::event::EventId,
    Vec<tributary_store::ActionId>,
) {
    match o {
        AppendOutcome::Accepted {
            event_id,
            action_ids,
            ..
        } => (*event_id, action_ids.clone()),
        other => panic!("expected accepted, got {other:?}"),
    }
}

pub async fn append_accepts_event_and_plans(h: &Harness) {
    let e = event("web", "signup", Some("u1"));
    let id = e.id;
    let out = h
        .store
        .append(vec![plain_item(
            e.clone(),
            vec![identify_plan("u1", json!({"name": "Ada"})), skipped_plan()],
        )])
        .await
        .unwrap();
    let (event_id, actions) = accepted(&out[0]);
    assert_eq!(event_id, id);
    assert_eq!(actions.len(), 2);
    let detail = h.store.event_detail(id).await.unwrap().expect("stored");
    assert_eq!(detail.event.status, EventStatus::Accepted);
    assert_eq!(detail.event.event.as_ref(), Some(&e));
    assert_eq!(detail.event.user_id.as_deref(), Some("u1"));
    let statuses: Vec<_> = detail.actions.iter().map(|a| (a.id, a.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (actions[0], ActionStatus::Pending),
            (actions[1], ActionStatus::Skipped)
        ]
    );
    assert!(detail.actions[0].next_run_at.is_some());
    let pending = h
        .store
        .list_actions(Some(ActionStatus::Pending), None, 10)
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 1);
    assert_eq!(pending.items[0].id, actions[0]);
    assert!(
        h.store
            .event_detail(tributary_core::event::EventId::generate(Utc::now()))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn duplicate_within_window_runs_nothing(h: &Harness) {
    let first = h.store.append(vec![keyed_item("m-1")]).await.unwrap();
    let (original, _) = accepted(&first[0]);
    let second = h.store.append(vec![keyed_item("m-1")]).await.unwrap();
    let AppendOutcome::Duplicate {
        event_id,
        original_event_id,
    } = second[0].clone()
    else {
        panic!("expected duplicate, got {:?}", second[0]);
    };
    assert_eq!(original_event_id, original);
    let dup = h.store.event_detail(event_id).await.unwrap().unwrap();
    assert_eq!(dup.event.status, EventStatus::Duplicate);
    assert_eq!(dup.event.duplicate_of, Some(original));
    assert_eq!(dup.event.message_id.as_deref(), Some("m-1"));
    assert!(dup.actions.is_empty());
    // Only the original's action runs.
    let claimed = h
        .store
        .claim("w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event_id, original);
}

pub async fn duplicates_in_one_batch_are_caught(h: &Harness) {
    let out = h
        .store
        .append(vec![
            keyed_item("k"),
            keyed_item("k"),
            keyed_item("other"),
            keyed_item("k"),
        ])
        .await
        .unwrap();
    let (first, _) = accepted(&out[0]);
    accepted(&out[2]);
    for i in [1, 3] {
        assert!(
            matches!(out[i], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == first),
            "item {i}: {:?}",
            out[i]
        );
    }
}

pub async fn scope_includes_type_source_and_environment(h: &Harness) {
    let mut items = Vec::new();
    for (source, ty, env) in [
        ("web", "a", "production"),
        ("web", "b", "production"),
        ("app", "a", "production"),
        ("web", "a", "development"),
    ] {
        let mut e = event(source, ty, Some("u"));
        e.environment = env.into();
        let dedup = Some(scope_for(&e, "same-key", DAY));
        items.push(AppendItem {
            event: e,
            plans: vec![],
            dedup,
            provenance: Default::default(),
        });
    }
    let out = h.store.append(items).await.unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, AppendOutcome::Accepted { .. })),
        "{out:?}"
    );
}

pub async fn window_expiry_accepts_again(h: &Harness) {
    let t0 = Utc::now().timestamp_millis() - 10_000;
    let mk = |ms: i64| {
        let e = event_at("web", "signup", Some("u1"), at(ms));
        let dedup = Some(scope_for(&e, "w-1", Duration::from_secs(5)));
        AppendItem {
            event: e,
            plans: vec![identify_plan("u1", json!({}))],
            dedup,
            provenance: Default::default(),
        }
    };
    let a = h.store.append(vec![mk(t0)]).await.unwrap();
    let (first, _) = accepted(&a[0]);
    let b = h.store.append(vec![mk(t0 + 4_000)]).await.unwrap();
    assert!(
        matches!(b[0], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == first)
    );
    let c = h.store.append(vec![mk(t0 + 6_000)]).await.unwrap();
    let (again, _) = accepted(&c[0]);
    // The window now runs from the re-accepted event.
    let d = h.store.append(vec![mk(t0 + 9_000)]).await.unwrap();
    assert!(
        matches!(d[0], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == again)
    );
}

pub async fn rerun_when_every_action_failed(h: &Harness) {
    let key_item = |key: &str| {
        let e = event("web", "signup", Some("u1"));
        let dedup = Some(scope_for(&e, key, DAY));
        AppendItem {
            event: e,
            plans: vec![
                identify_plan("u1", json!({})),
                trigger_plan("welcome", "u1"),
                skipped_plan(),
            ],
            dedup,
            provenance: Default::default(),
        }
    };
    // Both runnable actions fail: a repeat runs again.
    let first = h.store.append(vec![key_item("f-1")]).await.unwrap();
    let (first_id, _) = accepted(&first[0]);
    // Actions of one event are claimable one after another, in plan order.
    loop {
        let claimed = h
            .store
            .claim("w", 10, Duration::from_secs(60))
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        assert_eq!(
            claimed.len(),
            1,
            "a later action waited for the earlier one"
        );
        h.store
            .finish_attempt(
                claimed[0].id,
                "w",
                AttemptOutcome::Failed {
                    summary: "HTTP 400".into(),
                },
            )
            .await
            .unwrap();
    }
    let again = h.store.append(vec![key_item("f-1")]).await.unwrap();
    let (again_id, actions) = accepted(&again[0]);
    assert_ne!(again_id, first_id);
    assert_eq!(actions.len(), 3);
    // One failed, one succeeded: a repeat is a duplicate.
    for outcome in [
        AttemptOutcome::Failed {
            summary: "HTTP 400".into(),
        },
        AttemptOutcome::Succeeded {
            summary: "HTTP 200".into(),
        },
    ] {
        let claimed = h
            .store
            .claim("w", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        h.store
            .finish_attempt(claimed[0].id, "w", outcome)
            .await
            .unwrap();
    }
    let third = h.store.append(vec![key_item("f-1")]).await.unwrap();
    assert!(
        matches!(third[0], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == again_id)
    );
}

pub async fn an_events_actions_run_in_plan_order(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![
                identify_plan("u1", json!({})),
                trigger_plan("welcome", "u1"),
            ],
        )])
        .await
        .unwrap();
    let (_, ids) = accepted(&out[0]);
    let claim = || h.store.claim("w", 10, Duration::from_secs(60));
    let first = claim().await.unwrap();
    assert_eq!(first.len(), 1, "the trigger waits for the identify");
    assert_eq!(first[0].id, ids[0]);
    // While the identify is leased, or retrying, the trigger still waits.
    assert!(claim().await.unwrap().is_empty());
    h.store
        .finish_attempt(
            ids[0],
            "w",
            AttemptOutcome::RetryAt {
                summary: "HTTP 503".into(),
                at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    let again = claim().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ids[0]);
    h.store
        .finish_attempt(
            ids[0],
            "w",
            AttemptOutcome::Succeeded {
                summary: "ok".into(),
            },
        )
        .await
        .unwrap();
    let next = claim().await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, ids[1]);
}

pub async fn claim_complete_and_lease_checks(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({}))],
        )])
        .await
        .unwrap();
    let (event_id, ids) = accepted(&out[0]);
    let claimed = h
        .store
        .claim("worker-a", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0]);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].source, "web");
    assert!(claimed[0].plan.is_planned());
    // Leased: nobody else gets it.
    assert!(
        h.store
            .claim("worker-b", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    let running = h
        .store
        .list_actions(Some(ActionStatus::Running), None, 10)
        .await
        .unwrap();
    assert_eq!(running.items[0].lease_owner.as_deref(), Some("worker-a"));
    let err = h
        .store
        .finish_attempt(
            ids[0],
            "worker-b",
            AttemptOutcome::Succeeded {
                summary: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err:?}");
    h.store
        .finish_attempt(
            ids[0],
            "worker-a",
            AttemptOutcome::Succeeded {
                summary: "HTTP 200".into(),
            },
        )
        .await
        .unwrap();
    let detail = h.store.event_detail(event_id).await.unwrap().unwrap();
    assert_eq!(detail.actions[0].status, ActionStatus::Succeeded);
    assert_eq!(detail.actions[0].attempts, 1);
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].1.outcome, "succeeded");
    assert_eq!(detail.attempts[0].1.summary, "HTTP 200");
    assert!(
        h.store
            .claim("worker-a", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    // Finished: a late second completion is refused.
    let err = h
        .store
        .finish_attempt(
            ids[0],
            "worker-a",
            AttemptOutcome::Succeeded {
                summary: "again".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err:?}");
}

pub async fn finish_attempts_records_a_batch(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![
                identify_plan("u1", json!({})),
                identify_plan("u2", json!({})),
            ],
        )])
        .await
        .unwrap();
    let (event_id, ids) = accepted(&out[0]);
    let claimed = h
        .store
        .claim("worker-a", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let leased = claimed[0].id;
    let other = if leased == ids[0] { ids[1] } else { ids[0] };
    let results = h
        .store
        .finish_attempts(
            "worker-a",
            vec![
                (
                    leased,
                    AttemptOutcome::Succeeded {
                        summary: "ok".into(),
                    },
                ),
                (
                    other,
                    AttemptOutcome::Succeeded {
                        summary: "never leased".into(),
                    },
                ),
            ],
        )
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert!(
        matches!(results[1], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        results[1]
    );
    let detail = h.store.event_detail(event_id).await.unwrap().unwrap();
    let status = |id| {
        detail
            .actions
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.status)
            .unwrap()
    };
    assert_eq!(status(leased), ActionStatus::Succeeded);
    assert_eq!(status(other), ActionStatus::Pending);
}

pub async fn retry_later_records_each_attempt(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({}))],
        )])
        .await
        .unwrap();
    let (event_id, ids) = accepted(&out[0]);
    let c = h
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    let later = Utc::now() + chrono::Duration::hours(1);
    h.store
        .finish_attempt(
            c[0].id,
            "w",
            AttemptOutcome::RetryAt {
                summary: "HTTP 503".into(),
                at: later,
            },
        )
        .await
        .unwrap();
    // Not due yet.
    assert!(
        h.store
            .claim("w", 1, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    let detail = h.store.event_detail(event_id).await.unwrap().unwrap();
    assert_eq!(detail.actions[0].status, ActionStatus::Pending);
    assert_eq!(detail.actions[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(
        detail.actions[0].next_run_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );
    assert_eq!(ids.len(), 1);
}

pub async fn retry_due_now_is_claimed_again(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({}))],
        )])
        .await
        .unwrap();
    let (event_id, _) = accepted(&out[0]);
    let c = h
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    let past = Utc::now() - chrono::Duration::seconds(1);
    h.store
        .finish_attempt(
            c[0].id,
            "w",
            AttemptOutcome::RetryAt {
                summary: "timeout".into(),
                at: past,
            },
        )
        .await
        .unwrap();
    let c2 = h
        .store
        .claim("w", 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].attempt, 2);
    h.store
        .finish_attempt(
            c2[0].id,
            "w",
            AttemptOutcome::Failed {
                summary: "HTTP 404".into(),
            },
        )
        .await
        .unwrap();
    let detail = h.store.event_detail(event_id).await.unwrap().unwrap();
    assert_eq!(detail.actions[0].status, ActionStatus::Failed);
    assert_eq!(detail.actions[0].attempts, 2);
    let outcomes: Vec<_> = detail
        .attempts
        .iter()
        .map(|(_, a)| (a.attempt, a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, vec![(1, "retry"), (2, "failed")]);
}

pub async fn expired_lease_is_reclaimed(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({}))],
        )])
        .await
        .unwrap();
    let (_, ids) = accepted(&out[0]);
    let a = h
        .store
        .claim("crashed", 10, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    // Wait for the lease to lapse (not a timing assertion: we only wait).
    let mut b = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        b = h
            .store
            .claim("rescuer", 10, Duration::from_secs(60))
            .await
            .unwrap();
        if !b.is_empty() {
            break;
        }
    }
    assert_eq!(b.len(), 1, "the expired lease was not re-claimed");
    assert_eq!(b[0].id, ids[0]);
    assert_eq!(b[0].attempt, 2);
    let err = h
        .store
        .finish_attempt(
            ids[0],
            "crashed",
            AttemptOutcome::Succeeded {
                summary: "late".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }));
    h.store
        .finish_attempt(
            ids[0],
            "rescuer",
            AttemptOutcome::Succeeded {
                summary: "ok".into(),
            },
        )
        .await
        .unwrap();
}

pub async fn concurrent_appends_each_learn_their_outcome(h: &Harness) {
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = Arc::clone(&h.store);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for n in 0..10 {
                let e = event("web", "signup", Some(&format!("u{t}")));
                let id = e.id;
                let key = format!("k-{t}-{}", n % 5);
                let dedup = Some(scope_for(&e, &key, DAY));
                let out = store
                    .append(vec![AppendItem {
                        event: e,
                        plans: vec![identify_plan("u", json!({}))],
                        dedup,
                        provenance: Default::default(),
                    }])
                    .await
                    .unwrap();
                assert_eq!(out[0].event_id(), id);
                mine.push(out.into_iter().next().unwrap());
            }
            mine
        }));
    }
    let mut accepted_n = 0;
    let mut dup_n = 0;
    for t in tasks {
        for o in t.await.unwrap() {
            match o {
                AppendOutcome::Accepted { .. } => accepted_n += 1,
                AppendOutcome::Duplicate { .. } => dup_n += 1,
            }
        }
    }
    assert_eq!((accepted_n, dup_n), (32 * 5, 32 * 5));
    let mut seen = HashSet::new();
    let mut cursor = None;
    loop {
        let page = h
            .store
            .list_events(&EventFilter::default(), cursor, 37)
            .await
            .unwrap();
        for e in &page.items {
            assert!(seen.insert(e.id), "event listed twice");
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 320);
    let pending = h
        .store
        .claim("w", 1_000, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(pending.len(), 160);
}

pub async fn filters_and_pagination(h: &Harness) {
    let base = Utc::now().timestamp_millis() - 60_000;
    let mut items = Vec::new();
    for i in 0..30i64 {
        let source = if i % 2 == 0 { "web" } else { "app" };
        let ty = if i % 3 == 0 { "signup" } else { "login" };
        let user = format!("u{}", i % 5);
        items.push(plain_item(
            event_at(source, ty, Some(&user), at(base + i * 1_000)),
            vec![],
        ));
    }
    h.store.append(items).await.unwrap();
    h.store
        .record_rejected(RejectedRequest {
            received_at: at(base + 40_000),
            source: Some("web".into()),
            environment: Some("production".into()),
            code: "invalid_json".into(),
            message: "expected value at line 1".into(),
            body: vec![b'x'; 10_000],
            headers: Default::default(),
        })
        .await
        .unwrap();
    let all = |f: EventFilter| {
        let store = Arc::clone(&h.store);
        async move {
            let mut out = Vec::new();
            let mut cursor = None;
            loop {
                let page = store.list_events(&f, cursor, 4).await.unwrap();
                assert!(page.items.len() <= 4);
                out.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => return out,
                }
            }
        }
    };
    let web = all(EventFilter {
        source: Some("web".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(web.len(), 16);
    assert!(web.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let signups = all(EventFilter {
        source: Some("web".into()),
        event_type: Some("signup".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(signups.len(), 5);
    let u3 = all(EventFilter {
        user_id: Some("u3".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(u3.len(), 6);
    assert!(u3.iter().all(|e| e.user_id.as_deref() == Some("u3")));
    let window = all(EventFilter {
        since: Some(at(base + 10_000)),
        until: Some(at(base + 20_000)),
        ..Default::default()
    })
    .await;
    assert_eq!(window.len(), 10);
    let rejected = all(EventFilter {
        status: Some(EventStatus::Rejected),
        ..Default::default()
    })
    .await;
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(
        r.error.as_deref(),
        Some("invalid_json: expected value at line 1")
    );
    assert_eq!(
        r.body_excerpt.as_ref().map(String::len),
        Some(REJECTED_BODY_EXCERPT_BYTES)
    );
    assert!(r.event.is_none());
}

pub async fn source_status_and_known_types(h: &Harness) {
    let now = Utc::now();
    let old = now - chrono::Duration::days(40);
    h.store
        .append(vec![
            plain_item(event_at("web", "signup", None, now), vec![]),
            plain_item(
                event_at("web", "login", None, now - chrono::Duration::seconds(5)),
                vec![],
            ),
            plain_item(event_at("web", "signup", None, old), vec![]),
            plain_item(event_at("app", "open", None, now), vec![]),
        ])
        .await
        .unwrap();
    let st = h.store.source_statuses(now).await.unwrap();
    let web = st.iter().find(|s| s.source == "web").unwrap();
    assert_eq!(web.count_30d, 2);
    assert_eq!(
        web.last_received_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(st.iter().find(|s| s.source == "app").unwrap().count_30d, 1);
    let types = h
        .store
        .known_event_types("web", "production")
        .await
        .unwrap();
    let names: Vec<_> = types.iter().map(|t| t.event_type.as_str()).collect();
    assert_eq!(names, vec!["login", "signup"]);
    assert_eq!(
        types[1].last_seen_at.timestamp_millis(),
        now.timestamp_millis()
    );
    assert!(
        h.store
            .known_event_types("web", "development")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn mapping_overrides_persist(h: &Harness) {
    assert!(h.store.mapping_overrides().await.unwrap().is_empty());
    assert_eq!(
        h.store
            .mapping_active("web", "production", "m1")
            .await
            .unwrap(),
        None
    );
    h.store
        .set_mapping_active("web", "production", "m1", false)
        .await
        .unwrap();
    h.store
        .set_mapping_active("web", "development", "m1", true)
        .await
        .unwrap();
    h.store
        .set_mapping_active("web", "production", "m1", true)
        .await
        .unwrap();
    h.store
        .set_mapping_active("web", "production", "m2", false)
        .await
        .unwrap();
    let o: Vec<_> = h
        .store
        .mapping_overrides()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.environment, o.mapping, o.active))
        .collect();
    assert_eq!(
        o,
        vec![
            ("development".into(), "m1".into(), true),
            ("production".into(), "m1".into(), true),
            ("production".into(), "m2".into(), false),
        ]
    );
    assert_eq!(
        h.store
            .mapping_active("web", "production", "m2")
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        h.store
            .mapping_active("app", "production", "m2")
            .await
            .unwrap(),
        None
    );
}

fn attrs(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

pub async fn local_recipients_merge_once_per_action(h: &Harness) {
    let e = event("web", "signup", Some("u1"));
    let out = h
        .store
        .append(vec![plain_item(
            e,
            vec![
                identify_plan("u1", json!({})),
                identify_plan("u1", json!({})),
                identify_plan("u1", json!({})),
            ],
        )])
        .await
        .unwrap();
    let (_, ids) = accepted(&out[0]);
    let s = &h.store;
    let p1 = ActionPayload::IdentifyUser {
        user_id: "u1".into(),
        attributes: attrs(json!({"name": "Ada", "email": "a@x", "plan": "pro"})),
    };
    assert_eq!(
        s.apply_local(ids[0], "development", &p1).await.unwrap(),
        LocalEffect::Applied
    );
    let p2 = ActionPayload::IdentifyUser {
        user_id: "u1".into(),
        attributes: attrs(json!({"email": null, "plan": "team"})),
    };
    assert_eq!(
        s.apply_local(ids[1], "development", &p2).await.unwrap(),
        LocalEffect::Applied
    );
    // At-least-once: the same action again changes nothing.
    let p3 = ActionPayload::IdentifyUser {
        user_id: "u1".into(),
        attributes: attrs(json!({"name": "Changed"})),
    };
    assert_eq!(
        s.apply_local(ids[1], "development", &p3).await.unwrap(),
        LocalEffect::AlreadyApplied
    );
    let u = s
        .local_record(LocalKind::User, "development", "", "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.data, json!({"name": "Ada", "plan": "team"}));
    assert_eq!(u.environment, "development");
    // Each environment has its own recipients (docs/product-decisions.md, "Words").
    assert!(
        s.local_record(LocalKind::User, "production", "", "u1")
            .await
            .unwrap()
            .is_none(),
        "a development user leaked into production"
    );

    let fixed: Vec<tributary_store::ActionId> = (0..16u64)
        .map(|n| {
            tributary_store::ActionId::generate(tributary_core::event::EventId::from_parts(
                1_700_000_000_000 + n,
                0,
            ))
        })
        .collect();
    let id = |n: usize| fixed[n];
    s.apply_local(
        id(1),
        "development",
        &ActionPayload::SetObject {
            collection: "projects".into(),
            id: "p1".into(),
            attributes: attrs(json!({"title": "A"})),
        },
    )
    .await
    .unwrap();
    s.apply_local(
        id(2),
        "development",
        &ActionPayload::SetObject {
            collection: "projects".into(),
            id: "p1".into(),
            attributes: attrs(json!({"owner": "u1"})),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dev_data(s, LocalKind::Object, "projects", "p1")
            .await
            .unwrap(),
        json!({"title": "A", "owner": "u1"})
    );
    s.apply_local(
        id(3),
        "development",
        &ActionPayload::DeleteObject {
            collection: "projects".into(),
            id: "p1".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        dev_data(s, LocalKind::Object, "projects", "p1")
            .await
            .is_none()
    );

    s.apply_local(
        id(4),
        "development",
        &ActionPayload::SetTenant {
            id: "acme".into(),
            attributes: attrs(json!({"name": "Acme"})),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dev_data(s, LocalKind::Tenant, "", "acme").await.unwrap(),
        json!({"name": "Acme"})
    );
    s.apply_local(
        id(5),
        "development",
        &ActionPayload::DeleteTenant { id: "acme".into() },
    )
    .await
    .unwrap();
    assert!(dev_data(s, LocalKind::Tenant, "", "acme").await.is_none());

    let members = vec![
        AudienceMember {
            user_id: "u1".into(),
            tenant: None,
        },
        AudienceMember {
            user_id: "u2".into(),
            tenant: Some("acme".into()),
        },
    ];
    let err = s
        .apply_local(
            id(6),
            "development",
            &ActionPayload::AddAudienceMember {
                audience: "vip".into(),
                members: members.clone(),
                create_audience: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "audience",
                ..
            }
        ),
        "{err:?}"
    );
    // The failed apply left no trace, so the same action can succeed later.
    s.apply_local(
        id(6),
        "development",
        &ActionPayload::AddAudienceMember {
            audience: "vip".into(),
            members,
            create_audience: true,
        },
    )
    .await
    .unwrap();
    let m: Vec<_> = s
        .local_records(LocalKind::AudienceMember, "development", "vip")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(m, vec!["u1", "u2@acme"]);
    s.apply_local(
        id(7),
        "development",
        &ActionPayload::RemoveAudienceMember {
            audience: "vip".into(),
            members: vec![AudienceMember {
                user_id: "u1".into(),
                tenant: None,
            }],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.local_records(LocalKind::AudienceMember, "development", "vip")
            .await
            .unwrap()
            .len(),
        1
    );

    let recipients = vec![
        RecipientRef::User("u1".into()),
        RecipientRef::Object {
            id: "team-1".into(),
            collection: "teams".into(),
        },
    ];
    s.apply_local(
        id(8),
        "development",
        &ActionPayload::Subscribe {
            collection: "projects".into(),
            object_id: "p1".into(),
            recipients: recipients.clone(),
            properties: Some(json!({"role": "watcher"})),
        },
    )
    .await
    .unwrap();
    let subs = s
        .local_records(LocalKind::Subscription, "development", "projects/p1")
        .await
        .unwrap();
    assert_eq!(
        subs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["teams/team-1", "u1"]
    );
    assert_eq!(subs[1].data["properties"], json!({"role": "watcher"}));
    s.apply_local(
        id(9),
        "development",
        &ActionPayload::Unsubscribe {
            collection: "projects".into(),
            object_id: "p1".into(),
            recipients: vec![RecipientRef::User("u1".into())],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.local_records(LocalKind::Subscription, "development", "projects/p1")
            .await
            .unwrap()
            .len(),
        1
    );

    // A trigger reaches identified users only.
    s.apply_local(
        id(15),
        "development",
        &ActionPayload::IdentifyUser {
            user_id: "u2".into(),
            attributes: attrs(json!({})),
        },
    )
    .await
    .unwrap();
    let trigger = |key: &str| ActionPayload::TriggerWorkflow {
        workflow: "welcome".into(),
        recipients: vec![
            RecipientRef::User("u1".into()),
            RecipientRef::User("u2".into()),
        ],
        actor: None,
        tenant: Some("acme".into()),
        data: json!({"x": 1}).into(),
        cancellation_key: Some(key.into()),
    };
    s.apply_local(id(10), "development", &trigger("c1"))
        .await
        .unwrap();
    s.apply_local(id(11), "development", &trigger("c2"))
        .await
        .unwrap();
    s.apply_local(
        id(12),
        "development",
        &ActionPayload::CancelWorkflow {
            workflow: "welcome".into(),
            cancellation_key: "c1".into(),
            recipients: Some(vec![RecipientRef::User("u1".into())]),
        },
    )
    .await
    .unwrap();
    let run1 = dev_data(s, LocalKind::WorkflowRun, "welcome", &id(10).to_string())
        .await
        .unwrap();
    assert_eq!(run1["status"], "triggered");
    assert_eq!(run1["recipients"], json!(["u2"]));
    s.apply_local(
        id(13),
        "development",
        &ActionPayload::CancelWorkflow {
            workflow: "welcome".into(),
            cancellation_key: "c1".into(),
            recipients: None,
        },
    )
    .await
    .unwrap();
    let run1 = dev_data(s, LocalKind::WorkflowRun, "welcome", &id(10).to_string())
        .await
        .unwrap();
    assert_eq!(run1["status"], "cancelled");
    let run2 = dev_data(s, LocalKind::WorkflowRun, "welcome", &id(11).to_string())
        .await
        .unwrap();
    assert_eq!(run2["status"], "triggered");
    s.apply_local(
        id(14),
        "development",
        &ActionPayload::DeleteUser {
            user_id: "u1".into(),
        },
    )
    .await
    .unwrap();
    assert!(dev_data(s, LocalKind::User, "", "u1").await.is_none());
}

/// `n` action ids of events received `base_ms`, `base_ms + 1`, ... Generated
/// ids are unique per call: a test makes each once and reuses it.
fn action_ids(base_ms: u64, n: u64) -> Vec<tributary_store::ActionId> {
    (0..n)
        .map(|i| {
            tributary_store::ActionId::generate(tributary_core::event::EventId::from_parts(
                base_ms + i,
                0,
            ))
        })
        .collect()
}

/// A local apply of `payload` in `development`.
fn dev_item(action: tributary_store::ActionId, payload: ActionPayload) -> LocalApply {
    LocalApply {
        action,
        environment: "development".into(),
        payload,
    }
}

pub async fn apply_local_many_applies_each_in_order(h: &Harness) {
    let s = &h.store;
    let ids = action_ids(1_700_000_100_000, 5);
    let id = |n: usize| ids[n];
    let item = |n: usize, payload| dev_item(id(n), payload);
    let set = |attributes| ActionPayload::SetObject {
        collection: "projects".into(),
        id: "p1".into(),
        attributes: attrs(attributes),
    };
    let results = s
        .apply_local_many(vec![
            // The trigger below reaches identified users only.
            item(
                0,
                ActionPayload::IdentifyUser {
                    user_id: "u1".into(),
                    attributes: attrs(json!({})),
                },
            ),
            item(1, set(json!({"title": "A"}))),
            // Refused on its own: the audience does not exist.
            item(
                2,
                ActionPayload::AddAudienceMember {
                    audience: "nobody-made-this".into(),
                    members: vec![AudienceMember {
                        user_id: "u1".into(),
                        tenant: None,
                    }],
                    create_audience: false,
                },
            ),
            // Reads what the first item wrote, in the same batch.
            item(3, set(json!({"owner": "u1"}))),
            item(
                4,
                ActionPayload::TriggerWorkflow {
                    workflow: "welcome".into(),
                    recipients: vec![RecipientRef::User("u1".into())],
                    actor: None,
                    tenant: None,
                    data: json!({"x": 1}).into(),
                    cancellation_key: None,
                },
            ),
            // The first item again: at-least-once, one effect.
            item(1, set(json!({"title": "Changed"}))),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 6);
    let results = &results[1..];
    assert_eq!(results[0].as_ref().unwrap(), &LocalEffect::Applied);
    assert!(
        matches!(results[1], Err(StoreError::NotFound { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap(), &LocalEffect::Applied);
    assert_eq!(results[3].as_ref().unwrap(), &LocalEffect::Applied);
    assert_eq!(results[4].as_ref().unwrap(), &LocalEffect::AlreadyApplied);
    assert_eq!(
        dev_data(s, LocalKind::Object, "projects", "p1")
            .await
            .unwrap(),
        json!({"title": "A", "owner": "u1"})
    );
    let run = dev_data(s, LocalKind::WorkflowRun, "welcome", &id(4).to_string())
        .await
        .unwrap();
    assert_eq!(run["status"], "triggered");
    assert_eq!(run["data"], json!({"x": 1}));
    // The refused item left nothing behind and can be applied later.
    assert!(
        dev_data(s, LocalKind::Audience, "", "nobody-made-this")
            .await
            .is_none()
    );
}

pub async fn prune_removes_old_entries_only(h: &Harness) {
    let now = Utc::now();
    let old = now - chrono::Duration::days(31);
    let mut items = Vec::new();
    for i in 0..25 {
        let e = event_at(
            "web",
            "signup",
            Some("u"),
            old + chrono::Duration::seconds(i),
        );
        let dedup = Some(scope_for(&e, &format!("old-{i}"), DAY));
        items.push(AppendItem {
            event: e,
            plans: vec![identify_plan("u", json!({})), skipped_plan()],
            dedup,
            provenance: Default::default(),
        });
    }
    let fresh = event_at("web", "signup", Some("u"), now);
    let fresh_id = fresh.id;
    items.push(plain_item(fresh, vec![identify_plan("u", json!({}))]));
    h.store.append(items).await.unwrap();
    let cutoff = now - chrono::Duration::days(30);
    let mut total = 0;
    loop {
        let r = h.store.prune(cutoff, now, 10).await.unwrap();
        assert!(r.events <= 10);
        total += r.events;
        if r.events == 0 && r.dedup_keys == 0 {
            break;
        }
    }
    assert_eq!(total, 25);
    let left = h
        .store
        .list_events(&EventFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![fresh_id]
    );
    let actions = h.store.list_actions(None, None, 100).await.unwrap();
    assert_eq!(actions.items.len(), 1);
    // The pruned keys are free again.
    let e = event("web", "signup", Some("u"));
    let dedup = Some(scope_for(&e, "old-3", DAY));
    let out = h
        .store
        .append(vec![AppendItem {
            event: e,
            plans: vec![],
            dedup,
            provenance: Default::default(),
        }])
        .await
        .unwrap();
    assert!(matches!(out[0], AppendOutcome::Accepted { .. }));
    h.store.ping().await.unwrap();
}

pub async fn a_refused_job_does_not_fail_its_group(h: &Harness) {
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({}))],
        )])
        .await
        .unwrap();
    let (_, ids) = accepted(&out[0]);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = Arc::clone(&h.store);
        let action = ids[0];
        tasks.push(tokio::spawn(async move {
            if n % 10 == 0 {
                // Not leased by anyone: refused, and only this call fails.
                let err = store
                    .finish_attempt(
                        action,
                        "nobody",
                        AttemptOutcome::Succeeded {
                            summary: "x".into(),
                        },
                    )
                    .await
                    .unwrap_err();
                assert!(matches!(err, StoreError::LeaseLost { .. }));
                None
            } else {
                Some(
                    store
                        .append(vec![keyed_item(&format!("g{n}"))])
                        .await
                        .unwrap()[0]
                        .event_id(),
                )
            }
        }));
    }
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            assert!(h.store.event_detail(id).await.unwrap().is_some());
        }
    }
}

pub async fn nul_characters_do_not_poison_a_group(h: &Harness) {
    let mk = || {
        let mut e = event("web", "sign\0up", Some("u\0-1"));
        e.data = json!({"note": "a\u{0}b"});
        let dedup = Some(scope_for(&e, "key\0with-nul", DAY));
        AppendItem {
            event: e,
            plans: vec![identify_plan("u\0-1", json!({"x": "\u{0}"}))],
            dedup,
            provenance: Default::default(),
        }
    };
    let out = h
        .store
        .append(vec![mk(), keyed_item("clean-neighbour")])
        .await
        .unwrap();
    let (first, ids) = accepted(&out[0]);
    accepted(&out[1]);
    let again = h.store.append(vec![mk()]).await.unwrap();
    assert!(
        matches!(again[0], AppendOutcome::Duplicate { original_event_id, .. } if original_event_id == first),
        "{again:?}"
    );
    let d = h.store.event_detail(first).await.unwrap().unwrap();
    assert_eq!(
        d.event.event.as_ref().map(|e| e.data.clone()),
        Some(json!({"note": "a\u{0}b"}))
    );
    let payload = d.actions[0].plan.payload().cloned().unwrap();
    assert_eq!(
        h.store
            .apply_local(ids[0], "development", &payload)
            .await
            .unwrap(),
        LocalEffect::Applied
    );
}

/// Filtering the action log by each status, with a cursor (running is
/// derived from the outbox lease, the others are stored).
pub async fn list_actions_by_each_status(h: &Harness) {
    let mut ids = Vec::new();
    for n in 0..6 {
        let out = h
            .store
            .append(vec![plain_item(
                event("web", "signup", Some(&format!("u{n}"))),
                vec![identify_plan(&format!("u{n}"), json!({})), skipped_plan()],
            )])
            .await
            .unwrap();
        ids.push(accepted(&out[0]).1);
    }
    // Claim all six identifies, then finish four: two succeed, two fail for
    // good; the last two stay leased (running).
    let claimed = h
        .store
        .claim("w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);
    for (n, outcome) in [
        (
            0,
            AttemptOutcome::Succeeded {
                summary: "ok".into(),
            },
        ),
        (
            1,
            AttemptOutcome::Failed {
                summary: "HTTP 400".into(),
            },
        ),
        (
            2,
            AttemptOutcome::Succeeded {
                summary: "ok".into(),
            },
        ),
        (
            3,
            AttemptOutcome::Failed {
                summary: "HTTP 400".into(),
            },
        ),
    ] {
        h.store
            .finish_attempt(ids[n][0], "w", outcome)
            .await
            .unwrap();
    }
    // One more event whose action stays pending.
    let out = h
        .store
        .append(vec![plain_item(
            event("web", "signup", Some("u9")),
            vec![identify_plan("u9", json!({}))],
        )])
        .await
        .unwrap();
    let pending_id = accepted(&out[0]).1[0];
    let newest_first = |v: Vec<tributary_store::ActionId>| {
        let mut v = v;
        v.sort();
        v.reverse();
        v
    };
    let cases = [
        (ActionStatus::Pending, vec![pending_id]),
        (
            ActionStatus::Running,
            newest_first(vec![ids[4][0], ids[5][0]]),
        ),
        (
            ActionStatus::Succeeded,
            newest_first(vec![ids[0][0], ids[2][0]]),
        ),
        (
            ActionStatus::Failed,
            newest_first(vec![ids[1][0], ids[3][0]]),
        ),
        (
            ActionStatus::Skipped,
            newest_first(ids.iter().map(|a| a[1]).collect()),
        ),
    ];
    for (status, expected) in cases {
        // One item per page: the cursor must walk the same order.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = h.store.list_actions(Some(status), cursor, 1).await.unwrap();
            assert!(page.items.iter().all(|a| a.status == status), "{status:?}");
            seen.extend(page.items.iter().map(|a| a.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{status:?}");
    }
}

/// Runs rounds of `claim_running_local` (on a store opened with
/// [`production_in_store`]) until nothing is due, finishing leased `production` actions the
/// way the worker pool's `local` sink would. Returns, per action, the round
/// it was taken in and whether the store ran it itself.
async fn local_rounds(
    s: &Arc<dyn tributary_store::Store>,
) -> std::collections::HashMap<tributary_store::ActionId, (usize, bool)> {
    let mut seen = std::collections::HashMap::new();
    for round_no in 0..10 {
        let round = s
            .claim_running_local("w", 10, Duration::from_secs(60))
            .await
            .unwrap();
        if round.claimed.is_empty() && round.ran_local.is_empty() {
            return seen;
        }
        for run in &round.ran_local {
            assert_eq!(run.environment, "production");
            assert!(seen.insert(run.id, (round_no, true)).is_none(), "ran twice");
        }
        for c in round.claimed {
            assert!(
                seen.insert(c.id, (round_no, false)).is_none(),
                "taken twice"
            );
            if c.environment != "production" {
                continue;
            }
            let payload = c.plan.payload().unwrap();
            let summary = match s.apply_local(c.id, &c.environment, payload).await {
                Ok(effect) => effect.summary(),
                Err(e) => {
                    s.finish_attempt(
                        c.id,
                        "w",
                        AttemptOutcome::Failed {
                            summary: e.to_string(),
                        },
                    )
                    .await
                    .unwrap();
                    continue;
                }
            };
            s.finish_attempt(c.id, "w", AttemptOutcome::Succeeded { summary })
                .await
                .unwrap();
        }
    }
    panic!("still busy after 10 rounds");
}

/// A trigger's workflow run, with every field set.
fn full_trigger(user: &str) -> ActionPlan {
    let mut plan = trigger_plan("receipt", user);
    if let tributary_core::plan::PlanOutcome::Planned {
        payload:
            ActionPayload::TriggerWorkflow {
                actor,
                tenant,
                data,
                cancellation_key,
                recipients,
                ..
            },
    } = &mut plan.outcome
    {
        recipients.push(RecipientRef::Object {
            id: "p1".into(),
            collection: "projects".into(),
        });
        *actor = Some(RecipientRef::Object {
            id: "bot".into(),
            collection: "agents".into(),
        });
        *tenant = Some("acme".into());
        *data = json!({"total": 129.5, "items": [{"sku": "a\"b"}]}).into();
        *cancellation_key = Some("order-1".into());
    }
    plan
}

/// SQLite computes a trigger's run ahead, at append, when the store was
/// opened to run its environment's actions; an action appended before (by
/// a store opened otherwise, or before a restart) has its run built from
/// the stored plan. Both must store the same run.
pub async fn a_trigger_run_is_the_same_computed_ahead_or_not(h: &Harness) {
    let h = h.like(LocalExecution::ThroughSink).await;
    // Each event identifies its user first: a trigger reaches identified users only.
    let before = h
        .store
        .append(vec![
            plain_item(
                event("web", "paid", Some("u1")),
                vec![identify_plan("u1", json!({})), full_trigger("u1")],
            ),
            // A user never identified: the run is for the object alone.
            plain_item(event("web", "paid", Some("u3")), vec![full_trigger("u3")]),
        ])
        .await
        .unwrap();
    let h = h.reopen(production_in_store()).await;
    let s = &h.store;
    local_rounds(s).await;
    let after = s
        .append(vec![
            plain_item(
                event("web", "paid", Some("u2")),
                vec![identify_plan("u2", json!({})), full_trigger("u2")],
            ),
            plain_item(event("web", "paid", Some("u4")), vec![full_trigger("u4")]),
        ])
        .await
        .unwrap();
    local_rounds(s).await;
    let run_of = |out: &AppendOutcome, position: usize| {
        let id = accepted(out).1[position].to_string();
        async move {
            s.local_record(LocalKind::WorkflowRun, "production", "receipt", &id)
                .await
                .unwrap()
                .unwrap()
                .data
        }
    };
    let run = |recipients: serde_json::Value| {
        json!({
            "status": "triggered",
            "recipients": recipients,
            "cancelled_recipients": [],
            "actor": {"id": "bot", "collection": "agents"},
            "tenant": "acme",
            "data": {"total": 129.5, "items": [{"sku": "a\"b"}]},
            "cancellation_key": "order-1",
        })
    };
    let object = json!({"id": "p1", "collection": "projects"});
    for (out, user) in [(&before[0], "u1"), (&after[0], "u2")] {
        assert_eq!(run_of(out, 1).await, run(json!([user, object])), "{user}");
    }
    for out in [&before[1], &after[1]] {
        assert_eq!(run_of(out, 0).await, run(json!([object])));
    }
    // The cancel finds both by their key, whichever way they were stored.
    let cancel = s
        .append(vec![plain_item(
            event("web", "refunded", Some("u1")),
            vec![ActionPlan {
                action: tributary_core::ActionType::CancelWorkflow,
                origin: tributary_core::plan::PlanOrigin::Mapping {
                    mapping: "m-cancel".into(),
                },
                outcome: tributary_core::plan::PlanOutcome::Planned {
                    payload: ActionPayload::CancelWorkflow {
                        workflow: "receipt".into(),
                        cancellation_key: "order-1".into(),
                        recipients: None,
                    },
                },
                notes: Vec::new(),
            }],
        )])
        .await
        .unwrap();
    local_rounds(s).await;
    let (cancel_event, _) = accepted(&cancel[0]);
    assert_eq!(
        s.event_detail(cancel_event).await.unwrap().unwrap().actions[0].status,
        ActionStatus::Succeeded
    );
    for out in [&before[0], &after[0]] {
        let run = run_of(out, 1).await;
        assert_eq!(run["status"], "cancelled", "{run}");
    }
}

/// Actions a run with other settings left in the outbox: a store opened to
/// run `production` itself runs them in its rounds, in order, and leases the rest.
pub async fn claim_running_local_runs_or_leases_each_action(h: &Harness) {
    let h = h.like(LocalExecution::ThroughSink).await;
    let s = &h.store;
    let mut staging = event("web", "signup", Some("u2"));
    staging.environment = "staging".into();
    let refused = ActionPlan {
        action: tributary_core::ActionType::AddAudienceMember,
        origin: tributary_core::plan::PlanOrigin::Mapping {
            mapping: "m-audience".into(),
        },
        outcome: tributary_core::plan::PlanOutcome::Planned {
            payload: ActionPayload::AddAudienceMember {
                audience: "nobody-made-this".into(),
                members: vec![AudienceMember {
                    user_id: "u1".into(),
                    tenant: None,
                }],
                create_audience: false,
            },
        },
        notes: Vec::new(),
    };
    let out = s
        .append(vec![
            plain_item(
                event("web", "signup", Some("u1")),
                vec![
                    identify_plan("u1", json!({"name": "Ada"})),
                    trigger_plan("welcome", "u1"),
                ],
            ),
            plain_item(staging, vec![trigger_plan("welcome", "u2")]),
            plain_item(event("web", "joined", Some("u1")), vec![refused]),
            plain_item(
                event("web", "renamed", Some("u9")),
                vec![identify_plan("u9", json!({"name": "A"}))],
            ),
        ])
        .await
        .unwrap();
    let (_, first) = accepted(&out[0]);
    let (staging_event, staging_ids) = accepted(&out[1]);
    let (refused_event, refused_ids) = accepted(&out[2]);
    let (renamed_event, renamed_ids) = accepted(&out[3]);
    // A worker applied u9's identify and crashed before recording it; a later
    // identify then renamed u9 to B. Running the first again must not undo it.
    s.apply_local(
        renamed_ids[0],
        "production",
        &ActionPayload::IdentifyUser {
            user_id: "u9".into(),
            attributes: attrs(json!({"name": "A"})),
        },
    )
    .await
    .unwrap();
    let later =
        tributary_store::ActionId::generate(tributary_core::event::EventId::generate(Utc::now()));
    s.apply_local(
        later,
        "production",
        &ActionPayload::IdentifyUser {
            user_id: "u9".into(),
            attributes: attrs(json!({"name": "B"})),
        },
    )
    .await
    .unwrap();

    let h = &h.reopen(production_in_store()).await;
    let s = &h.store;
    let seen = local_rounds(s).await;

    assert_eq!(seen.len(), 5, "every due action was taken once: {seen:?}");
    // Plan order holds: the trigger waited for its identify.
    assert!(seen[&first[0]].0 < seen[&first[1]].0, "{seen:?}");
    // Other environments are leased to the caller, never run here.
    assert!(!seen[&staging_ids[0]].1);
    let staged = s.event_detail(staging_event).await.unwrap().unwrap();
    assert_eq!(staged.actions[0].status, ActionStatus::Running);
    assert_eq!(staged.actions[0].lease_owner.as_deref(), Some("w"));
    // SQLite runs the local environment's actions itself; PostgreSQL leases
    // them (the trait's default) and the caller runs them, as `local_rounds` does.
    let local_ids = [first[0], first[1], refused_ids[0], renamed_ids[0]];
    for id in local_ids {
        assert_eq!(seen[&id].1, h.backend == "sqlite", "{}: {id}", h.backend);
    }
    // The effects, once each.
    assert_eq!(
        s.local_record(LocalKind::User, "production", "", "u1")
            .await
            .unwrap()
            .unwrap()
            .data,
        json!({"name": "Ada"})
    );
    let run = s
        .local_record(
            LocalKind::WorkflowRun,
            "production",
            "welcome",
            &first[1].to_string(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.data["status"], "triggered");
    assert_eq!(
        s.local_record(LocalKind::User, "production", "", "u9")
            .await
            .unwrap()
            .unwrap()
            .data,
        json!({"name": "B"}),
        "an action applied before must not apply again"
    );
    // The action log: one attempt each, the refused one failed for good.
    let refused = s.event_detail(refused_event).await.unwrap().unwrap();
    assert_eq!(refused.actions[0].status, ActionStatus::Failed);
    assert_eq!(refused.actions[0].attempts, 1);
    assert!(
        refused.actions[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("nobody-made-this"),
        "{:?}",
        refused.actions[0].last_error
    );
    let renamed = s.event_detail(renamed_event).await.unwrap().unwrap();
    assert_eq!(renamed.actions[0].status, ActionStatus::Succeeded);
    assert_eq!(renamed.attempts[0].1.summary, "already applied");
    let done = s
        .list_actions(Some(ActionStatus::Succeeded), None, 10)
        .await
        .unwrap();
    let mut done: Vec<_> = done.items.iter().map(|a| (a.id, a.attempts)).collect();
    done.sort();
    let mut expected = vec![(first[0], 1), (first[1], 1), (renamed_ids[0], 1)];
    expected.sort();
    assert_eq!(done, expected);
    assert!(
        s.list_actions(Some(ActionStatus::Pending), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn a_round_at_its_limit_says_more(h: &Harness) {
    let items = (0..3)
        .map(|n| {
            let mut e = event("web", "signup", Some("u1"));
            e.environment = "staging".into();
            plain_item(e, vec![trigger_plan("welcome", &format!("u{n}"))])
        })
        .collect();
    let h = &h.like(production_in_store()).await;
    h.store.append(items).await.unwrap();
    let round = |limit| {
        h.store
            .claim_running_local("w", limit, Duration::from_secs(60))
    };
    let first = round(2).await.unwrap();
    assert_eq!(first.claimed.len(), 2);
    assert!(first.more, "the lease limit was reached: more may be due");
    let second = round(2).await.unwrap();
    assert_eq!(second.claimed.len(), 1);
    assert!(!second.more);
    let none = round(0).await.unwrap();
    assert!(none.claimed.is_empty() && !none.more);
}

/// Writes to one key in one call land as running them in turn would, and an
/// action that reads sees the writes of those before it in the same call
/// (PostgreSQL sends consecutive write-only actions together).
pub async fn apply_local_many_keeps_order_within_a_call(h: &Harness) {
    let s = &h.store;
    let ids = action_ids(1_700_000_200_000, 6);
    let item = |n: usize, payload| dev_item(ids[n], payload);
    let sub = |user: &str| ActionPayload::Subscribe {
        collection: "projects".into(),
        object_id: "p1".into(),
        recipients: vec![RecipientRef::User(user.into())],
        properties: None,
    };
    let trigger = ActionPayload::TriggerWorkflow {
        workflow: "welcome".into(),
        recipients: vec![RecipientRef::User("u1".into())],
        actor: None,
        tenant: None,
        data: json!({}).into(),
        cancellation_key: Some("k1".into()),
    };
    let results = s
        .apply_local_many(vec![
            // The trigger reaches identified users only.
            item(
                5,
                ActionPayload::IdentifyUser {
                    user_id: "u1".into(),
                    attributes: attrs(json!({})),
                },
            ),
            item(0, sub("u1")),
            item(
                1,
                ActionPayload::Unsubscribe {
                    collection: "projects".into(),
                    object_id: "p1".into(),
                    recipients: vec![RecipientRef::User("u1".into())],
                },
            ),
            item(2, sub("u2")),
            item(3, trigger),
            // Reads the workflow's runs: must see the trigger just before it.
            item(
                4,
                ActionPayload::CancelWorkflow {
                    workflow: "welcome".into(),
                    cancellation_key: "k1".into(),
                    recipients: None,
                },
            ),
        ])
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().ok() == Some(&LocalEffect::Applied)),
        "{results:?}"
    );
    let subscribed: Vec<String> = s
        .local_records(LocalKind::Subscription, "development", "projects/p1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(subscribed, ["u2"], "u1 subscribed then unsubscribed, u2 in");
    let run = dev_data(s, LocalKind::WorkflowRun, "welcome", &ids[3].to_string())
        .await
        .unwrap();
    assert_eq!(run["status"], "cancelled", "{run}");
}

pub async fn a_requests_headers_are_stored_once_and_read_with_each_event(h: &Harness) {
    let headers = tributary_core::event::Headers::stored(
        [
            ("content-type", "application/json"),
            ("user-agent", "batcher/1"),
        ],
        &[],
    );
    let mut events = Vec::new();
    for i in 0..3 {
        let mut e = event("web", &format!("shared-{i}"), Some("u1"));
        e.headers = headers.clone();
        events.push(e);
    }
    // Another request's event in the same group, with headers of its own.
    let mut other = event("web", "shared-other", Some("u2"));
    other.headers = tributary_core::event::Headers::stored([("user-agent", "other/2")], &[]);
    let mut items: Vec<AppendItem> = events
        .iter()
        .cloned()
        .map(|e| plain_item(e, vec![]))
        .collect();
    items.push(plain_item(other.clone(), vec![]));
    h.store.append(items).await.unwrap();

    for e in events.iter().chain([&other]) {
        let detail = h.store.event_detail(e.id).await.unwrap().expect("stored");
        assert_eq!(detail.event.event.as_ref(), Some(e), "{}", e.event);
    }
    // One event a page: the events whose headers were stored with another
    // one still read them, from outside the page.
    let filter = EventFilter {
        source: Some("web".into()),
        ..EventFilter::default()
    };
    let mut before = None;
    let mut seen = 0;
    loop {
        let page = h.store.list_events(&filter, before, 1).await.unwrap();
        for r in &page.items {
            let stored = r.event.as_ref().unwrap();
            let expected = events
                .iter()
                .chain([&other])
                .find(|e| e.id == r.id)
                .unwrap();
            assert_eq!(stored.headers, expected.headers, "{}", expected.event);
            seen += 1;
        }
        match page.next_cursor {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, 4);
}

/// A trigger of `recipients` (user ids, or `collection/id` objects) in `welcome`.
fn trigger_of(recipients: &[&str]) -> ActionPayload {
    ActionPayload::TriggerWorkflow {
        workflow: "welcome".into(),
        recipients: recipients
            .iter()
            .map(|r| match r.split_once('/') {
                Some((collection, id)) => RecipientRef::Object {
                    id: id.into(),
                    collection: collection.into(),
                },
                None => RecipientRef::User((*r).into()),
            })
            .collect(),
        actor: None,
        tenant: None,
        data: json!({}).into(),
        cancellation_key: None,
    }
}

/// Issue 18 item 13: the product makes no run for a recipient id never
/// identified (docs/mapping.md, "Recipients never identified"), so neither does the
/// `local` sink, and its result names the users skipped. An identify earlier in the
/// same call counts, and so does a delete.
pub async fn a_trigger_runs_only_for_identified_users(h: &Harness) {
    let s = &h.store;
    let ids = action_ids(1_700_000_300_000, 6);
    let item = |n: usize, payload| dev_item(ids[n], payload);
    let results = s
        .apply_local_many(vec![
            item(
                0,
                ActionPayload::IdentifyUser {
                    user_id: "u1".into(),
                    attributes: attrs(json!({"name": "Ada"})),
                },
            ),
            item(1, trigger_of(&["u1", "u2", "projects/p1", "u2"])),
            item(2, trigger_of(&["u3"])),
            item(
                3,
                ActionPayload::DeleteUser {
                    user_id: "u1".into(),
                },
            ),
            item(4, trigger_of(&["u1"])),
        ])
        .await
        .unwrap();
    let effects: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        effects,
        [
            LocalEffect::Applied,
            LocalEffect::AppliedSkipping {
                unknown_recipients: vec!["u2".into()],
                run: true,
            },
            LocalEffect::AppliedSkipping {
                unknown_recipients: vec!["u3".into()],
                run: false,
            },
            LocalEffect::Applied,
            LocalEffect::AppliedSkipping {
                unknown_recipients: vec!["u1".into()],
                run: false,
            },
        ],
        "{}",
        h.backend
    );
    let run = dev_data(s, LocalKind::WorkflowRun, "welcome", &ids[1].to_string())
        .await
        .unwrap();
    assert_eq!(
        run["recipients"],
        json!(["u1", {"id": "p1", "collection": "projects"}])
    );
    for n in [2, 4] {
        assert!(
            dev_data(s, LocalKind::WorkflowRun, "welcome", &ids[n].to_string())
                .await
                .is_none(),
            "no run for a trigger that reached nobody"
        );
    }
    assert!(effects[1].summary().contains("never identified: u2"));
    assert!(effects[2].summary().starts_with("no workflow run"));
}

/// The same rule when the store runs local actions itself, with
/// the trigger's run computed ahead at append: the identify earlier in the
/// event counts, a delete earlier in the event counts, and the action log's
/// attempt names the users skipped.
pub async fn a_trigger_run_computed_ahead_skips_unknown_users(h: &Harness) {
    // Opened to run `production` in the store, the store computes the runs of
    // the appends below ahead.
    let h = &h.like(production_in_store()).await;
    let s = &h.store;
    let plan = |payload: ActionPayload| ActionPlan {
        action: payload.action_type(),
        origin: tributary_core::plan::PlanOrigin::Mapping {
            mapping: "m".into(),
        },
        outcome: tributary_core::plan::PlanOutcome::Planned { payload },
        notes: Vec::new(),
    };
    let out = s
        .append(vec![
            plain_item(
                event("web", "signup", Some("u5")),
                vec![
                    identify_plan("u5", json!({"name": "Eve"})),
                    plan(trigger_of(&["u5", "u6"])),
                ],
            ),
            plain_item(
                event("web", "signup", Some("u7")),
                vec![plan(trigger_of(&["u7"]))],
            ),
            // One recipient, identified just before in the same event: the
            // writes computed for either outcome, the writer picking the run.
            plain_item(
                event("web", "signup", Some("u10")),
                vec![
                    identify_plan("u10", json!({"name": "Bo"})),
                    plan(trigger_of(&["u10"])),
                ],
            ),
        ])
        .await
        .unwrap();
    local_rounds(s).await;
    let gone = s
        .append(vec![plain_item(
            event("web", "left", Some("u5")),
            vec![
                plan(ActionPayload::DeleteUser {
                    user_id: "u5".into(),
                }),
                plan(trigger_of(&["u5"])),
            ],
        )])
        .await
        .unwrap();
    local_rounds(s).await;
    let trigger_of_event = |out: &AppendOutcome, position: usize| {
        let (event_id, actions) = accepted(out);
        let action = actions[position];
        async move {
            let detail = s.event_detail(event_id).await.unwrap().unwrap();
            let record = detail
                .actions
                .iter()
                .find(|a| a.id == action)
                .cloned()
                .unwrap();
            assert_eq!(record.status, ActionStatus::Succeeded, "{record:?}");
            let summary = detail
                .attempts
                .iter()
                .rev()
                .find(|(id, _)| *id == action)
                .map(|(_, a)| a.summary.clone())
                .unwrap();
            let run = s
                .local_record(
                    LocalKind::WorkflowRun,
                    "production",
                    "welcome",
                    &action.to_string(),
                )
                .await
                .unwrap()
                .map(|r| r.data);
            (summary, run)
        }
    };
    let (summary, run) = trigger_of_event(&out[0], 1).await;
    assert_eq!(run.unwrap()["recipients"], json!(["u5"]), "{}", h.backend);
    assert!(
        summary.contains("1 recipient(s) never identified: u6"),
        "{summary}"
    );
    let (summary, run) = trigger_of_event(&out[1], 0).await;
    assert!(run.is_none(), "{}", h.backend);
    assert!(
        summary.contains("no workflow run: no recipient was ever identified (u7)"),
        "{summary}"
    );
    let (summary, run) = trigger_of_event(&out[2], 1).await;
    assert_eq!(run.unwrap()["recipients"], json!(["u10"]), "{}", h.backend);
    assert!(!summary.contains("never identified"), "{summary}");
    let (summary, run) = trigger_of_event(&gone[0], 1).await;
    assert!(run.is_none(), "deleted before the trigger: {}", h.backend);
    assert!(summary.contains("(u5)"), "{summary}");
    // An append of triggers alone reads which users exist ahead of the
    // rest (PostgreSQL reads them with the dedup keys' insert): one stored
    // by an earlier append counts.
    s.append(vec![plain_item(
        event("web", "signup", Some("u8")),
        vec![identify_plan("u8", json!({"name": "Ann"}))],
    )])
    .await
    .unwrap();
    local_rounds(s).await;
    let triggers = s
        .append(vec![plain_item(
            event("web", "visit", Some("u8")),
            vec![plan(trigger_of(&["u8", "u9"]))],
        )])
        .await
        .unwrap();
    local_rounds(s).await;
    let (summary, run) = trigger_of_event(&triggers[0], 0).await;
    assert_eq!(run.unwrap()["recipients"], json!(["u8"]), "{}", h.backend);
    assert!(
        summary.contains("1 recipient(s) never identified: u9"),
        "{summary}"
    );
}

pub async fn config_revisions_are_dense_and_checked(h: &Harness) {
    use tributary_store::{NewRevision, StoredSource};
    let s = &h.store;
    assert_eq!(s.config_head().await.unwrap(), 0);
    let change = |summary: &str, sources: Vec<(String, Option<String>)>| NewRevision {
        actor: "admin".to_owned(),
        summary: summary.to_owned(),
        changes: json!([{ "op": summary }]),
        sources,
    };
    let first = s
        .commit_config(
            0,
            change(
                "create a and b",
                vec![
                    ("a".to_owned(), Some(r#"{"key":"a"}"#.to_owned())),
                    ("b".to_owned(), Some(r#"{"key":"b"}"#.to_owned())),
                ],
            ),
        )
        .await
        .unwrap();
    assert_eq!(first.number, 1);
    // A second writer that read revision 0 is refused and writes nothing.
    let stale = s
        .commit_config(
            0,
            change("stale", vec![("c".to_owned(), Some("{}".to_owned()))]),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::RevisionTaken { base: 0 })),
        "{stale:?}"
    );
    let second = s
        .commit_config(1, change("delete b", vec![("b".to_owned(), None)]))
        .await
        .unwrap();
    assert_eq!(second.number, 2);
    // A revision may write no source (a recorded reveal).
    s.commit_config(2, change("reveal", vec![])).await.unwrap();
    assert_eq!(s.config_head().await.unwrap(), 3);

    let (head, all) = s.config_sources_since(0).await.unwrap();
    assert_eq!(head, 3);
    assert_eq!(
        all,
        vec![
            StoredSource {
                key: "a".to_owned(),
                revision: 1,
                document: Some(r#"{"key":"a"}"#.to_owned())
            },
            StoredSource {
                key: "b".to_owned(),
                revision: 2,
                document: None
            },
        ]
    );
    let (_, later) = s.config_sources_since(1).await.unwrap();
    assert_eq!(later.len(), 1, "only b changed after revision 1");
    assert_eq!(later[0].key, "b");

    let listed = s.config_revisions(None, 2).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.number).collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert_eq!(listed[1].summary, "delete b");
    assert_eq!(listed[1].changes, json!([{ "op": "delete b" }]));
    let older = s.config_revisions(Some(2), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].actor, "admin");
}

pub async fn an_events_provenance_is_kept_and_read_back(h: &Harness) {
    use tributary_store::Provenance;
    let s = &h.store;
    let first = accepted(&s.append(vec![keyed_item("p-1")]).await.unwrap()[0]).0;
    let mut replayed = plain_item(event("web", "signup", Some("u1")), vec![]);
    replayed.provenance = Provenance {
        config_revision: 7,
        verification: Some("unenforced:failed".to_owned()),
        replay_of: Some(first),
    };
    let id = accepted(&s.append(vec![replayed]).await.unwrap()[0]).0;
    let detail = s.event_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.event.provenance.config_revision, 7);
    assert_eq!(
        detail.event.provenance.verification.as_deref(),
        Some("unenforced:failed")
    );
    assert_eq!(detail.event.provenance.replay_of, Some(first));
    // The event itself is what was appended: provenance is beside it.
    assert!(detail.event.event.is_some());
    let plain = s.event_detail(first).await.unwrap().unwrap();
    assert_eq!(plain.event.provenance, Provenance::default());
    let listed = s
        .list_events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    let shown = serde_json::to_value(listed.items.iter().find(|e| e.id == id).unwrap()).unwrap();
    assert_eq!(shown["config_revision"], 7, "{shown}");
    assert_eq!(shown["replay_of"], json!(first.to_string()));
}

pub async fn find_actions_narrows_by_every_filter(h: &Harness) {
    use tributary_core::ActionType;
    use tributary_store::ActionFilter;
    let s = &h.store;
    let old = Utc::now() - chrono::Duration::hours(2);
    let a = accepted(
        &s.append(vec![plain_item(
            event_at("web", "signup", Some("u-a"), old),
            vec![
                identify_plan("u-a", json!({})),
                trigger_plan("welcome", "u-a"),
            ],
        )])
        .await
        .unwrap()[0],
    )
    .0;
    let b = accepted(
        &s.append(vec![plain_item(
            event("app", "signup", Some("u-b")),
            vec![trigger_plan("welcome", "u-b")],
        )])
        .await
        .unwrap()[0],
    )
    .0;
    let count = |filter: ActionFilter| async move {
        s.find_actions(&filter, None, 100).await.unwrap().items
    };
    assert_eq!(count(ActionFilter::default()).await.len(), 3);
    let web = count(ActionFilter {
        source: Some("web".into()),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(web.len(), 2);
    assert!(web.iter().all(|r| r.event_id == a));
    let by_user = count(ActionFilter {
        user_id: Some("u-b".into()),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(by_user.len(), 1);
    assert_eq!(by_user[0].event_id, b);
    let triggers = count(ActionFilter {
        action: Some(ActionType::TriggerWorkflow),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(triggers.len(), 2);
    let of_a = count(ActionFilter {
        event_id: Some(a),
        status: Some(ActionStatus::Pending),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(of_a.len(), 2);
    let recent = count(ActionFilter {
        since: Some(Utc::now() - chrono::Duration::hours(1)),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(recent.len(), 1, "only b's action is within the hour");
    let older = count(ActionFilter {
        until: Some(Utc::now() - chrono::Duration::hours(1)),
        environment: Some("production".into()),
        ..ActionFilter::default()
    })
    .await;
    assert_eq!(older.len(), 2);
    assert!(
        count(ActionFilter {
            environment: Some("development".into()),
            ..ActionFilter::default()
        })
        .await
        .is_empty()
    );
}

/// A filter value only the oldest entry has, behind more entries than one
/// page examines: each page answers, and following the cursors finds it.
/// On SQLite the first page is empty with a cursor (its window was full).
pub async fn a_rare_value_is_found_by_following_cursors(h: &Harness) {
    let store = &h.store;
    let oldest = event_at(
        "web",
        "Rare",
        Some("rare"),
        Utc::now() - chrono::Duration::hours(1),
    );
    let rare_id = oldest.id;
    let mut batch = vec![AppendItem {
        event: oldest,
        plans: vec![trigger_plan("w", "rare")],
        dedup: None,
        provenance: Default::default(),
    }];
    let common = tributary_store::FILTER_SCAN_ROWS + 10;
    for _ in 0..common {
        if batch.len() == 5_000 {
            store.append(std::mem::take(&mut batch)).await.unwrap();
        }
        batch.push(AppendItem {
            event: event_at(
                "app",
                "Common",
                Some("common"),
                Utc::now() - chrono::Duration::minutes(30),
            ),
            plans: vec![trigger_plan("w", "common")],
            dedup: None,
            provenance: Default::default(),
        });
    }
    store.append(batch).await.unwrap();

    for filter in [
        EventFilter {
            user_id: Some("rare".into()),
            ..EventFilter::default()
        },
        EventFilter {
            event_type: Some("Rare".into()),
            ..EventFilter::default()
        },
    ] {
        let mut cursor = None;
        let mut found = Vec::new();
        for round in 0.. {
            assert!(round < 10, "the cursors never end");
            let page = store.list_events(&filter, cursor, 10).await.unwrap();
            if round == 0 && h.backend == "sqlite" {
                assert!(
                    page.items.is_empty(),
                    "the first window holds only common entries"
                );
                assert!(page.next_cursor.is_some());
            }
            found.extend(page.items.iter().map(|e| e.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(found, vec![rare_id], "{filter:?}");
    }

    for filter in [
        tributary_store::ActionFilter {
            user_id: Some("rare".into()),
            ..Default::default()
        },
        tributary_store::ActionFilter {
            source: Some("web".into()),
            ..Default::default()
        },
    ] {
        let mut cursor = None;
        let mut found = Vec::new();
        for round in 0.. {
            assert!(round < 10, "the cursors never end");
            let page = store.find_actions(&filter, cursor, 10).await.unwrap();
            if round == 0 && h.backend == "sqlite" {
                assert!(
                    page.items.is_empty(),
                    "the first window holds only common actions"
                );
                assert!(page.next_cursor.is_some());
            }
            found.extend(page.items.iter().map(|a| a.event_id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(found, vec![rare_id], "{filter:?}");
    }
}

pub async fn overrides_are_forgotten_by_mapping_or_by_source(h: &Harness) {
    let s = &h.store;
    for (source, env, mapping) in [
        ("web", "production", "m1"),
        ("web", "production", "m2"),
        ("web", "development", "m1"),
        ("app", "production", "m1"),
    ] {
        s.set_mapping_active(source, env, mapping, false)
            .await
            .unwrap();
    }
    s.forget_mapping_overrides("web", Some(("production", "m1")))
        .await
        .unwrap();
    assert_eq!(
        s.mapping_active("web", "production", "m1").await.unwrap(),
        None
    );
    assert_eq!(
        s.mapping_active("web", "development", "m1").await.unwrap(),
        Some(false),
        "only that environment's mapping"
    );
    s.forget_mapping_overrides("web", None).await.unwrap();
    let left = s.mapping_overrides().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].source, "app");
}

/// The local actions an append ran, with their outcomes' names.
pub fn ran_at_append(out: &AppendOutcome) -> Vec<(tributary_store::ActionId, &'static str)> {
    match out {
        AppendOutcome::Accepted { ran_local, .. } => {
            ran_local.iter().map(|r| (r.id, r.outcome.name())).collect()
        }
        AppendOutcome::Duplicate { .. } => Vec::new(),
    }
}

/// Opened to run `production` itself, an append runs its actions in plan
/// order inside its own transaction: the trigger finds the user its
/// identify made, a payload the `local` sink refuses fails alone with its
/// reason, each has one attempt, and nothing is left for a worker round.
pub async fn an_append_runs_in_store_actions_at_once_in_order(h: &Harness) {
    let h = &h.like(production_in_store()).await;
    let s = &h.store;
    let refused = tributary_core::plan::ActionPlan {
        action: tributary_core::ActionType::AddAudienceMember,
        origin: tributary_core::plan::PlanOrigin::Mapping {
            mapping: "m-audience".into(),
        },
        outcome: tributary_core::plan::PlanOutcome::Planned {
            payload: tributary_core::plan::ActionPayload::AddAudienceMember {
                audience: "nobody-made-this".into(),
                members: vec![tributary_core::plan::AudienceMember {
                    user_id: "u1".into(),
                    tenant: None,
                }],
                create_audience: false,
            },
        },
        notes: Vec::new(),
    };
    let out = s
        .append(vec![plain_item(
            event("web", "signup", Some("u1")),
            vec![
                identify_plan("u1", json!({"name": "Ada"})),
                refused,
                skipped_plan(),
                trigger_plan("welcome", "u1"),
            ],
        )])
        .await
        .unwrap();
    let AppendOutcome::Accepted {
        event_id,
        action_ids,
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        ran_at_append(&out[0]),
        vec![
            (action_ids[0], "succeeded"),
            (action_ids[1], "failed"),
            (action_ids[3], "succeeded"),
        ]
    );
    let run = s
        .local_record(
            LocalKind::WorkflowRun,
            "production",
            "welcome",
            &action_ids[3].to_string(),
        )
        .await
        .unwrap()
        .expect("the trigger found the user its event's identify made");
    assert_eq!(run.data["status"], "triggered");
    let detail = s.event_detail(*event_id).await.unwrap().unwrap();
    let statuses: Vec<_> = detail
        .actions
        .iter()
        .map(|a| (a.status, a.attempts))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (tributary_store::ActionStatus::Succeeded, 1),
            (tributary_store::ActionStatus::Failed, 1),
            (tributary_store::ActionStatus::Skipped, 0),
            (tributary_store::ActionStatus::Succeeded, 1),
        ]
    );
    assert!(
        detail.actions[1]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("nobody-made-this")),
        "{:?}",
        detail.actions[1].last_error
    );
    assert_eq!(detail.attempts.len(), 3, "{:?}", detail.attempts);
    let round = s
        .claim_running_local("w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(round.claimed.is_empty() && round.ran_local.is_empty() && !round.more);
}

/// Actions a run with other settings left in the outbox keep their place:
/// until a worker round has run them, new actions of their environment
/// queue behind them rather than run at append, so a newer identify is not
/// overwritten by an older one; once the outbox holds none, appends run
/// their actions again, and a reopen with the outbox empty does too.
pub async fn in_store_actions_queue_behind_older_ones_left_in_the_outbox(h: &Harness) {
    let h = h.like(LocalExecution::ThroughSink).await;
    let identify = |name: &str| {
        plain_item(
            event("web", "signup", Some("u1")),
            vec![identify_plan("u1", json!({ "name": name }))],
        )
    };
    h.store.append(vec![identify("Old")]).await.unwrap();
    let h = h.reopen(production_in_store()).await;
    let s = &h.store;
    // A plain claim leaves local actions where they are: it must not end the queueing.
    let none = s.claim("other", 0, Duration::from_secs(60)).await.unwrap();
    assert!(none.is_empty());
    let newer = s.append(vec![identify("New")]).await.unwrap();
    assert!(ran_at_append(&newer[0]).is_empty(), "{newer:?}");
    assert_eq!(local_rounds(s).await.len(), 2);
    let name = |s: Arc<dyn tributary_store::Store>| async move {
        s.local_record(LocalKind::User, "production", "", "u1")
            .await
            .unwrap()
            .unwrap()
            .data["name"]
            .clone()
    };
    assert_eq!(name(s.clone()).await, "New", "the older identify ran first");
    let next = s.append(vec![identify("Next")]).await.unwrap();
    assert_eq!(ran_at_append(&next[0]).len(), 1, "{next:?}");
    assert_eq!(name(s.clone()).await, "Next");
    let h = h.reopen(production_in_store()).await;
    let again = h.store.append(vec![identify("Again")]).await.unwrap();
    assert_eq!(ran_at_append(&again[0]).len(), 1, "{again:?}");
}

/// The data of a trigger whose data is its event's (a mapping's default) is
/// stored once, with the event, and every read of the plan has it: the
/// event's detail, the action log (with a filter that joins the events
/// table), a worker's claim, and a run from the outbox by the store. A
/// plan that refers to the event's data ([`TriggerData::OfEvent`]) reads
/// back holding it, and a run at append has it.
pub async fn a_triggers_data_from_its_event_reads_back_everywhere(h: &Harness) {
    let h = h.like(LocalExecution::ThroughSink).await;
    let data = json!({"total": 129.5, "items": [{"sku": "a\"b"}], "note": null});
    let item = |user: &str, trigger_data: TriggerData| {
        let mut e = event("web", "paid", Some(user));
        e.data = data.clone();
        e.raw = json!({"type": "track", "event": "paid", "properties": data});
        let mut plan = full_trigger(user);
        *plan.trigger_data_mut().expect("a trigger") = trigger_data;
        plain_item(e, vec![identify_plan(user, json!({})), plan])
    };
    let planned_data = |plan: &ActionPlan| {
        plan.trigger_data()
            .cloned()
            .unwrap_or_else(|| panic!("{plan:?}"))
    };
    let mapped = json!({"mapped": true});
    let out = h
        .store
        .append(vec![
            item("u1", data.clone().into()),
            item("u2", mapped.clone().into()),
            item("u4", TriggerData::OfEvent),
        ])
        .await
        .unwrap();
    let expected = [
        (accepted(&out[0]), &data),
        (accepted(&out[1]), &mapped),
        (accepted(&out[2]), &data),
    ];
    for ((event_id, ids), want) in &expected {
        let detail = h.store.event_detail(*event_id).await.unwrap().unwrap();
        assert_eq!(&planned_data(&detail.actions[1].plan), *want);
        let page = h
            .store
            .find_actions(
                &ActionFilter {
                    user_id: detail.event.user_id.clone(),
                    ..ActionFilter::default()
                },
                None,
                10,
            )
            .await
            .unwrap();
        let trigger = page.items.iter().find(|a| a.id == ids[1]).unwrap();
        assert_eq!(&planned_data(&trigger.plan), *want);
    }

    // A worker claims the identifies, then the triggers behind them.
    let mut claimed = Vec::new();
    for _ in 0..2 {
        for c in h
            .store
            .claim("w", 10, Duration::from_secs(60))
            .await
            .unwrap()
        {
            h.store
                .finish_attempt(
                    c.id,
                    "w",
                    AttemptOutcome::Succeeded {
                        summary: "HTTP 200".into(),
                    },
                )
                .await
                .unwrap();
            claimed.push(c);
        }
    }
    for ((_, ids), want) in &expected {
        let c = claimed.iter().find(|c| c.id == ids[1]).expect("claimed");
        assert_eq!(&planned_data(&c.plan), *want);
    }

    // Left in the outbox by a store running through the sink, then run by
    // one that runs the environment itself: the run is built from the plan.
    let left = h
        .store
        .append(vec![item("u3", data.clone().into())])
        .await
        .unwrap();
    let h = h.reopen(production_in_store()).await;
    local_rounds(&h.store).await;
    let store = &h.store;
    let run_of = |id: tributary_store::ActionId| async move {
        let id = id.to_string();
        local_data(store, "production", LocalKind::WorkflowRun, "receipt", &id).await
    };
    let run = run_of(accepted(&left[0]).1[1]).await.expect("the run");
    assert_eq!(run["data"], data);

    // Run at append by that store: the run has the data the plan refers to.
    let ran = h
        .store
        .append(vec![item("u5", TriggerData::OfEvent)])
        .await
        .unwrap();
    let (event_id, ids) = accepted(&ran[0]);
    let run = run_of(ids[1]).await.expect("the run made at append");
    assert_eq!(run["data"], data);
    let detail = h.store.event_detail(event_id).await.unwrap().unwrap();
    assert_eq!(&planned_data(&detail.actions[1].plan), &data);
}
