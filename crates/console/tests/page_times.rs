//! How long each console page takes on the server with a large event log.
//! Ignored by default (it fills a store with a million events); it prints
//! p50/p99 per page and asserts nothing about time (docs/PERFORMANCE.md,
//! "Console"):
//!
//! ```sh
//! PERF_DIR=/var/tmp/console-perf cargo test --release -p tributary-console \
//!   --test page_times -- --ignored --nocapture
//! ```
//!
//! `PERF_EVENTS` (default 1,000,000) sets the log's size; with `PERF_DIR`
//! the filled store is kept there and reused by the next run.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tributary_console::{BASE_PATH, ConsoleState, router};
use tributary_core::{
    ActionType, config,
    event::{Event, EventId, EventKind},
    plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, RecipientRef},
};
use tributary_manage::Manager;
use tributary_pipeline::Pipeline;
use tributary_store::{AppendItem, EventFilter, SqliteStore, Store};

const ADMIN: &str = "adm_console_perf_0123456789";
const USERS: usize = 10_000;
const TYPES: usize = 20;
/// One event in this many is of the rare type, and one in twice as many is
/// from the rare user: filters that match almost nothing.
const RARE_EVERY: usize = 100_000;
const BATCH: usize = 10_000;
const RUNS: usize = 30;
/// Runs of a page whose warm-up took longer than [`SLOW`].
const SLOW_RUNS: usize = 5;
const SLOW: Duration = Duration::from_millis(300);

const CONFIG: &str = r#"
[server]
public_url = "http://127.0.0.1:8080"

[admin]
token = "adm_console_perf_0123456789"

[environments.development]

[environments.production]

"#;

