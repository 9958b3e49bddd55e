//! Delivery against a fake Segment on loopback: limits, retries, pauses,
//! splits, dead letters and restarts.

use std::{collections::HashSet, time::Duration};

use base64::Engine;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary_core::Secret;
use tributary_outbound::{
    Common, DeadLetterFilter, DeliverySettings, Destination, Dispatcher, DurableQueue,
    EncodedMessage, Identity, Message, NewEntry, Submitted, Track,
    fake_segment::{FakeSegment, Reply},
};

const WAIT: Duration = Duration::from_secs(10);

fn settings(fake: &FakeSegment) -> DeliverySettings {
    DeliverySettings {
        host: fake.host(),
        flush_interval_ms: 10,
        backoff_initial_ms: 5,
        backoff_max_ms: 40,
        request_timeout_ms: 1_000,
        shutdown_grace_ms: 300,
        ..Default::default()
    }
}

fn message(n: usize, padding: usize) -> EncodedMessage {
    let mut properties = serde_json::Map::new();
    properties.insert("n".into(), json!(n));
    properties.insert("pad".into(), json!("p".repeat(padding)));
    Message::Track(Track {
        identity: Identity::user(format!("user-{n}")),
        common: Common::with_message_id(format!("msg-{n:05}")),
        event: "Notification Sent".into(),
        properties,
    })
    .encode()
    .unwrap()
}

struct Harness {
    fake: FakeSegment,
    queue: DurableQueue,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(routes: &[(&str, &str)], tweak: impl FnOnce(&mut DeliverySettings)) -> Self {
        let fake = FakeSegment::start().await;
        let dir = tempfile::tempdir().unwrap();
        let queue = DurableQueue::open(dir.path().join("queue.db")).unwrap();
        let mut s = settings(&fake);
        tweak(&mut s);
        let mut h = Self {
            fake,
            queue,
            shutdown: CancellationToken::new(),
            task: None,
            _dir: dir,
        };
        h.start(routes, s);
        h
    }

    fn start(&mut self, routes: &[(&str, &str)], s: DeliverySettings) {
        let routes = routes
            .iter()
            .map(|(env, key)| Destination {
                environment: (*env).to_owned(),
                write_key: Secret::new(*key),
            })
            .collect();
        let dispatcher = Dispatcher::new(self.queue.clone(), s, routes).unwrap();
        self.shutdown = CancellationToken::new();
        let token = self.shutdown.clone();
        self.task = Some(tokio::spawn(dispatcher.run(token)));
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
        }
    }

    async fn submit(&self, env: &str, messages: Vec<EncodedMessage>) -> Vec<Submitted> {
        self.queue.submit(env, messages, 32_000).await.unwrap()
    }
}

fn assert_unique(ids: &[String]) {
    let set: HashSet<_> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "an event was accepted twice: {ids:?}");
}

#[tokio::test]
async fn batches_respect_limits_and_carry_basic_auth_and_sent_at() {
    // One request at a time, so queue order is delivery order.
    let mut h = Harness::new(&[("prod", "wk_prod")], |s| s.max_in_flight = 1).await;
    // 120 events of ~20 KB: about 2.4 MB, so several requests by size.
    let submitted = h
        .submit("prod", (0..120).map(|n| message(n, 20_000)).collect())
        .await;
    assert!(submitted.iter().all(|s| matches!(s, Submitted::Queued(_))));
    let accepted = h.fake.wait_for_accepted(120, WAIT).await;
    h.stop().await;
    assert_eq!(accepted.len(), 120);
    assert_unique(&accepted);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("wk_prod:")
    );
    let requests = h.fake.requests();
    assert!(requests.len() >= 5, "{} requests", requests.len());
    for r in &requests {
        assert_eq!(r.authorization.as_deref(), Some(expected_auth.as_str()));
        assert!(r.body_bytes <= 475_000, "request of {} bytes", r.body_bytes);
        assert!(r.body["batch"].as_array().unwrap().len() <= 500);
        assert!(r.body["sentAt"].as_str().unwrap().ends_with('Z'));
        assert!(!r.gzip);
    }
    // Order is kept within the environment.
    let mut sorted = accepted.clone();
    sorted.sort();
    assert_eq!(accepted, sorted);
    assert!(h.queue.stats().await.unwrap().pending.is_empty());
}

#[tokio::test]
async fn count_limit_cuts_batches() {
    let mut h = Harness::new(&[("prod", "k")], |s| s.max_batch_events = 7).await;
    h.submit("prod", (0..30).map(|n| message(n, 10)).collect())
        .await;
    assert_eq!(h.fake.wait_for_accepted(30, WAIT).await.len(), 30);
    h.stop().await;
    assert!(
        h.fake
            .requests()
            .iter()
            .all(|r| r.body["batch"].as_array().unwrap().len() <= 7)
    );
}

