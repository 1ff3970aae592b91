//! The SQLite store's writes, each one operation for the group-committing
//! writer: accept (ingest), claim and record (deliver). The operators' writes
//! are in `operate.rs`, the janitor's in `housekeeping.rs`.

use bytes::Bytes;
use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::limits::pace::{self, Grant, Rate};
use crate::store::*;

const PENDING: &str = "('queued', 'retrying', 'delivering')";
/// A delivery whose ordering key has an earlier delivery of its route still
/// owed an attempt or dead (`q` is the candidate): it is not its key's turn.
/// The state list matches the `deliveries_order` index's. A delivery dead
/// for a configuration reason (its route or system removed) holds nothing:
/// the rest of its key ends the same way.
pub(super) const BEHIND: &str = "q.ordering_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM deliveries e INDEXED BY deliveries_order
    WHERE e.route = q.route AND e.ordering_key = q.ordering_key AND e.message_id < q.message_id
      AND e.ordering_key IS NOT NULL AND e.state IN ('queued', 'retrying', 'delivering', 'dead')
      AND NOT (e.state = 'dead' AND e.last_class = 'config'))";

/// Auto-resolve on SQLite: [`SUPERSEDED_BY`] for the delivered delivery
/// `?1`, at `?2`, as one branch per key, each through its partial index
/// (`deliveries_entity`, `deliveries_order`: the redundant state list
/// matches the latter's). Written with the `OR` of `SUPERSEDED_BY`,
/// SQLite walked every dead delivery of the route (and, for the outer
/// `state = 'dead'`, every dead one of the store) on every delivered
/// record, keyed or not: at 50,000 dead deliveries, records fell to
/// ~2,000/s. A null key matches nothing in its branch.
const SUPERSEDE: &str = "UPDATE deliveries SET state = 'superseded', updated_ms = ?2
    WHERE id IN (
      SELECT o.id FROM deliveries d JOIN deliveries o INDEXED BY deliveries_entity
        ON o.route = d.route AND o.entity_key = d.entity_key AND o.state = 'dead' AND o.id <> d.id
       AND (o.received_ms < d.received_ms OR (o.received_ms = d.received_ms AND o.id < d.id))
      WHERE d.id = ?1
      UNION ALL
      SELECT o.id FROM deliveries d JOIN deliveries o INDEXED BY deliveries_order
        ON o.route = d.route AND o.ordering_key = d.ordering_key AND o.state = 'dead'
       AND o.state IN ('queued', 'retrying', 'delivering', 'dead') AND o.id <> d.id
       AND (o.received_ms < d.received_ms OR (o.received_ms = d.received_ms AND o.id < d.id))
      WHERE d.id = ?1)";

/// Back to waiting, unattempted: `queued` unless an attempt already failed.
const DEFER: &str = "UPDATE deliveries
    SET state = CASE WHEN attempts = 0 AND last_class IS NULL THEN 'queued' ELSE 'retrying' END,
        next_attempt_ms = ?3, updated_ms = ?3
    WHERE id = ?1 AND state = 'delivering' AND next_attempt_ms = ?2";

impl SqliteStore {
    pub async fn accept(&self, m: NewMessage) -> Result<Accepted, StoreError> {
        self.inner.writer.write(move |c| accept(c, m)).await
    }

    pub async fn claim(
        &self,
        system: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let system = system.to_owned();
        self.inner
            .writer
            .write(move |c| claim(c, &system, now_ms, now_ms + lease_ms, limit))
            .await
    }

