//! Queued events of an environment that stops being forwarded, through the
//! real binary: `serve` moves them to the dead letters with the reason,
//! delivers the other environments, refuses to redrive them while they are
//! still not forwarded, and delivers them once the write key is back.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tributary_outbound::{DurableQueue, fake_segment::FakeSegment};

use crate::support::{WRITE_KEY, config_text, eventually, fixtures, forwarder, metric, start};

/// Kills the forwarder when the test ends, passing or not.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const WAIT: Duration = Duration::from_secs(20);
const DEV_KEY: &str = "wk_development";
const REASON: &str = "not_forwarded: environment development has no write key";

async fn pending(queue: &Path, environment: &str) -> u64 {
    let stats = DurableQueue::open(queue).unwrap().stats().await.unwrap();
    stats.pending.get(environment).copied().unwrap_or(0)
}

/// The `(environment, reason)` of every dead letter, from the CLI.
async fn dead_letters(config: &Path) -> Vec<(String, String)> {
    let out = forwarder(
        config,
        &["dead-letters", "list", "--json", "--limit", "100000"],
    )
    .await;
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["environment"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// Multi-threaded: the fake Segment must keep answering while the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_write_key_dead_letters_its_queue_until_restored_and_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    let with_key = config_text(
        &queue,
        &fake.host(),
        "127.0.0.1:0",
        &format!("write_key = \"{DEV_KEY}\""),
    );
    let without_key = config_text(&queue, &fake.host(), "127.0.0.1:0", "");

    // Both environments forwarded: queue 200 events for each, not delivered.
    std::fs::write(&config, &with_key).unwrap();
    let file = fixtures().join("backfill.ndjson");
    for environment in ["production", "development"] {
        let args = [
            "backfill",
            file.to_str().unwrap(),
            "-e",
            environment,
            "--quiet",
        ];
        let out = forwarder(&config, &args).await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("200 queued"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(pending(&queue, "development").await, 200);

    // Restart without development's write key: production is delivered,
    // development's queue becomes dead letters with the reason.
    std::fs::write(&config, &without_key).unwrap();
    let running = start(&config);
    let base = running.base.clone();
    eventually(WAIT, 200, || async { fake.accepted_count(WRITE_KEY) }).await;
    eventually(WAIT, 0, || pending(&queue, "development")).await;
    let dead = dead_letters(&config).await;
    assert_eq!(dead.len(), 200);
    assert!(
        dead.iter()
            .all(|(env, reason)| env == "development" && reason == REASON),
        "{dead:?}"
    );
    assert_eq!(fake.accepted_count(DEV_KEY), 0);
    assert_eq!(
        metric(
            &base,
            "tributary_forwarder_dead_lettered_events_total{environment=\"development\",reason=\"not_forwarded\"}"
        )
        .await,
        Some(200.0)
    );

    // A redrive while development is still not forwarded is refused, naming
    // it; `--all` leaves its dead letters and says so.
    let out = forwarder(
        &config,
        &["dead-letters", "redrive", "--environment", "development"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("environment development") && stderr.contains("no write key"),
        "{stderr}"
    );
    let out = forwarder(&config, &["dead-letters", "redrive", "--all"]).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 dead letters re-queued"));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("left 200 dead letters of environment development"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dead_letters(&config).await.len(), 200);
    assert_eq!(pending(&queue, "development").await, 0);
    drop(running);

    // Key restored, serve restarted, redrive: delivered with the same ids.
    std::fs::write(&config, &with_key).unwrap();
    let _running = start(&config);
    let out = forwarder(
        &config,
        &["dead-letters", "redrive", "--environment", "development"],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("200 dead letters re-queued"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(WAIT, 200, || async { fake.accepted_count(DEV_KEY) }).await;
    eventually(WAIT, 0, || pending(&queue, "development")).await;
    assert!(dead_letters(&config).await.is_empty());
    assert_eq!(fake.accepted_count(WRITE_KEY), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_removed_from_the_config_is_named_as_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    let text = config_text(&queue, &fake.host(), "127.0.0.1:0", "");
    // A queue written when a `staging` environment existed.
    std::fs::write(
        &config,
        format!(
            "{text}\n[environments.staging]\nsigning_secret = \"s\"\nwrite_key = \"wk_staging\"\n"
        ),
    )
    .unwrap();
    let file = fixtures().join("backfill.ndjson");
    let args = [
        "backfill",
        file.to_str().unwrap(),
        "-e",
        "staging",
        "--quiet",
    ];
    forwarder(&config, &args).await;
    assert_eq!(pending(&queue, "staging").await, 200);

    std::fs::write(&config, &text).unwrap();
    // Started by hand to read its warnings (JSON lines on stderr).
    let log = dir.path().join("serve.log");
    let _running = Serve(
        Command::new(env!("CARGO_BIN_EXE_tributary-forwarder"))
            .arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "serve"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually(WAIT, 0, || pending(&queue, "staging")).await;
    eventually(WAIT, true, || async {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| {
                l["level"] == "WARN"
                    && l["fields"]["environment"] == "staging"
                    && l["fields"]["count"] == 200
                    && l["fields"]["reason"]
                        == "not_forwarded: environment staging is not configured"
            })
    })
    .await;
    let dead = dead_letters(&config).await;
    assert_eq!(dead.len(), 200);
    assert!(dead.iter().all(|(env, reason)| env == "staging"
        && reason == "not_forwarded: environment staging is not configured"));
    let out = forwarder(&config, &["dead-letters", "redrive", "-e", "staging"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("staging"));
    assert_eq!(fake.accepted_count("wk_staging"), 0);
}
