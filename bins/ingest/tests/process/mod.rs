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

/// Writes `dir/tributary.toml`: the service on `port`, its SQLite store in
/// `dir/data`, the admin API on [`ADMIN`], and one Segment source `web` in
/// `development` with the receive token `token`, the lines `environment_extra`
/// in its environment table, and a mapping of `Signed Up` to a workflow with
/// the lines `mapping_extra`.
pub(crate) fn write_config(
    dir: &Path,
    port: u16,
    token: &str,
    environment_extra: &str,
    mapping_extra: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

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
{environment_extra}

[[sources.environments.development.mappings]]
event = "Signed Up"
action = "trigger_workflow"
workflow = "welcome"
{mapping_extra}
"#,
        dir.join("data").display()
    );
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary on `config`, logging at `RUST_LOG=warn` to nowhere.
pub(crate) fn start(config: &Path) -> Child {
    start_logging_to(config, "warn", Stdio::null())
}

/// Starts the binary on `config` with `RUST_LOG=filter`, its log (stderr) to `log`.
pub(crate) fn start_logging_to(config: &Path, filter: &str, log: impl Into<Stdio>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", filter)
        .stdout(Stdio::null())
        .stderr(log)
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
