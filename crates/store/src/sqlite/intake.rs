//! The intake journal: what makes an append durable before its rows are
//! committed.
//!
//! A SQLite commit rewrites the right-edge page of every table and index it
//! touched, and the checkpoint writes each of those pages again, so small
//! commits cost far more bytes than the rows they hold (docs/PERFORMANCE.md,
//! issue 19). The writer therefore keeps one transaction open for up to
//! [`super::SqliteOptions::commit_every`] (`tributary_group_commit`'s
//! deferred commits) and makes each group of appends durable here instead:
//! their prepared rows, one record per append call, written at the journal's
//! end and `fdatasync`ed, before any of them is answered.
//!
//! The file is reused rather than grown: once a commit (with
//! `synchronous=FULL`) holds every journaled record, the next record goes
//! to offset 0 again. Each commit also stores the last record it holds in
//! `intake_journal.applied_seq`, so reading the journal back (at open, or
//! after a failed commit) re-applies exactly the records after it.
//!
//! A record: payload length (u32), CRC-32 of the sequence number and the
//! payload (u32), sequence number (u64), all little-endian, then the
//! payload (the append's [`super::ops::PreparedItem`]s in postcard). Reading
//! stops at the first record that is torn (short, or its CRC does not
//! match) or whose number does not follow the one before: an earlier use of
//! the file (lower numbers) or a group whose write never finished (never
//! answered).

use std::{fs::File, io, os::unix::fs::FileExt, path::Path};

/// Length, CRC, sequence number.
const HEADER_BYTES: usize = 16;

/// A record claiming more than this is garbage: an append is bounded by the
/// request size limits, far below it.
const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// The journal file `<db>-intake` and the records a group has staged.
pub(super) struct IntakeJournal {
    file: File,
    /// Where the next group's records go.
    end: u64,
    /// The last sequence number written and synced (or committed).
    written: u64,
    /// This group's records, not yet written.
    staged: Vec<u8>,
    staged_records: u64,
}

