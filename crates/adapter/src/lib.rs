//! Shared request handling for Tributary's source adapters.
//!
//! Every adapter (`tributary-segment`, `-rudderstack`, `-http-legacy`,
//! `-http`) is a pure function from a [`RawRequest`] (headers, body bytes,
//! receipt time, source and environment) to a [`Parsed`] (one normalized
//! event or [`ItemError`] per item) or an [`AdapterError`]. This crate holds
//! what they share:
//!
//! - [`decode_body`]: `Content-Encoding` gzip/deflate with a cap on the
//!   decompressed size (a gzip bomb is an error, never an OOM), charset and
//!   `Content-Type` tolerance;
//! - [`AdapterError`] with its HTTP-agnostic [`ErrorCategory`] and the
//!   error body [`ErrorBody`] (docs/product-decisions.md, "Answers");
//! - [`verify`](mod@verify): every verification scheme of
//!   `tributary_core::config::VerificationScheme`, over raw bytes, in
//!   constant time;
//! - [`parse_timestamp`]: lenient RFC 3339.
//!
//! No I/O, no async, no HTTP types.
//!
//! ```
//! use chrono::Utc;
//! use tributary_adapter::{ErrorCategory, RawRequest, decode_body, parse_json};
//!
//! let req = RawRequest::new("web", "production", br#"{"type":"track"}"#.to_vec(), Utc::now())
//!     .with_header("Content-Type", "application/json; charset=utf-8");
//! let body = decode_body(&req)?;
//! assert_eq!(parse_json(&body)?["type"], "track");
//!
//! let bad = RawRequest::new("web", "production", b"{".to_vec(), Utc::now());
//! let err = parse_json(&decode_body(&bad)?).unwrap_err();
//! assert_eq!(err.category(), ErrorCategory::MalformedJson);
//! assert_eq!(err.to_body().error.code, "malformed_json");
//! # Ok::<(), tributary_adapter::AdapterError>(())
//! ```

mod body;
mod error;
mod parsed;
mod request;
#[cfg(feature = "testing")]
pub mod testing;
mod timestamp;
pub mod verify;

pub use body::decode_body;
pub use error::{AdapterError, ErrorBody, ErrorCategory, ErrorDetail, ItemError};
pub use parsed::{Note, Parsed, object_or_array, parse_json};
pub use request::{IdSource, RawRequest};
pub use timestamp::{parse_timestamp, timestamp_from_json};
pub use verify::{VerificationFailure, VerificationOutcome};
