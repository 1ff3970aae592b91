//! The console bench's store: `n` messages shaped like a real week of
//! traffic, written through the store's own methods (so the rows are
//! exactly what ferry writes, indexes and failure groups included), fast
//! enough because every step is group-committed: `accept` in waves of
//! [`WAVE`] concurrent calls, then each system's due deliveries `claim`ed
//! [`CLAIM`] at a time and every attempt `record`ed concurrently, until
//! nothing is due; then the newest [`QUEUED_PER_MILLE`] ‰ are accepted and
//! left queued (the workers are off), one failure group is discarded by an
//! operator in bulk and another acknowledged.
//!
//! The shape: five routes over three systems (Shopify orders and Stripe
//! payments into the ERP, the ERP's stock and prices to Shopify, its
//! customers to HubSpot), received evenly over the last 7 days (minus an
//! hour, so no dedupe key or retention line falls during the bench). By a
//! hash of each message id: ~92% delivered at the first attempt, ~1.5%
//! after one or two failed ones (HTTP 503 or 429), ~5% dead from six causes
//! whose explanations carry varying ids (SKUs, inventory items, e-mail
//! addresses, price lists) and so fall into six failure groups, ~1.5% dead
//! then discarded (a seventh cause), HubSpot throttling the last 12 hours
//! (~0.5% retrying, due in the next minutes) and the newest ~0.5% queued.
//! The explanations and hints are the words `deliver::classify` writes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use crate::model::{ErrorClass, MessageId, RouteName, SystemName};
use crate::store::{
    AttemptRecord, Claimed, DedupeKey, GroupStatus, IdempotencyRecord, MessageFilter, NewMessage,
    Next, RequestLog, ResponseLog, State, StatusMark, Store, StoredResponse, group_key,
};

/// Concurrent `accept` calls per wave: enough to fill the group commits.
const WAVE: usize = 2048;
/// Deliveries per `claim`, each recorded concurrently.
const CLAIM: usize = 1024;
/// The newest messages, per mille, left queued.
const QUEUED_PER_MILLE: u64 = 5;
/// The week the messages were received in (ending when seeding starts).
const WEEK_MS: i64 = 7 * 86_400_000;
/// Kept free at the old end of the week: no webhook dedupe key (7 days)
/// expires while the bench runs.
const MARGIN_MS: i64 = 3_600_000;
/// HubSpot throttles (429) this long back from now: what it got since is
/// partly still retrying.
const THROTTLED_MS: i64 = 12 * 3_600_000;
/// Attempts before a transient cause gives up (the config's `max_attempts`).
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// The operator who acts on the groups.
const OPERATOR: &str = "ana";

mod attempts;
mod week;

use attempts::*;
pub(super) use week::ROUTES;
use week::*;

/// What seeding did.
pub(super) struct Seeded {
    pub took: Duration,
    /// A message received halfway through the week: its id's tail is what
    /// the text search looks for.
    pub probe_id: String,
}

