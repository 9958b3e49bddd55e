//! The writer's in-memory dedup index: eight bytes per live key, grown one
//! shard at a time.
//!
//! **Eight bytes.** The index holds every key whose window has not passed:
//! with the default 24-hour window that is every event of a day, so its
//! entry size is the store's memory per event. An entry is one `u64`: 22
//! bits of the key's hash above the `dedup_log` row that recorded it (its
//! `seq`, 42 bits: four trillion rows). So the index is a filter, not the
//! answer: a probe gives the rows of the entries that share the hash's bits,
//! and reading those rows (by their key, one seek each) says which, if any,
//! is the key's. Two keys sharing their bits therefore both stay exact, at
//! the price of a read; by the arithmetic, one in about 200 new keys pays it
//! with 1.4 million keys held, one in 18 with 15 million. Entries of 16
//! bytes (the whole hash and the expiry), in a map that also keeps a control
//! byte per slot and doubles as it grows, put a 10-second batch run at 151
//! MiB (docs/PERFORMANCE.md, issue 19). An entry leaves with its row, when
//! `dedup_log` is pruned.
//!
//! **One shard at a time.** A hash table grows by moving every entry into a
//! table twice the size, all at once. At two million keys that took 68 ms
//! in a process of its own, and about 220 ms inside a loaded server, on the
//! writer thread, so every append waited for it. So the index is
//! [`SHARDS`] tables, by the hash's top bits. Between groups,
//! [`DedupIndex::grow_ahead`] doubles at most one shard that is three
//! quarters full, before the table would grow by itself at seven eighths.
//! Each growth then moves a sixty-fourth of the keys.

use std::collections::HashMap;

use hashbrown::HashTable;

/// How many tables the index is split into, by the hash's top bits.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// The hash's bits an entry keeps, after the shard's.
const FRAGMENT_BITS: u32 = 22;
/// The bits of an entry's `dedup_log` row number.
const ROW_BITS: u32 = 64 - FRAGMENT_BITS;
const ROW_MASK: u64 = (1 << ROW_BITS) - 1;

pub(super) struct DedupIndex {
    /// Entries: fragment << [`ROW_BITS`] | row. A fragment may have
    /// several (keys sharing it, and a replaced key until its old row is
    /// pruned).
    shards: Vec<HashTable<u64>>,
    /// The keys whose row number does not fit in an entry (past four
    /// trillion rows), whole: hash -> row.
    outliers: HashMap<i64, i64>,
    /// Where [`DedupIndex::grow_ahead`] looks first: shards take turns.
    next: usize,
}

impl Default for DedupIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
            outliers: HashMap::new(),
            next: 0,
        }
    }
}

/// The shard of `hash`: its top bits (scope hashes are SHA-256 bytes, so
/// every bit is as good as another).
fn shard_of(hash: i64) -> usize {
    ((hash as u64) >> (64 - SHARD_BITS)) as usize
}

/// The bits of `hash` an entry keeps: the ones after the shard's.
fn fragment_of(hash: i64) -> u64 {
    ((hash as u64) >> (64 - SHARD_BITS - FRAGMENT_BITS)) & ((1 << FRAGMENT_BITS) - 1)
}

