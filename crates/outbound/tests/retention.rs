//! Dead-letter retention on a real queue file: age and count limits, batches,
//! redrives in progress, interrupted redrives, files from before retention.

use std::{path::Path, time::Duration};

use chrono::Utc;
use rusqlite::{Connection, params};
use tokio_util::sync::CancellationToken;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, NewEntry, Pruner, RetentionPolicy, RetentionReport,
};

const DAY_MS: i64 = 86_400_000;
const WAIT: Duration = Duration::from_secs(10);

fn entry(n: usize) -> (NewEntry, Burial) {
    (
        NewEntry {
            environment: if n.is_multiple_of(2) {
                "production"
            } else {
                "staging"
            }
            .into(),
            message_id: format!("knock-{n:05}"),
            payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
        },
        Burial {
            reason: "Segment answered 401".into(),
            status: Some(401),
        },
    )
}

/// Dead-letters `range`, returning their dead-letter ids in order.
async fn bury(queue: &DurableQueue, range: std::ops::Range<usize>) -> Vec<i64> {
    queue
        .dead_letter_new(range.map(entry).collect())
        .await
        .unwrap()
}

/// Makes dead letters look as if they failed `days` ago, through a second
/// connection on the same file, as time passing would.
fn age(path: &Path, ids: &[i64], days: i64) {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let failed_at = Utc::now().timestamp_millis() - days * DAY_MS;
    for id in ids {
        conn.execute(
            "UPDATE dead_letters SET failed_at = ?1 WHERE id = ?2",
            params![failed_at, id],
        )
        .unwrap();
    }
}

async fn remaining(queue: &DurableQueue) -> Vec<String> {
    queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("knock-{n:05}")).collect()
}

fn policy(max_age_days: Option<u64>, max_count: Option<u64>, batch_size: usize) -> RetentionPolicy {
    RetentionPolicy {
        max_age: max_age_days.map(|d| Duration::from_secs(d * 86_400)),
        max_count,
        interval: Duration::from_millis(20),
        batch_size,
    }
}

struct Fixture {
    path: std::path::PathBuf,
    queue: DurableQueue,
    _dir: tempfile::TempDir,
}

fn open() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let queue = DurableQueue::open(&path).unwrap();
    Fixture {
        path,
        queue,
        _dir: dir,
    }
}

