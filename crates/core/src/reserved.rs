//! Attribute names the product reserves on users, objects and tenants, and
//! the shape it requires under each.
//!
//! Everything else in an identify or set call is a custom property the
//! product stores as it comes. A reserved name is validated instead, and one
//! value of the wrong shape has the whole call refused (422): a CDP trait
//! named `preferences` holding `{"newsletter": true}` would leave the user
//! never identified. So the engine checks every reserved attribute of every
//! payload it plans ([`conform`]); a value of the required shape passes
//! through (it is what the product's own sources send under that name), any
//! other value is kept as the custom property [`RENAMED_PREFIX`]`<name>` and
//! the plan carries a [`PlanNote`] saying so.
//!
//! One payload reaches the product either as its own call (`PUT /v1/users/{id}`,
//! `/v1/objects/...`, `/v1/tenants/...`) or inline in a trigger, and the
//! two request schemas differ a little; the shapes here are what both
//! accept. The table, per entity (docs/mapping.md has it in prose):
//!
//! | entity | name | shape |
//! |---|---|---|
//! | user | `name`, `email`, `phone_number`, `avatar`, `locale`, `timezone` | string or null |
//! | user | `created_at` | RFC 3339 date-time string or null |
//! | user | `channel_data` | channel data map or null |
//! | user | `preferences` | preference set map or null |
//! | object | `name`, `locale`, `timezone` | string or null |
//! | object | `created_at` | RFC 3339 date-time string or null |
//! | object | `channel_data` | channel data map (not null) |
//! | object | `preferences` | preference set map (not null) |
//! | tenant | `name` | string or null |
//! | tenant | `channel_data` | channel data map or null |
//! | tenant | `preferences` | preference set map or null |
//! | tenant | `settings` | `{branding?, preference_set?}` (not null) |
//!
//! `id` (and an object's `collection`) never reach the attributes: the
//! engine takes them out. Only the schema's shapes are checked; what the
//! product checks beyond them (an E.164 phone number, a known time zone) is
//! not.
//!
//! ```
//! use serde_json::{json, Map, Value};
//! use tributary_core::reserved::{conform, Entity};
//!
//! let mut attributes: Map<String, Value> =
//!     serde_json::from_value(json!({"preferences": {"newsletter": true}, "plan": "pro"})).unwrap();
//! let notes = conform(Entity::User, &mut attributes);
//! assert_eq!(notes.len(), 1);
//! assert_eq!(
//!     Value::Object(attributes),
//!     json!({"custom_preferences": {"newsletter": true}, "plan": "pro"})
//! );
//! ```

use serde_json::{Map, Value};

use crate::plan::{ActionPayload, PlanNote};

/// The prefix of the custom property a misshapen reserved attribute is kept
/// under: `preferences` becomes `custom_preferences`. No entity reserves a
/// name with this prefix.
pub const RENAMED_PREFIX: &str = "custom_";

/// What the attributes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    /// A user (identify, inline user).
    User,
    /// An object (set object, inline object).
    Object,
    /// A tenant (set tenant, inline tenant).
    Tenant,
}

/// The shape the product requires under a reserved name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A string, or null.
    Text,
    /// An RFC 3339 date-time string, or null.
    DateTime,
    /// A map of channel id to channel data; `nullable` when null may clear it.
    ChannelData { nullable: bool },
    /// A map of preference set id to preference set; `nullable` likewise.
    Preferences { nullable: bool },
    /// A tenant's settings: `branding` and `preference_set`.
    TenantSettings,
}

