//! A 2xx is durable: the real binary is killed with SIGKILL under load, several
//! times (single events, then batches of events in one request); every event it acknowledged is in the log afterwards, exactly once,
//! with its planned action, and once restarted the workers run every action
//! exactly once (the local sink's effect, its attempt and the outbox change
//! commit together, so a kill can never leave one without the others).

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tributary_store::{
    ActionStatus, AdminQueries, EventFilter, LocalKind, LocalRecipients, SqliteStore,
};

mod process;

use process::{ConfigLines, admin_get, free_port, start, wait_ready, write_config};

const TOKEN: &str = "tok_crash_0123456789abcdefgh";
/// Inline: the user is identified before the trigger, which reaches only
/// identified users.
const CRASH_CONFIG: ConfigLines<'static> = ConfigLines {
    server: "",
    environment: "",
    mapping: Some(r#"recipients = "properties.to""#),
};

/// Senders posting unique track events until a request fails, `batch` per
/// request (a JSON array, as Segment's Webhooks destination sends them, when
/// more than one); each acknowledged (200) messageId is recorded.
fn spawn_senders(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    senders: u32,
    batch: u32,
    acked: &Arc<Mutex<HashSet<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..senders)
        .map(|sender| {
            let (client, url, acked) = (client.clone(), url.to_owned(), acked.clone());
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for request in 0..100_000u32 {
                    let mut ids = Vec::new();
                    let mut events = Vec::new();
                    for k in 0..batch {
                        let n = request * batch + k;
                        let id = format!("{prefix}-s{sender}-n{n}");
                        events.push(format!(
                            r#"{{"type":"track","event":"Signed Up","userId":"u{n}","messageId":"{id}","properties":{{"to":{{"id":"u{n}"}}}}}}"#
                        ));
                        ids.push(id);
                    }
                    let body = if batch == 1 {
                        events.remove(0)
                    } else {
                        format!("[{}]", events.join(","))
                    };
                    match client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 200 => {
                            acked.lock().unwrap().extend(ids);
                        }
                        // The process stopped under us: what was not answered 2xx may be lost.
                        _ => break,
                    }
                }
            })
        })
        .collect()
}

/// Every event-log entry's messageId, with how often it appears.
/// Pending plus running actions, through the admin API (the running
/// process holds the store).
async fn unfinished_actions(base: &str) -> usize {
    let mut n = 0;
    for status in ["pending", "running"] {
        let page = admin_get(base, &format!("actions?status={status}&limit=10")).await;
        n += page["items"].as_array().map_or(0, Vec::len);
    }
    n
}

async fn logged_message_ids(store: &SqliteStore) -> HashMap<String, u32> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_events(&EventFilter::default(), cursor, 500)
            .await
            .unwrap();
        for e in &page.items {
            if let Some(m) = &e.message_id {
                *seen.entry(m.clone()).or_default() += 1;
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, TOKEN, CRASH_CONFIG);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();

    // Three rounds of single events, then one of batches of 25.
    for round in 0..4u32 {
        let mut child = start(&config);
        wait_ready(&client, &base).await;
        let url = format!("{base}/integrations/receive/{TOKEN}");
        let (senders, batch) = if round < 3 { (8, 1) } else { (4, 25) };
        let senders = spawn_senders(&client, &url, &format!("r{round}"), senders, batch, &acked);
        // Let some load through, then kill at a moment that varies per round.
        tokio::time::sleep(Duration::from_millis(300 + 170 * u64::from(round))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for s in senders {
            s.await.unwrap();
        }
    }

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "too little load got through: {}",
        acked.len()
    );
    let batched = acked.iter().filter(|id| id.starts_with("r3-")).count();
    assert!(
        batched > 25,
        "too few batches got through: {batched} events"
    );

    // Restart once more and let the workers finish what the kills left.
    let mut child = start(&config);
    wait_ready(&client, &base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while unfinished_actions(&base).await > 0 {
        assert!(
            Instant::now() < deadline,
            "actions still unfinished after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();

    let store = SqliteStore::open_dir(dir.path().join("data"))
        .await
        .unwrap();
    let seen = logged_message_ids(&store).await;
    let mut cursor = None;
    loop {
        let page = store
            .list_events(&EventFilter::default(), cursor, 500)
            .await
            .unwrap();
        for e in &page.items {
            let detail = store.event_detail(e.id).await.unwrap().unwrap();
            // The inline user's identify, then the trigger.
            assert_eq!(
                detail.actions.len(),
                2,
                "event {} lost its planned actions",
                e.id
            );
            for action in &detail.actions {
                assert_eq!(action.status, ActionStatus::Succeeded, "{action:?}");
            }
            assert_eq!(
                detail.attempts.len(),
                2,
                "an action of event {} ran more than once: {:?}",
                e.id,
                detail.attempts
            );
            let action = &detail.actions[1];
            let run = store
                .local_record(
                    LocalKind::WorkflowRun,
                    "development",
                    "welcome",
                    &action.id.to_string(),
                )
                .await
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("action {} succeeded without its workflow run", action.id)
                });
            // The mapping sends the event's properties, which the pipeline
            // plans by reference: the run holds them all the same.
            let event = detail.event.event.as_ref().expect("the event's JSON");
            assert_eq!(run.data["data"], event.data, "action {}", action.id);
            assert!(event.data["to"]["id"].is_string(), "{:?}", event.data);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "logged twice: {doubled:?}");
    eprintln!(
        "{} acknowledged, {} logged (the rest were in flight at the kill)",
        acked.len(),
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, TOKEN, CRASH_CONFIG);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut child = start(&config);
    wait_ready(&client, &base).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let url = format!("{base}/integrations/receive/{TOKEN}");
    let senders = spawn_senders(&client, &url, "term", 4, 1, &acked);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within the grace period");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let store = SqliteStore::open_dir(dir.path().join("data"))
        .await
        .unwrap();
    let logged: HashSet<String> = logged_message_ids(&store).await.into_keys().collect();
    assert!(
        acked.is_subset(&logged),
        "an acknowledged event is missing after SIGTERM"
    );
}
