//! The product's outbound webhooks (message lifecycle events) as Segment
//! `track` messages (docs/product-decisions.md, "Forwarding out").
//!
//! Envelope: `{__typename, type, created_at, data: Message, event_data}`.
//! Output: `track` named `Notification <Action>` (style configurable) with
//! `userId` = the recipient, the event time as `timestamp`, and a `messageId`
//! derived from the webhook itself, so a webhook the product re-sends (or a
//! backfill of the same file) is deduplicated by Segment.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    OutboundError,
    message::{Common, Identity, Message, Track},
};

/// The message lifecycle webhook types this transform understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifecycleEvent {
    /// `message.sent`.
    Sent,
    /// `message.delivered`.
    Delivered,
    /// `message.undelivered`.
    Undelivered,
    /// `message.seen`.
    Seen,
    /// `message.unseen`.
    Unseen,
    /// `message.read`.
    Read,
    /// `message.unread`.
    Unread,
    /// `message.archived`.
    Archived,
    /// `message.unarchived`.
    Unarchived,
    /// `message.link_clicked`.
    LinkClicked,
    /// `message.interacted`.
    Interacted,
    /// `message.bounced` (no Segment counterpart in the product).
    Bounced,
    /// `message.delivery_attempted` (no Segment counterpart in the product).
    DeliveryAttempted,
}

impl LifecycleEvent {
    /// Every variant, in the product's documentation order.
    pub const ALL: [Self; 13] = [
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Seen,
        Self::Unseen,
        Self::Read,
        Self::Unread,
        Self::Archived,
        Self::Unarchived,
        Self::LinkClicked,
        Self::Interacted,
        Self::Bounced,
        Self::DeliveryAttempted,
    ];

    /// Parses a webhook `type`.
    pub fn from_type(webhook_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.webhook_type() == webhook_type)
    }

    /// The webhook `type`.
    pub fn webhook_type(self) -> &'static str {
        match self {
            Self::Sent => "message.sent",
            Self::Delivered => "message.delivered",
            Self::Undelivered => "message.undelivered",
            Self::Seen => "message.seen",
            Self::Unseen => "message.unseen",
            Self::Read => "message.read",
            Self::Unread => "message.unread",
            Self::Archived => "message.archived",
            Self::Unarchived => "message.unarchived",
            Self::LinkClicked => "message.link_clicked",
            Self::Interacted => "message.interacted",
            Self::Bounced => "message.bounced",
            Self::DeliveryAttempted => "message.delivery_attempted",
        }
    }

    /// Whether the product itself forwards this event to Segment.
    pub fn has_segment_counterpart(self) -> bool {
        !matches!(self, Self::Bounced | Self::DeliveryAttempted)
    }

    fn action_words(self) -> &'static [&'static str] {
        match self {
            Self::Sent => &["Sent"],
            Self::Delivered => &["Delivered"],
            Self::Undelivered => &["Undelivered"],
            Self::Seen => &["Seen"],
            Self::Unseen => &["Unseen"],
            Self::Read => &["Read"],
            Self::Unread => &["Unread"],
            Self::Archived => &["Archived"],
            Self::Unarchived => &["Unarchived"],
            Self::LinkClicked => &["Clicked"],
            Self::Interacted => &["Interacted"],
            Self::Bounced => &["Bounced"],
            Self::DeliveryAttempted => &["Delivery", "Attempted"],
        }
    }

    /// The Segment event name in a style.
    pub fn segment_event_name(self, style: NameStyle) -> String {
        let mut words = vec!["Notification"];
        words.extend_from_slice(self.action_words());
        match style {
            NameStyle::Title => words.join(" "),
            NameStyle::Sentence => {
                let mut out = String::from("Notification");
                for w in &words[1..] {
                    out.push(' ');
                    out.push_str(&w.to_lowercase());
                }
                out
            }
            NameStyle::Snake => words
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join("_"),
        }
    }
}

/// How Segment event names are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStyle {
    /// `Notification Sent` (what the product sends on the wire).
    #[default]
    Title,
    /// `Notification sent` (how the product's docs table writes them).
    Sentence,
    /// `notification_sent`.
    Snake,
}

