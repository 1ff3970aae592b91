//! The encrypted credential store, as the running instance sees it: every
//! version of the store's credentials, opened with the master key
//! (`key.rs`) and kept in memory as a [`Snapshot`]. It sits between the
//! store (where the sealed versions live) and the stages that present or
//! check credentials: `ingest` accepts every version inside its grace
//! window, `connect` sends the newest. Each instance re-reads the store's
//! generation counter every [`POLL`] (one row) and reloads the versions
//! only when it moved, so a `ferry credentials rotate` reaches every
//! instance within seconds, without a reload or a restart. Use is noted
//! in memory (an atomic per version) and written back on the same beat,
//! never per request. `cli.rs` is `ferry credentials ...` and `ferry keys`.

pub mod cli;
mod key;

pub use key::{KEY_ENV, KEY_FILE_ENV, KeyError, MasterKey};

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, SecretSource};
use crate::store::{NewVersion, Put, Store, StoreError, StoredVersion, Supersede};

/// How often each instance looks for a changed credential.
pub const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the credential store cannot be read")]
    Store(#[from] StoreError),
    #[error(
        "credential {config} names `{store}` in the credential store, which has no such credential: run `ferry credentials set {store}`"
    )]
    Unknown { config: String, store: String },
    #[error("`{name}`: {why}")]
    BadName { name: String, why: &'static str },
    #[error("no credential {0} in the store to rotate: use `ferry credentials set {0}`")]
    Missing(String),
    #[error("credential {0} kept changing while it was being written; try again")]
    Busy(String),
    #[error(
        "the credential store is not open: ferry started without a `{{ store = ... }}` credential (restart it with the master key)"
    )]
    Closed,
}

/// One version of a stored credential, opened.
pub struct Live {
    pub version: i64,
    pub value: SecretString,
    /// When it stops being accepted inbound (`None`: the newest).
    pub retire_ms: Option<i64>,
    /// Last use noted in memory, and what was last written to the store.
    used_ms: AtomicI64,
    flushed_ms: AtomicI64,
}

impl Live {
    /// Notes a use at `now_ms` (written to the store on the next beat).
    pub fn used(&self, now_ms: i64) {
        self.used_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    fn live_at(&self, now_ms: i64) -> bool {
        self.retire_ms.is_none_or(|r| now_ms < r)
    }
}

/// Every stored credential's versions, newest first, as last read.
#[derive(Default)]
pub struct Snapshot {
    versions: HashMap<String, Vec<Live>>,
}

impl Snapshot {
    /// The versions of `name` accepted at `now_ms`, newest first.
    pub fn live<'a>(&'a self, name: &str, now_ms: i64) -> impl Iterator<Item = &'a Live> + 'a {
        self.versions
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |v| v.live_at(now_ms))
    }

    /// The newest version of `name`: what outbound requests present.
    pub fn newest(&self, name: &str) -> Option<&Live> {
        self.versions.get(name).and_then(|v| v.first())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.versions.contains_key(name)
    }
}

/// A value a credential is accepted with: its bytes, and the store version
/// it is (to note its use), if it is one.
pub struct Accepted<'a> {
    pub value: &'a [u8],
    pub version: Option<&'a Live>,
}

/// Every value config credential `credential` is accepted with at `now_ms`:
/// its env or file value, or its store versions inside their grace window.
pub fn accepted<'a>(
    config: &'a Config,
    snapshot: &'a Snapshot,
    credential: &str,
    now_ms: i64,
) -> Vec<Accepted<'a>> {
    match config.credentials.get(credential).map(|c| &c.source) {
        Some(SecretSource::Store(name)) => snapshot
            .live(name, now_ms)
            .map(|v| Accepted {
                value: v.value.expose_secret().as_bytes(),
                version: Some(v),
            })
            .collect(),
        _ => config
            .secret(credential)
            .map(|s| Accepted {
                value: s.expose_secret().as_bytes(),
                version: None,
            })
            .into_iter()
            .collect(),
    }
}

/// The instance's view of the credential store.
pub struct Vault {
    inner: Option<Inner>,
}

struct Inner {
    key: MasterKey,
    store: Store,
    clock: Clock,
    /// The generation the snapshot was read at.
    generation: AtomicI64,
    /// Swapped whole on a change; a `std` lock held only to clone or swap the `Arc`.
    snapshot: RwLock<Arc<Snapshot>>,
}

impl Vault {
    /// A vault with nothing in it: the config names no store credential,
    /// so no master key is needed.
    pub fn none() -> Vault {
        Vault { inner: None }
    }

    /// Opens the store's credentials for `config`: when it names any, the
    /// key must be given and right, and every name it uses must be stored.
    pub async fn open(
        config: &Config,
        store: Store,
        clock: Clock,
        key: Result<MasterKey, KeyError>,
    ) -> Result<Vault, VaultError> {
        if config.store_credentials().next().is_none() {
            return Ok(Vault::none());
        }
        let vault = Vault::unlocked(store, clock, key?).await?;
        vault.check(config)?;
        Ok(vault)
    }

