//! The store's one error type.

/// Everything the store can fail with. The service maps [`StoreError::Overloaded`]
/// to 429 and the fault variants ([`StoreError::is_unavailable`]) to 503.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The commit queue is full: shed load and ask the sender to retry.
    #[error("the store's commit queue is full")]
    Overloaded,
    /// The disk (or the database server's disk) is full.
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// Another process holds a lock on the database for too long.
    #[error("the database is locked: {0}")]
    Locked(String),
    /// The database file is corrupt or not a database.
    #[error("the database is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached (lost PostgreSQL connection, pool timeout,
    /// unopenable file). PostgreSQL connections are re-established by the pool.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Concurrent transactions conflicted (deadlock, serialization failure)
    /// and retries did not resolve it; the request may be retried.
    #[error("concurrent writes conflicted: {0}")]
    Conflict(String),
    /// The store was shut down or its writer stopped.
    #[error("the store is closed")]
    Closed,
    /// A schema migration failed.
    #[error("migration {version} ({name}) failed: {reason}")]
    Migration {
        /// The migration's version.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The database was written by a newer Tributary than this one.
    #[error("the database schema is at version {found}; this build knows up to {known}")]
    SchemaTooNew {
        /// Version found in the database.
        found: u32,
        /// Latest version this build knows.
        known: u32,
    },
    /// A referenced row does not exist.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// What was looked up (`action`, `audience`, ...).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The action's lease expired and another worker (or none) holds it now.
    #[error("action `{action_id}` is not leased by `{owner}` any more")]
    LeaseLost {
        /// The action.
        action_id: String,
        /// The caller that thought it held the lease.
        owner: String,
    },
    /// An argument the caller passed is unusable.
    #[error("invalid `{field}`: {problem}")]
    InvalidInput {
        /// The argument.
        field: &'static str,
        /// The problem.
        problem: String,
    },
    /// A configuration revision was committed on top of `base` after the
    /// caller read it: re-read and try again.
    #[error("configuration revision {base} is no longer the newest")]
    RevisionTaken {
        /// The revision the change was made against.
        base: u64,
    },
    /// A stored value could not be decoded (written by something else, or a bug).
    #[error("stored data in `{field}` is unreadable: {problem}")]
    Decode {
        /// Table and column.
        field: &'static str,
        /// The problem.
        problem: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// The refusals a write finds before it writes anything (a lost lease,
    /// a missing record, bad input; both backends check these first): one
    /// item of a batch refused this way leaves the others to go on.
    pub(crate) fn refused_before_writing(&self) -> bool {
        matches!(
            self,
            Self::LeaseLost { .. }
                | Self::NotFound { .. }
                | Self::InvalidInput { .. }
                | Self::RevisionTaken { .. }
        )
    }

    /// True for faults the service answers with 503: the request may succeed
    /// later, nothing was stored.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::DiskFull(_)
                | Self::Locked(_)
                | Self::Corrupt(_)
                | Self::Unavailable(_)
                | Self::Closed
                | Self::Conflict(_)
                | Self::Database(_)
        )
    }

    /// A copy for every caller of a failed group commit (the error is not `Clone`
    /// because the drivers' errors are not).
    pub fn replicate(&self) -> Self {
        match self {
            Self::Overloaded => Self::Overloaded,
            Self::DiskFull(s) => Self::DiskFull(s.clone()),
            Self::Locked(s) => Self::Locked(s.clone()),
            Self::Corrupt(s) => Self::Corrupt(s.clone()),
            Self::Unavailable(s) => Self::Unavailable(s.clone()),
            Self::Closed => Self::Closed,
            Self::Conflict(s) => Self::Conflict(s.clone()),
            Self::Migration {
                version,
                name,
                reason,
            } => Self::Migration {
                version: *version,
                name,
                reason: reason.clone(),
            },
            Self::SchemaTooNew { found, known } => Self::SchemaTooNew {
                found: *found,
                known: *known,
            },
            Self::NotFound { what, id } => Self::NotFound {
                what,
                id: id.clone(),
            },
            Self::LeaseLost { action_id, owner } => Self::LeaseLost {
                action_id: action_id.clone(),
                owner: owner.clone(),
            },
            Self::InvalidInput { field, problem } => Self::InvalidInput {
                field,
                problem: problem.clone(),
            },
            Self::RevisionTaken { base } => Self::RevisionTaken { base: *base },
            Self::Decode { field, problem } => Self::Decode {
                field,
                problem: problem.clone(),
            },
            Self::Database(s) => Self::Database(s.clone()),
        }
    }

    pub(crate) fn decode(field: &'static str, problem: impl ToString) -> Self {
        Self::Decode {
            field,
            problem: problem.to_string(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull(e.to_string()),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Locked(e.to_string())
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                Self::Corrupt(e.to_string())
            }
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied,
            ) => Self::Unavailable(e.to_string()),
            _ => Self::Database(e.to_string()),
        }
    }
}

/// One item's outcome inside a call that handles many (attempt records,
/// local effects): a refusal found before the item wrote anything is that
/// item's result and the others go on; any other error fails the whole call.
pub(crate) fn item_result<T>(
    r: Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    match r {
        Err(e) if e.refused_before_writing() => Ok(Err(e)),
        other => other.map(Ok),
    }
}

/// The server's message and SQLSTATE when there is one (the driver's own
/// `Display` only says "db error"); otherwise the driver's message with its
/// causes, which say what actually went wrong ("error performing TLS
/// handshake" alone does not). Driver errors never carry the URL.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let text = describe(&e);
        if e.is_closed() {
            return Self::Unavailable(text);
        }
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => Self::DiskFull(text),
            Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
                Self::Corrupt(text)
            }
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::CONNECTION_FAILURE
                    || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                Self::Unavailable(text)
            }
            Some(c)
                if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                Self::Conflict(text)
            }
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => Self::Locked(text),
            // No SQLSTATE: an I/O or protocol error on the connection.
            None => Self::Unavailable(text),
            Some(_) => Self::Database(text),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_driver_error_keeps_its_cause() {
        // Nothing listens on port 1: the driver's own message is only
        // "error connecting to server"; the cause says why.
        let err = tokio_postgres::connect(
            "host=127.0.0.1 port=1 user=nobody password=hunter2 connect_timeout=5",
            tokio_postgres::NoTls,
        )
        .await
        .err()
        .expect("nothing listens on port 1");
        let text = StoreError::from(err).to_string();
        assert!(text.contains("error connecting to server"), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
