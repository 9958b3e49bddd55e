//! When to try a failed action again: exponential backoff with full jitter,
//! never sooner than the receiver's `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// Retry schedule for one sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits up to this long.
    pub base: Duration,
    /// No single wait is longer than this (a `Retry-After` may be, up to `max_retry_after`).
    pub cap: Duration,
    /// Attempts in all, the first included; after the last, the action fails.
    pub max_attempts: u32,
    /// The longest `Retry-After` honoured as given.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// 15 attempts, 2 s doubling to 30 min: about 3.5 hours of outage at the
    /// expected (jittered) delays before an action is marked failed, still
    /// replayable from the admin API after that.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(30 * 60),
        max_attempts: 15,
        max_retry_after: Duration::from_secs(6 * 3600),
    };

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones;
    /// `None` once they are used up.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.cap)
            .max(Duration::from_millis(1));
        // Full jitter: spreads a burst of failures so they do not retry in lockstep.
        let jittered = Duration::from_secs_f64(rng.random_range(0.0..=ceiling.as_secs_f64()));
        let floor = retry_after.map_or(Duration::ZERO, |r| r.min(self.max_retry_after));
        Some(jittered.max(floor))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn delays_grow_within_the_cap_and_stop_after_the_last_attempt() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            max_attempts: 6,
            max_retry_after: Duration::from_secs(60),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempts in 1..6 {
            let ceiling = Duration::from_secs(1 << (attempts - 1)).min(p.cap);
            for _ in 0..200 {
                let d = p.next_delay(attempts, None, &mut rng).unwrap();
                assert!(d <= ceiling, "attempt {attempts}: {d:?} > {ceiling:?}");
            }
        }
        assert_eq!(p.next_delay(6, None, &mut rng), None);
    }

    #[test]
    fn retry_after_is_a_floor_up_to_its_limit() {
        let p = RetryPolicy::DEFAULT;
        let mut rng = StdRng::seed_from_u64(1);
        let d = p
            .next_delay(1, Some(Duration::from_secs(90)), &mut rng)
            .unwrap();
        assert!(d >= Duration::from_secs(90));
        let huge = p
            .next_delay(1, Some(Duration::from_secs(10 * 86_400)), &mut rng)
            .unwrap();
        assert_eq!(huge, p.max_retry_after);
    }

    #[test]
    fn jitter_spreads_delays() {
        let p = RetryPolicy::DEFAULT;
        let mut rng = StdRng::seed_from_u64(3);
        let delays: std::collections::BTreeSet<_> = (0..50)
            .map(|_| p.next_delay(5, None, &mut rng).unwrap())
            .collect();
        assert!(delays.len() > 40);
    }
}
