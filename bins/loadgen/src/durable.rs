//! `durable`: the least a server can do to make a 2xx durable, as a
//! baseline beside the bare one. Every parsed body is handed to one thread
//! that writes whatever is waiting with one `pwrite` into a file whose
//! blocks exist already, `fdatasync`s, and only then lets the answers go:
//! the intake journal's group commit (docs/store.md) with nothing else
//! around it: no dedup, no mapping, no rows, no compression.
//!
//! Beside the bare baseline, which parses the same way, it shows what
//! keeping the promise a 2xx makes costs on a machine by itself, before
//! any of the work a real server does around it.

use std::{path::Path, sync::mpsc, thread};

use anyhow::Context;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::syncs::Scratch;

/// The file the bodies cycle through: large enough that a group never
/// wraps onto blocks the disk may still be writing.
const JOURNAL_BYTES: u64 = 256 << 20;
/// The most one group writes; the rest waits for the next.
const GROUP_MAX_BYTES: usize = 8 << 20;

/// A body waiting for its sync, and who to tell.
type Waiting = (Bytes, oneshot::Sender<()>);

/// The handle request tasks append through.
#[derive(Clone)]
pub(crate) struct Journal {
    to_writer: mpsc::Sender<Waiting>,
}

impl Journal {
    /// Fills the file in `dir` and starts the writer thread. The baseline
    /// runs until killed, which leaves the file (256 MiB): give it a
    /// directory that is removed afterwards.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, JOURNAL_BYTES)
    }

    /// As [`Journal::start`], with a file of `file_bytes`.
    fn start_with(dir: &Path, file_bytes: u64) -> anyhow::Result<Self> {
        let scratch = Scratch::filled(dir, ".tributary-durable-baseline", file_bytes)
            .with_context(|| format!("the durable baseline's file in {}", dir.display()))?;
        let (to_writer, from_requests) = mpsc::channel::<Waiting>();
        thread::Builder::new()
            .name("durable-baseline".into())
            .spawn(move || write_groups(&scratch, &from_requests))?;
        Ok(Self { to_writer })
    }

    /// Returns once `body` is on the disk; an error if the writer stopped.
    pub(crate) async fn append(&self, body: Bytes) -> anyhow::Result<()> {
        let (done, synced) = oneshot::channel();
        self.to_writer
            .send((body, done))
            .map_err(|_| anyhow::anyhow!("the durable baseline's writer stopped"))?;
        synced
            .await
            .map_err(|_| anyhow::anyhow!("the durable baseline's writer failed"))
    }
}

/// Until every handle is gone: takes what is waiting, writes it with one
/// call at the next offset, syncs, answers. Stops on the first I/O error,
/// which drops the waiting senders, so their requests fail.
fn write_groups(scratch: &Scratch, from_requests: &mpsc::Receiver<Waiting>) {
    let mut group = Vec::with_capacity(GROUP_MAX_BYTES);
    let mut waiting = Vec::new();
    let mut at = 0u64;
    while let Ok(first) = from_requests.recv() {
        group.clear();
        group.extend_from_slice(&first.0);
        waiting.push(first.1);
        while group.len() < GROUP_MAX_BYTES {
            let Ok((body, done)) = from_requests.try_recv() else {
                break;
            };
            group.extend_from_slice(&body);
            waiting.push(done);
        }
        if at + group.len() as u64 > scratch.len {
            at = 0;
        }
        let written = std::os::unix::fs::FileExt::write_all_at(&scratch.file, &group, at)
            .and_then(|()| scratch.file.sync_data());
        if written.is_err() {
            return;
        }
        at += group.len() as u64;
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_appended_body_is_in_the_file_when_append_returns() {
        let dir = tempfile::tempdir().unwrap();
        // A small file: the test needs no more, and CI's disk is shared.
        let journal = Journal::start_with(dir.path(), 1 << 20).unwrap();
        let bodies: Vec<Bytes> = (0..50)
            .map(|n| Bytes::from(format!("{{\"n\":{n}}}")))
            .collect();
        // Concurrent appends, so that groups hold more than one body.
        let appends: Vec<_> = bodies
            .iter()
            .map(|body| {
                tokio::spawn({
                    let (journal, body) = (journal.clone(), body.clone());
                    async move { journal.append(body).await }
                })
            })
            .collect();
        for appended in appends {
            appended.await.unwrap().unwrap();
        }
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.to_string_lossy()
                    .contains(".tributary-durable-baseline")
            })
            .unwrap();
        let written = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&written);
        for body in &bodies {
            let body = std::str::from_utf8(body).unwrap();
            assert!(text.contains(body), "{body} not in the file");
        }
    }
}
