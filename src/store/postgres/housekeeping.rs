//! The PostgreSQL store's housekeeping for the janitor: expired dedupe and
//! idempotency keys, and finished messages past their retention. Each call
//! is one bounded chunk in one short statement, found through the expiry and
//! `deliveries_finished` indexes (v6); rows another transaction holds (an
//! operator's retry) are skipped, and a delivery is deleted only if it is
//! still finished when the chunk runs.

use super::PgStore;
use crate::store::*;

/// Deletes one chunk of finished deliveries chosen by `$1` (cutoff) and `$2`
/// (limit) through `pick`, with their attempts and messages; returns the
/// messages' and attempts' counts.
fn purge_sql(pick: &str) -> String {
    format!(
        "WITH d AS (
           DELETE FROM deliveries WHERE id IN ({pick} LIMIT $2 FOR UPDATE SKIP LOCKED)
             AND state IN ('delivered', 'discarded', 'skipped', 'dead', 'superseded')
           RETURNING id, message_id),
         a AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM d) RETURNING 1),
         m AS (DELETE FROM messages WHERE id IN (SELECT message_id FROM d) RETURNING 1)
         SELECT (SELECT COUNT(*) FROM m), (SELECT COUNT(*) FROM a)"
    )
}

impl PgStore {
    pub async fn prune_chunk(&self, now_ms: i64, limit: usize) -> Result<Pruned, StoreError> {
        let client = self.client().await?;
        let limit = limit as i64;
        Ok(Pruned {
            dedupe_keys: client
                .execute(
                    "DELETE FROM dedupe WHERE (route, key) IN (
                       SELECT route, key FROM dedupe WHERE expires_ms <= $1
                       ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now_ms, &limit],
                )
                .await?,
            idempotency_keys: client
                .execute(
                    "DELETE FROM idempotency WHERE (client, key) IN (
                       SELECT client, key FROM idempotency WHERE expires_ms <= $1
                       ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now_ms, &limit],
                )
                .await?,
            sessions: client
                .execute(
                    "DELETE FROM sessions WHERE token_sha256 IN (
                       SELECT token_sha256 FROM sessions WHERE expires_ms <= $1
                       LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now_ms, &limit],
                )
                .await?,
        })
    }

    pub async fn preload_dedupe(
        &self,
        route: &str,
        from: u64,
        to: u64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO dedupe (route, key, message_id, expires_ms)
                 SELECT $1, 'preload-' || g, 'preload', $4 FROM generate_series($2::BIGINT, $3::BIGINT - 1) g
                 ON CONFLICT DO NOTHING",
                &[&route, &(from as i64), &(to as i64), &expires_ms],
            )
            .await?;
        Ok(())
    }

    pub async fn purge_chunk(&self, cut: Cutoffs, limit: usize) -> Result<Purged, StoreError> {
        let client = self.client().await?;
        let mut out = Purged::default();
        let finished = purge_sql(
            "SELECT id FROM deliveries
             WHERE state IN ('delivered', 'discarded', 'skipped') AND updated_ms < $1",
        );
        let row = client
            .query_one(&finished, &[&cut.delivered_before_ms, &(limit as i64)])
            .await?;
        out.messages += row.try_get::<_, i64>(0)? as u64;
        out.attempts += row.try_get::<_, i64>(1)? as u64;
        let room = limit as i64 - out.messages as i64;
        if room > 0 {
            let dead = purge_sql(
                "SELECT id FROM deliveries d
                 WHERE state IN ('dead', 'superseded') AND updated_ms < $1
                   AND NOT (d.ordering_key IS NOT NULL AND EXISTS (
                     SELECT 1 FROM deliveries l
                     WHERE l.route = d.route AND l.ordering_key = d.ordering_key
                       AND l.message_id COLLATE \"C\" > d.message_id COLLATE \"C\"
                       AND l.state IN ('queued', 'retrying', 'delivering')))",
            );
            let row = client
                .query_one(&dead, &[&cut.dead_before_ms, &room])
                .await?;
            out.messages += row.try_get::<_, i64>(0)? as u64;
            out.attempts += row.try_get::<_, i64>(1)? as u64;
        }
        out.jobs = client
            .execute(
                "DELETE FROM jobs WHERE id IN (
                   SELECT id FROM jobs j
                   WHERE finished_ms IS NOT NULL AND finished_ms < $1
                     AND NOT EXISTS (SELECT 1 FROM deliveries WHERE job_id = j.id)
                   LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&cut.delivered_before_ms, &(limit as i64)],
            )
            .await?;
        Ok(out)
    }

    pub async fn queue_depth_capped(
        &self,
        system: &str,
        cap: u64,
    ) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT route, COUNT(*) FROM (
                   SELECT route FROM deliveries
                   WHERE system = $1 AND state IN ('queued', 'retrying', 'delivering') LIMIT $2) q
                 GROUP BY route",
                &[&system, &(cap as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueDepth {
                    route: r.try_get(0)?,
                    system: system.into(),
                    depth: r.try_get::<_, i64>(1)? as u64,
                })
            })
            .collect()
    }
}
