//! The ingest service behind the `tributary-ingest` binary: HTTP routes
//! (receive URLs, the Segment-compatible Tracking API, the admin API,
//! health and metrics), the embedded default configuration, and start-up and
//! shutdown wiring. The request path itself lives in `tributary-pipeline`;
//! actions run in `tributary-actions` workers, never inside a request.
//!
//! Embedding it: [`Service::build`] opens the store and makes everything
//! but the sockets; [`Service::router`] is a plain axum `Router` to serve or
//! nest; [`Service::start`] runs the workers, retention and configuration
//! refresher. No banner, no socket, no process-wide state
//! (`examples/embed_in_axum.rs` runs one inside another axum app).
//!
//! ```no_run
//! # async fn demo(config: tributary_core::config::Config) -> anyhow::Result<()> {
//! use tributary_ingest::Service;
//!
//! let service = Service::build(config, Vec::new()).await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let running = service.start(&shutdown);
//! let app = axum::Router::new().nest("/tributary", service.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! shutdown.cancel();
//! running.stop().await;
//! # Ok(()) }
//! ```

mod app;
pub mod embedded;
mod http;
pub mod serve;
mod service;
mod state;
pub mod transfer;

pub use app::app;
pub use service::{Running, SHUTDOWN_GRACE, Service};
pub use state::AppState;