    /// Whether every `{ store = ... }` credential of `config` is here: at
    /// start, and for a reloaded config (which must be refused otherwise).
    pub fn check(&self, config: &Config) -> Result<(), VaultError> {
        let mut names = config.store_credentials().peekable();
        if names.peek().is_some() && self.inner.is_none() {
            return Err(VaultError::Closed);
        }
        let snapshot = self.snapshot();
        for (config_name, store_name) in names {
            if !snapshot.contains(store_name) {
                return Err(VaultError::Unknown {
                    config: config_name.to_owned(),
                    store: store_name.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Checks `key` against the store's check value (storing one on first
    /// use) and reads every credential.
    pub async fn unlocked(store: Store, clock: Clock, key: MasterKey) -> Result<Vault, VaultError> {
        unlock(&store, &key).await?;
        let vault = Vault {
            inner: Some(Inner {
                key,
                store,
                clock,
                generation: AtomicI64::new(i64::MIN),
                snapshot: RwLock::default(),
            }),
        };
        vault.refresh().await?;
        Ok(vault)
    }

    /// The credentials as last read (cheap: an `Arc`).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match &self.inner {
            Some(i) => i.snapshot.read().expect("vault lock poisoned").clone(),
            None => Arc::default(),
        }
    }

    /// One beat: writes back the uses noted since the last, and re-reads
    /// every version if the store's generation moved. Returns whether it did.
    pub async fn refresh(&self) -> Result<bool, VaultError> {
        let Some(i) = &self.inner else {
            return Ok(false);
        };
        i.flush_used(&self.snapshot()).await?;
        let generation = i.store.credential_generation().await?;
        if generation == i.generation.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let fresh = i.read().await?;
        *i.snapshot.write().expect("vault lock poisoned") = Arc::new(fresh);
        i.generation.store(generation, Ordering::SeqCst);
        Ok(true)
    }

    /// [`refresh`](Self::refresh) every [`POLL`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.inner.is_none() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => break,
            }
            match self.refresh().await {
                Ok(true) => {
                    tracing::info!("Credentials changed in the store; the new versions are in use.")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %crate::model::Chain(&e), "Reading the credential store failed; the credentials read last stay in use.")
                }
            }
        }
        if let Some(i) = &self.inner {
            let _ = i.flush_used(&self.snapshot()).await;
        }
    }

    /// Waits until no other instance is rotating store credential `name`
    /// (PostgreSQL; SQLite has one instance), then reads the store again, so
    /// what the last holder saved is in use.
    pub async fn lock(&self, name: &str) -> Result<crate::store::CredentialLock, VaultError> {
        let i = self.inner.as_ref().ok_or(VaultError::Closed)?;
        let lock = i.store.credential_lock(name).await?;
        if let Err(e) = self.refresh().await {
            lock.release().await;
            return Err(e);
        }
        Ok(lock)
    }

    /// Saves `value` as the new version of store credential `name`, every
    /// older one dropped (a rotated OAuth2 refresh token: the old one is
    /// spent), and reads the store again so it is in use at once.
    pub async fn replace(&self, name: &str, value: &str) -> Result<i64, VaultError> {
        let i = self.inner.as_ref().ok_or(VaultError::Closed)?;
        let now = i.clock.now_ms();
        let v = put(&i.store, &i.key, name, value, now, None, Supersede::All).await?;
        self.refresh().await?;
        Ok(v)
    }
}

/// Seals and stores the next version of `name`; returns its number. A
/// concurrent writer may take the number first: then it seals again.
pub async fn put(
    store: &Store,
    key: &MasterKey,
    name: &str,
    value: &str,
    now_ms: i64,
    expires_ms: Option<i64>,
    supersede: Supersede,
) -> Result<i64, VaultError> {
    crate::model::credential_name(name).map_err(|why| VaultError::BadName {
        name: name.to_owned(),
        why,
    })?;
    for _ in 0..5 {
        let next = store
            .credential_versions()
            .await?
            .iter()
            .filter(|v| v.name == name)
            .map(|v| v.version)
            .max()
            .unwrap_or(0)
            + 1;
        let new = NewVersion {
            name: name.to_owned(),
            version: next,
            sealed: key.seal(name, next, value.as_bytes()),
            created_ms: now_ms,
            expires_ms,
            supersede,
        };
        match store.put_credential(new).await? {
            Put::Done => return Ok(next),
            Put::Conflict => continue,
            Put::Missing => return Err(VaultError::Missing(name.to_owned())),
        }
    }
    Err(VaultError::Busy(name.to_owned()))
}

impl Inner {
    async fn read(&self) -> Result<Snapshot, VaultError> {
        let mut versions: HashMap<String, Vec<Live>> = HashMap::new();
        let now = self.clock.now_ms();
        for v in self.store.credential_versions().await? {
            if v.retire_ms.is_some_and(|r| r <= now) {
                continue;
            }
            let live = open(&self.key, &v)?;
            versions.entry(v.name).or_default().push(live);
        }
        for list in versions.values_mut() {
            list.sort_by_key(|v| std::cmp::Reverse(v.version));
        }
        Ok(Snapshot { versions })
    }

    async fn flush_used(&self, snapshot: &Snapshot) -> Result<(), VaultError> {
        let mut used = Vec::new();
        for (name, list) in &snapshot.versions {
            for v in list {
                let at = v.used_ms.load(Ordering::Relaxed);
                if at > v.flushed_ms.load(Ordering::Relaxed) {
                    used.push((name.clone(), v.version, at));
                    v.flushed_ms.store(at, Ordering::Relaxed);
                }
            }
        }
        Ok(self.store.credentials_used(used).await?)
    }
}

fn open(key: &MasterKey, v: &StoredVersion) -> Result<Live, VaultError> {
    Ok(Live {
        version: v.version,
        value: key.open(&v.name, v.version, &v.sealed)?,
        retire_ms: v.retire_ms,
        used_ms: AtomicI64::new(v.last_used_ms.unwrap_or(0)),
        flushed_ms: AtomicI64::new(v.last_used_ms.unwrap_or(0)),
    })
}

/// Whether `key` is the store's (the first key used is stored as its check value).
pub async fn unlock(store: &Store, key: &MasterKey) -> Result<(), VaultError> {
    let stored = store.credential_key_check(key.check_value()).await?;
    Ok(key.matches(&stored)?)
}

#[cfg(test)]
mod tests;