#[tokio::test]
async fn oversized_events_are_dead_lettered_never_sent() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    let out = h
        .submit(
            "prod",
            vec![message(1, 10), message(2, 40_000), message(3, 10)],
        )
        .await;
    assert!(matches!(out[1], Submitted::DeadLettered(_)));
    // One that slipped into the queue (say, queued under a larger limit).
    let big = message(4, 33_000);
    h.queue
        .enqueue(vec![NewEntry {
            environment: "prod".into(),
            message_id: big.message_id,
            payload: big.json,
        }])
        .await
        .unwrap();
    let accepted = h.fake.wait_for_accepted(2, WAIT).await;
    // Give the dispatcher time to settle the big one as well.
    for _ in 0..200 {
        if h.queue.stats().await.unwrap().dead_letters == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
    assert_eq!(accepted, ["msg-00001", "msg-00003"]);
    let dead = h
        .queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].message_id, "msg-00002");
    assert!(
        dead[0].reason.contains("limit per event"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[1].message_id, "msg-00004");
    assert!(h.fake.requests().iter().all(|r| r.body_bytes < 32_000));
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_message_ids() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    h.fake.script(
        "k",
        [Reply::Status(500), Reply::Status(503), Reply::Status(408)],
    );
    h.submit("prod", (0..5).map(|n| message(n, 10)).collect())
        .await;
    let accepted = h.fake.wait_for_accepted(5, WAIT).await;
    h.stop().await;
    assert_eq!(accepted.len(), 5);
    let requests = h.fake.requests();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 503, 408, 200]
    );
    let first = requests[0].message_ids();
    assert!(requests.iter().all(|r| r.message_ids() == first));
    // sentAt is stamped per send, not reused.
    assert!(requests.iter().all(|r| r.body["sentAt"].is_string()));
}

#[tokio::test]
async fn a_hanging_segment_times_out_and_is_retried() {
    let mut h = Harness::new(&[("prod", "k")], |s| s.request_timeout_ms = 200).await;
    h.fake.script("k", [Reply::Hang]);
    h.submit("prod", vec![message(1, 10)]).await;
    let accepted = h.fake.wait_for_accepted(1, WAIT).await;
    h.stop().await;
    assert_eq!(accepted, ["msg-00001"]);
    assert_eq!(h.fake.requests().len(), 2);
}

#[tokio::test]
async fn rate_limit_pauses_only_that_write_key() {
    let mut h = Harness::new(&[("a", "key_a"), ("b", "key_b")], |_| {}).await;
    h.fake.script(
        "key_a",
        [Reply::RateLimited {
            retry_after_secs: 1,
        }],
    );
    h.submit("a", vec![message(1, 10)]).await;
    // Let a's first request happen and get its 429.
    for _ in 0..500 {
        if !h.fake.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.submit("b", (2..5).map(|n| message(n, 10)).collect())
        .await;
    let accepted = h.fake.wait_for_accepted(4, WAIT).await;
    h.stop().await;
    assert_eq!(accepted.len(), 4);
    let order: Vec<_> = h
        .fake
        .requests()
        .iter()
        .map(|r| (r.write_key.clone().unwrap(), r.status))
        .collect();
    assert_eq!(order[0], ("key_a".to_owned(), 429));
    // b flowed while a was paused: b's batches came before a's retry.
    let a_retry = order.iter().rposition(|(k, _)| k == "key_a").unwrap();
    let b_first = order.iter().position(|(k, _)| k == "key_b").unwrap();
    assert!(b_first < a_retry, "{order:?}");
    assert_eq!(order[a_retry], ("key_a".to_owned(), 200));
}

#[tokio::test]
async fn bad_request_splits_and_dead_letters_only_the_culprit() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    h.fake.reject_events_containing("poison");
    let mut messages: Vec<_> = (0..8).map(|n| message(n, 10)).collect();
    messages[5] = {
        let mut p = serde_json::Map::new();
        p.insert("note".into(), json!("poison"));
        Message::Track(Track {
            identity: Identity::user("u"),
            common: Common::with_message_id("msg-poison"),
            event: "Notification Sent".into(),
            properties: p,
        })
        .encode()
        .unwrap()
    };
    h.submit("prod", messages).await;
    let accepted = h.fake.wait_for_accepted(7, WAIT).await;
    for _ in 0..200 {
        if h.queue.stats().await.unwrap().dead_letters == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
    assert_eq!(accepted.len(), 7);
    assert!(!accepted.contains(&"msg-poison".to_owned()));
    assert_unique(&accepted);
    let dead = h
        .queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, "msg-poison");
    assert_eq!(dead[0].status, Some(400));
    // Never retried whole: each 400 was followed by smaller requests.
    let sizes: Vec<_> = h
        .fake
        .requests()
        .iter()
        .map(|r| (r.status, r.message_ids().len()))
        .collect();
    assert_eq!(sizes[0], (400, 8));
    assert!(sizes.iter().filter(|(s, n)| *s == 400 && *n == 8).count() == 1);
}

