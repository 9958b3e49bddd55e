//! Shared helpers: configs, fixtures, signing.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use tributary_core::Secret;
use tributary_forwarder::{config::ForwarderConfig, signature::sign};

pub(crate) const SECRET: &str = "whsec_test_production";
pub(crate) const WRITE_KEY: &str = "wk_production";

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/outbound")
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("webhooks").join(name)).unwrap()
}

/// A config file's text: `production` (forwarded), `development` (no write
/// key), a fake Segment host and fast test timings.
pub(crate) fn config_text(queue: &Path, host: &str, listen: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "{listen}"

[queue]
path = "{}"

[segment]
host = "{host}"
flush_interval_ms = 10
backoff_initial_ms = 5
backoff_max_ms = 50
request_timeout_ms = 1000
shutdown_grace_ms = 500

[environments.production]
signing_secret = "{SECRET}"
write_key = "{WRITE_KEY}"
display_name = "Production"

[environments.development]
signing_secret = "whsec_dev"
{extra}
"#,
        queue.display()
    )
}

pub(crate) fn config(queue: &Path, host: &str, extra: &str) -> ForwarderConfig {
    ForwarderConfig::parse(&config_text(queue, host, "127.0.0.1:0", extra), |_| None).unwrap()
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Posts `body` to production's receive URL, signed with its secret.
pub(crate) async fn post_webhook(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/knock/webhooks/production"))
        .header("x-knock-signature", signature(SECRET, &body))
        .body(body)
        .send()
        .await
}

pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    sign(&Secret::new(secret), now_ms(), body)
}

pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) base: String,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a forwarder behind if an assertion failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(config: &Path) -> Running {
    start_with(config, None)
}

/// [`start`], under a soft open-file limit of `soft_fd_limit` when given
/// (as a service manager might set one).
pub(crate) fn start_with(config: &Path, soft_fd_limit: Option<u32>) -> Running {
    let bin = env!("CARGO_BIN_EXE_tributary-forwarder");
    let mut command = match soft_fd_limit {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "ulimit -Sn {n} && exec \"$0\" --config \"$1\" serve"
                ))
                .arg(bin)
                .arg(config);
            c
        }
        None => {
            let mut c = Command::new(bin);
            c.arg("--config").arg(config).arg("serve");
            c
        }
    };
    let mut child = command
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the forwarder");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("tributary-forwarder listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running {
        child,
        base,
        _stdout: stdout,
    }
}

/// Sends SIGTERM and waits for the process to exit.
pub(crate) fn terminate(running: &mut Running) -> std::process::ExitStatus {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    running.child.wait().unwrap()
}

/// Runs the binary to completion off the async threads (the fake Segment
/// must keep answering meanwhile).
pub(crate) async fn forwarder(config: &Path, args: &[&str]) -> std::process::Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tributary-forwarder"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// One sample of the metric whose line starts with `line_start`.
pub(crate) async fn metric(base: &str, line_start: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Polls `probe` until it returns `expected`, failing after `wait`.
pub(crate) async fn eventually<T: PartialEq + std::fmt::Debug, F: Future<Output = T>>(
    wait: Duration,
    expected: T,
    mut probe: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let got = probe().await;
        if got == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
