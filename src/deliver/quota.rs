//! Daily quotas and route priority: between a worker loop's claim and its
//! request budget (`pace`). A platform with a daily quota (Salesforce, HubSpot)
//! reports how much of it is spent on every answer (`dialect::daily_usage`);
//! each system with `rate_limit.pause_low_at` keeps the last such reading
//! here, in memory. While it is at or past that share, deliveries of
//! `priority = "low"` routes that a loop claims are handed back, due when the
//! quota resets (not attempted, not dead), and normal routes go on until the
//! quota itself is spent, which `dialect::hold_until` then holds.
//!
//! Why a per-instance view and a hand-back, not a filter in the store's
//! claim: the reading arrives with each answer, so it is always as fresh as
//! the last request; the claim stays one query shared by both backends; and a
//! paused delivery is handed back once, due at the reset, so it is not claimed
//! again before then. The cost: under a large low-priority backlog one claim
//! per batch of paused deliveries is spent handing them back, and another
//! instance pauses only when its own answers show the usage (one answer
//! after it starts sending). [`LowPause`] is pure: times are passed in.

use axum::http::HeaderMap;
use serde::Serialize;

use super::Deliverer;
use crate::config::{Config, Priority, System};
use crate::limits::dialect::{self, Usage};
use crate::store::Claimed;

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
#[derive(Debug, Clone, Serialize, PartialEq)]
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

/// A [`LowPause`] per system with `pause_low_at`, shared by the worker loops
/// and the admin API.
pub type Quotas = super::PerSystem<LowPause>;

impl Quotas {
    pub fn new(config: &Config) -> Quotas {
        Quotas::build(config, |s| Some(LowPause::new(s.pause_low_at?)))
    }

    pub fn status(&self, system: &str, now_ms: i64) -> Option<Status> {
        self.with(system, |p| p.status(now_ms))
    }
}

impl Deliverer {
    /// Reads the daily quota off an answer (next to `heed`), logging a pause
    /// or a resume of the system's low-priority routes.
    pub(super) fn note_usage(&self, system: &System, headers: &HeaderMap, now_ms: i64) {
        let Some(usage) = dialect::daily_usage(system.dialect, headers, now_ms) else {
            return;
        };
        if let Some(Some(change)) = self.quotas.with(&system.name, |p| p.observe(usage, now_ms)) {
            log_change(system, change, now_ms);
        }
    }

    /// Hands back the claimed deliveries of low-priority routes while their
    /// system's quota is past `pause_low_at`, due when it resets; returns the
    /// others.
    pub(super) async fn set_aside_low(
        &self,
        system: &System,
        claimed: Vec<Claimed>,
        now_ms: i64,
    ) -> Vec<Claimed> {
        let Some((until, change)) = self.quotas.with(&system.name, |p| p.paused_until(now_ms))
        else {
            return claimed;
        };
        if let Some(change) = change {
            log_change(system, change, now_ms);
        }
        let Some(until) = until else {
            return claimed;
        };
        let low = |d: &Claimed| {
            self.config
                .routes
                .get(&d.route)
                .is_some_and(|r| r.destination.priority == Priority::Low)
        };
        let (wait, go): (Vec<_>, Vec<_>) = claimed.into_iter().partition(low);
        self.hand_back(wait, until).await;
        go
    }
}

fn log_change(system: &System, change: Change, now_ms: i64) {
    match change {
        Change::Paused { until_ms, usage } => {
            tracing::warn!(system = %system.name, used = usage.used, limit = usage.limit, resume_in_ms = until_ms - now_ms, "Daily quota past pause_low_at: low-priority routes to this system wait until it resets; normal routes go on.")
        }
        Change::Resumed => {
            tracing::info!(system = %system.name, "Daily quota reset: low-priority routes to this system resume.")
        }
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
