//! Repeats of a message at enqueue, on a real queue file: while queued,
//! after delivery or dead-lettering within the window, after the window,
//! across a restart, and the bounded forgetting of remembered ids.

use std::{path::Path, time::Duration};

use chrono::Utc;
use proptest::prelude::*;
use rusqlite::{Connection, params};
use tokio_util::sync::CancellationToken;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, EncodedMessage, Entry, FirstCopy, NewEntry, Pruner,
    RedeliveryWindow, RetentionPolicy, Submitted,
};

const HOUR_MS: i64 = 3_600_000;

fn entry(env: &str, n: usize) -> NewEntry {
    NewEntry {
        environment: env.into(),
        message_id: format!("knock-{n:05}"),
        payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
    }
}

struct Fixture {
    path: std::path::PathBuf,
    queue: DurableQueue,
    _dir: tempfile::TempDir,
}

fn open_with(window: RedeliveryWindow) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let queue = DurableQueue::open_with(&path, window).unwrap();
    Fixture {
        path,
        queue,
        _dir: dir,
    }
}

fn open() -> Fixture {
    open_with(RedeliveryWindow::default())
}

/// Makes every remembered id look accepted `hours` ago, through a second
/// connection on the same file, as time passing would.
fn age_all(path: &Path, hours: i64) {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "UPDATE recent_messages SET accepted_at = ?1",
        params![Utc::now().timestamp_millis() - hours * HOUR_MS],
    )
    .unwrap();
}

fn first_copy(s: &Submitted) -> Option<FirstCopy> {
    match s {
        Submitted::Duplicate(r) => Some(r.first_copy),
        _ => None,
    }
}

async fn queued_ids(queue: &DurableQueue, env: &str) -> Vec<String> {
    queue
        .fetch(env, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect()
}

/// Queues knock-00001 and knock-00002 in `prod` and delivers the first;
/// returns the second's row.
async fn one_delivered_one_queued(queue: &DurableQueue) -> Entry {
    queue
        .enqueue(vec![entry("prod", 1), entry("prod", 2)])
        .await
        .unwrap();
    let mut rows = queue.fetch("prod", 0, 10).await.unwrap();
    queue.acknowledge(vec![rows[0].id]).await.unwrap();
    rows.pop().unwrap()
}

async fn deliver_all(queue: &DurableQueue, env: &str) {
    let ids = queue
        .fetch(env, 0, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    queue.acknowledge(ids).await.unwrap();
}

#[tokio::test]
async fn a_repeat_while_queued_is_dropped_and_a_mixed_batch_queues_only_the_new() {
    let f = open();
    let first = f.queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    assert!(matches!(first[..], [Submitted::Queued(_)]));
    // A batch holding a repeat, a new id, the new id again, and the same id
    // in another environment (a different message).
    let batch = vec![
        entry("prod", 1),
        entry("prod", 2),
        entry("prod", 2),
        entry("staging", 1),
    ];
    let out = f.queue.enqueue(batch).await.unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Queued));
    assert!(matches!(out[1], Submitted::Queued(_)));
    assert_eq!(first_copy(&out[2]), Some(FirstCopy::Queued));
    assert!(matches!(out[3], Submitted::Queued(_)));
    assert_eq!(
        queued_ids(&f.queue, "prod").await,
        ["knock-00001", "knock-00002"]
    );
    assert_eq!(queued_ids(&f.queue, "staging").await, ["knock-00001"]);
    let Submitted::Duplicate(why) = out[0] else {
        unreachable!()
    };
    let age = Utc::now() - why.first_accepted_at;
    assert!(age >= chrono::Duration::zero() && age < chrono::Duration::hours(1));
}

#[tokio::test]
async fn a_repeat_after_delivery_or_dead_lettering_within_the_window_is_dropped() {
    let f = open();
    let second = one_delivered_one_queued(&f.queue).await;
    let burial = Burial {
        reason: "refused by Segment with 400".into(),
        status: Some(400),
    };
    f.queue.bury(vec![(second.id, burial)]).await.unwrap();
    let out = f
        .queue
        .enqueue(vec![entry("prod", 1), entry("prod", 2)])
        .await
        .unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Delivered));
    assert_eq!(first_copy(&out[1]), Some(FirstCopy::DeadLettered));
    assert!(queued_ids(&f.queue, "prod").await.is_empty());
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 1);
}

#[tokio::test]
async fn an_oversize_repeat_is_not_dead_lettered_twice() {
    let f = open();
    let big = || EncodedMessage {
        message_id: "knock-big".into(),
        json: vec![b' '; 100],
    };
    let out = f.queue.submit("prod", vec![big()], 50).await.unwrap();
    assert!(matches!(out[..], [Submitted::DeadLettered(_)]));
    let again = f.queue.submit("prod", vec![big()], 50).await.unwrap();
    assert_eq!(first_copy(&again[0]), Some(FirstCopy::DeadLettered));
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 1);
}