#[tokio::test]
async fn invalid_queued_events_are_dead_lettered_on_split() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    // An event without userId: Segment would 200 and drop it; our fake 400s
    // the batch so the split re-validates and finds it.
    h.fake.reject_events_containing("no-identity");
    let good = message(1, 10);
    h.queue
        .enqueue(vec![
            NewEntry {
                environment: "prod".into(),
                message_id: good.message_id.clone(),
                payload: good.json,
            },
            NewEntry {
                environment: "prod".into(),
                message_id: "no-identity".into(),
                payload: br#"{"type":"track","event":"e","messageId":"no-identity"}"#.to_vec(),
            },
        ])
        .await
        .unwrap();
    let accepted = h.fake.wait_for_accepted(1, WAIT).await;
    for _ in 0..200 {
        if h.queue.stats().await.unwrap().dead_letters == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
    assert_eq!(accepted, ["msg-00001"]);
    let dead = h
        .queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert!(dead[0].reason.contains("/userId"), "{}", dead[0].reason);
}

#[tokio::test]
async fn permanent_rejections_are_dead_lettered_and_redrivable() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    h.fake.script("k", [Reply::Status(401)]);
    h.submit("prod", vec![message(1, 10), message(2, 10)]).await;
    for _ in 0..500 {
        if h.queue.stats().await.unwrap().dead_letters == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dead = h
        .queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead[0].reason.contains("401"));
    assert_eq!(
        h.queue.redrive(DeadLetterFilter::default()).await.unwrap(),
        2
    );
    let accepted = h.fake.wait_for_accepted(2, WAIT).await;
    h.stop().await;
    assert_eq!(accepted, ["msg-00001", "msg-00002"]);
}

#[tokio::test]
async fn several_requests_fly_at_once_per_environment() {
    let mut h = Harness::new(&[("prod", "k")], |s| {
        s.max_in_flight = 4;
        s.max_batch_events = 10;
    })
    .await;
    h.fake.set_latency(Duration::from_millis(50));
    h.submit("prod", (0..80).map(|n| message(n, 10)).collect())
        .await;
    let accepted = h.fake.wait_for_accepted(80, WAIT).await;
    h.stop().await;
    assert_eq!(accepted.len(), 80);
    assert_unique(&accepted);
    let max = h.fake.max_concurrent();
    assert!(
        (2..=4).contains(&max),
        "at most 4 and more than 1 at once, saw {max}"
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let mut h = Harness::new(&[("prod", "k")], |s| s.gzip = true).await;
    h.submit("prod", (0..3).map(|n| message(n, 500)).collect())
        .await;
    assert_eq!(h.fake.wait_for_accepted(3, WAIT).await.len(), 3);
    h.stop().await;
    assert!(h.fake.requests().iter().all(|r| r.gzip));
}

#[tokio::test]
async fn everything_queued_survives_a_restart_mid_outage() {
    let mut h = Harness::new(&[("prod", "k")], |_| {}).await;
    h.fake
        .script("k", std::iter::repeat_n(Reply::Status(503), 10_000));
    h.submit("prod", (0..40).map(|n| message(n, 100)).collect())
        .await;
    for _ in 0..500 {
        if h.fake.requests().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.stop().await;
    assert!(h.fake.accepted().is_empty());
    assert_eq!(
        h.queue.stats().await.unwrap().pending.get("prod"),
        Some(&40)
    );

    // "Restart": a new dispatcher over the same file, Segment back up.
    let fake = FakeSegment::start().await;
    let s = settings(&fake);
    h.fake = fake;
    h.start(&[("prod", "k")], s);
    let accepted = h.fake.wait_for_accepted(40, WAIT).await;
    h.stop().await;
    assert_eq!(accepted.len(), 40);
    assert_unique(&accepted);
    assert!(h.queue.stats().await.unwrap().pending.is_empty());
}

#[tokio::test]
async fn graceful_shutdown_flushes_a_partial_batch() {
    // A long flush interval: only shutdown makes the batch go out.
    let mut h = Harness::new(&[("prod", "k")], |s| s.flush_interval_ms = 60_000).await;
    h.submit("prod", vec![message(1, 10)]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.fake.requests().is_empty());
    h.stop().await;
    assert_eq!(h.fake.accepted(), ["msg-00001"]);
    let _: Value = h.fake.requests()[0].body.clone();
}