/// What to do with a message whose recipient is an object `{id, collection}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectRecipients {
    /// Not forwarded: Segment identities are people, and an object id as a
    /// `userId` would create bogus user profiles.
    #[default]
    Skip,
    /// `userId` = `"<collection>:<id>"`, plus `recipientCollection` and
    /// `recipientId` properties.
    PrefixedUserId,
    /// `anonymousId` = `"<collection>:<id>"`, plus the same properties, so the
    /// event is kept without creating a user profile.
    AnonymousId,
}

/// What to do with message events that have no Segment counterpart in the
/// product (`message.bounced`, `message.delivery_attempted`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedEvents {
    /// Not forwarded, as the product does.
    #[default]
    Skip,
    /// Forwarded as `Notification Bounced` / `Notification Delivery Attempted`
    /// with the event's details as properties.
    Forward,
}

/// How webhooks become Segment tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformSettings {
    /// Event name style.
    pub name_style: NameStyle,
    /// Object recipients.
    pub object_recipients: ObjectRecipients,
    /// Bounced and delivery-attempted events.
    pub unmapped_events: UnmappedEvents,
    /// Webhook types to forward (`message.sent`, ...); absent means all.
    pub events: Option<Vec<String>>,
}

impl TransformSettings {
    /// Rejects filter entries that name no forwardable type.
    pub fn validate(&self) -> Result<(), OutboundError> {
        for (i, ty) in self.events.iter().flatten().enumerate() {
            if LifecycleEvent::from_type(ty).is_none() {
                return Err(OutboundError::InvalidSetting {
                    key: format!("events[{i}]"),
                    problem: format!("{ty:?} is not a message lifecycle event type"),
                });
            }
        }
        Ok(())
    }
}

/// A parsed webhook envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEnvelope {
    /// The webhook `type` (`message.sent`, `workflow.updated`, ...).
    pub event_type: String,
    /// `created_at`: when the event happened.
    pub created_at: DateTime<Utc>,
    /// `data`: the entity (a Message for message events).
    pub data: Value,
    /// `event_data`: extra context, `None` when null or absent.
    pub event_data: Option<Value>,
}

/// Parses one webhook body (or one NDJSON line of a backfill file).
///
/// Malformed JSON gives [`OutboundError::MalformedJson`]; a shape problem
/// gives [`OutboundError::InvalidField`] with the JSON pointer. Never panics.
pub fn parse_envelope(body: &[u8]) -> Result<WebhookEnvelope, OutboundError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| OutboundError::MalformedJson(e.to_string()))?;
    envelope_from_value(value)
}

/// As [`parse_envelope`], from an already parsed value.
pub fn envelope_from_value(value: Value) -> Result<WebhookEnvelope, OutboundError> {
    let Value::Object(mut object) = value else {
        return Err(OutboundError::invalid("", "the body must be a JSON object"));
    };
    let event_type = match object.remove("type") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(OutboundError::invalid("/type", "must not be empty")),
        Some(_) => return Err(OutboundError::invalid("/type", "must be a string")),
        None => return Err(OutboundError::invalid("/type", "required")),
    };
    let created_at = match object.get("created_at") {
        Some(Value::String(s)) => parse_time(s, "/created_at")?,
        Some(_) => return Err(OutboundError::invalid("/created_at", "must be a string")),
        None => return Err(OutboundError::invalid("/created_at", "required")),
    };
    let data = match object.remove("data") {
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(OutboundError::invalid("/data", "must be an object")),
        None => return Err(OutboundError::invalid("/data", "required")),
    };
    let event_data = match object.remove("event_data") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => {
            return Err(OutboundError::invalid(
                "/event_data",
                "must be an object or null",
            ));
        }
    };
    Ok(WebhookEnvelope {
        event_type,
        created_at,
        data,
        event_data,
    })
}

fn parse_time(s: &str, field: &str) -> Result<DateTime<Utc>, OutboundError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| OutboundError::invalid(field, format!("not an RFC 3339 time: {e}")))
}

/// Why a valid webhook is not forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransformSkip {
    /// Not a message lifecycle event (`workflow.updated`, an unknown type ...).
    NotAMessageEvent(String),
    /// `message.bounced` / `message.delivery_attempted` with
    /// `unmapped_events = "skip"`.
    NoSegmentCounterpart(LifecycleEvent),
    /// Excluded by the `events` filter.
    FilteredOut(LifecycleEvent),
    /// The recipient is an object and `object_recipients = "skip"`.
    ObjectRecipient,
}

