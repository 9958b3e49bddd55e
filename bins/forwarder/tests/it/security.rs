//! The forwarder's security suite: each attack on the network edge that fits
//! in CI time, bounded and over loopback, against the real binary. Under
//! each, `/healthz` keeps answering and the process's peak memory stays
//! under 300 MB (docs/security.md).

use std::{net::SocketAddr, path::Path, time::Duration};

use tributary_edge::attacks::{
    answer_past_held_budget, healthz_answers, idle_flood, partial_request, peak_rss_bytes,
    refused_over_budget, slowloris, status_of,
};
use tributary_outbound::fake_segment::FakeSegment;

use crate::support::{Running, config_text, start_with};

const MAX_RSS: u64 = 300 * 1024 * 1024;

/// The forwarder with `server` keys added to its `[server]` table.
async fn forwarder(dir: &Path, server: &str, soft_fd_limit: Option<u32>) -> (Running, FakeSegment) {
    let segment = FakeSegment::start().await;
    let config = dir.join("forwarder.toml");
    let text = config_text(&dir.join("queue.db"), &segment.host(), "127.0.0.1:0", "").replacen(
        "[server]\n",
        &format!("[server]\n{server}\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    (start_with(&config, soft_fd_limit), segment)
}

fn addr(running: &Running) -> SocketAddr {
    running
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_memory_bounded(running: &Running) {
    if let Some(peak) = peak_rss_bytes(running.child.id()) {
        assert!(peak <= MAX_RSS, "peak RSS {} MB", peak / (1024 * 1024));
    }
}

fn head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_environments_never_become_metric_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(dir.path(), "", None).await;
    let client = reqwest::Client::new();
    for n in 0..300 {
        let r = client
            .post(format!("{}/knock/webhooks/invented-{n}", f.base))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let metrics = client
        .get(format!("{}/metrics", f.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("invented-"), "{metrics}");
    let unknown = metrics
        .lines()
        .find(|l| {
            l.starts_with("tributary_forwarder_webhooks_total")
                && l.contains("environment=\"(unknown)\"")
                && l.contains("outcome=\"unknown_environment\"")
        })
        .unwrap_or_else(|| panic!("no unknown-environment count:\n{metrics}"));
    assert!(unknown.ends_with(" 300"), "{unknown}");
}

#[tokio::test]
async fn unknown_environments_are_refused_without_reading_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(dir.path(), "", None).await;
    // The declared megabyte never comes: the answer cannot wait for it.
    let answer = partial_request(
        addr(&f),
        &head("/knock/webhooks/staging", 1 << 20),
        b"{",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&answer), Some(404), "{answer}");
    assert!(answer.contains("unknown_environment"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_leaves_healthz_answering() {
    let fds = tributary_edge::raise_fd_limit().unwrap_or(4_096);
    let flood = usize::try_from(fds.saturating_sub(200))
        .unwrap_or(1_000)
        .min(1_000);
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(dir.path(), "max_connections = 100", Some(384)).await;
    let held = idle_flood(addr(&f), flood).await;
    assert!(
        healthz_answers(addr(&f)).await,
        "no /healthz answer with {} idle connections open",
        held.len()
    );
    assert!(
        held.len() >= flood / 2,
        "only {} connections opened",
        held.len()
    );
    assert_memory_bounded(&f);
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(dir.path(), "header_read_timeout = \"1s\"", None).await;
    let closed = slowloris(
        addr(&f),
        "/knock/webhooks/production",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(closed, "a head trickled for 10 s was still being read");
    assert!(healthz_answers(addr(&f)).await);
}

#[tokio::test]
async fn past_the_body_budget_webhooks_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(
        dir.path(),
        "max_body_bytes = 65536\nbody_budget_bytes = 65536\nbody_read_timeout = \"20s\"",
        None,
    )
    .await;
    let path = "/knock/webhooks/production";
    // A slow sender holds the whole budget while its body trickles in.
    let (answer, holder) = answer_past_held_budget(
        addr(&f),
        (&head(path, 65_536), b"{"),
        (&head(path, 2), b"{}"),
        Duration::from_secs(20),
    )
    .await;
    assert!(refused_over_budget(&answer), "{answer}");
    assert!(healthz_answers(addr(&f)).await);
    drop(holder);
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _segment) = forwarder(dir.path(), "body_read_timeout = \"1s\"", None).await;
    let answer = partial_request(
        addr(&f),
        &head("/knock/webhooks/production", 100),
        b"{\"type\":",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}
