//! How much of the refused traffic is written down, and how much is logged.
//!
//! A refused request costs its sender nothing, so what Tributary keeps of it
//! must be bounded by Tributary, not by the sender: entries per second, bytes
//! per minute and bytes per day in the store ([`RejectedLogBudget`]), and
//! lines per second in the process log ([`LogGate`]). What a budget refuses is
//! counted in metrics, so a flood is visible without being stored.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// At most this many rejected requests a second are written to the event
/// log; beyond it they are only counted.
pub const REJECTED_LOG_PER_SECOND: u64 = 100;
/// At most this many bytes of rejected-request entries a minute.
pub const REJECTED_LOG_BYTES_PER_MINUTE: u64 = 1024 * 1024;
/// At most this many bytes of rejected-request entries a day, so the
/// rejected log of one process holds at most this times the retention days.
pub const REJECTED_LOG_BYTES_PER_DAY: u64 = 32 * 1024 * 1024;

/// Why an entry was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetRefusal {
    /// Over [`REJECTED_LOG_PER_SECOND`].
    PerSecond,
    /// Over the bytes-per-minute budget.
    BytesPerMinute,
    /// Over the bytes-per-day budget.
    BytesPerDay,
}

impl BudgetRefusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerSecond => "per_second",
            Self::BytesPerMinute => "bytes_per_minute",
            Self::BytesPerDay => "bytes_per_day",
        }
    }
}

/// A window that counts up to a limit and starts over when its time is up.
#[derive(Debug)]
struct Window {
    length: Duration,
    started: Instant,
    used: u64,
    limit: u64,
}

impl Window {
    fn new(length: Duration, limit: u64, now: Instant) -> Self {
        Self {
            length,
            started: now,
            used: 0,
            limit,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.started) >= self.length {
            self.started = now;
            self.used = 0;
        }
    }

    fn fits(&self, amount: u64) -> bool {
        self.used.saturating_add(amount) <= self.limit
    }
}

/// The rejected log's budgets: entries a second, bytes a minute, bytes a day.
#[derive(Debug)]
pub struct RejectedLogBudget {
    windows: Mutex<[Window; 3]>,
}

impl RejectedLogBudget {
    /// The budgets given.
    pub fn new(per_second: u64, bytes_per_minute: u64, bytes_per_day: u64) -> Self {
        let now = Instant::now();
        Self {
            windows: Mutex::new([
                Window::new(Duration::from_secs(1), per_second, now),
                Window::new(Duration::from_secs(60), bytes_per_minute, now),
                Window::new(Duration::from_secs(86_400), bytes_per_day, now),
            ]),
        }
    }

    /// Takes room for one entry of `bytes`, or says which budget is spent.
    /// A refused entry takes nothing.
    pub fn take(&self, bytes: u64) -> Result<(), BudgetRefusal> {
        self.take_at(bytes, Instant::now())
    }

    fn take_at(&self, bytes: u64, now: Instant) -> Result<(), BudgetRefusal> {
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for window in w.iter_mut() {
            window.roll(now);
        }
        let [second, minute, day] = &mut *w;
        if !second.fits(1) {
            return Err(BudgetRefusal::PerSecond);
        }
        if !minute.fits(bytes) {
            return Err(BudgetRefusal::BytesPerMinute);
        }
        if !day.fits(bytes) {
            return Err(BudgetRefusal::BytesPerDay);
        }
        second.used += 1;
        minute.used += bytes;
        day.used += bytes;
        Ok(())
    }
}

impl Default for RejectedLogBudget {
    fn default() -> Self {
        Self::new(
            REJECTED_LOG_PER_SECOND,
            REJECTED_LOG_BYTES_PER_MINUTE,
            REJECTED_LOG_BYTES_PER_DAY,
        )
    }
}

/// At most this many lines a second pass a [`LogGate`].
pub const LOG_LINES_PER_SECOND: u64 = 20;

/// Lets a repeated log line through at most so many times a second and
/// counts the rest, so a flood of bad requests cannot flood the log.
#[derive(Debug)]
pub struct LogGate {
    state: Mutex<GateState>,
    per_second: u64,
}

#[derive(Debug)]
struct GateState {
    window: Instant,
    passed: u64,
    suppressed: u64,
}

/// What a [`LogGate`] says about one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Write it; `suppressed` lines were held back since the last one written
    /// (say so in the line).
    Pass {
        /// Lines not written since the last line written.
        suppressed: u64,
    },
    /// Do not write it.
    Hold,
}

impl LogGate {
    /// A gate passing `per_second` lines a second.
    pub fn new(per_second: u64) -> Self {
        Self {
            state: Mutex::new(GateState {
                window: Instant::now(),
                passed: 0,
                suppressed: 0,
            }),
            per_second,
        }
    }

    /// Whether to write the next line.
    pub fn check(&self) -> Gate {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Gate {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(s.window) >= Duration::from_secs(1) {
            s.window = now;
            s.passed = 0;
        }
        if s.passed >= self.per_second {
            s.suppressed += 1;
            return Gate::Hold;
        }
        s.passed += 1;
        Gate::Pass {
            suppressed: std::mem::take(&mut s.suppressed),
        }
    }
}

impl Default for LogGate {
    fn default() -> Self {
        Self::new(LOG_LINES_PER_SECOND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_refuses_once_spent_and_refills_with_its_window() {
        let budget = RejectedLogBudget::new(3, 1_000, 1_500);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.take_at(100, t0), Ok(()));
        }
        assert_eq!(budget.take_at(100, t0), Err(BudgetRefusal::PerSecond));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(budget.take_at(800, t1), Err(BudgetRefusal::BytesPerMinute));
        assert_eq!(budget.take_at(700, t1), Ok(()));
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(budget.take_at(600, t2), Err(BudgetRefusal::BytesPerDay));
        assert_eq!(budget.take_at(500, t2), Ok(()));
        let t3 = t0 + Duration::from_secs(86_401);
        assert_eq!(budget.take_at(900, t3), Ok(()));
    }

    #[test]
    fn the_gate_passes_a_few_lines_a_second_and_reports_the_rest() {
        let gate = LogGate::new(2);
        let t0 = Instant::now();
        assert_eq!(gate.check_at(t0), Gate::Pass { suppressed: 0 });
        assert_eq!(gate.check_at(t0), Gate::Pass { suppressed: 0 });
        for _ in 0..5 {
            assert_eq!(gate.check_at(t0), Gate::Hold);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(gate.check_at(t1), Gate::Pass { suppressed: 5 });
        assert_eq!(gate.check_at(t1), Gate::Pass { suppressed: 0 });
    }
}
