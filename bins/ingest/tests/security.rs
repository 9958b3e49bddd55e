//! The security suite: each attack on the network edge that fits in CI time,
//! bounded in count and duration, over loopback, against the real
//! `tributary-ingest` binary. Under each, `/healthz` keeps answering and the
//! process's peak memory stays under 300 MB (docs/security.md). The last
//! tests attack what it keeps: its store grows by a bounded amount and no
//! secret reaches it.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod process;

use process::{ADMIN, ConfigLines, admin_get, dir_bytes, dir_contents, free_port, write_config};
use tributary_edge::attacks::{
    answer_past_held_budget, healthz_answers, idle_flood, partial_request, peak_rss_bytes,
    refused_over_budget, slowloris, status_of,
};

const TOKEN: &str = "seg_security_0123456789abcdefgh";
const WRITE_KEY: &str = "wk_security_0123456789abcdef";
const MAX_RSS: u64 = 300 * 1024 * 1024;

/// The binary on a free port with `server` keys added to `[server]`, its
/// output in `ingest.log`; killed when dropped.
struct Ingest {
    child: Child,
    addr: SocketAddr,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ingest {
    async fn start(server: &str) -> Self {
        Self::start_with(server, "warn", None).await
    }

    /// `soft_fd_limit` starts the binary under a lower soft open-file limit,
    /// as a service manager might.
    async fn start_with(server: &str, log_level: &str, soft_fd_limit: Option<u32>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let environment = format!(r#"write_key = "{WRITE_KEY}""#);
        let config = write_config(
            dir.path(),
            port,
            TOKEN,
            ConfigLines {
                server,
                environment: &environment,
                mapping: None,
            },
        );
        let log = dir.path().join("ingest.log");
        let out = std::fs::File::create(&log).unwrap();
        let bin = env!("CARGO_BIN_EXE_tributary-ingest");
        let mut command = match soft_fd_limit {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {n} && exec \"$0\" --config \"$1\""))
                    .arg(bin)
                    .arg(&config);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.arg("--config").arg(&config);
                c
            }
        };
        let child = command
            .env("RUST_LOG", log_level)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let ingest = Self {
            child,
            addr,
            base: format!("http://{addr}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ingest.healthy().await {
            assert!(
                Instant::now() < deadline,
                "did not start:\n{}",
                ingest.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        ingest
    }

    async fn healthy(&self) -> bool {
        healthz_answers(self.addr).await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The store's directory.
    fn data(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Stops the process, keeping its files.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn admin(&self, path: &str) -> serde_json::Value {
        admin_get(&self.base, path).await
    }

    fn assert_memory_bounded(&self) {
        if let Some(peak) = peak_rss_bytes(self.child.id()) {
            assert!(peak <= MAX_RSS, "peak RSS {} MB", peak / (1024 * 1024));
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request head for `path` declaring a body of `length` bytes.
fn head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_leaves_healthz_answering() {
    // The suite opens many sockets itself.
    let fds = tributary_edge::raise_fd_limit().unwrap_or(4_096);
    let flood = usize::try_from(fds.saturating_sub(200))
        .unwrap_or(1_500)
        .min(1_500);
    // Started under a soft limit below the flood: the binary raises it to
    // the hard limit and keeps its connections under `max_connections`.
    let ingest = Ingest::start_with("max_connections = 200", "warn", Some(512)).await;
    let held = idle_flood(ingest.addr, flood).await;
    assert!(
        held.len() >= flood / 2,
        "only {} connections opened",
        held.len()
    );
    assert!(
        ingest.healthy().await,
        "no /healthz answer with {} idle connections open:\n{}",
        held.len(),
        ingest.log()
    );
    // And again, still under the flood.
    assert!(ingest.healthy().await);
    ingest.assert_memory_bounded();
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off_after_the_header_timeout() {
    let ingest = Ingest::start("header_read_timeout = \"1s\"").await;
    let path = format!("/integrations/receive/{TOKEN}");
    let closed = slowloris(
        ingest.addr,
        &path,
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(closed, "a head trickled for 10 s was still being read");
    assert!(ingest.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_for_unknown_tokens_are_refused_without_being_read() {
    let ingest = Ingest::start("").await;
    let path = "/integrations/receive/seg_not_a_configured_token_00000";
    // The declared body never comes: the answer cannot wait for it.
    let answer = partial_request(
        ingest.addr,
        &head(path, 4 << 20, ""),
        b"{\"type\":",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&answer), Some(404), "{answer}");
    assert!(answer.contains("unknown_token"), "{answer}");

    // Many large bodies at once to an unknown token pin no memory.
    let url = format!("{}{path}", ingest.base);
    let body = vec![b' '; 4 << 20];
    let client = reqwest::Client::new();
    let sends = (0..100).map(|_| {
        let client = client.clone();
        let url = url.clone();
        let body = body.clone();
        tokio::spawn(async move { client.post(url).body(body).send().await })
    });
    for send in sends {
        // Refused mid-upload is fine: the point is what the server kept.
        let _ = send.await.unwrap();
    }
    assert!(ingest.healthy().await);
    ingest.assert_memory_bounded();

    // An unknown write key in the headers is refused the same way.
    let answer = partial_request(
        ingest.addr,
        &head("/v1/track", 1 << 20, "x-write-key: wk_unknown\r\n"),
        b"{",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&answer), Some(401), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_bodies_to_a_real_token_stay_within_the_budget() {
    let ingest = Ingest::start("").await;
    let url = format!("{}/integrations/receive/{TOKEN}", ingest.base);
    // Not JSON, so what is read is refused at once and never stored.
    let body = vec![b' '; 4 << 20];
    let client = reqwest::Client::new();
    let sends: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let body = body.clone();
            tokio::spawn(async move { client.post(url).body(body).send().await })
        })
        .collect();
    let mut over_budget = 0;
    for send in sends {
        if let Ok(r) = send.await.unwrap() {
            if r.status().as_u16() == 503 {
                assert!(r.headers().contains_key("retry-after"));
                over_budget += 1;
            } else {
                assert_eq!(r.status().as_u16(), 400);
            }
        }
    }
    assert!(ingest.healthy().await, "{over_budget} answered 503");
    ingest.assert_memory_bounded();
}

#[tokio::test]
async fn past_the_body_budget_requests_get_503_with_retry_after() {
    // The budget holds exactly one largest body.
    let ingest = Ingest::start(
        "max_body_bytes = 65536\nbody_budget_bytes = 65536\nbody_read_timeout = \"20s\"",
    )
    .await;
    let path = format!("/integrations/receive/{TOKEN}");
    // A slow sender holds the whole budget while its body trickles in.
    let body = br#"{"type":"track","event":"E","userId":"u1"}"#;
    let (answer, holder) = answer_past_held_budget(
        ingest.addr,
        (&head(&path, 65_536, ""), b"{\"type\":"),
        (&head(&path, body.len(), ""), body),
        Duration::from_secs(20),
    )
    .await;
    assert!(refused_over_budget(&answer), "{answer}");
    assert!(ingest.healthy().await);
    drop(holder);
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_gets_408_and_nothing_is_stored() {
    let ingest = Ingest::start("body_read_timeout = \"1s\"").await;
    let path = format!("/integrations/receive/{TOKEN}");
    let body = br#"{"type":"track","event":"E","userId":"u1","messageId":"slow-body-1"}"#;
    let answer = partial_request(
        ingest.addr,
        &head(&path, body.len(), ""),
        &body[..10],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    let events = reqwest::Client::new()
        .get(format!("{}/api/v1/events", ingest.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(events.status().is_success());
    let events = events.text().await.unwrap();
    assert!(!events.contains("slow-body-1"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_slower_than_the_body_read_timeout_is_answered_with_what_happened() {
    let ingest = Ingest::start("body_read_timeout = \"1s\"").await;
    // Another connection holds SQLite's write lock, so the service's commit
    // waits (up to its 5 s busy timeout) well past the body read timeout.
    let db = rusqlite::Connection::open(ingest.data().join("tributary.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let url = format!("{}/integrations/receive/{TOKEN}", ingest.base);
    let request = tokio::spawn(async move {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"type":"track","event":"E","userId":"u1","messageId":"slow-commit-1"}"#)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.text().await.unwrap(),
            started.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    db.execute_batch("COMMIT").unwrap();
    let (status, answer, took) = request.await.unwrap();
    // The body was read at once; only the commit was slow, and the answer
    // says it was accepted, not 408 (a client would send it again).
    assert!(
        took >= Duration::from_secs(2),
        "answered after {took:?}: {answer}"
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(r#""accepted":1"#), "{answer}");
    let events = ingest.admin("events?event_type=E").await;
    assert!(events.to_string().contains("slow-commit-1"), "{events}");
}

#[tokio::test]
async fn receive_tokens_never_reach_the_logs_even_at_debug() {
    let ingest = Ingest::start_with("", "debug", None).await;
    let client = reqwest::Client::new();
    let unknown = "seg_unknown_token_0123456789abcd";
    for token in [TOKEN, unknown] {
        let r = client
            .post(format!("{}/integrations/receive/{token}", ingest.base))
            .header("content-type", "application/json")
            .body(r#"{"type":"track","event":"E","userId":"u1"}"#)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500);
    }
    // Give the log writer a moment to flush the last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = ingest.log();
    assert!(
        log.contains("/integrations/receive/{token}"),
        "no request span in the debug log:\n{log}"
    );
    assert!(!log.contains(TOKEN), "a receive token in the log:\n{log}");
    assert!(
        !log.contains(unknown),
        "a presented token in the log:\n{log}"
    );
}

/// The embedded default listens on 127.0.0.1:8080. With the port taken, the
/// first run writes the configuration but cannot print it; the next run that
/// listens prints its secrets in full, once.
#[test]
fn first_run_secrets_are_printed_by_the_first_run_that_listens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Held by this test for its whole run. Another test's embedded default
    // may hold it for a moment (test binaries can run in parallel), so wait
    // for it; a service that keeps it leaves it taken all the same.
    let deadline = Instant::now() + Duration::from_secs(20);
    let _taken = loop {
        match TcpListener::bind("127.0.0.1:8080") {
            Ok(listener) => break Some(listener),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break None,
        }
    };
    let run = |data: &Path| {
        Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
            .arg("--data-dir")
            .arg(data)
            .env_remove("TRIBUTARY_CONFIG")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = run(&data).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("127.0.0.1:8080"), "{stderr}");
    let conf = data.join("tributary.toml");
    let generated = std::fs::read_to_string(&conf).unwrap();
    let admin = generated
        .split('"')
        .find(|part| part.starts_with("adm_"))
        .unwrap()
        .to_owned();
    assert!(!stdout.contains(&admin), "{stdout}");

    let port = free_port();
    std::fs::write(
        &conf,
        generated.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let banner_of = |data: &Path| {
        let mut child = run(data);
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !banner.contains("Admin API:") && Instant::now() < deadline {
            if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
                banner.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
        // Whatever follows the admin line in the same banner.
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(chunk) = rx.try_recv() {
            banner.push_str(&String::from_utf8_lossy(&chunk));
        }
        let _ = child.kill();
        let _ = child.wait();
        banner
    };
    let second = banner_of(&data);
    assert!(second.contains(&admin), "second run:\n{second}");
    assert!(second.contains("Try it:"), "second run:\n{second}");
    let third = banner_of(&data);
    assert!(third.contains("Admin API:"), "third run:\n{third}");
    assert!(!third.contains(&admin), "third run:\n{third}");
}

// What the service keeps: the rejected log, stored headers, credentials at rest.

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
    let mut s = Ingest::start("").await;
    let client = reqwest::Client::new();
    let before = dir_bytes(&s.data());
    let url = format!(
        "{}/integrations/receive/tok_unknown_0123456789abcdef",
        s.base
    );
    let headers = large_headers();
    let started = Instant::now();
    let mut sent = 0u64;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, headers) = (client.clone(), url.clone(), headers.clone());
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
    s.assert_memory_bounded();
    let grown = dir_bytes(&s.data()).saturating_sub(before);
    s.stop();
    let (entries, kept) = rejected_log_bytes(&s.data());
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
    let s = Ingest::start("").await;
    let client = reqwest::Client::new();
    let before = dir_bytes(&s.data());
    let items: Vec<String> = (0..4_000)
        .map(|i| format!(r#"{{"type":"track","event":"E","userId":"u{i}","messageId":"b-{i}"}}"#))
        .collect();
    let body = format!("[{}]", items.join(","));
    let started = Instant::now();
    let r = client
        .post(format!("{}/integrations/receive/{TOKEN}", s.base))
        .headers(large_headers())
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 4_000, "{answer}");
    let took = started.elapsed();
    assert!(s.healthy().await);
    s.assert_memory_bounded();
    let grown = dir_bytes(&s.data()).saturating_sub(before);
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
    let mut s = Ingest::start("").await;
    let client = reqwest::Client::new();
    let url = format!("{}/integrations/receive/{TOKEN}", s.base);
    let api_token = "xat_secret_value_0123456789";
    let auth_token = "xau_secret_value_0123456789";
    let r = client
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
    let r = client
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
    s.stop();
    let data = s.data();
    assert_nowhere_at_rest(&data, &[api_token, auth_token, WRITE_KEY]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        for entry in std::fs::read_dir(&data).unwrap().flatten() {
            let path = entry.path();
            if path.is_file() {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
    }
}
