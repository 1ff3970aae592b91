//! Accepts inside a batch's transaction: webhooks (no idempotency key) in one
//! statement over arrays, the others in one pipelined statement each, since
//! their answer depends on a stored response. Answers that need a key's
//! holder are looked up once the batch has committed.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use futures_util::future::try_join_all;

use crate::store::{Accepted, NewMessage, StoreError, StoredResponse};

/// One statement per message: take the dedupe key (or an expired one), then
/// the idempotency key, and only if both were won insert the message and its
/// delivery. It returns whether it won and what the keys point at.
const ACCEPT: &str = "
WITH d AS (
    INSERT INTO dedupe (route, key, message_id, expires_ms)
    SELECT $2::text, $9::text, $1::text, $10::bigint WHERE $9::text IS NOT NULL
    ON CONFLICT (route, key) DO UPDATE
        SET message_id = excluded.message_id, expires_ms = excluded.expires_ms
        WHERE dedupe.expires_ms <= $4::bigint
    RETURNING 1
), dd AS (
    SELECT ($9::text IS NULL OR EXISTS (SELECT 1 FROM d)) AS won
), i AS (
    INSERT INTO idempotency (client, key, fingerprint, status, body, expires_ms)
    SELECT $11::text, $12::text, $13::bytea, $14::integer, $15::bytea, $16::bigint
    FROM dd WHERE dd.won AND $12::text IS NOT NULL
    ON CONFLICT (client, key) DO UPDATE
        SET fingerprint = excluded.fingerprint, status = excluded.status,
            body = excluded.body, expires_ms = excluded.expires_ms
        WHERE idempotency.expires_ms <= $4::bigint
    RETURNING 1
), ok AS (
    SELECT dd.won AND ($12::text IS NULL OR EXISTS (SELECT 1 FROM i)) AS won FROM dd
), m AS (
    INSERT INTO messages (id, route, received_ms, event_id, headers, body)
    SELECT $1::text, $2::text, $4::bigint, $5::text, $6::text, $7::bytea FROM ok WHERE ok.won
    RETURNING id
), x AS (
    INSERT INTO deliveries (message_id, route, system, state, delivery_key, received_ms,
                            budget_start_ms, next_attempt_ms, updated_ms, ordering_key, job_id, entity_key)
    SELECT m.id, $2::text, $3::text, 'queued', $8::text, $4::bigint, $4::bigint, $4::bigint, $4::bigint,
           $17::text, $18::text, $19::text
    FROM m
)
SELECT ok.won, dd.won,
       (SELECT message_id FROM dedupe WHERE route = $2::text AND key = $9::text),
       (SELECT fingerprint FROM idempotency WHERE client = $11::text AND key = $12::text),
       (SELECT status FROM idempotency WHERE client = $11::text AND key = $12::text),
       (SELECT body FROM idempotency WHERE client = $11::text AND key = $12::text)
FROM ok, dd";

/// The webhook path: every message of the batch (keys unique within it) in
/// one statement; returns the ids that won their dedupe key.
const BULK_ACCEPT: &str = "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                         $6::text[], $7::bytea[], $8::text[], $9::text[], $10::bigint[], $12::text[],
                         $13::text[], $14::text[])
        AS t(id, route, system, received_ms, event_id, headers, body, delivery_key, dkey, dexp, okey,
             job, ekey)
), d AS (
    INSERT INTO dedupe (route, key, message_id, expires_ms)
    SELECT route, dkey, id, dexp FROM input WHERE dkey IS NOT NULL
    ON CONFLICT (route, key) DO UPDATE
        SET message_id = excluded.message_id, expires_ms = excluded.expires_ms
        WHERE dedupe.expires_ms <= $11
    RETURNING message_id
), won AS (
    SELECT * FROM input WHERE dkey IS NULL OR id IN (SELECT message_id FROM d)
), m AS (
    INSERT INTO messages (id, route, received_ms, event_id, headers, body)
    SELECT id, route, received_ms, event_id, headers, body FROM won
), x AS (
    INSERT INTO deliveries (message_id, route, system, state, delivery_key, received_ms,
                            budget_start_ms, next_attempt_ms, updated_ms, ordering_key, job_id, entity_key)
    SELECT id, route, system, 'queued', delivery_key, received_ms, received_ms, received_ms, received_ms,
           okey, job, ekey
    FROM won
)
SELECT id FROM won";

/// Who holds each of these dedupe keys (a new statement: it sees keys that
/// other instances committed while our batch waited on them).
const OWNERS: &str = "SELECT d.route, d.key, d.message_id FROM dedupe d
    JOIN unnest($1::text[], $2::text[]) AS k(route, key) ON d.route = k.route AND d.key = k.key";

