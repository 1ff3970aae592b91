//! The console's reads and writes on SQLite: sessions (see
//! `store::console`) and the dashboard's two activity queries, each from
//! one index (`deliveries_recent` for the last day, `deliveries_due` for
//! what waits).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{
    Activity, Audit, BUCKET_MS, Channel, NewSession, RecentRow, Role, SessionUser, StoreError,
    TOUCH_EVERY_MS, WaitingRow,
};

/// The last day's deliveries by route, system, state and bucket, from the
/// `deliveries_recent` index, counted here as the entries stream by:
/// SQLite has no hash aggregate, and its `GROUP BY` sorted every entry
/// (88 ms for the 150,000 of a day at a million messages a week, against
/// ~30 ms streamed). The few distinct names are kept once each.
fn recent(c: &Connection, since: i64) -> Result<Vec<RecentRow>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT route, system, state, updated_ms FROM deliveries INDEXED BY deliveries_recent
         WHERE updated_ms >= ?1",
    )?;
    let mut rows = stmt.query([since])?;
    let mut names: Vec<String> = Vec::new();
    let mut counts: HashMap<(usize, usize, usize, i64), u64> = HashMap::new();
    let mut name = |v: rusqlite::types::ValueRef<'_>| -> rusqlite::Result<usize> {
        let s = v.as_str()?;
        Ok(match names.iter().position(|n| n == s) {
            Some(i) => i,
            None => {
                names.push(s.to_owned());
                names.len() - 1
            }
        })
    };
    while let Some(r) = rows.next()? {
        let key = (
            name(r.get_ref(0)?)?,
            name(r.get_ref(1)?)?,
            name(r.get_ref(2)?)?,
            (r.get::<_, i64>(3)? - since) / BUCKET_MS,
        );
        *counts.entry(key).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|((route, system, state, bucket), n)| {
            (
                names[route].clone(),
                names[system].clone(),
                names[state].clone(),
                bucket,
                n,
            )
        })
        .collect())
}

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
        // Two read connections at once: the day's activity is the longer.
        let recent = self.read(move |c| recent(c, since));
        tokio::try_join!(recent, self.waiting())
    }

    pub async fn waiting(&self) -> Result<Vec<WaitingRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT route, system, COUNT(*), MIN(received_ms) FROM deliveries INDEXED BY deliveries_due
                 WHERE state IN ('queued', 'retrying', 'delivering') GROUP BY route, system",
            )?;
            let waiting = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64, r.get(3)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(waiting)
        })
        .await
    }
}
