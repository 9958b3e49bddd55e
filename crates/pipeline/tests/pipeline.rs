//! The pipeline over a real SQLite store: routing, dedup, rejections logged,
//! batches with bad items, write keys, and runtime mapping toggles.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use tributary_adapter::RawRequest;
use tributary_core::config;
use tributary_pipeline::{Pipeline, PipelineError};
use tributary_segment::TrackingCall;
use tributary_store::{
    ActionStatus, EventFilter, EventStatus, LocalExecution, SqliteOptions, SqliteStore, Store,
};

const SEGMENT_TOKEN: &str = "tok_segment_0123456789abcdef";
const LEGACY_TOKEN: &str = "tok_legacy_0123456789abcdefg";

const CONFIG: &str = r#"
[environments.development]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "tok_segment_0123456789abcdef"
write_key = "wk_web_dev"

[[sources.environments.development.mappings]]
id = "welcome"
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"

[[sources]]
key = "legacy"
kind = "http-legacy"

[sources.environments.development]
token = "tok_legacy_0123456789abcdefg"
"#;

async fn pipeline() -> (Pipeline, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = Arc::new(config::load("t.toml", CONFIG, &|_| None).unwrap());
    let pipeline = Pipeline::new(config, store.clone()).await.unwrap();
    (pipeline, store, dir)
}

fn request(body: &str) -> RawRequest {
    RawRequest::new("", "", body.as_bytes().to_vec(), Utc::now())
        .with_header("content-type", "application/json")
}

const SIGNED_UP: &str = r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1","properties":{"plan":"team"}}"#;

#[tokio::test]
async fn an_event_is_stored_with_its_plans_and_a_repeat_is_a_duplicate() {
    let (p, store, _dir) = pipeline().await;
    let first = p.receive(SEGMENT_TOKEN, request(SIGNED_UP)).await.unwrap();
    assert_eq!((first.accepted, first.duplicates), (1, 0));
    // Its trigger waits in the outbox for the workers.
    assert_eq!(first.queued, 1);
    let detail = store
        .event_detail(first.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.event.status, EventStatus::Accepted);
    assert_eq!(detail.actions.len(), 1);
    assert_eq!(detail.actions[0].status, ActionStatus::Pending);

    let again = p.receive(SEGMENT_TOKEN, request(SIGNED_UP)).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    assert_eq!(again.queued, 0);
    let dup = store
        .event_detail(again.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dup.event.status, EventStatus::Duplicate);
    assert!(dup.actions.is_empty());
}

/// A store that runs the environment's actions itself runs the trigger with
/// the append: nothing reaches the outbox, so the receipt tells the caller
/// the workers have nothing new (and need no wake).
#[tokio::test]
async fn actions_run_at_append_are_not_counted_as_queued() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        local_execution: LocalExecution::InStore(vec!["development".into()]),
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_dir_with(dir.path(), options)
            .await
            .unwrap(),
    );
    let config = Arc::new(config::load("t.toml", CONFIG, &|_| None).unwrap());
    let p = Pipeline::new(config, store.clone()).await.unwrap();
    let receipt = p.receive(SEGMENT_TOKEN, request(SIGNED_UP)).await.unwrap();
    assert_eq!((receipt.accepted, receipt.queued), (1, 0));
    let detail = store
        .event_detail(receipt.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.actions.len(), 1);
    assert_eq!(detail.actions[0].status, ActionStatus::Succeeded);
}