/// A key lookup in a new statement of the batch's transaction, for a key
/// another instance committed after the accept statement took its snapshot.
const DEDUPE_OWNER: &str = "SELECT message_id FROM dedupe WHERE route = $1 AND key = $2";
const IDEMPOTENCY_RECORD: &str =
    "SELECT fingerprint, status, body FROM idempotency WHERE client = $1 AND key = $2";

/// A row of [`ACCEPT`].
struct Row {
    won: bool,
    dedupe_won: bool,
    owner: Option<String>,
    fingerprint: Option<Vec<u8>>,
    status: Option<i32>,
    body: Option<Vec<u8>>,
}

/// Accepts staged in a transaction that has not committed yet, with every
/// caller's answer: all lookups happen before COMMIT, so once it succeeds
/// nothing can fail and send the batch round again.
pub struct Staged {
    pub answers: Vec<Accepted>,
    /// Whether any message was new (work to announce).
    pub any_new: bool,
}

/// Runs every accept of the batch in `tx` and works out the answers.
pub async fn stage(tx: &Transaction<'_>, msgs: &[&NewMessage]) -> Result<Staged, StoreError> {
    let (bulk, single): (Vec<usize>, Vec<usize>) =
        (0..msgs.len()).partition(|&i| msgs[i].idempotency.is_none());
    let mut out: Vec<Option<Accepted>> = vec![None; msgs.len()];
    let bulk_new = accept_bulk(tx, msgs, &bulk, &mut out).await?;
    let stmt = tx.prepare_cached(ACCEPT).await?;
    let rows = try_join_all(single.iter().map(|&i| {
        let m = msgs[i];
        let d = m.dedupe.as_ref();
        let i = m.idempotency.as_ref();
        let status = i.map(|i| i32::from(i.response.status));
        let stmt = &stmt;
        async move {
            let r = tx
                .query_one(
                    stmt,
                    &[
                        &m.id,
                        &m.route,
                        &m.system,
                        &m.received_ms,
                        &m.event_id,
                        &m.headers,
                        &&m.body[..],
                        &m.delivery_key,
                        &d.map(|d| d.key.as_str()),
                        &d.map(|d| d.expires_ms),
                        &i.map(|i| i.client.as_str()),
                        &i.map(|i| i.key.as_str()),
                        &i.map(|i| i.fingerprint.as_slice()),
                        &status,
                        &i.map(|i| i.response.body.as_slice()),
                        &i.map(|i| i.expires_ms),
                        &m.ordering_key,
                        &m.job_id,
                        &m.entity_key,
                    ],
                )
                .await?;
            Ok::<Row, tokio_postgres::Error>(Row {
                won: r.try_get(0)?,
                dedupe_won: r.try_get(1)?,
                owner: r.try_get(2)?,
                fingerprint: r.try_get(3)?,
                status: r.try_get(4)?,
                body: r.try_get(5)?,
            })
        }
    }))
    .await?;
    let any_new = bulk_new || rows.iter().any(|r| r.won);
    for (i, row) in single.into_iter().zip(rows) {
        out[i] = Some(verdict(tx, msgs[i], row).await?);
    }
    let answers = out
        .into_iter()
        .map(|a| a.ok_or_else(|| StoreError::Corrupt("an accept got no answer".into())))
        .collect::<Result<_, _>>()?;
    Ok(Staged { answers, any_new })
}

/// Inserts the messages `idx` (no idempotency key) with [`BULK_ACCEPT`] and
/// writes their answers into `out`; true when any was new. A key that
/// appears twice in the batch goes in once: the later copies are
/// duplicates of whoever holds it.
async fn accept_bulk(
    tx: &Transaction<'_>,
    msgs: &[&NewMessage],
    idx: &[usize],
    out: &mut [Option<Accepted>],
) -> Result<bool, StoreError> {
    if idx.is_empty() {
        return Ok(false);
    }
    let (first, go) = first_of_each_key(msgs, idx);
    let won = insert_bulk(tx, &go).await?;
    // Keys lost to a message stored earlier (here or on another instance).
    let lost: Vec<(&str, &str)> = first
        .iter()
        .filter(|(_, i)| !won.contains(msgs[**i].id.as_str()))
        .map(|(k, _)| *k)
        .collect();
    let owners = owners(tx, &lost).await?;
    let holder = |m: &NewMessage| -> Result<Accepted, StoreError> {
        let key = m.dedupe.as_ref().map(|d| d.key.as_str());
        let first_of_key = key.and_then(|k| first.get(&(m.route.as_str(), k)));
        let (Some(key), Some(&first_of_key)) = (key, first_of_key) else {
            return Err(StoreError::Corrupt(format!(
                "message {} without a dedupe key was not stored",
                m.id
            )));
        };
        let first_id = &msgs[first_of_key].id;
        let original = if won.contains(first_id.as_str()) {
            first_id.to_string()
        } else {
            owners
                .get(&(m.route.to_string(), key.to_owned()))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("dedupe key {key} lost, but no one holds it"))
                })?
        };
        Ok(Accepted::Duplicate { original })
    };
    for &i in idx {
        let m = msgs[i];
        out[i] = Some(if won.contains(m.id.as_str()) {
            Accepted::New
        } else {
            holder(m)?
        });
    }
    Ok(!won.is_empty())
}

