//! The console's reads and writes on PostgreSQL: sessions (see
//! `store::console`) and the dashboard's two activity queries, over the
//! `deliveries_recent` and `deliveries_due` indexes.

use super::PgStore;
use super::operate::audit;
use crate::store::{
    Activity, Audit, BUCKET_MS, Channel, NewSession, RecentRow, Role, SessionUser, StoreError,
    TOUCH_EVERY_MS, WaitingRow,
};

impl PgStore {
    pub async fn start_session(&self, s: NewSession) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO sessions (token_sha256, user_name, csrf, created_ms, last_seen_ms, expires_ms, address)
             VALUES ($1, $2, $3, $4, $4, $5, $6)",
            &[&s.token_sha256, &s.user, &s.csrf, &s.now_ms, &s.expires_ms, &s.address],
        )
        .await?;
        let detail = format!("from {}", s.address);
        audit(
            &tx,
            Audit {
                at_ms: s.now_ms,
                actor: &Channel::Console.actor(&s.user),
                action: "login",
                target: &s.user,
                detail: &detail,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(
        &self,
        token_sha256: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT u.name, u.role, s.csrf, s.last_seen_ms FROM sessions s
                 JOIN users u ON u.name = s.user_name
                 WHERE s.token_sha256 = $1 AND s.expires_ms > $2 AND s.last_seen_ms > $2 - $3",
                &[&token_sha256, &now_ms, &idle_ms],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get(1)?;
        let last_seen: i64 = row.try_get(3)?;
        if now_ms - last_seen >= TOUCH_EVERY_MS {
            client
                .execute(
                    "UPDATE sessions SET last_seen_ms = $2 WHERE token_sha256 = $1",
                    &[&token_sha256, &now_ms],
                )
                .await?;
        }
        Ok(Some(SessionUser {
            name: row.try_get(0)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            csrf: row.try_get(2)?,
        }))
    }

    pub async fn end_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await?;
        Ok(())
    }

    pub async fn activity(
        &self,
        now_ms: i64,
    ) -> Result<(Vec<RecentRow>, Vec<WaitingRow>), StoreError> {
        let since = Activity::since(now_ms);
        // Two pooled connections at once: the day's activity is the longer.
        let recent = async {
            self.client()
                .await?
                .query(
                    "SELECT route, system, state, (updated_ms - $1) / $2 AS bucket, COUNT(*)
                     FROM deliveries WHERE updated_ms >= $1 GROUP BY route, system, state, bucket",
                    &[&since, &BUCKET_MS],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get::<_, i64>(4)? as u64,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        tokio::try_join!(recent, self.waiting())
    }

    pub async fn waiting(&self) -> Result<Vec<WaitingRow>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT route, system, COUNT(*), MIN(received_ms) FROM deliveries
                 WHERE state IN ('queued', 'retrying', 'delivering') GROUP BY route, system",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get::<_, i64>(2)? as u64,
                    r.try_get(3)?,
                ))
            })
            .collect()
    }
}
