//! Admin API tokens on SQLite: stored by their SHA-256 with a role; adding
//! and removing one is audited in the same write.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{ApiToken, Audit, Role, StoreError};

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn token((name, role, created_ms, created_by): (String, String, i64, String)) -> ApiToken {
    ApiToken {
        name,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_ms,
        created_by,
    }
}

impl SqliteStore {
    pub async fn add_token(&self, t: ApiToken, sha256: &str) -> Result<bool, StoreError> {
        let sha256 = sha256.to_owned();
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute(
                    "INSERT INTO api_tokens (name, role, token_sha256, created_ms, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                    params![t.name, t.role.as_str(), sha256, t.created_ms, t.created_by],
                )?;
                if n == 1 {
                    let detail = format!("role {}", t.role.as_str());
                    let entry = Audit {
                        at_ms: t.created_ms,
                        actor: &t.created_by,
                        action: "token-add",
                        target: &t.name,
                        detail: &detail,
                    };
                    audit(c, entry)?;
                }
                Ok(n == 1)
            })
            .await
    }

    pub async fn token(&self, sha256: &str) -> Result<Option<ApiToken>, StoreError> {
        let sha256 = sha256.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT name, role, created_ms, created_by FROM api_tokens WHERE token_sha256 = ?",
                [&sha256],
                token_row,
            )
            .optional()?
            .map(token))
        })
        .await
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, role, created_ms, created_by FROM api_tokens ORDER BY name",
            )?;
            let rows = stmt.query_map([], token_row)?;
            Ok(rows.map(|r| r.map(token)).collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn remove_token(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute("DELETE FROM api_tokens WHERE name = ?", [&name])?;
                if n == 1 {
                    let entry = Audit {
                        at_ms: now_ms,
                        actor: &actor,
                        action: "token-remove",
                        target: &name,
                        detail: "",
                    };
                    audit(c, entry)?;
                }
                Ok(n == 1)
            })
            .await
    }
}
