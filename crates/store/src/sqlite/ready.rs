//! The `local` sink's writes computed ahead, off the writer thread, for the
//! append that runs their action.

use crate::local::LocalKey;
use crate::model::LocalEffect;

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
    /// With exactly one user assumed, the writes and their effect when that
    /// user does not exist (a trigger for one recipient never identified:
    /// no run, or a run for the objects it also names).
    /// Every outcome is then decided here, so the writer needs neither the
    /// payload nor a second computation from what it read.
    pub(super) if_missing: Option<(Vec<RowWrite>, LocalEffect)>,
}

impl Ahead {
    /// Whether the writer can run the action from this alone, whichever
    /// users exist.
    pub(super) fn decides_every_case(&self) -> bool {
        self.users.is_empty() || self.if_missing.is_some()
    }
}
