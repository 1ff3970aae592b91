//! What an answer tells: the one place that reads a platform's answer (or
//! its absence) after every request, single or batch, and tells each part
//! that keeps track of the platform. [`Reading::of`] is pure: it reads the
//! answer once into what it says about
//!
//! * the platform's load: the adaptive limit (`limits::aimd`);
//! * its health: the breaker (`limits::breaker`);
//! * its daily quota: the low-priority pause (`limits::quota`);
//! * "nothing before then" (`Retry-After`, or the dialect's headers and
//!   bodies): the hold on the shared budget (`hold`);
//! * a rejected credential, to re-read before the one retry an auth failure
//!   gets (`connect::auth`).
//!
//! [`Deliverer::after_answer`] then tells each, in that order, while the
//! request still holds its place (so it counts in flight for the limit).
//! What the answer means for the delivery itself (its verdict) is `retry`'s.

use super::Deliverer;
use super::quota::log_change;
use crate::config::System;
use crate::connect::{Attempt, Sent};
use crate::limits::aimd::Signal;
use crate::limits::breaker::Health;
use crate::limits::dialect::{self, Usage};
use crate::limits::pace::Rate;

/// A platform's "nothing before then".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskedHold {
    pub until_ms: i64,
    /// Where it came from (`Retry-After`, a dialect's header), for the admin
    /// API and the logs.
    pub source: &'static str,
}

/// Everything one answer says about its platform, read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    /// For the adaptive limit; `None` for what says nothing about load (a
    /// refused connection, a DNS failure).
    pub load: Option<Signal>,
    /// For the breaker; `None` when nothing was sent.
    pub health: Option<Health>,
    /// For the low-priority pause.
    pub usage: Option<Usage>,
    /// For the hold on the system's budget; only a time still ahead.
    pub hold: Option<AskedHold>,
    /// The credential the platform rejected (401, or a 403 that is not a
    /// spent Salesforce quota), to re-read from its source.
    pub refresh: Option<&'a str>,
}

impl<'a> Reading<'a> {
    pub fn of(system: &'a System, sent: &Sent, duration_ms: i64, now_ms: i64) -> Reading<'a> {
        let load = match sent {
            Sent::Response {
                status: 429 | 503, ..
            }
            | Sent::Timeout => Some(Signal::BackPressure),
            Sent::Response { .. } => Some(Signal::Answered {
                rtt_ms: duration_ms,
            }),
            Sent::Network(_) | Sent::Refused(_) | Sent::Unauthorized(_) => None,
        };
        let mut reading = Reading {
            load,
            health: match sent {
                Sent::Response { status, .. } => Some(Health::of_status(*status)),
                Sent::Network(_) | Sent::Timeout => Some(Health::Down),
                Sent::Refused(_) | Sent::Unauthorized(_) => None,
            },
            usage: None,
            hold: None,
            refresh: None,
        };
        let Sent::Response {
            status,
            headers,
            log,
            ..
        } = sent
        else {
            return reading;
        };
        let body = log.body_excerpt.as_str();
        let spent_quota = *status == 403 && dialect::salesforce_quota_exceeded(body);
        if matches!(status, 401 | 403) && !spent_quota {
            reading.refresh = system.auth.credential();
        }
        reading.usage = dialect::daily_usage(system.dialect, headers, now_ms);
        reading.hold = dialect::hold_until(system.dialect, headers, body, now_ms)
            .filter(|&until_ms| until_ms > now_ms)
            .map(|until_ms| AskedHold {
                until_ms,
                source: dialect::hold_source(system.dialect, headers, body),
            });
        reading
    }
}

impl Deliverer {
    /// Tells the adaptive limit, the breaker, the credentials, the quota view
    /// and the holds what `attempt`'s answer says (see the module doc). Call
    /// it while the request still holds its place toward the system.
    pub(super) async fn after_answer(&self, system: &System, attempt: &Attempt) {
        let now = self.clock.now_ms();
        let reading = Reading::of(system, &attempt.sent, attempt.duration_ms, now);
        if let Some(signal) = reading.load {
            self.note_load(system, signal, now);
        }
        let Some(health) = reading.health else {
            // Nothing was sent: it says nothing about the system.
            return;
        };
        if let Some(t) = self.breakers.observe(&system.name, now, health) {
            self.announce(system, t, now).await;
        }
        if let Some(credential) = reading.refresh {
            self.current().connector.credentials.refresh(credential);
        }
        if let Some(usage) = reading.usage
            && let Some(Some(change)) = self.quotas.with(&system.name, |p| p.observe(usage, now))
        {
            log_change(system, change, now);
        }
        if let Some(asked) = reading.hold {
            self.hold(system, asked, now).await;
        }
    }

    /// Feeds the system's controller; shows a moved limit in the metrics.
    fn note_load(&self, system: &System, signal: Signal, now_ms: i64) {
        let in_flight = self.in_flight(system);
        let moved = self
            .concurrency
            .with(&system.name, |a| a.observe(now_ms, signal, in_flight));
        if let Some(Some((from, to))) = moved {
            tracing::debug!(system = %system.name, from, to, "Adaptive concurrency limit moved.");
            self.metrics.concurrency_limit(&system.name, to);
        }
    }

    /// Holds the system's shared budget (bounded by `hold::cap_ms`) so no
    /// worker of any instance sends before the time the platform named.
    async fn hold(&self, system: &System, asked: AskedHold, now: i64) {
        let daily = asked.source.contains("daily");
        let until = self
            .holds
            .note(system, asked.source, daily, asked.until_ms, now);
        self.metrics.hold_until(&system.name, until);
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        match self.store.hold(&system.budget, until, rate).await {
            Ok(()) => {
                tracing::info!(system = %system.name, hold_ms = until.saturating_sub(now), asked_ms = asked.until_ms.saturating_sub(now), source = asked.source, "The platform's budget is spent; holding every request to it until then.")
            }
            Err(e) => {
                tracing::warn!(system = %system.name, error = %crate::model::Chain(&e), "Holding the request budget failed; the next requests may meet a 429.")
            }
        }
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
