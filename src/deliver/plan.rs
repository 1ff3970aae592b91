//! From claimed deliveries to paced requests, the step between the claim and
//! the attempts in a worker loop: claims are sized in requests × the most
//! deliveries one request carries; claimed work is sorted into units (a
//! delivery, or a batch for a bulk endpoint, `batch`); each unit is given a
//! send time from the system's budget (`pace`, through `store.reserve`); and
//! what does not go now is handed back to the queue unattempted.

use std::collections::HashMap;

use super::batch::{self, Unit};
use super::{Deliverer, MAX_CLAIM, PACE_HORIZON_MS};
use crate::config::{Config, System, SystemName};
use crate::limits::pace::{self, Rate};
use crate::store::Claimed;

/// Claimed work (units: one request each) with the send times its budget
/// granted, and the deliveries that did not fit, to hand back.
pub(super) struct Paced {
    pub go: Vec<(Unit, i64)>,
    pub rest: Vec<Claimed>,
    /// When the handed-back deliveries are due again (milliseconds).
    pub rest_due_ms: i64,
    /// When the budget has room again (microseconds), if it is a budget.
    pub budget_next_us: Option<i64>,
}

/// Per system, the most deliveries one request can carry: its routes'
/// largest `batch.max_items`, else 1.
pub(super) fn items_per_request(config: &Config) -> HashMap<SystemName, usize> {
    config
        .systems
        .keys()
        .map(|s| {
            let most = config
                .routes
                .values()
                .filter(|r| &r.destination.system == s)
                .filter_map(|r| r.destination.batch.as_ref().map(|b| b.max_items))
                .max()
                .unwrap_or(1);
            (s.clone(), most)
        })
        .collect()
}

impl Deliverer {
    /// Deliveries a claim for `requests` requests to `system` may take.
    pub(super) fn claim_size(&self, system: &System, requests: usize) -> usize {
        let per = self
            .current()
            .per_request
            .get(&system.name)
            .copied()
            .unwrap_or(1);
        requests
            .saturating_mul(per)
            .min(MAX_CLAIM * per.min(MAX_CLAIM))
    }

    /// Sorts claimed work into requests; a batch still filling goes back to
    /// wait for its `max_wait`.
    /// At most `requests` units go (a claim sized for the largest batch can
    /// hold more single deliveries than that): the rest goes back. A probe
    /// is one request, and a probe that found only a batch still filling is
    /// not out.
    pub(super) async fn form(
        &self,
        system: &System,
        claimed: Vec<Claimed>,
        now_ms: i64,
        requests: usize,
        probe: bool,
    ) -> Vec<Unit> {
        let formed = batch::form(claimed, &self.config(), now_ms);
        self.hand_back(formed.waiting, formed.wait_until_ms).await;
        let mut units = formed.units;
        let requests = if probe { 1 } else { requests.max(1) };
        if units.len() > requests {
            let rest = units.split_off(requests);
            self.hand_back(
                rest.into_iter().flat_map(Unit::into_items).collect(),
                now_ms,
            )
            .await;
        }
        if probe && units.is_empty() {
            self.breakers.no_probe(&system.name);
        }
        units
    }

    /// Starts one unit of work (a delivery or a batch).
    pub(super) async fn start(
        &self,
        unit: Unit,
        at_ms: i64,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        match unit {
            Unit::One(d) => self.deliver(d, at_ms, permit).await,
            Unit::Batch(items) => self.deliver_batch(items, at_ms, permit).await,
        }
    }

    /// Reserves send times for claimed deliveries against the system's
    /// budget, from the time the claim came back (so a slow claim does not
    /// bunch sends); what does not fit is to go back to the queue, due when
    /// the budget has room. `early` is a reservation already made alongside
    /// the claim.
    pub(super) async fn pace(
        &self,
        system: &System,
        claimed: Vec<Unit>,
        early: Option<Result<pace::Grant, crate::store::StoreError>>,
    ) -> Paced {
        let now_ms = self.clock.now_ms();
        let rate = system.rate.unwrap_or(Rate::UNLIMITED);
        let want = u32::try_from(claimed.len()).unwrap_or(u32::MAX);
        let reserved = match early {
            Some(r) => r,
            None => {
                self.store
                    .reserve(&system.budget, now_ms, rate, want, PACE_HORIZON_MS)
                    .await
            }
        };
        let (grant, due_ms) = match reserved {
            Ok(g) => (Some(g), g.next_ms()),
            Err(e) => {
                tracing::error!(system = %system.name, error = %crate::model::Chain(&e), "Reserving request budget failed; the claimed deliveries wait a second.");
                (None, now_ms + 1_000)
            }
        };
        let count = grant.map_or(0, |g| g.count as usize).min(claimed.len());
        let mut go = claimed;
        let rest = go
            .split_off(count)
            .into_iter()
            .flat_map(Unit::into_items)
            .collect();
        let go = match grant {
            Some(g) => go
                .into_iter()
                .enumerate()
                .map(|(i, d)| (d, g.send_at_ms(i as u32)))
                .collect(),
            None => Vec::new(),
        };
        Paced {
            go,
            rest,
            rest_due_ms: due_ms,
            budget_next_us: grant.map(|g| g.next_us),
        }
    }

    /// Puts claimed deliveries back in the queue, due at `due_ms`: not an
    /// attempt, nothing was sent.
    pub(super) async fn hand_back(&self, rest: Vec<Claimed>, due_ms: i64) {
        for d in rest {
            if let Err(e) = self.store.defer(d.delivery_id, d.lease_until, due_ms).await {
                tracing::warn!(message = %d.message_id, error = %crate::model::Chain(&e), "Handing back a delivery failed; its lease will expire instead.");
            }
        }
    }
}
