//! The credential store on SQLite: sealed versions and the generation
//! counter, written through the group-committing writer (see
//! `store::credentials` for the meaning).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

impl SqliteStore {
    pub async fn credential_key_check(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.inner
            .writer
            .write(move |c| {
                c.execute(
                    "UPDATE credential_meta SET key_check = ?1 WHERE id = 1 AND key_check IS NULL",
                    [&candidate],
                )?;
                Ok(c.query_row(
                    "SELECT key_check FROM credential_meta WHERE id = 1",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    pub async fn credential_generation(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT generation FROM credential_meta WHERE id = 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub async fn credential_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, version, sealed, created_ms, expires_ms, retire_ms, last_used_ms
                 FROM credential_versions ORDER BY name, version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredVersion {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    sealed: r.get(2)?,
                    created_ms: r.get(3)?,
                    expires_ms: r.get(4)?,
                    retire_ms: r.get(5)?,
                    last_used_ms: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn put_credential(&self, v: NewVersion) -> Result<Put, StoreError> {
        self.inner.writer.write(move |c| put(c, &v)).await
    }

    pub async fn remove_credential(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.inner
            .writer
            .write(move |c| {
                let n = c.execute("DELETE FROM credential_versions WHERE name = ?1", [&name])?;
                bump(c)?;
                Ok(n > 0)
            })
            .await
    }

    pub async fn credentials_used(&self, used: Vec<(String, i64, i64)>) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |c| {
                let mut stmt = c.prepare_cached(
                    "UPDATE credential_versions SET last_used_ms = MAX(COALESCE(last_used_ms, ?3), ?3)
                     WHERE name = ?1 AND version = ?2",
                )?;
                for (name, version, at) in &used {
                    stmt.execute(params![name, version, at])?;
                }
                Ok(())
            })
            .await
    }
}

fn put(c: &Connection, v: &NewVersion) -> Result<Put, StoreError> {
    let highest: Option<i64> = c
        .query_row(
            "SELECT MAX(version) FROM credential_versions WHERE name = ?1",
            [&v.name],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if highest.is_none() && matches!(v.supersede, Supersede::After { .. }) {
        return Ok(Put::Missing);
    }
    if highest.unwrap_or(0) + 1 != v.version {
        return Ok(Put::Conflict);
    }
    match v.supersede {
        Supersede::All => {
            c.execute("DELETE FROM credential_versions WHERE name = ?1", [&v.name])?;
        }
        Supersede::After { until_ms } => {
            c.execute(
                "DELETE FROM credential_versions WHERE name = ?1 AND retire_ms <= ?2",
                params![v.name, v.created_ms],
            )?;
            c.execute(
                "UPDATE credential_versions SET retire_ms = MIN(COALESCE(retire_ms, ?2), ?2)
                 WHERE name = ?1",
                params![v.name, until_ms],
            )?;
        }
    }
    c.execute(
        "INSERT INTO credential_versions (name, version, sealed, created_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![v.name, v.version, v.sealed, v.created_ms, v.expires_ms],
    )?;
    bump(c)?;
    Ok(Put::Done)
}

fn bump(c: &Connection) -> Result<(), StoreError> {
    c.execute(
        "UPDATE credential_meta SET generation = generation + 1 WHERE id = 1",
        [],
    )?;
    Ok(())
}
