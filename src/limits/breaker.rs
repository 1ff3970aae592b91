//! The circuit breaker per system: the first gate a worker loop passes before
//! it claims work toward a system (then the request budget, `pace`). While a
//! platform keeps failing (network errors, timeouts, 5xx), sending it more
//! only spends retry budgets and piles load on it, so the breaker opens:
//! messages wait in the queue, not failed and not dead, and one probe per
//! `open_for` interval asks whether the platform is back.
//!
//! The state machine is pure (times are passed in) so every window and
//! interval is tested on injected time; `deliver::breaker::Breakers` holds
//! one per system for the workers, the admin API and the metrics. Each
//! instance keeps its own;
//! when one opens, the worker also holds the system's shared request budget
//! (`store.hold`), so no instance sends until the probe is due.

use std::collections::VecDeque;

use serde::Serialize;

/// Buckets the failure window is cut into: the ratio forgets a tenth of the
/// window at a time.
const BUCKETS: i64 = 10;

/// When a system's breaker opens and how long it stays open
/// (`circuit_breaker` in a system's table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Share of failed requests in the window that opens the breaker.
    pub failure_ratio: f64,
    /// How far back requests count.
    pub window_ms: i64,
    /// Fewer requests than this in the window never open it.
    pub min_requests: u32,
    /// How long it stays open before one probe is let through (and the
    /// least time between two probes).
    pub open_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            failure_ratio: 0.5,
            window_ms: 30_000,
            min_requests: 20,
            open_ms: 30_000,
        }
    }
}

/// What one answered (or unanswered) request says about the platform's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It answered, whatever the answer (a 4xx is the message's fault).
    Up,
    /// No answer, a timeout or a 5xx.
    Down,
    /// A 429: alive but over budget; the rate limiter deals with it.
    Busy,
}

impl Health {
    /// How an HTTP status counts.
    pub fn of_status(status: u16) -> Health {
        match status {
            429 => Health::Busy,
            500.. => Health::Down,
            _ => Health::Up,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// What a worker loop may do toward the system now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send as the budget allows.
    Free,
    /// Half-open: send exactly one request, the probe (report it with
    /// [`Breaker::observe`], or [`Breaker::no_probe`] if there was nothing
    /// to send).
    Probe,
    /// Open, or a probe is out: send nothing before this time.
    WaitUntil(i64),
}

/// A state change, for logs, metrics and the shared hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Opened (from closed, or a probe failed); closed again no earlier than `until`.
    Opened {
        until_ms: i64,
    },
    HalfOpened,
    Closed,
}

/// One system's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: Policy,
    state: CircuitState,
    since_ms: i64,
    /// Open: when the next probe may go. Half-open: when the probe went.
    at_ms: i64,
    probe_out: bool,
    /// (bucket index, requests, failures), oldest first.
    window: VecDeque<(i64, u32, u32)>,
}

/// What the admin API shows of a breaker.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = CircuitStatus)]
pub struct Status {
    pub state: CircuitState,
    pub since_ms: i64,
    /// Open: when the next probe may go.
    pub probe_at_ms: Option<i64>,
    pub window_requests: u32,
    pub window_failures: u32,
}

impl Breaker {
    pub fn new(policy: Policy, now_ms: i64) -> Breaker {
        Breaker {
            policy,
            state: CircuitState::Closed,
            since_ms: now_ms,
            at_ms: 0,
            probe_out: false,
            window: VecDeque::new(),
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Whether the worker may send now; an open breaker whose interval has
    /// passed turns half-open here, and a probe handed out is counted.
    pub fn admit(&mut self, now_ms: i64) -> (Admission, Option<Transition>) {
        match self.state {
            CircuitState::Closed => (Admission::Free, None),
            CircuitState::Open if now_ms < self.at_ms => (Admission::WaitUntil(self.at_ms), None),
            CircuitState::Open => {
                self.to(CircuitState::HalfOpen, now_ms);
                self.probe_out = true;
                self.at_ms = now_ms;
                (Admission::Probe, Some(Transition::HalfOpened))
            }
            CircuitState::HalfOpen => {
                // A probe still out after a whole interval (hung, or its
                // verdict lost) does not block the system forever.
                let next = self.at_ms + self.policy.open_ms;
                if self.probe_out && now_ms < next {
                    return (Admission::WaitUntil(next), None);
                }
                self.probe_out = true;
                self.at_ms = now_ms;
                (Admission::Probe, None)
            }
        }
    }

    /// The probe handed out found nothing to send.
    pub fn no_probe(&mut self) {
        if self.state == CircuitState::HalfOpen {
            self.probe_out = false;
        }
    }

    /// Counts one request's outcome.
    pub fn observe(&mut self, now_ms: i64, health: Health) -> Option<Transition> {
        match self.state {
            CircuitState::Closed => {
                if health == Health::Busy {
                    return None;
                }
                self.count(now_ms, health == Health::Down);
                let (requests, failures) = self.totals();
                let tripped = requests >= self.policy.min_requests
                    && f64::from(failures) >= self.policy.failure_ratio * f64::from(requests);
                tripped.then(|| self.open(now_ms))
            }
            CircuitState::HalfOpen => match health {
                Health::Down => Some(self.open(now_ms)),
                Health::Up | Health::Busy => {
                    self.to(CircuitState::Closed, now_ms);
                    self.window.clear();
                    Some(Transition::Closed)
                }
            },
            // Answers to requests sent before it opened say nothing new.
            CircuitState::Open => None,
        }
    }

    pub fn status(&self, now_ms: i64) -> Status {
        let (window_requests, window_failures) = self.totals_at(now_ms);
        Status {
            state: self.state,
            since_ms: self.since_ms,
            probe_at_ms: (self.state == CircuitState::Open).then_some(self.at_ms),
            window_requests,
            window_failures,
        }
    }

    fn open(&mut self, now_ms: i64) -> Transition {
        self.to(CircuitState::Open, now_ms);
        self.probe_out = false;
        self.at_ms = now_ms + self.policy.open_ms;
        self.window.clear();
        Transition::Opened {
            until_ms: self.at_ms,
        }
    }

    fn to(&mut self, state: CircuitState, now_ms: i64) {
        self.state = state;
        self.since_ms = now_ms;
    }

    fn width(&self) -> i64 {
        (self.policy.window_ms / BUCKETS).max(1)
    }

    fn count(&mut self, now_ms: i64, failed: bool) {
        let idx = now_ms.div_euclid(self.width());
        while self.window.front().is_some_and(|b| b.0 <= idx - BUCKETS) {
            self.window.pop_front();
        }
        match self.window.back_mut() {
            Some(b) if b.0 == idx => {
                b.1 += 1;
                b.2 += u32::from(failed);
            }
            _ => self.window.push_back((idx, 1, u32::from(failed))),
        }
    }

    fn totals(&self) -> (u32, u32) {
        self.window
            .iter()
            .fold((0, 0), |(r, f), b| (r + b.1, f + b.2))
    }

    fn totals_at(&self, now_ms: i64) -> (u32, u32) {
        let idx = now_ms.div_euclid(self.width());
        self.window
            .iter()
            .filter(|b| b.0 > idx - BUCKETS)
            .fold((0, 0), |(r, f), b| (r + b.1, f + b.2))
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
