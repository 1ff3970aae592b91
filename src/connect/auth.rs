//! Outbound authentication: the credential values ferry presents to systems,
//! applied per the system's `auth` kind. Values are re-read from their source
//! (env var or file) when a system rejects them, so a rotated secret is picked
//! up without a restart; a store credential presents its newest version
//! (`vault`, which follows the store on its own).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Auth, Config, SecretSource};
use crate::vault::Vault;

pub struct Credentials {
    /// Current values; a `std` lock, held only to read or swap a value.
    values: RwLock<HashMap<String, SecretString>>,
    sources: HashMap<String, SecretSource>,
    /// The store's credentials (`{ store = ... }`).
    pub(super) vault: Arc<Vault>,
    pub(super) clock: crate::clock::Clock,
}

impl Credentials {
    pub fn new(config: &Config, vault: Arc<Vault>, clock: crate::clock::Clock) -> Credentials {
        Credentials {
            vault,
            clock,
            values: RwLock::new(
                config
                    .credentials
                    .iter()
                    .filter_map(|(k, c)| Some((k.clone(), c.value.clone()?)))
                    .collect(),
            ),
            sources: config
                .credentials
                .iter()
                .map(|(k, c)| (k.clone(), c.source.clone()))
                .collect(),
        }
    }

    /// The value `credential` presents now: its env or file value, or the
    /// newest store version (its use noted).
    pub fn current(&self, credential: &str) -> Option<SecretString> {
        if let Some(SecretSource::Store(name)) = self.sources.get(credential) {
            let snapshot = self.vault.snapshot();
            let newest = snapshot.newest(name)?;
            newest.used(self.clock.now_ms());
            return Some(newest.value.clone());
        }
        let values = self.values.read().expect("credentials lock poisoned");
        values.get(credential).cloned()
    }

    /// Every value `credential` is accepted with now, newest first: a store
    /// credential's live versions (a rotation signs with each).
    pub fn all_live(&self, credential: &str) -> Vec<SecretString> {
        if let Some(SecretSource::Store(name)) = self.sources.get(credential) {
            let now = self.clock.now_ms();
            let snapshot = self.vault.snapshot();
            return snapshot
                .live(name, now)
                .map(|v| {
                    v.used(now);
                    v.value.clone()
                })
                .collect();
        }
        self.current(credential).into_iter().collect()
    }

    /// Takes the right to rotate store credential `credential` across
    /// instances (see `Vault::lock`).
    pub(super) async fn lock_rotation(
        &self,
        credential: &str,
    ) -> Result<crate::store::CredentialLock, String> {
        let Some(SecretSource::Store(name)) = self.sources.get(credential) else {
            return Err(format!(
                "credential {credential} is not a `{{ store = ... }}` credential"
            ));
        };
        self.vault
            .lock(name)
            .await
            .map_err(|e| crate::model::Chain(&e).to_string())
    }

    /// Saves a rotated value of store credential `credential` (an OAuth2
    /// refresh token from a token answer); the reason when it could not be.
    pub(super) async fn save_rotated(&self, credential: &str, value: &str) -> Result<(), String> {
        let Some(SecretSource::Store(name)) = self.sources.get(credential) else {
            return Err(format!(
                "credential {credential} is not a `{{ store = ... }}` credential"
            ));
        };
        match self.vault.replace(name, value).await {
            Ok(_) => Ok(()),
            Err(e) => Err(crate::model::Chain(&e).to_string()),
        }
    }

    /// Adds the auth header; returns its name so logs can redact it.
    /// (Standard Webhooks signatures and OAuth2 tokens are `Connector`'s.)
    pub fn apply(&self, auth: &Auth, headers: &mut HeaderMap) -> Option<HeaderName> {
        if matches!(auth, Auth::StandardWebhooks { .. } | Auth::OAuth2(_)) {
            return None;
        }
        let credential = auth.credential()?;
        let secret = self.current(credential)?;
        let secret = secret.expose_secret();
        let (name, value) = match auth {
            Auth::None => return None,
            Auth::Basic { .. } => (
                header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(secret)
                ),
            ),
            Auth::Bearer { .. } => (header::AUTHORIZATION, format!("Bearer {secret}")),
            Auth::Header { name, .. } => (name.clone(), secret.to_owned()),
            Auth::StandardWebhooks { .. } | Auth::OAuth2(_) => return None,
        };
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        headers.insert(name.clone(), value);
        Some(name)
    }

    /// Re-reads a credential from its source after the system rejected it.
    /// Returns whether the value changed.
    pub fn refresh(&self, credential: &str) -> bool {
        let fresh = match self.sources.get(credential) {
            Some(SecretSource::Env(var)) => std::env::var(var).ok(),
            // The vault follows the store by itself.
            Some(SecretSource::Store(_)) => None,
            Some(SecretSource::File(path)) => std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim_end().to_owned()),
            None => None,
        };
        let Some(fresh) = fresh.filter(|v| !v.is_empty()) else {
            return false;
        };
        let mut values = self.values.write().expect("credentials lock poisoned");
        let changed = values
            .get(credential)
            .is_none_or(|old| old.expose_secret() != fresh);
        values.insert(credential.to_owned(), fresh.into());
        changed
    }
}
