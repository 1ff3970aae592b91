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
//! after it starts sending). [`LowPause`] (`limits::quota`) is pure: times are passed in.

use super::Deliverer;
use crate::config::{Config, Priority, System};
pub use crate::limits::quota::{Change, LowPause, Status};
use crate::store::Claimed;

/// A [`LowPause`] per system with `pause_low_at`, shared by the worker loops
/// and the admin API.
pub type Quotas = super::PerSystem<LowPause>;

impl Quotas {
    pub fn new(config: &Config) -> Quotas {
        Quotas::build(config, |s| Some(LowPause::new(s.pause_low_at?)))
    }

    /// After a reload: each system keeps its quota view by name.
    pub fn reload(&self, config: &Config) {
        self.reconcile(config, |s| Some(LowPause::new(s.pause_low_at?)))
    }

    pub fn status(&self, system: &str, now_ms: i64) -> Option<Status> {
        self.with(system, |p| p.status(now_ms))
    }
}

impl Deliverer {
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
        let config = self.config();
        let low = |d: &Claimed| {
            config
                .routes
                .get(&d.route)
                .is_some_and(|r| r.destination.priority == Priority::Low)
        };
        let (wait, go): (Vec<_>, Vec<_>) = claimed.into_iter().partition(low);
        self.hand_back(wait, until).await;
        go
    }
}

pub(super) fn log_change(system: &System, change: Change, now_ms: i64) {
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
