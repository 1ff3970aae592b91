//! One attempt, through the named stages of the flow: (the breaker admits) →
//! prepare (transform) →
//! wait for its send time (pace) → send (`connect`) → what the answer tells
//! the parts that track the platform (`answer`) → decide (`retry`) → record
//! (store), with the metrics and logs an operator reads.

use super::breaker::{Admission, CircuitState, Transition};
use super::retry::{self, Explained, History, Outcome, Verdict};
use super::{Deliverer, Observed};
use crate::config::System;
use crate::connect::Sent;
use crate::limits::pace::Rate;
use crate::store::{AttemptRecord, Claimed, Next};

/// What an attempt's result is for the verdict (`retry::decide`).
pub(super) fn outcome_of(sent: &Sent) -> Outcome<'_> {
    match sent {
        Sent::Response {
            status,
            headers,
            log,
            ..
        } => Outcome::Response {
            status: *status,
            headers,
            body_excerpt: &log.body_excerpt,
        },
        Sent::Network(e) => Outcome::Network(e),
        Sent::Timeout => Outcome::Timeout,
        Sent::Refused(e) => Outcome::Config(e),
        Sent::Unauthorized(e) => Outcome::Auth {
            reason: &e.reason,
            rejected: e.rejected,
        },
    }
}

impl Deliverer {
    /// One delivery attempt through all its stages.
    /// `permit` is a place toward the system: it is given back as soon as
    /// the request is answered, before the verdict is recorded.
    pub(super) async fn deliver(
        &self,
        d: Claimed,
        send_at_ms: i64,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let started_ms = self.clock.now_ms();
        let generation = self.current();
        let route = generation.config.routes.get(&d.route);
        let system = generation.config.systems.get(&d.system);
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
        let outgoing = match self.prepare(route, &d, started_ms).await {
            Ok(outgoing) => outgoing,
            Err(unprepared) => return self.unprepared(d, unprepared, started_ms).await,
        };
        // wait for the send time the request budget granted
        self.clock.sleep_until(send_at_ms).await;
        // send (within the system's concurrency permit), unless the lease
        // could run out mid-request: another worker could then send it too
        let started_ms = self.clock.now_ms();
        if self.lease_too_short(system, d.lease_until, started_ms) {
            tracing::warn!(message = %d.message_id, "A claimed delivery waited too long to start; handing it back unsent.");
            self.hand_back(vec![d], started_ms).await;
            return;
        }
        let attempt = generation
            .connector
            .send(system, &route.destination, outgoing, &d.delivery_key)
            .await;
        // While this request still holds its place, so it counts in flight.
        self.after_answer(system, &attempt).await;
        drop(permit);
        let credential = system.auth.credential();
        let observed = Observed::of(&attempt, started_ms);
        self.finish(&d, observed, outcome_of(&attempt.sent), credential)
            .await;
    }

    /// Whether a request starting at `now_ms` could outlive its lease, with
    /// the time to record its verdict: another worker could then send it too.
    pub(super) fn lease_too_short(&self, system: &System, lease_until: i64, now_ms: i64) -> bool {
        let longest = i64::try_from((system.timeout + system.connect_timeout).as_millis())
            .unwrap_or(i64::MAX);
        now_ms
            .saturating_add(longest)
            .saturating_add(super::LEASE_MARGIN_MS)
            >= lease_until
    }

    /// Asks the system's breaker whether to send, announcing a change.
    /// A probe also needs the system's shared probe slot, so instances
    /// whose breakers are all half-open send one probe between them.
    pub(super) async fn admit(&self, system: &System, now_ms: i64) -> Admission {
        let (admission, change) = self.breakers.admit(&system.name, now_ms);
        if let Some(t) = change {
            self.announce(system, t, now_ms).await;
        }
        if admission != Admission::Probe {
            return admission;
        }
        let interval = system.breaker.map_or(0, |p| p.open_ms);
        match self.store.probe(&system.name, now_ms, interval).await {
            Ok(None) => Admission::Probe,
            Ok(Some(until)) => {
                self.breakers.no_probe(&system.name);
                Admission::WaitUntil(until)
            }
            Err(e) => {
                // Better one probe too many than a system never probed again.
                tracing::warn!(system = %system.name, error = %crate::model::Chain(&e), "Taking the shared probe slot failed; probing anyway.");
                Admission::Probe
            }
        }
    }

