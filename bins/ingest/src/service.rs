//! The ingest service without a socket: what an embedding Rust service
//! needs to run Tributary inside its own process and router.
//!
//! [`Service::build`] opens the store and makes the pipeline, the
//! management layer and the action workers; [`Service::router`] is the
//! whole HTTP surface as an axum `Router` to serve or nest; and
//! [`Service::start`] runs the background tasks (workers, retention, the
//! configuration refresher) until the token is cancelled. Nothing here binds
//! a socket, prints a banner or installs a process-wide recorder: `serve::run`
//! adds those for the binary.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_actions::WorkerPool;
use tributary_core::config::{Config, SourceDocument};
use tributary_pipeline::Pipeline;

use crate::{AppState, app, serve};

/// How often a replica looks for a new configuration revision: one
/// indexed `MAX` per poll, so a change made anywhere applies everywhere
/// well within 2 seconds (docs/managing-sources.md, "Replicas").
const CONFIG_POLL: Duration = Duration::from_millis(500);

/// How often the mapping toggles are re-read even without a new revision
/// (a replica of an older version toggles without recording one).
const OVERRIDES_REFRESH: Duration = Duration::from_secs(5);

/// How long in-flight actions get to finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The ingest service, built and not yet serving.
pub struct Service {
    state: AppState,
    workers: Option<Arc<WorkerPool>>,
}

/// The background tasks of a started [`Service`].
pub struct Running {
    workers: JoinHandle<()>,
    retention: JoinHandle<()>,
    refresher: JoinHandle<()>,
}

impl Service {
    /// Opens `config`'s store and makes everything but the sockets.
    /// `file_documents` are the configuration file's `[[sources]]` tables
    /// as written (`tributary_core::config::source_documents`), shown by the
    /// management API for file sources; empty is fine.
    pub async fn build(
        config: Config,
        file_documents: Vec<SourceDocument>,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let store = tributary_store::open(&config.store, serve::local_execution(&config))
            .await
            .context("cannot open the store")?;
        let pipeline = Arc::new(
            Pipeline::new(config.clone(), store.clone())
                .await
                .context("cannot read the configuration and mapping toggles from the store")?,
        );
        let owner = format!(
            "ingest-{}-{}",
            std::process::id(),
            tributary_core::event::EventId::generate(chrono::Utc::now())
        );
        let workers = WorkerPool::new(
            store.clone(),
            serve::sinks(&config, &store)?,
            serve::worker_settings(&config),
            owner,
        );
        let mut state = AppState::new(pipeline).with_file_documents(file_documents);
        // An ingest-only replica has no workers to wake or to check for readiness.
        let workers = config.workers.enabled.then_some(workers);
        state.workers.clone_from(&workers);
        Ok(Self { state, workers })
    }

    /// The shared state behind the router (pipeline, manager, limits).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Sets what renders `/metrics` (the binary installs a process-wide
    /// Prometheus recorder; an embedder may have its own or none).
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.state.metrics = Some(handle);
        self
    }

    /// Every route of the service, to serve or to nest in another router.
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Starts the workers (unless `[workers] enabled = false`), retention
    /// and the configuration refresher; they stop when `shutdown` is
    /// cancelled (then call [`Running::stop`]).
    pub fn start(&self, shutdown: &CancellationToken) -> Running {
        let workers = match &self.workers {
            Some(w) => tokio::spawn(w.clone().run(shutdown.clone())),
            None => {
                tracing::info!(
                    "Action workers are off in this process ([workers] enabled = false)."
                );
                tokio::spawn(async {})
            }
        };
        let pipeline = self.state.pipeline.clone();
        let config = pipeline.config();
        let retention = tributary_store::spawn_retention(
            pipeline.store().clone(),
            config.store.retention_days,
            Duration::from_secs(3600),
        );
        let refresher = tokio::spawn(refresh(pipeline, shutdown.clone()));
        Running {
            workers,
            retention,
            refresher,
        }
    }
}

impl Running {
    /// Waits for the workers to finish what they hold (up to a grace
    /// period; unfinished leases expire and run again), then stops the rest.
    /// Cancel the shutdown token first.
    pub async fn stop(self) {
        if tokio::time::timeout(SHUTDOWN_GRACE, self.workers)
            .await
            .is_err()
        {
            tracing::warn!(
                "Workers did not finish within the grace period; their leases will expire and the actions run again."
            );
        }
        self.retention.abort();
        self.refresher.abort();
    }
}

/// Applies new configuration revisions and re-reads mapping toggles.
async fn refresh(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let mut toggles_read = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(CONFIG_POLL) => {}
        }
        let before = pipeline.live().revision();
        let revision = match pipeline.refresh_live().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the configuration's revisions.");
                continue;
            }
        };
        // A switch changed elsewhere is recorded as a revision too; the
        // periodic read catches one written by an older replica.
        if revision != before || toggles_read.elapsed() >= OVERRIDES_REFRESH {
            toggles_read = tokio::time::Instant::now();
            if let Err(e) = pipeline.refresh_overrides().await {
                tracing::warn!(error = %e, "Could not refresh mapping toggles.");
            }
        }
    }
}