/// The first message of each (route, dedupe key) among `idx`, and the
/// messages to insert: those firsts and every message without a key.
fn first_of_each_key<'m>(
    msgs: &[&'m NewMessage],
    idx: &[usize],
) -> (HashMap<(&'m str, &'m str), usize>, Vec<&'m NewMessage>) {
    let mut first = HashMap::new();
    let mut go = Vec::with_capacity(idx.len());
    for &i in idx {
        let m = msgs[i];
        match &m.dedupe {
            Some(d) => match first.entry((m.route.as_str(), d.key.as_str())) {
                Entry::Occupied(_) => {}
                Entry::Vacant(v) => {
                    v.insert(i);
                    go.push(m);
                }
            },
            None => go.push(m),
        }
    }
    (first, go)
}

/// One [`BULK_ACCEPT`] for `go`, column by column; the ids it stored.
async fn insert_bulk(
    tx: &Transaction<'_>,
    go: &[&NewMessage],
) -> Result<HashSet<String>, StoreError> {
    let col = |f: fn(&NewMessage) -> &str| go.iter().map(|m| f(m)).collect::<Vec<_>>();
    let now = go.iter().map(|m| m.received_ms).min().unwrap_or_default();
    let stmt = tx.prepare_cached(BULK_ACCEPT).await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &col(|m| &m.id),
                &col(|m| &m.route),
                &col(|m| &m.system),
                &go.iter().map(|m| m.received_ms).collect::<Vec<_>>(),
                &go.iter().map(|m| m.event_id.as_deref()).collect::<Vec<_>>(),
                &col(|m| &m.headers),
                &go.iter().map(|m| &m.body[..]).collect::<Vec<_>>(),
                &col(|m| &m.delivery_key),
                &go.iter()
                    .map(|m| m.dedupe.as_ref().map(|d| d.key.as_str()))
                    .collect::<Vec<_>>(),
                &go.iter()
                    .map(|m| m.dedupe.as_ref().map(|d| d.expires_ms))
                    .collect::<Vec<_>>(),
                &now,
                &go.iter()
                    .map(|m| m.ordering_key.as_deref())
                    .collect::<Vec<_>>(),
                &go.iter().map(|m| m.job_id.as_deref()).collect::<Vec<_>>(),
                &go.iter()
                    .map(|m| m.entity_key.as_deref())
                    .collect::<Vec<_>>(),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Who holds each of the `lost` (route, key) pairs: their message ids.
async fn owners(
    tx: &Transaction<'_>,
    lost: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>, StoreError> {
    let mut owners = HashMap::new();
    if !lost.is_empty() {
        let routes: Vec<&str> = lost.iter().map(|k| k.0).collect();
        let keys: Vec<&str> = lost.iter().map(|k| k.1).collect();
        for r in tx.query(OWNERS, &[&routes, &keys]).await? {
            owners.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
        }
    }
    Ok(owners)
}

/// Turns a statement's row into the caller's answer, looking a key up again
/// when a transaction that committed after our snapshot held it.
async fn verdict(
    client: &Transaction<'_>,
    m: &NewMessage,
    row: Row,
) -> Result<Accepted, StoreError> {
    if row.won {
        return Ok(Accepted::New);
    }
    if !row.dedupe_won {
        let d = m.dedupe.as_ref().ok_or_else(|| {
            StoreError::Corrupt("lost a dedupe key the message did not have".into())
        })?;
        let original = match row.owner {
            Some(o) => o,
            None => client
                .query_one(DEDUPE_OWNER, &[&m.route, &d.key])
                .await?
                .try_get(0)?,
        };
        return Ok(Accepted::Duplicate { original });
    }
    let i = m.idempotency.as_ref().ok_or_else(|| {
        StoreError::Corrupt("lost an idempotency key the message did not have".into())
    })?;
    let (fingerprint, status, body): (Vec<u8>, i32, Vec<u8>) =
        match (row.fingerprint, row.status, row.body) {
            (Some(f), Some(s), Some(b)) => (f, s, b),
            _ => {
                let r = client
                    .query_one(IDEMPOTENCY_RECORD, &[&i.client, &i.key])
                    .await?;
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)
            }
        };
    Ok(if fingerprint == i.fingerprint {
        Accepted::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body,
        })
    } else {
        Accepted::KeyReused
    })
}
