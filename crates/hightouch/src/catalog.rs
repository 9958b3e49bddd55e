//! What the destination offers: objects, their modes, fields and options.

use serde_json::{Value, json};

/// The objects a sync can write, as `list_objects` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HightouchObject {
    /// Users: identify on add and change, delete on remove.
    Users,
    /// Objects in a collection: set on add and change, delete on remove.
    Objects,
    /// A static audience: add members on add, remove them on remove (mirror mode).
    Audiences,
}

impl HightouchObject {
    /// By `list_objects` id.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "users" | "user" => Some(Self::Users),
            "objects" | "object" => Some(Self::Objects),
            "audiences" | "audience" => Some(Self::Audiences),
            _ => None,
        }
    }

    /// The `list_objects` id.
    pub fn id(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Objects => "objects",
            Self::Audiences => "audiences",
        }
    }
}

/// Rows per `add` / `change` / `remove` call (`behavior.batchSize`).
pub const BATCH_SIZE: usize = 1_000;

pub(crate) fn list_objects() -> Value {
    json!({"objects": [
        {"id": "users", "label": "Users"},
        {"id": "objects", "label": "Objects"},
        {"id": "audiences", "label": "Audiences"},
    ]})
}

pub(crate) fn list_modes(object: HightouchObject) -> Value {
    match object {
        HightouchObject::Users | HightouchObject::Objects => {
            json!({"modes": [{"id": "upsert", "label": "Upsert"}]})
        }
        HightouchObject::Audiences => json!({"modes": [
            {"id": "insert", "label": "Insert only", "description": "Adds members; removals are ignored."},
            {"id": "mirror", "label": "Mirror", "description": "Adds and removes members."},
        ]}),
    }
}

pub(crate) fn list_fields(object: HightouchObject) -> Value {
    let field = |id: &str, label: &str, required: bool, identifier: bool| json!({"id": id, "label": label, "type": "string", "required": required, "identifier": identifier});
    let fields = match object {
        HightouchObject::Users => vec![
            field("id", "User ID", true, true),
            field("name", "Name", false, false),
            field("email", "Email", false, false),
            field("phone_number", "Phone number (E.164)", false, false),
            field("avatar", "Avatar URL", false, false),
            field("locale", "Locale", false, false),
            field("timezone", "Time zone", false, false),
        ],
        HightouchObject::Objects => vec![
            field("id", "Object ID", true, true),
            field("name", "Name", false, false),
        ],
        HightouchObject::Audiences => vec![
            field("user_id", "User ID", true, true),
            field("tenant", "Tenant", false, false),
        ],
    };
    json!({"fields": fields, "allowsCustomFields": object != HightouchObject::Audiences})
}

pub(crate) fn list_options(object: HightouchObject) -> Value {
    let options = match object {
        HightouchObject::Users => vec![],
        HightouchObject::Objects => vec![json!({
            "id": "collection", "label": "Collection", "type": "string", "required": true,
        })],
        HightouchObject::Audiences => vec![json!({
            "id": "audience_key", "label": "Audience key", "type": "string", "required": true,
            "description": "Created as a static audience on the first run when it does not exist.",
        })],
    };
    json!({"options": options})
}

pub(crate) fn behavior(object: HightouchObject) -> Value {
    let change = object != HightouchObject::Audiences;
    json!({
        "batchSize": BATCH_SIZE,
        "operations": {"add": true, "change": change, "remove": true},
        "skipInitialRun": false,
    })
}
