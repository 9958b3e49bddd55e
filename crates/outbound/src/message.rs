//! Typed Segment messages (the six calls of the Segment Spec) and their
//! validation.
//!
//! Segment answers 200 to a message without `userId`/`anonymousId`, a track
//! without `event` or a group without `groupId`, then drops it silently. So
//! every message is validated here, before it is queued, and the problem is
//! named by a JSON pointer into the message.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::OutboundError;

/// Longest `messageId` Segment accepts.
pub const MAX_MESSAGE_ID_CHARS: usize = 100;

/// Who a message is about: at least one of the two must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The user's id in the sending system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A pseudonymous id, for visitors without a user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
}

impl Identity {
    /// An identity known by user id.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            anonymous_id: None,
        }
    }

    /// An identity known only by anonymous id.
    pub fn anonymous(anonymous_id: impl Into<String>) -> Self {
        Self {
            user_id: None,
            anonymous_id: Some(anonymous_id.into()),
        }
    }
}

/// Fields every call carries.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    /// Segment's dedup key: stable across retries, unique per logical event.
    pub message_id: String,
    /// When the event happened (UTC, sent with millisecond precision).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_millis"
    )]
    pub timestamp: Option<DateTime<Utc>>,
    /// The `context` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// The `integrations` object (destination on/off map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Map<String, Value>>,
}

impl Common {
    /// Common fields with a fresh random `messageId` and no timestamp.
    pub fn new() -> Self {
        Self::with_message_id(random_message_id())
    }

    /// Common fields with the given `messageId`.
    pub fn with_message_id(message_id: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            timestamp: None,
            context: None,
            integrations: None,
        }
    }
}

impl Default for Common {
    fn default() -> Self {
        Self::new()
    }
}

/// A random `messageId` (a UUIDv4 in its usual text form).
pub fn random_message_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A `track` call: the user did something.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Track {
    /// Who.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// The event name ("Notification Sent"). Required.
    pub event: String,
    /// Event properties.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// An `identify` call: who the user is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Identify {
    /// Who.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// User traits.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
}

/// A `page` call: a web page was viewed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page {
    /// Who.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// Page name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Page category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Page properties.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// A `screen` call: a mobile screen was viewed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Screen {
    /// Who.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// Screen name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Screen properties.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// A `group` call: the user belongs to an account.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Who.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// The group's id. Required.
    pub group_id: String,
    /// Group traits.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
}

/// An `alias` call: `previousId` and `userId` are the same person.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// The new identity; `userId` is required.
    #[serde(flatten)]
    pub identity: Identity,
    /// Id, time, context.
    #[serde(flatten)]
    pub common: Common,
    /// The old id. Required.
    pub previous_id: String,
}

/// One Segment message, serialized with its `type`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// `track`.
    Track(Track),
    /// `identify`.
    Identify(Identify),
    /// `page`.
    Page(Page),
    /// `screen`.
    Screen(Screen),
    /// `group`.
    Group(Group),
    /// `alias`.
    Alias(Alias),
}

/// A validated message serialized to the JSON that goes inside a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedMessage {
    /// Its `messageId`.
    pub message_id: String,
    /// The JSON object, exactly as sent.
    pub json: Vec<u8>,
}

impl Message {
    /// The message's `messageId`.
    pub fn message_id(&self) -> &str {
        &self.common().message_id
    }

    /// The `type` as Segment spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Track(_) => "track",
            Self::Identify(_) => "identify",
            Self::Page(_) => "page",
            Self::Screen(_) => "screen",
            Self::Group(_) => "group",
            Self::Alias(_) => "alias",
        }
    }

    fn common(&self) -> &Common {
        match self {
            Self::Track(m) => &m.common,
            Self::Identify(m) => &m.common,
            Self::Page(m) => &m.common,
            Self::Screen(m) => &m.common,
            Self::Group(m) => &m.common,
            Self::Alias(m) => &m.common,
        }
    }

    fn identity(&self) -> &Identity {
        match self {
            Self::Track(m) => &m.identity,
            Self::Identify(m) => &m.identity,
            Self::Page(m) => &m.identity,
            Self::Screen(m) => &m.identity,
            Self::Group(m) => &m.identity,
            Self::Alias(m) => &m.identity,
        }
    }

    /// Checks what Segment requires but does not enforce with an error.
    pub fn validate(&self) -> Result<(), OutboundError> {
        let identity = self.identity();
        check_required(self.kind(), |key| match key {
            "messageId" => Some(self.message_id()),
            "userId" => identity.user_id.as_deref(),
            "anonymousId" => identity.anonymous_id.as_deref(),
            "event" => match self {
                Self::Track(t) => Some(&t.event),
                _ => None,
            },
            "groupId" => match self {
                Self::Group(g) => Some(&g.group_id),
                _ => None,
            },
            "previousId" => match self {
                Self::Alias(a) => Some(&a.previous_id),
                _ => None,
            },
            _ => None,
        })
    }

    /// Validates and serializes.
    pub fn encode(&self) -> Result<EncodedMessage, OutboundError> {
        self.validate()?;
        let json = serde_json::to_vec(self)
            .map_err(|e| OutboundError::invalid_message("", format!("cannot serialize: {e}")))?;
        Ok(EncodedMessage {
            message_id: self.message_id().to_owned(),
            json,
        })
    }
}