impl Shape {
    fn expected(self) -> &'static str {
        match self {
            Self::Text => "a string or null",
            Self::DateTime => "an RFC 3339 date-time string or null",
            Self::ChannelData { nullable: true } => {
                "channel data (an object of channel id -> tokens, devices or connections) or null"
            }
            Self::ChannelData { nullable: false } => {
                "channel data (an object of channel id -> tokens, devices or connections)"
            }
            Self::Preferences { nullable: true } => {
                "preference sets (an object of preference set id -> preference set) or null"
            }
            Self::Preferences { nullable: false } => {
                "preference sets (an object of preference set id -> preference set)"
            }
            Self::TenantSettings => {
                "tenant settings (an object with `branding` and `preference_set`)"
            }
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Self::Text => v.is_null() || v.is_string(),
            Self::DateTime => v.is_null() || v.as_str().is_some_and(is_date_time),
            Self::ChannelData { nullable } => (nullable && v.is_null()) || channel_data(v),
            Self::Preferences { nullable } => (nullable && v.is_null()) || preference_sets(v),
            Self::TenantSettings => tenant_settings(v),
        }
    }
}

const USER: &[(&str, Shape)] = &[
    ("name", Shape::Text),
    ("email", Shape::Text),
    ("phone_number", Shape::Text),
    ("avatar", Shape::Text),
    ("locale", Shape::Text),
    ("timezone", Shape::Text),
    ("created_at", Shape::DateTime),
    ("channel_data", Shape::ChannelData { nullable: true }),
    ("preferences", Shape::Preferences { nullable: true }),
];

const OBJECT: &[(&str, Shape)] = &[
    ("name", Shape::Text),
    ("locale", Shape::Text),
    ("timezone", Shape::Text),
    ("created_at", Shape::DateTime),
    ("channel_data", Shape::ChannelData { nullable: false }),
    ("preferences", Shape::Preferences { nullable: false }),
];

const TENANT: &[(&str, Shape)] = &[
    ("name", Shape::Text),
    ("channel_data", Shape::ChannelData { nullable: true }),
    ("preferences", Shape::Preferences { nullable: true }),
    ("settings", Shape::TenantSettings),
];

impl Entity {
    fn reserved(self) -> &'static [(&'static str, Shape)] {
        match self {
            Self::User => USER,
            Self::Object => OBJECT,
            Self::Tenant => TENANT,
        }
    }

    /// The names this entity reserves.
    pub fn reserved_names(self) -> impl Iterator<Item = &'static str> {
        self.reserved().iter().map(|(name, _)| *name)
    }
}

/// Makes `attributes` acceptable to the product for `entity`: a reserved
/// attribute of the wrong shape moves to [`RENAMED_PREFIX`]`<name>`, or is
/// dropped when it is `null` or that name is already used. One note per
/// attribute changed, in the order of the reserved names.
pub fn conform(entity: Entity, attributes: &mut Map<String, Value>) -> Vec<PlanNote> {
    let mut notes = Vec::new();
    for &(key, shape) in entity.reserved() {
        let Some(value) = attributes.get(key) else {
            continue;
        };
        if shape.accepts(value) {
            continue;
        }
        let Some(value) = attributes.remove(key) else {
            continue;
        };
        let other = format!("{RENAMED_PREFIX}{key}");
        // A null would clear the other name, which the sender never meant.
        let kept_as = if value.is_null() || attributes.contains_key(&other) {
            None
        } else {
            attributes.insert(other.clone(), value);
            Some(other)
        };
        notes.push(PlanNote::ReservedKey {
            key: key.to_owned(),
            expected: shape.expected().to_owned(),
            kept_as,
        });
    }
    notes
}

/// The first reserved attribute of `attributes` (in the order of the
/// reserved names) whose value does not have the shape the product
/// requires, with that shape: what the product would refuse the call for.
/// For a caller that answers as the product does instead of conforming.
pub fn misshapen(
    entity: Entity,
    attributes: &Map<String, Value>,
) -> Option<(&'static str, &'static str)> {
    entity.reserved_names().find_map(|key| {
        let expected = attributes.get(key).and_then(|v| refusal(entity, key, v))?;
        Some((key, expected))
    })
}

/// The shape `entity` requires under `key` when `value` does not have it;
/// `None` when it does, or when `key` is not reserved.
pub fn refusal(entity: Entity, key: &str, value: &Value) -> Option<&'static str> {
    entity
        .reserved()
        .iter()
        .find(|(name, _)| *name == key)
        .filter(|(_, shape)| !shape.accepts(value))
        .map(|(_, shape)| shape.expected())
}

