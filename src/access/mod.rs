//! Access: who may use the console and the admin API, and as what. People
//! are users with a role and a password, hashed with Argon2id (PHC strings;
//! no default password exists: `ferry users add` asks for one); machines
//! use API tokens (`ferry tokens add`, checked by the admin API). It sits
//! above the store, which keeps users and tokens, and below the routers.

pub mod password;
pub mod throttle;

use std::sync::Arc;

pub use crate::store::Role;

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
    pub fn dummy_phc(&self) -> &str {
        self.dummy_phc.get_or_init(|| {
            password::hash("no user has this password").expect("a fixed password hashes")
        })
    }
}