#[tokio::test]
async fn unknown_tokens_and_bad_bodies_are_refused_and_logged() {
    let (p, store, _dir) = pipeline().await;
    assert!(matches!(
        p.receive("tok_nobody_0123456789abcdefgh", request(SIGNED_UP))
            .await,
        Err(PipelineError::UnknownToken)
    ));
    match p.receive(SEGMENT_TOKEN, request("{not json")).await {
        Err(PipelineError::Adapter(e)) => assert_eq!(e.code(), "malformed_json"),
        other => panic!("{other:?}"),
    }
    match p
        .receive(LEGACY_TOKEN, request(r#"{"type":"identify","userId":"u"}"#))
        .await
    {
        Err(PipelineError::Adapter(e)) => assert!(e.field().is_some()),
        other => panic!("{other:?}"),
    }
    let rejected = store
        .list_events(
            &EventFilter {
                status: Some(EventStatus::Rejected),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(rejected.items.len(), 3);
    let bad_json = rejected
        .items
        .iter()
        .find(|e| e.source.as_deref() == Some("web"))
        .unwrap();
    assert_eq!(bad_json.body_excerpt.as_deref(), Some("{not json"));
}

#[tokio::test]
async fn a_batch_with_one_bad_item_accepts_the_rest() {
    let (p, _store, _dir) = pipeline().await;
    let batch = r#"[
        {"type":"track","event":"Signed Up","userId":"u1","messageId":"b-1"},
        {"type":"track","userId":"u2","messageId":"b-2"},
        {"type":"track","event":"Other","userId":"u3","messageId":"b-3"}
    ]"#;
    let receipt = p.receive(SEGMENT_TOKEN, request(batch)).await.unwrap();
    assert_eq!(receipt.accepted, 2);
    assert_eq!(receipt.rejected.len(), 1);
    assert_eq!(receipt.rejected[0].index, 1);
    assert!(
        receipt.rejected[0]
            .error
            .field
            .as_deref()
            .unwrap()
            .starts_with("/1")
    );
    let all_bad = p
        .receive(SEGMENT_TOKEN, request(r#"[{"type":"track"}]"#))
        .await;
    assert!(matches!(
        all_bad,
        Err(PipelineError::AllItemsRejected { .. })
    ));
}

#[tokio::test]
async fn tracking_api_routes_by_write_key() {
    let (p, _store, _dir) = pipeline().await;
    let basic = format!("Basic {}", STANDARD.encode("wk_web_dev:"));
    let receipt = p
        .tracking(
            TrackingCall::Track,
            request(r#"{"event":"Signed Up","userId":"u9"}"#).with_header("authorization", &basic),
        )
        .await
        .unwrap();
    assert_eq!(receipt.accepted, 1);
    assert_eq!(receipt.source, "web");

    let in_body = p
        .tracking(
            TrackingCall::Batch,
            request(
                r#"{"writeKey":"wk_web_dev","batch":[{"type":"track","event":"A","userId":"u"}]}"#,
            ),
        )
        .await
        .unwrap();
    assert_eq!(in_body.accepted, 1);

    let wrong = p
        .tracking(
            TrackingCall::Track,
            request(r#"{"event":"A","userId":"u"}"#).with_header("x-write-key", "nope"),
        )
        .await;
    assert!(matches!(wrong, Err(PipelineError::UnknownWriteKey { .. })));
}

#[tokio::test]
async fn toggling_a_mapping_takes_effect_at_once_and_persists() {
    let (p, store, dir) = pipeline().await;
    assert!(
        p.set_mapping_active("web", "development", "welcome", false)
            .await
            .unwrap()
    );
    assert!(
        !p.set_mapping_active("web", "development", "nope", false)
            .await
            .unwrap()
    );
    let receipt = p.receive(SEGMENT_TOKEN, request(SIGNED_UP)).await.unwrap();
    let detail = store
        .event_detail(receipt.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.actions[0].status, ActionStatus::Skipped);

    // A new pipeline over the same store sees the toggle.
    drop(p);
    let config = Arc::new(config::load("t.toml", CONFIG, &|_| None).unwrap());
    let again = Pipeline::new(config, store).await.unwrap();
    let mut event = detail.event.event.clone().unwrap();
    event.id = tributary_core::event::EventId::generate(Utc::now());
    assert!(!again.plan(&event)[0].is_planned());
    drop(dir);
}
