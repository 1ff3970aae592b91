//! Batching to bulk endpoints, the pure part: between the claim and the
//! request budget, a worker loop turns its claimed deliveries into units of
//! work, one request each: a delivery alone, or a batch of one route's
//! deliveries for its destination's bulk endpoint (`batch` in the config).
//! Here are forming batches (by count, bytes and age), building a batch's
//! request body (the `body` jq program) and reading per-item results back
//! from the answer (the `results` program). Sending, and splitting a refused
//! batch in halves, is in `batch_send`.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::config::{Batch, Config, RouteName};
use crate::store::Claimed;
use crate::transform::jq::{Input, JqError};

/// One request's worth of claimed work.
#[derive(Debug)]
pub enum Unit {
    One(Claimed),
    Batch(Vec<Claimed>),
}

impl Unit {
    /// Deliveries it carries.
    pub fn deliveries(&self) -> usize {
        match self {
            Unit::One(_) => 1,
            Unit::Batch(items) => items.len(),
        }
    }

    pub fn into_items(self) -> Vec<Claimed> {
        match self {
            Unit::One(d) => vec![d],
            Unit::Batch(items) => items,
        }
    }
}

/// Claimed work sorted into requests, and what waits for its batch to fill.
#[derive(Debug)]
pub struct Formed {
    pub units: Vec<Unit>,
    /// A batch not yet full whose oldest item has not waited `max_wait`.
    pub waiting: Vec<Claimed>,
    /// When the earliest waiting batch is due anyway.
    pub wait_until_ms: i64,
}

/// Sorts claimed deliveries into units: deliveries of batched routes into
/// batches of at most `max_items` and `max_bytes` of bodies (in claim
/// order); a last, partial batch goes only once its oldest item has waited
/// `max_wait` (a retried item has).
pub fn form(claimed: Vec<Claimed>, config: &Config, now_ms: i64) -> Formed {
    let mut units = Vec::new();
    let mut batched: BTreeMap<RouteName, (&Batch, Vec<Claimed>)> = BTreeMap::new();
    for d in claimed {
        match config
            .routes
            .get(&d.route)
            .and_then(|r| r.destination.batch.as_ref())
        {
            Some(b) => batched
                .entry(d.route.clone())
                .or_insert((b, Vec::new()))
                .1
                .push(d),
            None => units.push(Unit::One(d)),
        }
    }
    let mut waiting = Vec::new();
    let mut wait_until_ms = i64::MAX;
    for (_, (b, items)) in batched {
        let mut chunk: Vec<Claimed> = Vec::new();
        let mut bytes = 0;
        for d in items {
            let full = chunk.len() >= b.max_items || bytes + d.body.len() > b.max_bytes;
            if full && !chunk.is_empty() {
                units.push(Unit::Batch(std::mem::take(&mut chunk)));
                bytes = 0;
            }
            bytes += d.body.len();
            chunk.push(d);
        }
        if chunk.is_empty() {
            continue;
        }
        let oldest = chunk
            .iter()
            .map(|d| d.budget_start_ms)
            .min()
            .unwrap_or(now_ms);
        let due = oldest + b.max_wait_ms;
        let retried = chunk.iter().any(|d| d.attempts > 0);
        if chunk.len() < b.max_items && due > now_ms && !retried {
            wait_until_ms = wait_until_ms.min(due);
            waiting.extend(chunk);
        } else {
            units.push(Unit::Batch(chunk));
        }
    }
    Formed {
        units,
        waiting,
        wait_until_ms,
    }
}

/// Why a batch's program gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The items' content: a half of the batch may map.
    Items(String),
    /// Past the program's limits (deadline, outputs, recursion): splitting
    /// would only run it again, so every item of the batch is dead.
    Overrun(String),
    /// jq had no free thread: nothing about the items; try them later.
    Busy(String),
}

