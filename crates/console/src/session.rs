//! Console sessions: random ids held in this process's memory, each with its
//! own CSRF token, an idle expiry and a cap on how many exist. A restart
//! signs everyone out, and each replica has its own sessions.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tributary_core::Secret;

/// A session unused this long is gone.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions held at once; signing in beyond it ends the session
/// unused the longest.
pub const MAX_SESSIONS: usize = 1_000;

/// Failed sign-ins allowed per window, across all clients; beyond it every
/// sign-in is refused until the window ends.
pub const SIGN_IN_FAILURES_PER_WINDOW: u32 = 10;

/// The window [`SIGN_IN_FAILURES_PER_WINDOW`] counts over.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);

/// 32 random bytes, hex: 256 bits from the thread's CSPRNG.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A signed-in operator's session, as a handler sees it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The token every state-changing request of this session must carry.
    pub(crate) csrf: Secret,
}

struct Entry {
    csrf: Secret,
    last_seen: Instant,
}

/// Every live session of this process.
pub(crate) struct Sessions {
    entries: Mutex<HashMap<String, Entry>>,
    idle: Duration,
    cap: usize,
}

impl Sessions {
    pub(crate) fn new(idle: Duration, cap: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            idle,
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session; returns its id (the cookie's value).
    pub(crate) fn create(&self, now: Instant) -> String {
        let id = random_token();
        let mut entries = self.lock();
        let idle = self.idle;
        entries.retain(|_, e| now.saturating_duration_since(e.last_seen) < idle);
        if entries.len() >= self.cap
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            id.clone(),
            Entry {
                csrf: Secret::new(random_token()),
                last_seen: now,
            },
        );
        id
    }

    /// The live session with this id, its idle clock restarted.
    pub(crate) fn touch(&self, id: &str, now: Instant) -> Option<Session> {
        self.find(id, now, true)
    }

    /// The live session with this id, its idle clock left alone: a page's
    /// own polling must not keep a forgotten tab signed in forever.
    pub(crate) fn peek(&self, id: &str, now: Instant) -> Option<Session> {
        self.find(id, now, false)
    }

    fn find(&self, id: &str, now: Instant, restart_idle: bool) -> Option<Session> {
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        if now.saturating_duration_since(entry.last_seen) >= self.idle {
            entries.remove(id);
            return None;
        }
        if restart_idle {
            entry.last_seen = now;
        }
        Some(Session {
            csrf: entry.csrf.clone(),
        })
    }

    /// Ends a session.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Counts failed sign-ins in fixed windows, for every client together: a
/// guesser is slowed to [`SIGN_IN_FAILURES_PER_WINDOW`] tries a minute
/// whatever addresses it uses (the price: during such an attack the
/// operator waits for the window too).
pub(crate) struct SignInLimit {
    state: Mutex<(Instant, u32)>,
    per_window: u32,
    window: Duration,
}

impl SignInLimit {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        Self {
            state: Mutex::new((Instant::now(), 0)),
            per_window,
            window,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Instant, u32)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a sign-in may be tried now.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if now.saturating_duration_since(state.0) >= self.window {
            *state = (now, 0);
        }
        state.1 < self.per_window
    }

    /// Counts a failed sign-in.
    pub(crate) fn failed(&self, now: Instant) {
        let mut state = self.lock();
        if now.saturating_duration_since(state.0) >= self.window {
            *state = (now, 0);
        }
        state.1 = state.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_random_and_distinct() {
        let sessions = Sessions::new(SESSION_IDLE, MAX_SESSIONS);
        let now = Instant::now();
        let a = sessions.create(now);
        let b = sessions.create(now);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let (sa, sb) = (
            sessions.touch(&a, now).unwrap(),
            sessions.touch(&b, now).unwrap(),
        );
        assert_ne!(sa.csrf.expose(), sb.csrf.expose());
    }

    #[test]
    fn an_idle_session_expires_and_a_used_one_lives_on() {
        let sessions = Sessions::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        let id = sessions.create(t0);
        assert!(sessions.touch(&id, t0 + Duration::from_secs(9)).is_some());
        assert!(sessions.touch(&id, t0 + Duration::from_secs(18)).is_some());
        assert!(sessions.touch(&id, t0 + Duration::from_secs(29)).is_none());
        assert!(sessions.touch(&id, t0 + Duration::from_secs(30)).is_none());
    }

    #[test]
    fn polling_does_not_keep_a_session_alive() {
        let sessions = Sessions::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        let id = sessions.create(t0);
        for s in 1..10 {
            assert!(sessions.peek(&id, t0 + Duration::from_secs(s)).is_some());
        }
        assert!(sessions.peek(&id, t0 + Duration::from_secs(10)).is_none());
    }

    #[test]
    fn the_cap_evicts_the_session_unused_longest() {
        let sessions = Sessions::new(SESSION_IDLE, 2);
        let t0 = Instant::now();
        let first = sessions.create(t0);
        let second = sessions.create(t0 + Duration::from_secs(1));
        sessions.touch(&first, t0 + Duration::from_secs(2));
        let third = sessions.create(t0 + Duration::from_secs(3));
        assert_eq!(sessions.len(), 2);
        let now = t0 + Duration::from_secs(4);
        assert!(sessions.touch(&second, now).is_none());
        assert!(sessions.touch(&first, now).is_some());
        assert!(sessions.touch(&third, now).is_some());
    }

    #[test]
    fn removed_sessions_are_gone() {
        let sessions = Sessions::new(SESSION_IDLE, 10);
        let now = Instant::now();
        let id = sessions.create(now);
        sessions.remove(&id);
        assert!(sessions.touch(&id, now).is_none());
    }

    #[test]
    fn failures_beyond_the_limit_close_sign_in_until_the_window_ends() {
        let limit = SignInLimit::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limit.allows(t0));
            limit.failed(t0);
        }
        assert!(!limit.allows(t0 + Duration::from_secs(59)));
        assert!(limit.allows(t0 + Duration::from_secs(61)));
    }
}
