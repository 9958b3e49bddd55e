//! The RudderStack source adapter.
//!
//! RudderStack speaks the Segment spec with a few differences, all handled
//! by the shared Segment-spec pipeline in its RudderStack dialect:
//! identify traits often only in `context.traits` (read as the event's data
//! when top-level `traits` is absent), `rudderId`, `request_ip` and `channel`
//! kept in `raw`, `version` as a string or a number, the extra `merge` call
//! (an alias-kind event named `merge`), and rudder-server's event-time rule
//! (skew correction only when the event has no `timestamp`).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tributary_adapter::RawRequest;
//! use tributary_rudderstack::RudderstackAdapter;
//! # use tributary_core::{FieldPath, Secret, config::*, path::DataAlias};
//! # let settings = SourceEnvironment {
//! #     token: Secret::new("t"), write_key: None, api_key: None, verification: None, preprocess: None,
//! #     retired_tokens: Vec::new(),
//! #     identify: true, event_type: None, event_type_path: None, timestamp_path: None, mappings: vec![],
//! #     dedup: DedupSettings { enabled: true, window: DEFAULT_DEDUP_WINDOW,
//! #         key_path: FieldPath::compile("messageId", DataAlias::EventData).unwrap() },
//! # };
//!
//! let body = br#"{"type":"identify","userId":"usr_7Qk2","channel":"web","version":"1.1",
//!                 "context":{"traits":{"email":"mina@example.org"}},
//!                 "rudderId":"3d0f2b9e-8a51-3c2e-9f4b-1a7c6e5d4b3a"}"#;
//! let req = RawRequest::new("rudder", "production", body.to_vec(), Utc::now());
//! let parsed = RudderstackAdapter::new().parse(&req, &settings)?;
//! let event = parsed.items[0].as_ref().unwrap();
//! assert_eq!(event.event, "identify");
//! assert_eq!(event.data["email"], "mina@example.org");
//! assert_eq!(event.raw["rudderId"], "3d0f2b9e-8a51-3c2e-9f4b-1a7c6e5d4b3a");
//! # Ok::<(), tributary_adapter::AdapterError>(())
//! ```

use tributary_adapter::{AdapterError, Parsed, RawRequest};
use tributary_core::config::SourceEnvironment;
use tributary_segment::{Dialect, TrackingCall, parse_segment_shaped};

/// The adapter for the `rudderstack` kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct RudderstackAdapter;

impl RudderstackAdapter {
    /// The adapter.
    pub fn new() -> Self {
        Self
    }

    /// A Webhook-destination delivery (one event per request; arrays and
    /// batch envelopes are accepted too), verified when the source
    /// environment configures a scheme (RudderStack does not sign; a
    /// shared-secret header is the usual choice).
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        parse_segment_shaped(req, settings, Dialect::Rudderstack, None)
    }

    /// A RudderStack SDK call to the Segment-compatible Tracking API.
    pub fn parse_tracking_api(
        &self,
        call: TrackingCall,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        parse_segment_shaped(req, settings, Dialect::Rudderstack, Some(call))
    }
}
