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
//! until new work is signalled ([`Wake`]) or its next retry is due; tests call
//! [`Deliverer::run_once`] to drain the queue deterministically.

pub mod adaptive;
mod attempt;
pub mod batch;
mod batch_send;
pub mod breaker;
mod classify;
pub mod dialect;
pub mod hold;
pub mod pace;
mod plan;
pub mod quota;
pub mod retry;
mod strays;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{Config, System};
use crate::connect::Connector;
use crate::store::{RequestLog, ResponseLog, Store};
use crate::telemetry::Metrics;
use batch::Unit;
use breaker::Admission;
use pace::Rate;

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
/// worker loops, the admin API and the metrics. A `std` mutex: it is held
/// only for arithmetic, never across an await.
pub struct PerSystem<T>(HashMap<String, std::sync::Mutex<T>>);

impl<T> PerSystem<T> {
    fn build(config: &Config, make: impl Fn(&System) -> Option<T>) -> PerSystem<T> {
        PerSystem(
            config
                .systems
                .values()
                .filter_map(|s| Some((s.name.clone(), std::sync::Mutex::new(make(s)?))))
                .collect(),
        )
    }

    /// Runs `f` on the system's state; `None` when it has none.
    fn with<R>(&self, system: &str, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let m = self.0.get(system)?;
        Some(f(&mut m.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

/// Tells idle worker loops that work may be due. Every loop sees every
/// signal, and a signal sent while a loop is busy is not lost.
#[derive(Clone)]
pub struct Wake(Arc<watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Self {
        Wake(Arc::new(watch::Sender::new(0)))
    }
}

impl Wake {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
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
    config: Arc<Config>,
    connector: Connector,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Per-system caps (`rate_limit.max_concurrency`), the only ones: a
    /// cap shared by all systems would let one whose requests hang take
    /// every place and slow the others.
    per_system: HashMap<String, Arc<Semaphore>>,
    wake: Wake,
    lease_ms: i64,
    breakers: Arc<breaker::Breakers>,
    /// Per system, the most deliveries one request can carry (its largest
    /// `batch.max_items`, else 1): claims are sized in requests × this.
    per_request: HashMap<String, usize>,
    /// Per system with `pause_low_at`, its daily quota as last reported.
    quotas: Arc<quota::Quotas>,
    /// Per system with `rate_limit.adaptive`, its in-flight limit (AIMD);
    /// the semaphore above stays at `max_concurrency`, the loop starts
    /// requests only below this limit.
    concurrency: Arc<adaptive::Limits>,
    /// Per system, the platform's hold in force (bounded, shown by the admin API).
    holds: Arc<hold::Holds>,
}

impl Deliverer {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        connector: Connector,
        clock: Clock,
        metrics: Arc<Metrics>,
        wake: Wake,
        breakers: Arc<breaker::Breakers>,
    ) -> Deliverer {
        // A lease must outlive the slowest attempt, or a live send is re-claimed.
        let slowest = config
            .systems
            .values()
            .map(|s| s.timeout + s.connect_timeout)
            .max()
            .unwrap_or_default();
        let lease_ms = (slowest.as_millis() as i64) * 2 + PACE_HORIZON_MS + LEASE_MARGIN_MS;
        let per_request = plan::items_per_request(&config);
        let quotas = Arc::new(quota::Quotas::new(&config));
        let concurrency = Arc::new(adaptive::Limits::new(&config, clock.now_ms()));
        for s in config.systems.values() {
            metrics.concurrency_limit(&s.name, concurrency.limit(s));
        }
        Deliverer {
            per_system: config
                .systems
                .iter()
                .map(|(k, s)| (k.clone(), Arc::new(Semaphore::new(s.max_concurrency))))
                .collect(),
            store,
            config,
            connector,
            clock,
            metrics,
            wake,
            lease_ms,
            breakers,
            quotas,
            concurrency,
            per_request,
            holds: Arc::default(),
        }
    }

    /// The daily-quota views (shown by the admin API).
    pub fn quotas(&self) -> Arc<quota::Quotas> {
        self.quotas.clone()
    }

    /// The platforms' holds in force (shown by the admin API).
    pub fn holds(&self) -> Arc<hold::Holds> {
        self.holds.clone()
    }

    /// The in-flight limits (shown by the admin API).
    pub fn concurrency(&self) -> Arc<adaptive::Limits> {
        self.concurrency.clone()
    }

    /// Claims what is due now toward every system, delivers it all (at the
    /// times the budgets grant), and returns when every attempt is recorded.
    pub async fn run_once(self: &Arc<Self>) -> Result<Step, crate::store::StoreError> {
        let tasks = TaskTracker::new();
        let mut n = self.sweep_strays().await;
        for system in self.config.systems.values() {
            let now = self.clock.now_ms();
            let (requests, probe) = match self.admit(system, now).await {
                Admission::Free => (system.max_concurrency, false),
                Admission::Probe => (1, true),
                Admission::WaitUntil(_) => continue,
            };
            let claimed = self
                .store
                .claim(
                    &system.name,
                    now,
                    self.lease_ms,
                    self.claim_size(system, requests),
                )
                .await?;
            if claimed.is_empty() {
                self.breakers.no_probe(&system.name);
                continue;
            }
            let claimed = self.set_aside_low(system, claimed, now).await;
            if claimed.is_empty() {
                self.breakers.no_probe(&system.name);
                continue;
            }
            let units = self.form(system, claimed, now, requests, probe).await;
            let paced = self.pace(system, units, None).await;
            if probe && paced.go.is_empty() {
                self.breakers.no_probe(&system.name);
            }
            for (unit, at) in paced.go {
                n += match &unit {
                    Unit::One(_) => 1,
                    Unit::Batch(items) => items.len(),
                };
                let me = self.clone();
                tasks.spawn(async move { me.start(unit, at, None).await });
            }
            self.hand_back(paced.rest, paced.rest_due_ms).await;
        }
        tasks.close();
        tasks.wait().await;
        Ok(if n == 0 { Step::Idle } else { Step::Worked(n) })
    }

    /// The worker loops, one per system: run until `shutdown`, then let
    /// in-flight attempts finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let attempts = TaskTracker::new();
        let loops = TaskTracker::new();
        for system in self.config.systems.values() {
            let me = self.clone();
            let (system, shutdown, attempts) = (system.clone(), shutdown.clone(), attempts.clone());
            loops.spawn(async move { me.run_system(&system, shutdown, attempts).await });
        }
        let me = self.clone();
        let stop = shutdown.clone();
        loops.spawn(async move {
            loop {
                me.sweep_strays().await;
                if sleep_or_stop(STRAY_SWEEP_MS, &stop).await {
                    break;
                }
            }
        });
        loops.close();
        loops.wait().await;
        attempts.close();
        attempts.wait().await;
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
                tracing::warn!(system = %system.name, error = %e, "Bounding stored holds failed; some deliveries may wait longer than max_hold.")
            }
        }
    }

