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
//! Those commits run with `synchronous=NORMAL`: the writer never waits for
//! the database's fsync. A commit is on disk once a checkpoint has copied it
//! into the database file (SQLite fsyncs the WAL before a checkpoint and the
//! database after it), which [`CommitMarks`] tracks. The journal is two
//! files, used in turn: at a commit, the file being written is set aside
//! until that commit is on disk, and the other one, whose records an earlier
//! commit on disk already holds, is written from its start again. Neither
//! file is truncated, so once they have grown to the size of one commit's
//! appends an `fdatasync` changes no metadata. Each commit also stores the
//! last record it holds in `intake_journal.applied_seq`, so reading the
//! journal back (at open, or after a failed commit) re-applies exactly the
//! records after it.
//!
//! A record: payload length (u32), CRC-32 of the sequence number and the
//! payload (u32), sequence number (u64), all little-endian, then the
//! payload (the append's [`super::ops::PreparedItem`]s in postcard). Reading
//! a file stops at the first record that is torn (short, or its CRC does not
//! match) or whose number does not follow the one before: an earlier use of
//! the file (lower numbers) or a group whose write never finished (never
//! answered). The two files' records are then taken in order from the
//! first one after `applied_seq`, up to the first gap.
//!
//! On Linux the files are written with `O_DIRECT`, so a group's write goes
//! from the writer's buffer to the disk without the page cache. A buffered
//! append re-dirties the partly filled page the previous group left, so each
//! `fdatasync` wrote that page again, and `/proc/PID/io` counted about twice
//! the bytes appended (docs/PERFORMANCE.md,
//! "The intake journal past the page cache; where the goals stand"). A direct
//! write must start and end on a block boundary: each group's write is
//! padded to [`DIRECT_ALIGN`] with a padding record (sequence number 0,
//! zero payload), which reading skips. Where the file system refuses
//! `O_DIRECT`, the journal writes through the page cache as before, with the
//! same records.

