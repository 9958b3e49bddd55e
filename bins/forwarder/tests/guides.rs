//! docs/forwarding-to-segment.md cannot rot: its fenced `sh` blocks run, in order, in one
//! `bash -euo pipefail`, against the real `tributary-forwarder` binary delivering to a fake
//! Segment (a real HTTP server on loopback). The fake refuses the staging write key once, so the
//! guide's dead-letter and redrive steps meet a real refusal.

use std::{
    fmt::Write as _,
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tributary_outbound::fake_segment::{FakeSegment, Reply};

const PRODUCTION_SECRET: &str = "knock-webhook-secret-production";
const STAGING_SECRET: &str = "knock-webhook-secret-staging";
const PRODUCTION_KEY: &str = "wk_segment_production";
const STAGING_KEY: &str = "wk_segment_staging";

/// Kills the forwarder when the test ends, passing or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fenced `sh` blocks of a Markdown file, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match current.as_mut() {
            None if trimmed.starts_with("```sh") && trimmed[5..].trim().is_empty() => {
                current = Some(String::new());
            }
            Some(_) if trimmed.starts_with("```") => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unterminated ```sh block");
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_guide_commands_work_against_the_real_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fake = FakeSegment::start().await;
    fake.script(STAGING_KEY, [Reply::Status(401)]);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = std::fs::read_to_string(root.join("fixtures/guides/forwarder.toml"))
        .unwrap()
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace(
            "@QUEUE@",
            &dir.path().join("queue.db").display().to_string(),
        )
        .replace("@SEGMENT_HOST@", &fake.host());
    let config_path = dir.path().join("forwarder.toml");
    std::fs::write(&config_path, config).unwrap();

    let binary = Path::new(env!("CARGO_BIN_EXE_tributary-forwarder"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env: Vec<(&str, String)> = vec![
        (
            "TRIBUTARY_FORWARDER_CONFIG",
            config_path.display().to_string(),
        ),
        ("KNOCK_WEBHOOK_SECRET_PRODUCTION", PRODUCTION_SECRET.into()),
        ("KNOCK_WEBHOOK_SECRET_STAGING", STAGING_SECRET.into()),
        ("SEGMENT_WRITE_KEY_PRODUCTION", PRODUCTION_KEY.into()),
        ("SEGMENT_WRITE_KEY_STAGING", STAGING_KEY.into()),
        ("FORWARDER", format!("http://127.0.0.1:{port}")),
        ("PATH", path),
        ("RUST_LOG", "warn".into()),
    ];

    let log = std::fs::File::create(dir.path().join("forwarder.log")).unwrap();
    let mut server = Server(
        Command::new(binary)
            .arg("serve")
            .current_dir(dir.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "tributary-forwarder exited before listening: {status}\n{}",
                std::fs::read_to_string(dir.path().join("forwarder.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "tributary-forwarder did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let guide = root.join("docs/forwarding-to-segment.md");
    let blocks = sh_blocks(&std::fs::read_to_string(&guide).unwrap());
    assert!(blocks.len() >= 5, "the guide lost its commands");
    let mut script = String::new();
    for (n, block) in blocks.iter().enumerate() {
        let _ = writeln!(script, "echo '--- block {}' >&2", n + 1);
        script.push_str(block);
    }
    let cwd = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} block {} failed ({}):\n--- stdout\n{}\n--- stderr\n{stderr}\n--- forwarder log\n{}",
        guide.display(),
        stderr
            .lines()
            .filter_map(|l| l.strip_prefix("--- block "))
            .next_back()
            .unwrap_or("?"),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        std::fs::read_to_string(dir.path().join("forwarder.log")).unwrap_or_default()
    );

    // What the guide says Segment receives, checked on Segment's side of the wire.
    let production = fake.accepted_events(PRODUCTION_KEY);
    let names: Vec<&str> = production
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Notification Sent",
            "Notification Delivered",
            "Notification Read"
        ]
    );
    assert_eq!(production[0]["userId"], "user_0");
    assert_eq!(production[0]["properties"]["environment"], "Production");
    let staging = fake.accepted_events(STAGING_KEY);
    assert_eq!(staging.len(), 1, "the redriven event: {staging:?}");
    assert_eq!(staging[0]["event"], "Notification Seen");
}
