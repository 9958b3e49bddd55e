//! The writer's in-memory dedup index: eight bytes per live key, grown one
//! shard at a time.
//!
//! **Eight bytes.** The index holds every key whose window has not passed:
//! with the default 24-hour window that is every event of a day, so its
//! entry size is the store's memory per event. An entry is one `u64`: 22
//! bits of the key's hash above its expiry in milliseconds (42 bits, good
//! until the year 2109). So the index is a filter, not the answer: a probe
//! gives the expiries of the entries that share the hash's bits, and
//! `dedup_log` (whose index is by expiry) says which, if any, is the key's.
//! Two keys sharing their bits therefore both stay exact, at the price of a
//! read; one in about 200 new keys pays it with 1.4 million keys held, one
//! in 18 with 15 million. Entries of 16 bytes (the whole hash and the
//! expiry), in a map that also keeps a control byte per slot and doubles as
//! it grows, put a 10-second batch run at 151 MiB (docs/PERFORMANCE.md,
//! issue 19).
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
/// The bits of an entry's expiry (ms since 1970).
const EXPIRY_BITS: u32 = 64 - FRAGMENT_BITS;
const EXPIRY_MASK: u64 = (1 << EXPIRY_BITS) - 1;

pub(super) struct DedupIndex {
    /// Entries: fragment << [`EXPIRY_BITS`] | expiry. A fragment may have
    /// several (keys sharing it, and a replaced key until it expires); an
    /// entry appears once.
    shards: Vec<HashTable<u64>>,
    /// The keys whose expiry does not fit in an entry (a window reaching
    /// past 2109, or a clock before 1970), whole.
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
    (entry >> EXPIRY_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn expiry_of(entry: u64) -> i64 {
    (entry & EXPIRY_MASK) as i64
}

impl DedupIndex {
    /// The expiries `hash`'s live key may have: every entry sharing its
    /// bits. Empty (and unallocated) for a key the index has never seen.
    pub(super) fn candidates(&self, hash: i64) -> Vec<i64> {
        let fragment = fragment_of(hash);
        let probe = fragment << EXPIRY_BITS;
        let mut found: Vec<i64> = self.shards[shard_of(hash)]
            .iter_hash(table_hash(&probe))
            .filter(|e| *e >> EXPIRY_BITS == fragment)
            .map(|e| expiry_of(*e))
            .collect();
        if !self.outliers.is_empty()
            && let Some(expires_ms) = self.outliers.get(&hash)
        {
            found.push(*expires_ms);
        }
        found
    }

    /// Records that `hash`'s key expires at `expires_ms`.
    pub(super) fn insert(&mut self, hash: i64, expires_ms: i64) {
        let Some(expiry) = u64::try_from(expires_ms).ok().filter(|e| *e <= EXPIRY_MASK) else {
            self.outliers.insert(hash, expires_ms);
            return;
        };
        let entry = fragment_of(hash) << EXPIRY_BITS | expiry;
        let shard = &mut self.shards[shard_of(hash)];
        let at = table_hash(&entry);
        if shard.find(at, |e| *e == entry).is_none() {
            shard.insert_unique(at, entry, table_hash);
        }
    }

    /// Drops the entries that expire at `at` or before.
    pub(super) fn expire(&mut self, at: i64) {
        for shard in &mut self.shards {
            shard.retain(|e| expiry_of(*e) > at);
        }
        self.outliers.retain(|_, e| *e > at);
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
            index.insert(hash, 1_800_000_000_000 + n);
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
    fn keys_sharing_their_bits_each_keep_their_expiry() {
        let mut index = DedupIndex::default();
        let a = hash_with(5, 77, 1);
        let b = hash_with(5, 77, 2);
        index.insert(a, 1_000);
        index.insert(b, 2_000);
        // Again: an entry appears once.
        index.insert(a, 1_000);
        assert_eq!(index.len(), 2);
        let mut found = index.candidates(a);
        found.sort_unstable();
        assert_eq!(found, [1_000, 2_000]);
        assert_eq!(index.candidates(b).len(), 2);
        // Another shard, or other bits, share nothing.
        assert!(index.candidates(hash_with(6, 77, 1)).is_empty());
        assert!(index.candidates(hash_with(5, 78, 1)).is_empty());
        index.expire(1_000);
        assert_eq!(index.candidates(a), [2_000]);
    }

    #[test]
    fn an_expiry_an_entry_cannot_hold_is_kept_whole() {
        let mut index = DedupIndex::default();
        let hash = hash_with(1, 2, 3);
        index.insert(hash, i64::MAX);
        index.insert(hash_with(1, 2, 4), -5);
        assert_eq!(index.candidates(hash), [i64::MAX]);
        assert_eq!(index.len(), 2);
        index.expire(0);
        assert_eq!(index.len(), 1);
        index.expire(i64::MAX);
        assert_eq!(index.len(), 0);
    }

    proptest! {
        /// Whatever was inserted and not expired is among a key's
        /// candidates, and nothing else there belongs to the key.
        #[test]
        fn every_live_key_is_among_its_candidates(
            ops in proptest::collection::vec(
                (0..4_u64, 0..8_u64, any::<u64>(), prop_oneof![0..100_i64, Just(i64::MAX)], any::<bool>()),
                0..400,
            ),
            cut in 0..100_i64,
        ) {
            let mut index = DedupIndex::default();
            let mut model: Vec<(i64, i64)> = Vec::new();
            for (shard, fragment, low, expires, grow) in &ops {
                let hash = hash_with(*shard, *fragment, *low);
                index.insert(hash, *expires);
                model.push((hash, *expires));
                if *grow {
                    index.grow_ahead();
                }
            }
            index.expire(cut);
            model.retain(|(_, e)| *e > cut);
            for (hash, expires) in &model {
                let found = index.candidates(*hash);
                prop_assert!(found.contains(expires), "{hash}: {expires} not in {found:?}");
                // Every candidate is the expiry of a live key sharing the
                // shard and the fragment.
                for e in &found {
                    prop_assert!(model.iter().any(|(h, x)| x == e
                        && shard_of(*h) == shard_of(*hash)
                        && (fragment_of(*h) == fragment_of(*hash) || h == hash)));
                }
            }
            let mut distinct: Vec<(usize, u64, i64)> = model
                .iter()
                .map(|(h, e)| {
                    let fits = (0..=EXPIRY_MASK as i64).contains(e);
                    // Outliers are kept per whole hash.
                    (if fits { shard_of(*h) } else { usize::MAX }, if fits { fragment_of(*h) } else { *h as u64 }, if fits { *e } else { 0 })
                })
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(index.len(), distinct.len());
        }
    }
}
