//! The worker step: one look at a system's queue that starts what may start
//! now (breaker, in-flight limit, request budget, daily quota, batches) and
//! says what to wait for before the next look ([`Tick`]). Production's loop
//! (`run_system`, one per system) is this step plus that waiting; the tests'
//! [`Deliverer::run_once`] is one step per system plus waiting for the
//! attempts it started, so both run the same claims, sized the same way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::breaker::Admission;
use super::{Deliverer, IDLE_POLL_MS, MAX_CLAIM, PACE_HORIZON_MS, Step, sleep_or_stop};
use crate::config::System;
use crate::limits::pace::{self, Grant, Rate};
use crate::store::{Claimed, StoreError};

/// What a step leaves its loop to wait for.
#[derive(Debug)]
pub(super) enum Tick {
    /// This many deliveries were started; look again at once.
    Started(usize),
    /// Nothing could start, but something may now: look again at once
    /// (every batch still filling, every claimed delivery set aside).
    Again,
    /// Fewer places are free than a claim is worth: wait until this many
    /// permits can be had at once.
    Places(u32),
    /// Nothing is due (or the breaker is open) before this time; new work
    /// or a closing breaker ([`super::Wake`]) ends the wait sooner.
    Until(i64),
    /// By the loop's last reservation the budget is spent: sleep until this
    /// time, whatever is signalled meanwhile.
    Budget(i64),
    /// The claim failed; the loop retries in a second.
    Failed(StoreError),
}

/// One system's loop state between steps.
pub(super) struct Worker {
    system: System,
    permits: Arc<Semaphore>,
    wake: watch::Receiver<u64>,
    /// The budget's theoretical arrival time as of this loop's last
    /// reservation: claims are sized by it, so a spent budget is not
    /// claimed only to be handed back.
    tat_estimate: Option<i64>,
}

/// What a claim found, with the budget's read when it went alongside.
type Claim = (Vec<Claimed>, Option<Result<Grant, StoreError>>);

impl Deliverer {
    fn worker(&self, system: &System) -> Option<Worker> {
        Some(Worker {
            system: system.clone(),
            permits: self.current().per_system.get(&system.name)?.clone(),
            wake: self.wake.subscribe(),
            tat_estimate: None,
        })
    }

