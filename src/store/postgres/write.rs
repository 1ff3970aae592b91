//! The PostgreSQL store's writes other than accepts: claim and record
//! (deliver); the operators' writes are in `operate.rs`, the janitor's in
//! `housekeeping.rs`. Claims lease rows with
//! `FOR UPDATE SKIP LOCKED`, so workers of every instance take disjoint work;
//! a record applies only while its lease still holds.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{PgStore, batch};
use crate::limits::pace::{self, Grant, Rate};
use crate::store::*;

/// A delivery whose ordering key has an earlier delivery of its route still
/// owed an attempt or dead (`q` is the candidate): not its key's turn. As
/// on SQLite; ids compare bytewise, as the `deliveries_order` index sorts them.
macro_rules! behind {
    () => {
        "q.ordering_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM deliveries e
            WHERE e.route = q.route AND e.ordering_key = q.ordering_key
              AND e.message_id COLLATE \"C\" < q.message_id COLLATE \"C\"
              AND e.ordering_key IS NOT NULL
              AND e.state IN ('queued', 'retrying', 'delivering', 'dead')
              AND NOT (e.state = 'dead' AND e.last_class = 'config'))"
    };
}
pub(super) use behind;

const CLAIM: &str = concat!(
    "
UPDATE deliveries d SET state = 'delivering', next_attempt_ms = $2, updated_ms = $1
FROM (SELECT id FROM deliveries q
      WHERE state IN ('queued', 'retrying', 'delivering') AND system = $4 AND next_attempt_ms <= $1
        AND NOT (",
    behind!(),
    ")
      ORDER BY next_attempt_ms, id LIMIT $3
      FOR UPDATE SKIP LOCKED) c, messages m
WHERE d.id = c.id AND m.id = d.message_id
RETURNING d.id, d.message_id, d.route, d.system, d.delivery_key, d.attempts,
          d.rate_limited_streak, d.auth_streak, d.budget_start_ms,
          COALESCE(d.edited_body, m.body), d.received_ms"
);

/// Back to waiting, unattempted: `queued` unless an attempt already failed.
const DEFER: &str = "UPDATE deliveries
    SET state = CASE WHEN attempts = 0 AND last_class IS NULL THEN 'queued' ELSE 'retrying' END,
        next_attempt_ms = $3, updated_ms = $3
    WHERE id = $1 AND state = 'delivering' AND next_attempt_ms = $2";

impl PgStore {
    pub async fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .batch
            .send(batch::Pending::Accept { msg, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    pub async fn claim(
        &self,
        system: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let lease_until = now_ms + lease_ms;
        let client = self.client().await?;
        let stmt = client.prepare_cached(CLAIM).await?;
        let rows = client
            .query(&stmt, &[&now_ms, &lease_until, &(limit as i64), &system])
            .await?;
        let mut claimed: Vec<Claimed> = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    delivery_id: r.try_get(0)?,
                    message_id: r.try_get(1)?,
                    route: r.try_get(2)?,
                    system: r.try_get(3)?,
                    delivery_key: r.try_get(4)?,
                    attempts: r.try_get::<_, i32>(5)? as u32,
                    rate_limited_streak: r.try_get::<_, i32>(6)? as u32,
                    auth_streak: r.try_get::<_, i32>(7)? as u32,
                    budget_start_ms: r.try_get(8)?,
                    received_ms: r.try_get(10)?,
                    body: Bytes::from(r.try_get::<_, Vec<u8>>(9)?),
                    lease_until,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        claimed.sort_by_key(|d| d.delivery_id);
        Ok(claimed)
    }

    pub async fn defer(
        &self,
        delivery_id: i64,
        lease_until: i64,
        due_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(DEFER, &[&delivery_id, &lease_until, &due_ms])
            .await?;
        Ok(n == 1)
    }

    /// Pulls every delivery toward `system` waiting past `cap_ms`, and the
    /// budget's stored hold past `cap_tat_us`, in to the cap: holds stored
    /// before `max_hold` bounded them (or under a longer one) end in time.
    pub async fn bound_waits(
        &self,
        system: &str,
        budget: &str,
        cap_ms: i64,
        cap_tat_us: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE rate_limits SET tat_us = $2 WHERE key = $1 AND tat_us > $2",
                &[&budget, &cap_tat_us],
            )
            .await?;
        let n = client
            .execute(
                "UPDATE deliveries SET next_attempt_ms = $2
                 WHERE system = $1 AND state IN ('queued', 'retrying') AND next_attempt_ms > $2",
                &[&system, &cap_ms],
            )
            .await?;
        Ok(n)
    }

    pub async fn hold(&self, key: &str, until_us: i64, rate: Rate) -> Result<(), StoreError> {
        let tat = pace::held(None, until_us, rate);
        self.client()
            .await?
            .execute(
                "INSERT INTO rate_limits (key, tat_us) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET tat_us = GREATEST(rate_limits.tat_us, excluded.tat_us)",
                &[&key, &tat],
            )
            .await?;
        Ok(())
    }

    /// A row per system: taken when free (or its interval passed), in one
    /// statement, so two instances cannot both win it.
    pub async fn probe(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let won = client
            .query_opt(
                "INSERT INTO probes (key, until_ms) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms
                 WHERE probes.until_ms <= $3
                 RETURNING until_ms",
                &[&key, &(now_ms + interval_ms), &now_ms],
            )
            .await?;
        if won.is_some() {
            return Ok(None);
        }
        let held = client
            .query_one("SELECT until_ms FROM probes WHERE key = $1", &[&key])
            .await?;
        Ok(Some(held.try_get(0)?))
    }

    /// The budget is a row that every instance updates under its lock, so
    /// reservations from all instances are spaced as one.
    pub async fn reserve(
        &self,
        key: &str,
        now_us: i64,
        rate: Rate,
        want: u32,
        horizon_us: i64,
    ) -> Result<Grant, StoreError> {
        let mut client = self.client().await?;
        if rate == Rate::UNLIMITED {
            // Nothing to reserve, only a platform's hold to respect: a read.
            let tat: Option<i64> = client
                .query_opt("SELECT tat_us FROM rate_limits WHERE key = $1", &[&key])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            return Ok(pace::reserve(tat, now_us, rate, want, horizon_us).1);
        }
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO rate_limits (key, tat_us) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &now_us],
        )
        .await?;
        let tat: i64 = tx
            .query_one(
                "SELECT tat_us FROM rate_limits WHERE key = $1 FOR UPDATE",
                &[&key],
            )
            .await?
            .try_get(0)?;
        let (new_tat, grant) = pace::reserve(Some(tat), now_us, rate, want, horizon_us);
        if new_tat != tat {
            tx.execute(
                "UPDATE rate_limits SET tat_us = $2 WHERE key = $1",
                &[&key, &new_tat],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(grant)
    }

    /// Joins the next group commit (with accepts and other records).
    pub async fn record(&self, r: AttemptRecord) -> Result<bool, StoreError> {
        let Landing {
            state,
            next_ms,
            budget,
            rate_limited,
            auth,
        } = r.next.landing();
        let failed = r.class.is_some();
        // PostgreSQL's text refuses NUL; a platform's answer quoted in an
        // explanation may carry one, and must not make the record fail forever.
        let (explanation, hint) = (text_safe(r.explanation), text_safe(r.hint));
        let rec = batch::RecordRow {
            delivery_id: r.delivery_id,
            lease_until: r.lease_until,
            state,
            next_ms,
            budget,
            rate_limited,
            auth,
            class: r.class.map(|c| c.as_str()),
            last_explanation: failed.then(|| explanation.clone()),
            last_hint: failed.then(|| hint.clone()),
            updated_ms: r.started_ms + r.duration_ms,
            started_ms: r.started_ms,
            duration_ms: r.duration_ms,
            request: serde_json::to_string(&r.request)?,
            response: r.response.as_ref().map(serde_json::to_string).transpose()?,
            explanation,
            hint,
            failure_group: r.failure_group,
        };
        let (reply, rx) = oneshot::channel();
        self.inner
            .batch
            .send(batch::Pending::Record { rec, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// `s` with every NUL character replaced, for a PostgreSQL text column.
fn text_safe(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}