use std::{
    fs::File,
    io,
    os::unix::fs::FileExt,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// Length, CRC, sequence number.
const HEADER_BYTES: usize = 16;

/// A record claiming more than this is garbage: an append is bounded by the
/// request size limits, far below it.
const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// Where a direct write may start and end, and its buffer's address: the
/// largest logical block size of common disks, so one value fits them all.
const DIRECT_ALIGN: usize = 4096;

/// The direct write buffer's size kept between groups; a larger one is
/// freed after its write.
const DIRECT_BUFFER_KEPT_BYTES: usize = 1 << 20;

/// The sequence number of a padding record; real records start at 1.
const PADDING_SEQ: u64 = 0;

/// Which of the writer's commits are on disk. The writer numbers its
/// commits; a synced commit is on disk at once, the others once a
/// checkpoint that began after them has copied every frame of the WAL.
#[derive(Clone, Default)]
pub(super) struct CommitMarks(Arc<Marks>);

#[derive(Default)]
struct Marks {
    committed: AtomicU64,
    durable: AtomicU64,
}

impl CommitMarks {
    /// The number of the last commit made.
    pub(super) fn committed(&self) -> u64 {
        self.0.committed.load(Ordering::SeqCst)
    }

    /// Every commit up to `commit` is on disk.
    pub(super) fn durable_through(&self, commit: u64) {
        self.0.durable.fetch_max(commit, Ordering::SeqCst);
    }

    fn is_durable(&self, commit: u64) -> bool {
        self.0.durable.load(Ordering::SeqCst) >= commit
    }

    /// Numbers a commit just made.
    fn commit(&self, synced: bool) -> u64 {
        let n = self.0.committed.fetch_add(1, Ordering::SeqCst) + 1;
        if synced {
            self.durable_through(n);
        }
        n
    }
}

/// One of the journal's two files.
struct Segment {
    /// Reads, and writes when `direct` is `None`.
    file: File,
    /// The same file opened with `O_DIRECT`, while the file system takes it.
    direct: Option<File>,
    /// Where the next record goes.
    end: u64,
    /// Set aside until this commit is on disk (its records are all in it).
    awaits: Option<u64>,
}

/// The journal files `<db>-intake0` and `<db>-intake1`, and the records a
/// group has staged.
pub(super) struct IntakeJournal {
    segments: [Segment; 2],
    /// The segment being written.
    active: usize,
    /// The last sequence number written and synced.
    written: u64,
    /// This group's records, not yet written.
    staged: Vec<u8>,
    staged_records: u64,
    /// Holds a direct write's bytes at an aligned address (see [`aligned`]).
    direct_buffer: Vec<u8>,
    marks: CommitMarks,
}

impl IntakeJournal {
    /// Opens (creating, owner-only) the journal files `<path>0` and `<path>1`.
    pub(super) fn open(path: &Path, marks: CommitMarks) -> io::Result<Self> {
        let segment = |n: u8| -> io::Result<Segment> {
            let mut options = std::fs::OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut name = path.as_os_str().to_owned();
            name.push(n.to_string());
            let name = std::path::PathBuf::from(name);
            let file = options.open(&name)?;
            Ok(Segment {
                direct: open_direct(&name),
                file,
                end: 0,
                awaits: None,
            })
        };
        Ok(Self {
            segments: [segment(0)?, segment(1)?],
            active: 0,
            written: 0,
            staged: Vec::new(),
            staged_records: 0,
            direct_buffer: Vec::new(),
            marks,
        })
    }

    /// Whether the active file is written with `O_DIRECT`.
    #[cfg(test)]
    fn writes_direct(&self) -> bool {
        self.segments[self.active].direct.is_some()
    }

    /// Writes through the page cache from now on, as where `O_DIRECT` is
    /// refused.
    #[cfg(test)]
    fn buffered_only(&mut self) {
        for s in &mut self.segments {
            s.direct = None;
        }
    }

    /// The last sequence number that is durable.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// The writer's commit numbers, shared with the checkpointer.
    pub(super) fn marks(&self) -> &CommitMarks {
        &self.marks
    }

    /// Stages one record for this group's write.
    pub(super) fn stage(&mut self, payload: &[u8]) {
        self.staged_records += 1;
        let seq = self.written + self.staged_records;
        push_record(&mut self.staged, seq, payload);
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

    /// Writes the staged records at the active file's end and syncs them.
    /// On failure nothing moves: the next write goes to the same place.
    pub(super) fn write_staged(&mut self) -> io::Result<()> {
        if self.staged_records == 0 {
            return Ok(());
        }
        let segment = &mut self.segments[self.active];
        let direct_write = segment.direct.as_ref().map(|direct| {
            let padded = padded_len(self.staged.len());
            let buffer = aligned(&mut self.direct_buffer, padded);
            buffer[..self.staged.len()].copy_from_slice(&self.staged);
            fill_with_padding(&mut buffer[self.staged.len()..]);
            direct
                .write_all_at(buffer, segment.end)
                .and_then(|()| direct.sync_data())
                .map(|()| padded)
        });
        let wrote = match direct_write {
            Some(Ok(padded)) => padded,
            // The file system took `O_DIRECT` at open but not this write (it
            // needs an alignment beyond ours): the page cache takes it
            // instead, now and from now on.
            Some(Err(e)) if e.kind() == io::ErrorKind::InvalidInput => {
                tracing::warn!(error = %e, "The intake journal's direct write was refused; it writes through the page cache from now on.");
                segment.direct = None;
                write_buffered(&segment.file, &self.staged, segment.end)?
            }
            Some(Err(e)) => return Err(e),
            None => write_buffered(&segment.file, &self.staged, segment.end)?,
        };
        segment.end += wrote as u64;
        self.written += self.staged_records;
        self.clear_staged();
        // One large group (a few big batches at once) would otherwise keep
        // its copy for the process's life.
        if self.direct_buffer.len() > DIRECT_BUFFER_KEPT_BYTES {
            self.direct_buffer = Vec::new();
        }
        Ok(())
    }

    /// The writer's open transaction committed, holding every record
    /// written so far. Switches files when the other one's records are all
    /// on disk; otherwise the active file goes on growing.
    pub(super) fn committed(&mut self, synced: bool) {
        let commit = self.marks.commit(synced);
        let other = 1 - self.active;
        let free = self.segments[other]
            .awaits
            .is_none_or(|c| self.marks.is_durable(c));
        if free && self.segments[self.active].end > 0 {
            self.segments[self.active].awaits = Some(commit);
            self.segments[other].end = 0;
            self.segments[other].awaits = None;
            self.active = other;
        }
    }

    /// Everything journaled is on disk in the database (a synced commit of
    /// a replay): both files are written from their start again.
    fn all_durable(&mut self) {
        for s in &mut self.segments {
            s.end = 0;
            s.awaits = None;
        }
        self.active = 0;
    }

    /// Reads the records numbered after `after` and up to `up_to`, in order;
    /// see the module docs for where reading stops. Afterwards new records
    /// are numbered after the last one read (or `after`).
    pub(super) fn read(&mut self, after: u64, up_to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let mut found = Vec::new();
        for s in &self.segments {
            found.extend(read_file(&s.file, after, up_to)?);
        }
        found.sort_by_key(|(seq, _)| *seq);
        found.dedup_by_key(|(seq, _)| *seq);
        let mut records = Vec::with_capacity(found.len());
        for (seq, payload) in found {
            if seq != after + 1 + records.len() as u64 {
                break;
            }
            records.push((seq, payload));
        }
        self.written = records.last().map_or(after, |(seq, _)| *seq).max(after);
        Ok(records)
    }

    /// A replay committed (with `synchronous=FULL`) every record read.
    pub(super) fn replayed(&mut self) {
        self.marks.commit(true);
        self.all_durable();
    }
}

/// Appends one record (header, then payload) to `out`.
fn push_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Writes `bytes` at `at` through the page cache and syncs them.
fn write_buffered(file: &File, bytes: &[u8], at: u64) -> io::Result<usize> {
    file.write_all_at(bytes, at)?;
    file.sync_data()?;
    Ok(bytes.len())
}

/// `len` rounded up to [`DIRECT_ALIGN`]; when that leaves any space, at
/// least room for a padding record's header.
fn padded_len(len: usize) -> usize {
    if len.is_multiple_of(DIRECT_ALIGN) {
        len
    } else {
        (len + HEADER_BYTES).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN
    }
}

/// Fills `space` (empty, or at least [`HEADER_BYTES`] long) with one
/// padding record.
fn fill_with_padding(space: &mut [u8]) {
    debug_assert!(space.is_empty() || space.len() >= HEADER_BYTES);
    if space.len() < HEADER_BYTES {
        return;
    }
    let (header, payload) = space.split_at_mut(HEADER_BYTES);
    payload.fill(0);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&PADDING_SEQ.to_le_bytes());
    crc.update(payload);
    header[0..4].copy_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    header[8..16].copy_from_slice(&PADDING_SEQ.to_le_bytes());
}

/// `len` bytes of `buffer` that start at a [`DIRECT_ALIGN`]ed address, as
/// `O_DIRECT` needs. The buffer is kept `DIRECT_ALIGN` bytes longer than any
/// write so such a start always exists within it.
fn aligned(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len + DIRECT_ALIGN {
        buffer.resize(len + DIRECT_ALIGN, 0);
    }
    let start = buffer.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
    &mut buffer[start..start + len]
}

/// The journal file at `path` opened again for direct writes, or `None`
/// where `O_DIRECT` is not available (other systems, file systems that
/// refuse it).
fn open_direct(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flag = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).ok()?;
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(flag)
            .open(path)
        {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::info!(error = %e, "The intake journal writes through the page cache: this file system refuses O_DIRECT.");
                None
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The records of one journal file numbered after `after` and up to `up_to`.
fn read_file(file: &File, after: u64, up_to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let len = file.metadata()?.len();
    let mut at = 0u64;
    let mut previous: Option<u64> = None;
    let mut records = Vec::new();
    let mut header = [0u8; HEADER_BYTES];
    while at + HEADER_BYTES as u64 <= len {
        file.read_exact_at(&mut header, at)?;
        let size = u64::from(u32::from_le_bytes(
            header[0..4].try_into().unwrap_or_default(),
        ));
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        let seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let body_at = at + HEADER_BYTES as u64;
        if size > MAX_PAYLOAD_BYTES || body_at + size > len {
            break;
        }
        let padding = seq == PADDING_SEQ;
        if !padding && (previous.is_some_and(|p| seq != p + 1) || seq > up_to) {
            break;
        }
        let mut payload = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut payload, body_at)?;
        let mut check = crc32fast::Hasher::new();
        check.update(&seq.to_le_bytes());
        check.update(&payload);
        if check.finalize() != crc {
            break;
        }
        if padding {
            at = body_at + size;
            continue;
        }
        if seq > after {
            records.push((seq, payload));
        }
        previous = Some(seq);
        at = body_at + size;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> IntakeJournal {
        IntakeJournal::open(&dir.join("j"), CommitMarks::default()).unwrap()
    }

    fn write(j: &mut IntakeJournal, payloads: &[&[u8]]) {
        j.clear_staged();
        for p in payloads {
            j.stage(p);
        }
        j.write_staged().unwrap();
    }

    fn seqs(records: &[(u64, Vec<u8>)]) -> Vec<u64> {
        records.iter().map(|(s, _)| *s).collect()
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
        j.committed(true);
        write(&mut j, &[b"dddddddd"]);
        j.committed(true);
        // Back to the first file: record 5 overwrites record 1 exactly, and
        // records 2 and 3 follow it.
        write(&mut j, &[b"eeeeeeee"]);
        let got = journal(dir.path()).read(4, u64::MAX).unwrap();
        assert_eq!(got, vec![(5, b"eeeeeeee".to_vec())]);
    }

    #[test]
    fn a_file_is_kept_until_its_commit_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"1"]);
        // Commit 1 without an fsync: the first file is set aside for it.
        j.committed(false);
        write(&mut j, &[b"2"]);
        // Commit 2: the first file still waits, so the second one grows.
        j.committed(false);
        write(&mut j, &[b"3"]);
        assert_eq!(
            seqs(&journal(dir.path()).read(0, u64::MAX).unwrap()),
            [1, 2, 3]
        );
        // A checkpoint puts commit 2 on disk; at the next commit the first
        // file is free and written from its start.
        j.marks().durable_through(2);
        j.committed(false);
        write(&mut j, &[b"4"]);
        assert_eq!(
            seqs(&journal(dir.path()).read(2, u64::MAX).unwrap()),
            [3, 4]
        );
    }

    #[test]
    fn a_torn_record_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"kept", b"torn-record"]);
        // Cut the file inside the second record's payload.
        let second_ends = 2 * HEADER_BYTES + b"kept".len() + b"torn-record".len();
        j.segments[0].file.set_len(second_ends as u64 - 3).unwrap();
        let got = journal(dir.path()).read(0, u64::MAX).unwrap();
        assert_eq!(got, vec![(1, b"kept".to_vec())]);
    }

    #[test]
    fn a_flipped_byte_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        write(&mut j, &[b"first", b"second"]);
        let path = dir.path().join("j0");
        let mut bytes = std::fs::read(&path).unwrap();
        let last_of_second = 2 * HEADER_BYTES + b"first".len() + b"second".len() - 1;
        bytes[last_of_second] ^= 1;
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

    #[test]
    fn padding_records_between_groups_are_skipped() {
        // Two groups as direct writes lay them out, built by hand so the
        // case holds on file systems without `O_DIRECT` too.
        let mut bytes = Vec::new();
        push_record(&mut bytes, 1, b"one");
        push_record(&mut bytes, 2, b"two");
        let padded = padded_len(bytes.len());
        let end = bytes.len();
        bytes.resize(padded, 0xAA);
        fill_with_padding(&mut bytes[end..]);
        push_record(&mut bytes, 3, b"three");
        assert_eq!(padded % DIRECT_ALIGN, 0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("j0"), &bytes).unwrap();
        let got = journal(dir.path()).read(0, u64::MAX).unwrap();
        assert_eq!(seqs(&got), [1, 2, 3]);
        assert_eq!(got[2].1, b"three");
    }

    #[test]
    fn a_group_is_padded_to_a_whole_block_with_room_for_the_padding_header() {
        assert_eq!(padded_len(1), DIRECT_ALIGN);
        assert_eq!(padded_len(DIRECT_ALIGN - HEADER_BYTES), DIRECT_ALIGN);
        // Too little room left for a padding record's header: one more block.
        assert_eq!(
            padded_len(DIRECT_ALIGN - HEADER_BYTES + 1),
            2 * DIRECT_ALIGN
        );
        assert_eq!(padded_len(DIRECT_ALIGN), DIRECT_ALIGN);
        let mut buffer = Vec::new();
        let slice = aligned(&mut buffer, 3 * DIRECT_ALIGN);
        assert_eq!(slice.len(), 3 * DIRECT_ALIGN);
        assert_eq!(slice.as_ptr() as usize % DIRECT_ALIGN, 0);
    }

    #[test]
    fn direct_and_buffered_writes_read_back_the_same_records() {
        for buffered in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut j = journal(dir.path());
            if buffered {
                j.buffered_only();
            }
            write(&mut j, &[b"a", &[7u8; 5000]]);
            write(&mut j, &[b"c"]);
            let len = std::fs::metadata(dir.path().join("j0")).unwrap().len();
            if j.writes_direct() {
                assert_eq!(len % DIRECT_ALIGN as u64, 0, "{len}");
            } else {
                assert_eq!(len, 3 * HEADER_BYTES as u64 + 5002);
            }
            let got = journal(dir.path()).read(0, u64::MAX).unwrap();
            assert_eq!(seqs(&got), [1, 2, 3], "buffered: {buffered}");
            assert_eq!(got[1].1, vec![7u8; 5000]);
        }
    }

    proptest::proptest! {
        // Each case syncs a few writes to disk: fewer cases keep it quick.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// Whatever groups are written, directly or through the page cache,
        /// reading gives back every record, in order, with its bytes.
        #[test]
        fn written_groups_read_back_whole(
            groups in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec(proptest::num::u8::ANY, 0..6000),
                    1..4,
                ),
                1..6,
            ),
            buffered in proptest::bool::ANY,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut j = journal(dir.path());
            if buffered {
                j.buffered_only();
            }
            let mut expected = Vec::new();
            for group in &groups {
                j.clear_staged();
                for payload in group {
                    j.stage(payload);
                    expected.push(payload.clone());
                }
                j.write_staged().unwrap();
            }
            let got = journal(dir.path()).read(0, u64::MAX).unwrap();
            let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
            let numbers: Vec<u64> = (1..=expected.len() as u64).collect();
            proptest::prop_assert_eq!(seqs, numbers);
            let payloads: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
            proptest::prop_assert_eq!(payloads, expected);
        }
    }

    proptest::proptest! {
        /// Whatever bytes the files hold, reading never panics and returns
        /// only records numbered one after the other.
        #[test]
        fn any_files_read_without_panic(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("j0"), &a).unwrap();
            std::fs::write(dir.path().join("j1"), &b).unwrap();
            let got = journal(dir.path()).read(0, u64::MAX).unwrap();
            for pair in got.windows(2) {
                proptest::prop_assert_eq!(pair[1].0, pair[0].0 + 1);
            }
        }
    }
}
