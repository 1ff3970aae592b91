//! Embed tokens on PostgreSQL (see `store::embed`): kept by their SHA-256,
//! adding and removing audited in the same transaction.

use super::PgStore;
use super::operate::audit;
use crate::store::{Audit, Channel, EmbedToken, StoreError, embed_id};

const COLUMNS: &str = "token_sha256, route, created_ms, created_by";

fn token(r: &tokio_postgres::Row) -> Result<EmbedToken, StoreError> {
    Ok(EmbedToken {
        token_sha256: r.try_get(0)?,
        route: r.try_get(1)?,
        created_ms: r.try_get(2)?,
        created_by: r.try_get(3)?,
    })
}

impl PgStore {
    pub async fn add_embed_token(&self, t: EmbedToken) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO embed_tokens (token_sha256, route, created_ms, created_by)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (token_sha256) DO NOTHING",
                &[
                    &t.token_sha256,
                    &t.route,
                    &t.created_ms,
                    &Channel::split(&t.created_by).1,
                ],
            )
            .await?;
        if n == 1 {
            let detail = format!("token {}", t.id());
            audit(
                &tx,
                Audit {
                    at_ms: t.created_ms,
                    actor: &t.created_by,
                    action: "embed-add",
                    target: &t.route,
                    detail: &detail,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn embed_token(&self, sha256: &str) -> Result<Option<EmbedToken>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM embed_tokens WHERE token_sha256 = $1");
        let row = self.client().await?.query_opt(&sql, &[&sha256]).await?;
        row.as_ref().map(token).transpose()
    }

    pub async fn embed_tokens(&self) -> Result<Vec<EmbedToken>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM embed_tokens ORDER BY route, created_ms, token_sha256");
        let rows = self.client().await?.query(&sql, &[]).await?;
        rows.iter().map(token).collect()
    }

    pub async fn remove_embed_token(
        &self,
        sha256: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "DELETE FROM embed_tokens WHERE token_sha256 = $1 RETURNING route",
                &[&sha256],
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let route: String = row.try_get(0)?;
        let detail = format!("token {}", embed_id(sha256));
        audit(
            &tx,
            Audit {
                at_ms: now_ms,
                actor,
                action: "embed-remove",
                target: &route,
                detail: &detail,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
