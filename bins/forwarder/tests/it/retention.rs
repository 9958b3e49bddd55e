//! Dead-letter retention through the real binary: `serve` prunes at start and
//! every `prune_interval`, counts it in `/metrics`; `dead-letters prune` and
//! `check-config` from the command line.

use std::{path::Path, time::Duration};

use rusqlite::{Connection, params};
use serde_json::Value;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, NewEntry, fake_segment::FakeSegment,
};

use crate::support::{
    SECRET, config_text, eventually, fixture, forwarder, metric, post_webhook, start,
};

const WAIT: Duration = Duration::from_secs(15);
const DAY_MS: i64 = 86_400_000;

/// A config with `queue_keys` in `[queue]`.
fn config_with(queue: &Path, host: &str, queue_keys: &str) -> String {
    config_text(queue, host, "127.0.0.1:0", "")
        .replace("\n[segment]", &format!("{queue_keys}\n\n[segment]"))
}

/// `n` dead letters in the file, the first `aged` of them failed 45 days ago.
async fn seed(path: &Path, n: usize, aged: usize) -> Vec<String> {
    let queue = DurableQueue::open(path).unwrap();
    let entries = (0..n)
        .map(|i| {
            (
                NewEntry {
                    environment: "production".into(),
                    message_id: format!("knock-seeded-{i}"),
                    payload: br#"{"type":"track"}"#.to_vec(),
                },
                Burial {
                    reason: "Segment answered 401".into(),
                    status: Some(401),
                },
            )
        })
        .collect();
    let ids = queue.dead_letter_new(entries).await.unwrap();
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let long_ago = chrono::Utc::now().timestamp_millis() - 45 * DAY_MS;
    for id in &ids[..aged] {
        conn.execute(
            "UPDATE dead_letters SET failed_at = ?1 WHERE id = ?2",
            params![long_ago, id],
        )
        .unwrap();
    }
    (0..n).map(|i| format!("knock-seeded-{i}")).collect()
}

async fn dead_letter_ids(path: &Path) -> Vec<String> {
    DurableQueue::open(path)
        .unwrap()
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect()
}

// Multi-threaded: the fake Segment must keep answering while the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prunes_at_start_and_every_interval_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    let seeded = seed(&queue, 6, 3).await;
    std::fs::write(
        &config,
        config_with(
            &queue,
            &fake.host(),
            "dead_letter_retention = \"30d\"\nmax_dead_letters = 2\nprune_interval = \"1s\"",
        ),
    )
    .unwrap();
    let running = start(&config);
    let base = running.base.clone();

    // At start: the three aged 45 days go for their age, then the oldest of
    // the rest for the cap of 2.
    eventually(WAIT, seeded[4..].to_vec(), || dead_letter_ids(&queue)).await;
    let age = "tributary_forwarder_pruned_dead_letters_total{reason=\"age\"}";
    let count = "tributary_forwarder_pruned_dead_letters_total{reason=\"count\"}";
    eventually(WAIT, Some(3.0), || metric(&base, age)).await;
    eventually(WAIT, Some(1.0), || metric(&base, count)).await;
    let ready: Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["deadLetters"], 2);

    // Segment refuses two new events for good; later passes keep the newest
    // two dead letters, which are now those.
    fake.reject_events_containing("msg_refused");
    let client = reqwest::Client::new();
    for n in 0..2 {
        let mut webhook: Value = serde_json::from_slice(&fixture("message.sent.json")).unwrap();
        webhook["data"]["id"] = Value::String(format!("msg_refused_{n}"));
        let body = serde_json::to_vec(&webhook).unwrap();
        let answer = post_webhook(&client, &base, body).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    eventually(WAIT, vec!["msg_refused_0", "msg_refused_1"], || async {
        let queue = DurableQueue::open(&queue).unwrap();
        let dead = queue
            .dead_letters(DeadLetterFilter::default())
            .await
            .unwrap();
        dead.iter()
            .map(|d| {
                let payload: Value = serde_json::from_slice(&d.payload).unwrap();
                match payload["properties"]["messageId"].as_str() {
                    Some("msg_refused_0") => "msg_refused_0",
                    Some("msg_refused_1") => "msg_refused_1",
                    _ => "seeded",
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    eventually(WAIT, Some(3.0), || metric(&base, count)).await;
    assert_eq!(metric(&base, age).await, Some(3.0));
}

#[tokio::test]
async fn the_prune_command_applies_the_configured_retention_now() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let seeded = seed(&queue, 5, 2).await;
    std::fs::write(
        &config,
        config_with(
            &queue,
            "http://127.0.0.1:9",
            "dead_letter_retention = \"30d\"\nmax_dead_letters = \"off\"",
        ),
    )
    .unwrap();
    let out = forwarder(&config, &["dead-letters", "prune"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 dead letters pruned (2 older than the retention age, 0 over the cap)"),
        "{stdout}"
    );
    assert_eq!(dead_letter_ids(&queue).await, seeded[2..]);

    // Both limits off: nothing is removed, however old.
    std::fs::write(
        &config,
        config_with(
            &queue,
            "http://127.0.0.1:9",
            "dead_letter_retention = \"off\"\nmax_dead_letters = \"off\"",
        ),
    )
    .unwrap();
    seed(&queue, 2, 2).await;
    let out = forwarder(&config, &["dead-letters", "prune"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 dead letters pruned"));
    assert_eq!(dead_letter_ids(&queue).await.len(), 5);
}

#[tokio::test]
async fn check_config_shows_retention_and_names_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    std::fs::write(&config, config_with(&queue, "http://127.0.0.1:9", "")).unwrap();
    let out = forwarder(&config, &["check-config"]).await;
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("dead-letter retention: 30d"), "{stdout}");
    assert!(stdout.contains("max dead letters: 100000"), "{stdout}");
    assert!(stdout.contains("prune interval: 10m"), "{stdout}");
    assert!(!stdout.contains(SECRET), "secrets stay out: {stdout}");

    std::fs::write(
        &config,
        config_with(
            &queue,
            "http://127.0.0.1:9",
            "dead_letter_retention = \"30\"",
        ),
    )
    .unwrap();
    let out = forwarder(&config, &["check-config"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("queue.dead_letter_retention") && stderr.contains("has no unit"),
        "{stderr}"
    );
    // The file is not even opened when the configuration is refused.
    assert!(!queue.exists());
}