    /// One step for one system: room, admit, size, claim, set aside, form
    /// units, pace, and start each unit under a place of `attempts`.
    pub(super) async fn tick(self: &Arc<Self>, w: &mut Worker, attempts: &TaskTracker) -> Tick {
        let system = &w.system;
        let free = match self.room(system) {
            Ok(free) => free,
            Err(wait) => return wait,
        };
        let now = self.clock.now_ms();
        let probe = match self.admit(system, now).await {
            Admission::Free => false,
            Admission::Probe => true,
            Admission::WaitUntil(at) => return Tick::Until(at),
        };
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        let (_, g) = pace::reserve(
            w.tat_estimate,
            now * 1000,
            rate,
            u32::MAX,
            PACE_HORIZON_MS * 1000,
        );
        if g.count == 0 {
            // Sleep until the budget's next slot is within the horizon.
            return Tick::Budget(g.next_us / 1000 - PACE_HORIZON_MS);
        }
        w.wake.borrow_and_update();
        // Claim no more than can start now (`free` places): a claimed
        // delivery waiting for a place could outlive its lease.
        let requests = if probe {
            1
        } else {
            free.min(g.count as usize).min(MAX_CLAIM)
        };
        let (claimed, early) = match self.claim(system, now, requests).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.breakers.no_probe(&system.name);
                let due = self.store.next_due(&system.name).await.ok().flatten();
                let wait = due.map_or(IDLE_POLL_MS, |t| (t - now).clamp(1, IDLE_POLL_MS));
                return Tick::Until(now + wait);
            }
            Err(e) => return Tick::Failed(e),
        };
        let claimed = self.set_aside_low(system, claimed, now).await;
        if claimed.is_empty() {
            // All low priority, paused: a probe found nothing to send.
            self.breakers.no_probe(&system.name);
            return Tick::Again;
        }
        let units = self.form(system, claimed, now, requests, probe).await;
        if units.is_empty() {
            // Every batch is still filling; they are due at their max_wait.
            return Tick::Again;
        }
        let paced = self.pace(system, units, early).await;
        if probe && paced.go.is_empty() {
            // The budget sent the probe back: it is not out.
            self.breakers.no_probe(&system.name);
        }
        if let Some(next) = paced.budget_next_us {
            w.tat_estimate = Some(next + rate.tolerance_us);
        }
        let started = self.launch(w, paced.go, attempts).await;
        self.hand_back(paced.rest, paced.rest_due_ms).await;
        if started == 0 {
            Tick::Again
        } else {
            Tick::Started(started)
        }
    }

    /// The places free toward `system` under its limit, or the wait for
    /// enough of them. Claims go in chunks: under load, waiting for a
    /// quarter of the places turns one claim per finished delivery into one
    /// per chunk.
    fn room(&self, system: &System) -> Result<usize, Tick> {
        // The semaphore holds max_concurrency places; an adaptive limit
        // below it leaves the difference unused.
        let limit = self.concurrency.limit(system);
        let free = limit.saturating_sub(self.in_flight(system));
        let chunk = (limit / 4).max(1);
        if free < chunk {
            let unused = system.max_concurrency.saturating_sub(limit);
            return Err(Tick::Places((unused + chunk) as u32));
        }
        Ok(free)
    }

    /// Claims what `requests` requests may carry; `None` when nothing is
    /// due. An unlimited budget is only read (for a platform's hold), and the
    /// read does not depend on what is claimed: both go at once, and the
    /// read comes back with the claim for `pace`.
    async fn claim(
        &self,
        system: &System,
        now: i64,
        requests: usize,
    ) -> Result<Option<Claim>, StoreError> {
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        let size = self.claim_size(system, requests);
        let lease_ms = self.current().lease_ms;
        let claim = self.store.claim(&system.name, now, lease_ms, size);
        let (claimed, early) = if rate == Rate::UNLIMITED {
            let want = u32::try_from(size).unwrap_or(u32::MAX);
            let read = self
                .store
                .reserve(&system.budget, now, rate, want, PACE_HORIZON_MS);
            let (c, g) = tokio::join!(claim, read);
            (c?, Some(g))
        } else {
            (claim.await?, None)
        };
        Ok((!claimed.is_empty()).then_some((claimed, early)))
    }

    /// Starts each paced unit under a place toward the system, at its send
    /// time; returns how many deliveries started.
    async fn launch(
        self: &Arc<Self>,
        w: &Worker,
        go: Vec<(super::batch::Unit, i64)>,
        attempts: &TaskTracker,
    ) -> usize {
        let mut started = 0;
        for (unit, at) in go {
            let Ok(permit) = w.permits.clone().acquire_owned().await else {
                break;
            };
            started += unit.deliveries();
            let me = self.clone();
            attempts.spawn(async move { me.start(unit, at, Some(permit)).await });
        }
        started
    }

    /// One step toward every system (after a sweep for strays), and returns
    /// when every attempt it started is recorded: the tests' deterministic
    /// drain, through the same step as production's loops.
    pub async fn run_once(self: &Arc<Self>) -> Result<Step, StoreError> {
        let attempts = TaskTracker::new();
        let mut n = self.sweep_strays().await;
        for system in self.config().systems.values() {
            let Some(mut w) = self.worker(system) else {
                continue;
            };
            match self.tick(&mut w, &attempts).await {
                Tick::Started(k) => n += k,
                Tick::Failed(e) => return Err(e),
                _ => {}
            }
        }
        attempts.close();
        attempts.wait().await;
        Ok(if n == 0 { Step::Idle } else { Step::Worked(n) })
    }

    /// A system's worker loop: steps, and between steps the wait each asks
    /// for, until `shutdown`.
    pub(super) async fn run_system(
        self: Arc<Self>,
        system: &System,
        shutdown: CancellationToken,
        attempts: TaskTracker,
    ) {
        let Some(mut w) = self.worker(system) else {
            return;
        };
        self.bound_stored_waits(system).await;
        while !shutdown.is_cancelled() {
            let wait_ms = |at: i64| Duration::from_millis((at - self.clock.now_ms()).max(1) as u64);
            match self.tick(&mut w, &attempts).await {
                Tick::Started(_) | Tick::Again => {}
                Tick::Places(n) => {
                    tokio::select! {
                        p = w.permits.acquire_many(n) => drop(p),
                        _ = shutdown.cancelled() => break,
                    }
                }
                Tick::Until(at) => {
                    tokio::select! {
                        _ = w.wake.changed() => {}
                        _ = tokio::time::sleep(wait_ms(at)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Tick::Budget(at) => {
                    if sleep_or_stop((at - self.clock.now_ms()).max(1), &shutdown).await {
                        break;
                    }
                }
                Tick::Failed(e) => {
                    tracing::error!(system = %system.name, error = %crate::model::Chain(&e), "Claiming deliveries failed; retrying in a second.");
                    if sleep_or_stop(1_000, &shutdown).await {
                        break;
                    }
                }
            }
        }
    }
}
