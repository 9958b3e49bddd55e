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

/// One parameter an action takes, as a form that builds a mapping needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionParameter {
    /// Its key in a mapping (`workflow`, `recipients`, ...).
    pub name: &'static str,
    /// The mapping is refused without it.
    pub required: bool,
    /// The path read when it is left out.
    pub default_path: Option<&'static str>,
    /// A string value is a path into the event (otherwise a literal key,
    /// a boolean, or a table of fields).
    pub reads_path: bool,
    /// A string value is a literal key (workflow, collection, audience).
    pub literal_key: bool,
}

/// The parameters of `action`, in the order docs list them.
pub fn action_parameters(action: ActionType) -> Vec<ActionParameter> {
    spec(action)
        .into_iter()
        .map(|(name, need)| ActionParameter {
            name,
            required: need == Need::Required,
            default_path: match need {
                Need::Default(path) => Some(path),
                _ => None,
            },
            reads_path: form(name) == Form::Path,
            literal_key: form(name) == Form::Key,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/mapping.md lists each action's parameters; keep it true.
    #[test]
    fn docs_table_matches_the_spec() {
        let doc = include_str!("../../../../docs/mapping.md");
        for action in ActionType::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", action.as_str())))
                .unwrap_or_else(|| panic!("docs/mapping.md has no row for {action}"));
            let params_column = row.split('|').nth(2).unwrap();
            // Defaults sit in parentheses; drop them before collecting names.
            let mut depth = 0;
            let stripped: String = params_column
                .chars()
                .filter(|c| {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            return false;
                        }
                        _ => {}
                    }
                    depth == 0
                })
                .collect();
            let documented: Vec<&str> = stripped.split('`').skip(1).step_by(2).collect();
            let spec: Vec<&str> = spec(action).iter().map(|(n, _)| *n).collect();
            let mut a = documented.clone();
            let mut b = spec.clone();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(
                a, b,
                "{action}: docs say {documented:?}, code says {spec:?}"
            );
            for (name, need) in super::spec(action) {
                let starred = stripped.contains(&format!("`{name}`*"));
                assert_eq!(
                    starred,
                    need == Need::Required,
                    "{action}.{name} required-ness"
                );
            }
        }
    }
}
