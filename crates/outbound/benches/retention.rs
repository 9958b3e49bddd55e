//! How long one retention or redrive step holds the queue's writer, next to
//! the cost of the commit every webhook waits for (the baseline): a webhook
//! that arrives during a step waits at most that step's time on top.
//!
//! Run: `cargo bench -p tributary-outbound --bench retention`. The queue
//! file lives under the target directory, on disk, so fsync is real.

use chrono::Utc;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, NewEntry, STEP_BYTES, queue::REDRIVE_BATCH,
};

fn main() {
    divan::Divan::from_args().run_benches();
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    queue: DurableQueue,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let queue = DurableQueue::open(dir.path().join("queue.db")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            runtime,
            queue,
            _dir: dir,
        }
    }

    fn seed(&self, rows: usize, payload_bytes: usize) {
        let entries = (0..rows)
            .map(|n| {
                (
                    NewEntry {
                        environment: "production".into(),
                        message_id: format!("knock-{n}"),
                        payload: vec![b'x'; payload_bytes],
                    },
                    Burial {
                        reason: "Segment answered 401".into(),
                        status: Some(401),
                    },
                )
            })
            .collect();
        self.runtime
            .block_on(self.queue.dead_letter_new(entries))
            .unwrap();
    }
}

/// Entries `first..first + n`, each with its own `messageId` (a repeat would
/// be dropped at enqueue and measure the wrong path).
fn fresh(first: usize, n: usize, payload_bytes: usize) -> Vec<NewEntry> {
    (first..first + n)
        .map(|i| NewEntry {
            environment: "production".into(),
            message_id: format!("knock-{i:040}"),
            payload: vec![b'x'; payload_bytes],
        })
        .collect()
}

/// The baseline: one webhook's durable enqueue (a transaction and its fsync).
#[divan::bench(args = [1_000, 32_000], sample_count = 30, sample_size = 1)]
fn enqueue_one(bencher: divan::Bencher, payload_bytes: usize) {
    let b = Bench::new();
    let next = std::cell::Cell::new(0);
    bencher.bench_local(|| {
        next.set(next.get() + 1);
        b.runtime
            .block_on(b.queue.enqueue(fresh(next.get(), 1, payload_bytes)))
            .unwrap()
    });
}

/// 500 webhooks committed together (what group commit does under load), on
/// a queue file that has already taken `seeded` events: the cost per event
/// of everything enqueue writes, including any index whose pages a random
/// key scatters over a large file.
#[divan::bench(args = [0, 200_000], sample_count = 15, sample_size = 1)]
fn enqueue_500(bencher: divan::Bencher, seeded: usize) {
    let b = Bench::new();
    for start in (0..seeded).step_by(5_000) {
        b.runtime
            .block_on(b.queue.enqueue(fresh(start, 5_000, 1_000)))
            .unwrap();
    }
    let next = std::cell::Cell::new(seeded);
    bencher.bench_local(|| {
        let first = next.get();
        next.set(first + 500);
        b.runtime
            .block_on(b.queue.enqueue(fresh(first, 500, 1_000)))
            .unwrap()
    });
}

/// Rows one step takes: its row limit, or fewer when their payloads reach
/// `STEP_BYTES` first.
fn step_rows(limit: usize, payload_bytes: usize) -> usize {
    limit.min(STEP_BYTES / payload_bytes)
}

/// One pruning transaction at the default 500 rows (by age), for typical
/// (1 KB) dead letters, the largest queueable ones (32 KB) and oversize ones
/// refused at enqueue (200 KB); the byte budget caps the last two.
#[divan::bench(args = [1_000, 32_000, 200_000], sample_count = 15, sample_size = 1)]
fn prune_step(bencher: divan::Bencher, payload_bytes: usize) {
    let b = Bench::new();
    let cutoff = Some(Utc::now() + chrono::Duration::days(1));
    let rows = step_rows(500, payload_bytes);
    bencher
        .with_inputs(|| b.seed(rows, payload_bytes))
        .bench_local_values(|()| {
            let pruned = b
                .runtime
                .block_on(b.queue.prune_dead_letters(cutoff, None, 500))
                .unwrap();
            assert_eq!(pruned.by_age, rows);
        });
}

/// One redrive transaction at `REDRIVE_BATCH` rows, same sizes.
#[divan::bench(args = [1_000, 32_000, 200_000], sample_count = 10, sample_size = 1)]
fn redrive_step(bencher: divan::Bencher, payload_bytes: usize) {
    let b = Bench::new();
    let rows = step_rows(REDRIVE_BATCH, payload_bytes);
    bencher
        .with_inputs(|| {
            b.seed(rows, payload_bytes);
            b.runtime
                .block_on(b.queue.request_redrive(DeadLetterFilter::default()))
                .unwrap();
        })
        .bench_local_values(|()| {
            let moved = b
                .runtime
                .block_on(b.queue.finish_redrives(REDRIVE_BATCH))
                .unwrap();
            assert_eq!(moved, rows);
        });
}
