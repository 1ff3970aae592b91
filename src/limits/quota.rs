//! A system's view of its daily quota, for pausing low-priority routes:
//! [`LowPause`] keeps the last reading an answer gave (`dialect::daily_usage`)
//! and says whether routes with `priority = "low"` wait, and until when.
//! Pure: times are passed in. `deliver::quota` holds one per system with
//! `rate_limit.pause_low_at` and hands paused deliveries back; why a view and
//! a hand-back rather than a filter in the claim is written there.

use serde::Serialize;

use super::dialect::Usage;

/// A change in whether a system's low-priority routes wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The usage reached the share; low-priority routes wait until `until_ms`.
    Paused { until_ms: i64, usage: Usage },
    /// The quota reset (by its time, or an answer showing it lower).
    Resumed,
}

/// One system's view of its daily quota, for pausing low-priority routes.
#[derive(Debug, Clone)]
pub struct LowPause {
    /// `pause_low_at`: the share of the quota from which low routes wait.
    share: f64,
    /// The last answer's reading.
    last: Option<Usage>,
    paused: bool,
}

/// What the admin API shows of a system's quota.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = QuotaStatus)]
pub struct Status {
    pub pause_low_at: f64,
    pub used: Option<u64>,
    pub limit: Option<u64>,
    /// While low-priority routes wait: until when.
    pub low_paused_until_ms: Option<i64>,
}

impl LowPause {
    pub fn new(share: f64) -> LowPause {
        LowPause {
            share,
            last: None,
            paused: false,
        }
    }

    /// Takes an answer's reading.
    pub fn observe(&mut self, usage: Usage, now_ms: i64) -> Option<Change> {
        self.last = Some(usage);
        let pause = usage.share() >= self.share && usage.resets_at_ms > now_ms;
        self.set(pause, usage)
    }

    /// Until when low-priority deliveries wait, or `None` when they may go.
    /// A reading past its reset time no longer counts.
    pub fn paused_until(&mut self, now_ms: i64) -> (Option<i64>, Option<Change>) {
        let Some(usage) = self.last else {
            return (None, None);
        };
        let change = match self.paused && usage.resets_at_ms <= now_ms {
            true => self.set(false, usage),
            false => None,
        };
        (self.paused.then_some(usage.resets_at_ms), change)
    }

    pub fn status(&mut self, now_ms: i64) -> Status {
        let (until, _) = self.paused_until(now_ms);
        Status {
            pause_low_at: self.share,
            used: self.last.map(|u| u.used),
            limit: self.last.map(|u| u.limit),
            low_paused_until_ms: until,
        }
    }

    fn set(&mut self, pause: bool, usage: Usage) -> Option<Change> {
        if pause == self.paused {
            return None;
        }
        self.paused = pause;
        Some(match pause {
            true => Change::Paused {
                until_ms: usage.resets_at_ms,
                usage,
            },
            false => Change::Resumed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const MIDNIGHT: i64 = 1_767_225_600_000;
    const DAY: i64 = 86_400_000;

    fn usage(used: u64, limit: u64) -> Usage {
        Usage {
            used,
            limit,
            resets_at_ms: MIDNIGHT + DAY,
        }
    }

    #[test]
    fn low_routes_pause_at_the_share_and_resume_at_the_reset() {
        let t = MIDNIGHT + 1_000;
        let mut p = LowPause::new(0.9);
        assert_eq!(p.paused_until(t), (None, None), "no reading yet");
        assert_eq!(p.observe(usage(89, 100), t), None);
        assert_eq!(p.paused_until(t), (None, None));
        assert_eq!(
            p.observe(usage(90, 100), t),
            Some(Change::Paused {
                until_ms: MIDNIGHT + DAY,
                usage: usage(90, 100)
            }),
            "at the share exactly"
        );
        assert_eq!(p.observe(usage(95, 100), t + 1), None, "once");
        assert_eq!(p.paused_until(t + 2), (Some(MIDNIGHT + DAY), None));
        assert_eq!(p.status(t + 2).low_paused_until_ms, Some(MIDNIGHT + DAY));
        // Midnight: the reading is stale, low routes go again.
        assert_eq!(
            p.paused_until(MIDNIGHT + DAY),
            (None, Some(Change::Resumed))
        );
        assert_eq!(p.paused_until(MIDNIGHT + DAY + 1), (None, None));
        // A fresh reading below the share resumes too (the quota grew, or reset early).
        let mut p = LowPause::new(0.5);
        p.observe(usage(60, 100), t);
        assert_eq!(p.observe(usage(60, 1000), t + 1), Some(Change::Resumed));
        assert_eq!(p.status(t + 1).used, Some(60));
    }

    #[test]
    fn a_share_of_one_pauses_only_on_a_spent_quota() {
        let mut p = LowPause::new(1.0);
        assert_eq!(p.observe(usage(99, 100), MIDNIGHT), None);
        assert!(p.observe(usage(100, 100), MIDNIGHT).is_some());
    }
}
