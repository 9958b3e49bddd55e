//! Attacks on what the ingest service keeps, against the real binary on
//! loopback: a flood of large-header requests to an unknown URL, a batch sent
//! with large headers, and credentials in headers and bodies. Each is bounded
//! in count and time; under each the service keeps answering `/healthz`,
//! stays under 300 MB of RSS, grows its store by a bounded amount, and keeps
//! no secret at rest (docs/security.md).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::Value;

mod process;

use process::{
    ADMIN, Running, dir_bytes, dir_contents, free_port, start, wait_ready, write_config,
};
use tributary_edge::attacks::peak_rss_bytes;

const TOKEN: &str = "tok_security_0123456789abcdef";
const WRITE_KEY: &str = "wk_security_live_0123456789";
const RSS_LIMIT: u64 = 300 * 1024 * 1024;

struct Service {
    _child: Running,
    pid: u32,
    base: String,
    data: PathBuf,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        port,
        TOKEN,
        &format!(r#"write_key = "{WRITE_KEY}""#),
        "",
    );
    let child = start(&config);
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    Service {
        _child: Running(child),
        pid,
        base,
        data,
        client,
        _dir: dir,
    }
}

impl Service {
    async fn healthy(&self) -> bool {
        self.client
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    async fn admin(&self, path: &str) -> Value {
        self.client
            .get(format!("{}/api/v1/{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn store_bytes(&self) -> u64 {
        dir_bytes(&self.data)
    }
}

/// 28 headers of 1,000 bytes: large, yet under the 32 KiB a request head may
/// have, and each value under the 1 KiB a stored header may have, so the
/// stored set fills its 8 KiB.
fn large_headers() -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    let value = "x".repeat(1_000);
    for i in 0..28 {
        map.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-filler-{i:02}").as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}

/// What the rejected log holds, in bytes of its stored columns, read from
/// the store's file once the service has stopped.
fn rejected_log_bytes(data: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(data.join("tributary.db")).unwrap();
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(body_excerpt) + length(event_json) + length(error)), 0) \
         FROM events WHERE status = 'rejected'",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_large_headers_to_an_unknown_url_barely_grows_the_store() {
    let s = service().await;
    let before = s.store_bytes();
    let url = format!(
        "{}/integrations/receive/tok_unknown_0123456789abcdef",
        s.base
    );
    let headers = large_headers();
    let started = Instant::now();
    let mut sent = 0u64;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, headers) = (s.client.clone(), url.clone(), headers.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < Duration::from_secs(3) {
                    let r = client
                        .post(&url)
                        .headers(headers.clone())
                        .body(r#"{"type":"track","event":"x"}"#)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 404);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for t in tasks {
        sent += t.await.unwrap();
    }
    assert!(s.healthy().await);
    assert!(peak_rss_bytes(s.pid).unwrap() < RSS_LIMIT);
    let grown = s.store_bytes().saturating_sub(before);
    drop(s._child);
    let (entries, kept) = rejected_log_bytes(&s.data);
    eprintln!("{sent} requests: {entries} entries of {kept} bytes; the store grew {grown} bytes");
    // Each request carries 28 KB of headers: kept whole, 120 requests
    // would be 3.4 MB. The rejected log keeps at most 1 MiB a minute, each
    // entry's headers bounded to 8 KiB.
    assert!(sent >= 120, "only {sent} requests sent");
    assert!(
        entries > 0 && entries < sent,
        "{entries} entries for {sent} requests"
    );
    assert!(kept <= 1024 * 1024 + 16 * 1024, "{kept} bytes kept");
    // The file's growth includes SQLite's pages and WAL: bounded too.
    assert!(grown < 16 * 1024 * 1024, "the store grew {grown} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batchs_headers_are_kept_once_whatever_their_size() {
    let s = service().await;
    let before = s.store_bytes();
    let items: Vec<String> = (0..4_000)
        .map(|i| format!(r#"{{"type":"track","event":"E","userId":"u{i}","messageId":"b-{i}"}}"#))
        .collect();
    let body = format!("[{}]", items.join(","));
    let started = Instant::now();
    let r = s
        .client
        .post(format!("{}/integrations/receive/{TOKEN}", s.base))
        .headers(large_headers())
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 4_000, "{answer}");
    let took = started.elapsed();
    assert!(s.healthy().await);
    assert!(peak_rss_bytes(s.pid).unwrap() < RSS_LIMIT);
    let grown = s.store_bytes().saturating_sub(before);
    // 4,000 events of about 60 bytes: the rows, indexes and WAL come to a
    // few MB. Written with every event, 8 KiB of headers each were 32 MB
    // more (and, before they were bounded, 4,000 times whatever was sent).
    eprintln!("the batch grew the store by {grown} bytes in {took:?}");
    assert!(
        grown < 24 * 1024 * 1024,
        "the batch grew the store by {grown} bytes in {took:?}"
    );
    // Each event still shows the (bounded) headers it came with.
    let page = s.admin("events?event_type=E&limit=3").await;
    for e in page["items"].as_array().unwrap() {
        let headers = &e["event"]["headers"];
        assert_eq!(headers["content-type"], "application/json", "{e}");
        assert!(headers["tributary-dropped-headers"].is_string(), "{e}");
    }
}

fn assert_nowhere_at_rest(data: &Path, secrets: &[&str]) {
    let contents = dir_contents(data);
    for secret in secrets {
        let found = contents
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(!found, "`{secret}` is stored in {}", data.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_not_kept_at_rest_and_files_are_private() {
    let s = service().await;
    let url = format!("{}/integrations/receive/{TOKEN}", s.base);
    let api_token = "xat_secret_value_0123456789";
    let auth_token = "xau_secret_value_0123456789";
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-api-token", api_token)
        .header("x-auth-token", auth_token)
        .header("x-request-origin", "kept")
        .body(r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"c-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A rejected Tracking API call (a track without `event`) whose body
    // holds a valid write key: the key must not reach the excerpt.
    let r = s
        .client
        .post(format!("{}/v1/track", s.base))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"writeKey":"{WRITE_KEY}","type":"track","userId":"u1"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    let accepted = s.admin("events?status=accepted&limit=1").await;
    let headers = &accepted["items"][0]["event"]["headers"];
    assert_eq!(headers["x-request-origin"], "kept", "{headers}");
    assert!(headers.get("x-api-token").is_none(), "{headers}");
    assert!(headers.get("x-auth-token").is_none(), "{headers}");
    let rejected = s.admin("events?status=rejected&limit=1").await;
    let excerpt = rejected["items"][0]["body_excerpt"].as_str().unwrap();
    assert!(excerpt.contains(r#""writeKey":"[redacted]""#), "{excerpt}");

    // Stop the service so everything it wrote is in the files, then look.
    drop(s._child);
    assert_nowhere_at_rest(&s.data, &[api_token, auth_token, WRITE_KEY]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.data), 0o700);
        for entry in std::fs::read_dir(&s.data).unwrap().flatten() {
            let path = entry.path();
            if path.is_file() {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
    }
}
