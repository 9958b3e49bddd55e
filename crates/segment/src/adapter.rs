//! The Segment adapter: request in, [`Parsed`] out.

use serde_json::Value;
use tributary_adapter::{
    AdapterError, Parsed, RawRequest, VerificationOutcome, decode_body, parse_json, verify,
};
use tributary_core::{
    Secret,
    config::{SourceEnvironment, SourceKind},
    json::json_type,
};

use crate::{
    TrackingCall,
    envelope::{self, ItemPointer, Items},
    item::{RequestContext, normalize},
};

/// Which platform's rules a Segment-spec body follows. They differ only in
/// the event-time rule and in RudderStack's extra `merge` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Segment, Jitsu, Freshpaint: skew correction whenever `sentAt` and
    /// an original timestamp are present.
    Segment,
    /// RudderStack: skew correction only when the event has no `timestamp`;
    /// `merge` is accepted.
    Rudderstack,
}

/// The adapter for the `segment`, `jitsu` and `freshpaint` kinds (all
/// Segment-spec; Freshpaint may omit `Content-Type`, which every adapter
/// tolerates).
#[derive(Clone, Copy, Debug)]
pub struct SegmentAdapter {
    kind: SourceKind,
}

impl SegmentAdapter {
    /// An adapter for a Segment-shaped kind.
    pub fn new(kind: SourceKind) -> Self {
        Self { kind }
    }

    /// The kind it was made for.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// A webhook delivery on the receive URL: verifies the decoded body
    /// bytes with the source environment's scheme, then normalizes a single
    /// event, a bare array (Webhooks (Actions) batching) or a batch envelope.
    pub fn parse(
        &self,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        parse_segment_shaped(req, settings, Dialect::Segment, None)
    }

    /// A Segment-compatible Tracking API call (`/v1/track` ... `/v1/batch`):
    /// the path implies the type of a single event. No signature check (the
    /// SDKs do not sign); authenticate the write key with
    /// [`authenticate_write_key`](crate::authenticate_write_key) using
    /// [`Parsed::body_write_key`].
    pub fn parse_tracking_api(
        &self,
        call: TrackingCall,
        req: &RawRequest,
        settings: &SourceEnvironment,
    ) -> Result<Parsed, AdapterError> {
        parse_segment_shaped(req, settings, Dialect::Segment, Some(call))
    }
}

/// The shared Segment-spec pipeline (used by the RudderStack adapter too):
/// decode, verify (webhook deliveries only), parse, split, normalize.
pub fn parse_segment_shaped(
    req: &RawRequest,
    settings: &SourceEnvironment,
    dialect: Dialect,
    call: Option<TrackingCall>,
) -> Result<Parsed, AdapterError> {
    let body = decode_body(req)?;
    let verification = match call {
        None => verify::enforce(settings.verification.as_ref(), req, &body)?,
        Some(_) => VerificationOutcome::NotConfigured,
    };
    let value = parse_json(&body)?;
    drop(body);
    let Items {
        items,
        prefix,
        envelope,
        single,
    } = match call {
        Some(TrackingCall::Batch) => envelope::split(value, true)?,
        Some(_) => match value {
            Value::Object(_) => envelope::split(value, false).and_then(|items| {
                if items.single {
                    Ok(items)
                } else {
                    Err(AdapterError::schema(
                        "invalid_value",
                        "/batch",
                        "a batch goes to /v1/batch",
                    ))
                }
            })?,
            other => {
                return Err(AdapterError::schema(
                    "not_an_object",
                    "",
                    format!(
                        "the body must be one event object, not {}",
                        json_type(&other)
                    ),
                ));
            }
        },
        None => envelope::split(value, false)?,
    };
    let mut envelope = envelope;
    let mut body_write_key = envelope
        .as_mut()
        .and_then(|e| e.remove("writeKey"))
        .and_then(write_key_of);
    let headers = req.stored_headers(settings.verification.as_ref());
    let cx = RequestContext {
        req,
        dialect,
        headers: &headers,
        implied_type: call.and_then(TrackingCall::implied_type),
    };
    let mut notes = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let pointer = ItemPointer { prefix, index };
        let Value::Object(mut item) = item else {
            let problem = tributary_adapter::ItemError::new(
                index,
                "not_an_object",
                pointer.to_string(),
                format!("each event must be an object, not {}", json_type(&item)),
            );
            out.push(Err(problem));
            continue;
        };
        // A write key is a credential: it authenticates the request and is
        // never stored with the event.
        if let Some(key) = item.remove("writeKey").and_then(write_key_of) {
            body_write_key.get_or_insert(key);
        }
        if let Some(envelope) = &envelope {
            envelope::apply(envelope, &mut item);
        }
        out.push(normalize(&cx, pointer, item, &mut notes));
    }
    // A single-event body with a problem is a rejected request (422), not
    // a batch with one bad element.
    if single && let Some(Err(problem)) = out.pop_if(|r| r.is_err()) {
        return Err(problem.into_request_error());
    }
    Ok(Parsed {
        items: out,
        verification,
        notes,
        body_write_key,
    })
}

fn write_key_of(v: Value) -> Option<Secret> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Secret::new(s)),
        _ => None,
    }
}
