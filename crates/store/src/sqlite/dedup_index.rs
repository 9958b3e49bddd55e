//! The writer's in-memory dedup index, grown one shard at a time.
//!
//! A hash map grows by moving every entry into a table twice the size, all
//! at once. At two million keys that took 68 ms in a process of its own,
//! and about 220 ms inside a loaded server. It ran on the writer thread, so
//! every append waited for it. The one long stall `bench-stalls.sh` found
//! in three sessions fell each time in the run during which the store
//! passed 1,835,008 keys, and no run since this change had one
//! (docs/PERFORMANCE.md, issue 19).
//!
//! So the index is [`SHARDS`] maps, by the hash's top bits. Between groups,
//! [`DedupIndex::grow_ahead`] doubles at most one shard that is three
//! quarters full, before the map would grow by itself at seven eighths.
//! Each growth then moves a sixty-fourth of the keys.

use std::collections::HashMap;

/// How many maps the index is split into.
const SHARDS: usize = 64;

/// Scope hash -> expiry (ms), for every key whose window has not passed.
///
/// Only the expiry: the map holds every key of the window (a million keys
/// is under a minute at full speed). An entry with its event id took 48
/// bytes (a ULID is 16-byte aligned) against 16, which, with the table
/// doubling as it grows, put a 60 s full-speed run at 216 MiB against 110
/// (docs/PERFORMANCE.md, "Memory over a longer run"). Repeats are rare; they
/// pay one indexed read of `dedup_log`.
pub(super) struct DedupIndex {
    shards: Vec<HashMap<i64, i64>>,
    /// Where [`DedupIndex::grow_ahead`] looks first: shards take turns.
    next: usize,
}

impl Default for DedupIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            next: 0,
        }
    }
}

/// The shard of `hash`: its top bits (scope hashes are SHA-256 bytes, so
/// every bit is as good as another).
fn shard_of(hash: i64) -> usize {
    ((hash as u64) >> (64 - SHARDS.trailing_zeros())) as usize
}

impl DedupIndex {
    /// The expiry of `hash`'s live key, if any.
    pub(super) fn get(&self, hash: i64) -> Option<i64> {
        self.shards[shard_of(hash)].get(&hash).copied()
    }

    /// Sets `hash`'s expiry.
    pub(super) fn insert(&mut self, hash: i64, expires_ms: i64) {
        self.shards[shard_of(hash)].insert(hash, expires_ms);
    }

    /// Keeps the keys `keep` says to keep.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(i64, i64) -> bool) {
        for shard in &mut self.shards {
            shard.retain(|h, e| keep(*h, *e));
        }
    }

    /// How many keys it holds.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    /// Doubles the first shard, in turn, that is three quarters full.
    /// Returns whether it grew one.
    pub(super) fn grow_ahead(&mut self) -> bool {
        for step in 0..SHARDS {
            let i = (self.next + step) % SHARDS;
            let shard = &mut self.shards[i];
            if shard.len() >= 1_024 && shard.len() * 4 >= shard.capacity() * 3 {
                shard.reserve(shard.capacity());
                self.next = (i + 1) % SHARDS;
                return true;
            }
        }
        false
    }
}

impl Extend<(i64, i64)> for DedupIndex {
    fn extend<T: IntoIterator<Item = (i64, i64)>>(&mut self, keys: T) {
        for (hash, expires_ms) in keys {
            self.insert(hash, expires_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    proptest! {
        /// The same answers as one map.
        #[test]
        fn behaves_as_one_map(ops in proptest::collection::vec((any::<i64>(), 0..100_i64, any::<bool>()), 0..400), cut in 0..100_i64) {
            let mut index = DedupIndex::default();
            let mut model = HashMap::new();
            for (hash, expires, grow) in &ops {
                index.insert(*hash, *expires);
                model.insert(*hash, *expires);
                if *grow {
                    index.grow_ahead();
                }
            }
            index.retain(|_, e| e > cut);
            model.retain(|_, e| *e > cut);
            prop_assert_eq!(index.len(), model.len());
            for (hash, _, _) in &ops {
                prop_assert_eq!(index.get(*hash), model.get(hash).copied());
            }
        }
    }
}