impl TransformSkip {
    /// A short stable code for answers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAMessageEvent(_) => "not_a_message_event",
            Self::NoSegmentCounterpart(_) => "no_segment_counterpart",
            Self::FilteredOut(_) => "filtered_out",
            Self::ObjectRecipient => "object_recipient",
        }
    }
}

/// What the transform made of one webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum TransformOutcome {
    /// A validated Segment message to queue.
    Forward(Message),
    /// Valid, but not forwarded.
    Skip(TransformSkip),
}

/// Turns lifecycle webhooks into Segment tracks. Build once, apply per event.
#[derive(Clone, Debug)]
pub struct Transform {
    settings: TransformSettings,
    filter: Option<HashSet<LifecycleEvent>>,
}

impl Transform {
    /// Validates the settings and compiles the filter.
    pub fn new(settings: TransformSettings) -> Result<Self, OutboundError> {
        settings.validate()?;
        let filter = settings.events.as_ref().map(|types| {
            types
                .iter()
                .filter_map(|t| LifecycleEvent::from_type(t))
                .collect()
        });
        Ok(Self { settings, filter })
    }

    /// The settings this transform was built from.
    pub fn settings(&self) -> &TransformSettings {
        &self.settings
    }

    /// Transforms one envelope received for `environment` (the name that goes
    /// into the `environment` property and into the derived `messageId`).
    pub fn apply(
        &self,
        envelope: &WebhookEnvelope,
        environment: &str,
    ) -> Result<TransformOutcome, OutboundError> {
        let Some(kind) = LifecycleEvent::from_type(&envelope.event_type) else {
            return Ok(TransformOutcome::Skip(TransformSkip::NotAMessageEvent(
                envelope.event_type.clone(),
            )));
        };
        if !kind.has_segment_counterpart() && self.settings.unmapped_events == UnmappedEvents::Skip
        {
            return Ok(TransformOutcome::Skip(TransformSkip::NoSegmentCounterpart(
                kind,
            )));
        }
        if let Some(filter) = &self.filter
            && !filter.contains(&kind)
        {
            return Ok(TransformOutcome::Skip(TransformSkip::FilteredOut(kind)));
        }
        let data = &envelope.data;
        let knock_message_id = required_str(data, "/id", "/data/id")?;
        let mut properties = Map::new();
        let identity = match data.get("recipient") {
            Some(Value::String(id)) if !id.trim().is_empty() => Identity::user(id.clone()),
            Some(Value::String(_)) => {
                return Err(OutboundError::invalid(
                    "/data/recipient",
                    "must not be empty",
                ));
            }
            Some(recipient @ Value::Object(_)) => {
                let id = required_str(recipient, "/id", "/data/recipient/id")?;
                let collection =
                    required_str(recipient, "/collection", "/data/recipient/collection")?;
                let combined = format!("{collection}:{id}");
                let identity = match self.settings.object_recipients {
                    ObjectRecipients::Skip => {
                        return Ok(TransformOutcome::Skip(TransformSkip::ObjectRecipient));
                    }
                    ObjectRecipients::PrefixedUserId => Identity::user(combined),
                    ObjectRecipients::AnonymousId => Identity::anonymous(combined),
                };
                properties.insert("recipientCollection".into(), collection.into());
                properties.insert("recipientId".into(), id.into());
                identity
            }
            Some(_) => {
                return Err(OutboundError::invalid(
                    "/data/recipient",
                    "must be a user id string or an {id, collection} object",
                ));
            }
            None => return Err(OutboundError::invalid("/data/recipient", "required")),
        };

        let channel_id = match optional_str(data, "/channel/id", "/data/channel/id")? {
            Some(id) => Some(id),
            None => optional_str(data, "/channel_id", "/data/channel_id")?,
        };
        let workflow_key = match optional_str(data, "/source/key", "/data/source/key")? {
            Some(key) => Some(key),
            None => optional_str(data, "/workflow", "/data/workflow")?,
        };
        let mut put = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                properties.insert(key.to_owned(), Value::String(v.to_owned()));
            }
        };
        put("channelId", channel_id);
        put(
            "channelType",
            optional_str(data, "/channel/type", "/data/channel/type")?,
        );
        put("environment", Some(environment));
        put("messageId", Some(knock_message_id));
        put(
            "provider",
            optional_str(data, "/channel/provider", "/data/channel/provider")?,
        );
        put(
            "stepRef",
            optional_str(data, "/source/step_ref", "/data/source/step_ref")?,
        );
        put("workflowKey", workflow_key);
        put("tenant", optional_str(data, "/tenant", "/data/tenant")?);
        put(
            "workflowRunId",
            optional_str(
                data,
                "/source/workflow_run_id",
                "/data/source/workflow_run_id",
            )?,
        );
        self.event_specific_properties(kind, envelope.event_data.as_ref(), &mut properties)?;

        let mut common = Common::with_message_id(derive_message_id(
            environment,
            &envelope.event_type,
            knock_message_id,
            &envelope.created_at,
        ));
        common.timestamp = Some(envelope.created_at);
        let message = Message::Track(Track {
            identity,
            common,
            event: kind.segment_event_name(self.settings.name_style),
            properties,
        });
        message.validate()?;
        Ok(TransformOutcome::Forward(message))
    }

    fn event_specific_properties(
        &self,
        kind: LifecycleEvent,
        event_data: Option<&Value>,
        properties: &mut Map<String, Value>,
    ) -> Result<(), OutboundError> {
        let Some(event_data) = event_data else {
            return Ok(());
        };
        let mut copy = |from: &str, to: &str| {
            if let Some(v) = event_data.get(from).filter(|v| !v.is_null()) {
                properties.insert(to.to_owned(), v.clone());
            }
        };
        match kind {
            LifecycleEvent::LinkClicked => {
                if let Some(url) = optional_str(event_data, "/url", "/event_data/url")? {
                    properties.insert("url".into(), url.into());
                }
            }
            LifecycleEvent::Undelivered | LifecycleEvent::Bounced => {
                copy("failure_reason", "failureReason");
                copy("failure_details", "failureDetails");
            }
            LifecycleEvent::DeliveryAttempted => {
                copy("attempt", "attempt");
                copy("max_attempts", "maxAttempts");
                copy("retryable", "retryable");
            }
            LifecycleEvent::Interacted => {
                let mut metadata = event_data.as_object().cloned().unwrap_or_default();
                metadata.remove("__typename");
                if !metadata.is_empty() {
                    properties.insert("interaction".into(), Value::Object(metadata));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Transform {
    /// Parses and transforms one webhook body: [`parse_envelope`] then
    /// [`Transform::apply`].
    pub fn apply_to_body(
        &self,
        body: &[u8],
        environment: &str,
    ) -> Result<TransformOutcome, OutboundError> {
        self.apply(&parse_envelope(body)?, environment)
    }
}

/// The Segment `messageId` for a webhook: a hash of what identifies the event
/// (environment, type, the product's message id, the event time), so the same
/// event always gets the same id whatever the key order or whitespace of the
/// body it arrived in, and different events never share one.
pub fn derive_message_id(
    environment: &str,
    event_type: &str,
    knock_message_id: &str,
    created_at: &DateTime<Utc>,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "tributary-knock-v1",
        environment,
        event_type,
        knock_message_id,
        &created_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
    ] {
        // Length-prefixed so no two different tuples hash the same bytes.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("knock-{}", hex::encode(&digest[..20]))
}

fn required_str<'a>(
    value: &'a Value,
    pointer: &str,
    field: &str,
) -> Result<&'a str, OutboundError> {
    match value.pointer(pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(OutboundError::invalid(field, "must not be empty")),
        Some(Value::Null) | None => Err(OutboundError::invalid(field, "required")),
        Some(_) => Err(OutboundError::invalid(field, "must be a string")),
    }
}

/// A string that may be absent or null, but is a string when present.
fn optional_str<'a>(
    value: &'a Value,
    pointer: &str,
    field: &str,
) -> Result<Option<&'a str>, OutboundError> {
    match value.pointer(pointer) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(OutboundError::invalid(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn webhook(ty: &str, recipient: Value, event_data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "__typename": "Event",
            "type": ty,
            "created_at": "2026-03-01T10:00:00.123456Z",
            "data": {
                "__typename": "Message",
                "id": "2w3YUpTTOxuDvZFji8OMsKrG176",
                "channel_id": "old-channel",
                "channel": {"id": "ch-1", "type": "email", "provider": "postmark"},
                "recipient": recipient,
                "workflow": "welcome",
                "tenant": "acme",
                "source": {"__typename": "NotificationSource", "key": "welcome",
                           "step_ref": "email_1", "workflow_run_id": "run-9",
                           "version_id": "v", "categories": []},
                "status": "sent", "engagement_statuses": [],
                "inserted_at": "2026-03-01T09:59:59Z", "updated_at": "2026-03-01T10:00:00Z"
            },
            "event_data": event_data
        }))
        .unwrap()
    }

    fn forward(transform: &Transform, body: &[u8]) -> Track {
        let env = parse_envelope(body).unwrap();
        match transform.apply(&env, "production").unwrap() {
            TransformOutcome::Forward(Message::Track(t)) => t,
            other => panic!("expected a track, got {other:?}"),
        }
    }

    #[test]
    fn every_forwarded_type_has_its_contract_name() {
        let names: Vec<_> = LifecycleEvent::ALL
            .iter()
            .filter(|e| e.has_segment_counterpart())
            .map(|e| e.segment_event_name(NameStyle::Title))
            .collect();
        assert_eq!(
            names,
            [
                "Notification Sent",
                "Notification Delivered",
                "Notification Undelivered",
                "Notification Seen",
                "Notification Unseen",
                "Notification Read",
                "Notification Unread",
                "Notification Archived",
                "Notification Unarchived",
                "Notification Clicked",
                "Notification Interacted"
            ]
        );
        assert_eq!(
            LifecycleEvent::LinkClicked.segment_event_name(NameStyle::Sentence),
            "Notification clicked"
        );
        assert_eq!(
            LifecycleEvent::DeliveryAttempted.segment_event_name(NameStyle::Snake),
            "notification_delivery_attempted"
        );
    }

    #[test]
    fn sent_becomes_a_track_with_contract_properties() {
        let t = Transform::new(TransformSettings::default()).unwrap();
        let track = forward(&t, &webhook("message.sent", json!("user-1"), Value::Null));
        assert_eq!(track.event, "Notification Sent");
        assert_eq!(track.identity, Identity::user("user-1"));
        assert_eq!(
            Value::Object(track.properties),
            json!({"channelId": "ch-1", "channelType": "email", "environment": "production",
                   "messageId": "2w3YUpTTOxuDvZFji8OMsKrG176", "provider": "postmark",
                   "stepRef": "email_1", "workflowKey": "welcome", "tenant": "acme",
                   "workflowRunId": "run-9"})
        );
        assert_eq!(
            track.common.timestamp.unwrap().to_rfc3339(),
            "2026-03-01T10:00:00.123456+00:00"
        );
        assert!(track.common.message_id.starts_with("knock-"));
    }

    #[test]
    fn clicks_carry_the_url() {
        let t = Transform::new(TransformSettings::default()).unwrap();
        let track = forward(
            &t,
            &webhook(
                "message.link_clicked",
                json!("u"),
                json!({"url": "https://x.test/a"}),
            ),
        );
        assert_eq!(track.event, "Notification Clicked");
        assert_eq!(track.properties["url"], "https://x.test/a");
    }

    #[test]
    fn message_id_is_deterministic_and_distinct_per_event() {
        let t = Transform::new(TransformSettings::default()).unwrap();
        let a = forward(&t, &webhook("message.sent", json!("u"), Value::Null));
        // The same event re-sent with different formatting.
        let mut v: Value =
            serde_json::from_slice(&webhook("message.sent", json!("u"), Value::Null)).unwrap();
        v["created_at"] = json!("2026-03-01T11:00:00.123456+01:00");
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let b = forward(&t, &pretty);
        assert_eq!(a.common.message_id, b.common.message_id);
        let read = forward(&t, &webhook("message.read", json!("u"), Value::Null));
        assert_ne!(a.common.message_id, read.common.message_id);
        let env = parse_envelope(&webhook("message.sent", json!("u"), Value::Null)).unwrap();
        let TransformOutcome::Forward(staging) = t.apply(&env, "staging").unwrap() else {
            panic!()
        };
        assert_ne!(a.common.message_id, staging.message_id());
    }

    #[test]
    fn object_recipients_follow_the_setting() {
        let body = webhook(
            "message.seen",
            json!({"id": "proj-1", "collection": "projects"}),
            Value::Null,
        );
        let env = parse_envelope(&body).unwrap();
        let skip = Transform::new(TransformSettings::default()).unwrap();
        assert_eq!(
            skip.apply(&env, "p").unwrap(),
            TransformOutcome::Skip(TransformSkip::ObjectRecipient)
        );
        let prefixed = Transform::new(TransformSettings {
            object_recipients: ObjectRecipients::PrefixedUserId,
            ..Default::default()
        })
        .unwrap();
        let track = forward(&prefixed, &body);
        assert_eq!(track.identity, Identity::user("projects:proj-1"));
        assert_eq!(track.properties["recipientCollection"], "projects");
        let anon = Transform::new(TransformSettings {
            object_recipients: ObjectRecipients::AnonymousId,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            forward(&anon, &body).identity,
            Identity::anonymous("projects:proj-1")
        );
    }

    #[test]
    fn bounced_and_attempted_follow_the_setting() {
        let body = webhook(
            "message.bounced",
            json!("u"),
            json!({"failure_reason": "fatal_error", "failure_details": "mailbox full"}),
        );
        let env = parse_envelope(&body).unwrap();
        let skip = Transform::new(TransformSettings::default()).unwrap();
        assert_eq!(
            skip.apply(&env, "p").unwrap(),
            TransformOutcome::Skip(TransformSkip::NoSegmentCounterpart(LifecycleEvent::Bounced))
        );
        let fwd = Transform::new(TransformSettings {
            unmapped_events: UnmappedEvents::Forward,
            ..Default::default()
        })
        .unwrap();
        let track = forward(&fwd, &body);
        assert_eq!(track.event, "Notification Bounced");
        assert_eq!(track.properties["failureDetails"], "mailbox full");
        let attempted = forward(
            &fwd,
            &webhook(
                "message.delivery_attempted",
                json!("u"),
                json!({"attempt": 2, "max_attempts": 5}),
            ),
        );
        assert_eq!(attempted.event, "Notification Delivery Attempted");
        assert_eq!(attempted.properties["maxAttempts"], 5);
    }

    #[test]
    fn filter_and_non_message_events_are_skipped() {
        let only_sent = Transform::new(TransformSettings {
            events: Some(vec!["message.sent".into()]),
            ..Default::default()
        })
        .unwrap();
        let env = parse_envelope(&webhook("message.read", json!("u"), Value::Null)).unwrap();
        assert_eq!(
            only_sent.apply(&env, "p").unwrap(),
            TransformOutcome::Skip(TransformSkip::FilteredOut(LifecycleEvent::Read))
        );
        let env = parse_envelope(
            br#"{"type":"workflow.updated","created_at":"2026-01-01T00:00:00Z","data":{}}"#,
        )
        .unwrap();
        assert!(matches!(
            only_sent.apply(&env, "p").unwrap(),
            TransformOutcome::Skip(TransformSkip::NotAMessageEvent(t)) if t == "workflow.updated"
        ));
    }

    #[test]
    fn filter_entries_must_be_lifecycle_types() {
        let t = TransformSettings {
            events: Some(vec!["message.sent".into(), "workflow.updated".into()]),
            ..Default::default()
        };
        assert!(
            matches!(t.validate(), Err(OutboundError::InvalidSetting { key, .. }) if key == "events[1]")
        );
    }

    #[test]
    fn shape_errors_name_the_field() {
        let field = |body: &[u8]| parse_envelope(body).unwrap_err().field().map(str::to_owned);
        assert_eq!(field(b"[]").as_deref(), Some(""));
        assert_eq!(
            field(br#"{"created_at":"x","data":{}}"#).as_deref(),
            Some("/type")
        );
        assert_eq!(
            field(br#"{"type":"message.sent","created_at":"yesterday","data":{}}"#).as_deref(),
            Some("/created_at")
        );
        assert_eq!(
            field(br#"{"type":"message.sent","created_at":"2026-01-01T00:00:00Z","data":1}"#)
                .as_deref(),
            Some("/data")
        );
        let t = Transform::new(TransformSettings::default()).unwrap();
        let env = parse_envelope(
            br#"{"type":"message.sent","created_at":"2026-01-01T00:00:00Z","data":{"id":"m"}}"#,
        )
        .unwrap();
        assert_eq!(
            t.apply(&env, "p").unwrap_err().field(),
            Some("/data/recipient")
        );
        let env = parse_envelope(
            br#"{"type":"message.sent","created_at":"2026-01-01T00:00:00Z","data":{"id":"m","recipient":"u","channel":{"type":3}}}"#,
        )
        .unwrap();
        assert_eq!(
            t.apply(&env, "p").unwrap_err().field(),
            Some("/data/channel/type")
        );
        assert!(matches!(
            parse_envelope(b"{not json"),
            Err(OutboundError::MalformedJson(_))
        ));
    }
}
