//! Accounts on SQLite: API tokens (by their SHA-256) and users (with an
//! Argon2id hash), each with a role; every change audited in the same write.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{Account, AccountKind, Audit, Channel, Role, StoreError};

const COLUMNS: &str = "name, role, created_ms, created_by";

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let role: String = r.get(1)?;
    Ok(Account {
        name: r.get(0)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_ms: r.get(2)?,
        created_by: r.get(3)?,
    })
}

fn log(
    c: &Connection,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    audit(
        c,
        Audit {
            at_ms,
            actor,
            action,
            target,
            detail,
        },
    )
}

impl SqliteStore {
    pub async fn add_account(
        &self,
        kind: AccountKind,
        a: Account,
        secret: &str,
    ) -> Result<bool, StoreError> {
        let (table, column, word) = kind.sql();
        let secret = secret.to_owned();
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute(
                    &format!(
                        "INSERT INTO {table} (name, role, {column}, created_ms, created_by)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING"
                    ),
                    params![
                        a.name,
                        a.role.as_str(),
                        secret,
                        a.created_ms,
                        Channel::split(&a.created_by).1
                    ],
                )?;
                if n == 1 {
                    let detail = format!("role {}", a.role.as_str());
                    log(
                        c,
                        a.created_ms,
                        &a.created_by,
                        &format!("{word}-add"),
                        &a.name,
                        &detail,
                    )?;
                }
                Ok(n == 1)
            })
            .await
    }

    pub async fn token(&self, sha256: &str) -> Result<Option<Account>, StoreError> {
        let sha256 = sha256.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = ?");
            Ok(c.query_row(&sql, [&sha256], account).optional()?)
        })
        .await
    }

    pub async fn user(&self, name: &str) -> Result<Option<(Account, String)>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {COLUMNS}, password_phc FROM users WHERE name = ?");
            Ok(c.query_row(&sql, [&name], |r| Ok((account(r)?, r.get(4)?)))
                .optional()?)
        })
        .await
    }

    pub async fn accounts(&self, kind: AccountKind) -> Result<Vec<Account>, StoreError> {
        let (table, _, _) = kind.sql();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM {table} ORDER BY name"))?;
            let rows = stmt.query_map([], account)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn set_password(
        &self,
        name: &str,
        phc: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, phc, actor) = (name.to_owned(), phc.to_owned(), actor.to_owned());
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute(
                    "UPDATE users SET password_phc = ?2 WHERE name = ?1",
                    params![name, phc],
                )?;
                if n == 1 {
                    // A new password ends the user's sessions.
                    c.execute("DELETE FROM sessions WHERE user_name = ?1", [&name])?;
                    log(c, now_ms, &actor, "user-password", &name, "")?;
                }
                Ok(n == 1)
            })
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
        let (name, actor) = (name.to_owned(), actor.to_owned());
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute(&format!("DELETE FROM {table} WHERE name = ?"), [&name])?;
                if n == 1 {
                    if kind == AccountKind::User {
                        c.execute("DELETE FROM sessions WHERE user_name = ?1", [&name])?;
                    }
                    log(c, now_ms, &actor, &format!("{word}-remove"), &name, "")?;
                }
                Ok(n == 1)
            })
            .await
    }
}