/// Where an entry sits in its table: the fragment, spread over 64 bits (the
/// table takes its slot from the low bits and a tag from the top seven).
/// Fragments are uniform, and an odd multiplier keeps the low bits a
/// permutation of theirs.
fn table_hash(entry: &u64) -> u64 {
    (entry >> ROW_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn row_of(entry: u64) -> i64 {
    (entry & ROW_MASK) as i64
}

/// `hash`'s entry for `row`, when the row number fits in one.
fn entry_of(hash: i64, row: i64) -> Option<u64> {
    let row = u64::try_from(row).ok().filter(|r| *r <= ROW_MASK)?;
    Some(fragment_of(hash) << ROW_BITS | row)
}

impl DedupIndex {
    /// The `dedup_log` rows that may hold `hash`'s live key: those of every
    /// entry sharing its bits. Empty (and unallocated) for a key the index
    /// has never seen.
    pub(super) fn candidates(&self, hash: i64) -> Vec<i64> {
        let fragment = fragment_of(hash);
        let probe = fragment << ROW_BITS;
        let mut found: Vec<i64> = self.shards[shard_of(hash)]
            .iter_hash(table_hash(&probe))
            .filter(|e| *e >> ROW_BITS == fragment)
            .map(|e| row_of(*e))
            .collect();
        if !self.outliers.is_empty()
            && let Some(row) = self.outliers.get(&hash)
        {
            found.push(*row);
        }
        found
    }

    /// Records that `row` of `dedup_log` holds a key with `hash`. A row is
    /// recorded once: when the writer inserts it, or when the index is
    /// loaded.
    pub(super) fn insert(&mut self, hash: i64, row: i64) {
        let Some(entry) = entry_of(hash, row) else {
            self.outliers.insert(hash, row);
            return;
        };
        self.shards[shard_of(hash)].insert_unique(table_hash(&entry), entry, table_hash);
    }

    /// Forgets `row` of `dedup_log`, which held a key with `hash` (the row
    /// was pruned).
    pub(super) fn remove(&mut self, hash: i64, row: i64) {
        let Some(entry) = entry_of(hash, row) else {
            if self.outliers.get(&hash) == Some(&row) {
                self.outliers.remove(&hash);
            }
            return;
        };
        if let Ok(found) =
            self.shards[shard_of(hash)].find_entry(table_hash(&entry), |e| *e == entry)
        {
            found.remove();
        }
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(HashTable::len).sum::<usize>() + self.outliers.len()
    }

    /// The bytes its tables hold (an outlier counted at a table slot's 17).
    pub(super) fn allocated_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(HashTable::allocation_size)
            .sum::<usize>()
            + self.outliers.capacity() * 17
    }

    /// Doubles the first shard, in turn, that is three quarters full.
    /// Returns whether it grew one.
    pub(super) fn grow_ahead(&mut self) -> bool {
        for step in 0..SHARDS {
            let i = (self.next + step) % SHARDS;
            let shard = &mut self.shards[i];
            if shard.len() >= 1_024 && shard.len() * 4 >= shard.capacity() * 3 {
                shard.reserve(shard.capacity(), table_hash);
                self.next = (i + 1) % SHARDS;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A hash in `shard` whose fragment is `fragment`, the other bits `low`.
    fn hash_with(shard: u64, fragment: u64, low: u64) -> i64 {
        (shard << (64 - SHARD_BITS)
            | fragment << (64 - SHARD_BITS - FRAGMENT_BITS)
            | low & ((1 << (64 - SHARD_BITS - FRAGMENT_BITS)) - 1)) as i64
    }

    #[test]
    fn growing_ahead_keeps_every_shard_from_growing_by_itself() {
        let mut index = DedupIndex::default();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut grew_by_itself = 0;
        for n in 0..400_000_i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hash = x as i64;
            let shard = &index.shards[shard_of(hash)];
            let before = shard.capacity();
            index.insert(hash, n);
            if index.shards[shard_of(hash)].capacity() != before && before >= 2_048 {
                grew_by_itself += 1;
            }
            // A group every 50 keys.
            if n % 50 == 0 {
                index.grow_ahead();
            }
        }
        assert_eq!(index.len(), 400_000);
        assert_eq!(grew_by_itself, 0, "a shard grew inside an insert");
    }

    #[test]
    fn keys_sharing_their_bits_each_keep_their_row() {
        let mut index = DedupIndex::default();
        let a = hash_with(5, 77, 1);
        let b = hash_with(5, 77, 2);
        index.insert(a, 1_000);
        index.insert(b, 2_000);
        assert_eq!(index.len(), 2);
        let mut found = index.candidates(a);
        found.sort_unstable();
        assert_eq!(found, [1_000, 2_000]);
        assert_eq!(index.candidates(b).len(), 2);
        // Another shard, or other bits, share nothing.
        assert!(index.candidates(hash_with(6, 77, 1)).is_empty());
        assert!(index.candidates(hash_with(5, 78, 1)).is_empty());
        index.remove(a, 1_000);
        assert_eq!(index.candidates(a), [2_000]);
        // Removing what is not there changes nothing.
        index.remove(a, 1_000);
        index.remove(hash_with(5, 78, 1), 2_000);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_row_an_entry_cannot_hold_is_kept_whole() {
        let mut index = DedupIndex::default();
        let hash = hash_with(1, 2, 3);
        let far = 1_i64 << ROW_BITS;
        index.insert(hash, far);
        index.insert(hash_with(1, 2, 4), 7);
        let mut found = index.candidates(hash);
        found.sort_unstable();
        assert_eq!(found, [7, far]);
        assert_eq!(index.len(), 2);
        // Only the row it holds removes it.
        index.remove(hash, far + 1);
        assert_eq!(index.len(), 2);
        index.remove(hash, far);
        assert_eq!(index.candidates(hash), [7]);
    }

    proptest! {
        /// Every row inserted and not removed is among its key's candidates,
        /// and every candidate is a live row of a key sharing the bits. Rows
        /// are numbered as `dedup_log` numbers them (each holds one key),
        /// some past what an entry holds; a removal prunes a live row.
        #[test]
        fn every_live_row_is_among_its_keys_candidates(
            ops in proptest::collection::vec(
                (0..4_u64, 0..8_u64, any::<u64>(), any::<bool>(), 0..4_u8, any::<bool>()),
                0..400,
            ),
        ) {
            let mut index = DedupIndex::default();
            let mut model: Vec<(i64, i64)> = Vec::new();
            let mut next_row = 1_i64;
            for (shard, fragment, low, far, action, grow) in &ops {
                if *action == 0 && !model.is_empty() {
                    let (hash, row) = model.remove(*low as usize % model.len());
                    index.remove(hash, row);
                } else {
                    let hash = hash_with(*shard, *fragment, *low);
                    let row = if *far { next_row + (1 << ROW_BITS) } else { next_row };
                    next_row += 1;
                    index.insert(hash, row);
                    // An outlier is kept per whole hash: the last row wins.
                    if entry_of(hash, row).is_none() {
                        model.retain(|(h, r)| !(*h == hash && entry_of(*h, *r).is_none()));
                    }
                    model.push((hash, row));
                }
                if *grow {
                    index.grow_ahead();
                }
            }
            for (hash, row) in &model {
                let found = index.candidates(*hash);
                prop_assert!(found.contains(row), "{hash}: {row} not in {found:?}");
                for r in &found {
                    prop_assert!(model.iter().any(|(h, x)| x == r
                        && shard_of(*h) == shard_of(*hash)
                        && (fragment_of(*h) == fragment_of(*hash) || h == hash)));
                }
            }
            prop_assert_eq!(index.len(), model.len());
        }
    }
}
