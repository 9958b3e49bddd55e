//! Workers end to end over a real SQLite store: events go in through the
//! pipeline, actions come out of the outbox and through a sink; retries and
//! every attempt are in the action log.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::post};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tributary_actions::{
    KnockSink, LocalSink, PoolSettings, RetryPolicy, Sink, SinkSet, WorkerPool,
};
use tributary_adapter::RawRequest;
use tributary_core::{Secret, config};
use tributary_pipeline::Pipeline;
use tributary_store::{
    ActionId, ActionStatus, AttemptOutcome, ClaimRound, ClaimedAction, EventDetail, LocalExecution,
    LocalKind, Outbox, SqliteOptions, SqliteStore, Store, StoreError,
};

const TOKEN: &str = "tok_workers_0123456789abcdef";

fn config_text() -> String {
    format!(
        r#"
[environments.development]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "{TOKEN}"

[[sources.environments.development.mappings]]
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
recipients = "properties.to"
"#
    )
}

fn fast_settings() -> PoolSettings {
    PoolSettings {
        idle_poll: Duration::from_millis(20),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(50),
            max_attempts: 5,
            max_retry_after: Duration::from_millis(100),
        },
        ..PoolSettings::default()
    }
}

/// A store that runs no action itself: every action goes through its sink.
async fn setup() -> (Arc<Pipeline>, Arc<dyn Store>, tempfile::TempDir) {
    setup_with(LocalExecution::ThroughSink).await
}

/// A store that runs `development`'s actions itself, as the service opens
/// it when that environment's sink is `local` without a rate limit.
async fn setup_in_store() -> (Arc<Pipeline>, Arc<dyn Store>, tempfile::TempDir) {
    setup_with(LocalExecution::InStore(vec!["development".to_owned()])).await
}

async fn setup_with(local: LocalExecution) -> (Arc<Pipeline>, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        local_execution: local,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_dir_with(dir.path(), options)
            .await
            .unwrap(),
    );
    let config = Arc::new(config::load("t.toml", &config_text(), &|_| None).unwrap());
    let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
    (pipeline, store, dir)
}

/// Starts a pool over `store` with one sink for `development`.
fn start(
    store: &Arc<dyn Outbox>,
    sink: Arc<dyn Sink>,
    limits: BTreeMap<tributary_core::ActionType, std::num::NonZeroU32>,
) -> (
    Arc<WorkerPool>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let sinks = SinkSet::new([("development".to_owned(), sink, limits)], 4);
    let pool = WorkerPool::new(store.clone(), sinks, fast_settings(), "w");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pool.clone().run(shutdown.clone()));
    (pool, shutdown, running)
}

const SIGNED_UP: &str =
    r#"{"type":"track","event":"Signed Up","userId":"u1","properties":{"to":"u1"}}"#;

/// Sends `body` to a pool with `sink` and waits for its actions to end.
async fn run_one(
    pipeline: &Pipeline,
    store: &Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    body: &str,
) -> EventDetail {
    run_one_from(pipeline, store.clone(), store, sink, body).await
}

/// [`run_one`] with the pool taking its actions from `outbox`.
async fn run_one_from(
    pipeline: &Pipeline,
    outbox: Arc<dyn Outbox>,
    store: &Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    body: &str,
) -> EventDetail {
    let (_pool, shutdown, running) = start(&outbox, sink, BTreeMap::new());
    let id = send(pipeline, body).await;
    let detail = wait_for_final(store, id).await;
    shutdown.cancel();
    running.await.unwrap();
    detail
}

async fn send(pipeline: &Pipeline, body: &str) -> tributary_core::event::EventId {
    let req = RawRequest::new("", "", body.as_bytes().to_vec(), Utc::now());
    pipeline.receive(TOKEN, req).await.unwrap().event_ids[0]
}

