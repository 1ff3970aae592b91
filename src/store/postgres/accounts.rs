//! Accounts on PostgreSQL: API tokens (by their SHA-256) and users (with an
//! Argon2id hash), each with a role; every change audited in the same
//! transaction.

use super::PgStore;
use super::operate::audit;
use crate::store::{Account, AccountKind, Audit, Channel, Role, StoreError};

const COLUMNS: &str = "name, role, created_ms, created_by";

fn account(r: &tokio_postgres::Row) -> Result<Account, StoreError> {
    let role: String = r.try_get(1)?;
    Ok(Account {
        name: r.try_get(0)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_ms: r.try_get(2)?,
        created_by: r.try_get(3)?,
    })
}

impl PgStore {
    /// Runs `sql` (one row changed or none) and audits a change.
    async fn account_change(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        entry: Audit<'_>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx.execute(sql, params).await?;
        if n == 1 {
            // A new password or a removed user ends the user's sessions.
            if matches!(entry.action, "user-password" | "user-remove") {
                tx.execute(
                    "DELETE FROM sessions WHERE user_name = $1",
                    &[&entry.target],
                )
                .await?;
            }
            audit(&tx, entry).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn add_account(
        &self,
        kind: AccountKind,
        a: Account,
        secret: &str,
    ) -> Result<bool, StoreError> {
        let (table, column, word) = kind.sql();
        let sql = format!(
            "INSERT INTO {table} (name, role, {column}, created_ms, created_by)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING"
        );
        let (action, detail) = (format!("{word}-add"), format!("role {}", a.role.as_str()));
        let entry = Audit {
            at_ms: a.created_ms,
            actor: &a.created_by,
            action: &action,
            target: &a.name,
            detail: &detail,
        };
        let created_by = Channel::split(&a.created_by).1;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            &a.name,
            &a.role.as_str(),
            &secret,
            &a.created_ms,
            &created_by,
        ];
        self.account_change(&sql, &params, entry).await
    }

    pub async fn token(&self, sha256: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = $1");
        let row = self.client().await?.query_opt(&sql, &[&sha256]).await?;
        row.as_ref().map(account).transpose()
    }

    pub async fn user(&self, name: &str) -> Result<Option<(Account, String)>, StoreError> {
        let sql = format!("SELECT {COLUMNS}, password_phc FROM users WHERE name = $1");
        let row = self.client().await?.query_opt(&sql, &[&name]).await?;
        row.map(|r| Ok((account(&r)?, r.try_get(4)?))).transpose()
    }

    pub async fn accounts(&self, kind: AccountKind) -> Result<Vec<Account>, StoreError> {
        let (table, _, _) = kind.sql();
        let sql = format!("SELECT {COLUMNS} FROM {table} ORDER BY name");
        let rows = self.client().await?.query(&sql, &[]).await?;
        rows.iter().map(account).collect()
    }

    pub async fn set_password(
        &self,
        name: &str,
        phc: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let entry = Audit {
            at_ms: now_ms,
            actor,
            action: "user-password",
            target: name,
            detail: "",
        };
        self.account_change(
            "UPDATE users SET password_phc = $2 WHERE name = $1",
            &[&name, &phc],
            entry,
        )
        .await
    }

    pub async fn remove_account(
        &self,
        kind: AccountKind,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (table, _, word) = kind.sql();
        let action = format!("{word}-remove");
        let entry = Audit {
            at_ms: now_ms,
            actor,
            action: &action,
            target: name,
            detail: "",
        };
        self.account_change(
            &format!("DELETE FROM {table} WHERE name = $1"),
            &[&name],
            entry,
        )
        .await
    }
}
