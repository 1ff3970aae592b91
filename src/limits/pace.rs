//! Pace: the request budget of a destination as a GCRA ("generic cell rate
//! algorithm", the token bucket kept as one timestamp). The state is one
//! theoretical arrival time (TAT) per budget key, which the store keeps: in
//! memory on SQLite (one instance), in a row updated under a lock on
//! PostgreSQL, so every instance draws from the same budget.
//!
//! A worker loop reserves send times for the deliveries it has just claimed,
//! up to a short horizon ahead, and each delivery waits for its own time
//! before it is sent; what does not fit is put back, due when the budget
//! frees up. This module is the pure arithmetic, on microseconds.

/// A budget: one request per `interval_us`, with bursts of
/// `tolerance_us / interval_us + 1` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval_us: i64,
    pub tolerance_us: i64,
}

impl Rate {
    /// `per_second` requests a second, at most `burst` at once (at least 1).
    pub fn new(per_second: f64, burst: u32) -> Rate {
        let interval_us = (1e6 / per_second).round().max(1.0) as i64;
        Rate {
            interval_us,
            tolerance_us: interval_us * (i64::from(burst.max(1)) - 1),
        }
    }
}

impl Rate {
    /// The budget of a system that publishes none: every request conforms,
    /// unless a hold (a platform's "wait until") says otherwise.
    pub const UNLIMITED: Rate = Rate {
        interval_us: 1,
        tolerance_us: 1_000_000_000,
    };
}

/// The TAT after a platform said "nothing before `until_us`": the next slot
/// conforms no earlier than that.
pub fn held(tat: Option<i64>, until_us: i64, rate: Rate) -> i64 {
    tat.unwrap_or(i64::MIN)
        .max(until_us.saturating_add(rate.tolerance_us))
}

/// Send times granted to `count` requests: request `i` may go at
/// [`Grant::send_at_us`]`(i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub count: u32,
    now_us: i64,
    /// The first slot's conforming time (may be in the past).
    start_us: i64,
    interval_us: i64,
    /// When the next slot after this grant conforms: when to come back for
    /// the requests that did not fit.
    pub next_us: i64,
}

impl Grant {
    pub fn send_at_us(&self, i: u32) -> i64 {
        (self.start_us + i64::from(i) * self.interval_us).max(self.now_us)
    }

    /// Slot `i`'s send time in whole milliseconds, rounded up: a send is
    /// never earlier than its slot (truncating would send up to 1 ms early,
    /// which at 500 requests a second is half an interval).
    pub fn send_at_ms(&self, i: u32) -> i64 {
        ceil_ms(self.send_at_us(i))
    }

    /// [`Grant::next_us`] in whole milliseconds, rounded up.
    pub fn next_ms(&self) -> i64 {
        ceil_ms(self.next_us)
    }
}

fn ceil_ms(us: i64) -> i64 {
    us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
}

