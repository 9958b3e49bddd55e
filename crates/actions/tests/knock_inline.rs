//! Inline identification on the knock sink: a trigger whose recipients, actor
//! or tenant were inline sends them inside the trigger call, and the inline
//! plans made for them make no call of their own. Events go in through the
//! pipeline into a real SQLite store; workers run the actions against a fake
//! of the product's API on loopback (or the local sink, which still applies
//! the inline plans).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri},
};
use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary_actions::{
    ActionRequest, KnockSink, LocalSink, Outcome, PoolSettings, RetryPolicy, SENT_WITH_TRIGGER,
    Sink, SinkSet, WorkerPool, api_calls,
};
use tributary_adapter::RawRequest;
use tributary_core::{
    Secret, config,
    event::EventId,
    plan::{ActionPayload, PlanOrigin},
};
use tributary_pipeline::Pipeline;
use tributary_store::{ActionStatus, EventDetail, LocalKind, SqliteStore, Store};

const TOKEN: &str = "tok_knock_inline_0123456789ab";

/// A trigger with inline recipients, actor and tenant, and a subscribe whose
/// inline recipient must keep its own identify call.
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
id = "comment-created"
event = "Comment Created"
action = "trigger_workflow"
workflow = "new-comment"
recipients = "properties.recipients"
actor = "properties.commenter"
tenant = "properties.workspace"

[[sources.environments.development.mappings]]
id = "watch"
event = "Comment Created"
action = "subscribe"
collection = "projects"
object_id = "properties.project"
recipients = "properties.watchers"
"#
    )
}

const EVENT: &str = r#"{"type":"track","event":"Comment Created","userId":"u1",
    "properties":{
        "recipients":[
            "sam9",
            {"id":"sam10","name":"Sam Seely","email":"sam@example.com"},
            {"id":"proj_1","collection":"projects"},
            {"id":"proj_2","collection":"projects","name":"Jurassic Park"}
        ],
        "commenter":{"id":123,"name":"John Hammond"},
        "workspace":{"id":"ws_1","name":"InGen"},
        "project":"proj_1",
        "watchers":[{"id":"w1","email":"w1@example.com"}]
    }}"#;

/// What the product's trigger call must receive for [`EVENT`].
fn expected_trigger_body() -> Value {
    json!({
        "recipients": [
            "sam9",
            {"id": "sam10", "name": "Sam Seely", "email": "sam@example.com"},
            {"id": "proj_1", "collection": "projects"},
            {"id": "proj_2", "collection": "projects", "name": "Jurassic Park"}
        ],
        "actor": {"id": "123", "name": "John Hammond"},
        "tenant": {"id": "ws_1", "name": "InGen"},
        "data": {
            "recipients": [
                "sam9",
                {"id": "sam10", "name": "Sam Seely", "email": "sam@example.com"},
                {"id": "proj_1", "collection": "projects"},
                {"id": "proj_2", "collection": "projects", "name": "Jurassic Park"}
            ],
            "commenter": {"id": 123, "name": "John Hammond"},
            "workspace": {"id": "ws_1", "name": "InGen"},
            "project": "proj_1",
            "watchers": [{"id": "w1", "email": "w1@example.com"}]
        }
    })
}

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Value,
}

