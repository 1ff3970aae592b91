//! Admin API tokens on PostgreSQL: stored by their SHA-256 with a role;
//! adding and removing one is audited in the same transaction.

use super::PgStore;
use super::operate::audit;
use crate::store::{ApiToken, Audit, Role, StoreError};

fn token(r: &tokio_postgres::Row) -> Result<ApiToken, StoreError> {
    let role: String = r.try_get(1)?;
    Ok(ApiToken {
        name: r.try_get(0)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_ms: r.try_get(2)?,
        created_by: r.try_get(3)?,
    })
}

impl PgStore {
    pub async fn add_token(&self, t: ApiToken, sha256: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO api_tokens (name, role, token_sha256, created_ms, created_by)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                &[
                    &t.name,
                    &t.role.as_str(),
                    &sha256,
                    &t.created_ms,
                    &t.created_by,
                ],
            )
            .await?;
        if n == 1 {
            let detail = format!("role {}", t.role.as_str());
            let entry = Audit {
                at_ms: t.created_ms,
                actor: &t.created_by,
                action: "token-add",
                target: &t.name,
                detail: &detail,
            };
            audit(&tx, entry).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn token(&self, sha256: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT name, role, created_ms, created_by FROM api_tokens WHERE token_sha256 = $1",
                &[&sha256],
            )
            .await?;
        row.as_ref().map(token).transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, role, created_ms, created_by FROM api_tokens ORDER BY name",
                &[],
            )
            .await?;
        rows.iter().map(token).collect()
    }

    pub async fn remove_token(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute("DELETE FROM api_tokens WHERE name = $1", &[&name])
            .await?;
        if n == 1 {
            let entry = Audit {
                at_ms: now_ms,
                actor,
                action: "token-remove",
                target: name,
                detail: "",
            };
            audit(&tx, entry).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }
}