    async fn run_system(
        self: Arc<Self>,
        system: &System,
        shutdown: CancellationToken,
        attempts: TaskTracker,
    ) {
        let Some(permits) = self.per_system.get(&system.name).cloned() else {
            return;
        };
        self.bound_stored_waits(system).await;
        let mut wake = self.wake.subscribe();
        // The budget's theoretical arrival time as of this loop's last
        // reservation: claims are sized by it, so a spent budget is not
        // claimed only to be handed back.
        let mut tat_estimate: Option<i64> = None;
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        while !shutdown.is_cancelled() {
            // The semaphore holds max_concurrency places; an adaptive limit
            // below it leaves the difference unused.
            let limit = self.concurrency.limit(system);
            let free = limit.saturating_sub(self.in_flight(system));
            // Claim in chunks: under load, waiting for a quarter of the places
            // turns one claim per finished delivery into one per chunk.
            let chunk = (limit / 4).max(1);
            if free < chunk {
                let unused = system.max_concurrency.saturating_sub(limit);
                tokio::select! {
                    p = permits.acquire_many((unused + chunk) as u32) => drop(p),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let now = self.clock.now_ms();
            let probe = match self.admit(system, now).await {
                Admission::Free => false,
                Admission::Probe => true,
                Admission::WaitUntil(at) => {
                    // Open: the queue waits; a closing breaker wakes the loops.
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis((at - now).max(1) as u64)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let (_, g) = pace::reserve(
                tat_estimate,
                now * 1000,
                rate,
                u32::MAX,
                PACE_HORIZON_MS * 1000,
            );
            if g.count == 0 {
                // By this loop's last look the budget is spent (or held):
                // sleep until its next slot is within the horizon.
                let wait = (g.next_us / 1000 - PACE_HORIZON_MS - now).max(1);
                if sleep_or_stop(wait, &shutdown).await {
                    break;
                }
                continue;
            }
            let room = g.count as usize;
            wake.borrow_and_update();
            // Claim no more than can start now (`free` places): a claimed
            // delivery waiting for a place could outlive its lease.
            let requests = if probe {
                1
            } else {
                free.min(room).min(MAX_CLAIM)
            };
            let limit = self.claim_size(system, requests);
            let claim = self.store.claim(&system.name, now, self.lease_ms, limit);
            // An unlimited budget is only read (for a platform's hold), and
            // the read does not depend on what is claimed: do both at once.
            let (claimed, early) = if rate == Rate::UNLIMITED {
                let want = u32::try_from(limit).unwrap_or(u32::MAX);
                let read = self
                    .store
                    .reserve(&system.budget, now, rate, want, PACE_HORIZON_MS);
                let (c, g) = tokio::join!(claim, read);
                (c, Some(g))
            } else {
                (claim.await, None)
            };
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(system = %system.name, error = %e, "Claiming deliveries failed; retrying in a second.");
                    if sleep_or_stop(1_000, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                self.breakers.no_probe(&system.name);
                let due = self.store.next_due(&system.name).await.ok().flatten();
                let wait = due.map_or(IDLE_POLL_MS, |t| (t - now).clamp(1, IDLE_POLL_MS));
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let claimed = self.set_aside_low(system, claimed, now).await;
            if claimed.is_empty() {
                // All low priority, paused: a probe found nothing to send.
                self.breakers.no_probe(&system.name);
                continue;
            }
            let units = self.form(system, claimed, now, requests, probe).await;
            if units.is_empty() {
                // Every batch is still filling; they are due at their max_wait.
                continue;
            }
            let paced = self.pace(system, units, early).await;
            if probe && paced.go.is_empty() {
                // The budget sent the probe back: it is not out.
                self.breakers.no_probe(&system.name);
            }
            if let Some(next) = paced.budget_next_us {
                tat_estimate = Some(next + rate.tolerance_us);
            }
            for (unit, at) in paced.go {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let me = self.clone();
                attempts.spawn(async move { me.start(unit, at, Some(permit)).await });
            }
            self.hand_back(paced.rest, paced.rest_due_ms).await;
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
