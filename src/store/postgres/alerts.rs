//! The alert watcher's state on PostgreSQL (see `store::alerts`).

use super::PgStore;
use crate::store::{AlertState, StoreError};

impl PgStore {
    pub async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT channel, key, firing, seq, opened_ms, last_sent_ms, last_count, suppressed
                 FROM alert_state ORDER BY channel, key",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertState {
                    channel: r.try_get(0)?,
                    key: r.try_get(1)?,
                    firing: r.try_get(2)?,
                    seq: r.try_get(3)?,
                    opened_ms: r.try_get(4)?,
                    last_sent_ms: r.try_get(5)?,
                    last_count: r.try_get(6)?,
                    suppressed: r.try_get(7)?,
                })
            })
            .collect()
    }

    pub async fn set_alert_state(&self, s: AlertState) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO alert_state (channel, key, firing, seq, opened_ms, last_sent_ms, last_count, suppressed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (channel, key) DO UPDATE SET firing = excluded.firing, seq = excluded.seq,
                   opened_ms = excluded.opened_ms, last_sent_ms = excluded.last_sent_ms,
                   last_count = excluded.last_count, suppressed = excluded.suppressed",
                &[
                    &s.channel,
                    &s.key,
                    &s.firing,
                    &s.seq,
                    &s.opened_ms,
                    &s.last_sent_ms,
                    &s.last_count,
                    &s.suppressed,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn route_traffic(
        &self,
        seen: Vec<(String, i64)>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let client = self.client().await?;
        for (route, ms) in &seen {
            client
                .execute(
                    "INSERT INTO route_traffic (route, last_received_ms) VALUES ($1, $2)
                     ON CONFLICT (route) DO UPDATE
                     SET last_received_ms = GREATEST(route_traffic.last_received_ms, excluded.last_received_ms)",
                    &[route, ms],
                )
                .await?;
        }
        let rows = client
            .query("SELECT route, last_received_ms FROM route_traffic", &[])
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
