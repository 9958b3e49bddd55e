//! Store throughput: 64 concurrent tasks appending 1 KB events with one action
//! each (group commit, fsync on), then claim + complete of the outbox. Each
//! event's data is its properties and its trigger's data is the same, as a
//! Segment track event and a mapping's default make them.
//!
//! `cargo bench -p tributary-store --bench append` runs SQLite, and PostgreSQL
//! too when `TRIBUTARY_TEST_POSTGRES` is set. `BENCH_EVENTS` (default 200000)
//! sets the number of events per backend. Last, the `local` sink's actions
//! are drained through the sink path and (SQLite, the same file reopened
//! with `LocalExecution::InStore`) run by the appends, side by side.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use serde_json::json;
use tributary_core::{
    ActionType,
    dedup::DedupScope,
    event::{Event, EventId, EventKind},
    plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, TriggerData},
};
use tributary_store::{
    AppendItem, AttemptOutcome, ClaimedAction, LocalApply, LocalExecution, PostgresOptions,
    PostgresStore, SqliteOptions, SqliteStore, Store,
};

const TASKS: usize = 64;
const USERS: u64 = 10_000;

fn padding() -> String {
    "x".repeat(560)
}

fn item(n: u64, pad: &str) -> AppendItem {
    let now = Utc::now();
    let id = EventId::generate(now);
    let user = format!("user-{}", (n.wrapping_mul(2_654_435_761)) % USERS);
    // A Segment-style message id: random, as senders make them.
    let message_id = format!("{}-{n}", EventId::generate(now));
    let properties = json!({"plan": "pro", "seats": 12, "referrer": "newsletter", "note": pad});
    let raw = json!({
        "type": "track", "event": "Signed Up", "userId": user, "messageId": message_id,
        "timestamp": now, "properties": properties,
        "context": {"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "203.0.113.9"},
    });
    let event = Event {
        id,
        environment: "production".into(),
        source: "web".into(),
        kind: EventKind::Track,
        event: "Signed Up".into(),
        user_id: Some(user.clone()),
        anonymous_id: None,
        data: properties,
        timestamp: now,
        received_at: now,
        message_id: Some(message_id.clone()),
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
                recipients: vec![tributary_core::plan::RecipientRef::User(user)],
                actor: None,
                tenant: None,
                // As the service's pipeline plans it: the event's data, not a copy.
                data: TriggerData::OfEvent,
                cancellation_key: None,
            },
        },
        notes: Vec::new(),
    };
    AppendItem {
        dedup: Some(DedupScope {
            key: message_id,
            event_type: "Signed Up".into(),
            source: "web".into(),
            environment: "production".into(),
            window: Duration::from_secs(86_400),
        }),
        provenance: Default::default(),
        event,
        plans: vec![plan],
    }
}

