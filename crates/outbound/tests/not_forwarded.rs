//! Queued entries of environments that are not forwarded, on a real queue
//! file: moved to the dead letters in bounded steps with the reason, entries
//! of forwarded environments untouched, and re-drivable.

use tokio_util::sync::CancellationToken;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, Forwarding, NewEntry, Pruner, RetentionPolicy,
    STEP_BYTES,
};

fn entries(environment: &str, n: usize, payload_bytes: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| NewEntry {
            environment: environment.into(),
            message_id: format!("knock-{environment}-{i:05}"),
            payload: vec![b'x'; payload_bytes],
        })
        .collect()
}

fn forwarding() -> Forwarding {
    Forwarding::new([
        ("production".to_owned(), true),
        ("staging".to_owned(), false),
    ])
}

fn burial() -> Burial {
    Burial {
        reason: "not_forwarded: environment staging has no write key".into(),
        status: None,
    }
}

#[tokio::test]
async fn one_step_moves_at_most_its_rows_and_about_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let queue = DurableQueue::open(dir.path().join("q.db")).unwrap();
    queue.enqueue(entries("staging", 1_200, 100)).await.unwrap();
    assert_eq!(
        queue
            .bury_environment("staging", burial(), 500)
            .await
            .unwrap(),
        500
    );
    assert_eq!(queue.stats().await.unwrap().pending["staging"], 700);

    // 200 KB rows: a step stops near STEP_BYTES, long before 500 rows.
    let dir = tempfile::tempdir().unwrap();
    let queue = DurableQueue::open(dir.path().join("q.db")).unwrap();
    let big = 200 * 1024;
    queue.enqueue(entries("staging", 30, big)).await.unwrap();
    let moved = queue
        .bury_environment("staging", burial(), 500)
        .await
        .unwrap();
    assert!(moved > 1 && moved * big <= STEP_BYTES, "{moved}");
    assert_eq!(
        queue
            .dead_letters(DeadLetterFilter::default())
            .await
            .unwrap()
            .len(),
        moved
    );
}

#[tokio::test]
async fn a_pass_moves_a_large_backlog_and_leaves_forwarded_environments_alone() {
    let dir = tempfile::tempdir().unwrap();
    let queue = DurableQueue::open(dir.path().join("q.db")).unwrap();
    queue
        .enqueue(entries("production", 300, 100))
        .await
        .unwrap();
    queue.enqueue(entries("staging", 1_234, 100)).await.unwrap();
    queue.enqueue(entries("qa", 3, 100)).await.unwrap();
    let production_before = queue.fetch("production", 0, 1_000).await.unwrap();

    // Without a forwarding, a pass touches no queued entry.
    let plain = Pruner::new(queue.clone(), RetentionPolicy::keep_all()).unwrap();
    assert_eq!(
        plain
            .pass(&CancellationToken::new())
            .await
            .unwrap()
            .not_forwarded,
        0
    );
    assert_eq!(queue.stats().await.unwrap().pending.len(), 3);

    let pruner = Pruner::new(queue.clone(), RetentionPolicy::keep_all())
        .unwrap()
        .with_forwarding(forwarding());
    let report = pruner.pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.not_forwarded, 1_237);
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.pending.keys().collect::<Vec<_>>(), ["production"]);
    assert_eq!(stats.dead_letters, 1_237);
    assert_eq!(
        queue.fetch("production", 0, 1_000).await.unwrap(),
        production_before
    );
    let dead = queue
        .dead_letters(DeadLetterFilter::default())
        .await
        .unwrap();
    // Environments are taken in name order: qa's three, then staging's.
    let reasons = |environment: &str| {
        dead.iter()
            .filter(|d| d.environment == environment)
            .map(|d| d.reason.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        reasons("staging").into_iter().collect::<Vec<_>>(),
        ["not_forwarded: environment staging has no write key"]
    );
    assert_eq!(
        reasons("qa").into_iter().collect::<Vec<_>>(),
        ["not_forwarded: environment qa is not configured"]
    );
    assert_eq!(dead[3].message_id, "knock-staging-00000");
    // Queue order is kept, and so is when each was first queued.
    assert!(dead.windows(2).all(|w| w[0].id < w[1].id));
    assert!(dead.iter().all(|d| d.enqueued_at <= d.failed_at));

    // A second pass finds nothing; a redrive brings them back in order.
    assert_eq!(
        pruner
            .pass(&CancellationToken::new())
            .await
            .unwrap()
            .not_forwarded,
        0
    );
    let staging = DeadLetterFilter {
        environment: Some("staging".into()),
        ..Default::default()
    };
    assert_eq!(queue.redrive(staging).await.unwrap(), 1_234);
    let back = queue.fetch("staging", 0, 2_000).await.unwrap();
    assert_eq!(back.len(), 1_234);
    assert_eq!(back[0].message_id, "knock-staging-00000");
    assert_eq!(back[1_233].message_id, "knock-staging-01233");
}

#[tokio::test]
async fn dead_letter_counts_are_per_environment() {
    let dir = tempfile::tempdir().unwrap();
    let queue = DurableQueue::open(dir.path().join("q.db")).unwrap();
    queue.enqueue(entries("staging", 4, 10)).await.unwrap();
    queue.enqueue(entries("production", 2, 10)).await.unwrap();
    queue
        .bury_environment("staging", burial(), 500)
        .await
        .unwrap();
    let counts = queue.dead_letter_counts().await.unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("staging".to_owned(), 4)]
    );
}
