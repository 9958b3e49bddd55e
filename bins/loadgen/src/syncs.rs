//! `syncs`: how long a disk takes to make a small write durable, measured
//! the way the intake journal makes one (docs/store.md): 4 KiB written into a
//! file whose blocks exist already, then `fdatasync`, at a fixed rate.
//!
//! An answer is never faster than the sync it waits for, so a disk whose
//! cache flushes sometimes take 100 ms gives every store on it a 100 ms tail,
//! whatever the store does. This tells an operator (and the benchmarks) what
//! the disk alone does, before any of Tributary runs on it. Optionally a
//! second file is written beside it through the page cache and fsynced at an
//! interval, as the WAL and the checkpoints are.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use hdrhistogram::Histogram;

/// The journal's write: one block.
const BLOCK: usize = 4_096;
/// The most the probe file takes; writes cycle through it, so none extends it.
const PROBE_MAX_BYTES: u64 = 64 << 20;
/// The most the file written beside the syncs takes, cycled through the same way.
const BESIDE_MAX_BYTES: u64 = 256 << 20;
/// Files are filled in pieces of this size.
const FILL_CHUNK: u64 = 1 << 20;

/// What to measure.
pub(crate) struct Probe {
    /// Where the files are made (and removed after).
    pub(crate) dir: PathBuf,
    /// Syncs a second.
    pub(crate) rate: u64,
    /// Syncs in all: the run takes as long as they take.
    pub(crate) syncs: u64,
    /// Bytes a second written beside the syncs; 0 for none.
    pub(crate) beside_bytes_per_second: u64,
    /// How often the writer beside them fsyncs.
    pub(crate) beside_every: Duration,
}

/// What was measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) syncs: u64,
    pub(crate) took: Duration,
    /// Microseconds per write and sync.
    pub(crate) latency: Histogram<u64>,
    pub(crate) over_10_ms: u64,
    pub(crate) over_50_ms: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1_000.0;
        writeln!(
            f,
            "syncs: {} in {:.1} s",
            self.syncs,
            self.took.as_secs_f64()
        )?;
        writeln!(
            f,
            "latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            self.latency.max() as f64 / 1_000.0
        )?;
        write!(
            f,
            "syncs over 10 ms: {}, over 50 ms: {}",
            self.over_10_ms, self.over_50_ms
        )
    }
}

/// A file made for a measurement, removed when dropped.
pub(crate) struct Scratch {
    path: PathBuf,
    pub(crate) file: File,
    /// Bytes written in it: writes at offsets below this change no metadata.
    pub(crate) len: u64,
}

impl Scratch {
    /// A file of at least `bytes` (whole pieces of [`FILL_CHUNK`]), every
    /// block written once and synced, so that later writes change no
    /// metadata, as in the journal's reused files.
    pub(crate) fn filled(dir: &Path, name: &str, bytes: u64) -> anyhow::Result<Self> {
        let path = dir.join(format!("{name}-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot make {}", path.display()))?;
        let len = bytes.div_ceil(FILL_CHUNK).max(1) * FILL_CHUNK;
        let scratch = Self { path, file, len };
        let chunk = vec![1u8; FILL_CHUNK as usize];
        for at in (0..len).step_by(FILL_CHUNK as usize) {
            scratch.file.write_all_at(&chunk, at)?;
        }
        scratch.file.sync_all()?;
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs `probe` and reports.
pub(crate) fn measure(probe: &Probe) -> anyhow::Result<Report> {
    anyhow::ensure!(probe.rate > 0, "--rate must be at least 1");
    let target = Scratch::filled(
        &probe.dir,
        ".tributary-syncs",
        probe
            .syncs
            .saturating_mul(BLOCK as u64)
            .min(PROBE_MAX_BYTES),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let beside = match probe.beside_bytes_per_second {
        0 => None,
        rate => {
            let every = probe.beside_every.max(Duration::from_millis(1));
            let chunk = ((rate as f64 * every.as_secs_f64()) as u64).clamp(1, BESIDE_MAX_BYTES);
            // Four seconds of it, up to the cap: enough that each write
            // lands on blocks the last few did not.
            let bytes = rate.saturating_mul(4).max(chunk).min(BESIDE_MAX_BYTES);
            let scratch = Scratch::filled(&probe.dir, ".tributary-syncs-beside", bytes)?;
            let stop = Arc::clone(&stop);
            Some(std::thread::spawn(move || {
                write_beside(&scratch, chunk as usize, every, &stop)
            }))
        }
    };
    let block = vec![2u8; BLOCK];
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut over_10_ms, mut over_50_ms) = (0, 0);
    let started = Instant::now();
    let result = (0..probe.syncs).try_for_each(|n| {
        let due = started + Duration::from_secs_f64(n as f64 / probe.rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at = n % (target.len / BLOCK as u64) * BLOCK as u64;
        let began = Instant::now();
        target.file.write_all_at(&block, at)?;
        target.file.sync_data()?;
        let took = began.elapsed();
        over_10_ms += u64::from(took > Duration::from_millis(10));
        over_50_ms += u64::from(took > Duration::from_millis(50));
        latency.saturating_record(took.as_micros().max(1) as u64);
        anyhow::Ok(())
    });
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(writer) = beside {
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("the writer beside the syncs panicked"))??;
    }
    result?;
    Ok(Report {
        syncs: probe.syncs,
        took,
        latency,
        over_10_ms,
        over_50_ms,
    })
}

/// Writes `chunk` bytes through the page cache and `fsync`s, every `every`,
/// until `stop`.
fn write_beside(
    scratch: &Scratch,
    chunk: usize,
    every: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let chunk = vec![3u8; chunk];
    let started = Instant::now();
    let (mut n, mut at) = (0u32, 0u64);
    while !stop.load(Ordering::Relaxed) {
        if at + chunk.len() as u64 > scratch.len {
            at = 0;
        }
        scratch.file.write_all_at(&chunk, at)?;
        scratch.file.sync_all()?;
        at += chunk.len() as u64;
        n += 1;
        if let Some(wait) = (started + every * n).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(dir: &Path, beside_bytes_per_second: u64) -> Probe {
        Probe {
            dir: dir.to_owned(),
            rate: 500,
            syncs: 50,
            beside_bytes_per_second,
            beside_every: Duration::from_millis(20),
        }
    }

    #[test]
    fn every_sync_is_timed_and_the_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for beside in [0, 1 << 20] {
            let report = measure(&probe(dir.path(), beside)).unwrap();
            assert_eq!(report.syncs, 50);
            assert_eq!(report.latency.len(), 50);
            assert!(report.over_50_ms <= report.over_10_ms);
            assert!(report.over_10_ms <= 50);
            let text = report.to_string();
            assert!(text.starts_with("syncs: 50 in "), "{text}");
            assert!(text.contains("syncs over 10 ms: "), "{text}");
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }

    #[test]
    fn a_directory_that_cannot_hold_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = measure(&probe(&missing, 0)).unwrap_err();
        assert!(err.to_string().contains("cannot make"), "{err}");
    }
}