/// A fake of the product's API: records every request, answers 200.
#[derive(Clone, Default)]
struct FakeKnock {
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn record(
    State(fake): State<FakeKnock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    fake.seen.lock().unwrap().push(Seen {
        method,
        uri: uri.to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    "{\"ok\":true}"
}

impl FakeKnock {
    async fn start(&self) -> String {
        let app = Router::new().fallback(record).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn settings() -> PoolSettings {
    PoolSettings {
        idle_poll: Duration::from_millis(20),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(50),
            max_attempts: 3,
            max_retry_after: Duration::from_millis(100),
        },
        ..PoolSettings::default()
    }
}

/// Receives [`EVENT`] and runs its actions through `sink` until all are final.
async fn run_event(
    make_sink: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Sink>,
) -> (Arc<dyn Store>, EventDetail, tempfile::TempDir) {
    run_with(&config_text(), make_sink, async |pipeline: &Pipeline| {
        let req = RawRequest::new("", "", EVENT.as_bytes().to_vec(), Utc::now());
        pipeline.receive(TOKEN, req).await.unwrap().event_ids[0]
    })
    .await
}

/// Runs workers over `sink` on a fresh store, lets `send` store one event
/// through the pipeline, and waits until all its actions are final.
async fn run_with(
    config_text: &str,
    make_sink: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Sink>,
    send: impl AsyncFnOnce(&Pipeline) -> EventId,
) -> (Arc<dyn Store>, EventDetail, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = Arc::new(config::load("t.toml", config_text, &|_| None).unwrap());
    let pipeline = Pipeline::new(config, store.clone()).await.unwrap();
    let sinks = SinkSet::new(
        [(
            "development".to_owned(),
            make_sink(store.clone()),
            BTreeMap::new(),
        )],
        4,
    );
    let pool = WorkerPool::new(store.clone(), sinks, settings(), "inline-test");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pool.clone().run(shutdown.clone()));
    let id = send(&pipeline).await;
    pool.wake();
    let detail = wait_for_final(&store, id).await;
    shutdown.cancel();
    running.await.unwrap();
    (store, detail, dir)
}

async fn wait_for_final(store: &Arc<dyn Store>, id: EventId) -> EventDetail {
    for _ in 0..500 {
        let detail = store.event_detail(id).await.unwrap().unwrap();
        if !detail.actions.is_empty()
            && detail
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

fn summaries(detail: &EventDetail) -> Vec<(String, String)> {
    detail
        .actions
        .iter()
        .map(|a| {
            let summary = detail
                .attempts
                .iter()
                .rev()
                .find(|(id, _)| *id == a.id)
                .map(|(_, at)| at.summary.clone())
                .unwrap_or_default();
            (a.action.to_string(), summary)
        })
        .collect()
}

#[tokio::test]
async fn the_knock_sink_sends_inline_entities_inside_the_trigger_call() {
    let fake = FakeKnock::default();
    let base = fake.start().await;
    let (_store, detail, _dir) = run_event(|_| {
        Arc::new(KnockSink::new(&base, Secret::new("sk_test_inline")).unwrap()) as Arc<dyn Sink>
    })
    .await;

    // Every plan ran, in order, and is in the action log.
    let actions: Vec<_> = detail
        .actions
        .iter()
        .map(|a| a.action.to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "identify_user",
            "identify_user",
            "identify_user",
            "set_object",
            "set_tenant",
            "subscribe",
            "trigger_workflow"
        ]
    );
    assert!(
        detail
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Succeeded && a.attempts == 1),
        "{:?}",
        summaries(&detail)
    );
    // The trigger's inline plans made no call; the subscribe's did.
    for (a, (_, summary)) in detail.actions.iter().zip(summaries(&detail)) {
        if a.plan.origin.is_sent_with_trigger() {
            assert_eq!(summary, SENT_WITH_TRIGGER);
        } else {
            assert_ne!(summary, SENT_WITH_TRIGGER);
        }
    }
    let sent_with_trigger = detail
        .actions
        .iter()
        .filter(|a| a.plan.origin.is_sent_with_trigger())
        .count();
    assert_eq!(sent_with_trigger, 4, "sam10, 123, proj_2 and ws_1");

    let seen = fake.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /v1/users/w1",
            "POST /v1/objects/projects/proj_1/subscriptions",
            "POST /v1/workflows/new-comment/trigger"
        ],
        "no identify, set-object or set-tenant call for the trigger's inline entities"
    );
    assert_eq!(seen[0].body, json!({"email": "w1@example.com"}));
    let trigger = &seen[2];
    assert_eq!(trigger.body, expected_trigger_body());
    assert_eq!(trigger.headers["authorization"], "Bearer sk_test_inline");
    let trigger_id = detail.actions.last().unwrap().id.to_string();
    assert_eq!(trigger.headers["idempotency-key"], trigger_id.as_str());
}

#[tokio::test]
async fn the_local_sink_still_applies_the_inline_plans() {
    let (store, detail, _dir) =
        run_event(|store| Arc::new(LocalSink::new(store)) as Arc<dyn Sink>).await;
    assert_eq!(detail.actions.len(), 7);
    assert!(
        detail
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Succeeded)
    );
    assert!(
        summaries(&detail)
            .iter()
            .all(|(_, summary)| summary != SENT_WITH_TRIGGER)
    );
    let user = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .local_record(LocalKind::User, "development", "", id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("user {id} was identified"))
        }
    };
    assert_eq!(user("sam10").await.data["email"], "sam@example.com");
    assert_eq!(user("123").await.data["name"], "John Hammond");
    assert_eq!(user("w1").await.data["email"], "w1@example.com");
    let tenant = store
        .local_record(LocalKind::Tenant, "development", "", "ws_1")
        .await
        .unwrap()
        .expect("the inline tenant was set");
    assert_eq!(tenant.data["name"], "InGen");
    let runs = store
        .local_records(LocalKind::WorkflowRun, "development", "new-comment")
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
}

