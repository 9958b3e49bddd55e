//! The mapping parameters, written once: the table in
//! [`with_mapping_parameters`] gives each parameter's name, its form and its
//! documentation, and from it come [`Param`], the raw form `RawMapping` (raw.rs)
//! and [`MappingParams`](super::MappingParams) with its slots (model.rs). Then
//! which parameters each action takes, which are required, and their
//! defaults (`spec`). docs/mapping.md renders that for people; a test keeps
//! them in step.

use crate::ActionType;

/// Calls `$then!` with the table of mapping parameters: one line each,
/// `field Variant Form`, with its documentation. The order is the order
/// parameters are checked and serialized in.
macro_rules! with_mapping_parameters {
    ($then:ident) => {
        $then! {
            /// Workflow key (trigger, cancel).
            workflow Workflow Key,
            /// Recipients: an id, a list, inline users/objects, or a mix.
            recipients Recipients Path,
            /// Actor: an id or an inline user/object.
            actor Actor Path,
            /// Tenant: an id or an inline tenant (trigger, audience membership).
            tenant Tenant Path,
            /// Trigger data (default: the event's data).
            data Data Path,
            /// Named trigger data fields, merged over `data`.
            data_fields DataFields Fields,
            /// Cancellation key.
            cancellation_key CancellationKey Path,
            /// User id (identify, delete user; default `userId`).
            user_id UserId Path,
            /// User or tenant name.
            name Name Path,
            /// Email.
            email Email Path,
            /// Phone number (E.164).
            phone_number PhoneNumber Path,
            /// Avatar URL.
            avatar Avatar Path,
            /// Locale.
            locale Locale Path,
            /// Time zone.
            timezone Timezone Path,
            /// An object of custom properties.
            properties Properties Path,
            /// Object collection.
            collection Collection Key,
            /// Object id.
            object_id ObjectId Path,
            /// Tenant id (set/delete tenant).
            tenant_id TenantId Path,
            /// Tenant settings.
            settings Settings Path,
            /// Audience key.
            audience Audience Key,
            /// Audience members (default `userId`).
            members Members Path,
            /// Create the audience if it does not exist.
            create_audience CreateAudience Bool,
        }
    };
}
pub(crate) use with_mapping_parameters;

macro_rules! param_enum {
    ($( $(#[$doc:meta])* $field:ident $variant:ident $form:ident, )*) => {
        /// One mapping parameter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Param {
            $( $(#[$doc])* $variant, )*
        }

        impl Param {
            /// Every parameter, in the table's order.
            pub(crate) const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// Its key in a mapping.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($field),)*
                }
            }

            /// How its value is read.
            pub(crate) fn form(self) -> Form {
                match self {
                    $(Self::$variant => Form::$form,)*
                }
            }
        }
    };
}
with_mapping_parameters!(param_enum);

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

use Need::{Default, Optional, Required};
use Param::*;

const USER_FIELDS: [(Param, Need); 7] = [
    (Name, Optional),
    (Email, Optional),
    (PhoneNumber, Optional),
    (Avatar, Optional),
    (Locale, Optional),
    (Timezone, Optional),
    (Properties, Optional),
];

/// The parameters of `action`, in the order docs list them.
pub(crate) fn spec(action: ActionType) -> Vec<(Param, Need)> {
    let mut params = match action {
        ActionType::TriggerWorkflow => vec![
            (Workflow, Required),
            (Recipients, Default("userId")),
            (Actor, Optional),
            (Tenant, Optional),
            (Data, Optional),
            (DataFields, Optional),
            (CancellationKey, Optional),
        ],
        ActionType::CancelWorkflow => vec![
            (Workflow, Required),
            (CancellationKey, Required),
            (Recipients, Optional),
        ],
        ActionType::IdentifyUser => vec![(UserId, Default("userId"))],
        ActionType::DeleteUser => vec![(UserId, Default("userId"))],
        ActionType::SetObject => vec![
            (Collection, Required),
            (ObjectId, Required),
            (Name, Optional),
            (Properties, Optional),
        ],
        ActionType::DeleteObject => vec![(Collection, Required), (ObjectId, Required)],
        ActionType::SetTenant => vec![
            (TenantId, Required),
            (Name, Optional),
            (Settings, Optional),
            (Properties, Optional),
        ],
        ActionType::DeleteTenant => vec![(TenantId, Required)],
        ActionType::Subscribe => vec![
            (Collection, Required),
            (ObjectId, Required),
            (Recipients, Default("userId")),
            (Properties, Optional),
        ],
        ActionType::Unsubscribe => vec![
            (Collection, Required),
            (ObjectId, Required),
            (Recipients, Default("userId")),
        ],
        ActionType::AddAudienceMember => vec![
            (Audience, Required),
            (Members, Default("userId")),
            (Tenant, Optional),
            (CreateAudience, Optional),
        ],
        ActionType::RemoveAudienceMember => vec![
            (Audience, Required),
            (Members, Default("userId")),
            (Tenant, Optional),
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
        .map(|(param, need)| ActionParameter {
            name: param.name(),
            required: need == Need::Required,
            default_path: match need {
                Need::Default(path) => Some(path),
                _ => None,
            },
            reads_path: param.form() == Form::Path,
            literal_key: param.form() == Form::Key,
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
            let spec: Vec<&str> = spec(action).iter().map(|(p, _)| p.name()).collect();
            let mut a = documented.clone();
            let mut b = spec.clone();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(
                a, b,
                "{action}: docs say {documented:?}, code says {spec:?}"
            );
            for (param, need) in super::spec(action) {
                let name = param.name();
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
