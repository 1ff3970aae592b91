//! Deliver: the workers. A worker claims due deliveries from the store (a
//! lease, so a crashed worker's work comes back), and takes each through named
//! stages: prepare (transform) → send (`connect`) → decide (`retry`) → record
//! (store). The loop sleeps only when a claim comes back empty, until new work
//! is signalled or the next retry is due; tests call [`Deliverer::run_once`]
//! directly to drain the queue deterministically.

pub mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::connect::{Connector, Sent};
use crate::store::{AttemptRecord, Claimed, Next, RequestLog, ResponseLog, Store};
use crate::telemetry::Metrics;
use crate::transform::Transform;
use retry::{History, Outcome, Verdict};

/// Longest a worker sleeps before looking at the queue again on its own.
const IDLE_POLL_MS: i64 = 1_000;

/// What an attempt put on the wire and got back, for the attempt log.
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
    /// Caps deliveries in flight across all systems (`server.workers`).
    slots: Arc<Semaphore>,
    /// Per-system caps (`rate_limit.max_concurrency`).
    per_system: HashMap<String, Arc<Semaphore>>,
    /// Signalled by ingest after a commit, so idle workers wake at once.
    pub wake: Arc<Notify>,
    lease_ms: i64,
    /// Fewest free slots worth a claim (a quarter of `server.workers`).
    claim_chunk: usize,
}

/// What a lease adds to twice the slowest attempt: room to record the verdict.
const LEASE_MARGIN_MS: i64 = 5_000;

impl Deliverer {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        connector: Connector,
        clock: Clock,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Deliverer {
        // A lease must outlive the slowest attempt, or a live send is re-claimed.
        let slowest = config
            .systems
            .values()
            .map(|s| s.timeout + s.connect_timeout)
            .max()
            .unwrap_or_default();
        // Twice the slowest attempt, plus time to record its verdict. A shorter
        // lease hands a dead instance's work to the others sooner.
        let lease_ms = (slowest.as_millis() as i64) * 2 + LEASE_MARGIN_MS;
        Deliverer {
            per_system: config
                .systems
                .iter()
                .map(|(k, s)| (k.clone(), Arc::new(Semaphore::new(s.max_concurrency))))
                .collect(),
            slots: Arc::new(Semaphore::new(config.server.workers)),
            claim_chunk: (config.server.workers / 4).max(1),
            store,
            config,
            connector,
            clock,
            metrics,
            wake,
            lease_ms,
        }
    }

    /// Claims what is due now, delivers it all, and returns when every attempt
    /// is recorded.
    pub async fn run_once(self: &Arc<Self>) -> Result<Step, crate::store::StoreError> {
        let claimed = self
            .store
            .claim(
                self.clock.now_ms(),
                self.lease_ms,
                self.config.server.workers,
            )
            .await?;
        if claimed.is_empty() {
            return Ok(Step::Idle);
        }
        let n = claimed.len();
        let tasks = TaskTracker::new();
        for d in claimed {
            let me = self.clone();
            tasks.spawn(async move { me.deliver(d).await });
        }
        tasks.close();
        tasks.wait().await;
        Ok(Step::Worked(n))
    }

