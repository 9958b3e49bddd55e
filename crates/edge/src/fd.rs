//! The file-descriptor limit: raised at start, and the connection limit kept
//! under it so `accept` never fails for want of descriptors.

/// Descriptors kept for everything but client connections: the store's
/// files, the outbound HTTP clients' connections, logs.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft limit on open files to the hard limit where the system
/// allows it. Returns the soft limit now in effect (`None`: unlimited or
/// unknown).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let current = limit.current?;
        if limit.maximum.is_none_or(|max| max > current) {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum;
            }
        }
        Some(current)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection limit to use: `configured`, lowered to fit under the
/// soft file-descriptor limit `fd_limit` with [`FD_RESERVE`] (or half of
/// it, when it is small) kept for everything else.
pub fn fit_connections(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(fds) = fd_limit else {
        return configured.max(1);
    };
    let available = fds.saturating_sub(FD_RESERVE).max(fds / 2).max(1);
    configured
        .min(usize::try_from(available).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_fits_under_the_descriptors_with_a_reserve() {
        assert_eq!(fit_connections(10_000, None), 10_000);
        assert_eq!(fit_connections(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fit_connections(10_000, Some(4_096)), 4_096 - 256);
        // A small limit keeps half for connections rather than none.
        assert_eq!(fit_connections(10_000, Some(300)), 150);
        assert_eq!(fit_connections(10_000, Some(0)), 1);
        assert_eq!(fit_connections(0, None), 1);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        #[cfg(unix)]
        {
            use rustix::process::{Resource, getrlimit};
            let before = getrlimit(Resource::Nofile).current;
            let after = raise_fd_limit();
            match (before, after) {
                (Some(b), Some(a)) => assert!(a >= b),
                (None, after) => assert_eq!(after, None),
                (Some(_), None) => {}
            }
        }
    }
}
