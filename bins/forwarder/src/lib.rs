//! `tributary-forwarder`: receives the product's signed message lifecycle
//! webhooks and ships them to Segment's HTTP Tracking API, durably (wiring
//! only; the work is in `tributary-outbound`).
//!
//! - [`app::app`]: the router (`POST /knock/webhooks/{environment}`,
//!   `/healthz`, `/readyz`, `/metrics`); a webhook gets 200 only once its
//!   event is in the durable queue.
//! - [`serve::serve`], [`backfill::backfill`], [`dead_letters`]: the
//!   subcommands. [`cli::run`] parses the command line.
//! - [`config::ForwarderConfig`]: the TOML file (see `docs/forwarder.md`).
//!
//! ```
//! use tributary_core::Secret;
//! use tributary_forwarder::signature::{sign, verify};
//!
//! let secret = Secret::new("whsec_example");
//! let body = br#"{"type":"message.sent"}"#;
//! let header = sign(&secret, 1_772_359_200_000, body);
//! assert!(header.starts_with("t=1772359200000,s="));
//! assert!(verify(&secret, Some(&header), body, 1_772_359_200_500, 300_000).is_ok());
//! ```

pub mod app;
pub mod backfill;
pub mod cli;
pub mod config;
pub mod dead_letters;
pub mod serve;
pub mod signature;
