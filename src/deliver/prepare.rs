//! prepare: the stage before a delivery waits for its send time. The
//! route's transform turns the stored body into the request for the
//! destination's API version (`transform`); with the system's
//! `next_api_version`, the next version's mapping runs too and its output
//! is compared (`shadow`), sending nothing. A mapping that gives nothing
//! ends the delivery `skipped`, one that fails ends it dead (class
//! `mapping`), and jq without a free thread hands it back for later.

use super::retry::Outcome;
use super::{Deliverer, Observed};
use crate::config::Route;
use crate::connect::Outgoing;
use crate::store::{Claimed, Next};
use crate::transform::{Prepared, TransformError};

/// How long a delivery waits when jq had no thread for its mapping.
const BUSY_RETRY_MS: i64 = 1_000;

/// Why a delivery has no request to send.
pub(super) enum Unprepared {
    Skip,
    Mapping(String),
    Busy(String),
}

impl Deliverer {
    /// The request for `d`'s body (and its shadow comparison).
    pub(super) async fn prepare(
        &self,
        route: &Route,
        d: &Claimed,
        now_ms: i64,
    ) -> Result<Outgoing, Unprepared> {
        let live = route.transform.apply(&d.body, now_ms).await;
        if let Some(next) = &route.shadow {
            self.shadows
                .compare(route, next, d, &live, now_ms, &self.metrics)
                .await;
        }
        match live {
            Ok(Prepared::Send(outgoing)) => match outgoing.target(&route.destination.path) {
                Ok(_) => Ok(outgoing),
                Err(why) => Err(Unprepared::Mapping(why)),
            },
            Ok(Prepared::Skip) => Err(Unprepared::Skip),
            Err(TransformError::Mapping(why)) => Err(Unprepared::Mapping(why)),
            Err(TransformError::Busy(why)) => Err(Unprepared::Busy(why)),
        }
    }

    /// The items of a batch with their bodies mapped; those with nothing
    /// to send are finished (or handed back) here, one by one.
    pub(super) async fn prepare_items(
        &self,
        route: &Route,
        items: Vec<Claimed>,
        now_ms: i64,
    ) -> Vec<Claimed> {
        if route.transform.mapping().is_none() && route.shadow.is_none() {
            return items;
        }
        let mut ready = Vec::with_capacity(items.len());
        for mut d in items {
            match self.prepare(route, &d, now_ms).await {
                Ok(outgoing) => {
                    d.body = outgoing.body;
                    ready.push(d);
                }
                Err(why) => self.unprepared(d, why, now_ms).await,
            }
        }
        ready
    }

    /// Ends or hands back a delivery that has nothing to send.
    pub(super) async fn unprepared(&self, d: Claimed, why: Unprepared, started_ms: i64) {
        let nothing = Observed::nothing_sent(started_ms);
        match why {
            Unprepared::Skip => {
                let now = self.clock.now_ms();
                self.land(&d, nothing, Next::Skipped, None, now).await;
            }
            Unprepared::Mapping(why) => {
                self.finish(&d, nothing, Outcome::Mapping(&why), None).await;
            }
            Unprepared::Busy(why) => {
                tracing::warn!(message = %d.message_id, reason = %why, "jq had no thread for this delivery's mapping; handing it back.");
                self.hand_back(vec![d], started_ms + BUSY_RETRY_MS).await;
            }
        }
    }
}