async fn pass(queue: &DurableQueue, policy: RetentionPolicy) -> RetentionReport {
    Pruner::new(queue.clone(), policy)
        .unwrap()
        .pass(&CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn old_dead_letters_are_removed_and_young_ones_kept() {
    let f = open();
    let all = bury(&f.queue, 0..6).await;
    age(&f.path, &all[..2], 45);
    age(&f.path, &all[2..4], 29);
    let report = pass(&f.queue, policy(Some(30), None, 100)).await;
    assert_eq!(report.by_age, 2);
    assert_eq!(report.by_count, 0);
    assert_eq!(remaining(&f.queue).await, ids(2..6));
    // The queue of pending events is never touched by retention.
    f.queue
        .enqueue(vec![entry(99).0])
        .await
        .expect("enqueue after pruning");
    let again = pass(&f.queue, policy(Some(30), None, 100)).await;
    assert_eq!(again.pruned(), 0);
    assert_eq!(f.queue.fetch("staging", 0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_cap_removes_the_oldest_first() {
    let f = open();
    // Five per environment (even numbers are production, odd staging), and
    // a cap of two per environment.
    bury(&f.queue, 0..10).await;
    let report = pass(&f.queue, policy(None, Some(2), 100)).await;
    assert_eq!(report.by_count, 6);
    assert_eq!(remaining(&f.queue).await, ids(6..10));
    // Newer failures push out the oldest survivors, not themselves.
    bury(&f.queue, 10..12).await;
    pass(&f.queue, policy(None, Some(2), 100)).await;
    assert_eq!(remaining(&f.queue).await, ids(8..12));
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 4);
}

/// One environment's flood of failures never erases another's few.
#[tokio::test]
async fn the_cap_is_per_environment() {
    let f = open();
    let flood = |n: usize| {
        let (mut e, b) = entry(n);
        e.environment = "production".into();
        (e, b)
    };
    f.queue
        .dead_letter_new((0..20).map(flood).collect())
        .await
        .unwrap();
    bury(&f.queue, 21..22).await;
    let report = pass(&f.queue, policy(None, Some(5), 100)).await;
    assert_eq!(report.by_count, 15);
    let staging = DeadLetterFilter {
        environment: Some("staging".into()),
        ..Default::default()
    };
    let left: Vec<String> = f
        .queue
        .dead_letters(staging)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(left, ids(21..22), "staging's one dead letter stays");
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 6);
}

#[tokio::test]
async fn age_and_cap_together_count_each_removal_once() {
    let f = open();
    let all = bury(&f.queue, 0..8).await;
    age(&f.path, &all[..3], 60);
    // Left after the age limit: production 4, 6 and staging 3, 5, 7; one each stays.
    let report = pass(&f.queue, policy(Some(30), Some(1), 100)).await;
    assert_eq!((report.by_age, report.by_count), (3, 3));
    assert_eq!(remaining(&f.queue).await, ids(6..8));
}

#[tokio::test]
async fn dead_letters_being_redriven_are_not_pruned() {
    let f = open();
    let all = bury(&f.queue, 0..6).await;
    age(&f.path, &all, 90);
    // An operator asks for production's dead letters back; before they move,
    // a pruning pass whose age and cap would both remove them runs.
    let production = DeadLetterFilter {
        environment: Some("production".into()),
        ..Default::default()
    };
    assert_eq!(f.queue.request_redrive(production).await.unwrap(), 3);
    let pruned = f
        .queue
        .prune_dead_letters(Some(Utc::now()), Some(1), 100)
        .await
        .unwrap();
    assert_eq!(pruned.total(), 3, "only staging's three go");
    assert_eq!(
        remaining(&f.queue).await,
        ["knock-00000", "knock-00002", "knock-00004"]
    );
    // The redrive completes: the rows are back in the queue, same messageId.
    assert_eq!(f.queue.finish_redrives(100).await.unwrap(), 3);
    let queued = f.queue.fetch("production", 0, 10).await.unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        ["knock-00000", "knock-00002", "knock-00004"]
    );
    assert!(remaining(&f.queue).await.is_empty());
}

#[tokio::test]
async fn a_redrive_interrupted_by_a_crash_is_finished_by_the_next_pass_not_pruned() {
    let f = open();
    let all = bury(&f.queue, 0..4).await;
    age(&f.path, &all, 90);
    f.queue
        .request_redrive(DeadLetterFilter {
            ids: Some(vec![all[1], all[3]]),
            ..Default::default()
        })
        .await
        .unwrap();
    // The process dies between marking and moving.
    drop(f.queue);
    let queue = DurableQueue::open(&f.path).unwrap();
    let report = pass(&queue, policy(Some(30), None, 100)).await;
    assert_eq!(report.redriven, 2);
    assert_eq!(report.by_age, 2);
    assert!(remaining(&queue).await.is_empty());
    let queued = queue.fetch("staging", 0, 10).await.unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        ["knock-00001", "knock-00003"]
    );
}

#[tokio::test]
async fn a_large_backlog_is_pruned_in_bounded_batches() {
    let f = open();
    let all = bury(&f.queue, 0..2_500).await;
    age(&f.path, &all, 40);
    let cutoff = Some(Utc::now() - chrono::Duration::days(30));
    let mut per_call = Vec::new();
    loop {
        let pruned = f
            .queue
            .prune_dead_letters(cutoff, None, 1_000)
            .await
            .unwrap();
        per_call.push(pruned.by_age);
        if pruned.total() == 0 {
            break;
        }
    }
    assert_eq!(per_call, [1_000, 1_000, 500, 0]);
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 0);

    // The pruner does the same, and says how many transactions it took.
    bury(&f.queue, 0..1_050).await;
    let report = pass(&f.queue, policy(None, Some(25), 250)).await;
    assert_eq!(report.by_count, 1_000);
    assert_eq!(
        report.batches, 5,
        "4 full batches of 250, then one finding nothing"
    );
    assert_eq!(f.queue.stats().await.unwrap().dead_letters, 50);
}