fn item(n: usize, at: DateTime<Utc>) -> AppendItem {
    let environment = if n % 100 == 7 {
        "development"
    } else {
        "production"
    };
    let event_type = if n % RARE_EVERY == RARE_EVERY / 2 {
        "Rare Event".to_owned()
    } else {
        format!("Event {}", n % TYPES)
    };
    let user = if n % (2 * RARE_EVERY) == RARE_EVERY / 3 {
        "rare-user".to_owned()
    } else {
        format!("user-{}", n.wrapping_mul(2_654_435_761) % USERS)
    };
    let raw = json!({
        "type": "track", "event": event_type, "userId": user, "messageId": format!("m-{n}"),
        "timestamp": at, "properties": {"plan": "pro", "seats": n % 50, "referrer": "newsletter"},
        "context": {"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "203.0.113.9"},
    });
    let event = Event {
        id: EventId::generate(at),
        environment: environment.into(),
        source: "web".into(),
        kind: EventKind::Track,
        event: event_type,
        user_id: Some(user.clone()),
        anonymous_id: None,
        data: raw["properties"].clone(),
        timestamp: at,
        received_at: at,
        message_id: Some(format!("m-{n}")),
        raw,
        headers: Default::default(),
        preprocess: None,
    };
    let plan = ActionPlan {
        action: ActionType::TriggerWorkflow,
        origin: PlanOrigin::Mapping {
            mapping: "welcome".into(),
        },
        outcome: PlanOutcome::Planned {
            payload: ActionPayload::TriggerWorkflow {
                workflow: "welcome".into(),
                recipients: vec![RecipientRef::User(user)],
                actor: None,
                tenant: None,
                data: Value::Null.into(),
                cancellation_key: None,
            },
        },
        notes: Vec::new(),
    };
    AppendItem {
        dedup: None,
        provenance: Default::default(),
        event,
        plans: vec![plan],
    }
}

/// Appends `total` events spread evenly over the last ten days, in large
/// batches, unless the store holds events already.
async fn fill(store: &dyn Store, total: usize) {
    let existing = store
        .list_events(&EventFilter::default(), None, 1)
        .await
        .unwrap();
    if !existing.items.is_empty() {
        eprintln!("Reusing the filled store.");
        return;
    }
    let span = Duration::from_secs(10 * 86_400);
    let start = Utc::now() - span;
    let step = span.as_millis() as f64 / total as f64;
    let began = Instant::now();
    let mut n = 0;
    while n < total {
        let batch: Vec<AppendItem> = (n..(n + BATCH).min(total))
            .map(|i| {
                item(
                    i,
                    start + chrono::Duration::milliseconds((i as f64 * step) as i64),
                )
            })
            .collect();
        n += batch.len();
        store.append(batch).await.unwrap();
    }
    eprintln!(
        "Filled {total} events in {:.1} s.",
        began.elapsed().as_secs_f64()
    );
}

async fn body(app: &Router, cookie: &str, path: &str) -> (StatusCode, String, Duration) {
    let request = Request::get(format!("{BASE_PATH}{path}"))
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let took = started.elapsed();
    (status, String::from_utf8_lossy(&bytes).into_owned(), took)
}

async fn sign_in(app: &Router) -> String {
    let response = app
        .clone()
        .oneshot(
            Request::post(format!("{BASE_PATH}/sign-in"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={ADMIN}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fills a store with a million events; run by hand (docs/PERFORMANCE.md)"]
async fn every_console_page_with_a_large_event_log() {
    let total: usize = std::env::var("PERF_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let temp;
    let dir: PathBuf = match std::env::var_os("PERF_DIR") {
        Some(dir) => dir.into(),
        None => {
            temp = tempfile::tempdir_in("/var/tmp").unwrap();
            temp.path().to_path_buf()
        }
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(&dir).await.unwrap());
    fill(store.as_ref(), total).await;
    let config = config::load("perf.toml", CONFIG, &|_| None).unwrap();
    let pipeline = Arc::new(
        Pipeline::new(Arc::new(config), store.clone())
            .await
            .unwrap(),
    );
    let manager = Arc::new(Manager::new(pipeline, Vec::new()));
    // A stored source, so the mapping pages open for it too.
    if manager.source("web").await.is_err() {
        manager
            .create_source("perf", json!({"key": "web", "kind": "segment"}))
            .await
            .unwrap();
        manager
            .create_mapping(
                "perf",
                "web",
                "production",
                None,
                json!({"id": "welcome", "event": "Event 0", "action": "trigger_workflow", "workflow": "welcome"}),
            )
            .await
            .unwrap();
    }
    let app: Router = Router::new().nest(BASE_PATH, router(ConsoleState::new(manager)));
    let cookie = sign_in(&app).await;

    // Ids to open: the newest entry and one from the middle of the log.
    let newest = store
        .list_events(&EventFilter::default(), None, 1)
        .await
        .unwrap()
        .items[0]
        .id;
    let middle_time = Utc::now() - chrono::Duration::days(5);
    let middle = store
        .list_events(
            &EventFilter {
                until: Some(middle_time),
                ..EventFilter::default()
            },
            None,
            1,
        )
        .await
        .unwrap()
        .items[0]
        .id;
    let day = |days: i64| {
        (Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let env = "/sources/web/environments/production";
    let pages: Vec<(&str, String)> = vec![
        ("sources", "/sources".into()),
        ("environment", env.into()),
        ("event types (live)", format!("{env}/event-types")),
        (
            "new mapping with its sample",
            format!("{env}/new-mapping?event=Event+3&action=trigger_workflow"),
        ),
        ("events", "/events".into()),
        (
            "events, older page (mid-log cursor)",
            format!("/events?cursor={middle}"),
        ),
        ("events, live tail", format!("/events/tail?after={newest}")),
        (
            "events by source and environment",
            "/events?source=web&environment=development".into(),
        ),
        ("events by event type", "/events?event_type=Event+3".into()),
        (
            "events by a rare event type",
            "/events?event_type=Rare+Event".into(),
        ),
        ("events by user", "/events?user_id=user-42".into()),
        ("events by a rare user", "/events?user_id=rare-user".into()),
        (
            "events by a status none has",
            "/events?status=rejected".into(),
        ),
        (
            "events in a one-day window",
            format!("/events?since={}&until={}", day(6), day(5)),
        ),
        ("event detail", format!("/events/{middle}")),
        ("actions", "/actions".into()),
        ("actions by status", "/actions?status=pending".into()),
        (
            "actions by a status none has",
            "/actions?status=failed".into(),
        ),
        (
            "actions by source, environment, action",
            "/actions?source=web&environment=development&action=trigger_workflow".into(),
        ),
        ("actions by user", "/actions?user_id=user-42".into()),
        (
            "actions by a rare user",
            "/actions?user_id=rare-user".into(),
        ),
        (
            "actions of one event",
            format!("/actions?event_id={middle}"),
        ),
        (
            "actions in a one-day window",
            format!("/actions?since={}&until={}", day(6), day(5)),
        ),
        ("revisions", "/revisions".into()),
    ];
    println!(
        "{total} events; {RUNS} runs a page after one warm-up ({SLOW_RUNS} when it took over {} ms)",
        SLOW.as_millis()
    );
    println!("| page | p50 ms | p99 ms | rows |");
    println!("|---|---|---|---|");
    for (name, path) in &pages {
        let (status, text, warm_up) = body(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        let rows = text.matches("<tr data-").count();
        let runs = if warm_up > SLOW { SLOW_RUNS } else { RUNS };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(body(&app, &cookie, path).await.2);
        }
        times.sort();
        println!(
            "| {name} | {:.1} | {:.1} | {rows} |",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
        );
    }
}
