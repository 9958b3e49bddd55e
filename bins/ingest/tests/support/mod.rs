//! The ingest service on a loopback port for tests: a real SQLite store in a
//! temporary directory, optional workers with the configured sinks, and a
//! reqwest client. Shared by the e2e and reverse-ETL test binaries.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tributary_actions::{PoolSettings, WorkerPool};
use tributary_core::config;
use tributary_ingest::{AppState, app, serve};
use tributary_pipeline::Pipeline;
use tributary_store::{SqliteStore, Store};

/// A running server; stopped when dropped.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// The server's store, for checking effects.
    pub(crate) store: Arc<dyn Store>,
    /// A client to talk to it.
    pub(crate) http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the app for `config_text`; with `run_workers`, action workers
    /// poll every 20 ms and are woken after each accepted request.
    pub(crate) async fn start(config_text: &str, run_workers: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
        let config = config::load_with_templates(
            "test.toml",
            config_text,
            &|_| None,
            &tributary_templates::lookup,
        )
        .unwrap();
        let sinks = serve::sinks(&config, &store).unwrap();
        let pipeline = Arc::new(
            Pipeline::new(Arc::new(config), store.clone())
                .await
                .unwrap(),
        );
        let shutdown = CancellationToken::new();
        let mut state = AppState::new(pipeline);
        if run_workers {
            let workers = WorkerPool::new(
                store.clone(),
                sinks,
                PoolSettings {
                    idle_poll: Duration::from_millis(20),
                    ..PoolSettings::default()
                },
                "test",
            );
            tokio::spawn(workers.clone().run(shutdown.clone()));
            state.workers = Some(workers);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app(state))
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        Self {
            base,
            store,
            http: reqwest::Client::new(),
            shutdown,
            _dir: dir,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
