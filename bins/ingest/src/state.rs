//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tributary_actions::WorkerPool;
use tributary_core::Secret;
use tributary_edge::BodyBudget;
use tributary_manage::Manager;
use tributary_pipeline::Pipeline;

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct AppState {
    /// The ingest pipeline (config, engine, store).
    pub pipeline: Arc<Pipeline>,
    /// The live configuration's management layer over the pipeline.
    pub manager: Arc<Manager>,
    /// The action workers, woken after each request that left actions in
    /// the outbox ([`tributary_pipeline::Receipt::queued`]).
    pub workers: Option<Arc<WorkerPool>>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Bearer token of the admin API; the admin API answers 404 without one.
    pub admin_token: Option<Secret>,
    /// Largest body read from the socket (compressed or not).
    pub max_body_bytes: usize,
    /// Request-body bytes read at once across all requests, and the time
    /// to read one body.
    pub body_budget: BodyBudget,
}

impl AppState {
    /// Wakes the workers after a request that left `queued` actions in the
    /// outbox. Only work in the outbox needs them: an action the store ran
    /// at append needs nothing more, and a wake costs a claim round (on
    /// SQLite a job on the writer thread, on PostgreSQL a round trip).
    pub(crate) fn wake_workers_for(&self, queued: usize) {
        if queued > 0
            && let Some(w) = &self.workers
        {
            w.wake();
        }
    }

    /// State over a pipeline, with the limits its configuration sets. Its
    /// manager shows file sources without their documents; see
    /// [`AppState::with_file_documents`].
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        let manager = Arc::new(Manager::new(pipeline.clone(), Vec::new()));
        let config = pipeline.config();
        Self {
            admin_token: config.admin.token.clone(),
            max_body_bytes: config.server.max_body_bytes,
            body_budget: BodyBudget::new(
                config.server.body_budget_bytes,
                config.server.body_read_timeout,
            ),
            pipeline,
            manager,
            workers: None,
            metrics: None,
        }
    }

    /// The configuration file's `[[sources]]` tables as written, so the
    /// management API shows file sources as the file has them.
    pub fn with_file_documents(
        mut self,
        documents: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        self.manager = Arc::new(Manager::new(self.pipeline.clone(), documents));
        self
    }
}
