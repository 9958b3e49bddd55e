//! The real binary: a webhook delivered twice by the product is sent to
//! Segment once, the repeat answered 200 as a duplicate, across a restart.

use std::time::Duration;

use serde_json::Value;
use tributary_outbound::fake_segment::{FakeSegment, Reply};

use crate::support::{
    SECRET, config_text, eventually, fixture, metric, signature, start, terminate,
};

const STAGING_SECRET: &str = "whsec_test_staging";
const STAGING_KEY: &str = "wk_staging";
const WAIT: Duration = Duration::from_secs(10);

fn webhook(id: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("message.sent.json")).unwrap();
    v["data"]["id"] = Value::String(id.to_owned());
    serde_json::to_vec(&v).unwrap()
}

/// Posts `body` to `environment`, freshly signed (as the product's retry
/// would be), and returns the answer's status and JSON.
async fn post(base: &str, environment: &str, secret: &str, body: &[u8]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/knock/webhooks/{environment}"))
        .header("x-knock-signature", signature(secret, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

// Multi-threaded: the fake Segment (on this runtime) must keep answering
// while the test waits on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_webhook_reaches_segment_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    // Staging's Segment is down, so its events stay queued.
    fake.script(
        STAGING_KEY,
        std::iter::repeat_n(Reply::Status(503), 100_000),
    );
    let extra = format!(
        "[environments.staging]\nsigning_secret = \"{STAGING_SECRET}\"\nwrite_key = \"{STAGING_KEY}\"\n\n[redeliveries]\nwindow = \"1h\"\n"
    );
    // One request at a time, so a later event delivered means every
    // earlier queued one was sent.
    let text = config_text(&queue, &fake.host(), "127.0.0.1:0", &extra).replace(
        "shutdown_grace_ms = 500",
        "shutdown_grace_ms = 500\nmax_in_flight = 1",
    );
    std::fs::write(&config, text).unwrap();
    let mut running = start(&config);
    let base = running.base.clone();

    let first = webhook("msg_redelivered_1");
    let (status, answer) = post(&base, "production", SECRET, &first).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["forwarded"], true, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_owned();
    let accepted = fake.wait_for_accepted(1, WAIT).await;
    assert_eq!(accepted, std::slice::from_ref(&message_id));
    // Segment's answer comes before the forwarder records the delivery (the
    // counter moves once it has): a repeat in between finds it still queued.
    let sent = "tributary_forwarder_sent_events_total{environment=\"production\"}";
    eventually(WAIT, Some(1.0), || metric(&base, sent)).await;

    // The product's retry of the same webhook, after the first was sent.
    let (status, repeat) = post(&base, "production", SECRET, &first).await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["accepted"], true, "{repeat}");
    assert_eq!(repeat["forwarded"], false, "{repeat}");
    assert_eq!(repeat["reason"], "duplicate", "{repeat}");
    assert_eq!(repeat["firstCopy"], "delivered", "{repeat}");
    assert_eq!(repeat["messageId"], message_id.as_str());
    assert!(
        repeat["detail"]
            .as_str()
            .unwrap()
            .contains("already delivered"),
        "{repeat}"
    );

    // A repeat while the first copy is still queued.
    let staged = webhook("msg_redelivered_2");
    let (_, answer) = post(&base, "staging", STAGING_SECRET, &staged).await;
    assert_eq!(answer["forwarded"], true, "{answer}");
    let (status, repeat) = post(&base, "staging", STAGING_SECRET, &staged).await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["reason"], "duplicate", "{repeat}");
    assert_eq!(repeat["firstCopy"], "queued", "{repeat}");

    let repeats = |env: &'static str| {
        let base = base.clone();
        move || {
            let base = base.clone();
            async move {
                let line = format!(
                    "tributary_forwarder_webhooks_total{{environment=\"{env}\",outcome=\"duplicate\"}}"
                );
                metric(&base, &line).await
            }
        }
    };
    eventually(WAIT, Some(1.0), repeats("production")).await;
    eventually(WAIT, Some(1.0), repeats("staging")).await;

    // After a restart the memory holds: the same webhook again is a repeat.
    assert!(terminate(&mut running).success());
    let running = start(&config);
    let (status, repeat) = post(&running.base, "production", SECRET, &first).await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["reason"], "duplicate", "{repeat}");

    // A new event after the repeats: once Segment has it, anything queued
    // before it has been sent too. The first event reached Segment once.
    let (_, later) = post(&running.base, "production", SECRET, &webhook("msg_later")).await;
    let later_id = later["messageId"].as_str().unwrap().to_owned();
    let accepted = fake.wait_for_accepted(2, WAIT).await;
    assert_eq!(accepted, [message_id, later_id]);
}
