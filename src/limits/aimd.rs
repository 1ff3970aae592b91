//! Adaptive concurrency (AIMD) per system, after Vector's adaptive request
//! concurrency: with `rate_limit.adaptive = true` a system's worker loop
//! (`deliver::adaptive`) starts only as many requests as the system's current limit allows, a
//! limit that moves between 1 and `max_concurrency` with what its answers say
//! (`deliver::answer` feeds it each answer next to the breaker's `observe`).
//!
//! Answers are taken in windows about one round trip long (the baseline RTT).
//! At a window's end the limit
//! - is cut to ×0.9 (at least −1, never below 1) when the window saw
//!   back-pressure (a 429, a 503 or a timeout) or a mean RTT above the
//!   baseline × (1 + [`TOLERANCE`]);
//! - else grows by 1 (never above the max) if the window's requests filled
//!   the limit: growing a limit that is not used would only let a later burst
//!   in at full width.
//!
//! ×0.9 rather than TCP's ×0.5: one cut per window, however many of its
//! answers pushed back, already answers a burst of 429s once; the rate is held
//! separately (`Retry-After`, the dialect's holds), so the limit only has to
//! find the platform's width, and a gentle cut keeps the throughput while the
//! next window tells whether it was enough (Vector's default, too).
//!
//! The baseline is an EWMA of the windows' mean RTTs without back-pressure,
//! so it follows a platform that gets slower for good. [`Aimd`] is pure: times
//! and RTTs are passed in; `deliver::adaptive::Limits` holds one per adaptive system.

/// A window's mean RTT above baseline × (1 + this) counts as back-pressure;
/// at or below it, the window may grow the limit.
pub const TOLERANCE: f64 = 0.5;
/// The cut on back-pressure.
pub const DECREASE_RATIO: f64 = 0.9;
/// Weight of a new window's mean RTT in the baseline.
const EWMA_ALPHA: f64 = 0.4;
/// Shortest window, so a very fast platform is not judged on one answer.
const MIN_WINDOW_MS: i64 = 10;

/// What one answer says about the platform's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// It answered, after this long.
    Answered { rtt_ms: i64 },
    /// A 429, a 503 or a timeout: it is overloaded or says so.
    BackPressure,
}

/// One system's controller.
#[derive(Debug, Clone)]
pub struct Aimd {
    max: usize,
    limit: usize,
    /// EWMA of the windows' mean RTTs (ms); `None` until a first window ends.
    baseline_ms: Option<f64>,
    window_start_ms: i64,
    rtt_sum_ms: f64,
    answers: u32,
    back_pressure: bool,
    /// Whether the requests in flight reached the limit during the window.
    reached_limit: bool,
}

impl Aimd {
    /// Starts at a limit of 1, like a new TCP connection: it climbs fast
    /// enough (one per round trip) and never opens with a burst.
    pub fn new(max: usize, now_ms: i64) -> Aimd {
        Aimd {
            max: max.max(1),
            limit: 1,
            baseline_ms: None,
            window_start_ms: now_ms,
            rtt_sum_ms: 0.0,
            answers: 0,
            back_pressure: false,
            reached_limit: false,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn baseline_ms(&self) -> Option<f64> {
        self.baseline_ms
    }

    /// Takes one answer; `in_flight` counts the requests toward the system
    /// when it came (itself included). Returns `(from, to)` when the limit moved.
    pub fn observe(
        &mut self,
        now_ms: i64,
        signal: Signal,
        in_flight: usize,
    ) -> Option<(usize, usize)> {
        self.reached_limit |= in_flight >= self.limit;
        match signal {
            Signal::Answered { rtt_ms } => {
                self.rtt_sum_ms += rtt_ms.max(0) as f64;
                self.answers += 1;
            }
            Signal::BackPressure => self.back_pressure = true,
        }
        let length = self
            .baseline_ms
            .map_or(0, |b| b.ceil() as i64)
            .max(MIN_WINDOW_MS);
        if now_ms - self.window_start_ms < length {
            return None;
        }
        self.end_window(now_ms)
    }

    fn end_window(&mut self, now_ms: i64) -> Option<(usize, usize)> {
        let mean = (self.answers > 0).then(|| self.rtt_sum_ms / f64::from(self.answers));
        let slow = match (mean, self.baseline_ms) {
            (Some(m), Some(b)) => m > b * (1.0 + TOLERANCE),
            _ => false,
        };
        let from = self.limit;
        if self.back_pressure || slow {
            let cut = (from as f64 * DECREASE_RATIO) as usize;
            self.limit = cut.min(from - 1).max(1);
        } else if self.reached_limit && mean.is_some() {
            self.limit = (from + 1).min(self.max);
        }
        if let (Some(m), false) = (mean, self.back_pressure) {
            self.baseline_ms = Some(match self.baseline_ms {
                Some(b) => b + EWMA_ALPHA * (m - b),
                None => m,
            });
        }
        self.window_start_ms = now_ms;
        self.rtt_sum_ms = 0.0;
        self.answers = 0;
        self.back_pressure = false;
        self.reached_limit = false;
        (self.limit != from).then_some((from, self.limit))
    }
}

#[cfg(test)]
#[path = "aimd_tests.rs"]
mod tests;
