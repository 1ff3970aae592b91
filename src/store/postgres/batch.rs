//! Group commit on PostgreSQL: accepts (ingest) and attempt records (deliver)
//! queue up here and go to the database in one transaction per batch, so a
//! batch costs a few round trips and one WAL flush (`accept.rs` says how
//! accepts are written). Up to [`COMMITTERS`] transactions run at once; while
//! they do, the queue grows into the next batch. Replies go out only after
//! COMMIT, and nothing that could fail runs after it: a batch that failed
//! is tried again, and must never have been stored already.
//!
//! Accepts are sorted by key so that two instances take key locks in the same
//! order; a deadlock or serialization failure that happens anyway is retried
//! with the whole batch, which is why a batch is data, not closures.

use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use futures_util::future::try_join_all;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{WORK_CHANNEL, accept};
use crate::store::{Accepted, NewMessage, StoreError};

const MAX_BATCH: usize = 512;
const COMMITTERS: usize = 4;
/// Tries per batch when PostgreSQL picks it as a deadlock victim.
const TRIES: usize = 3;

/// Moves a leased delivery on and appends its attempt, in one statement; no
/// row when the lease was lost.
const RECORD: &str = "
WITH u AS (
    UPDATE deliveries SET state = $3, next_attempt_ms = COALESCE($4, next_attempt_ms),
        attempts = attempts + $5,
        rate_limited_streak = CASE WHEN $6 THEN rate_limited_streak + 1 ELSE 0 END,
        auth_streak = CASE WHEN $7 THEN auth_streak + 1 ELSE 0 END,
        last_class = $8, last_explanation = $9, last_hint = $10, updated_ms = $11,
        failure_group = $18
    WHERE id = $1 AND state = 'delivering' AND next_attempt_ms = $2
    RETURNING id
)
INSERT INTO attempts (delivery_id, started_ms, duration_ms, request, response, class, explanation, hint, outcome)
SELECT u.id, $12, $13, $14, $15, $8, $16, $17, $3 FROM u
RETURNING delivery_id";

pub enum Pending {
    Accept {
        msg: NewMessage,
        reply: oneshot::Sender<Result<Accepted, StoreError>>,
    },
    Record {
        rec: RecordRow,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// An attempt record as [`RECORD`]'s parameters.
pub struct RecordRow {
    pub delivery_id: i64,
    pub lease_until: i64,
    pub state: &'static str,
    pub next_ms: Option<i64>,
    pub budget: i32,
    pub rate_limited: bool,
    pub auth: bool,
    pub class: Option<&'static str>,
    /// Explanation and hint as the delivery's "last failure", if it failed.
    pub last_explanation: Option<String>,
    pub last_hint: Option<String>,
    pub updated_ms: i64,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub request: String,
    pub response: Option<String>,
    pub explanation: String,
    pub hint: String,
    pub failure_group: Option<String>,
}

/// Forms batches from the queue until `stop`.
pub async fn run(pool: Pool, mut rx: mpsc::UnboundedReceiver<Pending>, stop: CancellationToken) {
    let committers = Arc::new(Semaphore::new(COMMITTERS));
    // Batches holding messages with an ordering key commit one after another,
    // in the order they were formed: otherwise a later message of a key could
    // commit (and be claimed) before an earlier one of another batch.
    let ordered_lane = Arc::new(tokio::sync::Mutex::new(()));
    loop {
        let first = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => return },
            _ = stop.cancelled() => return,
        };
        let Ok(permit) = committers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let ordered = batch
            .iter()
            .any(|p| matches!(p, Pending::Accept { msg, .. } if msg.ordering_key.is_some()));
        let lane = match ordered {
            true => Some(ordered_lane.clone().lock_owned().await),
            false => None,
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, batch).await;
            drop(lane);
            drop(permit);
        });
    }
}

/// Commits one batch and answers every caller in it. When the batch fails
/// for a reason other than a lock conflict (one message PostgreSQL refuses,
/// say a NUL character in a text column), each item is committed on its own,
/// so only the bad one gets the error and the others are not held hostage.
async fn commit(pool: &Pool, batch: Vec<Pending>) {
    let single = batch.len() == 1;
    let Err((batch, e)) = commit_together(pool, batch).await else {
        return;
    };
    if single {
        tracing::error!(error = %crate::model::Chain(&e), "A commit failed; its caller gets an error and nothing was acked.");
        return fail(batch, &e);
    }
    tracing::warn!(error = %crate::model::Chain(&e), "A group commit failed; committing its items one by one.");
    for p in batch {
        if let Err((p, e)) = commit_together(pool, vec![p]).await {
            tracing::error!(error = %crate::model::Chain(&e), "A commit failed; its caller gets an error and nothing was acked.");
            fail(p, &e);
        }
    }
}

fn fail(batch: Vec<Pending>, e: &StoreError) {
    let why = e.to_string();
    for p in batch {
        match p {
            Pending::Accept { reply, .. } => drop(reply.send(Err(StoreError::Commit(why.clone())))),
            Pending::Record { reply, .. } => drop(reply.send(Err(StoreError::Commit(why.clone())))),
        }
    }
}