/// Fills `store` with `n` messages as of `now_ms` (see the module's words).
pub(super) async fn seed(store: &Store, n: u64, now_ms: i64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let start_ms = now_ms - WEEK_MS + MARGIN_MS;
    let span = (now_ms - start_ms) as u64;
    let received = |i: u64| start_ms + (i as u128 * span as u128 / n.max(1) as u128) as i64;
    let queued = (n * QUEUED_PER_MILLE / 1000).max(1).min(n);
    let mut probe_id = String::new();
    let mut accept = async |from: u64, to: u64| -> anyhow::Result<()> {
        let mut i = from;
        while i < to {
            let end = (i + WAVE as u64).min(to);
            let msgs: Vec<NewMessage> = (i..end).map(|j| message(j, received(j), now_ms)).collect();
            if (i..end).contains(&(n / 2)) {
                probe_id = msgs[(n / 2 - i) as usize].id.to_string();
            }
            for r in join_all(msgs.into_iter().map(|m| store.accept(m))).await {
                r?;
            }
            i = end;
            if i % 100_000 < WAVE as u64 {
                eprintln!(
                    "  accepted {i} of {n} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    };
    accept(0, n - queued).await?;
    eprintln!(
        "  accepted {} in {:.1} s; delivering...",
        n - queued,
        started.elapsed().as_secs_f64()
    );
    let systems: Vec<&str> = {
        let mut s: Vec<&str> = ROUTES.iter().map(|r| r.system).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let recorded = join_all(systems.iter().map(|s| deliver(store, s, now_ms))).await;
    let mut attempts = 0;
    for r in recorded {
        attempts += r?;
    }
    eprintln!(
        "  recorded {attempts} attempts ({:.1} s); queueing the newest {queued}...",
        started.elapsed().as_secs_f64()
    );
    accept(n - queued, n).await?;
    operators(store, now_ms).await?;
    Ok(Seeded {
        took: started.elapsed(),
        probe_id,
    })
}

/// Claims and records `system`'s due deliveries until none is due; returns
/// the attempts recorded.
async fn deliver(store: &Store, system: &str, now_ms: i64) -> anyhow::Result<u64> {
    let mut attempts = 0;
    loop {
        let claimed = store.claim(system, now_ms, 3_600_000, CLAIM).await?;
        if claimed.is_empty() {
            return Ok(attempts);
        }
        let records = claimed.iter().map(|d| store.record(attempt(d, now_ms)));
        for r in join_all(records).await {
            if !r? {
                anyhow::bail!("a seeded delivery lost its lease");
            }
            attempts += 1;
        }
    }
}

/// What operators did during the week: discarded the duplicate orders'
/// group in bulk and acknowledged the invalid e-mails' group.
async fn operators(store: &Store, now_ms: i64) -> anyhow::Result<()> {
    let orders = spec("shopify_orders");
    let duplicates = group_key(
        ErrorClass::Rejected,
        orders.system,
        orders.name,
        &Cause::DuplicateOrder.explanation(orders.system, 1),
    );
    store
        .discard_matching(
            MessageFilter {
                state: Some(State::Dead),
                group: Some(duplicates),
                ..Default::default()
            },
            "duplicates of orders the ERP already has (Shopify resent them)",
            OPERATOR,
            now_ms,
            false,
        )
        .await?;
    let customers = spec("erp_customers");
    let emails = group_key(
        ErrorClass::Rejected,
        customers.system,
        customers.name,
        &Cause::InvalidEmail.explanation(customers.system, 1),
    );
    store
        .set_group_status(
            &emails,
            StatusMark {
                status: GroupStatus::Acknowledged,
                note: "the ERP team is cleaning the addresses".into(),
                actor: OPERATOR.into(),
                at_ms: now_ms,
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_one_group_whatever_its_ids() {
        for c in [
            Cause::UnknownSku,
            Cause::DuplicateOrder,
            Cause::NoInventoryItem,
            Cause::PriceMapping,
            Cause::InvalidEmail,
            Cause::HubspotAuth,
            Cause::ErpTimeout,
        ] {
            let k = |n| group_key(c.class(), "erp", "r", &c.explanation("erp", n));
            assert_eq!(k(1234), k(98_765), "{c:?}");
        }
    }

    #[test]
    fn routes_and_fates_add_up() {
        assert_eq!(ROUTES.iter().map(|r| r.weight).sum::<u64>(), 100);
        let now = 10 * WEEK_MS;
        let (mut dead, mut n) = (0, 0);
        for i in 0..20_000u64 {
            let s = route_of(i);
            let f = fate(s, mix(i), now - WEEK_MS, now);
            n += 1;
            dead += u64::from(matches!(f, Some(Fate::Dead(_))));
        }
        let share = dead as f64 / n as f64;
        assert!((0.04..0.06).contains(&share), "dead share {share}");
    }
}
