//! The `local` sink's writes computed ahead, off the writer thread, for the
//! append that runs their action.

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
