//! The shared parts: what every HTTP handler (ingest, admin, health) and the
//! janitor hold, built once by `app` and passed down. It sits below the
//! routers and above the stages it names (store, deliver's views, metrics),
//! so `ingest` and `admin` need nothing from `app`, which mounts them.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::deliver::breaker::Breakers;
use crate::model::Wake;
use crate::store::Store;
use crate::telemetry::Metrics;

/// What every HTTP handler shares.
pub struct Shared {
    /// The running configuration; a reload replaces it (`app::Reloader`).
    pub(crate) config: tokio::sync::watch::Sender<Arc<Config>>,
    /// The config file's reload state, when ferry runs from a file.
    pub reloads: std::sync::OnceLock<Arc<crate::reload::Reloads>>,
    /// Each route's shadow comparisons (shown by the admin API).
    pub shadows: Arc<crate::deliver::shadow::Shadows>,
    pub store: Store,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Wakes idle workers after a commit.
    pub wake: Wake,
    /// Each system's circuit breaker (shown by the admin API).
    pub breakers: Arc<Breakers>,
    /// Each system's daily quota as last reported, where low-priority routes
    /// pause (shown by the admin API).
    pub quotas: Arc<crate::deliver::quota::Quotas>,
    /// Each system's in-flight limit (adaptive or fixed; shown by the admin API).
    pub concurrency: Arc<crate::deliver::adaptive::Limits>,
    /// Each system's hold from a platform's Retry-After or rate-limit
    /// headers (shown by the admin API, explaining waiting deliveries).
    pub holds: Arc<crate::deliver::hold::Holds>,
    /// The encrypted credential store's versions, as last read.
    pub vault: Arc<crate::vault::Vault>,
    /// The console's sign-in throttle and password-check permits.
    pub sign_ins: crate::access::SignIns,
    /// The janitor's upkeep rounds so far (it counts the whole queue only
    /// every `app::FULL_COUNT_EVERY` rounds).
    pub(crate) rounds: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The running configuration (a handler reads it once per request).
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }
}

pub type AppState = Arc<Shared>;
