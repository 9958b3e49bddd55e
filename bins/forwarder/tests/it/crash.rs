//! The real binary: kill -9 mid-outage and restart; SIGTERM flushes.

use std::{collections::HashSet, time::Duration};

use serde_json::Value;
use tributary_outbound::fake_segment::{FakeSegment, Reply};

use crate::support::{WRITE_KEY, config_text, fixture, post_webhook, start, terminate};

fn webhook(n: usize) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("message.sent.json")).unwrap();
    v["data"]["id"] = Value::String(format!("msg_crash_{n}"));
    serde_json::to_vec(&v).unwrap()
}

/// Posts `n` signed webhooks; returns the Segment messageIds acknowledged.
async fn post_all(base: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    for n in range {
        let response = post_webhook(&client, base, webhook(n)).await.unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        acked.push(answer["messageId"].as_str().unwrap().to_owned());
    }
    acked
}

// Multi-threaded: the test blocks on the child process while the fake
// Segment (on this runtime) must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_mid_outage() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");

    // Segment is down.
    let down = FakeSegment::start().await;
    down.script(WRITE_KEY, std::iter::repeat_n(Reply::Status(503), 100_000));
    std::fs::write(
        &config,
        config_text(&queue, &down.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let mut first = start(&config);
    let acked = post_all(&first.base, 0..40).await;
    for _ in 0..500 {
        if !down.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !down.requests().is_empty(),
        "the forwarder never tried Segment"
    );
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(down.accepted().is_empty());

    // Segment is back; restart on the same queue.
    let up = FakeSegment::start().await;
    std::fs::write(&config, config_text(&queue, &up.host(), "127.0.0.1:0", "")).unwrap();
    let mut second = start(&config);
    let accepted = up
        .wait_for_accepted(acked.len(), Duration::from_secs(10))
        .await;
    let unique: HashSet<_> = accepted.iter().collect();
    assert_eq!(
        unique.len(),
        accepted.len(),
        "delivered twice after acknowledgement"
    );
    for id in &acked {
        assert!(unique.contains(id), "acknowledged event {id} was lost");
    }
    let status = terminate(&mut second);
    assert!(status.success(), "{status:?}");
}

// Multi-threaded: the test blocks on the child process while the fake
// Segment (on this runtime) must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    // Segment is up but slow, so some batches are in flight at the kill.
    let before = FakeSegment::start().await;
    before.set_latency(Duration::from_millis(20));
    std::fs::write(
        &config,
        config_text(&queue, &before.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let mut first = start(&config);

    // 8 concurrent posters; the process is killed while they run.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let mut posters = Vec::new();
    for p in 0..8 {
        let (client, base, acked) = (client.clone(), first.base.clone(), acked.clone());
        posters.push(tokio::spawn(async move {
            for i in 0..1_000 {
                let sent = post_webhook(&client, &base, webhook(p * 10_000 + i)).await;
                // After the kill requests fail: those were never acknowledged.
                let Ok(response) = sent else { break };
                if response.status() != 200 {
                    break;
                }
                let Ok(answer) = response.json::<Value>().await else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(answer["messageId"].as_str().unwrap().to_owned());
            }
        }));
    }
    for _ in 0..1_000 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap(); // SIGKILL, mid-traffic
    first.child.wait().unwrap();
    for p in posters {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let after = FakeSegment::start().await;
    std::fs::write(
        &config,
        config_text(&queue, &after.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let mut second = start(&config);
    let delivered_before: HashSet<String> = before.accepted().into_iter().collect();
    let covered = |after: &[String]| {
        let after: HashSet<&String> = after.iter().collect();
        acked
            .iter()
            .all(|id| delivered_before.contains(id) || after.contains(id))
    };
    let mut accepted_after = after.accepted();
    for _ in 0..1_000 {
        if covered(&accepted_after) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        accepted_after = after.accepted();
    }
    let status = terminate(&mut second);
    assert!(status.success(), "{status:?}");
    let after_set: HashSet<_> = accepted_after.iter().cloned().collect();
    assert_eq!(
        after_set.len(),
        accepted_after.len(),
        "delivered twice by one process"
    );
    for id in &acked {
        assert!(
            delivered_before.contains(id) || after_set.contains(id),
            "acknowledged event {id} was lost"
        );
    }
}

// Multi-threaded: the test blocks on the child process while the fake
// Segment (on this runtime) must keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_a_partial_batch() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    let text = config_text(&queue, &fake.host(), "127.0.0.1:0", "")
        .replace("flush_interval_ms = 10", "flush_interval_ms = 60000");
    std::fs::write(&config, text).unwrap();
    let mut running = start(&config);
    let acked = post_all(&running.base, 0..3).await;
    assert!(fake.requests().is_empty(), "sent before the flush interval");
    let status = terminate(&mut running);
    assert!(status.success(), "{status:?}");
    assert_eq!(fake.accepted(), acked);
}
