//! The SQLite store's housekeeping for the janitor: expired dedupe and
//! idempotency keys, and finished messages past their retention. Each call
//! is one bounded chunk and one operation for the group-committing writer,
//! found through the expiry and `deliveries_finished` indexes (v5), so an
//! accept queued behind it waits for at most one chunk, never a full scan.

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::store::*;

/// A dead delivery whose ordering key holds back a later delivery of its
/// route still owed an attempt (`d` is the candidate).
const HOLDS_KEY: &str = "d.ordering_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM deliveries l INDEXED BY deliveries_order
    WHERE l.route = d.route AND l.ordering_key = d.ordering_key AND l.message_id > d.message_id
      AND l.ordering_key IS NOT NULL AND l.state IN ('queued', 'retrying', 'delivering', 'dead')
      AND l.state <> 'dead')";

impl SqliteStore {
    pub async fn prune_chunk(&self, now_ms: i64, limit: usize) -> Result<Pruned, StoreError> {
        let limit = limit as i64;
        self.inner
            .writer
            .write(move |c| {
                Ok(Pruned {
                    dedupe_keys: c
                        .prepare_cached(
                            "DELETE FROM dedupe WHERE (route, key) IN (
                               SELECT route, key FROM dedupe INDEXED BY dedupe_expires
                               WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
                        )?
                        .execute(params![now_ms, limit])? as u64,
                    idempotency_keys: c
                        .prepare_cached(
                            "DELETE FROM idempotency WHERE (client, key) IN (
                               SELECT client, key FROM idempotency INDEXED BY idempotency_expires
                               WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
                        )?
                        .execute(params![now_ms, limit])?
                        as u64,
                    sessions: c
                        .prepare_cached(
                            "DELETE FROM sessions WHERE token_sha256 IN (
                               SELECT token_sha256 FROM sessions INDEXED BY sessions_expires
                               WHERE expires_ms <= ?1 LIMIT ?2)",
                        )?
                        .execute(params![now_ms, limit])? as u64,
                })
            })
            .await
    }

    pub async fn preload_dedupe(
        &self,
        route: &str,
        from: u64,
        to: u64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let route = route.to_owned();
        self.inner
            .writer
            .write(move |c| {
                let mut ins = c.prepare_cached(
                    "INSERT OR IGNORE INTO dedupe (route, key, message_id, expires_ms)
                     VALUES (?1, ?2, 'preload', ?3)",
                )?;
                for i in from..to {
                    ins.execute(params![route, format!("preload-{i}"), expires_ms])?;
                }
                Ok(())
            })
            .await
    }

    pub async fn purge_chunk(&self, cut: Cutoffs, limit: usize) -> Result<Purged, StoreError> {
        self.inner
            .writer
            .write(move |c| purge_chunk(c, cut, limit as i64))
            .await
    }
}

fn purge_chunk(c: &Connection, cut: Cutoffs, limit: i64) -> Result<Purged, StoreError> {
    let mut gone: Vec<(i64, String)> = c
        .prepare_cached(
            "SELECT id, message_id FROM deliveries INDEXED BY deliveries_finished
             WHERE state IN ('delivered', 'discarded', 'skipped') AND updated_ms < ?1 LIMIT ?2",
        )?
        .query_map(params![cut.delivered_before_ms, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let room = limit - gone.len() as i64;
    if room > 0 {
        let dead = c
            .prepare_cached(&format!(
                "SELECT id, message_id FROM deliveries d INDEXED BY deliveries_finished
                 WHERE state IN ('dead', 'superseded') AND updated_ms < ?1 AND NOT ({HOLDS_KEY}) LIMIT ?2"
            ))?
            .query_map(params![cut.dead_before_ms, room], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        gone.extend(dead);
    }
    let mut out = Purged::default();
    {
        let mut attempts = c.prepare_cached("DELETE FROM attempts WHERE delivery_id = ?")?;
        let mut delivery = c.prepare_cached("DELETE FROM deliveries WHERE id = ?")?;
        let mut message = c.prepare_cached("DELETE FROM messages WHERE id = ?")?;
        for (id, message_id) in &gone {
            out.attempts += attempts.execute([id])? as u64;
            delivery.execute([id])?;
            out.messages += message.execute([message_id])? as u64;
        }
    }
    out.jobs = c
        .prepare_cached(
            "DELETE FROM jobs WHERE id IN (
               SELECT id FROM jobs j INDEXED BY jobs_finished
               WHERE finished_ms IS NOT NULL AND finished_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE job_id = j.id) LIMIT ?2)",
        )?
        .execute(params![cut.delivered_before_ms, limit])? as u64;
    Ok(out)
}
