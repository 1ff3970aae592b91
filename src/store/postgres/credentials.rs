//! The credential store on PostgreSQL: the same rows as SQLite's, each
//! change one short transaction. Two instances adding the same version
//! number meet at the primary key: the second gets [`Put::Conflict`].

use super::PgStore;
use crate::store::*;

/// A session advisory lock and the connection holding it.
pub struct AdvisoryLock {
    client: Option<deadpool_postgres::Object>,
    key: String,
}

impl AdvisoryLock {
    /// Unlocks and gives the connection back to the pool; if the unlock
    /// fails, the connection is closed instead (which unlocks too).
    pub async fn release(mut self) {
        if let Some(c) = self.client.take() {
            let unlocked = c
                .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&self.key])
                .await;
            if unlocked.is_err() {
                drop(deadpool_postgres::Object::take(c));
            }
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        // Not released (a panic, a cancelled task): close the session.
        if let Some(c) = self.client.take() {
            drop(deadpool_postgres::Object::take(c));
        }
    }
}

impl PgStore {
    /// Waits for the session advisory lock named `key`.
    pub async fn advisory_lock(&self, key: &str) -> Result<AdvisoryLock, StoreError> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
            .await?;
        Ok(AdvisoryLock {
            client: Some(client),
            key: key.to_owned(),
        })
    }

    pub async fn credential_key_check(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        let set = client
            .query_opt(
                "UPDATE credential_meta SET key_check = $1
                 WHERE id = 1 AND key_check IS NULL RETURNING key_check",
                &[&candidate],
            )
            .await?;
        // Not set by us: it was there already, or another instance's first
        // start won the race; either way it is committed now.
        let row = match set {
            Some(r) => r,
            None => {
                client
                    .query_one("SELECT key_check FROM credential_meta WHERE id = 1", &[])
                    .await?
            }
        };
        Ok(row.try_get(0)?)
    }

    pub async fn credential_generation(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT generation FROM credential_meta WHERE id = 1", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn credential_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, version, sealed, created_ms, expires_ms, retire_ms, last_used_ms
                 FROM credential_versions ORDER BY name, version",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredVersion {
                    name: r.try_get(0)?,
                    version: r.try_get(1)?,
                    sealed: r.try_get(2)?,
                    created_ms: r.try_get(3)?,
                    expires_ms: r.try_get(4)?,
                    retire_ms: r.try_get(5)?,
                    last_used_ms: r.try_get(6)?,
                })
            })
            .collect()
    }

    pub async fn put_credential(&self, v: NewVersion) -> Result<Put, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let highest: Option<i64> = tx
            .query_one(
                "SELECT MAX(version) FROM credential_versions WHERE name = $1",
                &[&v.name],
            )
            .await?
            .try_get(0)?;
        if highest.is_none() && matches!(v.supersede, Supersede::After { .. }) {
            return Ok(Put::Missing);
        }
        if highest.unwrap_or(0) + 1 != v.version {
            return Ok(Put::Conflict);
        }
        match v.supersede {
            Supersede::All => {
                tx.execute(
                    "DELETE FROM credential_versions WHERE name = $1",
                    &[&v.name],
                )
                .await?;
            }
            Supersede::After { until_ms } => {
                tx.execute(
                    "DELETE FROM credential_versions WHERE name = $1 AND retire_ms <= $2",
                    &[&v.name, &v.created_ms],
                )
                .await?;
                tx.execute(
                    "UPDATE credential_versions SET retire_ms = LEAST(COALESCE(retire_ms, $2), $2)
                     WHERE name = $1",
                    &[&v.name, &until_ms],
                )
                .await?;
            }
        }
        let n = tx
            .execute(
                "INSERT INTO credential_versions (name, version, sealed, created_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&v.name, &v.version, &v.sealed, &v.created_ms, &v.expires_ms],
            )
            .await?;
        if n == 0 {
            return Ok(Put::Conflict);
        }
        tx.execute(
            "UPDATE credential_meta SET generation = generation + 1 WHERE id = 1",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(Put::Done)
    }

    pub async fn remove_credential(&self, name: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute("DELETE FROM credential_versions WHERE name = $1", &[&name])
            .await?;
        tx.execute(
            "UPDATE credential_meta SET generation = generation + 1 WHERE id = 1",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn credentials_used(&self, used: Vec<(String, i64, i64)>) -> Result<(), StoreError> {
        let (names, rest): (Vec<String>, Vec<(i64, i64)>) =
            used.into_iter().map(|(n, v, at)| (n, (v, at))).unzip();
        let (versions, ats): (Vec<i64>, Vec<i64>) = rest.into_iter().unzip();
        self.client()
            .await?
            .execute(
                "UPDATE credential_versions c SET last_used_ms = GREATEST(COALESCE(c.last_used_ms, u.at), u.at)
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(name, version, at)
                 WHERE c.name = u.name AND c.version = u.version",
                &[&names, &versions, &ats],
            )
            .await?;
        Ok(())
    }
}
