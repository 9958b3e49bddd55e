//! The dead-letter counter says why, through the real binary: an event too
//! large to send and an event Segment refuses are counted under their own
//! bounded `reason` label (the full reason stays on the row).

use std::time::Duration;

use serde_json::{Value, json};
use tributary_outbound::fake_segment::{FakeSegment, Reply};

use crate::support::{WRITE_KEY, config_text, eventually, fixture, metric, post_webhook, start};

const WAIT: Duration = Duration::from_secs(20);

async fn post(base: &str, body: Vec<u8>) -> Value {
    let response = post_webhook(&reqwest::Client::new(), base, body)
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_counter_is_labelled_with_a_bounded_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    // Segment refuses the first request with a 400 that is not about one
    // event's JSON: the one-event batch cannot be split, so it is buried.
    fake.script(WRITE_KEY, [Reply::Status(400)]);
    std::fs::write(
        &config,
        config_text(
            &dir.path().join("queue.db"),
            &fake.host(),
            "127.0.0.1:0",
            "",
        ),
    )
    .unwrap();
    let running = start(&config);
    let base = running.base.clone();
    let counter = |reason: &str| {
        format!(
            "tributary_forwarder_dead_lettered_events_total{{environment=\"production\",reason=\"{reason}\"}}"
        )
    };

    post(&base, fixture("message.sent.json")).await;
    let refused = counter("refused");
    eventually(WAIT, Some(1.0), || metric(&base, &refused)).await;

    let mut big: Value = serde_json::from_slice(&fixture("message.link_clicked.json")).unwrap();
    big["event_data"]["url"] = json!(format!("https://x.test/{}", "a".repeat(40_000)));
    let answer = post(&base, serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(answer["reason"], "too_large");
    let too_large = counter("too_large");
    eventually(WAIT, Some(1.0), || metric(&base, &too_large)).await;
    // Each reason counts only its own.
    assert_eq!(metric(&base, &refused).await, Some(1.0));
}
