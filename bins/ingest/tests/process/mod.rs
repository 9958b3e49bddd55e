//! The real `tributary-ingest` binary as a child process, for tests of what
//! belongs to the binary: its configuration, a free loopback port, start
//! and wait, and its store's size and contents on disk.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The admin token of [`write_config`]'s configuration.
pub(crate) const ADMIN: &str = "adm_process_0123456789abcdefg";

/// Lines added to [`write_config`]'s tables.
#[derive(Clone, Copy, Default)]
pub(crate) struct ConfigLines<'a> {
    /// In `[server]`.
    pub(crate) server: &'a str,
    /// In the source environment's table.
    pub(crate) environment: &'a str,
    /// With `Some`, a mapping of `Signed Up` to a workflow, these lines in it.
    pub(crate) mapping: Option<&'a str>,
}

/// Writes `dir/tributary.toml`: the service on `port`, its SQLite store in
/// `dir/data`, the admin API on [`ADMIN`], and one Segment source `web` in
/// `development` with the receive token `token`, plus `lines`.
pub(crate) fn write_config(
    dir: &Path,
    port: u16,
    token: &str,
    lines: ConfigLines<'_>,
) -> std::path::PathBuf {
    let ConfigLines {
        server,
        environment,
        mapping,
    } = lines;
    let mapping = mapping.map_or(String::new(), |extra| {
        format!(
            r#"
[[sources.environments.development.mappings]]
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
{extra}
"#
        )
    });
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
{server}

[store]
path = "{}"

[admin]
token = "{ADMIN}"

[environments.development]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "{token}"
{environment}
{mapping}"#,
        dir.join("data").display()
    );
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `GET /api/v1/{path}` with the admin token of [`write_config`], as JSON.
pub(crate) async fn admin_get(base: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts the binary on `config`, logging at `RUST_LOG=warn` to nowhere.
pub(crate) fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `/healthz` answers 2xx (20 s at most).
pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the service did not start");
}

/// The bytes of every file under `dir`, recursively.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Every file under `dir` read whole, concatenated: for checking that a
/// secret appears nowhere at rest.
pub(crate) fn dir_contents(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(dir_contents(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}
