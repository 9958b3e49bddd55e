//! Which parameters each action takes, which are required, and their defaults.
//! docs/mapping.md renders this table for people; a test keeps them in step.

use crate::ActionType;

/// Whether a parameter must be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// The mapping is refused at load without it.
    Required,
    /// May be absent.
    Optional,
    /// Absent means this path.
    Default(&'static str),
}

/// How a parameter's TOML value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// A string is a path; `{ value = ... }` a constant; other values constants.
    Path,
    /// A string is a literal key (workflow, collection, audience); `{ path = ... }` reads the event.
    Key,
    /// A boolean constant.
    Bool,
    /// A table of name -> path, building an object.
    Fields,
}

pub(crate) fn form(param: &str) -> Form {
    match param {
        "workflow" | "collection" | "audience" => Form::Key,
        "create_audience" => Form::Bool,
        "data_fields" => Form::Fields,
        _ => Form::Path,
    }
}

use Need::{Default, Optional, Required};

const USER_FIELDS: [(&str, Need); 7] = [
    ("name", Optional),
    ("email", Optional),
    ("phone_number", Optional),
    ("avatar", Optional),
    ("locale", Optional),
    ("timezone", Optional),
    ("properties", Optional),
];

/// The parameters of `action`, in the order docs list them.
pub(crate) fn spec(action: ActionType) -> Vec<(&'static str, Need)> {
    let mut params = match action {
        ActionType::TriggerWorkflow => vec![
            ("workflow", Required),
            ("recipients", Default("userId")),
            ("actor", Optional),
            ("tenant", Optional),
            ("data", Optional),
            ("data_fields", Optional),
            ("cancellation_key", Optional),
        ],
        ActionType::CancelWorkflow => vec![
            ("workflow", Required),
            ("cancellation_key", Required),
            ("recipients", Optional),
        ],
        ActionType::IdentifyUser => vec![("user_id", Default("userId"))],
        ActionType::DeleteUser => vec![("user_id", Default("userId"))],
        ActionType::SetObject => vec![
            ("collection", Required),
            ("object_id", Required),
            ("name", Optional),
            ("properties", Optional),
        ],
        ActionType::DeleteObject => vec![("collection", Required), ("object_id", Required)],
        ActionType::SetTenant => vec![
            ("tenant_id", Required),
            ("name", Optional),
            ("settings", Optional),
            ("properties", Optional),
        ],
        ActionType::DeleteTenant => vec![("tenant_id", Required)],
        ActionType::Subscribe => vec![
            ("collection", Required),
            ("object_id", Required),
            ("recipients", Default("userId")),
            ("properties", Optional),
        ],
        ActionType::Unsubscribe => vec![
            ("collection", Required),
            ("object_id", Required),
            ("recipients", Default("userId")),
        ],
        ActionType::AddAudienceMember => vec![
            ("audience", Required),
            ("members", Default("userId")),
            ("tenant", Optional),
            ("create_audience", Optional),
        ],
        ActionType::RemoveAudienceMember => vec![
            ("audience", Required),
            ("members", Default("userId")),
            ("tenant", Optional),
        ],
    };
    if action == ActionType::IdentifyUser {
        params.extend(USER_FIELDS);
    }
    params
}
