//! The console's reads and writes on SQLite: sessions (see
//! `store::console`) and the dashboard's two activity queries, each from
//! one index (`deliveries_recent` for the last day, `deliveries_due` for
//! what waits).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{
    Activity, Audit, BUCKET_MS, Channel, NewSession, RecentRow, Role, SessionUser, StoreError,
    TOUCH_EVERY_MS, WaitingRow,
};

impl SqliteStore {
    pub async fn start_session(&self, s: NewSession) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO sessions (token_sha256, user_name, csrf, created_ms, last_seen_ms, expires_ms, address)
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
                    params![s.token_sha256, s.user, s.csrf, s.now_ms, s.expires_ms, s.address],
                )?;
                let detail = format!("from {}", s.address);
                audit(
                    c,
                    Audit {
                        at_ms: s.now_ms,
                        actor: &Channel::Console.actor(&s.user),
                        action: "login",
                        target: &s.user,
                        detail: &detail,
                    },
                )
            })
            .await
    }

    pub async fn session(
        &self,
        token_sha256: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        let token = token_sha256.to_owned();
        let key = token.clone();
        let found = self
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT u.name, u.role, s.csrf, s.last_seen_ms FROM sessions s
                     JOIN users u ON u.name = s.user_name
                     WHERE s.token_sha256 = ?1 AND s.expires_ms > ?2 AND s.last_seen_ms > ?2 - ?3",
                    params![key, now_ms, idle_ms],
                    |r| {
                        let role: String = r.get(1)?;
                        Ok((
                            SessionUser {
                                name: r.get(0)?,
                                role: Role::parse(&role).unwrap_or(Role::Viewer),
                                csrf: r.get(2)?,
                            },
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()?)
            })
            .await?;
        let Some((user, last_seen)) = found else {
            return Ok(None);
        };
        if now_ms - last_seen >= TOUCH_EVERY_MS {
            self.inner
                .writer
                .write(move |c| {
                    c.execute(
                        "UPDATE sessions SET last_seen_ms = ?2 WHERE token_sha256 = ?1",
                        params![token, now_ms],
                    )?;
                    Ok(())
                })
                .await?;
        }
        Ok(Some(user))
    }

    pub async fn end_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        let token = token_sha256.to_owned();
        self.inner
            .writer
            .write(move |c| {
                c.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [&token])?;
                Ok(())
            })
            .await
    }

    pub async fn activity(
        &self,
        now_ms: i64,
    ) -> Result<(Vec<RecentRow>, Vec<WaitingRow>), StoreError> {
        let since = Activity::since(now_ms);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT route, system, state, (updated_ms - ?1) / ?2 AS bucket, COUNT(*)
                 FROM deliveries INDEXED BY deliveries_recent
                 WHERE updated_ms >= ?1 GROUP BY route, system, state, bucket",
            )?;
            let recent = stmt
                .query_map(params![since, BUCKET_MS], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)? as u64))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT route, system, COUNT(*), MIN(received_ms) FROM deliveries INDEXED BY deliveries_due
                 WHERE state IN ('queued', 'retrying', 'delivering') GROUP BY route, system",
            )?;
            let waiting = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64, r.get(3)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((recent, waiting))
        })
        .await
    }
}
