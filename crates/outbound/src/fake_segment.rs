//! A fake Segment HTTP Tracking API for tests: a real axum server on loopback
//! that records every `/v1/batch` request and answers from a script per write
//! key (200 by default; 5xx, 429 with `Retry-After`, 400, or a hang).

use std::{
    collections::{HashMap, VecDeque},
    io::Read,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine;
use serde_json::Value;

/// One scripted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200 `{"success": true}`.
    Ok,
    /// This status with a small JSON body.
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    RateLimited {
        /// The header's value.
        retry_after_secs: u64,
    },
    /// Never answers (until the client gives up).
    Hang,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The write key from the Basic credentials, if they were well formed.
    pub write_key: Option<String>,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// Whether the body was gzip-encoded.
    pub gzip: bool,
    /// Size of the uncompressed body in bytes.
    pub body_bytes: usize,
    /// The uncompressed body, parsed (`Null` if it was not JSON).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

impl Recorded {
    /// The `messageId`s in the batch, in order.
    pub fn message_ids(&self) -> Vec<String> {
        self.body["batch"]
            .as_array()
            .map(|b| {
                b.iter()
                    .filter_map(|e| e["messageId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    scripts: HashMap<String, VecDeque<Reply>>,
    rejects: Vec<String>,
    recorded: Vec<Recorded>,
    latency: Duration,
    counting_only: bool,
    accepted_by_key: HashMap<String, usize>,
    concurrent: usize,
    max_concurrent: usize,
}

/// The fake; clones share state.
#[derive(Clone)]
pub struct FakeSegment {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
}

impl FakeSegment {
    /// Starts a fake on `127.0.0.1` with an OS-chosen port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/batch", post(batch))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { inner, addr }
    }

    /// The host to configure (`http://127.0.0.1:<port>`).
    pub fn host(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues answers for requests with `write_key`, used in order; once
    /// used up, requests get 200.
    pub fn script(&self, write_key: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock()
            .scripts
            .entry(write_key.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Answers 400 to any batch holding an event whose JSON contains `marker`
    /// (like Segment refusing one bad event in a batch).
    pub fn reject_events_containing(&self, marker: &str) {
        self.lock().rejects.push(marker.to_owned());
    }

    /// Adds latency to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Keeps only counts, not bodies (for load tests with many events).
    pub fn set_counting_only(&self, counting_only: bool) {
        self.lock().counting_only = counting_only;
    }

    /// How many events were accepted (2xx) for `write_key` (kept even in
    /// counting-only mode).
    pub fn accepted_count(&self, write_key: &str) -> usize {
        self.lock()
            .accepted_by_key
            .get(write_key)
            .copied()
            .unwrap_or(0)
    }

    /// The most requests the fake was answering at once.
    pub fn max_concurrent(&self) -> usize {
        self.lock().max_concurrent
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// `messageId`s of every event in a request answered 2xx, in order.
    pub fn accepted(&self) -> Vec<String> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(Recorded::message_ids)
            .collect()
    }

    /// Accepted events (whole JSON objects) for one write key.
    pub fn accepted_events(&self, write_key: &str) -> Vec<Value> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| (200..300).contains(&r.status) && r.write_key.as_deref() == Some(write_key))
            .flat_map(|r| r.body["batch"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits until at least `n` events were accepted or `timeout` passes;
    /// returns the accepted ids.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n || tokio::time::Instant::now() >= deadline {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn write_key_of(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let key = raw
        .as_deref()
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_suffix(':').map(str::to_owned));
    (key, raw)
}

async fn batch(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (write_key, authorization) = write_key_of(&headers);
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let raw = if gzip {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) => Vec::new(),
        }
    } else {
        body.to_vec()
    };
    let parsed: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let (reply, latency) = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        let scripted = write_key
            .as_ref()
            .and_then(|k| inner.scripts.get_mut(k))
            .and_then(VecDeque::pop_front);
        let rejected = parsed["batch"].as_array().is_some_and(|events| {
            events.iter().any(|e| {
                let text = e.to_string();
                inner.rejects.iter().any(|m| text.contains(m.as_str()))
            })
        });
        let reply = match scripted {
            Some(r) => r,
            None if parsed.is_null() || rejected => Reply::Status(400),
            None => Reply::Ok,
        };
        let status = match &reply {
            Reply::Ok => 200,
            Reply::Status(s) => *s,
            Reply::RateLimited { .. } => 429,
            Reply::Hang => 0,
        };
        if (200..300).contains(&status)
            && let (Some(key), Some(events)) = (&write_key, parsed["batch"].as_array())
        {
            *inner.accepted_by_key.entry(key.clone()).or_default() += events.len();
        }
        let body = if inner.counting_only {
            Value::Null
        } else {
            parsed
        };
        inner.recorded.push(Recorded {
            write_key,
            authorization,
            gzip,
            body_bytes: raw.len(),
            body,
            status,
        });
        inner.concurrent += 1;
        inner.max_concurrent = inner.max_concurrent.max(inner.concurrent);
        (reply, inner.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if reply != Reply::Hang {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.concurrent -= 1;
    }
    match reply {
        Reply::Ok => (StatusCode::OK, r#"{"success":true}"#).into_response(),
        Reply::Status(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            r#"{"code":"fake","message":"scripted failure"}"#,
        )
            .into_response(),
        Reply::RateLimited { retry_after_secs } => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}