#[tokio::test]
async fn a_repeat_after_the_window_is_queued_again_unless_still_queued() {
    let f = open();
    one_delivered_one_queued(&f.queue).await;
    age_all(&f.path, 25);
    let out = f
        .queue
        .enqueue(vec![entry("prod", 1), entry("prod", 2)])
        .await
        .unwrap();
    // Delivered 25 h ago, past the 24 h window: queued again.
    assert!(matches!(out[0], Submitted::Queued(_)), "{out:?}");
    // Still queued after 25 h (an outage): a repeat stays a repeat.
    assert_eq!(first_copy(&out[1]), Some(FirstCopy::Queued));
    assert_eq!(
        queued_ids(&f.queue, "prod").await,
        ["knock-00002", "knock-00001"]
    );
    // The re-queued copy starts a new window.
    let out = f.queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Queued));
}

#[tokio::test]
async fn the_memory_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    {
        let queue = DurableQueue::open(&path).unwrap();
        one_delivered_one_queued(&queue).await;
    }
    let queue = DurableQueue::open(&path).unwrap();
    let out = queue
        .enqueue(vec![entry("prod", 1), entry("prod", 2)])
        .await
        .unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Delivered));
    assert_eq!(first_copy(&out[1]), Some(FirstCopy::Queued));
}

#[tokio::test]
async fn a_file_from_before_the_memory_remembers_what_it_has_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    drop(DurableQueue::open(&path).unwrap());
    {
        // An older version's file: a queued row, no memory of it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE recent_messages;
             INSERT INTO queue (environment, message_id, payload, enqueued_at)
             VALUES ('prod', 'knock-00001', x'7b7d', 0);",
        )
        .unwrap();
    }
    let queue = DurableQueue::open(&path).unwrap();
    let out = queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Queued));
}

#[tokio::test]
async fn a_redrive_is_never_refused_and_restarts_the_window() {
    let f = open();
    f.queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    let rows = f.queue.fetch("prod", 0, 10).await.unwrap();
    let burial = Burial {
        reason: "refused by Segment with 401".into(),
        status: Some(401),
    };
    f.queue.bury(vec![(rows[0].id, burial)]).await.unwrap();
    age_all(&f.path, 30);
    assert_eq!(
        f.queue.redrive(DeadLetterFilter::default()).await.unwrap(),
        1
    );
    assert_eq!(queued_ids(&f.queue, "prod").await, ["knock-00001"]);
    let out = f.queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Queued));
    deliver_all(&f.queue, "prod").await;
    let out = f.queue.enqueue(vec![entry("prod", 1)]).await.unwrap();
    assert_eq!(first_copy(&out[0]), Some(FirstCopy::Delivered));
}

/// How many ids the file remembers, read directly.
fn remembered(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM recent_messages", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn forgetting_runs_in_bounded_steps_and_never_forgets_a_queued_id() {
    let f = open();
    // 1,200 delivered and 600 still queued, all accepted 30 h ago.
    f.queue
        .enqueue((0..1_800).map(|n| entry("prod", n)).collect())
        .await
        .unwrap();
    let rows = f.queue.fetch("prod", 0, 1_200).await.unwrap();
    f.queue
        .acknowledge(rows.iter().map(|e| e.id).collect())
        .await
        .unwrap();
    age_all(&f.path, 30);
    let stop = CancellationToken::new();
    let forgotten = f.queue.forget_messages(500, &stop).await.unwrap();
    assert_eq!((forgotten.by_age, forgotten.by_count), (1_200, 0));
    // 1,800 entries looked at, at most 500 per transaction.
    assert_eq!(forgotten.steps, 4);
    assert_eq!(remembered(&f.path), 600);
    let out = f
        .queue
        .enqueue(vec![entry("prod", 0), entry("prod", 1_500)])
        .await
        .unwrap();
    assert!(matches!(out[0], Submitted::Queued(_)), "{out:?}");
    assert_eq!(first_copy(&out[1]), Some(FirstCopy::Queued));
    // Nothing left past the window: one step that finds nothing to forget.
    let again = f.queue.forget_messages(500, &stop).await.unwrap();
    assert_eq!(again.total(), 0);
}

#[tokio::test]
async fn a_stopped_pass_ends_after_its_current_step() {
    let f = open();
    f.queue
        .enqueue((0..300).map(|n| entry("prod", n)).collect())
        .await
        .unwrap();
    deliver_all(&f.queue, "prod").await;
    age_all(&f.path, 30);
    let stop = CancellationToken::new();
    stop.cancel();
    let forgotten = f.queue.forget_messages(100, &stop).await.unwrap();
    assert_eq!((forgotten.total(), forgotten.steps), (100, 1));
}

