//! Adaptive concurrency per system: each system with `rate_limit.adaptive`
//! has an AIMD controller (`limits::aimd`, pure) whose limit the worker step
//! reads before it claims; `deliver::answer` feeds it every answer. Shared by
//! the worker loops, the admin API and the metrics.

use super::Deliverer;
use crate::config::{Config, System};
pub use crate::limits::aimd::{Aimd, DECREASE_RATIO, Signal, TOLERANCE};

/// An [`Aimd`] per system with `rate_limit.adaptive`, shared by the worker
/// loops, the admin API and the metrics.
pub type Limits = super::PerSystem<Aimd>;

impl Limits {
    pub fn new(config: &Config, now_ms: i64) -> Limits {
        Limits::build(config, |s| {
            s.adaptive.then(|| Aimd::new(s.max_concurrency, now_ms))
        })
    }

    /// After a reload: each adaptive system keeps its limit by name.
    pub fn reload(&self, config: &Config, now_ms: i64) {
        self.reconcile(config, |s| {
            s.adaptive.then(|| Aimd::new(s.max_concurrency, now_ms))
        })
    }

    /// The in-flight limit toward `system` now: its controller's, or
    /// `max_concurrency` when it is not adaptive.
    pub fn limit(&self, system: &System) -> usize {
        self.with(&system.name, |a| a.limit())
            .unwrap_or(system.max_concurrency)
    }
}

impl Deliverer {
    /// Requests toward `system` in flight now (those holding a place).
    pub(super) fn in_flight(&self, system: &System) -> usize {
        self.current().per_system.get(&system.name).map_or(0, |p| {
            system.max_concurrency.saturating_sub(p.available_permits())
        })
    }
}
