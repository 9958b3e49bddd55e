//! The `local` sink's writes computed ahead, off the writer thread, and the
//! cache that hands them to the round that runs their action.

use std::collections::HashMap;

use crate::local::LocalKey;

/// A local write with its data already serialized.
pub(super) enum RowWrite {
    Put(LocalKey, String),
    Delete(LocalKey),
}

/// Local writes computed ahead of the run, and the users they assume exist
/// (a trigger's recipients): they hold only if those users still exist when
/// the action runs (see [`ahead_holds`]).
pub(super) struct Ahead {
    pub(super) writes: Vec<RowWrite>,
    pub(super) users: Vec<LocalKey>,
}

/// Action id -> the `local` sink writes computed when it was appended, for
/// actions that read nothing (a trigger: the common case). The round that
/// runs the action takes them from here instead of decoding its plan and
/// building its records on the writer thread, which the caller's thread did
/// already. Only a cache: an action missing here (after a restart, a failed
/// group, or a cleared cache) has its writes computed from its plan, with
/// the same result, so entries never need to be durable or exact.
#[derive(Default)]
pub(super) struct ReadyLocal {
    writes: HashMap<String, Ahead>,
}

/// Entries kept at most. A round takes the entries of the actions it runs,
/// so the cache holds only the actions no round has reached yet; entries
/// nobody takes (an environment that stopped running locally, a group rolled
/// back) are dropped wholesale when it fills, which bounds the memory at a
/// few MiB.
const READY_LOCAL_MAX: usize = 8_192;

impl ReadyLocal {
    pub(super) fn put(&mut self, action_id: String, writes: Ahead) {
        if self.writes.len() >= READY_LOCAL_MAX {
            self.writes.clear();
        }
        self.writes.insert(action_id, writes);
    }

    pub(super) fn take(&mut self, action_id: &str) -> Option<Ahead> {
        self.writes.remove(action_id)
    }
}