#[tokio::test]
async fn beyond_the_cap_the_oldest_are_forgotten_even_within_the_window() {
    let f = open_with(RedeliveryWindow {
        max_count: 10,
        ..RedeliveryWindow::default()
    });
    // Two commits, 15 ids then 12, all delivered. Entries of one commit
    // share its time; the cap splits such ties by key.
    f.queue
        .enqueue((0..15).map(|n| entry("prod", n)).collect())
        .await
        .unwrap();
    f.queue
        .enqueue((15..27).map(|n| entry("prod", n)).collect())
        .await
        .unwrap();
    deliver_all(&f.queue, "prod").await;
    let report = Pruner::new(f.queue.clone(), RetentionPolicy::default())
        .unwrap()
        .pass(&CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (report.forgotten.by_age, report.forgotten.by_count),
        (0, 17)
    );
    assert_eq!(remembered(&f.path), 10);
    let out = f
        .queue
        .enqueue(vec![entry("prod", 16), entry("prod", 17)])
        .await
        .unwrap();
    // knock-00015 and knock-00016, the lowest keys of the newer commit, were
    // beyond the cap.
    assert!(matches!(out[0], Submitted::Queued(_)), "{out:?}");
    assert_eq!(first_copy(&out[1]), Some(FirstCopy::Delivered));
}

#[tokio::test]
async fn concurrent_copies_queue_one() {
    let f = open();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let q = f.queue.clone();
        tasks.push(tokio::spawn(async move {
            q.enqueue(vec![entry("prod", 7)]).await
        }));
    }
    let mut queued = 0;
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        queued += usize::from(matches!(out[0], Submitted::Queued(_)));
    }
    assert_eq!(queued, 1);
    assert_eq!(queued_ids(&f.queue, "prod").await.len(), 1);
}

#[test]
fn a_window_of_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for window in [
        RedeliveryWindow {
            max_age: Duration::ZERO,
            ..RedeliveryWindow::default()
        },
        RedeliveryWindow {
            max_count: 0,
            ..RedeliveryWindow::default()
        },
    ] {
        assert!(DurableQueue::open_with(dir.path().join("q.db"), window).is_err());
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Submit these ids (small pool, so repeats are frequent).
    Submit(Vec<u8>),
    /// Deliver (acknowledge) the oldest `n` queued rows.
    Deliver(usize),
    /// Dead-letter the oldest queued row.
    Bury,
    /// Close and reopen the queue file.
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => proptest::collection::vec(0u8..12, 1..6).prop_map(Step::Submit),
        2 => (1usize..4).prop_map(Step::Deliver),
        1 => Just(Step::Bury),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the interleaving of submissions, deliveries, dead-lettering
    /// and restarts within the window, every id is queued exactly once, and
    /// a repeat names where its first copy is.
    #[test]
    fn every_id_is_queued_once_within_the_window(steps in proptest::collection::vec(step(), 1..25)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("queue.db");
            let mut queue = DurableQueue::open(&path).unwrap();
            // Model: where each id's first copy is.
            let mut model: std::collections::BTreeMap<u8, FirstCopy> = Default::default();
            let mut times_queued: std::collections::BTreeMap<u8, usize> = Default::default();
            for step in steps {
                match step {
                    Step::Submit(ids) => {
                        let out = queue
                            .enqueue(ids.iter().map(|n| entry("prod", usize::from(*n))).collect())
                            .await
                            .unwrap();
                        for (n, s) in ids.iter().zip(&out) {
                            match model.get(n) {
                                Some(expected) => prop_assert_eq!(first_copy(s), Some(*expected)),
                                None => {
                                    prop_assert!(matches!(s, Submitted::Queued(_)), "{:?}", s);
                                    model.insert(*n, FirstCopy::Queued);
                                    *times_queued.entry(*n).or_default() += 1;
                                }
                            }
                        }
                    }
                    Step::Deliver(k) => {
                        let rows = queue.fetch("prod", 0, k).await.unwrap();
                        for r in &rows {
                            let n: u8 = r.message_id["knock-".len()..].parse().unwrap();
                            model.insert(n, FirstCopy::Delivered);
                        }
                        queue.acknowledge(rows.iter().map(|r| r.id).collect()).await.unwrap();
                    }
                    Step::Bury => {
                        if let Some(r) = queue.fetch("prod", 0, 1).await.unwrap().pop() {
                            let n: u8 = r.message_id["knock-".len()..].parse().unwrap();
                            model.insert(n, FirstCopy::DeadLettered);
                            let burial = Burial { reason: "refused".into(), status: Some(400) };
                            queue.bury(vec![(r.id, burial)]).await.unwrap();
                        }
                    }
                    Step::Reopen => {
                        drop(queue);
                        queue = DurableQueue::open(&path).unwrap();
                    }
                }
            }
            prop_assert!(times_queued.values().all(|&t| t == 1));
            let queued = queue.fetch("prod", 0, 1_000).await.unwrap();
            let still: Vec<_> = model.iter().filter(|(_, c)| **c == FirstCopy::Queued).collect();
            prop_assert_eq!(queued.len(), still.len());
            Ok(())
        })?;
    }
}