    pub async fn defer(
        &self,
        delivery_id: i64,
        lease_until: i64,
        due_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |c| {
                Ok(c.prepare_cached(DEFER)?
                    .execute(params![delivery_id, lease_until, due_ms])?
                    == 1)
            })
            .await
    }

    /// Pulls every delivery toward `system` waiting past `cap_ms` (held by a
    /// platform before `max_hold` bounded holds) in to `cap_ms`; the budget
    /// lives in memory here, so no stored hold outlasts a restart.
    pub async fn bound_waits(
        &self,
        system: &str,
        budget: &str,
        cap_ms: i64,
        cap_tat_us: i64,
    ) -> Result<u64, StoreError> {
        if let Some(tat) = self
            .inner
            .budgets
            .lock()
            .expect("budgets poisoned")
            .get_mut(budget)
        {
            *tat = (*tat).min(cap_tat_us);
        }
        let system = system.to_owned();
        self.inner
            .writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE deliveries SET next_attempt_ms = ?2
                         WHERE system = ?1 AND state IN ('queued', 'retrying')
                           AND next_attempt_ms > ?2",
                    )?
                    .execute(params![system, cap_ms])?;
                Ok(n as u64)
            })
            .await
    }

    pub async fn hold(&self, key: &str, until_us: i64, rate: Rate) -> Result<(), StoreError> {
        let mut budgets = self.inner.budgets.lock().expect("budgets poisoned");
        let tat = pace::held(budgets.get(key).copied(), until_us, rate);
        budgets.insert(key.to_owned(), tat);
        Ok(())
    }

    /// In memory, like the budgets: one SQLite file has one server.
    pub async fn probe(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut probes = self.inner.probes.lock().expect("probes poisoned");
        match probes.get(key) {
            Some(&until) if until > now_ms => Ok(Some(until)),
            _ => {
                probes.insert(key.to_owned(), now_ms + interval_ms);
                Ok(None)
            }
        }
    }

    /// The budget lives in memory: one SQLite file has one server.
    pub async fn reserve(
        &self,
        key: &str,
        now_us: i64,
        rate: Rate,
        want: u32,
        horizon_us: i64,
    ) -> Result<Grant, StoreError> {
        let mut budgets = self.inner.budgets.lock().expect("budgets poisoned");
        let tat = budgets.get(key).copied();
        let (tat, grant) = pace::reserve(tat, now_us, rate, want, horizon_us);
        budgets.insert(key.to_owned(), tat);
        Ok(grant)
    }

    pub async fn record(&self, rec: AttemptRecord) -> Result<bool, StoreError> {
        self.inner.writer.write(move |c| record(c, rec)).await
    }
}

