//! Bounded attacks on a server over loopback, for the binaries' security
//! suites: an idle-connection flood, a slowloris head, a request whose body
//! never comes, and the server's peak memory. Each one is bounded in count
//! and time so a suite runs in seconds.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// Opens up to `count` connections that never send a byte, and keeps them
/// open as long as the returned sockets live. Connections the server
/// refuses or resets are not retried; the number opened is the length.
pub async fn idle_flood(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => open.push(stream),
            _ => break,
        }
    }
    open
}

/// Sends a request head one small piece at a time, a piece every
/// `interval`, never finishing it. Returns whether the server closed the
/// connection within `give_up`.
pub async fn slowloris(
    addr: SocketAddr,
    path: &str,
    interval: Duration,
    give_up: Duration,
) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return true;
    };
    let head = format!("POST {path} HTTP/1.1\r\nhost: localhost\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return true;
    }
    let deadline = Instant::now() + give_up;
    let mut n = 0u32;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        n += 1;
        if stream
            .write_all(format!("x-slow-{n}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            return true;
        }
        // Anything but "nothing yet" means the server gave up on the head:
        // it closed, reset, or answered an error before closing.
        if tokio::time::timeout(interval, stream.read(&mut buf))
            .await
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// Sends `head` (a full request head, ending in a blank line) and the first
/// bytes of its body, then waits up to `wait` for the answer without sending
/// the rest. Returns the bytes answered (empty when none came).
pub async fn partial_request(
    addr: SocketAddr,
    head: &str,
    body_start: &[u8],
    wait: Duration,
) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body_start).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                // A whole JSON answer: the head and a body that ends.
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Ok(Err(e)) => {
                if answer.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `head` and the first bytes of its body and keeps the request open
/// (unfinished) as long as the returned socket lives: a slow upload holding
/// whatever the server reserved for it.
pub async fn hold_request(
    addr: SocketAddr,
    head: &str,
    body_start: &[u8],
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body_start).await?;
    Ok(stream)
}

/// Sends a whole request (`head` and `body`) again and again, each on a new
/// connection, until it is answered `status` or `within` has passed (a
/// request already held may not have reached the server yet). Returns the
/// last answer.
pub async fn until_answered(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    status: u16,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = partial_request(addr, head, body, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        if status_of(&answer) == Some(status) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds the whole body budget with a request whose body never completes
/// (`hold_head` and the start of its body), then sends the probe request
/// until it is answered 503, within `within`. A probe can reach the budget
/// first, and the holder is then refused itself and the budget stays free;
/// so a holder that did not make the probes wait is opened again. Returns
/// the probe's last answer and the connection holding the budget.
pub async fn answer_past_held_budget(
    addr: SocketAddr,
    (hold_head, hold_start): (&str, &[u8]),
    (probe_head, probe_body): (&str, &[u8]),
    within: Duration,
) -> (String, TcpStream) {
    let deadline = Instant::now() + within;
    loop {
        let holder = hold_request(addr, hold_head, hold_start)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let answer =
            until_answered(addr, probe_head, probe_body, 503, Duration::from_secs(3)).await;
        if status_of(&answer) == Some(503) || Instant::now() > deadline {
            return (answer, holder);
        }
    }
}

/// Whether `GET /healthz` on a new connection is answered 200 within 5 s.
pub async fn healthz_answers(addr: SocketAddr) -> bool {
    let head = "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let answer = partial_request(addr, head, b"", Duration::from_secs(5))
        .await
        .unwrap_or_default();
    status_of(&answer) == Some(200)
}

/// Whether a raw answer is the body budget's refusal: 503, `Retry-After: 1`
/// and the error code [`crate::BodyError::OverBudget`] answers with.
pub fn refused_over_budget(answer: &str) -> bool {
    status_of(answer) == Some(503)
        && answer.to_ascii_lowercase().contains("retry-after: 1")
        && answer.contains(crate::BodyError::OverBudget.code())
}

/// The status code of a raw HTTP/1.1 answer, if it has one.
pub fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The peak resident memory of process `pid` in bytes (`VmHWM` in
/// `/proc/<pid>/status`; `None` where there is no procfs).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
