//! Deliver: the workers. Each system has its own worker loop, so a slow or
//! failing platform never holds up another's deliveries. A loop claims its
//! system's due deliveries from the store (a lease, so a crashed worker's work
//! comes back), reserves their send times against the system's request budget
//! (`pace`, shared by every instance) once the system's circuit breaker
//! admits it (`breaker`) and after setting aside low-priority routes while
//! the system's daily quota is nearly spent (`quota`), starts no more than
//! the system's in-flight limit allows (`max_concurrency`, or the `adaptive`
//! controller's limit below it), and takes each through the named
//! stages of `attempt`: prepare → wait for its time → send → decide
//! (`retry`) → record. A loop sleeps only when its claim comes back empty,
//! until new work is signalled ([`Wake`]) or its next retry is due. A loop is
//! one worker step (`step::Deliverer::tick`) plus the waiting it asks for;
//! tests call the same step through [`Deliverer::run_once`] to drain the
//! queue deterministically.

pub mod adaptive;
mod answer;
mod attempt;
pub mod batch;
mod batch_send;
pub mod breaker;
mod classify;
pub mod hold;
mod live;
mod plan;
mod prepare;
pub mod quota;
pub mod retry;
pub mod shadow;
mod step;
mod strays;

pub use crate::model::Wake;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{Config, System, SystemName};
use crate::limits::pace::Rate;
use crate::store::{RequestLog, ResponseLog, Store};
use crate::telemetry::Metrics;

/// Longest a worker loop sleeps before looking at the queue again on its own.
const IDLE_POLL_MS: i64 = 1_000;
/// How far ahead a loop reserves send times (and so how long a claimed
/// delivery may wait for its time under its lease).
const PACE_HORIZON_MS: i64 = 1_000;
/// What a lease adds to twice the slowest attempt: room to record the verdict.
const LEASE_MARGIN_MS: i64 = 5_000;
/// Most deliveries one claim takes.
const MAX_CLAIM: usize = 256;
/// How often the store is searched for work toward systems no longer in the
/// configuration (it is finished as dead, so it does not wait forever).
const STRAY_SWEEP_MS: i64 = 60_000;

/// A piece of state kept per system (a breaker, an adaptive limit, a quota
/// view), for the systems whose configuration asks for one; shared by the
/// worker loops, the admin API and the metrics. `std` locks: they are held
/// only for arithmetic, never across an await. A reload keeps each
/// system's state by name (`reconcile`).
pub struct PerSystem<T>(std::sync::RwLock<HashMap<SystemName, std::sync::Mutex<T>>>);

impl<T> PerSystem<T> {
    fn build(config: &Config, make: impl Fn(&System) -> Option<T>) -> PerSystem<T> {
        let p = PerSystem(Default::default());
        p.reconcile(config, make);
        p
    }

    /// After a reload: systems that still ask for a state keep theirs, new
    /// ones get one from `make`, the others lose theirs.
    fn reconcile(&self, config: &Config, make: impl Fn(&System) -> Option<T>) {
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        let mut kept = HashMap::new();
        for s in config.systems.values() {
            let Some(fresh) = make(s) else { continue };
            let state = all
                .remove(&s.name)
                .unwrap_or_else(|| std::sync::Mutex::new(fresh));
            kept.insert(s.name.clone(), state);
        }
        *all = kept;
    }