    /// The worker loop: runs until `shutdown`, then lets in-flight attempts finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        while !shutdown.is_cancelled() {
            // Claim in chunks: under load, waiting for a quarter of the slots
            // turns one claim per finished delivery into one per chunk.
            let free = self.slots.available_permits();
            if free < self.claim_chunk {
                tokio::select! {
                    _ = self.slots.acquire_many(self.claim_chunk as u32) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let now = self.clock.now_ms();
            let claimed = match self.store.claim(now, self.lease_ms, free.min(256)).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "Claiming deliveries failed; retrying in a second.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let due = self.store.next_due().await.ok().flatten();
                let wait = due.map_or(IDLE_POLL_MS, |t| (t - now).clamp(1, IDLE_POLL_MS));
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            for d in claimed {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move {
                    me.deliver(d).await;
                    drop(permit);
                });
            }
        }
        tasks.close();
        tasks.wait().await;
    }

    /// One delivery attempt through all its stages.
    async fn deliver(&self, d: Claimed) {
        let started_ms = self.clock.now_ms();
        let route = self.config.routes.get(&d.route);
        let system = self.config.systems.get(&d.system);
        let (Some(route), Some(system)) = (route, system) else {
            let why = format!(
                "route {} or system {} is no longer in the configuration",
                d.route, d.system
            );
            self.finish(
                &d,
                Observed::nothing_sent(started_ms),
                Outcome::Config(&why),
                None,
            )
            .await;
            return;
        };
        // prepare
        let body = match Transform::Passthrough.apply(&d.body) {
            Ok(b) => b,
            Err(e) => {
                let why = e.to_string();
                self.finish(
                    &d,
                    Observed::nothing_sent(started_ms),
                    Outcome::Mapping(&why),
                    None,
                )
                .await;
                return;
            }
        };
        // send, within the system's own concurrency
        let sem = self.per_system.get(&d.system).cloned();
        let _permit = match &sem {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let attempt = self
            .connector
            .send(system, &route.destination, body, &d.delivery_key)
            .await;
        let credential = system.auth.credential();
        let mut observed = Observed {
            started_ms,
            duration_ms: attempt.duration_ms,
            request: attempt.request,
            response: None,
        };
        let outcome = match &attempt.sent {
            Sent::Response {
                status,
                headers,
                log,
            } => {
                if let (401 | 403, Some(c)) = (status, credential) {
                    // Pick up a rotated secret before the one retry an auth failure gets.
                    self.connector.credentials.refresh(c);
                }
                observed.response = Some(log.clone());
                Outcome::Response {
                    status: *status,
                    headers,
                    body_excerpt: &log.body_excerpt,
                }
            }
            Sent::Network(e) => Outcome::Network(e),
            Sent::Timeout => Outcome::Timeout,
        };
        self.finish(&d, observed, outcome, credential).await;
    }

    /// decide + record.
    async fn finish(
        &self,
        d: &Claimed,
        observed: Observed,
        outcome: Outcome<'_>,
        credential: Option<&str>,
    ) {
        let policy = self
            .config
            .systems
            .get(&d.system)
            .map(|s| s.retry.clone())
            .unwrap_or_default();
        let history = History {
            attempts: d.attempts,
            consecutive_rate_limited: d.rate_limited_streak,
            consecutive_auth: d.auth_streak,
            first_received_ms: d.budget_start_ms,
        };
        let now = self.clock.now_ms();
        let verdict = retry::decide(
            &outcome,
            &policy,
            &history,
            &d.system,
            credential,
            now,
            &mut rand::rng(),
        );
        let (next, why) = match verdict {
            Verdict::Delivered => (Next::Delivered, None),
            Verdict::Retry {
                at_ms,
                counts_against_budget,
                why,
            } => (
                Next::Retry {
                    at_ms,
                    counts_against_budget,
                    rate_limited: why.class == retry::ErrorClass::RateLimited,
                    auth: why.class == retry::ErrorClass::Auth,
                },
                Some(why),
            ),
            Verdict::Dead { why } => (Next::Dead, Some(why)),
        };
        let mut request = observed.request;
        if next == Next::Delivered {
            // The message body is stored already; a delivered attempt need not repeat it.
            request.body_excerpt.clear();
        }
        let rec = AttemptRecord {
            delivery_id: d.delivery_id,
            lease_until: d.lease_until,
            started_ms: observed.started_ms,
            duration_ms: observed.duration_ms,
            request,
            response: observed.response,
            class: why.as_ref().map(|w| w.class),
            explanation: why
                .as_ref()
                .map_or_else(|| "delivered".to_owned(), |w| w.explanation.clone()),
            hint: why.as_ref().map_or_else(String::new, |w| w.hint.clone()),
            next,
        };
        match self.store.record(rec).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(message = %d.message_id, "Lost the lease before recording; another worker owns this delivery now.");
                return;
            }
            Err(e) => {
                tracing::error!(message = %d.message_id, error = %e, "Recording an attempt failed; the lease will expire and the delivery will be retried.");
                return;
            }
        }
        match (next, why) {
            (Next::Delivered, _) => self.metrics.delivered(&d.route),
            (Next::Retry { at_ms, .. }, Some(why)) => {
                self.metrics.retried(&d.route, why.class.as_str());
                tracing::warn!(message = %d.message_id, route = %d.route, class = why.class.as_str(), retry_in_ms = at_ms - now, "{}", why.explanation);
            }
            (_, why) => {
                let class = why.as_ref().map_or("unknown", |w| w.class.as_str());
                self.metrics.dead(&d.route, class);
                tracing::error!(message = %d.message_id, route = %d.route, class, "Message is dead: {}", why.map(|w| w.explanation).unwrap_or_default());
            }
        }
    }
}
