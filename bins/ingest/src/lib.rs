//! The ingest service behind the `tributary-ingest` binary: HTTP routes
//! (receive URLs, the Segment-compatible Tracking API, the admin API,
//! health and metrics), the embedded default configuration, and start-up and
//! shutdown wiring. The request path itself lives in `tributary-pipeline`;
//! actions run in `tributary-actions` workers, never inside a request.
//!
//! The router is plain axum (tests drive it in process); the binary serves
//! it through `tributary-edge`, which adds the connection limits.
//!
//! ```no_run
//! # async fn demo(pipeline: std::sync::Arc<tributary_pipeline::Pipeline>) {
//! use tributary_edge::ConnectionLimits;
//! use tributary_ingest::{AppState, app};
//!
//! let router = app(AppState::new(pipeline));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! let stop = std::future::pending::<()>();
//! tributary_edge::serve(listener, router, ConnectionLimits::default(), stop)
//!     .await
//!     .unwrap();
//! # }
//! ```

mod app;
pub mod embedded;
mod http;
pub mod serve;
mod state;
pub mod transfer;

pub use app::app;
pub use state::AppState;
