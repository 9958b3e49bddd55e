//! `backfill` and `dead-letters` through the real binary.

use std::{process::Command, time::Duration};

use serde_json::Value;
use tributary_outbound::fake_segment::{FakeSegment, Reply};

use crate::support::{WRITE_KEY, config_text, fixtures, forwarder};

#[tokio::test]
async fn backfill_delivers_a_file_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    std::fs::write(
        &config,
        config_text(&queue, &fake.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let file = fixtures().join("backfill.ndjson");
    let file = file.to_str().unwrap();
    let args = [
        "backfill",
        file,
        "--environment",
        "production",
        "--deliver",
        "--quiet",
    ];
    let out = forwarder(&config, &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Two bad lines: the run fails, after queuing and delivering the rest.
    assert!(!out.status.success());
    assert!(
        stdout.contains("202 lines: 200 queued, 0 skipped, 0 dead-lettered (too large), 2 invalid"),
        "{stdout}"
    );
    assert!(stderr.contains("line 203: malformed JSON"), "{stderr}");
    assert!(stderr.contains("/created_at"), "{stderr}");
    let accepted = fake.wait_for_accepted(200, Duration::from_secs(5)).await;
    assert_eq!(accepted.len(), 200);

    // The same file again: the same messageIds, all delivered within the
    // redelivery window, so none is queued or sent again.
    let args = ["backfill", file, "-e", "production", "--deliver", "--quiet"];
    let out = forwarder(&config, &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "202 lines: 0 queued, 0 skipped, 0 dead-lettered (too large), 2 invalid, 200 repeats"
        ),
        "{stdout}"
    );
    assert_eq!(fake.accepted(), accepted);
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    fake.script(WRITE_KEY, [Reply::Status(403)]);
    std::fs::write(
        &config,
        config_text(&queue, &fake.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let ndjson = dir.path().join("one.ndjson");
    let line = std::fs::read_to_string(fixtures().join("webhooks/message.sent.json"))
        .unwrap()
        .replace('\n', "");
    std::fs::write(&ndjson, format!("{line}\n")).unwrap();
    let out = forwarder(
        &config,
        &[
            "backfill",
            ndjson.to_str().unwrap(),
            "-e",
            "production",
            "--quiet",
            "--deliver",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = forwarder(&config, &["dead-letters", "list", "--json"]).await;
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], 403);
    assert_eq!(listed[0]["payload"]["event"], "Notification Sent");
    let out = forwarder(&config, &["dead-letters", "redrive"]).await;
    assert!(
        !out.status.success(),
        "redrive without a filter must refuse"
    );
    let out = forwarder(&config, &["dead-letters", "redrive", "--all"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 dead letters re-queued"));
    // Deliver what was re-driven.
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    forwarder(
        &config,
        &[
            "backfill",
            empty.to_str().unwrap(),
            "-e",
            "production",
            "--quiet",
            "--deliver",
        ],
    )
    .await;
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0], listed[0]["messageId"]);
}

#[tokio::test]
async fn backfill_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let config = dir.path().join("forwarder.toml");
    let fake = FakeSegment::start().await;
    std::fs::write(
        &config,
        config_text(&queue, &fake.host(), "127.0.0.1:0", ""),
    )
    .unwrap();
    let lines: String = [
        "message.seen.json",
        "message.read.json",
        "workflow.updated.json",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(fixtures().join("webhooks").join(f))
            .unwrap()
            .replace('\n', "")
            + "\n"
    })
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-forwarder"))
            .arg("--config")
            .arg(&config)
            .args(["backfill", "-", "-e", "production", "--quiet", "--deliver"])
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 lines: 2 queued, 1 skipped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fake.accepted().len(), 2);
}
