//! Access: who may use the console and the admin API, and as what. People
//! are users with a role and a password, hashed with Argon2id (PHC strings;
//! no default password exists: `ferry users add` asks for one); machines
//! use API tokens (`ferry tokens add`, checked by the admin API). It sits
//! above the store, which keeps users and tokens, and below the routers.

pub mod password;
pub mod throttle;

use std::sync::Arc;

pub use crate::store::Role;

use base64::Engine;
use sha2::{Digest, Sha256};

/// A new random secret: 256 bits, URL-safe base64 without padding (a
/// session cookie, a CSRF token).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new admin API token (`ferry_` and 256 random bits), shown once.
pub fn api_token() -> String {
    format!("ferry_{}", random_token())
}

/// A new embed token (`embed_` and 256 random bits, URL-safe), shown once:
/// it opens one route's read-only failure list.
pub fn embed_token() -> String {
    format!("embed_{}", random_token())
}

/// What the store keeps of a token: its SHA-256 in hex.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `name` may name a token or a user (what the audit log and the
/// console show): letters, digits, `-`, `_`, `.` and `@`, at most 64.
pub fn account_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name `{name}`: use letters, digits, `-`, `_`, `.` and `@` (at most 64)"
        ))
    }
}

/// What signing in shares across requests: the throttle, and the permits
/// for password checks (Argon2id takes ~20 MiB and tens of milliseconds,
/// so at most [`CHECKS_AT_ONCE`] run at once, off the async runtime).
pub struct SignIns {
    pub throttle: throttle::Throttle,
    pub checks: Arc<tokio::sync::Semaphore>,
    /// A hash checked for unknown users, so they take as long as known
    /// ones (made at the first sign-in).
    dummy_phc: std::sync::OnceLock<String>,
}

/// Password checks that may run at once.
pub const CHECKS_AT_ONCE: usize = 2;

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            throttle: throttle::Throttle::default(),
            checks: Arc::new(tokio::sync::Semaphore::new(CHECKS_AT_ONCE)),
            dummy_phc: Default::default(),
        }
    }
}

impl SignIns {
    /// Runs an Argon2id computation (a check or a new hash) off the async
    /// runtime, behind the permits.
    pub async fn argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let permit = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
    }

    pub fn dummy_phc(&self) -> &str {
        self.dummy_phc.get_or_init(|| {
            password::hash("no user has this password").expect("a fixed password hashes")
        })
    }
}
