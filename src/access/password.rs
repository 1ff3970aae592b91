//! Passwords: Argon2id with the RustCrypto defaults (19 MiB, 2 passes, one
//! lane), a random 16-byte salt per hash, stored as a PHC string. Hashing is
//! deliberately slow (tens of milliseconds); the HTTP side runs it off the
//! async runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The shortest password `ferry users add` accepts.
pub const MIN_LENGTH: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string of `password` (checked for length first).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (in constant time; a malformed hash
/// matches nothing).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterz", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(
            phc,
            hash("correct horse battery").unwrap(),
            "a salt per hash"
        );
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
    }
}