fn accept(c: &Connection, m: NewMessage) -> Result<Accepted, StoreError> {
    if let Some(d) = &m.dedupe {
        // Insert the key, or take over an expired one; a live key means duplicate.
        let won = c
            .prepare_cached(
                "INSERT INTO dedupe (route, key, message_id, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (route, key) DO UPDATE SET message_id = excluded.message_id, expires_ms = excluded.expires_ms
                 WHERE dedupe.expires_ms <= ?5",
            )?
            .execute(params![m.route, d.key, m.id, d.expires_ms, m.received_ms])?;
        if won == 0 {
            let original: String = c
                .prepare_cached("SELECT message_id FROM dedupe WHERE route = ?1 AND key = ?2")?
                .query_row(params![m.route, d.key], |r| r.get(0))?;
            return Ok(Accepted::Duplicate { original });
        }
    }
    if let Some(i) = &m.idempotency {
        let won = c
            .prepare_cached(
                "INSERT INTO idempotency (client, key, fingerprint, status, body, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (client, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                   body = excluded.body, expires_ms = excluded.expires_ms
                 WHERE idempotency.expires_ms <= ?7",
            )?
            .execute(params![i.client, i.key, i.fingerprint, i.response.status, i.response.body, i.expires_ms, m.received_ms])?;
        if won == 0 {
            let (fingerprint, status, body): (Vec<u8>, u16, Vec<u8>) = c
                .prepare_cached("SELECT fingerprint, status, body FROM idempotency WHERE client = ?1 AND key = ?2")?
                .query_row(params![i.client, i.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            return Ok(if fingerprint == i.fingerprint {
                Accepted::Replay(StoredResponse { status, body })
            } else {
                Accepted::KeyReused
            });
        }
    }
    c.prepare_cached("INSERT INTO messages (id, route, received_ms, event_id, headers, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![m.id, m.route, m.received_ms, m.event_id, m.headers, &m.body[..]])?;
    c.prepare_cached(
        "INSERT INTO deliveries (message_id, route, system, state, delivery_key, received_ms, budget_start_ms, next_attempt_ms, updated_ms, ordering_key, job_id, entity_key)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?5, ?5, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![m.id, m.route, m.system, m.delivery_key, m.received_ms, m.ordering_key, m.job_id, m.entity_key])?;
    Ok(Accepted::New)
}

fn claim(
    c: &Connection,
    system: &str,
    now_ms: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<Claimed>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "UPDATE deliveries SET state = 'delivering', next_attempt_ms = ?2, updated_ms = ?1
         WHERE id IN (SELECT id FROM deliveries q INDEXED BY deliveries_due
                      WHERE state IN {PENDING} AND system = ?4 AND next_attempt_ms <= ?1
                        AND NOT ({BEHIND})
                      ORDER BY next_attempt_ms, id LIMIT ?3)
         RETURNING id, message_id, route, system, delivery_key, attempts, rate_limited_streak, auth_streak, budget_start_ms, received_ms"
    ))?;
    let mut claimed: Vec<Claimed> = stmt
        .query_map(params![now_ms, lease_until, limit as i64, system], |r| {
            Ok(Claimed {
                delivery_id: r.get(0)?,
                message_id: r.get(1)?,
                route: r.get(2)?,
                system: r.get(3)?,
                delivery_key: r.get(4)?,
                body: Bytes::new(),
                attempts: r.get(5)?,
                rate_limited_streak: r.get(6)?,
                auth_streak: r.get(7)?,
                budget_start_ms: r.get(8)?,
                received_ms: r.get(9)?,
                lease_until,
            })
        })?
        .collect::<Result<_, _>>()?;
    // An operator's edited payload, where there is one, else the original.
    let mut body = c.prepare_cached(
        "SELECT COALESCE(d.edited_body, m.body) FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.id = ?",
    )?;
    for d in &mut claimed {
        let b: Vec<u8> = body.query_row([&d.delivery_id], |r| r.get(0))?;
        d.body = Bytes::from(b);
    }
    claimed.sort_by_key(|d| d.delivery_id);
    Ok(claimed)
}

fn record(c: &Connection, r: AttemptRecord) -> Result<bool, StoreError> {
    let Landing {
        state,
        next_ms,
        budget,
        rate_limited: rl,
        auth,
    } = r.next.landing();
    let changed = c
        .prepare_cached(
            "UPDATE deliveries SET state = ?3, next_attempt_ms = COALESCE(?4, next_attempt_ms),
               attempts = attempts + ?5,
               rate_limited_streak = CASE WHEN ?6 THEN rate_limited_streak + 1 ELSE 0 END,
               auth_streak = CASE WHEN ?7 THEN auth_streak + 1 ELSE 0 END,
               last_class = ?8, last_explanation = ?9, last_hint = ?10, updated_ms = ?11,
               failure_group = ?12
             WHERE id = ?1 AND state = 'delivering' AND next_attempt_ms = ?2",
        )?
        .execute(params![
            r.delivery_id,
            r.lease_until,
            state,
            next_ms,
            budget,
            rl,
            auth,
            r.class.map(|c| c.as_str()),
            (r.class.is_some()).then_some(&r.explanation),
            (r.class.is_some()).then_some(&r.hint),
            r.started_ms + r.duration_ms,
            r.failure_group,
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    let request = serde_json::to_string(&r.request)?;
    let response = r.response.as_ref().map(serde_json::to_string).transpose()?;
    c.prepare_cached(
        "INSERT INTO attempts (delivery_id, started_ms, duration_ms, request, response, class, explanation, hint, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        r.delivery_id,
        r.started_ms,
        r.duration_ms,
        request,
        response,
        r.class.map(|c| c.as_str()),
        r.explanation,
        r.hint,
        state,
    ])?;
    if r.next == Next::Delivered {
        c.prepare_cached(SUPERSEDE)?
            .execute(params![r.delivery_id, r.started_ms + r.duration_ms])?;
    }
    Ok(true)
}
