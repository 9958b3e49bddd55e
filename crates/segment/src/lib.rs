//! The Segment-spec source adapter: Segment's Webhooks (Actions) and classic
//! webhook deliveries, the Segment-compatible Tracking API
//! (`/v1/track|identify|page|screen|group|alias|batch`), and the Jitsu and
//! Freshpaint kinds, which send the same shape.
//!
//! [`SegmentAdapter::parse`] takes a [`RawRequest`](tributary_adapter::RawRequest)
//! and the source environment's settings, checks the signature over the raw
//! bytes, and returns one normalized event (or item error) per item: a single
//! event, a bare array (Actions batching, up to [`MAX_BATCH_ITEMS`]), or a
//! batch envelope whose `context`, `integrations` and `sentAt` are applied to
//! its items. Event time follows Segment's skew correction; ids that are
//! numbers become strings; unknown fields stay in `raw`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tributary_adapter::{IdSource, RawRequest};
//! use tributary_core::config::SourceKind;
//! use tributary_segment::SegmentAdapter;
//! # use tributary_core::{FieldPath, Secret, config::*, path::DataAlias};
//! # let settings = SourceEnvironment {
//! #     token: Secret::new("t"), write_key: None, api_key: None, verification: None, preprocess: None,
//! #     retired_tokens: Vec::new(),
//! #     identify: true, event_type: None, event_type_path: None, timestamp_path: None, mappings: vec![],
//! #     dedup: DedupSettings { enabled: true, window: DEFAULT_DEDUP_WINDOW,
//! #         key_path: FieldPath::compile("messageId", DataAlias::EventData).unwrap() },
//! # };
//!
//! let body = br#"[{"type":"track","event":"Invoice Paid","userId":42,"messageId":"m1",
//!                  "properties":{"revenue":129.5}},
//!                 {"type":"track","userId":"u2"}]"#;
//! let received = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
//! let req = RawRequest::new("segment-prod", "production", body.to_vec(), received)
//!     .with_ids(IdSource::sequential(0));
//! let parsed = SegmentAdapter::new(SourceKind::Segment).parse(&req, &settings)?;
//!
//! let event = parsed.items[0].as_ref().unwrap();
//! assert_eq!(event.event, "Invoice Paid");
//! assert_eq!(event.user_id.as_deref(), Some("42"));
//! assert_eq!(event.data["revenue"], 129.5);
//! let problem = parsed.items[1].as_ref().unwrap_err();
//! assert_eq!(problem.field, "/1/event");
//! # Ok::<(), tributary_adapter::AdapterError>(())
//! ```

mod adapter;
mod clock;
mod envelope;
mod item;
mod tracking;

pub use adapter::{Dialect, SegmentAdapter, parse_segment_shaped};
pub use envelope::MAX_BATCH_ITEMS;
pub use tracking::{TrackingCall, authenticate_write_key, header_write_key};