/// [`conform`] for the attributes a payload carries (identify, set object,
/// set tenant); other payloads carry none and get no notes.
pub fn conform_payload(payload: &mut ActionPayload) -> Vec<PlanNote> {
    match payload {
        ActionPayload::IdentifyUser { attributes, .. } => conform(Entity::User, attributes),
        ActionPayload::SetObject { attributes, .. } => conform(Entity::Object, attributes),
        ActionPayload::SetTenant { attributes, .. } => conform(Entity::Tenant, attributes),
        _ => Vec::new(),
    }
}

/// RFC 3339 `date-time` as the JSON Schema format reads it: an upper-case
/// `T` and `Z`, and no leap second (which chrono would take).
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.get(10) == Some(&b'T')
        && !s.ends_with('z')
        && b.get(17..19).is_some_and(|sec| sec < b"60".as_slice())
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// The canonical 8-4-4-4-12 hex form (the schema's `uuid` format).
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn object(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

/// A check of one JSON value.
type Check = fn(&Value) -> bool;

/// `v` is an object, and each listed key it has satisfies its check
/// (unlisted keys are free, as in the product's schemas).
fn with_keys(v: &Value, required: &[&str], checks: &[(&str, Check)]) -> bool {
    object(v).is_some_and(|m| {
        required.iter().all(|k| m.contains_key(*k))
            && checks.iter().all(|(k, check)| m.get(*k).is_none_or(check))
    })
}

fn list_of(v: &Value, item: Check) -> bool {
    v.as_array().is_some_and(|items| items.iter().all(item))
}

fn string(v: &Value) -> bool {
    v.is_string()
}

fn text(v: &Value) -> bool {
    v.is_null() || v.is_string()
}

fn uuid(v: &Value) -> bool {
    v.as_str().is_some_and(is_uuid)
}

fn nullable_uuid(v: &Value) -> bool {
    v.is_null() || uuid(v)
}

/// An object of channel id -> the data of one channel kind.
fn channel_data(v: &Value) -> bool {
    object(v).is_some_and(|m| m.values().all(one_channel))
}

fn one_channel(v: &Value) -> bool {
    fn tokens(v: &Value) -> bool {
        list_of(v, string)
    }
    fn push_device(v: &Value) -> bool {
        with_keys(
            v,
            &["token"],
            &[("token", string), ("locale", text), ("timezone", text)],
        )
    }
    fn sns_device(v: &Value) -> bool {
        with_keys(
            v,
            &["target_arn"],
            &[("target_arn", string), ("locale", text), ("timezone", text)],
        )
    }
    fn push_devices(v: &Value) -> bool {
        list_of(v, push_device)
    }
    fn sns_devices(v: &Value) -> bool {
        list_of(v, sns_device)
    }
    fn player_ids(v: &Value) -> bool {
        list_of(v, uuid)
    }
    fn webhook(v: &Value) -> bool {
        with_keys(v, &["url"], &[("url", string)])
    }
    fn webhook_connection(v: &Value) -> bool {
        with_keys(v, &["incoming_webhook"], &[("incoming_webhook", webhook)])
    }
    fn slack_connection(v: &Value) -> bool {
        webhook_connection(v)
            || with_keys(
                v,
                &[],
                &[
                    ("access_token", text),
                    ("channel_id", text),
                    ("channel_name", text),
                    ("user_id", text),
                ],
            )
    }
    fn slack_token(v: &Value) -> bool {
        v.is_null() || with_keys(v, &["access_token"], &[("access_token", text)])
    }
    fn teams_connection(v: &Value) -> bool {
        webhook_connection(v)
            || with_keys(
                v,
                &[],
                &[
                    ("ms_teams_channel_id", nullable_uuid),
                    ("ms_teams_team_id", nullable_uuid),
                    ("ms_teams_tenant_id", nullable_uuid),
                    ("ms_teams_user_id", nullable_uuid),
                ],
            )
    }
    fn discord_connection(v: &Value) -> bool {
        webhook_connection(v) || with_keys(v, &["channel_id"], &[("channel_id", string)])
    }
    fn slack(v: &Value) -> bool {
        list_of(v, slack_connection)
    }
    fn teams(v: &Value) -> bool {
        list_of(v, teams_connection)
    }
    fn discord(v: &Value) -> bool {
        list_of(v, discord_connection)
    }
    with_keys(v, &["tokens"], &[("tokens", tokens)])
        || with_keys(v, &["devices"], &[("devices", push_devices)])
        || with_keys(v, &["target_arns"], &[("target_arns", tokens)])
        || with_keys(v, &["devices"], &[("devices", sns_devices)])
        || with_keys(v, &["player_ids"], &[("player_ids", player_ids)])
        || with_keys(
            v,
            &["connections"],
            &[("connections", slack), ("token", slack_token)],
        )
        || with_keys(
            v,
            &["connections"],
            &[
                ("connections", teams),
                ("ms_teams_tenant_id", nullable_uuid),
            ],
        )
        || with_keys(v, &["connections"], &[("connections", discord)])
}

/// An object of preference set id -> preference set.
fn preference_sets(v: &Value) -> bool {
    object(v).is_some_and(|m| m.values().all(preference_set))
}

const OPERATORS: &[&str] = &[
    "equal_to",
    "not_equal_to",
    "greater_than",
    "less_than",
    "greater_than_or_equal_to",
    "less_than_or_equal_to",
    "contains",
    "not_contains",
    "empty",
    "not_empty",
    "exists",
    "not_exists",
    "contains_all",
    "not_contains_all",
    "is_timestamp",
    "is_not_timestamp",
    "is_timestamp_on_or_after",
    "is_timestamp_before",
    "is_timestamp_on_or_after_date",
    "is_timestamp_before_date",
    "is_timestamp_between",
    "is_between",
    "is_audience_member",
    "is_not_audience_member",
];

fn condition(v: &Value) -> bool {
    fn operator(v: &Value) -> bool {
        v.as_str().is_some_and(|op| OPERATORS.contains(&op))
    }
    with_keys(
        v,
        &["variable", "operator", "argument"],
        &[
            ("variable", string),
            ("operator", operator),
            ("argument", text),
        ],
    )
}

fn conditions(v: &Value) -> bool {
    list_of(v, condition)
}

/// A setting that is a boolean or `{conditions: [...]}`.
fn toggle(v: &Value) -> bool {
    v.is_boolean() || with_keys(v, &["conditions"], &[("conditions", conditions)])
}

fn channel_types(v: &Value) -> bool {
    with_keys(
        v,
        &[],
        &[
            ("chat", toggle),
            ("email", toggle),
            ("http", toggle),
            ("in_app_feed", toggle),
            ("push", toggle),
            ("sms", toggle),
        ],
    )
}

fn channels(v: &Value) -> bool {
    object(v).is_some_and(|m| m.values().all(toggle))
}

fn or_null(check: Check) -> impl Fn(&Value) -> bool {
    move |v| v.is_null() || check(v)
}

fn nullable_channel_types(v: &Value) -> bool {
    or_null(channel_types)(v)
}

fn nullable_channels(v: &Value) -> bool {
    or_null(channels)(v)
}

/// A workflow's or a category's setting: a boolean, or channel settings
/// with optional conditions.
fn workflow_setting(v: &Value) -> bool {
    fn nullable_conditions(v: &Value) -> bool {
        or_null(conditions)(v)
    }
    v.is_boolean()
        || with_keys(
            v,
            &[],
            &[
                ("channel_types", nullable_channel_types),
                ("channels", nullable_channels),
                ("conditions", nullable_conditions),
            ],
        )
}

fn preference_set(v: &Value) -> bool {
    fn strategy(v: &Value) -> bool {
        matches!(v.as_str(), Some("merge" | "replace"))
    }
    fn settings_map(v: &Value) -> bool {
        v.is_null() || object(v).is_some_and(|m| m.values().all(workflow_setting))
    }
    fn commercial(v: &Value) -> bool {
        v.is_null() || toggle(v)
    }
    with_keys(
        v,
        &[],
        &[
            ("__persistence_strategy__", strategy),
            ("categories", settings_map),
            ("channel_types", nullable_channel_types),
            ("channels", nullable_channels),
            ("commercial_subscribed", commercial),
            ("workflows", settings_map),
        ],
    )
}

fn tenant_settings(v: &Value) -> bool {
    fn branding(v: &Value) -> bool {
        with_keys(
            v,
            &[],
            &[
                ("icon_url", text),
                ("logo_url", text),
                ("primary_color", text),
                ("primary_color_contrast", text),
                ("dark_icon_url", text),
                ("dark_logo_url", text),
                ("dark_primary_color", text),
                ("dark_primary_color_contrast", text),
            ],
        )
    }
    fn nullable_preference_set(v: &Value) -> bool {
        v.is_null() || preference_set(v)
    }
    with_keys(
        v,
        &[],
        &[
            ("branding", branding),
            ("preference_set", nullable_preference_set),
        ],
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_misshapen_reserved_trait_is_kept_under_another_name() {
        let mut a = attrs(json!({
            "preferences": {"newsletter": true},
            "channel_data": "ios",
            "name": {"first": "Ada"},
            "created_at": 1_700_000_000,
            "plan": "pro",
        }));
        let notes = conform(Entity::User, &mut a);
        assert_eq!(
            Value::Object(a),
            json!({
                "custom_preferences": {"newsletter": true},
                "custom_channel_data": "ios",
                "custom_name": {"first": "Ada"},
                "custom_created_at": 1_700_000_000,
                "plan": "pro",
            })
        );
        let keys: Vec<_> = notes
            .iter()
            .filter_map(|n| match n {
                PlanNote::ReservedKey { key, kept_as, .. } => Some((key.as_str(), kept_as.clone())),
                PlanNote::PathReachedNothing { .. } => None,
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("name", Some("custom_name".to_owned())),
                ("created_at", Some("custom_created_at".to_owned())),
                ("channel_data", Some("custom_channel_data".to_owned())),
                ("preferences", Some("custom_preferences".to_owned())),
            ]
        );
        assert!(notes[3].to_string().contains("`custom_preferences`"));
    }

    #[test]
    fn a_reserved_trait_of_the_right_shape_passes_through() {
        let v = json!({
            "name": "Ada", "email": null, "created_at": "2024-05-22T12:00:00Z",
            "channel_data": {"97c5837d-c65c-4d54-aa39-080eeb81c69d": {"tokens": ["push_token_123"]}},
            "preferences": {"default": {
                "channel_types": {"email": true, "sms": {"conditions": [
                    {"variable": "recipient.country", "operator": "equal_to", "argument": "US"}]}},
                "workflows": {"dinosaurs-loose": {"channel_types": {"email": true}}},
                "categories": {"marketing": false},
                "commercial_subscribed": true,
            }},
        });
        let mut a = attrs(v.clone());
        assert!(conform(Entity::User, &mut a).is_empty());
        assert_eq!(Value::Object(a), v);
    }

    #[test]
    fn null_clears_where_the_product_allows_it_and_is_dropped_elsewhere() {
        let mut user = attrs(json!({"preferences": null, "channel_data": null}));
        assert!(conform(Entity::User, &mut user).is_empty());
        let mut object = attrs(json!({"preferences": null, "channel_data": null}));
        let notes = conform(Entity::Object, &mut object);
        assert!(object.is_empty());
        assert_eq!(notes.len(), 2);
        assert!(
            notes
                .iter()
                .all(|n| matches!(n, PlanNote::ReservedKey { kept_as: None, .. }))
        );
    }

    #[test]
    fn the_other_name_already_used_drops_the_value() {
        let mut a = attrs(json!({"preferences": 3, "custom_preferences": "mine"}));
        let notes = conform(Entity::User, &mut a);
        assert_eq!(Value::Object(a), json!({"custom_preferences": "mine"}));
        assert!(matches!(
            &notes[..],
            [PlanNote::ReservedKey { kept_as: None, .. }]
        ));
    }

    #[test]
    fn misshapen_names_what_conform_would_move() {
        let a = attrs(json!({"plan": 1, "preferences": {"x": 1}, "name": 2}));
        assert_eq!(
            misshapen(Entity::User, &a).map(|(k, _)| k),
            Some("name"),
            "the first in the table's order"
        );
        let good = attrs(json!({"name": "Ada", "settings": 3}));
        assert_eq!(misshapen(Entity::User, &good), None);
        assert_eq!(
            misshapen(Entity::Tenant, &good).map(|(k, _)| k),
            Some("settings")
        );
    }

    #[test]
    fn tenant_settings_are_checked() {
        let mut good = attrs(json!({"settings": {"branding": {"primary_color": "#fff"},
            "preference_set": {"channel_types": {"email": false}}}}));
        assert!(conform(Entity::Tenant, &mut good).is_empty());
        let mut bad = attrs(json!({"settings": {"branding": "blue"}}));
        assert_eq!(conform(Entity::Tenant, &mut bad).len(), 1);
        assert_eq!(
            Value::Object(bad),
            json!({"custom_settings": {"branding": "blue"}})
        );
    }

    #[test]
    fn date_times_and_uuids() {
        assert!(is_date_time("2024-05-22T12:00:00Z"));
        assert!(is_date_time("2024-05-22T12:00:00.123+02:00"));
        assert!(!is_date_time("2024-05-22 12:00:00Z"));
        assert!(!is_date_time("2024-05-22T12:00:00z"));
        assert!(!is_date_time("2024-06-30T23:59:60Z"));
        assert!(!is_date_time("2024-05-22"));
        assert!(!is_date_time("yesterday"));
        assert!(is_uuid("97c5837d-c65c-4d54-aa39-080eeb81c69d"));
        assert!(!is_uuid("97c5837d-c65c-4d54-aa39-080eeb81c69"));
        assert!(!is_uuid("97c5837d0c65c-4d54-aa39-080eeb81c69d"));
    }

    proptest::proptest! {
        /// Whatever the attributes, after `conform` every reserved name
        /// holds a value of its shape, no other value changed, and every
        /// value removed is noted.
        #[test]
        fn conform_leaves_only_accepted_reserved_values(
            entity in proptest::sample::select(vec![Entity::User, Entity::Object, Entity::Tenant]),
            pairs in proptest::collection::vec((
                proptest::sample::select(vec![
                    "name", "email", "created_at", "channel_data", "preferences", "settings",
                    "custom_preferences", "plan", "locale",
                ]),
                prop_oneof![
                    Just(Value::Null),
                    any::<bool>().prop_map(Value::Bool),
                    "[a-z0-9:-]{0,12}".prop_map(Value::String),
                    Just(json!({"default": {"channel_types": {"email": true}}})),
                    Just(json!({"c": {"tokens": ["t"]}})),
                    Just(json!({"a": 1})),
                ],
            ), 0..8),
        ) {
            let original: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let mut a = original.clone();
            let notes = conform(entity, &mut a);
            for &(key, shape) in entity.reserved() {
                if let Some(v) = a.get(key) {
                    prop_assert!(shape.accepts(v));
                }
            }
            for (k, v) in &original {
                let reserved = entity.reserved_names().any(|n| n == k);
                if !reserved && !k.starts_with(RENAMED_PREFIX) {
                    prop_assert_eq!(a.get(k), Some(v));
                }
            }
            let removed = original.keys().filter(|k| !a.contains_key(*k)).count();
            prop_assert_eq!(removed, notes.len());
        }
    }
}
