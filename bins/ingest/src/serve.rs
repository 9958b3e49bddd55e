//! Starting and stopping the service: store, pipeline, workers, retention,
//! the HTTP server, and a graceful shutdown on SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tributary_actions::{
    KnockSink, LocalSink, PoolSettings, RetryPolicy, Sink, SinkSet, WebhookSink,
};
use tributary_core::config::{Config, SinkConfig, SourceConfig, SourceDocument};
use tributary_edge::{ConnectionLimits, raise_fd_limit};
use tributary_store::{LocalExecution, Store};

use crate::Service;

/// Which environments' actions the store runs itself, decided here once
/// from the configuration: those whose sink is `local` (it writes to this
/// same store, see [`sinks`]) and that have no rate limit, which is applied
/// where the sink runs. None when this process runs no workers.
pub fn local_execution(config: &Config) -> LocalExecution {
    if !config.workers.enabled {
        return LocalExecution::ThroughSink;
    }
    let in_store: Vec<String> = config
        .environments
        .iter()
        .filter(|(_, e)| matches!(e.sink, SinkConfig::Local) && e.rate_limits.is_empty())
        .map(|(env, _)| env.clone())
        .collect();
    if in_store.is_empty() {
        LocalExecution::ThroughSink
    } else {
        LocalExecution::InStore(in_store)
    }
}

/// One sink per environment, as configured, with its rate limits.
pub fn sinks(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<SinkSet> {
    let mut sinks = Vec::new();
    for (env, settings) in &config.environments {
        let sink: Arc<dyn Sink> = match &settings.sink {
            // The store this process opened with `local_execution`.
            SinkConfig::Local => Arc::new(LocalSink::new(store.clone())),
            SinkConfig::Knock {
                secret_key,
                base_url,
            } => Arc::new(
                KnockSink::new(base_url, secret_key.clone())
                    .with_context(|| format!("environments.{env}.sink"))?,
            ),
            SinkConfig::Webhook { url, secret } => Arc::new(
                WebhookSink::new(url, secret)
                    .with_context(|| format!("environments.{env}.sink"))?,
            ),
        };
        sinks.push((env.clone(), sink, settings.rate_limits.clone()));
    }
    Ok(SinkSet::new(sinks, config.workers.concurrency_per_sink))
}

/// Worker tuning from `[workers]`.
pub fn worker_settings(config: &Config) -> PoolSettings {
    let w = &config.workers;
    PoolSettings {
        concurrency_per_sink: w.concurrency_per_sink,
        max_in_flight: w.max_in_flight,
        retry: RetryPolicy {
            base: w.retry_base,
            cap: w.retry_cap,
            max_attempts: w.max_attempts,
            ..RetryPolicy::DEFAULT
        },
        ..PoolSettings::default()
    }
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_recorder() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Durations as histograms, not rolling summaries: counts per
            // bucket add up across replicas and between two scrapes, so
            // every slow answer or step in an interval is counted
            // (docs/ingest.md).
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("tributary_store_sqlite_step_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("tributary_request_duration_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Upper bounds, in seconds, of the buckets of
/// `tributary_request_duration_seconds` and
/// `tributary_store_sqlite_step_seconds`.
const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// What the banner prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Banner {
    /// Receive URLs with their tokens masked.
    Masked,
    /// The embedded default's first run: every secret in full, once.
    FirstRun,
}

fn mask(secret: &str, banner: Banner) -> String {
    match banner {
        Banner::FirstRun => secret.to_owned(),
        Banner::Masked => format!("{}…", secret.chars().take(4).collect::<String>()),
    }
}

/// Every way in, one per line (docs/product-decisions.md, "Operator surface"):
/// the receive URLs of `sources` (the file's, or every one being served).
pub fn banner(config: &Config, sources: &[&SourceConfig], banner: Banner) -> String {
    let source_environments = || {
        sources.iter().flat_map(|s| {
            s.environments
                .iter()
                .map(move |(env, se)| (s, env.as_str(), se))
        })
    };
    let base = &config.server.public_url;
    let mut out = String::new();
    out.push_str("Receive URLs:\n");
    for (source, env, se) in source_environments() {
        out.push_str(&format!(
            "  {base}/integrations/receive/{}  source={} kind={} environment={env}\n",
            mask(se.token.expose(), banner),
            source.key,
            source.kind
        ));
    }
    for (source, env, se) in source_environments() {
        if let Some(key) = &se.write_key {
            out.push_str(&format!(
                "Segment-compatible API: {base}/v1  write key {}  source={} environment={env}\n",
                mask(key.expose(), banner),
                source.key
            ));
        }
    }
    if let Some(token) = &config.admin.token {
        out.push_str(&format!(
            "Admin API: {base}/api/v1  bearer token {}\n",
            mask(token.expose(), banner)
        ));
        out.push_str(&format!(
            "Console: {base}{}  sign in with the admin token\n",
            tributary_console::BASE_PATH
        ));
    }
    if banner == Banner::FirstRun {
        if let Some((_, _, se)) = source_environments()
            .find(|(s, _, _)| s.kind == tributary_core::config::SourceKind::HttpLegacy)
        {
            out.push_str(&format!(
                "Try it:\n  curl -i -X POST {base}/integrations/receive/{} -H 'content-type: application/json' -d '{{\"type\":\"track\",\"event\":\"Signed Up\",\"userId\":\"u1\",\"properties\":{{\"plan\":\"team\"}}}}'\n",
                se.token.expose()
            ));
        }
        if let Some(token) = &config.admin.token {
            out.push_str(&format!(
                "  curl -s {base}/api/v1/events -H 'authorization: Bearer {}'\n",
                token.expose()
            ));
        }
    } else {
        out.push_str("Secrets are masked; `tributary-ingest check-config FILE --show-secrets` prints them.\n");
    }
    out
}

async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
        () = token.cancelled() => {},
    }
    tracing::info!("Stop signal received; finishing in-flight work.");
    token.cancel();
}

/// Runs the service until a stop signal. `banner_printed` runs once the
/// banner is out (the embedded default records that its secrets were shown).
pub async fn run(
    config: Config,
    file_documents: Vec<SourceDocument>,
    banner_kind: Banner,
    banner_printed: impl FnOnce(),
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let fd_limit = raise_fd_limit();
    let mut service = Service::build(config.clone(), file_documents).await?;
    if let Some(handle) = metrics_recorder() {
        service = service.with_metrics(handle);
    }
    let shutdown = CancellationToken::new();
    let running = service.start(&shutdown);
    let state = service.state();
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let live = state.pipeline.live();
        let sources: Vec<_> = live.sources().map(|s| &s.config).collect();
        out.write_all(banner(&config, &sources, banner_kind).as_bytes())?;
        out.flush()?;
    }
    banner_printed();
    let s = &config.server;
    let limits = ConnectionLimits::fitted(
        s.header_read_timeout,
        s.idle_timeout,
        s.max_connections,
        fd_limit,
    );
    tracing::info!(
        listen = %config.server.listen,
        max_connections = limits.max_connections,
        fd_limit,
        startup_ms = started.elapsed().as_millis() as u64,
        "Tributary ingest is listening."
    );
    let server_shutdown = shutdown.clone();
    tributary_edge::serve(
        listener,
        service.router(),
        limits,
        shutdown_signal(server_shutdown),
    )
    .await
    .context("the HTTP server failed")?;
    shutdown.cancel();
    // Requests are done (their commits returned); give workers the grace period.
    running.stop().await;
    tracing::info!("Stopped.");
    Ok(())
}