/// Validates an already serialized message (one read back from the queue, or
/// one a caller built by hand) by the same rules as [`Message::validate`].
pub fn validate_json(json: &[u8]) -> Result<(), OutboundError> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| OutboundError::MalformedJson(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(OutboundError::invalid_message(
            "",
            "a message must be a JSON object",
        ));
    };
    let Some(kind) = object.get("type").and_then(Value::as_str) else {
        return Err(OutboundError::invalid_message(
            "/type",
            "a string is required",
        ));
    };
    if !matches!(
        kind,
        "track" | "identify" | "page" | "screen" | "group" | "alias"
    ) {
        return Err(OutboundError::invalid_message(
            "/type",
            format!("unknown type {kind:?}"),
        ));
    }
    check_required(kind, |key| object.get(key).and_then(Value::as_str))
}

/// The rules, over any way of reading a string field by its Segment name.
fn check_required<'a>(
    kind: &str,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), OutboundError> {
    let present = |key: &str| get(key).is_some_and(|v| !v.trim().is_empty());
    match get("messageId") {
        Some(id) if !id.is_empty() => {
            if id.chars().count() > MAX_MESSAGE_ID_CHARS {
                return Err(OutboundError::invalid_message(
                    "/messageId",
                    format!("longer than {MAX_MESSAGE_ID_CHARS} characters"),
                ));
            }
        }
        _ => return Err(OutboundError::invalid_message("/messageId", "required")),
    }
    if !present("userId") && !present("anonymousId") {
        return Err(OutboundError::invalid_message(
            "/userId",
            "userId or anonymousId is required",
        ));
    }
    let required: &[&str] = match kind {
        "track" => &["event"],
        "group" => &["groupId"],
        "alias" => &["userId", "previousId"],
        _ => &[],
    };
    for key in required {
        if !present(key) {
            return Err(OutboundError::invalid_message(
                format!("/{key}"),
                format!("required for {kind}"),
            ));
        }
    }
    Ok(())
}

/// Renders a time as Segment likes it: UTC, milliseconds, `Z`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn serialize_millis<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&format_timestamp(at)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(identity: Identity, event: &str) -> Message {
        Message::Track(Track {
            identity,
            common: Common::with_message_id("m-1"),
            event: event.into(),
            properties: Map::new(),
        })
    }

    #[test]
    fn track_serializes_with_type_and_camel_case() {
        let mut m = track(Identity::user("u1"), "Notification Sent");
        if let Message::Track(t) = &mut m {
            t.common.timestamp = Some("2026-01-02T03:04:05.678901Z".parse().unwrap());
        }
        let v: Value = serde_json::from_slice(&m.encode().unwrap().json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"track","userId":"u1","messageId":"m-1",
                "timestamp":"2026-01-02T03:04:05.678Z","event":"Notification Sent"})
        );
    }

    #[test]
    fn requires_an_identity() {
        let err = track(Identity::default(), "x").validate().unwrap_err();
        assert_eq!(err.field(), Some("/userId"));
        let blank = track(Identity::user("  "), "x").validate().unwrap_err();
        assert_eq!(blank.field(), Some("/userId"));
        assert!(track(Identity::anonymous("a"), "x").validate().is_ok());
    }

    #[test]
    fn requires_event_for_track() {
        let err = track(Identity::user("u"), "").validate().unwrap_err();
        assert_eq!(err.field(), Some("/event"));
    }

    #[test]
    fn requires_group_id_and_alias_fields() {
        let g = Message::Group(Group {
            identity: Identity::user("u"),
            common: Common::new(),
            group_id: String::new(),
            traits: Map::new(),
        });
        assert_eq!(g.validate().unwrap_err().field(), Some("/groupId"));
        let a = Message::Alias(Alias {
            identity: Identity::anonymous("anon"),
            common: Common::new(),
            previous_id: "old".into(),
        });
        assert_eq!(a.validate().unwrap_err().field(), Some("/userId"));
        let a = Message::Alias(Alias {
            identity: Identity::user("new"),
            common: Common::new(),
            previous_id: String::new(),
        });
        assert_eq!(a.validate().unwrap_err().field(), Some("/previousId"));
    }

    #[test]
    fn message_id_is_bounded() {
        let mut m = track(Identity::user("u"), "e");
        if let Message::Track(t) = &mut m {
            t.common.message_id = "x".repeat(101);
        }
        assert_eq!(m.validate().unwrap_err().field(), Some("/messageId"));
    }

    #[test]
    fn random_ids_are_uuid_shaped_and_distinct() {
        let a = random_message_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, random_message_id());
    }

    #[test]
    fn json_validation_matches_typed_validation() {
        assert!(
            validate_json(br#"{"type":"track","userId":"u","event":"e","messageId":"m"}"#).is_ok()
        );
        let e = validate_json(br#"{"type":"track","userId":"u","messageId":"m"}"#).unwrap_err();
        assert_eq!(e.field(), Some("/event"));
        let e = validate_json(br#"{"type":"nope","userId":"u","messageId":"m"}"#).unwrap_err();
        assert_eq!(e.field(), Some("/type"));
        assert!(matches!(
            validate_json(b"{"),
            Err(OutboundError::MalformedJson(_))
        ));
    }
}
