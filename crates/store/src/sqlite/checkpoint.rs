//! The background checkpointer: copies committed WAL frames into the database
//! file on its own connection, so the writer's commits never pay for it.
//!
//! A PASSIVE checkpoint never blocks the writer or readers. It ends when the
//! store is dropped (its weak handle stops upgrading).

use std::{sync::Weak, time::Duration};

use super::Readers;

pub(super) fn spawn(readers: Weak<Readers>, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tributary-sqlite-checkpoint".into())
        .spawn(move || {
            let conn = match readers.upgrade().map(|r| rusqlite::Connection::open(&r.path)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "SQLite checkpointer could not open the database; the writer checkpoints instead.");
                    return;
                }
                None => return,
            };
            loop {
                std::thread::sleep(every);
                if readers.upgrade().is_none() {
                    return;
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; will retry.");
                }
            }
        })?;
    Ok(())
}
