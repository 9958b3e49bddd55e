//! `tributary-forwarder serve`: the webhook receiver and the dispatcher in
//! one process, with graceful shutdown on SIGTERM/SIGINT.

use std::{io::Write, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use tributary_edge::ConnectionLimits;
use tributary_outbound::{Dispatcher, Pruner};

use crate::{
    app::{AppState, app},
    config::ForwarderConfig,
};

/// Runs until SIGTERM/SIGINT: stops accepting webhooks, flushes what it can
/// within `segment.shutdown_grace_ms`, leaves the rest queued for next time.
pub async fn serve(config: ForwarderConfig) -> anyhow::Result<()> {
    let fd_limit = tributary_edge::raise_fd_limit();
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let queue = config.open_queue()?;
    let stats = queue.stats().await?;
    for (env, n) in &stats.pending {
        // The others are moved to the dead letters by the pruner's first pass.
        if config.forwarding().why_not(env).is_none() {
            info!(environment = %env, pending = n, "Resuming delivery of queued events.");
        }
    }
    let routes = config.routes();
    let dispatcher = Dispatcher::new(queue.clone(), config.segment.clone(), routes)?;
    let delivery_stop = CancellationToken::new();
    let delivery = tokio::spawn(dispatcher.run(delivery_stop.clone()));
    // Retention runs beside delivery: its first pass now, then every
    // interval, in batches that leave the queue's writer to webhooks between.
    // It also moves entries of environments without a route to the dead
    // letters: the forwarding it is given is the one `routes` came from, so
    // it never touches an entry the dispatcher may be sending.
    let pruning_stop = CancellationToken::new();
    let pruning = tokio::spawn(
        Pruner::new(queue.clone(), config.retention.clone())?
            .with_forwarding(config.forwarding())
            .run(pruning_stop.clone()),
    );
    info!(
        max_age_secs = config.retention.max_age.map(|a| a.as_secs()),
        max_count = config.retention.max_count,
        interval_secs = config.retention.interval.as_secs(),
        "Dead-letter retention scheduled."
    );

    // Handlers first: a SIGTERM right after the "listening" line must still
    // shut down gracefully, not kill the process.
    let stop = ShutdownSignal::install()?;
    let state = AppState::new(&config, queue, Some(metrics))?;
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    // One line on stdout that scripts (and the crash test) can read.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "tributary-forwarder listening on http://{addr}")?;
        for (name, env) in &config.environments {
            let status = if env.write_key.is_some() {
                "forwarded"
            } else {
                "not forwarded: no write key"
            };
            writeln!(
                out,
                "  POST http://{addr}/knock/webhooks/{name}  ({status})"
            )?;
        }
        out.flush()?;
    }
    let s = &config.server;
    let limits = ConnectionLimits::fitted(
        s.header_read_timeout,
        s.idle_timeout,
        s.max_connections,
        fd_limit,
    );
    info!(%addr, host = %config.segment.host, max_connections = limits.max_connections, fd_limit, "Forwarder started.");
    tributary_edge::serve(listener, app(state), limits, stop.received())
        .await
        .context("serving HTTP")?;
    info!("No longer accepting webhooks; flushing the queue.");
    pruning_stop.cancel();
    delivery_stop.cancel();
    let grace =
        config.segment.shutdown_grace() + config.segment.request_timeout() + Duration::from_secs(1);
    if tokio::time::timeout(grace, delivery).await.is_err() {
        warn!("Delivery did not stop within the grace period; the rest stays queued.");
    }
    // A pass stops between batches once cancelled; each batch is one short
    // transaction, so this wait is brief.
    if tokio::time::timeout(Duration::from_secs(5), pruning)
        .await
        .is_err()
    {
        warn!("Dead-letter pruning did not stop in time; it resumes at the next start.");
    }
    info!("Forwarder stopped.");
    Ok(())
}

/// SIGTERM and SIGINT, registered when installed (not when first awaited).
struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
