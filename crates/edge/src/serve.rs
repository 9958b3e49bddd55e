//! Serving HTTP/1.1 under a connection limit with header and idle timeouts.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::Request, response::Response};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tower::Service;
use tributary_core::config::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};

/// Largest request head (request line and headers); larger heads get 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How many connections, and how long each may wait on its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte until its head is complete; a client
    /// slower than this (slowloris) is disconnected.
    pub header_read_timeout: Duration,
    /// How long a connection may have no request in flight (keep-alive,
    /// or never sending one, or not reading its answer) before it is closed.
    pub idle_timeout: Duration,
    /// Open client connections at most. At the limit the oldest connection
    /// without a request in flight is closed for each new one; when every
    /// connection has a request in flight, accepting waits.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// The configured limits, the connection limit lowered (with a warning)
    /// to fit under the soft file-descriptor limit `fd_limit`
    /// ([`crate::fit_connections`]).
    pub fn fitted(
        header_read_timeout: Duration,
        idle_timeout: Duration,
        max_connections: usize,
        fd_limit: Option<u64>,
    ) -> Self {
        let fitted = crate::fit_connections(max_connections, fd_limit);
        if fitted < max_connections {
            tracing::warn!(
                configured = max_connections,
                max_connections = fitted,
                fd_limit,
                "server.max_connections lowered to fit the open-file limit; raise `ulimit -n` to allow more."
            );
        }
        Self {
            header_read_timeout,
            idle_timeout,
            max_connections: fitted,
        }
    }
}

/// What a connection is doing, for its timeouts and for shedding.
const IDLE: u8 = 0;
const READING_HEAD: u8 = 1;
const BUSY: u8 = 2;

/// One open connection, as the accept loop and its own watcher see it.
struct Conn {
    phase: AtomicU8,
    /// Milliseconds since [`Conns::epoch`] when `phase` was entered.
    since_ms: AtomicU64,
    shed: AtomicBool,
    wake: Notify,
    epoch: Instant,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// The first bytes of a new request start its header clock (and the
    /// watcher, asleep until the idle deadline, has to look again).
    fn bytes_arrived(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(READING_HEAD);
            self.wake.notify_one();
        }
    }

    /// Resolves when the connection has to go, naming why.
    async fn expired(&self, limits: &ConnectionLimits) -> &'static str {
        loop {
            if self.shed.load(Ordering::Acquire) {
                return "shed";
            }
            let phase = self.phase.load(Ordering::Acquire);
            let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
            let (limit, reason) = match phase {
                IDLE => (limits.idle_timeout, "idle_timeout"),
                READING_HEAD => (limits.header_read_timeout, "header_timeout"),
                // A request in flight is bounded by its handler (the
                // body-read timeout), not here; look again later.
                _ => (limits.header_read_timeout.min(limits.idle_timeout), ""),
            };
            let deadline = self.epoch + since + limit;
            if phase != BUSY && Instant::now() >= deadline {
                return reason;
            }
            let wake_at = if phase == BUSY {
                Instant::now() + limit
            } else {
                deadline
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// Every open connection, oldest first.
struct Conns {
    slots: Arc<Semaphore>,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Conns {
    fn register(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            wake: Notify::new(),
            epoch: self.epoch,
        });
        conn.enter(IDLE);
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        // A panic while holding this lock leaves the map consistent.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the oldest connection without a request in flight to close.
    fn shed_oldest_idle(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .find(|c| c.phase.load(Ordering::Acquire) != BUSY && !c.shed.load(Ordering::Acquire));
        match victim {
            Some(c) => {
                c.shed.store(true, Ordering::Release);
                c.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A socket that tells its [`Conn`] when request bytes arrive.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets the requests in flight finish and returns.
///
/// Accept errors (such as running out of descriptors) are logged and retried
/// after a pause; they never stop the server.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let conns = Arc::new(Conns {
        slots: Arc::new(Semaphore::new(max)),
        open: Mutex::new(BTreeMap::new()),
        next_id: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let stop = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_per_connection(&e) {
                        tracing::warn!(error = %e, "Accepting a connection failed; retrying shortly.");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let permit = loop {
            if let Ok(p) = conns.slots.clone().try_acquire_owned() {
                break Some(p);
            }
            // At the limit: make room by closing a connection that has no
            // request in flight; if all are busy, wait for one to finish.
            if conns.shed_oldest_idle() {
                metrics::counter!("tributary_http_connections_closed_total", "reason" => "shed")
                    .increment(1);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break None,
                p = conns.slots.clone().acquire_owned() => break p.ok(),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        };
        let Some(permit) = permit else { break };
        let _ = stream.set_nodelay(true);
        let (id, conn) = conns.register();
        let conns = conns.clone();
        let router = router.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            metrics::gauge!("tributary_http_connections_open").increment(1.0);
            serve_connection(stream, conn, router, limits, stop).await;
            conns.remove(id);
            metrics::gauge!("tributary_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    stop.cancel();
    // Every connection holds a slot until it is done.
    let _all = conns.slots.acquire_many(max as u32).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
    });
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            conn.enter(BUSY);
            let mut router = router.clone();
            let conn = conn.clone();
            async move {
                let response: Result<Response<Body>, Infallible> = router.call(req).await;
                conn.enter(IDLE);
                // Re-arm the watcher for the idle clock.
                conn.wake.notify_one();
                response
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).max_header_size(MAX_HEADER_BYTES);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "Connection ended with an error.");
                }
                return;
            }
            reason = conn.expired(&limits) => {
                tracing::debug!(reason, "Connection closed.");
                metrics::counter!("tributary_http_connections_closed_total", "reason" => reason).increment(1);
                return;
            }
            () = stop.cancelled(), if !stopping => {
                // Idle connections close now; one with a request in flight
                // closes once it is answered.
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

/// Errors that concern one connection only (it was reset before accept).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