impl MapError {
    pub fn why(&self) -> &str {
        match self {
            MapError::Items(w) | MapError::Overrun(w) | MapError::Busy(w) => w,
        }
    }
}

impl From<JqError> for MapError {
    fn from(e: JqError) -> MapError {
        match e {
            JqError::Overrun { .. } => MapError::Overrun(e.to_string()),
            JqError::Busy(why) => MapError::Busy(why),
            e => MapError::Items(e.to_string()),
        }
    }
}

/// The bulk request's body: the `body` program applied to the array of
/// the items' bodies (each stored as JSON at ingest), with `$keys` their
/// downstream idempotency keys, for endpoints that deduplicate per item.
/// It runs on jq's pool, at `now_ms` (`$now`).
pub async fn body(b: &Batch, items: &[Claimed], now_ms: i64) -> Result<Bytes, MapError> {
    let bodies = item_bodies(items).map_err(MapError::Items)?;
    let mut out = b
        .body
        .run(
            Input::Bytes(bodies.into_bytes()),
            vec![item_keys(items)],
            now_ms,
        )
        .await?;
    match (out.pop(), out.is_empty()) {
        (Some(v), true) => Ok(Bytes::from(v.into_string())),
        _ => Err(MapError::Items(format!(
            "the batch body program `{}` must give exactly one value",
            b.body.code()
        ))),
    }
}

/// Per item, `None` where the platform took it and its reason where it did
/// not, by the `results` program; without one, a 2xx takes every item.
pub async fn results(
    b: &Batch,
    items: &[Claimed],
    status: u16,
    response: &[u8],
    now_ms: i64,
) -> Result<Vec<Option<String>>, String> {
    let Some(program) = &b.results else {
        return Ok(vec![None; items.len()]);
    };
    // The platform's answer as it came when it is JSON, else as a string.
    let response = match serde_json::from_slice::<serde::de::IgnoredAny>(response) {
        Ok(_) => String::from_utf8_lossy(response).into_owned(),
        Err(_) => serde_json::Value::String(String::from_utf8_lossy(response).into()).to_string(),
    };
    let input = format!(
        r#"{{"status":{status},"request":{},"response":{response}}}"#,
        item_bodies(items)?
    );
    let mut out = program
        .run(
            Input::Bytes(input.into_bytes()),
            vec![item_keys(items)],
            now_ms,
        )
        .await
        .map_err(|e| e.to_string())?;
    let per_item = match (out.pop().map(|v| v.value()), out.is_empty()) {
        (Some(serde_json::Value::Array(a)), true) if a.len() == items.len() => a,
        _ => {
            return Err(format!(
                "the batch results program `{}` must give one array with an entry per item ({})",
                program.code(),
                items.len()
            ));
        }
    };
    Ok(per_item
        .into_iter()
        .map(|v| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
        .collect())
}

/// A batch's downstream `Idempotency-Key`: the same items give the same key,
/// so a resent batch is recognisable.
pub fn key(items: &[Claimed]) -> String {
    let mut keys: Vec<&str> = items.iter().map(|d| d.delivery_key.as_str()).collect();
    keys.sort_unstable();
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update([0]);
    }
    format!("ferry-batch-{}", hex::encode(&h.finalize()[..16]))
}

/// `$keys`: each item's downstream idempotency key, in the items' order.
fn item_keys(items: &[Claimed]) -> serde_json::Value {
    items.iter().map(|d| d.delivery_key.clone()).collect()
}

/// The items' bodies as one JSON array, each as it was stored (so numbers
/// keep their text).
fn item_bodies(items: &[Claimed]) -> Result<String, String> {
    let mut out = String::from("[");
    for (i, d) in items.iter().enumerate() {
        let text = std::str::from_utf8(&d.body)
            .map_err(|e| format!("message {} is not UTF-8: {e}", d.message_id))?;
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| format!("message {} is not JSON: {e}", d.message_id))?;
        if i > 0 {
            out.push(',');
        }
        out.push_str(text);
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
