//! The twelve actions a mapping can run (docs/product-decisions.md, "Mappings") and
//! their fixed execution order.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// An action type. The serialized names are Tributary's (`trigger_workflow`);
/// [`ActionType::from_str`] also accepts the product's Management API names
/// (`workflows_trigger`, `users_identify`, ...) so exported mappings load as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Create or update a user (`PUT /v1/users/{id}`).
    IdentifyUser,
    /// Delete a user.
    DeleteUser,
    /// Create or update an object in a collection.
    SetObject,
    /// Delete an object.
    DeleteObject,
    /// Create or update a tenant.
    SetTenant,
    /// Delete a tenant.
    DeleteTenant,
    /// Add recipients to an object's subscribers.
    Subscribe,
    /// Remove recipients from an object's subscribers.
    Unsubscribe,
    /// Add members to an audience.
    AddAudienceMember,
    /// Remove members from an audience.
    RemoveAudienceMember,
    /// Cancel workflow runs by cancellation key.
    CancelWorkflow,
    /// Trigger a workflow for recipients.
    TriggerWorkflow,
}

impl ActionType {
    /// Every action, in execution order.
    pub const ALL: [ActionType; 12] = [
        Self::IdentifyUser,
        Self::DeleteUser,
        Self::SetObject,
        Self::DeleteObject,
        Self::SetTenant,
        Self::DeleteTenant,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::AddAudienceMember,
        Self::RemoveAudienceMember,
        Self::CancelWorkflow,
        Self::TriggerWorkflow,
    ];

    /// Position in the product's fixed execution order: identify first so a
    /// trigger of the same event can address the new user, trigger last.
    /// Cancel is not in the product's list; it runs just before trigger so an
    /// event that both cancels and triggers replaces the old run, not the new one.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// Tributary's name (`trigger_workflow`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentifyUser => "identify_user",
            Self::DeleteUser => "delete_user",
            Self::SetObject => "set_object",
            Self::DeleteObject => "delete_object",
            Self::SetTenant => "set_tenant",
            Self::DeleteTenant => "delete_tenant",
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::AddAudienceMember => "add_audience_member",
            Self::RemoveAudienceMember => "remove_audience_member",
            Self::CancelWorkflow => "cancel_workflow",
            Self::TriggerWorkflow => "trigger_workflow",
        }
    }

    /// The product's Management API name (`workflows_trigger`), where it has one.
    pub fn product_name(self) -> &'static str {
        match self {
            Self::IdentifyUser => "users_identify",
            Self::DeleteUser => "users_delete",
            Self::SetObject => "objects_set",
            Self::DeleteObject => "objects_delete",
            Self::SetTenant => "tenants_set",
            Self::DeleteTenant => "tenants_delete",
            Self::Subscribe => "objects_subscribe",
            Self::Unsubscribe => "objects_unsubscribe",
            Self::AddAudienceMember => "audiences_add_member",
            Self::RemoveAudienceMember => "audiences_remove_member",
            Self::CancelWorkflow => "workflows_cancel",
            Self::TriggerWorkflow => "workflows_trigger",
        }
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a name that is neither ours nor the product's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown action `{}`; expected one of ", self.0)?;
        for (i, a) in ActionType::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ActionType {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionType::ALL
            .into_iter()
            .find(|a| a.as_str() == s || a.product_name() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_order_is_the_products() {
        let order: Vec<_> = ActionType::ALL.iter().map(|a| a.product_name()).collect();
        assert_eq!(
            order,
            [
                "users_identify",
                "users_delete",
                "objects_set",
                "objects_delete",
                "tenants_set",
                "tenants_delete",
                "objects_subscribe",
                "objects_unsubscribe",
                "audiences_add_member",
                "audiences_remove_member",
                "workflows_cancel",
                "workflows_trigger",
            ]
        );
        let mut sorted = ActionType::ALL;
        sorted.sort_by_key(|a| std::cmp::Reverse(a.rank()));
        sorted.sort_by_key(|a| a.rank());
        assert_eq!(sorted, ActionType::ALL);
    }

    #[test]
    fn both_naming_schemes_parse() {
        assert_eq!("trigger_workflow".parse(), Ok(ActionType::TriggerWorkflow));
        assert_eq!("workflows_trigger".parse(), Ok(ActionType::TriggerWorkflow));
        let err = "trigger".parse::<ActionType>().unwrap_err();
        assert!(err.to_string().contains("unknown action `trigger`"));
    }
}
