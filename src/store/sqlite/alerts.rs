//! The alert watcher's state on SQLite (see `store::alerts`).

use rusqlite::params;

use super::SqliteStore;
use crate::store::{AlertState, StoreError};

impl SqliteStore {
    pub async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT channel, key, firing, seq, opened_ms, last_sent_ms, last_count, suppressed
                 FROM alert_state ORDER BY channel, key",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AlertState {
                    channel: r.get(0)?,
                    key: r.get(1)?,
                    firing: r.get(2)?,
                    seq: r.get(3)?,
                    opened_ms: r.get(4)?,
                    last_sent_ms: r.get(5)?,
                    last_count: r.get(6)?,
                    suppressed: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn set_alert_state(&self, s: AlertState) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO alert_state (channel, key, firing, seq, opened_ms, last_sent_ms, last_count, suppressed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (channel, key) DO UPDATE SET firing = excluded.firing, seq = excluded.seq,
                       opened_ms = excluded.opened_ms, last_sent_ms = excluded.last_sent_ms,
                       last_count = excluded.last_count, suppressed = excluded.suppressed",
                )?
                .execute(params![
                    s.channel,
                    s.key,
                    s.firing,
                    s.seq,
                    s.opened_ms,
                    s.last_sent_ms,
                    s.last_count,
                    s.suppressed
                ])?;
                Ok(())
            })
            .await
    }

    pub async fn route_traffic(
        &self,
        seen: Vec<(String, i64)>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        if !seen.is_empty() {
            self.inner
                .writer
                .write(move |c| {
                    let mut stmt = c.prepare_cached(
                        "INSERT INTO route_traffic (route, last_received_ms) VALUES (?1, ?2)
                         ON CONFLICT (route) DO UPDATE
                         SET last_received_ms = max(last_received_ms, excluded.last_received_ms)",
                    )?;
                    for (route, ms) in &seen {
                        stmt.execute(params![route, ms])?;
                    }
                    Ok(())
                })
                .await?;
        }
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT route, last_received_ms FROM route_traffic")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