impl IntakeJournal {
    /// Opens (creating, owner-only) the journal at `path`.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        Ok(Self {
            file: options.open(path)?,
            end: 0,
            written: 0,
            staged: Vec::new(),
            staged_records: 0,
        })
    }

    /// The last sequence number that is durable.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Stages one record for this group's write.
    pub(super) fn stage(&mut self, payload: &[u8]) {
        self.staged_records += 1;
        let seq = self.written + self.staged_records;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.update(payload);
        self.staged.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        self.staged.extend_from_slice(&crc.finalize().to_le_bytes());
        self.staged.extend_from_slice(&seq.to_le_bytes());
        self.staged.extend_from_slice(payload);
    }

    /// The sequence number of the last staged record, if any.
    pub(super) fn staged_last(&self) -> Option<u64> {
        (self.staged_records > 0).then(|| self.written + self.staged_records)
    }

    /// Drops what this group staged (the group failed or is starting).
    pub(super) fn clear_staged(&mut self) {
        self.staged.clear();
        self.staged_records = 0;
    }

    /// Writes the staged records at the journal's end and syncs them. On
    /// failure nothing moves: the next write goes to the same place.
    pub(super) fn write_staged(&mut self) -> io::Result<()> {
        if self.staged_records == 0 {
            return Ok(());
        }
        self.file.write_all_at(&self.staged, self.end)?;
        self.file.sync_data()?;
        self.end += self.staged.len() as u64;
        self.written += self.staged_records;
        self.clear_staged();
        Ok(())
    }

    /// Every record is committed to the database: the next write starts at
    /// the beginning of the file again.
    pub(super) fn committed(&mut self) {
        self.end = 0;
    }

    /// Reads the records numbered after `after` and up to `up_to`, in order;
    /// see the module docs for where reading stops. Afterwards new records
    /// are numbered after the last one read (or `after`).
    pub(super) fn read(&mut self, after: u64, up_to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let len = self.file.metadata()?.len();
        let mut at = 0u64;
        let mut previous: Option<u64> = None;
        let mut records = Vec::new();
        let mut header = [0u8; HEADER_BYTES];
        while at + HEADER_BYTES as u64 <= len {
            self.file.read_exact_at(&mut header, at)?;
            let size = u64::from(u32::from_le_bytes(
                header[0..4].try_into().unwrap_or_default(),
            ));
            let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
            let seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
            let body_at = at + HEADER_BYTES as u64;
            if size > MAX_PAYLOAD_BYTES || body_at + size > len {
                break;
            }
            if previous.is_some_and(|p| seq != p + 1) || seq > up_to {
                break;
            }
            let mut payload = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
            self.file.read_exact_at(&mut payload, body_at)?;
            let mut check = crc32fast::Hasher::new();
            check.update(&seq.to_le_bytes());
            check.update(&payload);
            if check.finalize() != crc {
                break;
            }
            if seq > after {
                records.push((seq, payload));
            }
            previous = Some(seq);
            at = body_at + size;
        }
        self.written = records.last().map_or(after, |(seq, _)| *seq).max(after);
        self.end = at;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> IntakeJournal {
        IntakeJournal::open(&dir.join("j")).unwrap()
    }

    fn write(j: &mut IntakeJournal, payloads: &[&[u8]]) {
        j.clear_staged();
        for p in payloads {
            j.stage(p);
        }
        j.write_staged().unwrap();
    }

    #[test]
    fn reads_back_what_was_written_after_the_applied_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"one", b"two"]);
        write(&mut j, &[b"three"]);
        let mut again = journal(dir.path());
        let got = again.read(1, u64::MAX).unwrap();
        assert_eq!(got, vec![(2, b"two".to_vec()), (3, b"three".to_vec())]);
        assert_eq!(again.written(), 3);
        again.stage(b"four");
        assert_eq!(again.staged_last(), Some(4));
    }

    #[test]
    fn a_reused_file_stops_at_the_older_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"aaaaaaaa", b"bbbbbbbb", b"cccccccc"]);
        j.committed();
        write(&mut j, &[b"dddddddd"]);
        // Record 4 overwrote record 1 exactly; records 2 and 3 follow it.
        let got = journal(dir.path()).read(3, u64::MAX).unwrap();
        assert_eq!(got, vec![(4, b"dddddddd".to_vec())]);
    }

    #[test]
    fn a_torn_record_ends_the_journal_and_is_overwritten_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"kept", b"torn-record"]);
        // Cut the file inside the second record's payload.
        let len = std::fs::metadata(dir.path().join("j")).unwrap().len();
        j.file.set_len(len - 3).unwrap();
        let mut again = journal(dir.path());
        assert_eq!(
            again.read(0, u64::MAX).unwrap(),
            vec![(1, b"kept".to_vec())]
        );
        write(&mut again, &[b"next"]);
        assert_eq!(
            journal(dir.path()).read(0, u64::MAX).unwrap(),
            vec![(1, b"kept".to_vec()), (2, b"next".to_vec())]
        );
    }

    #[test]
    fn a_flipped_byte_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"first", b"second"]);
        let path = dir.path().join("j");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            journal(dir.path()).read(0, u64::MAX).unwrap(),
            vec![(1, b"first".to_vec())]
        );
    }

    #[test]
    fn reading_stops_at_the_limit_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"1", b"2", b"3"]);
        assert_eq!(journal(dir.path()).read(0, 2).unwrap().len(), 2);
    }

    proptest::proptest! {
        /// Whatever bytes the file holds, reading never panics and returns
        /// only records whose CRC matches, numbered in order.
        #[test]
        fn any_file_reads_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("j"), &bytes).unwrap();
            let got = journal(dir.path()).read(0, u64::MAX).unwrap();
            for pair in got.windows(2) {
                proptest::prop_assert_eq!(pair[1].0, pair[0].0 + 1);
            }
        }
    }
}
