//! Load generator: signed webhooks in, Segment batches out, against a local
//! fake Segment answering after 1 ms, with the queue fsync'd. Side by side,
//! when `ANALYTICS_NODE_DIR` names a directory where
//! `npm install @segment/analytics-node` was run: Segment's official Node
//! client sending the same number of equivalent events to the same fake.
//!
//! Run: `cargo bench -p tributary-forwarder --bench e2e`
//! (`E2E_EVENTS`, default 50,000; `E2E_CONNECTIONS`, default 64).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::Value;
use tributary_core::Secret;
use tributary_forwarder::signature::sign;
use tributary_outbound::fake_segment::FakeSegment;

const SECRET: &str = "whsec_bench";
const WRITE_KEY: &str = "wk_bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (such as `cargo test
    // --benches`) only checks that this builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let events = env_usize("E2E_EVENTS", 50_000);
    let connections = env_usize("E2E_CONNECTIONS", 64);
    let fake = FakeSegment::start().await;
    fake.set_latency(Duration::from_millis(1));
    fake.set_counting_only(true);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forwarder.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[queue]
path = "{}"
[segment]
host = "{}"
flush_interval_ms = 100
[environments.production]
signing_secret = "{SECRET}"
write_key = "{WRITE_KEY}"
"#,
            dir.path().join("queue.db").display(),
            fake.host()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-forwarder"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("tributary-forwarder listening on ")
        .unwrap()
        .to_owned();
    let url = Arc::new(format!("{base}/knock/webhooks/production"));
    let template: Value = serde_json::from_slice(include_bytes!(
        "../../../fixtures/outbound/webhooks/message.sent.json"
    ))
    .unwrap();
    let template = Arc::new(template);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();

    // Bodies and signatures are made before the clock starts, so the
    // generator spends its share of the 2 cores on sending only.
    let secret = Secret::new(SECRET);
    let signed_at = chrono::Utc::now().timestamp_millis();
    let mut shares: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); connections];
    let mut body_template = (*template).clone();
    for i in 0..events {
        body_template["data"]["id"] = Value::String(format!("bench_{i}"));
        let body = serde_json::to_vec(&body_template).unwrap();
        shares[i % connections].push((sign(&secret, signed_at, &body), body));
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let (client, url) = (client.clone(), Arc::clone(&url));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).unwrap();
            for (header, body) in share {
                let sent = Instant::now();
                let response = client
                    .post(url.as_str())
                    .header("x-knock-signature", header)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                latencies.record(sent.elapsed().as_micros() as u64).unwrap();
            }
            latencies
        }));
    }
    let mut latencies = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        latencies.add(t.await.unwrap()).unwrap();
    }
    let acked = started.elapsed();
    while fake.accepted_count(WRITE_KEY) < events {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = started.elapsed();
    let requests = fake.requests().len();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "forwarder: {events} webhooks over {connections} connections, fake Segment latency 1 ms"
    );
    println!(
        "  acknowledged (fsync'd): {:.2} s, {:.0} events/s; ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        acked.as_secs_f64(),
        rate(acked),
        latencies.value_at_quantile(0.5) as f64 / 1e3,
        latencies.value_at_quantile(0.99) as f64 / 1e3,
        latencies.max() as f64 / 1e3,
    );
    println!(
        "  delivered to Segment:   {:.2} s, {:.0} events/s, {requests} batch requests ({:.0} events per request)",
        delivered.as_secs_f64(),
        rate(delivered),
        events as f64 / requests.max(1) as f64
    );

    let Ok(node_dir) = std::env::var("ANALYTICS_NODE_DIR") else {
        println!("analytics-node: skipped (set ANALYTICS_NODE_DIR)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/node/send-with-analytics-node.mjs"
    );
    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(fake.host())
        .arg(events.to_string())
        .env("ANALYTICS_NODE_DIR", node_dir)
        .output()
        .await
        .unwrap();
    let node_elapsed = started.elapsed();
    let node_accepted = fake.accepted_count("wk_node");
    println!(
        "analytics-node 3.x: {node_accepted}/{events} events delivered in {:.2} s ({:.0} events/s, process start included); node says {}",
        node_elapsed.as_secs_f64(),
        node_accepted as f64 / node_elapsed.as_secs_f64(),
        String::from_utf8_lossy(&output.stdout).trim()
    );
    println!(
        "ratio forwarder (delivered, durable, HTTP in) / analytics-node (in memory): {:.2}",
        rate(delivered) / (node_accepted as f64 / node_elapsed.as_secs_f64())
    );
}
