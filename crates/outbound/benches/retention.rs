//! How long one retention or redrive step holds the queue's writer, next to
//! the cost of the commit every webhook waits for (the baseline): a webhook
//! that arrives during a step waits at most that step's time on top.
//!
//! Run: `cargo bench -p tributary-outbound --bench retention`. The queue
//! file lives under the target directory, on disk, so fsync is real.

use chrono::Utc;
use tributary_outbound::{
    Burial, DeadLetterFilter, DurableQueue, NewEntry, REDRIVE_BATCH, STEP_BYTES,
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

    /// Queues `n` events with ids `0..n`, 5,000 per commit.
    fn queue_fresh(&self, n: usize, payload_bytes: usize) {
        for start in (0..n).step_by(5_000) {
            let count = 5_000.min(n - start);
            self.runtime
                .block_on(self.queue.enqueue(fresh(start, count, payload_bytes)))
                .unwrap();
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
/// be dropped at enqueue and measure the wrong path), scattered like the
/// transform's hashed ids, so an index on them sees random keys.
fn fresh(first: usize, n: usize, payload_bytes: usize) -> Vec<NewEntry> {
    // splitmix64: a fixed, well-spread stand-in for SHA-256 digests.
    let mix = |x: u64| {
        let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    (first..first + n)
        .map(|i| {
            let h = mix(i as u64);
            NewEntry {
                environment: "production".into(),
                message_id: format!("knock-{h:016x}{:016x}{:08x}", mix(h), i as u32),
                payload: vec![b'x'; payload_bytes],
            }
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
    b.queue_fresh(seeded, 1_000);
    let next = std::cell::Cell::new(seeded);
    bencher.bench_local(|| {
        let first = next.get();
        next.set(first + 500);
        b.runtime
            .block_on(b.queue.enqueue(fresh(first, 500, 1_000)))
            .unwrap()
    });
}

/// A repeat of a queued message: the check, and nothing written.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn enqueue_repeat(bencher: divan::Bencher) {
    let b = Bench::new();
    b.runtime
        .block_on(b.queue.enqueue(fresh(0, 1, 1_000)))
        .unwrap();
    bencher.bench_local(|| {
        b.runtime
            .block_on(b.queue.enqueue(fresh(0, 1, 1_000)))
            .unwrap()
    });
}

/// A forgetting pass over `remembered` ids that are all within the window
/// and the cap: finding the cap's cutoff walks them all, in one operation
/// on the writer, the longest a pass holds it.
#[divan::bench(args = [200_000], sample_count = 10, sample_size = 1)]
fn forget_pass_nothing_to_forget(bencher: divan::Bencher, remembered: usize) {
    let b = Bench::new();
    b.queue_fresh(remembered, 100);
    let stop = tokio_util::sync::CancellationToken::new();
    bencher.bench_local(|| {
        let forgotten = b
            .runtime
            .block_on(b.queue.forget_messages(500, &stop))
            .unwrap();
        assert_eq!(forgotten.total(), 0);
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