#[tokio::test]
async fn large_dead_letters_are_pruned_and_redriven_a_few_megabytes_at_a_time() {
    let f = open();
    // 50 dead letters of 200 KB: 10 MB in all, far under the row limits.
    let big = |n: usize| {
        let (mut e, b) = entry(n);
        e.payload = vec![b'x'; 200_000];
        (e, b)
    };
    let all = f
        .queue
        .dead_letter_new((0..50).map(big).collect())
        .await
        .unwrap();
    let per_step = tributary_outbound::STEP_BYTES / 200_000;
    assert_eq!(per_step, 10, "2 MiB holds ten of them");
    f.queue
        .request_redrive(DeadLetterFilter {
            ids: Some(all[..25].to_vec()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut moved = Vec::new();
    loop {
        let n = f.queue.finish_redrives(1_000).await.unwrap();
        moved.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(moved, [10, 10, 5, 0]);
    age(&f.path, &all[25..], 40);
    let mut pruned = Vec::new();
    loop {
        let p = f
            .queue
            .prune_dead_letters(Some(Utc::now()), None, 1_000)
            .await
            .unwrap();
        pruned.push(p.by_age);
        if p.total() == 0 {
            break;
        }
    }
    assert_eq!(pruned, [10, 10, 5, 0]);
    // One row over the byte budget on its own still moves: no step is empty
    // while work remains.
    let huge = (
        NewEntry {
            payload: vec![b'x'; tributary_outbound::STEP_BYTES + 1],
            ..entry(7).0
        },
        entry(7).1,
    );
    f.queue.dead_letter_new(vec![huge]).await.unwrap();
    let p = f
        .queue
        .prune_dead_letters(None, Some(0), 1_000)
        .await
        .unwrap();
    assert_eq!(p.by_count, 1);
}

#[tokio::test]
async fn a_large_redrive_moves_in_bounded_batches() {
    let f = open();
    bury(&f.queue, 0..250).await;
    let requested = f
        .queue
        .request_redrive(DeadLetterFilter::default())
        .await
        .unwrap();
    assert_eq!(requested, 250);
    let mut per_call = Vec::new();
    loop {
        let moved = f.queue.finish_redrives(100).await.unwrap();
        per_call.push(moved);
        if moved == 0 {
            break;
        }
    }
    assert_eq!(per_call, [100, 100, 50, 0]);
    // And the one-call form still answers how many it asked for.
    bury(&f.queue, 300..302).await;
    assert_eq!(
        f.queue.redrive(DeadLetterFilter::default()).await.unwrap(),
        2
    );
    let stats = f.queue.stats().await.unwrap();
    assert_eq!(stats.dead_letters, 0);
    assert_eq!(stats.pending.values().sum::<u64>(), 252);
}

#[tokio::test]
async fn the_pruner_runs_at_start_and_again_every_interval() {
    let f = open();
    bury(&f.queue, 0..5).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Pruner::new(f.queue.clone(), policy(None, Some(1), 100))
            .unwrap()
            .run(stop.clone()),
    );
    // One per environment: production's 4, staging's 3.
    wait_for(&f.queue, ids(3..5)).await;
    // Dead letters written while it runs are pruned by a later pass.
    bury(&f.queue, 5..9).await;
    wait_for(&f.queue, ids(7..9)).await;
    stop.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

async fn wait_for(queue: &DurableQueue, expected: Vec<String>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = remaining(queue).await;
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_file_from_before_retention_is_upgraded_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    {
        // The dead-letter table as the first release wrote it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE dead_letters (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT NOT NULL,
                 message_id TEXT NOT NULL, payload BLOB NOT NULL, enqueued_at INTEGER NOT NULL,
                 failed_at INTEGER NOT NULL, reason TEXT NOT NULL, status INTEGER);",
        )
        .unwrap();
        for (n, days) in [(0, 100), (1, 1)] {
            let failed_at = Utc::now().timestamp_millis() - days * DAY_MS;
            conn.execute(
                "INSERT INTO dead_letters (environment, message_id, payload, enqueued_at, failed_at, reason, status)
                 VALUES ('production', ?1, X'7B7D', ?2, ?2, 'Segment answered 403', 403)",
                params![format!("knock-{n:05}"), failed_at],
            )
            .unwrap();
        }
    }
    let queue = DurableQueue::open(&path).unwrap();
    // A second process opening the same old file at once is fine too.
    let other = DurableQueue::open(&path).unwrap();
    assert_eq!(remaining(&other).await.len(), 2);
    let report = pass(&queue, policy(Some(30), None, 100)).await;
    assert_eq!(report.by_age, 1);
    assert_eq!(remaining(&queue).await, ids(1..2));
}

#[test]
fn policies_that_would_delete_everything_at_once_are_refused() {
    for (policy, key) in [
        (
            RetentionPolicy {
                max_age: Some(Duration::ZERO),
                ..Default::default()
            },
            "max_age",
        ),
        (
            RetentionPolicy {
                max_count: Some(0),
                ..Default::default()
            },
            "max_count",
        ),
        (
            RetentionPolicy {
                batch_size: 0,
                ..Default::default()
            },
            "batch_size",
        ),
        (
            RetentionPolicy {
                interval: Duration::ZERO,
                ..Default::default()
            },
            "interval",
        ),
    ] {
        let err = policy.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    assert!(RetentionPolicy::default().validate().is_ok());
    assert!(RetentionPolicy::keep_all().validate().is_ok());
}
