//! The ingest service end to end over real HTTP on loopback: every way in
//! built so far, its answers (docs/product-decisions.md, "Answers"), and the admin API.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use flate2::{Compression, write::GzEncoder};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use tributary_actions::{PoolSettings, WorkerPool};
use tributary_core::config;
use tributary_ingest::{AppState, app, serve};
use tributary_pipeline::Pipeline;
use tributary_store::{LocalExecution, SqliteStore, Store};

const SEGMENT: &str = "tok_segment_e2e_0123456789ab";
const SEGMENT_BATCHED: &str = "tok_segbatch_e2e_0123456789a";
const RUDDER: &str = "tok_rudder_e2e_0123456789abc";
const LEGACY: &str = "tok_legacy_e2e_0123456789abc";
const ADMIN: &str = "admin-token-e2e-0123456789";

fn config_text(max_body: usize) -> String {
    format!(
        r#"
[server]
max_body_bytes = {max_body}

[admin]
token = "{ADMIN}"

[environments.development]

[[sources]]
key = "segment"
kind = "segment"

[sources.environments.development]
token = "{SEGMENT}"
write_key = "wk_e2e"

[sources.environments.development.verification]
scheme = "segment-signature"
secret = "shared-secret"

[[sources.environments.development.mappings]]
id = "welcome"
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"

[[sources]]
key = "segment-batched"
kind = "segment"

[sources.environments.development]
token = "{SEGMENT_BATCHED}"

[sources.environments.development.verification]
scheme = "segment-signature"
secret = "shared-secret"
signed_part = "first-element"

[[sources]]
key = "rudder"
kind = "rudderstack"

[sources.environments.development]
token = "{RUDDER}"

[sources.environments.development.verification]
scheme = "shared-secret"
secret = "rudder-secret"

[[sources]]
key = "legacy"
kind = "http-legacy"

[sources.environments.development]
token = "{LEGACY}"

[[sources.environments.development.mappings]]
event = "Invoice Paid"
action = "trigger_workflow"
workflow = "invoice-paid"
recipients = "data.recipientId"
"#
    )
}

mod support;

use support::TestServer as Server;

impl Server {
    async fn e2e(max_body: usize) -> Self {
        Self::start(&config_text(max_body), true).await
    }

