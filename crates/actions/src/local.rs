//! The `local` sink: actions take effect in the store's local recipients
//! (users, objects, tenants, audiences, subscriptions, workflow runs), queryable
//! through the admin API. The embedded default; no external service.
//!
//! A store opened to run an environment's actions itself
//! ([`tributary_store::LocalExecution::InStore`]) runs them in the append
//! (or, behind older actions waiting in the outbox, SQLite in the worker's
//! round) and this sink never sees them. This is the path for a
//! rate-limited environment, for a process whose appends another process
//! makes, for older actions a PostgreSQL store leases, and for a sink over
//! another store.

use std::{
    num::NonZeroU32,
    str::FromStr,
    sync::{Arc, OnceLock},
};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tributary_core::ActionType;
use tributary_store::{ActionId, LocalApply, LocalEffect, LocalRecipients, StoreError};

use crate::{ActionRequest, BoxFuture, Outcome, Sink};

/// The most actions applied in one store call.
const APPLY_BATCH: usize = 256;

struct Pending {
    item: LocalApply,
    reply: oneshot::Sender<Result<LocalEffect, StoreError>>,
}

/// Applies actions to the store's local recipients.
///
/// Concurrent executions are applied together: whatever is waiting goes to
/// the store in one [`LocalRecipients::apply_local_many`] call, so on SQLite
/// a burst of actions costs one writer job, not one each.
pub struct LocalSink {
    store: Arc<dyn LocalRecipients>,
    // Started on the first action, inside the runtime that runs the workers.
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl LocalSink {
    /// A sink writing to `store`.
    pub fn new(store: Arc<dyn LocalRecipients>) -> Self {
        Self {
            store,
            queue: OnceLock::new(),
        }
    }

    fn queue(&self) -> &mpsc::UnboundedSender<Pending> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(apply_batches(Arc::clone(&self.store), rx));
            tx
        })
    }

    async fn apply(&self, item: LocalApply) -> Result<LocalEffect, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue()
            .send(Pending { item, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Ends when the sink (the only sender) is dropped.
async fn apply_batches(store: Arc<dyn LocalRecipients>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(APPLY_BATCH);
    while rx.recv_many(&mut batch, APPLY_BATCH).await > 0 {
        let (items, replies): (Vec<_>, Vec<_>) = batch.drain(..).map(|p| (p.item, p.reply)).unzip();
        match store.apply_local_many(items).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.replicate()));
                }
            }
        }
    }
}

impl Sink for LocalSink {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn rate_limit(&self, _action: ActionType) -> Option<NonZeroU32> {
        None
    }

    fn concurrency(&self, _configured: usize) -> usize {
        // Executions wait on one batched store call, not on a remote service:
        // the more that wait together, the cheaper each. The pool's
        // `max_in_flight` still bounds them.
        Semaphore::MAX_PERMITS
    }

    fn execute<'a>(&'a self, request: &'a ActionRequest) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Ok(action) = ActionId::from_str(&request.action_id) else {
                return Outcome::Failed {
                    status: None,
                    error: format!("`{}` is not an action id", request.action_id),
                };
            };
            // The store applies each action id once, so a retry after a crash
            // between apply and finish has no second effect.
            let item = LocalApply {
                action,
                environment: request.environment.clone(),
                payload: request.payload.clone(),
            };
            match self.apply(item).await {
                // A trigger naming users never identified succeeds with no
                // run for them, as the product's does; the summary names them.
                Ok(effect) => Outcome::Succeeded {
                    status: None,
                    summary: effect.summary(),
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
