//! Segment's own Python client (`segment-analytics-python`) sends to the
//! Segment-compatible API; every call lands in the event log. Skipped with a
//! loud message when the client is not installed locally; in CI (`CI=true`,
//! where .ci/setup-python.sh installs it) a missing client is a failure.

use std::{process::Command, sync::Arc, time::Duration};

use tributary_core::config;
use tributary_ingest::{AppState, app};
use tributary_pipeline::Pipeline;
use tributary_store::{EventFilter, EventStatus, SqliteStore, Store};

const CONFIG: &str = r#"
[environments.development]

[[sources]]
key = "web"
kind = "segment"

[sources.environments.development]
token = "tok_python_0123456789abcdefg"
write_key = "wk_python_client"
"#;

fn client_available() -> bool {
    Command::new("python3")
        .args(["-c", "import segment.analytics"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_client_is_accepted() {
    if !client_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "segment-analytics-python must be installed in CI (.ci/setup-python.sh)"
        );
        eprintln!(
            "SKIPPED: segment-analytics-python is not installed (pip install segment-analytics-python)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
    let config = Arc::new(config::load("py.toml", CONFIG, &|_| None).unwrap());
    let pipeline = Arc::new(Pipeline::new(config, store.clone()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(AppState::new(pipeline))).await });

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/segment_python.py"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &host, "wk_python_client"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the Python client reported errors:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let mut events = Vec::new();
    for _ in 0..50 {
        events = store
            .list_events(
                &EventFilter {
                    status: Some(EventStatus::Accepted),
                    ..EventFilter::default()
                },
                None,
                50,
            )
            .await
            .unwrap()
            .items;
        if events.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut types: Vec<_> = events.iter().filter_map(|e| e.event_type.clone()).collect();
    types.sort();
    assert_eq!(
        types,
        ["Signed Up", "alias", "group", "identify", "page", "screen"]
    );
    for e in &events {
        // alias(previous_id, user_id): the new id is the event's user.
        let expected = if e.event_type.as_deref() == Some("alias") {
            "py-user-1-alias"
        } else {
            "py-user-1"
        };
        assert_eq!(e.user_id.as_deref(), Some(expected), "{:?}", e.event_type);
    }
}
