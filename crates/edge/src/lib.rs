//! The network edge of Tributary's two binaries, `tributary-ingest` and
//! `tributary-forwarder`: what stands between a hostile socket and a handler.
//!
//! - [`serve`]: accepts connections under a limit ([`ConnectionLimits`]),
//!   closes connections that take too long to send a request head or sit
//!   idle, and, when the limit is reached, closes the oldest connections that
//!   have no request in flight so a new one (a health check) gets in; with
//!   every connection busy, accepting waits (backpressure). Graceful
//!   shutdown finishes the requests in flight.
//! - [`raise_fd_limit`] and [`fit_connections`]: the soft file-descriptor
//!   limit raised to the hard one at start, and the connection limit kept
//!   under it.
//! - [`BodyBudget`]: a global budget of request-body bytes being read at
//!   once. A handler reserves after it has checked the route or credential
//!   and before it reads; beyond the budget it answers 503 with
//!   `Retry-After` instead of reading. [`Reservation::read`] bounds the time
//!   to read the body, and only that.
//! - [`attacks`] (feature `attacks`): the bounded, loopback-only attacks the
//!   binaries' security suites run against themselves.
//!
//! ```
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tributary_edge::{ConnectionLimits, serve};
//!
//! let router = Router::new().route("/healthz", get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let limits = ConnectionLimits {
//!     max_connections: 1_000,
//!     ..ConnectionLimits::default()
//! };
//! // Stops (after the requests in flight) when the future completes.
//! serve(listener, router, limits, tokio::time::sleep(Duration::from_millis(10))).await
//! # }
//! ```

#[cfg(feature = "attacks")]
pub mod attacks;
mod budget;
mod error;
mod fd;
mod serve;

pub use budget::{BodyBudget, Reservation};
pub use error::BodyError;
pub use fd::{FD_RESERVE, fit_connections, raise_fd_limit};
pub use serve::{ConnectionLimits, MAX_HEADER_BYTES, serve};
// The defaults live with the configuration model, which both binaries read.
pub use tributary_core::config::{
    DEFAULT_BODY_BUDGET_BODIES, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