fn request(payload: ActionPayload, origin: PlanOrigin) -> ActionRequest {
    ActionRequest {
        action_id: "01JD6Y3W8G2R00000000000001".into(),
        event_id: "01JD6Y3W8G2R0000000000000E".into(),
        environment: "development".into(),
        source: "web".into(),
        payload,
        origin,
        attempt: 1,
    }
}

fn identify(with_trigger: bool) -> ActionRequest {
    request(
        ActionPayload::IdentifyUser {
            user_id: "sam10".into(),
            attributes: json!({"email": "sam@example.com"})
                .as_object()
                .unwrap()
                .clone(),
        },
        PlanOrigin::Inline {
            mapping: "m".into(),
            field: "recipients".into(),
            with_trigger,
        },
    )
}

#[tokio::test]
async fn only_inline_plans_carried_by_their_trigger_skip_the_call_and_the_rate_limit() {
    let fake = FakeKnock::default();
    let base = fake.start().await;
    let sink = KnockSink::new(&base, Secret::new("sk")).unwrap();

    let carried = identify(true);
    assert!(api_calls(&carried).is_empty());
    assert!(!sink.is_rate_limited(&carried));
    assert_eq!(
        sink.execute(&carried).await,
        Outcome::Succeeded {
            status: None,
            summary: SENT_WITH_TRIGGER.into()
        }
    );
    assert!(fake.seen().is_empty(), "no call for a carried entity");

    // Stored before this change, or from a subscribe: its own call, rate limited.
    let own = identify(false);
    assert!(sink.is_rate_limited(&own));
    assert!(matches!(
        sink.execute(&own).await,
        Outcome::Succeeded {
            status: Some(200),
            ..
        }
    ));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/v1/users/sam10");
    assert_eq!(seen[0].body, json!({"email": "sam@example.com"}));
}

#[test]
fn a_trigger_without_inline_entities_keeps_ids() {
    let payload = ActionPayload::TriggerWorkflow {
        workflow: "w".into(),
        recipients: vec![tributary_core::plan::RecipientRef::User("u1".into())],
        actor: Some(tributary_core::plan::RecipientRef::User("u2".into())),
        tenant: Some("t1".into()),
        data: json!({}).into(),
        cancellation_key: None,
    };
    let calls = api_calls(&request(
        payload,
        PlanOrigin::Mapping {
            mapping: "m".into(),
        },
    ));
    assert_eq!(
        calls[0].body,
        Some(json!({"recipients": ["u1"], "actor": "u2", "tenant": "t1", "data": {}}))
    );
}

/// The product's resource API (`POST /v1/workflows/{key}/trigger`, the way
/// Hightouch and Census call it) plans like a mapped trigger: the knock sink
/// makes one trigger call with the inline entities in it.
#[tokio::test]
async fn a_resource_api_trigger_passes_its_inline_entities_through() {
    let fake = FakeKnock::default();
    let base = fake.start().await;
    let text = config_text().replace(
        &format!("token = \"{TOKEN}\"\n"),
        &format!("token = \"{TOKEN}\"\napi_key = \"sk_resource_inline\"\n"),
    );
    let body = json!({
        "recipients": ["sam9", {"id": "sam10", "name": "Sam Seely"}],
        "actor": {"id": "123", "name": "John Hammond"},
        "tenant": "ws_1",
        "data": {"comment": "hi"}
    });
    let sent = body.clone();
    let (_store, detail, _dir) = run_with(
        &text,
        |_| {
            Arc::new(KnockSink::new(&base, Secret::new("sk_test_inline")).unwrap()) as Arc<dyn Sink>
        },
        async move |pipeline: &Pipeline| {
            let raw = RawRequest::new("", "", serde_json::to_vec(&sent).unwrap(), Utc::now())
                .with_header("authorization", "Bearer sk_resource_inline")
                .with_header("content-type", "application/json");
            pipeline
                .resource_call(tributary_pipeline::ResourceRequest {
                    method: "POST".into(),
                    path: "/v1/workflows/new-comment/trigger".into(),
                    query: None,
                    raw,
                })
                .await
                .unwrap()
                .event_id
        },
    )
    .await;

    let kinds: Vec<_> = detail
        .actions
        .iter()
        .map(|a| (a.action.to_string(), a.plan.origin.is_sent_with_trigger()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("identify_user".to_owned(), true),
            ("identify_user".to_owned(), true),
            ("trigger_workflow".to_owned(), false)
        ]
    );
    assert!(
        detail
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Succeeded),
        "{:?}",
        summaries(&detail)
    );
    let seen = fake.seen();
    let calls: Vec<_> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(calls, ["POST /v1/workflows/new-comment/trigger"]);
    // The body the client sent, inline entities and all.
    assert_eq!(seen[0].body, body);
}
