//! `tributary-ingest config export` and `config import`: the live
//! configuration as a file, and a file's sources into the store.
//!
//! When the service answers on its listen address, the commands go through
//! its admin API (a SQLite store has one writer, the running service);
//! otherwise they open the store themselves and run the same management
//! code in this process.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use tributary_core::config::{Config, SourceDocument};
use tributary_manage::Manager;
use tributary_pipeline::Pipeline;
use tributary_store::LocalExecution;

/// Who a change made from the command line is recorded as.
const ACTOR: &str = "cli";

/// Where the running service would answer, if it runs.
fn local_base(config: &Config) -> Option<String> {
    let addr: SocketAddr = config.server.listen.parse().ok()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    Some(format!("http://{host}:{}", addr.port()))
}

async fn running(config: &Config) -> Option<(reqwest::Client, String, String)> {
    let base = local_base(config)?;
    let token = config.admin.token.as_ref()?.expose().to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .ok()?;
    let up = client
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    up.then_some((client, base, token))
}

async fn in_process(config: &Config, documents: Vec<SourceDocument>) -> anyhow::Result<Manager> {
    // No workers run here, so the store runs no action itself.
    let store = tributary_store::open(&config.store, LocalExecution::ThroughSink)
        .await
        .context(
            "cannot open the store (is the service running with another admin token or address?)",
        )?;
    let pipeline = Pipeline::new(Arc::new(config.clone()), store)
        .await
        .context("cannot read the configuration from the store")?;
    Ok(Manager::new(Arc::new(pipeline), documents))
}

/// The configuration file's text followed by the stored sources: a file
/// `check-config` accepts and `config import` takes back unchanged.
pub async fn export(
    config: &Config,
    file_text: &str,
    documents: Vec<SourceDocument>,
) -> anyhow::Result<String> {
    let stored = match running(config).await {
        Some((client, base, token)) => {
            let response = client
                .get(format!("{base}/api/v1/config/export"))
                .bearer_auth(token)
                .send()
                .await
                .context("the service did not answer the export")?;
            if !response.status().is_success() {
                bail!("the service refused the export: {}", response.text().await?);
            }
            response.text().await?
        }
        None => in_process(config, documents).await?.export().await?,
    };
    Ok(format!("{}\n\n{stored}", file_text.trim_end()))
}

/// Imports `text`'s sources; the answer is the steps, as JSON.
pub async fn import(
    config: &Config,
    documents: Vec<SourceDocument>,
    text: String,
    dry_run: bool,
) -> anyhow::Result<serde_json::Value> {
    match running(config).await {
        Some((client, base, token)) => {
            let response = client
                .post(format!("{base}/api/v1/config/import?dry_run={dry_run}"))
                .bearer_auth(token)
                .header("content-type", "application/toml")
                .body(text)
                .send()
                .await
                .context("the service did not answer the import")?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            if !status.is_success() {
                bail!("the import was refused ({status}): {body}");
            }
            Ok(body)
        }
        None => {
            let manager = in_process(config, documents).await?;
            let import = manager
                .import(ACTOR, &text, dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("the import was refused: {e}"))?;
            Ok(
                serde_json::json!({"dry_run": dry_run, "steps": import.steps, "revision": import.revision}),
            )
        }
    }
}
