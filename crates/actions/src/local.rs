//! The `local` sink: actions take effect in the store's local recipients
//! (users, objects, tenants, audiences, subscriptions, workflow runs), queryable
//! through the admin API. The embedded default; no external service.

use std::{num::NonZeroU32, str::FromStr, sync::Arc};

use tributary_core::ActionType;
use tributary_store::{ActionId, LocalEffect, Store};

use crate::{ActionRequest, BoxFuture, Outcome, Sink};

/// Applies actions to the store's local recipients.
pub struct LocalSink {
    store: Arc<dyn Store>,
}

impl LocalSink {
    /// A sink writing to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl Sink for LocalSink {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn rate_limit(&self, _action: ActionType) -> Option<NonZeroU32> {
        None
    }

    fn execute<'a>(&'a self, request: &'a ActionRequest) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Ok(id) = ActionId::from_str(&request.action_id) else {
                return Outcome::Failed {
                    status: None,
                    error: format!("`{}` is not an action id", request.action_id),
                };
            };
            // The store applies each action id once, so a retry after a crash
            // between apply and finish has no second effect.
            match self
                .store
                .apply_local(id, &request.environment, &request.payload)
                .await
            {
                Ok(LocalEffect::Applied) => Outcome::Succeeded {
                    status: None,
                    summary: "applied to local recipients".to_owned(),
                },
                Ok(LocalEffect::AlreadyApplied) => Outcome::Succeeded {
                    status: None,
                    summary: "already applied".to_owned(),
                },
                Err(e) if e.is_unavailable() => Outcome::Retry {
                    status: None,
                    error: e.to_string(),
                    retry_after: None,
                },
                Err(e) => Outcome::Failed {
                    status: None,
                    error: e.to_string(),
                },
            }
        })
    }
}
