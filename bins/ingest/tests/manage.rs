//! The management API through the router (no socket): each route's answer,
//! and its abuse cases (no token, malformed and invalid bodies, stale
//! versions, shared credentials, file sources, oversized bodies, secrets).

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tributary_core::config;
use tributary_ingest::{AppState, app};
use tributary_pipeline::Pipeline;
use tributary_store::{SqliteStore, Store};

const ADMIN: &str = "admin-token-manage-0123456789";
const FILE_TOKEN: &str = "tok_file_manage_0123456789abc";

fn config_text() -> String {
    format!(
        r#"
[admin]
token = "{ADMIN}"

[environments.development]
[environments.production]

[[sources]]
key = "from-file"
kind = "http-legacy"

[sources.environments.development]
token = "{FILE_TOKEN}"

[[sources.environments.development.mappings]]
id = "welcome"
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
recipients = "userId"
"#
    )
}

struct Api {
    router: Router,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

impl Api {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
        let text = config_text();
        let config = Arc::new(config::load("t.toml", &text, &|_| None).unwrap());
        let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
        let state =
            AppState::new(pipeline).with_file_documents(config::source_documents(&text).unwrap());
        Self {
            router: app(state),
            store,
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(request.body(body).unwrap()).await
    }

    async fn receive(&self, token: &str, event: &str) -> StatusCode {
        let body = json!({"type": "track", "event": event, "userId": "u1"}).to_string();
        let request = Request::builder()
            .method("POST")
            .uri(format!("/integrations/receive/{token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await.status
    }

    async fn create_web(&self) -> Answer {
        let created = self
            .call(
                "POST",
                "/sources",
                Some(json!({"key": "web", "kind": "segment", "name": "Web site"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        created
    }
}

const MAPPING: &str = r#"{"event": "Signed Up", "action": "trigger_workflow",
    "workflow": "welcome", "recipients": "userId"}"#;

#[tokio::test]
async fn a_source_made_through_the_api_receives_and_plans_at_once() {
    let api = Api::new().await;
    let created = api.create_web().await;
    let token = created.body["secrets"]["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = created.body["secrets"]["production"]["receive_url"]
        .as_str()
        .unwrap();
    assert!(url.ends_with(&format!("/integrations/receive/{token}")));
    assert!(created.body["secrets"]["production"]["write_key"].is_string());
    assert_eq!(
        created.headers[header::CACHE_CONTROL],
        "no-store",
        "an answer with a secret is never cached"
    );
    assert_eq!(api.receive(&token, "Signed Up").await, StatusCode::OK);

    let mapping = api
        .call(
            "POST",
            "/sources/web/environments/production/mappings",
            Some(serde_json::from_str(MAPPING).unwrap()),
        )
        .await;
    assert_eq!(mapping.status, StatusCode::CREATED, "{}", mapping.text);
    assert_eq!(api.receive(&token, "Signed Up").await, StatusCode::OK);
    let page = api.call("GET", "/actions?limit=10", None).await;
    assert_eq!(
        page.body["items"].as_array().map(Vec::len),
        Some(1),
        "the second event planned the new mapping's trigger: {}",
        page.text
    );

    // Reads mask every secret; the list shows status per environment.
    let listed = api.call("GET", "/sources", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.text.contains(&token), "{}", listed.text);
    let web = listed.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "web")
        .unwrap()
        .clone();
    assert_eq!(web["managed_by"], "api");
    let production = &web["environments"]["production"];
    let events = api.call("GET", "/events?limit=10", None).await;
    assert_eq!(
        production["status"]["events_30d"], 2,
        "{production} {}",
        events.text
    );
    assert_eq!(production["status"]["active_mappings"], 1);
    assert!(
        production["token"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let file = listed.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "from-file")
        .unwrap();
    assert_eq!(file["managed_by"], "file");
    assert!(!listed.text.contains(FILE_TOKEN));

    // Revisions: who (the admin credential's fingerprint, not the token) and what.
    let revisions = api.call("GET", "/config/revisions", None).await;
    assert_eq!(revisions.status, StatusCode::OK);
    let items = revisions.body["revisions"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin:sha256:")
    );
    assert!(!revisions.text.contains(ADMIN) && !revisions.text.contains(&token));
}

#[tokio::test]
async fn the_management_api_needs_the_admin_token() {
    let api = Api::new().await;
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/sources")
        .header(header::AUTHORIZATION, "Bearer not-the-token-at-all")
        .body(Body::from(
            json!({"key": "web", "kind": "segment"}).to_string(),
        ))
        .unwrap();
    assert_eq!(api.send(request).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.store.config_head().await.unwrap(),
        0,
        "nothing was made"
    );
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field_and_change_nothing() {
    let api = Api::new().await;
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/sources")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::from("{\"key\": "))
        .unwrap();
    let malformed = api.send(request).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["error"]["code"], "malformed_json");

    let bad_key = api
        .call(
            "POST",
            "/sources",
            Some(json!({"key": "../etc", "kind": "segment"})),
        )
        .await;
    assert_eq!(bad_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_key.body["error"]["field"], "/key", "{}", bad_key.text);

    api.create_web().await;
    let invalid = api
        .call(
            "POST",
            "/sources/web/environments/production/mappings",
            Some(
                json!({"event": "Signed Up", "action": "trigger_workflow", "recipients": "userId"}),
            ),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.text
    );
    assert_eq!(invalid.body["error"]["field"], "/workflow");
    let unknown = api
        .call(
            "PATCH",
            "/sources/web/environments/production",
            Some(json!({"dedup": {"windw": "1h"}})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        unknown.body["error"]["field"], "/environments/production/dedup/windw",
        "{}",
        unknown.text
    );
    let mappings = api
        .call("GET", "/sources/web/environments/production/mappings", None)
        .await;
    assert_eq!(mappings.body["mappings"], json!([]), "nothing half-made");

    // Larger than the admin API reads.
    let huge = "x".repeat(3 << 20);
    let big = api
        .call(
            "POST",
            "/sources",
            Some(json!({"key": "big", "kind": "http", "name": huge})),
        )
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_stale_version_gets_412_and_the_current_one_passes() {
    let api = Api::new().await;
    api.create_web().await;
    let read = api.call("GET", "/sources/web", None).await;
    let etag = read.headers[header::ETAG].to_str().unwrap().to_owned();
    let first = api
        .call_with(
            "PATCH",
            "/sources/web",
            Some(json!({"description": "the marketing site"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_ne!(first.headers[header::ETAG].to_str().unwrap(), etag);
    let stale = api
        .call_with(
            "PATCH",
            "/sources/web",
            Some(json!({"description": "lost update"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let now = api.call("GET", "/sources/web", None).await;
    assert_eq!(now.body["description"], "the marketing site");
}

#[tokio::test]
async fn conflicts_unknowns_and_file_sources() {
    let api = Api::new().await;
    api.create_web().await;
    let again = api
        .call(
            "POST",
            "/sources",
            Some(json!({"key": "web", "kind": "segment"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let shared = api
        .call(
            "POST",
            "/sources",
            Some(json!({"key": "copy", "kind": "http-legacy",
                "environments": {"development": {"token": FILE_TOKEN}}})),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CONFLICT, "{}", shared.text);
    assert_eq!(
        shared.body["error"]["field"],
        "/environments/development/token"
    );
    for path in [
        "/sources/nope",
        "/sources/web/environments/staging/mappings",
        "/sources/web/environments/production/mappings/nope",
    ] {
        assert_eq!(
            api.call("GET", path, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let file = api
        .call(
            "PATCH",
            "/sources/from-file",
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(file.status, StatusCode::CONFLICT);
    assert_eq!(file.body["error"]["code"], "managed_by_file");
    // The switch is runtime state and changes on file sources too.
    let switch = api
        .call(
            "PUT",
            "/sources/from-file/environments/development/mappings/welcome",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(switch.status, StatusCode::OK, "{}", switch.text);
    let mapping = api
        .call(
            "GET",
            "/sources/from-file/environments/development/mappings/welcome",
            None,
        )
        .await;
    assert_eq!(mapping.body["active"], false);
}

#[tokio::test]
async fn rotate_reveal_promote_and_delete() {
    let api = Api::new().await;
    let created = api.create_web().await;
    let old = created.body["secrets"]["development"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = api
        .call(
            "POST",
            "/sources/web/environments/development/rotate",
            Some(json!({"credential": "token", "grace": "1h"})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new = rotated.body["secrets"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(api.receive(&new, "A").await, StatusCode::OK);
    assert_eq!(api.receive(&old, "A").await, StatusCode::OK, "grace period");
    let bad = api
        .call(
            "POST",
            "/sources/web/environments/development/rotate",
            Some(json!({"credential": "password"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "/credential");
    let revealed = api
        .call(
            "POST",
            "/sources/web/environments/development/reveal",
            Some(json!({"credential": "token"})),
        )
        .await;
    assert_eq!(revealed.body["token"], json!(new));

    api.call(
        "POST",
        "/sources/web/environments/development/mappings",
        Some(serde_json::from_str(MAPPING).unwrap()),
    )
    .await;
    let dry = api
        .call(
            "POST",
            "/sources/web/promote",
            Some(json!({"from": "development", "to": "production", "dry_run": true})),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert!(!dry.body["changes"].as_array().unwrap().is_empty());
    assert!(dry.body["revision"].is_null());
    let applied = api
        .call(
            "POST",
            "/sources/web/promote",
            Some(json!({"from": "development", "to": "production"})),
        )
        .await;
    assert!(applied.body["revision"].is_u64(), "{}", applied.text);
    let production = api
        .call("GET", "/sources/web/environments/production/mappings", None)
        .await;
    assert_eq!(production.body["mappings"].as_array().unwrap().len(), 1);

    let refused = api.call("DELETE", "/sources/web", None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let deleted = api.call("DELETE", "/sources/web?force=true", None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(api.receive(&new, "A").await, StatusCode::NOT_FOUND);
    assert_eq!(
        api.call("GET", "/sources/web", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rehearse_runs_a_payload_through_current_or_proposed_mappings_and_stores_nothing() {
    let api = Api::new().await;
    api.create_web().await;
    let payload = json!({"type": "track", "event": "Signed Up", "userId": "u1",
                         "messageId": "m-1", "properties": {"plan": "team"}});
    let none = api
        .call(
            "POST",
            "/sources/web/environments/production/rehearse",
            Some(json!({"body": payload})),
        )
        .await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text);
    assert_eq!(none.body["result"], "ok");
    assert_eq!(none.body["events"][0]["event"]["event"], "Signed Up");
    assert_eq!(none.body["events"][0]["dedup_key"], "m-1");
    assert_eq!(none.body["events"][0]["plans"], json!([]), "no mapping yet");

    let proposed = json!([{"event": "Signed Up", "action": "trigger_workflow",
        "workflow": "welcome", "recipients": "userId",
        "tenant": "context.groupId", "data_fields": {"plan": "properties.plan"}}]);
    let with = api
        .call(
            "POST",
            "/sources/web/environments/production/rehearse",
            Some(json!({"body": payload, "mappings": proposed})),
        )
        .await;
    assert_eq!(with.body["proposed"], true, "{}", with.text);
    let plan = &with.body["events"][0]["plans"][0];
    assert_eq!(plan["status"], "planned", "{plan}");
    assert_eq!(plan["payload"]["data"]["plan"], "team", "{plan}");
    assert_eq!(plan["notes"][0]["code"], "path_reached_nothing", "{plan}");
    assert_eq!(plan["notes"][0]["path"], "context.groupId");

    // A proposed mapping is validated like a saved one, pointing into the list.
    let invalid = api
        .call(
            "POST",
            "/sources/web/environments/production/rehearse",
            Some(json!({"body": payload, "mappings": [{"event": "X", "action": "nope"}]})),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.text
    );
    assert_eq!(invalid.body["error"]["field"], "/mappings/0/action");

    // What a real request would refuse is a refused rehearsal, with its status.
    let refused = api
        .call(
            "POST",
            "/sources/web/environments/production/rehearse",
            Some(json!({"body": "{not json"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_eq!(refused.body["result"], "refused", "{}", refused.text);
    assert_eq!(refused.body["status"], 400);

    // Nothing was stored and nothing saved.
    let events = api.call("GET", "/events?limit=10", None).await;
    assert_eq!(events.body["items"], json!([]), "{}", events.text);
    let mappings = api
        .call("GET", "/sources/web/environments/production/mappings", None)
        .await;
    assert_eq!(mappings.body["mappings"], json!([]));
    let unknown = api
        .call(
            "POST",
            "/sources/web/environments/staging/rehearse",
            Some(json!({"body": payload})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_event_records_its_revision_its_verification_and_what_it_replays() {
    let api = Api::new().await;
    let created = api.create_web().await;
    let token = created.body["secrets"]["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A signature is checked but not enforced: the event is kept, and says so.
    let changed = api
        .call(
            "PATCH",
            "/sources/web/environments/production",
            Some(json!({"verification": {"scheme": "segment-signature",
                "secret": "a-shared-secret-0123456789", "enforce": false}})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let revision = changed.body["revision"].as_u64().unwrap();
    assert_eq!(api.receive(&token, "Signed Up").await, StatusCode::OK);
    let page = api.call("GET", "/events?limit=1", None).await;
    let id = page.body["items"][0]["id"].as_str().unwrap().to_owned();
    let detail = api.call("GET", &format!("/events/{id}"), None).await;
    assert_eq!(
        detail.body["event"]["config_revision"], revision,
        "{}",
        detail.text
    );
    assert_eq!(detail.body["event"]["verification"], "unenforced:failed");

    let replayed = api
        .call("POST", &format!("/events/{id}/replay"), None)
        .await;
    assert_eq!(replayed.status, StatusCode::CREATED, "{}", replayed.text);
    let new_id = replayed.body["event_id"].as_str().unwrap();
    let detail = api.call("GET", &format!("/events/{new_id}"), None).await;
    assert_eq!(
        detail.body["event"]["replay_of"],
        json!(id),
        "{}",
        detail.text
    );
    assert_eq!(detail.body["event"]["config_revision"], revision);
}

#[tokio::test]
async fn the_action_log_filters_by_source_action_user_and_event() {
    let api = Api::new().await;
    assert_eq!(
        api.receive(FILE_TOKEN, "Signed Up").await,
        StatusCode::NO_CONTENT
    );
    let created = api.create_web().await;
    let token = created.body["secrets"]["production"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        "POST",
        "/sources/web/environments/production/mappings",
        Some(serde_json::from_str(MAPPING).unwrap()),
    )
    .await;
    assert_eq!(api.receive(&token, "Signed Up").await, StatusCode::OK);
    let all = api.call("GET", "/actions", None).await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        all.text
    );
    let web = api.call("GET", "/actions?source=web", None).await;
    let items = web.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", web.text);
    let event_id = items[0]["event_id"].as_str().unwrap().to_owned();
    for query in [
        format!("event_id={event_id}"),
        "action=trigger_workflow&environment=production".to_owned(),
        "user_id=u1&source=web".to_owned(),
    ] {
        let page = api.call("GET", &format!("/actions?{query}"), None).await;
        assert_eq!(
            page.body["items"].as_array().unwrap().len(),
            1,
            "{query}: {}",
            page.text
        );
    }
    let none = api.call("GET", "/actions?source=nope", None).await;
    assert_eq!(none.body["items"], json!([]));
    for (query, code) in [
        ("action=launch_rockets", "invalid_action"),
        ("event_id=x", "invalid_event_id"),
    ] {
        let bad = api.call("GET", &format!("/actions?{query}"), None).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad.body["error"]["code"], code);
    }
    let bad_time = api.call("GET", "/actions?since=yesterday", None).await;
    assert_eq!(bad_time.status, StatusCode::BAD_REQUEST);
}

/// Knock's Management API shape under `/api/mapi/v1`.
async fn mapi(api: &Api, method: &str, path: &str, body: Option<Value>) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/api/mapi/v1{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json");
    if body.is_none() {
        request = request.header(header::CONTENT_LENGTH, "0");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    api.send(request.body(body).unwrap()).await
}

#[tokio::test]
async fn a_script_written_for_knocks_management_api_works_against_ours() {
    let api = Api::new().await;
    let upsert = json!({"source": {
        "name": "Shop", "description": "orders", "kind": "http",
        "settings": {"event_type_path": "body.type", "idempotency_key_path": "body.id"},
        "mappings": [{"event_type": "order.paid", "action_type": "workflows_trigger",
                      "action_parameters": {"workflow": "receipt", "recipients": "body.customer"}}]
    }});
    let put = mapi(
        &api,
        "PUT",
        "/sources/shop?environment=production",
        Some(upsert),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let shown = &put.body["source"]["environment_settings"]["production"];
    assert_eq!(
        shown["settings"]["idempotency_key_path"], "body.id",
        "{}",
        put.text
    );
    assert_eq!(shown["mappings"][0]["action_type"], "workflows_trigger");
    assert_eq!(
        shown["mappings"][0]["action_parameters"]["workflow"],
        "receipt"
    );

    // The token comes from our API (Knock's shape masks it like every read).
    let revealed = api
        .call(
            "POST",
            "/sources/shop/environments/production/reveal",
            Some(json!({"credential": "token"})),
        )
        .await;
    let token = revealed.body["token"].as_str().unwrap().to_owned();
    let order = json!({"type": "order.paid", "id": "o-1", "customer": "u1"}).to_string();
    let request = Request::builder()
        .method("POST")
        .uri(format!("/integrations/receive/{token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(order))
        .unwrap();
    assert_eq!(api.send(request).await.status, StatusCode::OK);

    let listed = mapi(&api, "GET", "/sources?environment=production", None).await;
    assert!(
        listed.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "shop"),
        "{}",
        listed.text
    );
    let events = mapi(
        &api,
        "GET",
        "/sources/shop/events?environment=production",
        None,
    )
    .await;
    assert_eq!(
        events.body["entries"][0]["event"], "order.paid",
        "{}",
        events.text
    );
    let status = mapi(
        &api,
        "GET",
        "/sources/shop/status?environment=production",
        None,
    )
    .await;
    assert_eq!(status.body["events_count"], 1, "{}", status.text);
    assert_eq!(status.body["mappings_count"], 1);
    let logs = mapi(
        &api,
        "GET",
        "/sources/shop/logs?environment=production&include=actions",
        None,
    )
    .await;
    let entry = &logs.body["entries"][0];
    assert_eq!(entry["event"], "order.paid", "{}", logs.text);
    assert_eq!(entry["actions"][0]["action_type"], "workflows_trigger");

    let rehearsed = mapi(
        &api,
        "POST",
        "/sources/shop/rehearse?environment=production",
        Some(json!({"payload": {"body": {"type": "order.paid", "id": "o-2", "customer": "u2"}}})),
    )
    .await;
    assert_eq!(rehearsed.body["status"], "ok", "{}", rehearsed.text);
    assert_eq!(rehearsed.body["successful_action_logs_count"], 1);
    let after = mapi(
        &api,
        "GET",
        "/sources/shop/status?environment=production",
        None,
    )
    .await;
    assert_eq!(after.body["events_count"], 1, "a rehearsal stores nothing");

    // Abuse: no environment, a bad action type, no token.
    let missing = mapi(&api, "GET", "/sources/shop/status", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let bad = mapi(
        &api,
        "PUT",
        "/sources/shop?environment=production",
        Some(json!({"source": {"mappings": [{"event_type": "x", "action_type": "launch"}]}})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.body["error"]["field"], "/source/mappings/0/action_type");
    let anonymous = Request::builder()
        .uri("/api/mapi/v1/sources")
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.send(anonymous).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_console_can_be_left_off_while_the_api_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let text = config_text().replace(
        &format!("token = \"{ADMIN}\"\n"),
        &format!("token = \"{ADMIN}\"\nconsole = false\n"),
    );
    let config = Arc::new(config::load("t.toml", &text, &|_| None).unwrap());
    assert!(!config.admin.console);
    let pipeline = Arc::new(Pipeline::new(config, store).await.unwrap());
    let router = app(AppState::new(pipeline));
    let page = router
        .clone()
        .oneshot(
            Request::get("/console/sign-in")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let api = router
        .oneshot(
            Request::get("/api/v1/sources")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    // The same page is there when the console is on.
    let on = Api::new().await;
    let page = on
        .send(
            Request::get("/console/sign-in")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}