async fn append_load(store: Arc<dyn Store>, total: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let pad = Arc::new(padding());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, next, pad) = (Arc::clone(&store), Arc::clone(&next), Arc::clone(&pad));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let it = item(n as u64, &pad);
                loop {
                    match store.append(vec![it.clone()]).await {
                        Ok(_) => break,
                        Err(tributary_store::StoreError::Overloaded) => {
                            tokio::task::yield_now().await
                        }
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn drain_load(store: Arc<dyn Store>, workers: usize, batch: usize) -> (usize, f64) {
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            loop {
                let claimed = store
                    .claim(&owner, batch, Duration::from_secs(300))
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    return;
                }
                finish_all(&*store, &owner, &claimed, "HTTP 200").await;
                done.fetch_add(claimed.len(), Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let n = done.load(Ordering::Relaxed);
    (n, n as f64 / started.elapsed().as_secs_f64())
}

/// Records every claimed action as succeeded, as the worker pool does: one
/// batched call per claim.
async fn finish_all(store: &dyn Store, owner: &str, claimed: &[ClaimedAction], summary: &str) {
    let attempts = claimed
        .iter()
        .map(|c| {
            let outcome = AttemptOutcome::Succeeded {
                summary: summary.into(),
            };
            (c.id, outcome)
        })
        .collect();
    for r in store
        .finish_attempts(owner, attempts)
        .await
        .expect("finish")
    {
        r.expect("finish");
    }
}

/// The `local` sink's actions, two ways: through the sink (claim,
/// `apply_local_many`, `finish_attempts`: three calls per batch) and run in
/// a store opened with `LocalExecution::InStore` (`claim_running_local`: one).
async fn drain_local(store: Arc<dyn Store>, workers: usize, in_store: bool) -> (usize, f64) {
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let owner = format!("local-{w}");
            let lease = Duration::from_secs(300);
            loop {
                let n = if in_store {
                    let round = store
                        .claim_running_local(&owner, 0, lease)
                        .await
                        .expect("round");
                    round.ran_local.len()
                } else {
                    let claimed = store.claim(&owner, 256, lease).await.expect("claim");
                    let items = claimed
                        .iter()
                        .map(|c| LocalApply {
                            action: c.id,
                            environment: c.environment.clone(),
                            payload: c.plan.payload().expect("planned").clone(),
                        })
                        .collect();
                    for r in store.apply_local_many(items).await.expect("apply") {
                        r.expect("apply");
                    }
                    finish_all(&*store, &owner, &claimed, "applied to local recipients").await;
                    claimed.len()
                };
                if n == 0 {
                    return;
                }
                done.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let n = done.load(Ordering::Relaxed);
    (n, n as f64 / started.elapsed().as_secs_f64())
}

/// This process's CPU time (user + system) in seconds, from /proc (Linux):
/// steadier than wall-clock rates on a machine shared with other work.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Identifies every user the events name, outside the measurement: a
/// trigger reaches identified users only, and the local paths are measured
/// writing their runs.
async fn identify_users(store: &dyn Store) {
    let items: Vec<LocalApply> = (0..USERS)
        .map(|n| LocalApply {
            action: tributary_store::ActionId::generate(EventId::generate(Utc::now())),
            environment: "production".into(),
            payload: ActionPayload::IdentifyUser {
                user_id: format!("user-{n}"),
                attributes: Default::default(),
            },
        })
        .collect();
    for chunk in items.chunks(1_000) {
        for r in store
            .apply_local_many(chunk.to_vec())
            .await
            .expect("identify")
        {
            r.expect("identified");
        }
    }
}

async fn run(name: &str, store: Arc<dyn Store>, total: usize) {
    // Warm up (statement caches, first pages) outside the measurement.
    append_load(Arc::clone(&store), 2_000).await;
    // Done with, so no warm-up action waits in the outbox: the in-store pass
    // below would queue its actions behind one.
    let warm = store
        .claim("warmup", 10_000, Duration::from_secs(3_600))
        .await
        .expect("claim");
    finish_all(&*store, "warmup", &warm, "warm-up").await;
    let cpu = cpu_seconds();
    let rate = append_load(Arc::clone(&store), total).await;
    let cpu_us = (cpu_seconds() - cpu) * 1e6 / total as f64;
    println!(
        "{name:<10} append  CPU of this process (SQLite: all of it; PostgreSQL: client side): {cpu_us:.1} us/event"
    );
    println!(
        "{name:<10} append  {TASKS} tasks x 1 event (1 KB, 1 action, dedup key): {rate:>9.0} events/s ({total} events)"
    );
    if std::env::var("BENCH_APPEND_ONLY").is_ok() {
        return;
    }
    let (n, rate) = drain_load(Arc::clone(&store), 8, 256).await;
    println!(
        "{name:<10} claim+complete  8 workers x 256 per claim:             {rate:>9.0} actions/s ({n} actions)"
    );
    identify_users(&*store).await;
    local_pass(name, store, total, false).await;
}

/// The local sink's actions of `total` new events, drained through the sink,
/// or (a store opened with `LocalExecution::InStore`) run by the appends
/// themselves, with a worker round after them that should find nothing.
/// Prints events/s with their actions run: appending and draining together.
async fn local_pass(name: &str, store: Arc<dyn Store>, total: usize, in_store: bool) {
    let append_secs = total as f64 / append_load(Arc::clone(&store), total).await;
    let (n, rate) = drain_local(store, 8, in_store).await;
    let drain_secs = if n == 0 { 0.0 } else { n as f64 / rate };
    let how = if in_store {
        "run at append (in the store)        "
    } else {
        "claim + apply_local_many + finish   "
    };
    println!(
        "{name:<10} local sink  {how}: {:>9.0} events/s with their actions run ({n} actions left for the workers)",
        total as f64 / (append_secs + drain_secs)
    );
}

fn main() {
    let total: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("dir");
        let path = dir.path().join("bench.db");
        let sqlite = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .expect("open sqlite");
        run("sqlite", Arc::new(sqlite), total).await;
        // The local sink's other path, side by side on the same file, when
        // opened to run them (this bench measures it on SQLite only;
        // `bench-postgres.sh` measures PostgreSQL's through the service).
        if std::env::var("BENCH_APPEND_ONLY").is_err() {
            let options = SqliteOptions {
                local_execution: LocalExecution::InStore(vec!["production".to_owned()]),
                ..SqliteOptions::default()
            };
            let sqlite = SqliteStore::open(&path, options)
                .await
                .expect("reopen sqlite");
            local_pass("sqlite", Arc::new(sqlite), total, true).await;
        }
        match std::env::var("TRIBUTARY_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => {
                let schema = format!("bench_{}", std::process::id());
                let pg = PostgresStore::connect(
                    &url,
                    PostgresOptions {
                        schema: Some(schema),
                        ..Default::default()
                    },
                )
                .await
                .expect("connect postgres");
                run("postgres", Arc::new(pg), total).await;
            }
            _ => println!("postgres   skipped: TRIBUTARY_TEST_POSTGRES is unset"),
        }
    });
}