async fn wait_for_final(store: &Arc<dyn Store>, id: tributary_core::event::EventId) -> EventDetail {
    for _ in 0..500 {
        let detail = store.event_detail(id).await.unwrap().unwrap();
        if detail
            .actions
            .iter()
            .all(|a| matches!(a.status, ActionStatus::Succeeded | ActionStatus::Failed))
        {
            return detail;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("actions did not finish");
}

#[tokio::test]
async fn a_failing_target_is_retried_until_it_succeeds_once() {
    let (pipeline, store, _dir) = setup().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/v1/workflows/welcome/trigger",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "try later")
                } else {
                    (StatusCode::OK, "{\"workflow_run_id\":\"run_1\"}")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sink: Arc<dyn Sink> = Arc::new(KnockSink::new(&base, Secret::new("sk")).unwrap());
    let outbox: Arc<dyn Outbox> = store.clone();
    let (pool, shutdown, running) = start(&outbox, sink, BTreeMap::new());

    let id = send(
        &pipeline,
        r#"{"type":"track","event":"Signed Up","userId":"u1","properties":{"to":"u1"}}"#,
    )
    .await;
    pool.wake();
    let detail = wait_for_final(&store, id).await;
    shutdown.cancel();
    running.await.unwrap();

    assert_eq!(detail.actions[0].status, ActionStatus::Succeeded);
    assert_eq!(detail.actions[0].attempts, 3);
    let outcomes: Vec<_> = detail
        .attempts
        .iter()
        .map(|(_, a)| a.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "succeeded"]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "one effect, no extra calls"
    );
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let (pipeline, store, _dir) = setup().await;
    let app = Router::new().route(
        "/v1/workflows/welcome/trigger",
        post(|| async {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "{\"code\":\"invalid_params\"}",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sink: Arc<dyn Sink> = Arc::new(KnockSink::new(&base, Secret::new("sk")).unwrap());
    let detail = run_one(&pipeline, &store, sink, SIGNED_UP).await;
    assert_eq!(detail.actions[0].status, ActionStatus::Failed);
    assert_eq!(detail.actions[0].attempts, 1);
    assert!(
        detail.actions[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("422")
    );
}

/// Both ways a `local` action runs: through the sink, and in the store.
#[tokio::test]
async fn the_local_sink_identifies_inline_recipients_and_records_the_run() {
    for in_store in [false, true] {
        let (pipeline, store, _dir) = if in_store {
            setup_in_store().await
        } else {
            setup().await
        };
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(store.clone()));
        let detail = run_one(
            &pipeline,
            &store,
            sink,
            r#"{"type":"track","event":"Signed Up","userId":"u1",
                "properties":{"to":[{"id":"sam10","email":"sam@example.com"}]}}"#,
        )
        .await;
        assert_eq!(detail.actions.len(), 2, "inline identify + trigger");
        assert!(
            detail
                .actions
                .iter()
                .all(|a| a.status == ActionStatus::Succeeded),
            "{in_store}"
        );
        let user = store
            .local_record(LocalKind::User, "development", "", "sam10")
            .await
            .unwrap()
            .expect("the inline user was identified");
        assert_eq!(user.data["email"], "sam@example.com");
        let runs = store
            .local_records(LocalKind::WorkflowRun, "development", "welcome")
            .await
            .unwrap();
        assert_eq!(runs.len(), 1, "{in_store}");
    }
}

/// An outbox that counts the rounds passed through it: any wrapper an
/// embedder puts around the store (metrics, tracing).
struct Wrapped {
    inner: Arc<dyn Store>,
    rounds: AtomicUsize,
}

#[async_trait::async_trait]
impl Outbox for Wrapped {
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedAction>, StoreError> {
        self.inner.claim(owner, limit, lease).await
    }

    async fn claim_running_local(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<ClaimRound, StoreError> {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.inner.claim_running_local(owner, limit, lease).await
    }

    async fn finish_attempt(
        &self,
        action: ActionId,
        owner: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        self.inner.finish_attempt(action, owner, outcome).await
    }
}

/// A sink that counts the actions it is given before passing them on.
struct Counting {
    inner: LocalSink,
    executed: Arc<AtomicUsize>,
}

impl Sink for Counting {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn rate_limit(&self, action: tributary_core::ActionType) -> Option<std::num::NonZeroU32> {
        self.inner.rate_limit(action)
    }

    fn execute<'a>(
        &'a self,
        request: &'a tributary_actions::ActionRequest,
    ) -> tributary_actions::BoxFuture<'a, tributary_actions::Outcome> {
        self.executed.fetch_add(1, Ordering::Relaxed);
        self.inner.execute(request)
    }
}

/// Running `local` actions in the store is the store's setting, not
/// something the pool infers from which store it was given: a pool over a
/// wrapped store still has the store run them, and the sink gets none.
#[tokio::test]
async fn a_wrapped_store_still_runs_local_actions_itself() {
    let (pipeline, store, _dir) = setup_in_store().await;
    let wrapped = Arc::new(Wrapped {
        inner: store.clone(),
        rounds: AtomicUsize::new(0),
    });
    let executed = Arc::new(AtomicUsize::new(0));
    let sink: Arc<dyn Sink> = Arc::new(Counting {
        inner: LocalSink::new(store.clone()),
        executed: executed.clone(),
    });
    let signed_up = SIGNED_UP.replace(r#""to":"u1""#, r#""to":{"id":"u1"}"#);
    let detail = run_one_from(&pipeline, wrapped.clone(), &store, sink, &signed_up).await;
    assert!(
        detail
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Succeeded),
        "{detail:?}"
    );
    assert_eq!(
        store
            .local_records(LocalKind::WorkflowRun, "development", "welcome")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(wrapped.rounds.load(Ordering::Relaxed) > 0);
    assert_eq!(
        executed.load(Ordering::Relaxed),
        0,
        "the store ran the actions; the sink got none"
    );
}

/// A store opened to run no action itself gives a `local` action to its
/// sink, whatever store the sink writes to: the wiring opens it so when the
/// sink writes elsewhere, or its effect would land in the wrong database.
#[tokio::test]
async fn a_local_sink_over_another_store_still_gets_its_actions() {
    let (pipeline, store, _dir) = setup().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(other_dir.path()).await.unwrap());
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(other.clone()));
    // `{"id": "u1"}` identifies u1 before the trigger: a trigger reaches
    // identified users only.
    let signed_up = SIGNED_UP.replace(r#""to":"u1""#, r#""to":{"id":"u1"}"#);
    let detail = run_one(&pipeline, &store, sink, &signed_up).await;
    assert_eq!(detail.actions.len(), 2);
    assert!(
        detail
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Succeeded)
    );
    let runs = |s: Arc<dyn Store>| async move {
        s.local_records(LocalKind::WorkflowRun, "development", "welcome")
            .await
            .unwrap()
            .len()
    };
    assert_eq!(runs(other).await, 1, "the sink's store has the run");
    assert_eq!(runs(store).await, 0, "the pool's store does not");
}

/// A rate limit configured on a local environment still holds: its actions
/// go through the sink, where the limit is, and all of them run (the
/// service opens the store so: see `serve::local_execution`).
#[tokio::test]
async fn a_rate_limited_local_environment_runs_through_its_limiter() {
    let (pipeline, store, _dir) = setup().await;
    let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(store.clone()));
    let limits = BTreeMap::from([(
        tributary_core::ActionType::TriggerWorkflow,
        std::num::NonZeroU32::new(5).unwrap(),
    )]);
    let outbox: Arc<dyn Outbox> = store.clone();
    let (_pool, shutdown, running) = start(&outbox, sink, limits);
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            send(
                &pipeline,
                &format!(
                    r#"{{"type":"track","event":"Signed Up","userId":"u{n}","properties":{{"to":"u{n}"}}}}"#
                ),
            )
            .await,
        );
    }
    for id in ids {
        assert_eq!(
            wait_for_final(&store, id).await.actions[0].status,
            ActionStatus::Succeeded
        );
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.await.unwrap();
    // 5 per second with a burst of 5: the last of 12 cannot start before
    // (12 - 5) / 5 s. A lower bound only; it holds on any machine.
    assert!(
        elapsed >= Duration::from_millis(1_300),
        "12 triggers at 5/s took only {elapsed:?}"
    );
}