    async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn sign_sha1(secret: &str, bytes: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn legacy_http_answers_204_and_refuses_what_the_product_refuses() {
    let s = Server::e2e(1 << 20).await;
    let path = format!("/integrations/receive/{LEGACY}");
    let (status, body) = s
        .post(&path, r#"{"type":"track","event":"Invoice Paid","userId":"u1","properties":{"recipientId":"r1"}}"#, &[JSON])
        .await;
    assert_eq!((status, body), (204, Value::Null));
    for (body, status, code) in [
        (r#"{"type":"identify","userId":"u1"}"#, 422, None),
        (r#"{"type":"track","userId":"u1"}"#, 422, None),
        (r#"{"type":"track","event":""}"#, 422, None),
        (r#"[{"type":"track","event":"A"}]"#, 422, None),
        (
            r#"{"type":"track","event":"A","properties":"x"}"#,
            422,
            None,
        ),
        ("{not json", 400, Some("malformed_json")),
    ] {
        let (got, answer) = s.post(&path, body, &[JSON]).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
        assert!(answer["error"]["message"].is_string());
        if let Some(code) = code {
            assert_eq!(answer["error"]["code"], code);
        } else {
            assert!(
                answer["error"]["field"].is_string(),
                "schema errors name the field: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn a_signature_over_one_event_does_not_vouch_for_events_appended_to_it() {
    let s = Server::e2e(1 << 20).await;
    let path = format!("/integrations/receive/{SEGMENT}");
    // A signed one-event request, as an attacker might have captured it.
    let first = r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"cap-1"}"#;
    let signature = sign_sha1("shared-secret", first.as_bytes());
    let forged = format!(
        r#"[{first},{{"type":"identify","userId":"u1","traits":{{"email":"evil@example.org"}},"messageId":"cap-2"}}]"#
    );
    let (status, answer) = s
        .post(&path, forged, &[JSON, ("x-signature", &signature)])
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "signature_mismatch");

    // The same batch signed whole is accepted.
    let batch = format!(
        r#"[{first},{{"type":"track","event":"Signed Up","userId":"u2","messageId":"cap-3"}}]"#
    );
    let whole = sign_sha1("shared-secret", batch.as_bytes());
    let (status, answer) = s.post(&path, batch, &[JSON, ("x-signature", &whole)]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"accepted": 2, "duplicates": 0}));
}

#[tokio::test]
async fn segment_actions_batch_is_verified_over_the_first_element_where_opted_in() {
    let s = Server::e2e(1 << 20).await;
    let first = r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1"}"#;
    let body = format!(
        r#"[{first},{{"type":"identify","userId":"u1","traits":{{"email":"a@b.c"}},"messageId":"m-2"}}]"#
    );
    let signature = sign_sha1("shared-secret", first.as_bytes());
    let path = format!("/integrations/receive/{SEGMENT_BATCHED}");
    let (status, answer) = s
        .post(&path, body.clone(), &[JSON, ("x-signature", &signature)])
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"accepted": 2, "duplicates": 0}));

    // The same messageIds again: duplicates, answered like a success.
    let (status, answer) = s
        .post(&path, body.clone(), &[JSON, ("x-signature", &signature)])
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": 0, "duplicates": 2}))
    );

    // A wrong signature is refused before anything is parsed.
    let (status, answer) = s
        .post(
            &path,
            body,
            &[JSON, ("x-signature", &sign_sha1("wrong", first.as_bytes()))],
        )
        .await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn rudderstack_with_a_shared_secret_header() {
    let s = Server::e2e(1 << 20).await;
    let path = format!("/integrations/receive/{RUDDER}");
    let body = r#"{"type":"identify","userId":"u1","context":{"traits":{"email":"r@example.com"}},"rudderId":"r-1","messageId":"rm-1","channel":"server","version":"1.1"}"#;
    let (status, answer) = s
        .post(&path, body, &[JSON, ("x-webhook-secret", "rudder-secret")])
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": 1, "duplicates": 0}))
    );
    let (status, _) = s
        .post(&path, body, &[JSON, ("x-webhook-secret", "nope")])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn tracking_api_batch_with_gzip_and_basic_auth() {
    let s = Server::e2e(1 << 20).await;
    let batch = json!({"batch": [
        {"type": "track", "event": "Signed Up", "userId": "u7", "messageId": "t-1"},
        {"type": "page", "name": "Home", "anonymousId": "a1", "messageId": "t-2"}
    ], "sentAt": "2026-11-23T10:00:00.000Z"});
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(batch.to_string().as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap();
    let basic = format!("Basic {}", STANDARD.encode("wk_e2e:"));
    let (status, answer) = s
        .post(
            "/v1/batch",
            gzipped,
            &[
                JSON,
                ("content-encoding", "gzip"),
                ("authorization", &basic),
            ],
        )
        .await;
    assert_eq!((status, answer), (200, json!({"success": true})));
    let (status, answer) = s
        .post(
            "/v1/t",
            r#"{"event":"A","userId":"u"}"#,
            &[JSON, ("authorization", "Basic d3Jvbmc6")],
        )
        .await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn limits_bombs_and_unknown_tokens() {
    let s = Server::e2e(64 * 1024).await;
    let path = format!("/integrations/receive/{LEGACY}");
    let big = format!(
        r#"{{"type":"track","event":"A","properties":{{"pad":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    let (status, answer) = s.post(&path, big, &[JSON]).await;
    assert_eq!(status, 413, "{answer}");

    // 10 MB of zeros compress to ~10 KB: under the wire limit, over the decompressed cap.
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&vec![b'0'; 10 * 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let (status, answer) = s
        .post(&path, bomb, &[JSON, ("content-encoding", "gzip")])
        .await;
    assert_eq!(status, 413, "{answer}");

    let (status, answer) = s
        .post(
            "/integrations/receive/tok_nobody_0123456789abcdef",
            "{}",
            &[JSON],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "unknown_token");

    let (status, _) = s
        .post(&path, "{}", &[JSON, ("content-encoding", "br")])
        .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn admin_api_shows_logs_toggles_mappings_and_replays() {
    let s = Server::e2e(1 << 20).await;
    let unauthorized = s
        .http
        .get(format!("{}/api/v1/events", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);

    let first = r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"adm-1"}"#;
    let sig = sign_sha1("shared-secret", first.as_bytes());
    let path = format!("/integrations/receive/{SEGMENT}");
    assert_eq!(
        s.post(&path, first, &[JSON, ("x-signature", &sig)]).await.0,
        200
    );

    let (status, page) = s
        .admin(
            reqwest::Method::GET,
            "/events?source=segment&status=accepted",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();

    // Wait for the local sink to run the trigger.
    let mut detail = Value::Null;
    for _ in 0..200 {
        detail = s
            .admin(reqwest::Method::GET, &format!("/events/{id}"), None)
            .await
            .1;
        if detail["actions"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(detail["actions"][0]["status"], "succeeded", "{detail}");

    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/sources/segment/environments/development/mappings/welcome",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, dry) = s
        .admin(
            reqwest::Method::POST,
            &format!("/events/{id}/replay?dry_run=true"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(dry["plans"][0]["status"], "skipped");
    assert_eq!(dry["plans"][0]["reason"], "inactive");

    let (status, replayed) = s
        .admin(reqwest::Method::POST, &format!("/events/{id}/replay"), None)
        .await;
    assert_eq!(status, 201, "{replayed}");
    assert_ne!(replayed["event_id"], json!(id));

    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/sources/segment/environments/development/mappings/nope",
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(status, 404);

    let (status, doc) = s.admin(reqwest::Method::GET, "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::e2e(1 << 20).await;
    let health = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Ready once the store answers and the workers' loop has gone round.
    let mut status = 0;
    for _ in 0..100 {
        status = s
            .http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn stalled_workers_make_the_service_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = config::load("r.toml", &config_text(1 << 20), &|_| None).unwrap();
    let sinks = serve::sinks(&config, &store).unwrap();
    let pipeline = Arc::new(
        Pipeline::new(Arc::new(config), store.clone())
            .await
            .unwrap(),
    );
    // A pool that never runs: its loop never goes round.
    let mut state = AppState::new(pipeline);
    state.workers = Some(WorkerPool::new(
        store,
        sinks,
        PoolSettings::default(),
        "never",
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["workers"], "stalled");
}

const WAKE_API_KEY: &str = "sk_test_wake_0123456789abcd";

/// Counts the claim rounds the workers make through it.
struct CountedRounds {
    inner: Arc<dyn Store>,
    rounds: AtomicUsize,
}

#[async_trait::async_trait]
impl tributary_store::Outbox for CountedRounds {
    async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<tributary_store::ClaimedAction>, tributary_store::StoreError> {
        self.inner.claim(owner, limit, lease).await
    }

    async fn claim_running_local(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<tributary_store::ClaimRound, tributary_store::StoreError> {
        self.rounds.fetch_add(1, Ordering::SeqCst);
        self.inner.claim_running_local(owner, limit, lease).await
    }

    async fn finish_attempt(
        &self,
        action: tributary_store::ActionId,
        owner: &str,
        outcome: tributary_store::AttemptOutcome,
    ) -> Result<(), tributary_store::StoreError> {
        self.inner.finish_attempt(action, owner, outcome).await
    }
}

/// An accepted request (to a receive URL or the resource API) wakes the
/// workers only when it left work in the outbox. Actions the store ran at
/// append cost no claim round (on SQLite a job on the writer thread); an
/// action waiting in the outbox is claimed at once, long before the
/// workers' next poll.
#[tokio::test]
async fn requests_wake_the_workers_only_for_work_in_the_outbox() {
    for in_store in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        // The legacy source also takes the resource API's calls.
        let text = config_text(1 << 20).replace(
            &format!("token = \"{LEGACY}\"\n"),
            &format!("token = \"{LEGACY}\"\napi_key = \"{WAKE_API_KEY}\"\n"),
        );
        let config = config::load("w.toml", &text, &|_| None).unwrap();
        let local_execution = if in_store {
            serve::local_execution(&config)
        } else {
            LocalExecution::ThroughSink
        };
        let options = tributary_store::SqliteOptions {
            local_execution,
            ..Default::default()
        };
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_dir_with(dir.path(), options)
                .await
                .unwrap(),
        );
        let sinks = serve::sinks(&config, &store).unwrap();
        let pipeline = Arc::new(
            Pipeline::new(Arc::new(config), store.clone())
                .await
                .unwrap(),
        );
        let outbox = Arc::new(CountedRounds {
            inner: store.clone(),
            rounds: Default::default(),
        });
        // Polls once at start, then only when woken.
        let workers = WorkerPool::new(
            outbox.clone(),
            sinks,
            PoolSettings {
                idle_poll: Duration::from_secs(3600),
                ..PoolSettings::default()
            },
            "wake",
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(workers.clone().run(shutdown.clone()));
        let mut state = AppState::new(pipeline);
        state.workers = Some(workers);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(state)).await });
        while outbox.rounds.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let http = reqwest::Client::new();
        let mut event_ids = Vec::new();
        for n in 0..5 {
            let requests = [
                http.post(format!("{base}/integrations/receive/{LEGACY}"))
                    .header("content-type", "application/json")
                    .body(format!(
                        r#"{{"type":"track","event":"Invoice Paid","messageId":"w{n}","properties":{{"recipientId":"r{n}"}}}}"#
                    )),
                // The same through the resource API: an identify.
                http.put(format!("{base}/v1/users/w{n}"))
                    .bearer_auth(WAKE_API_KEY)
                    .json(&json!({"name": format!("W {n}")})),
            ];
            for request in requests {
                let status = request.send().await.unwrap().status();
                assert!(status.is_success(), "{status}");
                let page = store
                    .list_events(&tributary_store::EventFilter::default(), None, 1)
                    .await
                    .unwrap();
                event_ids.push(page.items[0].id);
            }
        }
        if in_store {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                outbox.rounds.load(Ordering::SeqCst),
                1,
                "a wake with nothing queued"
            );
        } else {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while outbox.rounds.load(Ordering::SeqCst) < 2 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the workers were not woken"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Either way each trigger ran: at append, or claimed by the woken workers.
        for id in event_ids {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let detail = store.event_detail(id).await.unwrap().unwrap();
                if detail
                    .actions
                    .iter()
                    .all(|a| a.status == tributary_store::ActionStatus::Succeeded)
                {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{in_store}: {:?}",
                    detail.actions
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        shutdown.cancel();
    }
}

#[tokio::test]
async fn metrics_count_events_by_source() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = config::load("m.toml", &config_text(1 << 20), &|_| None).unwrap();
    let pipeline = Arc::new(Pipeline::new(Arc::new(config), store).await.unwrap());
    let mut state = AppState::new(pipeline);
    state.metrics = serve::metrics_recorder();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let http = reqwest::Client::new();
    let status = http
        .post(format!("{base}/integrations/receive/{LEGACY}"))
        .header("content-type", "application/json")
        .body(r#"{"type":"track","event":"Invoice Paid","properties":{"recipientId":"r"}}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "tributary_events_received_total{source=\"legacy\"}",
        "tributary_events_accepted_total{source=\"legacy\"}",
        "tributary_outbox_pushed_total{source=\"legacy\"}",
        "tributary_store_commit_batch_size",
        "tributary_store_dedup_index_entries",
        "tributary_store_dedup_index_bytes",
        // Histograms with buckets, so slow answers and steps can be counted
        // per interval.
        "tributary_request_duration_seconds_bucket{route=\"receive\",outcome=\"ok\",le=\"0.01\"}",
        "tributary_store_sqlite_step_seconds_bucket{step=\"journal_sync\",le=\"0.01\"}",
        "tributary_store_sqlite_step_seconds_bucket{step=\"group\",le=\"0.01\"}",
        "tributary_store_sqlite_step_seconds_bucket{step=\"queue\",le=\"0.01\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_filtered_set_of_events_is_replayed() {
    let s = Server::e2e(1 << 20).await;
    let path = format!("/integrations/receive/{LEGACY}");
    for n in 0..3 {
        let body = format!(
            r#"{{"type":"track","event":"Invoice Paid","userId":"u{n}","properties":{{"recipientId":"r{n}"}}}}"#
        );
        assert_eq!(s.post(&path, body, &[JSON]).await.0, 204);
    }
    let (status, dry) = s
        .admin(
            reqwest::Method::POST,
            "/events/replay",
            Some(json!({"source": "legacy", "event_type": "Invoice Paid", "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["count"], 3);
    assert_eq!(dry["items"][0]["plans"][0]["action"], "trigger_workflow");

    let (status, done) = s
        .admin(
            reqwest::Method::POST,
            "/events/replay",
            Some(json!({"source": "legacy", "user_id": "u1"})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["count"], 1);
    let (_, page) = s
        .admin(
            reqwest::Method::GET,
            "/events?source=legacy&user_id=u1",
            None,
        )
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "the original and its replay"
    );
}

#[tokio::test]
async fn a_full_disk_is_answered_503_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // A real SQLite store capped at a few hundred pages: the disk "fills" under load.
    let options = tributary_store::SqliteOptions {
        max_pages: Some(200),
        ..tributary_store::SqliteOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("t.db"), options)
            .await
            .unwrap(),
    );
    let config = config::load("f.toml", &config_text(1 << 20), &|_| None).unwrap();
    let pipeline = Arc::new(Pipeline::new(Arc::new(config), store).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(AppState::new(pipeline))).await });
    let http = reqwest::Client::new();
    // Text that compression cannot shrink much: the store compresses what
    // it stores, so a repeated pad would never fill it.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = move || -> String {
        (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
                        [(state >> 58) as usize],
                )
            })
            .collect()
    };
    let mut statuses = Vec::new();
    for n in 0..400 {
        let pad = noise();
        let resp = http
            .post(format!("{base}/integrations/receive/{LEGACY}"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"type":"track","event":"Invoice Paid","properties":{{"recipientId":"r{n}","pad":"{pad}"}}}}"#
            ))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 503 {
            assert!(resp.headers().contains_key("retry-after"));
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "store_unavailable");
            return;
        }
        statuses.push(status);
    }
    panic!(
        "the capped store never filled: {:?}",
        &statuses[statuses.len() - 3..]
    );
}

/// The service decides once, from the configuration, which environments'
/// actions the store runs itself: those on the `local` sink without a rate
/// limit (a limit is applied where the sink runs), and none at all in a
/// process that runs no workers.
#[test]
fn the_store_runs_only_unlimited_local_environments_itself() {
    let text = |workers: bool| {
        format!(
            r#"
[workers]
enabled = {workers}

[environments.development]

[environments.limited]
rate_limits = {{ trigger_workflow = 5 }}

[environments.production.sink]
kind = "knock"
secret_key = "sk_test_local_execution"
"#
        )
    };
    let config = config::load("l.toml", &text(true), &|_| None).unwrap();
    assert_eq!(
        serve::local_execution(&config),
        LocalExecution::InStore(vec!["development".to_owned()])
    );
    let config = config::load("l.toml", &text(false), &|_| None).unwrap();
    assert_eq!(serve::local_execution(&config), LocalExecution::ThroughSink);
}

/// The service opens its store with that decision: a `local` environment's
/// trigger, appended through the pipeline, is run by the store in the
/// append itself, so a worker round finds nothing to lease or run (no
/// workers run here, so the round is the test's).
#[tokio::test]
async fn the_service_opens_its_store_to_run_local_actions_itself() {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\n{}",
        data.path().display(),
        config_text(1 << 20)
    );
    let config = config::load("s.toml", &text, &|_| None).unwrap();
    let service = tributary_ingest::Service::build(config, Vec::new())
        .await
        .unwrap();
    let pipeline = &service.state().pipeline;
    let body = br#"{"type":"track","event":"Invoice Paid","userId":"u1","properties":{"recipientId":"r1"}}"#;
    let request = tributary_adapter::RawRequest::new("", "", body.to_vec(), chrono::Utc::now());
    pipeline.receive(LEGACY, request).await.unwrap();
    let round = pipeline
        .store()
        .claim_running_local("test", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(round.claimed.is_empty(), "{:?}", round.claimed);
    assert!(round.ran_local.is_empty(), "{:?}", round.ran_local);
    let done = pipeline
        .store()
        .list_actions(Some(tributary_store::ActionStatus::Succeeded), None, 10)
        .await
        .unwrap();
    let done: Vec<_> = done.items.iter().map(|a| (a.action, a.attempts)).collect();
    assert_eq!(
        done,
        vec![(tributary_core::ActionType::TriggerWorkflow, 1)],
        "the store ran the trigger at append"
    );
}
