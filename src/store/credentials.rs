//! The store's side of the encrypted credential store: sealed versions of
//! named credentials (`vault` seals and opens them; the store never sees a
//! value in clear), the generation counter every instance polls to notice a
//! change within seconds, the master key's check value, and coalesced
//! "last used" times. The `ferry credentials ...` commands write here; the
//! running instances read.

use super::{Store, StoreError};

/// One sealed version of a credential, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub name: String,
    pub version: i64,
    /// Nonce ‖ ciphertext ‖ tag (`vault::MasterKey::seal`).
    pub sealed: Vec<u8>,
    pub created_ms: i64,
    /// When the operator said the value expires (`--expires`), for the list.
    pub expires_ms: Option<i64>,
    /// When a superseded version stops being accepted (its grace's end);
    /// `None` for the newest.
    pub retire_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

/// What happens to the versions a new one supersedes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supersede {
    /// `credentials set`: they are deleted; the new value alone counts.
    All,
    /// `credentials rotate`: they stay valid for inbound verification until
    /// `until_ms` (a version already retiring earlier keeps its earlier end).
    After { until_ms: i64 },
}

/// A version to add: `version` must be the name's next (its highest + 1).
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    pub version: i64,
    pub sealed: Vec<u8>,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub supersede: Supersede,
}

/// How adding a version went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Done,
    /// Another version was added meanwhile: seal again with the next number.
    Conflict,
    /// A rotation of a name that has no version (use `set`).
    Missing,
}

/// Held while one instance refreshes an OAuth2 token with a credential
/// it may rotate (a refresh token): on PostgreSQL a session advisory lock on
/// a connection of its own, so instances take turns; on SQLite (one
/// instance) nothing. Give it back with [`CredentialLock::release`]; one
/// dropped without it closes its connection, which frees the lock too.
pub struct CredentialLock {
    held: Option<super::postgres::AdvisoryLock>,
}

impl CredentialLock {
    pub async fn release(mut self) {
        if let Some(l) = self.held.take() {
            l.release().await;
        }
    }
}

impl Store {
    /// Waits for the right to rotate credential `name` across instances.
    pub async fn credential_lock(&self, name: &str) -> Result<CredentialLock, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(CredentialLock { held: None }),
            Store::Postgres(s) => Ok(CredentialLock {
                held: Some(s.advisory_lock(&format!("ferry-credential:{name}")).await?),
            }),
        }
    }

    /// The master key's check value: `candidate` is stored if the store has
    /// none yet; the stored one is returned either way.
    pub async fn credential_key_check(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Sqlite(s) => s.credential_key_check(candidate).await,
            Store::Postgres(s) => s.credential_key_check(candidate).await,
        }
    }

    /// The counter every change of a credential bumps (one row: cheap to poll).
    pub async fn credential_generation(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.credential_generation().await,
            Store::Postgres(s) => s.credential_generation().await,
        }
    }

    /// Every stored version of every credential, by name then version.
    pub async fn credential_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        match self {
            Store::Sqlite(s) => s.credential_versions().await,
            Store::Postgres(s) => s.credential_versions().await,
        }
    }

    /// Adds a version (see [`NewVersion`], [`Supersede`]); versions past
    /// their grace at `created_ms` are deleted on the way.
    pub async fn put_credential(&self, v: NewVersion) -> Result<Put, StoreError> {
        match self {
            Store::Sqlite(s) => s.put_credential(v).await,
            Store::Postgres(s) => s.put_credential(v).await,
        }
    }

    /// Deletes every version of a credential; false when it had none.
    pub async fn remove_credential(&self, name: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.remove_credential(name).await,
            Store::Postgres(s) => s.remove_credential(name).await,
        }
    }

    /// Raises "last used" of each (name, version) to the time given (never
    /// lowers it). Instances call it every few seconds with what they used,
    /// not per request; it does not bump the generation.
    pub async fn credentials_used(&self, used: Vec<(String, i64, i64)>) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sqlite(s) => s.credentials_used(used).await,
            Store::Postgres(s) => s.credentials_used(used).await,
        }
    }
}