/// Issue 18 item 13: a trigger to a user never identified makes no run, as
/// in the product, and the action log says so. Both ways a local action
/// runs: inside the pool's own store, and through the sink over another.
#[tokio::test]
async fn a_trigger_to_a_user_never_identified_makes_no_run_and_says_so() {
    for own_store in [true, false] {
        let (pipeline, store, _dir) = if own_store {
            setup_in_store().await
        } else {
            setup().await
        };
        let other_dir = tempfile::tempdir().unwrap();
        let sink_store: Arc<dyn Store> = if own_store {
            store.clone()
        } else {
            Arc::new(SqliteStore::open_dir(other_dir.path()).await.unwrap())
        };
        let sink: Arc<dyn Sink> = Arc::new(LocalSink::new(sink_store.clone()));
        let detail = run_one(&pipeline, &store, sink, SIGNED_UP).await;
        let action = &detail.actions[0];
        assert_eq!(action.status, ActionStatus::Succeeded, "{own_store}");
        let summary = &detail.attempts.last().unwrap().1.summary;
        assert_eq!(
            summary, "no workflow run: no recipient was ever identified (u1)",
            "{own_store}"
        );
        assert!(
            sink_store
                .local_records(LocalKind::WorkflowRun, "development", "welcome")
                .await
                .unwrap()
                .is_empty(),
            "{own_store}"
        );
    }
}
