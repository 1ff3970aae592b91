//! The circuit breakers of the running workers: one per system with
//! `circuit_breaker` on ([`Breakers`]), read by the worker loops before they
//! claim, by the admin API and by the metrics. The state machine itself is
//! pure and lives with the other limit policies (`crate::limits::breaker`).

pub use crate::limits::breaker::*;

/// Every system's breaker (systems with `circuit_breaker = false` have none).
pub type Breakers = super::PerSystem<Breaker>;

impl Breakers {
    pub fn new(config: &crate::config::Config, now_ms: i64) -> Breakers {
        Breakers::build(config, |s| Some(Breaker::new(s.breaker?, now_ms)))
    }

    /// After a reload: each system keeps its breaker's state by name.
    pub fn reload(&self, config: &crate::config::Config, now_ms: i64) {
        self.reconcile(config, |s| Some(Breaker::new(s.breaker?, now_ms)))
    }

    pub fn admit(&self, system: &str, now_ms: i64) -> (Admission, Option<Transition>) {
        self.with(system, |b| b.admit(now_ms))
            .unwrap_or((Admission::Free, None))
    }

    pub fn no_probe(&self, system: &str) {
        self.with(system, Breaker::no_probe);
    }

    pub fn observe(&self, system: &str, now_ms: i64, health: Health) -> Option<Transition> {
        self.with(system, |b| b.observe(now_ms, health)).flatten()
    }

    pub fn status(&self, system: &str, now_ms: i64) -> Option<Status> {
        self.with(system, |b| b.status(now_ms))
    }
}