    /// Runs `f` on the system's state; `None` when it has none.
    fn with<R>(&self, system: &str, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        let m = all.get(system)?;
        Some(f(&mut m.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

/// What an attempt put on the wire and got back, for the attempt log.
#[derive(Clone)]
struct Observed {
    started_ms: i64,
    duration_ms: i64,
    request: RequestLog,
    response: Option<ResponseLog>,
}

impl Observed {
    /// An attempt that ended before anything was sent (mapping, config).
    fn nothing_sent(started_ms: i64) -> Observed {
        Observed {
            started_ms,
            duration_ms: 0,
            request: RequestLog::default(),
            response: None,
        }
    }

    /// What was sent and answered, as the attempt's record keeps it.
    fn of(attempt: &crate::connect::Attempt, started_ms: i64) -> Observed {
        Observed {
            started_ms,
            duration_ms: attempt.duration_ms,
            request: attempt.request.clone(),
            response: match &attempt.sent {
                crate::connect::Sent::Response { log, .. } => Some(log.clone()),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This many deliveries were attempted.
    Worked(usize),
    /// Nothing was due.
    Idle,
}

pub struct Deliverer {
    store: Store,
    /// The configuration and what is built from it; replaced by a reload.
    live: tokio::sync::watch::Sender<Arc<live::Generation>>,
    /// What every generation's connector shares: the vault's view, the
    /// clock and the OAuth2 tokens (so a reload keeps cached tokens).
    outbound: crate::connect::Outbound,
    clock: Clock,
    metrics: Arc<Metrics>,
    wake: Wake,
    breakers: Arc<breaker::Breakers>,
    /// Per system with `pause_low_at`, its daily quota as last reported.
    quotas: Arc<quota::Quotas>,
    /// Per system with `rate_limit.adaptive`, its in-flight limit (AIMD);
    /// the semaphore above stays at `max_concurrency`, the loop starts
    /// requests only below this limit.
    concurrency: Arc<adaptive::Limits>,
    /// Per system, the platform's hold in force (bounded, shown by the admin API).
    holds: Arc<hold::Holds>,
    /// Per route with a shadow mapping, its comparisons (shown by the admin API).
    shadows: Arc<shadow::Shadows>,
}

impl Deliverer {
    /// The workers over `store`, with each system's HTTP client, breaker,
    /// limit and quota view built from `config`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        clock: Clock,
        metrics: Arc<Metrics>,
        wake: Wake,
        vault: Arc<crate::vault::Vault>,
    ) -> Result<Deliverer, crate::connect::ConnectError> {
        let outbound = crate::connect::Outbound::new(vault, clock.clone())?;
        let breakers = Arc::new(breaker::Breakers::new(&config, clock.now_ms()));
        for s in config.systems.values().filter(|s| s.breaker.is_some()) {
            metrics.circuit_init(&s.name);
        }
        let quotas = Arc::new(quota::Quotas::new(&config));
        let concurrency = Arc::new(adaptive::Limits::new(&config, clock.now_ms()));
        for s in config.systems.values() {
            metrics.concurrency_limit(&s.name, concurrency.limit(s));
        }
        let generation = live::Generation::build(config, None, &outbound)?;
        Ok(Deliverer {
            live: tokio::sync::watch::Sender::new(Arc::new(generation)),
            outbound,
            store,
            clock,
            metrics,
            wake,
            breakers,
            quotas,
            concurrency,
            holds: Arc::default(),
            shadows: Arc::default(),
        })
    }

    /// Each system's circuit breaker (shown by the admin API).
    pub fn breakers(&self) -> Arc<breaker::Breakers> {
        self.breakers.clone()
    }

    /// The daily-quota views (shown by the admin API).
    pub fn quotas(&self) -> Arc<quota::Quotas> {
        self.quotas.clone()
    }

    /// The routes' shadow comparisons (shown by the admin API).
    pub fn shadows(&self) -> Arc<shadow::Shadows> {
        self.shadows.clone()
    }

    /// The platforms' holds in force (shown by the admin API).
    pub fn holds(&self) -> Arc<hold::Holds> {
        self.holds.clone()
    }

    /// The in-flight limits (shown by the admin API).
    pub fn concurrency(&self) -> Arc<adaptive::Limits> {
        self.concurrency.clone()
    }

    /// The worker loops, one per system: run until `shutdown`, then let
    /// in-flight attempts finish. A reload restarts the loops on the new
    /// configuration between their steps; attempts go on meanwhile.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let attempts = TaskTracker::new();
        let mut reloads = self.live.subscribe();
        loop {
            let generation = reloads.borrow_and_update().clone();
            let stop = shutdown.child_token();
            let loops = self.start_loops(&generation.config, &stop, &attempts);
            let reloaded = tokio::select! {
                _ = shutdown.cancelled() => false,
                changed = reloads.changed() => changed.is_ok(),
            };
            stop.cancel();
            loops.wait().await;
            if !reloaded {
                break;
            }
            tracing::info!("Worker loops restarted on the reloaded configuration.");
        }
        attempts.close();
        attempts.wait().await;
    }

    /// One loop per system of `config`, and the sweep for strays.
    fn start_loops(
        self: &Arc<Self>,
        config: &Config,
        stop: &CancellationToken,
        attempts: &TaskTracker,
    ) -> TaskTracker {
        let loops = TaskTracker::new();
        for system in config.systems.values() {
            let me = self.clone();
            let (system, stop, attempts) = (system.clone(), stop.clone(), attempts.clone());
            loops.spawn(async move { me.run_system(&system, stop, attempts).await });
        }
        let me = self.clone();
        let stop = stop.clone();
        loops.spawn(async move {
            loop {
                me.sweep_strays().await;
                if sleep_or_stop(STRAY_SWEEP_MS, &stop).await {
                    break;
                }
            }
        });
        loops.close();
        loops
    }

    /// Holds stored by an earlier run (deferred deliveries, PostgreSQL's
    /// shared budget) may predate `max_hold` or a shorter one: bound them
    /// now, so no hold from before a restart outlasts the cap.
    async fn bound_stored_waits(&self, system: &System) {
        let longest = system.retry.max_hold_ms.max(system.retry.max_delay_ms);
        let cap = self.clock.now_ms().saturating_add(longest.max(1));
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        match self
            .store
            .bound_waits(&system.name, &system.budget, cap, rate)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(system = %system.name, deliveries = n, "Deliveries were held past rate_limit.max_hold; they are due within it now.")
            }
            Err(e) => {
                tracing::warn!(system = %system.name, error = %crate::model::Chain(&e), "Bounding stored holds failed; some deliveries may wait longer than max_hold.")
            }
        }
    }
}

/// Sleeps `ms`; true when `shutdown` came first.
async fn sleep_or_stop(ms: i64, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)) => false,
        _ = shutdown.cancelled() => true,
    }
}
