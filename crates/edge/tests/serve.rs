//! `serve` over loopback: shedding at the connection limit, the idle
//! timeout, and a shutdown that does not wait for idle connections.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use tokio::{io::AsyncReadExt, net::TcpStream, sync::oneshot};
use tributary_edge::{ConnectionLimits, serve};

async fn start(
    limits: ConnectionLimits,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/healthz", get(|| async { "{}" }));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(listener, router, limits, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, server)
}

/// Whether the server closed `stream` within `wait` (it never sends on an
/// idle connection otherwise).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// Sends `GET /healthz` on `stream` and returns the start of the answer.
async fn healthz(stream: &mut TcpStream) -> String {
    tokio::io::AsyncWriteExt::write_all(stream, HEALTHZ.as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn at_the_limit_the_oldest_idle_connection_makes_room() {
    let (addr, _stop, _server) = start(ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    })
    .await;
    let mut oldest = TcpStream::connect(addr).await.unwrap();
    // Accepted in order: the second connects once the first is in.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newer = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newest = TcpStream::connect(addr).await.unwrap();
    let answer = healthz(&mut newest).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed_within(&mut oldest, Duration::from_secs(5)).await);
    assert!(!closed_within(&mut newer, Duration::from_millis(300)).await);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (addr, _stop, _server) = start(ConnectionLimits {
        idle_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    })
    .await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let (addr, stop, server) = start(ConnectionLimits::default()).await;
    let _idle = TcpStream::connect(addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    assert!(healthz(&mut kept_alive).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returned with idle connections open")
        .unwrap();
}