/// Commits the items in one transaction (retrying lock conflicts) and answers
/// them; on failure hands them back unanswered.
async fn commit_together(
    pool: &Pool,
    batch: Vec<Pending>,
) -> Result<(), (Vec<Pending>, StoreError)> {
    let mut accepts = Vec::new();
    let mut records = Vec::new();
    for p in batch {
        match p {
            Pending::Accept { msg, reply } => accepts.push((msg, reply)),
            Pending::Record { rec, reply } => records.push((rec, reply)),
        }
    }
    accepts.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)));
    let msgs: Vec<&NewMessage> = accepts.iter().map(|a| &a.0).collect();
    let recs: Vec<&RecordRow> = records.iter().map(|r| &r.0).collect();
    let mut outcome = attempt(pool, &msgs, &recs).await;
    for _ in 1..TRIES {
        match &outcome {
            Err(StoreError::Postgres(e)) if retryable(e) => {
                outcome = attempt(pool, &msgs, &recs).await
            }
            _ => break,
        }
    }
    match outcome {
        Ok((accepted, recorded)) => {
            for ((_, reply), a) in accepts.into_iter().zip(accepted) {
                let _ = reply.send(Ok(a));
            }
            for ((_, reply), r) in records.into_iter().zip(recorded) {
                let _ = reply.send(Ok(r));
            }
            Ok(())
        }
        Err(e) => {
            let back = accepts
                .into_iter()
                .map(|(msg, reply)| Pending::Accept { msg, reply })
                .chain(
                    records
                        .into_iter()
                        .map(|(rec, reply)| Pending::Record { rec, reply }),
                )
                .collect();
            Err((back, e))
        }
    }
}

/// A key's scope and value (route or client, then the key).
type Key<'a> = Option<(&'a str, &'a str)>;

fn key_order(m: &NewMessage) -> (Key<'_>, Key<'_>) {
    (
        m.dedupe
            .as_ref()
            .map(|d| (m.route.as_str(), d.key.as_str())),
        m.idempotency
            .as_ref()
            .map(|i| (i.client.as_str(), i.key.as_str())),
    )
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

async fn attempt(
    pool: &Pool,
    msgs: &[&NewMessage],
    recs: &[&RecordRow],
) -> Result<(Vec<Accepted>, Vec<bool>), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let staged = accept::stage(&tx, msgs).await?;
    let recorded = record_all(&tx, recs).await?;
    supersede(&tx, recs, &recorded).await?;
    if staged.any_new {
        tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL])
            .await?;
    }
    tx.commit().await?;
    Ok((staged.answers, recorded))
}

/// Auto-resolve: the older dead deliveries of each delivered one's entity
/// become `superseded` (`store::SUPERSEDED_BY`).
async fn supersede(
    tx: &Transaction<'_>,
    recs: &[&RecordRow],
    recorded: &[bool],
) -> Result<(), StoreError> {
    let (ids, at): (Vec<i64>, Vec<i64>) = recs
        .iter()
        .zip(recorded)
        .filter(|(r, ok)| **ok && r.state == "delivered")
        .map(|(r, _)| (r.delivery_id, r.updated_ms))
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    // A delivery with neither key supersedes nothing: said outright, the
    // dead ones of its route are never looked at, whatever the plan (with
    // no statistics yet, PostgreSQL walked them all through
    // `deliveries_state` for every delivered record: 10-27 s a batch at
    // 30,000 dead deliveries while a fresh store filled).
    let sql = format!(
        "UPDATE deliveries u SET state = 'superseded', updated_ms = t.at
         FROM (SELECT o.id, MAX(k.at) AS at FROM unnest($1::bigint[], $2::bigint[]) AS k(id, at)
               JOIN LATERAL ({} WHERE d.id = k.id
                 AND (d.entity_key IS NOT NULL OR d.ordering_key IS NOT NULL)) o ON true
               GROUP BY o.id) t
         WHERE u.id = t.id AND u.state = 'dead'",
        crate::store::SUPERSEDED_BY
    );
    tx.execute(&sql, &[&ids, &at]).await?;
    Ok(())
}

/// Every record of the batch, pipelined; true where the lease still held.
async fn record_all(tx: &Transaction<'_>, recs: &[&RecordRow]) -> Result<Vec<bool>, StoreError> {
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx.prepare_cached(RECORD).await?;
    let stmt = &stmt;
    Ok(try_join_all(recs.iter().map(|r| async move {
        let n = tx
            .execute(
                stmt,
                &[
                    &r.delivery_id,
                    &r.lease_until,
                    &r.state,
                    &r.next_ms,
                    &r.budget,
                    &r.rate_limited,
                    &r.auth,
                    &r.class,
                    &r.last_explanation,
                    &r.last_hint,
                    &r.updated_ms,
                    &r.started_ms,
                    &r.duration_ms,
                    &r.request,
                    &r.response,
                    &r.explanation,
                    &r.hint,
                    &r.failure_group,
                ],
            )
            .await?;
        Ok::<bool, tokio_postgres::Error>(n == 1)
    }))
    .await?)
}
