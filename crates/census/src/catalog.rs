//! What the destination offers Census: objects, fields, operations, speed.

use serde_json::{Value, json};

/// The objects a Census sync can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CensusObject {
    /// Users (identify; delete on `delete`).
    Users,
    /// Objects: each record names its `collection`.
    Objects,
    /// Static audiences: each record names its `audience_key` (a constant field).
    Audiences,
}

impl CensusObject {
    /// By `object_api_name`.
    pub fn from_api_name(name: &str) -> Option<Self> {
        match name {
            "users" | "user" => Some(Self::Users),
            "objects" | "object" => Some(Self::Objects),
            "audiences" | "audience" => Some(Self::Audiences),
            _ => None,
        }
    }

    /// The `object_api_name`.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Objects => "objects",
            Self::Audiences => "audiences",
        }
    }

    /// The identifier field.
    pub fn identifier(self) -> &'static str {
        match self {
            Self::Users | Self::Objects => "id",
            Self::Audiences => "user_id",
        }
    }
}

/// Records per `sync_batch` (`get_sync_speed.maximum_batch_size`).
pub const MAX_BATCH_SIZE: usize = 1_000;

pub(crate) fn list_objects() -> Value {
    let o = |name: &str, label: &str| json!({"object_api_name": name, "label": label, "can_create_fields": "on_write", "can_update_fields": true});
    json!({"objects": [o("audiences", "Audiences"), o("users", "Users"), o("objects", "Objects")]})
}

pub(crate) fn list_fields(object: CensusObject) -> Value {
    let f = |name: &str, label: &str, identifier: bool, required: bool| {
        json!({
            "field_api_name": name, "label": label, "identifier": identifier,
            "required": required, "createable": true, "updateable": true,
            "type": "string", "array": false,
        })
    };
    let fields = match object {
        CensusObject::Users => vec![
            f("id", "User ID", true, true),
            f("name", "Name", false, false),
            f("email", "Email", false, false),
            f("phone_number", "Phone number (E.164)", false, false),
            f("avatar", "Avatar URL", false, false),
            f("locale", "Locale", false, false),
            f("timezone", "Time zone", false, false),
        ],
        CensusObject::Objects => vec![
            f("id", "Object ID", true, true),
            f("collection", "Collection", false, true),
            f("name", "Name", false, false),
        ],
        CensusObject::Audiences => vec![
            f("user_id", "User ID", true, true),
            f("audience_key", "Audience key", false, true),
            f("tenant", "Tenant", false, false),
        ],
    };
    json!({"fields": fields})
}

pub(crate) fn supported_operations(object: CensusObject) -> Value {
    let ops: &[&str] = match object {
        CensusObject::Users | CensusObject::Objects => &["upsert", "update", "delete"],
        CensusObject::Audiences => &["insert", "mirror", "delete"],
    };
    json!({"operations": ops})
}

pub(crate) fn sync_speed() -> Value {
    json!({
        "maximum_batch_size": MAX_BATCH_SIZE,
        "maximum_parallel_batches": 4,
        "maximum_records_per_second": 10_000,
    })
}