    /// Logs a breaker's change and shows it in the metrics. An opened
    /// breaker also holds the system's shared budget, so other instances
    /// wait for the probe too; a closed one wakes the waiting loops.
    pub(super) async fn announce(&self, system: &System, t: Transition, now_ms: i64) {
        match t {
            Transition::Opened { until_ms } => {
                tracing::error!(system = %system.name, probe_in_ms = until_ms - now_ms, "Circuit opened: too many requests to this system failed. Its messages wait in the queue; one probe will test it again.");
                self.metrics
                    .circuit(&system.name, CircuitState::Open.as_str());
                // Only a budget of the system's own: one shared by credential
                // also serves healthy systems, which must not wait for this one.
                let rate = system.rate.unwrap_or(Rate::UNLIMITED);
                if system.budget == system.name
                    && let Err(e) = self.store.hold(&system.budget, until_ms, rate).await
                {
                    tracing::warn!(system = %system.name, error = %crate::model::Chain(&e), "Holding the budget for an open circuit failed; other instances may keep sending.");
                }
            }
            Transition::HalfOpened => {
                tracing::info!(system = %system.name, "Circuit half-open: sending one probe.");
                self.metrics
                    .circuit(&system.name, CircuitState::HalfOpen.as_str());
            }
            Transition::Closed => {
                tracing::info!(system = %system.name, "Circuit closed: the system answers again; delivery resumes.");
                self.metrics
                    .circuit(&system.name, CircuitState::Closed.as_str());
                self.wake.notify();
            }
        }
    }

    /// Whether the route delivers in order per key (`ordering_key`).
    fn ordered(&self, route: &str) -> bool {
        self.current()
            .config
            .routes
            .get(route)
            .is_some_and(|r| r.destination.ordering_key.is_some())
    }

    /// decide + record.
    pub(super) async fn finish(
        &self,
        d: &Claimed,
        observed: Observed,
        outcome: Outcome<'_>,
        credential: Option<&str>,
    ) {
        let now = self.clock.now_ms();
        let (next, why) = self.judge(d, &outcome, credential, now);
        self.land(d, observed, next, why, now).await;
    }

    /// record: the attempt and the delivery's next state, then the
    /// metrics and the log line.
    pub(super) async fn land(
        &self,
        d: &Claimed,
        observed: Observed,
        next: Next,
        why: Option<Explained>,
        now: i64,
    ) {
        let mut request = observed.request;
        if matches!(next, Next::Delivered | Next::Skipped) {
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
            explanation: match (&why, next) {
                (Some(w), _) => w.explanation.clone(),
                (None, Next::Skipped) => {
                    "skipped: the route's mapping gave nothing to send for this message".to_owned()
                }
                (None, _) => "delivered".to_owned(),
            },
            hint: why.as_ref().map_or_else(String::new, |w| w.hint.clone()),
            next,
            failure_group: why
                .as_ref()
                .filter(|_| next == Next::Dead)
                .map(|w| crate::store::group_key(w.class, &d.system, &d.route, &w.explanation)),
        };
        match self.store.record(rec).await {
            Ok(true)
                if matches!(next, Next::Delivered | Next::Skipped) && self.ordered(&d.route) =>
            {
                // The next message of its key is due now: wake the loops.
                self.wake.notify();
            }
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(message = %d.message_id, "Lost the lease before recording; another worker owns this delivery now.");
                return;
            }
            Err(e) => {
                tracing::error!(message = %d.message_id, error = %crate::model::Chain(&e), "Recording an attempt failed; the lease will expire and the delivery will be retried.");
                return;
            }
        }
        self.report(d, next, why, now);
    }

    /// The verdict on an attempt (`retry::decide` with the delivery's
    /// history), as what the store does next and why.
    fn judge(
        &self,
        d: &Claimed,
        outcome: &Outcome<'_>,
        credential: Option<&str>,
        now: i64,
    ) -> (Next, Option<Explained>) {
        let policy = self
            .current()
            .config
            .systems
            .get(&d.system)
            .map(|s| s.retry.clone())
            .unwrap_or_default();
        let history = History {
            attempts: d.attempts,
            consecutive_rate_limited: d.rate_limited_streak,
            consecutive_auth: d.auth_streak,
            budget_start_ms: d.budget_start_ms,
            received_ms: d.received_ms,
        };
        let verdict = retry::decide(
            outcome,
            &retry::Destination {
                system: &d.system,
                policy: &policy,
                credential,
            },
            &history,
            now,
            &mut rand::rng(),
        );
        match verdict {
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
            Verdict::Dead { mut why } => {
                if self.ordered(&d.route) {
                    why.hint.push_str(" Later messages of this route with the same ordering key wait behind this one: retry it once fixed, or discard it to let them go.");
                }
                (Next::Dead, Some(why))
            }
        }
    }

    /// The metrics and the log line of a recorded verdict.
    fn report(&self, d: &Claimed, next: Next, why: Option<Explained>, now: i64) {
        match (next, why) {
            (Next::Delivered, _) => self.metrics.delivered(&d.route),
            (Next::Skipped, _) => {
                self.metrics.skipped(&d.route);
                tracing::info!(message = %d.message_id, route = %d.route, "Skipped: the route's mapping gave nothing to send for this message.");
            }
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
