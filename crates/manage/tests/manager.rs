//! The management layer over a real pipeline and SQLite store: changes are
//! revisions, take effect on the next request, and are refused whole.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::{Value, json};
use tributary_adapter::RawRequest;
use tributary_core::{config, plan::PlanOutcome};
use tributary_manage::{Credential, ManageError, Manager};
use tributary_pipeline::{Pipeline, PipelineError};
use tributary_store::{EventFilter, SqliteStore, Store};

const FILE: &str = r#"
[environments.development]
[environments.production]

[[sources]]
key = "from-file"
kind = "http-legacy"

[sources.environments.development]
token = "tok_file_0123456789abcdefghij"

[[sources.environments.development.mappings]]
id = "welcome"
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
recipients = "userId"
"#;

struct Fixture {
    manager: Manager,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn fixture_at(dir: tempfile::TempDir) -> Fixture {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = Arc::new(config::load("t.toml", FILE, &|_| None).unwrap());
    let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
    let manager = Manager::new(pipeline, config::source_documents(FILE).unwrap());
    Fixture {
        manager,
        store,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_at(tempfile::tempdir().unwrap()).await
}

fn track(event: &str) -> RawRequest {
    let body = json!({"type": "track", "event": event, "userId": "u1"}).to_string();
    RawRequest::new("", "", body.into_bytes(), Utc::now())
        .with_header("content-type", "application/json")
}

const MAPPING: &str = r#"{"event": "Signed Up", "action": "trigger_workflow",
    "workflow": "welcome", "recipients": "userId"}"#;

async fn web(f: &Fixture) -> String {
    let created = f
        .manager
        .create_source(
            "admin",
            json!({"key": "web", "kind": "segment", "name": "Web"}),
        )
        .await
        .unwrap();
    created.secrets["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_created_source_and_mapping_serve_the_next_request() {
    let f = fixture().await;
    let token = web(&f).await;
    let pipeline = f.manager.pipeline();
    // Before any mapping the event is stored with no plans.
    let receipt = pipeline.receive(&token, track("Signed Up")).await.unwrap();
    assert_eq!(receipt.accepted, 1);
    let committed = f
        .manager
        .create_mapping(
            "admin",
            "web",
            "production",
            None,
            serde_json::from_str(MAPPING).unwrap(),
        )
        .await
        .unwrap();
    let view = committed.source.unwrap();
    let mapping = &view["environments"]["production"]["mappings"][0];
    assert_eq!(mapping["id"], json!("Signed Up:trigger_workflow"), "{view}");
    let receipt = pipeline.receive(&token, track("Signed Up")).await.unwrap();
    let detail = f
        .store
        .event_detail(receipt.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.actions.len(), 1, "the new mapping planned a trigger");
    // Reads never show a secret in full.
    let listed = serde_json::to_string(&f.manager.sources().await.unwrap()).unwrap();
    assert!(!listed.contains(&token), "{listed}");
    // Every change is a revision, newest first.
    let revisions = f.manager.revisions(None, 10).await.unwrap();
    assert!(revisions.len() >= 2);
    assert!(revisions.iter().all(|r| r.actor == "admin"));
    assert!(
        !serde_json::to_string(&revisions[revisions.len() - 1].changes)
            .unwrap()
            .contains(&token)
    );
}

#[tokio::test]
async fn invalid_changes_are_refused_whole_with_a_pointer() {
    let f = fixture().await;
    web(&f).await;
    let before = f.manager.source("web").await.unwrap();
    let err = f
        .manager
        .create_mapping(
            "admin",
            "web",
            "production",
            None,
            json!({"event": "Signed Up", "action": "trigger_workflow", "recipients": "userId"}),
        )
        .await
        .unwrap_err();
    let ManageError::Invalid(errors) = err else {
        panic!("expected invalid, got {err:?}")
    };
    assert_eq!(errors[0].pointer, "/workflow", "{errors:?}");
    let err = f
        .manager
        .update_environment(
            "admin",
            "web",
            "production",
            None,
            json!({"dedup": {"window": "soon"}}),
        )
        .await
        .unwrap_err();
    let ManageError::Invalid(errors) = err else {
        panic!("expected invalid, got {err:?}")
    };
    assert_eq!(errors[0].pointer, "/environments/production/dedup/window");
    assert_eq!(
        f.manager.source("web").await.unwrap(),
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_a_current_one_passes() {
    let f = fixture().await;
    web(&f).await;
    let etag = f.manager.source("web").await.unwrap()["etag"]
        .as_str()
        .unwrap()
        .to_owned();
    f.manager
        .update_source("admin", "web", Some(&etag), json!({"name": "Website"}))
        .await
        .unwrap();
    let stale = f
        .manager
        .update_source("admin", "web", Some(&etag), json!({"name": "Site"}))
        .await;
    assert!(matches!(stale, Err(ManageError::Stale { .. })), "{stale:?}");
    assert_eq!(
        f.manager.source("web").await.unwrap()["name"],
        json!("Website")
    );
}

#[tokio::test]
async fn a_shared_credential_or_taken_key_conflicts() {
    let f = fixture().await;
    web(&f).await;
    let again = f
        .manager
        .create_source("admin", json!({"key": "web", "kind": "segment"}))
        .await;
    assert!(
        matches!(again, Err(ManageError::Conflict { .. })),
        "{again:?}"
    );
    let shared = f
        .manager
        .create_source(
            "admin",
            json!({"key": "other", "kind": "http-legacy",
                   "environments": {"development": {"token": "tok_file_0123456789abcdefghij"}}}),
        )
        .await;
    let Err(ManageError::Conflict { pointer, .. }) = shared else {
        panic!("expected a conflict, got {shared:?}")
    };
    assert_eq!(pointer, "/environments/development/token");
}

#[tokio::test]
async fn credential_conflicts_are_by_kind_retired_tokens_included_and_name_the_holder() {
    let f = fixture().await;
    let old_token = web(&f).await;
    let write_key = f
        .manager
        .reveal("admin", "web", "production", Credential::WriteKey)
        .await
        .unwrap();
    let shared_key = f
        .manager
        .create_source(
            "admin",
            json!({"key": "other", "kind": "segment",
                   "environments": {"development": {"write_key": write_key}}}),
        )
        .await;
    let Err(ManageError::Conflict { pointer, message }) = shared_key else {
        panic!("expected a conflict, got {shared_key:?}")
    };
    assert_eq!(pointer, "/environments/development/write_key");
    assert!(message.contains("web/production"), "{message}");
    // The same value as a different kind of credential routes nothing
    // twice, so it is not shared.
    f.manager
        .create_source(
            "admin",
            json!({"key": "other", "kind": "http-legacy",
                   "environments": {"production": {"token": write_key}}}),
        )
        .await
        .unwrap();
    // A rotated token still routes in its grace period, so it stays taken.
    f.manager
        .rotate(
            "admin",
            "web",
            "production",
            Credential::Token,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let retired = f
        .manager
        .create_source(
            "admin",
            json!({"key": "third", "kind": "http-legacy",
                   "environments": {"development": {"token": old_token}}}),
        )
        .await;
    let Err(ManageError::Conflict { pointer, message }) = retired else {
        panic!("expected a conflict, got {retired:?}")
    };
    assert_eq!(pointer, "/environments/development/token");
    assert!(message.contains("web/production"), "{message}");
}

#[tokio::test]
async fn file_sources_are_read_only_but_their_switches_change() {
    let f = fixture().await;
    let view = f.manager.source("from-file").await.unwrap();
    assert_eq!(view["managed_by"], json!("file"));
    let refused = f
        .manager
        .update_source("admin", "from-file", None, json!({"name": "x"}))
        .await;
    assert!(
        matches!(refused, Err(ManageError::ManagedByFile(_))),
        "{refused:?}"
    );
    let clash = f
        .manager
        .create_source("admin", json!({"key": "from-file", "kind": "http"}))
        .await;
    assert!(
        matches!(clash, Err(ManageError::ManagedByFile(_))),
        "{clash:?}"
    );
    f.manager
        .update_mapping(
            "admin",
            "from-file",
            "development",
            "welcome",
            None,
            json!({"active": false}),
        )
        .await
        .unwrap();
    let receipt = f
        .manager
        .pipeline()
        .receive("tok_file_0123456789abcdefghij", track("Signed Up"))
        .await
        .unwrap();
    let detail = f
        .store
        .event_detail(receipt.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(detail.actions[0].plan.outcome, PlanOutcome::Skipped { .. }),
        "{:?}",
        detail.actions[0]
    );
    let revisions = f.manager.revisions(None, 1).await.unwrap();
    assert!(revisions[0].summary.contains("welcome"), "{revisions:?}");
}

#[tokio::test]
async fn delete_is_refused_with_mappings_unless_forced_then_urls_answer_404() {
    let f = fixture().await;
    let token = web(&f).await;
    f.manager
        .create_mapping(
            "admin",
            "web",
            "production",
            None,
            serde_json::from_str(MAPPING).unwrap(),
        )
        .await
        .unwrap();
    let refused = f.manager.delete_source("admin", "web", None, false).await;
    assert!(
        matches!(refused, Err(ManageError::Conflict { .. })),
        "{refused:?}"
    );
    let accepted = f
        .manager
        .pipeline()
        .receive(&token, track("Signed Up"))
        .await
        .unwrap();
    f.manager
        .delete_source("admin", "web", None, true)
        .await
        .unwrap();
    let gone = f
        .manager
        .pipeline()
        .receive(&token, track("Signed Up"))
        .await;
    assert!(matches!(gone, Err(PipelineError::UnknownToken)), "{gone:?}");
    // Its log is kept.
    let page = f
        .store
        .list_events(
            &EventFilter {
                source: Some("web".into()),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(page.items.iter().any(|e| e.id == accepted.event_ids[0]));
}

#[tokio::test]
async fn a_rotated_token_keeps_working_for_its_grace_only() {
    let f = fixture().await;
    let old = web(&f).await;
    let rotated = f
        .manager
        .rotate(
            "admin",
            "web",
            "production",
            Credential::Token,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let new = rotated.secrets["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let p = f.manager.pipeline();
    assert!(p.receive(&new, track("A")).await.is_ok());
    assert!(
        p.receive(&old, track("A")).await.is_ok(),
        "within its grace"
    );
    // A rotation without grace retires the old token at once.
    let again = f
        .manager
        .rotate(
            "admin",
            "web",
            "production",
            Credential::Token,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(matches!(
        p.receive(&new, track("A")).await,
        Err(PipelineError::UnknownToken)
    ));
    let newest = again.secrets["token"].as_str().unwrap();
    assert!(p.receive(newest, track("A")).await.is_ok());
    // Reveal gives it in full and leaves a record without it.
    assert_eq!(
        f.manager
            .reveal("admin", "web", "production", Credential::Token)
            .await
            .unwrap(),
        newest
    );
    let last = &f.manager.revisions(None, 1).await.unwrap()[0];
    assert!(last.summary.starts_with("reveal token"), "{last:?}");
    assert!(!last.changes.to_string().contains(newest));
}

#[tokio::test]
async fn promote_shows_the_diff_then_copies_the_mappings() {
    let f = fixture().await;
    web(&f).await;
    f.manager
        .create_mapping(
            "admin",
            "web",
            "development",
            None,
            serde_json::from_str(MAPPING).unwrap(),
        )
        .await
        .unwrap();
    let (changes, revision) = f
        .manager
        .promote("admin", "web", "development", "production", true)
        .await
        .unwrap();
    assert!(revision.is_none(), "a dry run writes nothing");
    assert!(!changes.is_empty());
    assert!(
        f.manager
            .mappings("web", "production")
            .await
            .unwrap()
            .is_empty()
    );
    let (_, revision) = f
        .manager
        .promote("admin", "web", "development", "production", false)
        .await
        .unwrap();
    assert!(revision.is_some());
    let promoted = f.manager.mappings("web", "production").await.unwrap();
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0]["id"], json!("Signed Up:trigger_workflow"));
}

#[tokio::test]
async fn stored_sources_come_back_after_a_restart() {
    let f = fixture().await;
    let token = web(&f).await;
    let Fixture {
        manager,
        store,
        _dir,
    } = f;
    drop(manager);
    drop(store);
    // The SQLite store is single-writer: wait for the first to let go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let f = fixture_at(_dir).await;
    assert!(
        f.manager
            .pipeline()
            .receive(&token, track("A"))
            .await
            .is_ok()
    );
    let view: Value = f.manager.source("web").await.unwrap();
    assert_eq!(view["managed_by"], json!("api"));
}

#[tokio::test]
async fn with_a_secrets_key_the_store_holds_no_usable_secret() {
    const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let dir = tempfile::tempdir().unwrap();
    let open = |key: Option<&'static str>, dir: std::path::PathBuf| async move {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(&dir).await.unwrap());
        let text = match key {
            Some(k) => format!("[store]\nsecrets_key = \"{k}\"\n{FILE}"),
            None => FILE.to_owned(),
        };
        let config = Arc::new(config::load("t.toml", &text, &|_| None).unwrap());
        let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
        (Manager::new(pipeline, Vec::new()), store)
    };
    let (manager, store) = open(Some(KEY), dir.path().to_owned()).await;
    let created = manager
        .create_source(
            "admin",
            json!({"key": "web", "kind": "segment",
                   "environments": {"production": {"verification":
                       {"scheme": "bearer", "secret": "bearer-secret-0123456789"}}}}),
        )
        .await
        .unwrap();
    let token = created.secrets["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, stored) = store.config_sources_since(0).await.unwrap();
    let text = stored[0].document.clone().unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(!text.contains("bearer-secret"), "{text}");
    assert!(text.contains("sealed:v1:"), "{text}");
    // Served, revealed and exported in full by the process with the key.
    let authorized =
        |r: RawRequest| r.with_header("authorization", "Bearer bearer-secret-0123456789");
    assert!(
        manager
            .pipeline()
            .receive(&token, authorized(track("A")))
            .await
            .is_ok()
    );
    assert_eq!(
        manager
            .reveal("admin", "web", "production", Credential::Token)
            .await
            .unwrap(),
        token
    );
    assert!(manager.export().await.unwrap().contains(&token));
    drop((manager, store));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Without the key the stored source is not served (nothing to route by).
    let (manager, store) = open(None, dir.path().to_owned()).await;
    let refused = manager
        .pipeline()
        .receive(&token, authorized(track("A")))
        .await;
    assert!(
        matches!(refused, Err(PipelineError::UnknownToken)),
        "{refused:?}"
    );
    drop((manager, store));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (manager, _store) = open(Some(KEY), dir.path().to_owned()).await;
    assert!(
        manager
            .pipeline()
            .receive(&token, authorized(track("A")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_environment_declared_later_is_added_to_a_stored_source() {
    let dir = tempfile::tempdir().unwrap();
    let open = |text: &'static str, dir: std::path::PathBuf| async move {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(&dir).await.unwrap());
        let config = Arc::new(config::load("t.toml", text, &|_| None).unwrap());
        let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
        (Manager::new(pipeline, Vec::new()), store)
    };
    let (manager, store) = open("[environments.development]\n", dir.path().to_owned()).await;
    manager
        .create_source("admin", json!({"key": "web", "kind": "segment"}))
        .await
        .unwrap();
    drop((manager, store));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (manager, _store) = open(
        "[environments.development]\n[environments.production]\n",
        dir.path().to_owned(),
    )
    .await;
    let missing = manager
        .update_environment("admin", "web", "production", None, json!({}))
        .await;
    assert!(
        matches!(missing, Err(ManageError::NotFound { .. })),
        "{missing:?}"
    );
    let added = manager
        .create_environment("admin", "web", "production", json!({"identify": false}))
        .await
        .unwrap();
    let token = added.secrets["token"].as_str().unwrap().to_owned();
    assert!(
        added.secrets["write_key"].is_string(),
        "a segment source gets a write key"
    );
    assert!(manager.pipeline().receive(&token, track("A")).await.is_ok());
    let again = manager
        .create_environment("admin", "web", "production", json!({}))
        .await;
    assert!(
        matches!(again, Err(ManageError::Conflict { .. })),
        "{again:?}"
    );
    let undeclared = manager
        .create_environment("admin", "web", "staging", json!({}))
        .await;
    assert!(
        matches!(undeclared, Err(ManageError::NotFound { .. })),
        "{undeclared:?}"
    );
}

#[tokio::test]
async fn a_recreated_mapping_does_not_inherit_a_deleted_ones_switch() {
    let f = fixture().await;
    let token = web(&f).await;
    let mapping: Value = serde_json::from_str(MAPPING).unwrap();
    f.manager
        .create_mapping("admin", "web", "production", None, mapping.clone())
        .await
        .unwrap();
    let id = "Signed Up:trigger_workflow";
    f.manager
        .update_mapping(
            "admin",
            "web",
            "production",
            id,
            None,
            json!({"active": false}),
        )
        .await
        .unwrap();
    f.manager
        .delete_mapping("admin", "web", "production", id, None)
        .await
        .unwrap();
    f.manager
        .create_mapping("admin", "web", "production", None, mapping)
        .await
        .unwrap();
    assert_eq!(
        f.manager.mapping("web", "production", id).await.unwrap()["active"],
        json!(true)
    );
    let receipt = f
        .manager
        .pipeline()
        .receive(&token, track("Signed Up"))
        .await
        .unwrap();
    let detail = f
        .store
        .event_detail(receipt.event_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(detail.actions[0].plan.outcome, PlanOutcome::Planned { .. }),
        "{:?}",
        detail.actions[0].plan
    );
}
