//! Sending one batch to its destination's bulk endpoint (the stage `attempt`
//! is for a single delivery): build the body (`batch::body`), send it, and
//! record every item's attempt from the answer. Where the platform reports
//! per item (`batch::results`), each item gets its own verdict. A batch the
//! platform refuses as a whole (400, 413, 422) is split in halves, one after
//! the other, each sent as its own request within the request budget, until
//! the bad items stand alone and only they are dead; a body the mapping
//! cannot build is split the same way without sending anything.

use std::pin::Pin;

use futures_util::future::join_all;

use axum::http::Method;

use super::attempt::outcome_of;
use super::batch::{self, MapError};
use super::retry::Outcome;
use super::{Deliverer, Observed, PACE_HORIZON_MS};
use crate::config::{Batch, Destination, Route, System};
use crate::connect::{Attempt, Sent};
use crate::limits::pace::Rate;
use crate::store::Claimed;

/// A batch's route, system and `batch` settings, which every half shares.
#[derive(Clone, Copy)]
struct Bulk<'a> {
    route: &'a Route,
    system: &'a System,
    batch: &'a Batch,
}

impl Bulk<'_> {
    /// The bulk endpoint, with the route's headers.
    fn destination(&self) -> Destination {
        let d = &self.route.destination;
        Destination {
            system: self.system.name.clone(),
            method: Method::POST,
            path: self.batch.path.clone(),
            headers: d.headers.clone(),
            ordering_key: None,
            entity_key: None,
            batch: None,
            priority: d.priority,
        }
    }
}

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
        let generation = self.current();
        let route = generation.config.routes.get(&first.route);
        let system = generation.config.systems.get(&first.system);
        let found = route
            .zip(system)
            .and_then(|(r, s)| Some((r, s, r.destination.batch.as_ref()?)));
        let Some((route, system, b)) = found else {
            // Gone from the configuration: each item ends as a single would.
            for d in items {
                self.deliver(d, send_at_ms, None).await;
            }
            return;
        };
        let items = self.prepare_items(route, items, self.clock.now_ms()).await;
        if items.is_empty() {
            return;
        }
        self.clock.sleep_until(send_at_ms).await;
        let bulk = Bulk {
            route,
            system,
            batch: b,
        };
        self.send_batch(bulk, items).await;
        drop(permit);
    }

    fn send_batch<'a>(
        &'a self,
        bulk: Bulk<'a>,
        items: Vec<Claimed>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let system = bulk.system;
            let started_ms = self.clock.now_ms();
            let lease_until = items.iter().map(|d| d.lease_until).min().unwrap_or(0);
            if self.lease_too_short(system, lease_until, started_ms) {
                tracing::warn!(system = %system.name, items = items.len(), "A claimed batch waited too long to start; handing it back unsent.");
                self.hand_back(items, started_ms).await;
                return;
            }
            let body = match batch::body(bulk.batch, &items, started_ms).await {
                Ok(body) => body,
                Err(e) => return self.unbuildable(bulk, items, e, started_ms).await,
            };
            let attempt = self
                .current()
                .connector
                .send(
                    system,
                    &bulk.destination(),
                    crate::connect::Outgoing::body(body),
                    &batch::key(&items),
                )
                .await;
            self.after_answer(system, &attempt).await;
            self.settle(bulk, items, attempt, started_ms).await;
        })
    }

    /// A body the mapping could not build: one item it cannot take is found
    /// by halves without sending; jq without a thread hands the batch back.
    async fn unbuildable(&self, bulk: Bulk<'_>, items: Vec<Claimed>, e: MapError, started_ms: i64) {
        match e {
            MapError::Items(_) if items.len() > 1 => {
                let (left, right) = halves(items);
                self.send_batch(bulk, left).await;
                self.send_half(bulk, right).await;
            }
            MapError::Busy(why) => {
                tracing::warn!(system = %bulk.system.name, items = items.len(), reason = %why, "jq had no thread for a batch body; handing the batch back.");
                self.hand_back(items, started_ms + 1_000).await;
            }
            e => {
                let nothing = Observed::nothing_sent(started_ms);
                self.finish_all(&items, nothing, Outcome::Mapping(e.why()), None)
                    .await;
            }
        }
    }

    /// Every item's verdict from the batch's answer: per item on a 2xx, by
    /// halves on a refusal of the content, else the one outcome for all.
    async fn settle(&self, bulk: Bulk<'_>, items: Vec<Claimed>, attempt: Attempt, started_ms: i64) {
        let system = bulk.system;
        let credential = system.auth.credential();
        let observed = Observed::of(&attempt, started_ms);
        match &attempt.sent {
            Sent::Response { status, body, .. } if (200..300).contains(status) => {
                self.per_item(bulk, &items, *status, body, observed).await;
            }
            Sent::Response { status, .. } if splits(*status) && items.len() > 1 => {
                tracing::info!(system = %system.name, status, items = items.len(), "The platform refused a batch; splitting it in halves to find the bad items.");
                // One half after the other: the batch holds one place.
                let (left, right) = halves(items);
                self.send_half(bulk, left).await;
                self.send_half(bulk, right).await;
            }
            sent => {
                self.finish_all(&items, observed, outcome_of(sent), credential)
                    .await;
            }
        }
    }

    /// A 2xx to a batch: each item's verdict from the platform's per-item
    /// results (`batch::results`; without them, all delivered).
    async fn per_item(
        &self,
        bulk: Bulk<'_>,
        items: &[Claimed],
        status: u16,
        body: &bytes::Bytes,
        observed: Observed,
    ) {
        let credential = bulk.system.auth.credential();
        let now = self.clock.now_ms();
        let per_item = match batch::results(bulk.batch, items, status, body, now).await {
            Ok(per_item) => per_item,
            Err(why) => {
                let why = format!(
                    "the platform answered {status}, but its per-item results could not be read ({why}); check what it created before replaying"
                );
                self.finish_all(items, observed, Outcome::Mapping(&why), credential)
                    .await;
                return;
            }
        };
        let no_headers = axum::http::HeaderMap::new();
        let verdicts = items.iter().zip(&per_item).map(|(d, refused)| {
            let outcome = match refused {
                None => Outcome::Response {
                    status,
                    headers: &no_headers,
                    body_excerpt: "",
                },
                Some(reason) => Outcome::ItemRejected { status, reason },
            };
            self.finish(d, observed.clone(), outcome, credential)
        });
        join_all(verdicts).await;
    }

    /// Every item's verdict for one outcome, recorded together (so the
    /// group commit takes them in one transaction).
    async fn finish_all(
        &self,
        items: &[Claimed],
        observed: Observed,
        outcome: Outcome<'_>,
        credential: Option<&str>,
    ) {
        join_all(
            items
                .iter()
                .map(|d| self.finish(d, observed.clone(), outcome, credential)),
        )
        .await;
    }

    /// Half a split batch, as one more request: it waits for its place in
    /// the budget, unless that would outlive its lease (then it goes back).
    async fn send_half(&self, bulk: Bulk<'_>, half: Vec<Claimed>) {
        let lease_until = half.iter().map(|d| d.lease_until).min().unwrap_or(0);
        if self.take_place(bulk.system, lease_until).await {
            self.send_batch(bulk, half).await;
        } else {
            self.hand_back(half, self.clock.now_ms()).await;
        }
    }

    /// Waits for one request's place in the system's budget; false when the
    /// place comes too late for the lease, or the budget store failed.
    async fn take_place(&self, system: &System, lease_until: i64) -> bool {
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        loop {
            let now = self.clock.now_ms();
            let at = match self
                .store
                .reserve(&system.budget, now, rate, 1, PACE_HORIZON_MS)
                .await
            {
                Ok(g) if g.count == 1 => g.send_at_ms(0),
                Ok(g) => {
                    let next = g.next_ms();
                    if self.lease_too_short(system, lease_until, next) {
                        return false;
                    }
                    self.clock.sleep_until(next).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(system = %system.name, error = %crate::model::Chain(&e), "Reserving request budget for half a batch failed; handing it back.");
                    return false;
                }
            };
            self.clock.sleep_until(at).await;
            return true;
        }
    }
}

fn halves(mut items: Vec<Claimed>) -> (Vec<Claimed>, Vec<Claimed>) {
    let right = items.split_off(items.len() / 2);
    (items, right)
}
