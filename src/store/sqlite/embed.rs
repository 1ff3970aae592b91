//! Embed tokens on SQLite (see `store::embed`): kept by their SHA-256,
//! adding and removing audited in the same write.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{Audit, Channel, EmbedToken, StoreError, embed_id};

const COLUMNS: &str = "token_sha256, route, created_ms, created_by";

fn token(r: &rusqlite::Row<'_>) -> rusqlite::Result<EmbedToken> {
    Ok(EmbedToken {
        token_sha256: r.get(0)?,
        route: r.get(1)?,
        created_ms: r.get(2)?,
        created_by: r.get(3)?,
    })
}

impl SqliteStore {
    pub async fn add_embed_token(&self, t: EmbedToken) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute(
                    "INSERT INTO embed_tokens (token_sha256, route, created_ms, created_by)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (token_sha256) DO NOTHING",
                    params![
                        t.token_sha256,
                        t.route,
                        t.created_ms,
                        Channel::split(&t.created_by).1
                    ],
                )?;
                if n == 1 {
                    let detail = format!("token {}", t.id());
                    audit(
                        c,
                        Audit {
                            at_ms: t.created_ms,
                            actor: &t.created_by,
                            action: "embed-add",
                            target: &t.route,
                            detail: &detail,
                        },
                    )?;
                }
                Ok(n == 1)
            })
            .await
    }

    pub async fn embed_token(&self, sha256: &str) -> Result<Option<EmbedToken>, StoreError> {
        let sha256 = sha256.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {COLUMNS} FROM embed_tokens WHERE token_sha256 = ?");
            Ok(c.query_row(&sql, [&sha256], token).optional()?)
        })
        .await
    }

    pub async fn embed_tokens(&self) -> Result<Vec<EmbedToken>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM embed_tokens ORDER BY route, created_ms, token_sha256"
            ))?;
            let rows = stmt.query_map([], token)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn remove_embed_token(
        &self,
        sha256: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (sha256, actor) = (sha256.to_owned(), actor.to_owned());
        self.inner
            .writer
            .write(move |c| {
                let route: Option<String> = c
                    .query_row(
                        "DELETE FROM embed_tokens WHERE token_sha256 = ?1 RETURNING route",
                        [&sha256],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(route) = route else {
                    return Ok(false);
                };
                let detail = format!("token {}", embed_id(&sha256));
                audit(
                    c,
                    Audit {
                        at_ms: now_ms,
                        actor: &actor,
                        action: "embed-remove",
                        target: &route,
                        detail: &detail,
                    },
                )?;
                Ok(true)
            })
            .await
    }
}
