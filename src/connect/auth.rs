//! Outbound authentication: the credential values ferry presents to systems,
//! applied per the system's `auth` kind. Values are re-read from their source
//! (env var or file) when a system rejects them, so a rotated secret is picked
//! up without a restart.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Auth, Config, SecretSource};

pub struct Credentials {
    /// Current values; a `std` lock, held only to read or swap a value.
    values: RwLock<HashMap<String, SecretString>>,
    sources: HashMap<String, SecretSource>,
}

impl Credentials {
    pub fn new(config: &Config) -> Credentials {
        Credentials {
            values: RwLock::new(
                config
                    .credentials
                    .iter()
                    .map(|(k, c)| (k.clone(), c.value.clone()))
                    .collect(),
            ),
            sources: config
                .credentials
                .iter()
                .map(|(k, c)| (k.clone(), c.source.clone()))
                .collect(),
        }
    }

    /// Adds the auth header; returns its name so logs can redact it.
    pub fn apply(&self, auth: &Auth, headers: &mut HeaderMap) -> Option<HeaderName> {
        let credential = auth.credential()?;
        let values = self.values.read().expect("credentials lock poisoned");
        let secret = values.get(credential)?.expose_secret();
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
