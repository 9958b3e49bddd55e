//! The router, driven with `oneshot` (no socket).

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tributary_forwarder::app::{AppState, app};
use tributary_outbound::{DeadLetterFilter, DurableQueue};

use crate::support::{SECRET, config, fixture, fixtures, now_ms, signature};

struct Fixture {
    router: axum::Router,
    queue: DurableQueue,
    _dir: tempfile::TempDir,
}

fn setup(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let config = config(&path, "http://127.0.0.1:9", extra);
    let queue = DurableQueue::open(&path).unwrap();
    let state = AppState::new(&config, queue.clone(), None).unwrap();
    Fixture {
        router: app(state),
        queue,
        _dir: dir,
    }
}

async fn post(
    router: &axum::Router,
    env: &str,
    body: &[u8],
    header: Option<String>,
) -> (StatusCode, Value) {
    let mut request =
        Request::post(format!("/knock/webhooks/{env}")).header("content-type", "application/json");
    if let Some(h) = header {
        request = request.header("x-knock-signature", h);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post_signed(router: &axum::Router, env: &str, body: &[u8]) -> (StatusCode, Value) {
    post(router, env, body, Some(signature(SECRET, body))).await
}

#[tokio::test]
async fn a_signed_webhook_is_queued_as_a_segment_track() {
    let f = setup("");
    let body = fixture("message.sent.json");
    let (status, answer) = post_signed(&f.router, "production", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["forwarded"], true);
    let queued = f.queue.fetch("production", 0, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    let event: Value = serde_json::from_slice(&queued[0].payload).unwrap();
    assert_eq!(event["type"], "track");
    assert_eq!(event["event"], "Notification Sent");
    assert_eq!(event["userId"], "user_2a9f");
    assert_eq!(event["timestamp"], "2026-03-01T10:00:00.123Z");
    assert_eq!(event["messageId"], answer["messageId"]);
    assert_eq!(
        event["properties"],
        json!({"channelId": "6b4c1e7a-9a61-4c8e-b1c3-2f0d9e5a7b10", "channelType": "email",
               "environment": "Production", "messageId": "2w3YUpTTOxuDvZFji8OMsKrG000",
               "provider": "postmark", "stepRef": "email_1",
               "workflowKey": "account-invite-accepted", "tenant": "acme",
               "workflowRunId": "0b5c2f4e-run"})
    );
}

#[tokio::test]
async fn every_lifecycle_fixture_gets_its_contract_name() {
    let f = setup("");
    let expected = [
        ("sent", "Notification Sent"),
        ("delivered", "Notification Delivered"),
        ("undelivered", "Notification Undelivered"),
        ("seen", "Notification Seen"),
        ("unseen", "Notification Unseen"),
        ("read", "Notification Read"),
        ("unread", "Notification Unread"),
        ("archived", "Notification Archived"),
        ("unarchived", "Notification Unarchived"),
        ("link_clicked", "Notification Clicked"),
        ("interacted", "Notification Interacted"),
    ];
    for (ty, _) in expected {
        let (status, answer) = post_signed(
            &f.router,
            "production",
            &fixture(&format!("message.{ty}.json")),
        )
        .await;
        assert_eq!(
            (status, answer["forwarded"].clone()),
            (StatusCode::OK, json!(true)),
            "{ty}"
        );
    }
    let queued = f.queue.fetch("production", 0, 100).await.unwrap();
    let names: Vec<String> = queued
        .iter()
        .map(|e| {
            serde_json::from_slice::<Value>(&e.payload).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, expected.map(|(_, n)| n.to_owned()));
    let clicked: Value = serde_json::from_slice(&queued[9].payload).unwrap();
    assert_eq!(
        clicked["properties"]["url"],
        "https://app.example.com/invites/abc"
    );
}

#[tokio::test]
async fn unmapped_events_and_object_recipients_follow_the_config() {
    let f = setup("");
    for name in [
        "message.bounced.json",
        "message.delivery_attempted.json",
        "object-recipient.json",
        "workflow.updated.json",
    ] {
        let (status, answer) = post_signed(&f.router, "production", &fixture(name)).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(answer["forwarded"], false, "{name}");
    }
    assert!(f.queue.fetch("production", 0, 10).await.unwrap().is_empty());

    let f = setup(
        "[transform]\nunmapped_events = \"forward\"\nobject_recipients = \"anonymous_id\"\nname_style = \"sentence\"\n",
    );
    for name in ["message.bounced.json", "object-recipient.json"] {
        let (_, answer) = post_signed(&f.router, "production", &fixture(name)).await;
        assert_eq!(answer["forwarded"], true, "{name}");
    }
    let queued = f.queue.fetch("production", 0, 10).await.unwrap();
    let bounced: Value = serde_json::from_slice(&queued[0].payload).unwrap();
    assert_eq!(bounced["event"], "Notification bounced");
    assert_eq!(bounced["properties"]["failureReason"], "fatal_error");
    let object: Value = serde_json::from_slice(&queued[1].payload).unwrap();
    assert_eq!(object["anonymousId"], "projects:proj_1");
    assert!(object.get("userId").is_none());
}

#[tokio::test]
async fn a_resent_webhook_gets_the_same_message_id() {
    let f = setup("");
    let body = fixture("message.read.json");
    let (_, first) = post_signed(&f.router, "production", &body).await;
    let (_, again) = post_signed(&f.router, "production", &body).await;
    assert_eq!(first["messageId"], again["messageId"]);
    let (_, other) = post_signed(&f.router, "production", &fixture("message.seen.json")).await;
    assert_ne!(first["messageId"], other["messageId"]);
}

#[tokio::test]
async fn signature_vectors() {
    let f = setup("");
    let vectors: Vec<Value> = serde_json::from_slice(
        &std::fs::read(fixtures().join("knock-signature-vectors.json")).unwrap(),
    )
    .unwrap();
    for v in vectors {
        let secret = tributary_core::Secret::new(v["secret"].as_str().unwrap());
        let result = tributary_forwarder::signature::verify(
            &secret,
            v["header"].as_str(),
            v["body"].as_str().unwrap().as_bytes(),
            v["now_ms"].as_i64().unwrap(),
            300_000,
        );
        let got = result.map_or_else(|e| e.code(), |()| "ok");
        assert_eq!(got, v["expect"].as_str().unwrap(), "{}", v["name"]);
    }
    // And through the route: valid now, wrong secret, stale, malformed, missing, tampered.
    let body = fixture("message.sent.json");
    let stale = tributary_forwarder::signature::sign(
        &tributary_core::Secret::new(SECRET),
        now_ms() - 301_000,
        &body,
    );
    let cases = [
        (Some(signature(SECRET, &body)), StatusCode::OK, None),
        (
            Some(signature("whsec_wrong", &body)),
            StatusCode::UNAUTHORIZED,
            Some("invalid_signature"),
        ),
        (
            Some(stale),
            StatusCode::UNAUTHORIZED,
            Some("stale_signature"),
        ),
        (
            Some("t=12,s=???".to_owned()),
            StatusCode::UNAUTHORIZED,
            Some("malformed_signature"),
        ),
        (None, StatusCode::UNAUTHORIZED, Some("missing_signature")),
    ];
    for (header, status, code) in cases {
        let (got, answer) = post(&f.router, "production", &body, header.clone()).await;
        assert_eq!(got, status, "{header:?}: {answer}");
        if let Some(code) = code {
            assert_eq!(answer["error"]["code"], code);
        }
    }
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let (got, _) = post(
        &f.router,
        "production",
        &tampered,
        Some(signature(SECRET, &body)),
    )
    .await;
    assert_eq!(got, StatusCode::UNAUTHORIZED);
    // Nothing unauthenticated was queued.
    assert_eq!(f.queue.fetch("production", 0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_bodies_get_400_or_422_naming_the_field() {
    let f = setup("");
    let (status, answer) = post_signed(&f.router, "production", b"{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "malformed_json");
    let body = br#"{"type":"message.sent","created_at":"2026-03-01T10:00:00Z","data":{"id":"m1"}}"#;
    let (status, answer) = post_signed(&f.router, "production", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "/data/recipient");
    assert!(answer["error"]["message"].is_string());
    let body = br#"{"type":"message.sent","created_at":"whenever","data":{}}"#;
    let (status, answer) = post_signed(&f.router, "production", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "/created_at");
}

#[tokio::test]
async fn environments_without_write_key_or_unknown() {
    let f = setup("");
    let body = fixture("message.sent.json");
    let (status, answer) = post(
        &f.router,
        "development",
        &body,
        Some(signature("whsec_dev", &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["reason"], "no_write_key");
    assert!(f.queue.stats().await.unwrap().pending.is_empty());
    let (status, answer) = post_signed(&f.router, "staging", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["code"], "unknown_environment");
}

#[tokio::test]
async fn oversized_events_are_kept_as_dead_letters() {
    let f = setup("");
    let mut v: Value = serde_json::from_slice(&fixture("message.link_clicked.json")).unwrap();
    v["event_data"]["url"] = json!(format!("https://x.test/{}", "a".repeat(40_000)));
    let body = serde_json::to_vec(&v).unwrap();
    let (status, answer) = post_signed(&f.router, "production", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["reason"], "too_large");
    let dead = f
        .queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("limit per event"));
    assert!(f.queue.fetch("production", 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let f = setup("");
    let body = vec![b' '; 2 * 1024 * 1024];
    let (status, answer) = post_signed(&f.router, "production", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "too_large");
}

#[tokio::test]
async fn health_and_readiness() {
    let f = setup("");
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let r = f.router.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = f.router.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["ready"], true);
}