/// Reserves up to `want` slots whose send time is at most `horizon_us` after
/// `now_us`, given the stored TAT (`None`: never used). Returns the new TAT
/// to store and the grant.
pub fn reserve(
    tat: Option<i64>,
    now_us: i64,
    rate: Rate,
    want: u32,
    horizon_us: i64,
) -> (i64, Grant) {
    let eff = tat.map_or(now_us, |t| t.max(now_us));
    let start_us = eff - rate.tolerance_us;
    let room = now_us + horizon_us - start_us;
    let count = if room < 0 {
        0
    } else {
        (room / rate.interval_us + 1).min(i64::from(want)) as u32
    };
    let new_tat = eff + i64::from(count) * rate.interval_us;
    let grant = Grant {
        count,
        now_us,
        start_us,
        interval_us: rate.interval_us,
        next_us: (new_tat - rate.tolerance_us).max(now_us),
    };
    (new_tat, grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn a_fresh_budget_spaces_requests_by_the_interval() {
        let rate = Rate::new(10.0, 1);
        assert_eq!(rate.interval_us, 100_000);
        let (tat, g) = reserve(None, 5 * S, rate, 4, S);
        assert_eq!(g.count, 4);
        let times: Vec<i64> = (0..4).map(|i| g.send_at_us(i)).collect();
        assert_eq!(
            times,
            vec![5 * S, 5 * S + 100_000, 5 * S + 200_000, 5 * S + 300_000]
        );
        assert_eq!(tat, 5 * S + 400_000);
        assert_eq!(g.next_us, 5 * S + 400_000);
    }

    #[test]
    fn send_times_in_milliseconds_are_never_early() {
        // 3 a second: slots 333,333.3 µs apart, so most fall inside a millisecond.
        let rate = Rate::new(3.0, 1);
        let (_, g) = reserve(None, 5 * S + 1, rate, 3, S);
        for i in 0..3 {
            assert!(g.send_at_ms(i) * 1000 >= g.send_at_us(i), "slot {i}");
            assert!(g.send_at_ms(i) * 1000 - g.send_at_us(i) < 1000);
        }
        assert_eq!(g.send_at_ms(0), 5_001, "5 s + 1 µs goes at 5.001 s");
        assert!(g.next_ms() * 1000 >= g.next_us);
    }

    #[test]
    fn the_horizon_caps_how_far_ahead_a_grant_reaches() {
        let rate = Rate::new(10.0, 1);
        let (tat, g) = reserve(None, 0, rate, 100, S);
        assert_eq!(g.count, 11, "slots at 0, 0.1 s, ... 1.0 s");
        assert_eq!(tat, 1_100_000);
        // Right after, the next slot is 1.1 s away: beyond a 1 s horizon.
        let (tat2, g2) = reserve(Some(tat), 50_000, rate, 5, S);
        assert_eq!(g2.count, 0);
        assert_eq!(tat2, tat, "an empty grant changes nothing");
        assert_eq!(g2.next_us, 1_100_000);
    }

    #[test]
    fn a_burst_goes_at_once_then_the_interval_applies() {
        let rate = Rate::new(2.0, 5);
        let (_, g) = reserve(None, 0, rate, 7, 0);
        assert_eq!(g.count, 5, "five fit now, the sixth is 0.5 s away");
        assert!((0..5).all(|i| g.send_at_us(i) == 0));
        let (_, g) = reserve(None, 0, rate, 7, S);
        assert_eq!(g.count, 7);
        assert_eq!(g.send_at_us(5), 500_000);
        assert_eq!(g.send_at_us(6), S);
    }

    #[test]
    fn an_idle_budget_does_not_bank_more_than_its_burst() {
        let rate = Rate::new(1.0, 3);
        let (tat, _) = reserve(None, 0, rate, 1, 0);
        // An hour idle: still only three at once.
        let (_, g) = reserve(Some(tat), 3600 * S, rate, 10, 0);
        assert_eq!(g.count, 3);
    }

    #[test]
    fn grants_never_exceed_the_rate_over_any_span() {
        // Many small reservations at random moments, as several instances
        // would make them: the granted times never beat the budget.
        let rate = Rate::new(50.0, 1);
        let mut tat = None;
        let mut times = Vec::new();
        let mut now = 0;
        let mut seed = 7u64;
        while now < 10 * S {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            now += (seed >> 33) as i64 % 30_000;
            let want = 1 + (seed >> 40) as u32 % 8;
            let (t, g) = reserve(tat, now, rate, want, 200_000);
            tat = Some(t);
            times.extend((0..g.count).map(|i| g.send_at_us(i)));
        }
        times.sort_unstable();
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= rate.interval_us, "{} then {}", w[0], w[1]);
        }
    }

    #[test]
    fn a_hold_delays_every_slot_until_its_time() {
        for rate in [Rate::new(10.0, 5), Rate::UNLIMITED] {
            let (tat, g) = reserve(None, 0, rate, 3, S);
            assert_eq!(g.send_at_us(0), 0);
            let tat = held(Some(tat), 3 * S, rate);
            let (_, g) = reserve(Some(tat), 100, rate, 3, S);
            assert_eq!(g.count, 0, "3 s away is past the horizon");
            assert_eq!(g.next_us, 3 * S);
            let (_, g) = reserve(Some(tat), 2_500_000, rate, 3, S);
            assert!(g.count > 0 && g.send_at_us(0) == 3 * S);
            assert_eq!(
                held(Some(tat), S, rate),
                tat,
                "an earlier hold changes nothing"
            );
        }
    }

    #[test]
    fn the_unlimited_budget_grants_everything_now() {
        let (_, g) = reserve(None, 5 * S, Rate::UNLIMITED, 500, S);
        assert_eq!(g.count, 500);
        assert!((0..500).all(|i| g.send_at_us(i) == 5 * S));
    }

    #[test]
    fn tiny_intervals_do_not_round_to_zero() {
        assert_eq!(Rate::new(5_000_000.0, 1).interval_us, 1);
    }
}
