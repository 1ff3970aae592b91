//! Sending one batch to its destination's bulk endpoint (the stage `attempt`
//! is for a single delivery): build the body (`batch::body`), send it, and
//! record every item's attempt from the answer. Where the platform reports
//! per item (`batch::results`), each item gets its own verdict. A batch the
//! platform refuses as a whole (400, 413, 422) is split in halves, each
//! sent as its own request within the request budget, until the bad items
//! stand alone and only they are dead.

use std::pin::Pin;

use axum::http::Method;

use super::batch;
use super::breaker::Health;
use super::pace::Rate;
use super::retry::Outcome;
use super::{Deliverer, Observed, PACE_HORIZON_MS};
use crate::config::{Batch, Destination, Route, System};
use crate::connect::Sent;
use crate::store::Claimed;

/// Answers that refuse a batch's content, so a half of it may go through.
fn splits(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

impl Deliverer {
    /// One batch, at the send time its budget granted; `permit` is its place
    /// toward the system, held until every half is answered.
    pub(super) async fn deliver_batch(
        &self,
        items: Vec<Claimed>,
        send_at_ms: i64,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let Some(first) = items.first() else { return };
        let route = self.config.routes.get(&first.route);
        let system = self.config.systems.get(&first.system);
        let (Some(route), Some(system)) = (route, system) else {
            // Gone from the configuration: each item ends as a single would.
            for d in items {
                self.deliver(d, send_at_ms, None).await;
            }
            return;
        };
        let Some(b) = &route.destination.batch else {
            for d in items {
                self.deliver(d, send_at_ms, None).await;
            }
            return;
        };
        self.clock.sleep_until(send_at_ms).await;
        self.send_batch(route, system, b, items).await;
        drop(permit);
    }

    fn send_batch<'a>(
        &'a self,
        route: &'a Route,
        system: &'a System,
        b: &'a Batch,
        items: Vec<Claimed>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let started_ms = self.clock.now_ms();
            let longest = (system.timeout + system.connect_timeout).as_millis() as i64;
            let lease_until = items.iter().map(|d| d.lease_until).min().unwrap_or(0);
            if started_ms + longest >= lease_until {
                tracing::warn!(system = %system.name, items = items.len(), "A claimed batch waited too long to start; handing it back unsent.");
                self.hand_back(items, started_ms).await;
                return;
            }
            let body = match batch::body(b, &items) {
                Ok(body) => body,
                Err(why) => {
                    for d in &items {
                        let nothing = Observed::nothing_sent(started_ms);
                        self.finish(d, nothing, Outcome::Mapping(&why), None).await;
                    }
                    return;
                }
            };
            let dest = Destination {
                system: system.name.clone(),
                method: Method::POST,
                path: b.path.clone(),
                headers: route.destination.headers.clone(),
                ordering_key: None,
                batch: None,
                priority: route.destination.priority,
            };
            let attempt = self
                .connector
                .send(system, &dest, body, &batch::key(&items))
                .await;
            let now = self.clock.now_ms();
            self.note_load(system, &attempt.sent, attempt.duration_ms, now);
            let health = match &attempt.sent {
                Sent::Response { status, .. } => Health::of_status(*status),
                Sent::Network(_) | Sent::Timeout => Health::Down,
            };
            if let Some(t) = self.breakers.observe(&system.name, now, health) {
                self.announce(system, t, now).await;
            }
            if let Sent::Response { headers, log, .. } = &attempt.sent {
                self.heed(system, headers, &log.body_excerpt).await;
            }
            let credential = system.auth.credential();
            let no_headers = axum::http::HeaderMap::new();
            let observed = || Observed {
                started_ms,
                duration_ms: attempt.duration_ms,
                request: attempt.request.clone(),
                response: match &attempt.sent {
                    Sent::Response { log, .. } => Some(log.clone()),
                    _ => None,
                },
            };
            match &attempt.sent {
                Sent::Response { status, body, .. } if (200..300).contains(status) => {
                    match batch::results(b, &items, *status, body) {
                        Ok(per_item) => {
                            for (d, refused) in items.iter().zip(per_item) {
                                let outcome = match &refused {
                                    None => Outcome::Response {
                                        status: *status,
                                        headers: &no_headers,
                                        body_excerpt: "",
                                    },
                                    Some(reason) => Outcome::ItemRejected {
                                        status: *status,
                                        reason,
                                    },
                                };
                                self.finish(d, observed(), outcome, credential).await;
                            }
                        }
                        Err(why) => {
                            let why = format!(
                                "the platform answered {status}, but its per-item results could not be read ({why}); check what it created before replaying"
                            );
                            for d in &items {
                                self.finish(d, observed(), Outcome::Mapping(&why), credential)
                                    .await;
                            }
                        }
                    }
                }
                Sent::Response { status, .. } if splits(*status) && items.len() > 1 => {
                    tracing::info!(system = %system.name, status, items = items.len(), "The platform refused a batch; splitting it in halves to find the bad items.");
                    let mut left = items;
                    let right = left.split_off(left.len() / 2);
                    let (a, b2) = (left, right);
                    let send_half = |half: Vec<Claimed>| async move {
                        if self.take_place(system).await {
                            self.send_batch(route, system, b, half).await;
                        } else {
                            self.hand_back(half, self.clock.now_ms()).await;
                        }
                    };
                    tokio::join!(send_half(a), send_half(b2));
                }
                Sent::Response {
                    status,
                    headers,
                    log,
                    ..
                } => {
                    for d in &items {
                        let outcome = Outcome::Response {
                            status: *status,
                            headers,
                            body_excerpt: &log.body_excerpt,
                        };
                        self.finish(d, observed(), outcome, credential).await;
                    }
                }
                Sent::Network(e) => {
                    for d in &items {
                        self.finish(d, observed(), Outcome::Network(e), credential)
                            .await;
                    }
                }
                Sent::Timeout => {
                    for d in &items {
                        self.finish(d, observed(), Outcome::Timeout, credential)
                            .await;
                    }
                }
            }
        })
    }

    /// Waits for one request's place in the system's budget (a split
    /// half is one more request); false when the budget store failed.
    async fn take_place(&self, system: &System) -> bool {
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        loop {
            let now = self.clock.now_ms();
            match self
                .store
                .reserve(&system.budget, now, rate, 1, PACE_HORIZON_MS)
                .await
            {
                Ok(g) if g.count == 1 => {
                    self.clock.sleep_until(g.send_at_us(0) / 1000).await;
                    return true;
                }
                Ok(g) => self.clock.sleep_until(g.next_us / 1000).await,
                Err(e) => {
                    tracing::warn!(system = %system.name, error = %e, "Reserving request budget for half a batch failed; handing it back.");
                    return false;
                }
            }
        }
    }
}
