//! The knock and webhook sinks against real HTTP servers on loopback: a fake
//! of the product's API that records what it receives and answers as scripted.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde_json::{Value, json};
use tributary_actions::{ActionRequest, KnockSink, Outcome, Sink, WebhookSink};
use tributary_adapter::RawRequest;
use tributary_core::{
    Secret,
    config::VerificationScheme,
    plan::{ActionPayload, AudienceMember, PlanOrigin, RecipientRef},
};

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A scripted answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

async fn record(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.seen.lock().unwrap().push(Seen {
        method,
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    let next = fake.script.lock().unwrap().pop_front();
    let (status, headers, body) = next.unwrap_or((200, vec![], "{\"ok\":true}"));
    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (k, v) in headers {
        response.headers_mut().insert(k, v.parse().unwrap());
    }
    response
}

async fn start(fake: Fake) -> String {
    let app = Router::new().fallback(record).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn request(payload: ActionPayload) -> ActionRequest {
    ActionRequest {
        action_id: "01JD6Y3W8G2R00000000000001".into(),
        event_id: "01JD6Y3W8G2R0000000000000E".into(),
        environment: "production".into(),
        source: "segment".into(),
        payload,
        origin: PlanOrigin::Mapping {
            mapping: "m".into(),
        },
        attempt: 1,
    }
}

fn trigger() -> ActionPayload {
    ActionPayload::TriggerWorkflow {
        workflow: "new-comment".into(),
        recipients: vec![
            RecipientRef::User("sam10".into()),
            RecipientRef::Object {
                id: "proj_1".into(),
                collection: "projects".into(),
            },
        ],
        actor: Some(RecipientRef::User("123".into())),
        tenant: Some("ws_1".into()),
        data: json!({"comment_id": 8812}).into(),
        cancellation_key: Some("8812".into()),
    }
}

#[tokio::test]
async fn trigger_has_the_product_api_shape() {
    let fake = Fake::default();
    let base = start(fake.clone()).await;
    let sink = KnockSink::new(&base, Secret::new("sk_test_abc")).unwrap();
    let outcome = sink.execute(&request(trigger())).await;
    assert!(
        matches!(
            outcome,
            Outcome::Succeeded {
                status: Some(200),
                ..
            }
        ),
        "{outcome:?}"
    );
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.uri, "/v1/workflows/new-comment/trigger");
    assert_eq!(s.headers["authorization"], "Bearer sk_test_abc");
    assert_eq!(s.headers["idempotency-key"], "01JD6Y3W8G2R00000000000001");
    assert_eq!(
        s.json(),
        json!({
            "recipients": ["sam10", {"id": "proj_1", "collection": "projects"}],
            "actor": "123",
            "tenant": "ws_1",
            "data": {"comment_id": 8812},
            "cancellation_key": "8812"
        })
    );
}

#[tokio::test]
async fn each_action_maps_to_its_endpoint() {
    let fake = Fake::default();
    let base = start(fake.clone()).await;
    let sink = KnockSink::new(&format!("{base}/"), Secret::new("sk")).unwrap();
    let attrs = |v: Value| v.as_object().unwrap().clone();
    let cases = vec![
        (
            ActionPayload::IdentifyUser {
                user_id: "a/b c".into(),
                attributes: attrs(json!({"email": "x@y.z", "name": null})),
            },
            "PUT",
            "/v1/users/a%2Fb%20c",
            json!({"email": "x@y.z", "name": null}),
        ),
        (
            ActionPayload::SetObject {
                collection: "projects".into(),
                id: "p1".into(),
                attributes: attrs(json!({"name": "P"})),
            },
            "PUT",
            "/v1/objects/projects/p1",
            json!({"name": "P"}),
        ),
        (
            ActionPayload::SetTenant {
                id: "acme".into(),
                attributes: attrs(json!({"settings": {"branding": {}}})),
            },
            "PUT",
            "/v1/tenants/acme",
            json!({"settings": {"branding": {}}}),
        ),
        (
            ActionPayload::AddAudienceMember {
                audience: "beta".into(),
                members: vec![AudienceMember {
                    user_id: "u1".into(),
                    tenant: Some("acme".into()),
                }],
                create_audience: true,
            },
            "POST",
            "/v1/audiences/beta/members?create_audience=true",
            json!({"members": [{"user": {"id": "u1"}, "tenant": "acme"}]}),
        ),
        (
            ActionPayload::CancelWorkflow {
                workflow: "w".into(),
                cancellation_key: "k".into(),
                recipients: None,
            },
            "POST",
            "/v1/workflows/w/cancel",
            json!({"cancellation_key": "k"}),
        ),
        (
            ActionPayload::Unsubscribe {
                collection: "projects".into(),
                object_id: "p1".into(),
                recipients: vec![RecipientRef::User("u1".into())],
            },
            "DELETE",
            "/v1/objects/projects/p1/subscriptions",
            json!({"recipients": ["u1"]}),
        ),
        (
            ActionPayload::DeleteUser {
                user_id: "u1".into(),
            },
            "DELETE",
            "/v1/users/u1",
            Value::Null,
        ),
    ];
    for (payload, method, uri, body) in cases {
        fake.seen.lock().unwrap().clear();
        let outcome = sink.execute(&request(payload)).await;
        assert!(
            matches!(outcome, Outcome::Succeeded { .. }),
            "{uri}: {outcome:?}"
        );
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen[0].method.as_str(), method, "{uri}");
        assert_eq!(seen[0].uri, uri);
        assert_eq!(seen[0].json(), body, "{uri}");
        assert!(
            seen[0].headers.get("idempotency-key").is_none(),
            "only triggers carry one"
        );
    }
}

#[tokio::test]
async fn subscriptions_are_sent_in_chunks_of_100() {
    let fake = Fake::default();
    let base = start(fake.clone()).await;
    let sink = KnockSink::new(&base, Secret::new("sk")).unwrap();
    let recipients = (0..250)
        .map(|i| RecipientRef::User(format!("u{i}")))
        .collect();
    let outcome = sink
        .execute(&request(ActionPayload::Subscribe {
            collection: "c".into(),
            object_id: "o".into(),
            recipients,
            properties: Some(json!({"role": "watcher"})),
        }))
        .await;
    assert!(matches!(outcome, Outcome::Succeeded { .. }));
    let seen = fake.seen.lock().unwrap();
    let sizes: Vec<_> = seen
        .iter()
        .map(|s| s.json()["recipients"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert!(
        seen.iter()
            .all(|s| s.json()["properties"]["role"] == "watcher")
    );
}

#[tokio::test]
async fn answers_are_classified_for_retry() {
    let fake = Fake::default();
    fake.script.lock().unwrap().extend([
        (429, vec![("retry-after", "7")], "slow down"),
        (503, vec![], "unavailable"),
        (422, vec![], "{\"code\":\"invalid_params\"}"),
        (404, vec![], "gone"),
    ]);
    let base = start(fake.clone()).await;
    let sink = KnockSink::new(&base, Secret::new("sk")).unwrap();
    let t = request(trigger());
    assert_eq!(
        sink.execute(&t).await,
        Outcome::Retry {
            status: Some(429),
            error: "HTTP 429: slow down".into(),
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(matches!(
        sink.execute(&t).await,
        Outcome::Retry {
            status: Some(503),
            retry_after: None,
            ..
        }
    ));
    assert!(matches!(
        sink.execute(&t).await,
        Outcome::Failed {
            status: Some(422),
            ..
        }
    ));
    // A delete of something already gone has had its effect.
    let delete = request(ActionPayload::DeleteTenant { id: "t".into() });
    assert!(matches!(
        sink.execute(&delete).await,
        Outcome::Succeeded {
            status: Some(404),
            ..
        }
    ));
}

#[tokio::test]
async fn an_unreachable_api_is_retried_and_the_key_never_leaks() {
    // Bind then drop: a loopback port with nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sink = KnockSink::new(
        &format!("http://127.0.0.1:{port}"),
        Secret::new("sk_secret_value"),
    )
    .unwrap();
    match sink.execute(&request(trigger())).await {
        Outcome::Retry {
            status: None,
            error,
            ..
        } => {
            assert!(!error.contains("sk_secret_value"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_sink_signs_with_standard_webhooks() {
    let fake = Fake::default();
    let base = start(fake.clone()).await;
    let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sink = WebhookSink::new(&format!("{base}/hooks/actions"), &secret).unwrap();
    let outcome = sink.execute(&request(trigger())).await;
    assert!(matches!(outcome, Outcome::Succeeded { .. }));
    let seen = fake.seen.lock().unwrap().remove(0);
    assert_eq!(seen.uri, "/hooks/actions");
    assert_eq!(seen.headers["webhook-id"], "01JD6Y3W8G2R00000000000001");
    let body = seen.json();
    assert_eq!(body["type"], "action.trigger_workflow");
    assert_eq!(body["data"]["payload"]["workflow"], "new-comment");
    assert_eq!(body["data"]["environment"], "production");

    // Verified by the adapters' independent Standard Webhooks verifier.
    let mut raw = RawRequest::new("s", "e", seen.body.clone(), Utc::now());
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        raw = raw.with_header(name, seen.headers[name].to_str().unwrap());
    }
    let scheme = VerificationScheme::StandardWebhooks {
        secret: secret.clone(),
        tolerance: Duration::from_secs(300),
    };
    tributary_adapter::verify::check(&scheme, &raw, &seen.body, Utc::now())
        .expect("our signature verifies");
    let wrong = VerificationScheme::StandardWebhooks {
        secret: Secret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        tolerance: Duration::from_secs(300),
    };
    assert!(tributary_adapter::verify::check(&wrong, &raw, &seen.body, Utc::now()).is_err());
}

#[test]
fn bad_sink_urls_are_refused() {
    assert!(KnockSink::new("not a url", Secret::new("k")).is_err());
    assert!(WebhookSink::new("ftp://example.com/x", &Secret::new("k")).is_err());
}
