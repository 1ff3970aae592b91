//! The master key and the sealing of credential values: XChaCha20-Poly1305
//! (RustCrypto), a random 24-byte nonce per encryption (safe without a
//! counter, across instances), the credential's name and version as
//! associated data, so a sealed value moved to another name or version does
//! not open. Pure: the store keeps only what [`MasterKey::seal`] returns, and
//! a sealed known plaintext ([`MasterKey::check_value`]) by which a wrong key
//! is told at start. The key itself is never stored, logged or printed, except
//! by `ferry keys generate`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// The environment variable naming a file that holds the master key.
pub const KEY_FILE_ENV: &str = "FERRY_MASTER_KEY_FILE";
/// The environment variable holding the master key itself.
pub const KEY_ENV: &str = "FERRY_MASTER_KEY";

const NONCE_LEN: usize = 24;
/// What the key check value seals: no credential has this name (names come
/// from a TOML key and the CLI, and `:` at the start is refused there).
const CHECK_NAME: &str = ":ferry-key-check";
const CHECK_TEXT: &str = "ferry master key check v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "no master key: set {KEY_FILE_ENV} (a file) or {KEY_ENV} to the output of `ferry keys generate`"
    )]
    Missing,
    #[error("set only one of {KEY_FILE_ENV} and {KEY_ENV}")]
    Both,
    #[error("cannot read {KEY_FILE_ENV} ({path}): {reason}")]
    File { path: String, reason: String },
    #[error(
        "the master key is not valid: {0} (expected 32 bytes in base64, as `ferry keys generate` prints)"
    )]
    Malformed(&'static str),
    #[error("the master key does not match the one this store's credentials were sealed with")]
    Wrong,
    /// A sealed value did not open: another key, another name or version,
    /// or altered bytes.
    #[error("credential {name} version {version} cannot be decrypted (wrong key, or altered)")]
    Unsealable { name: String, version: i64 },
}

/// The key credential values are sealed with. Not `Debug`, not `Clone`: it
/// stays where it was read.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    /// A new random key in its text form (base64 of 32 bytes).
    pub fn generate() -> Zeroizing<String> {
        use rand::RngCore;
        // ThreadRng: a CSPRNG seeded from the OS.
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut_slice());
        Zeroizing::new(STANDARD.encode(key.as_slice()))
    }

    /// Parses the text form (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<MasterKey, KeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyError::Malformed("not base64"))?,
        );
        if bytes.len() != 32 {
            return Err(KeyError::Malformed("not 32 bytes"));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| KeyError::Malformed("not 32 bytes"))?;
        Ok(MasterKey { cipher })
    }

    /// The key from `FERRY_MASTER_KEY_FILE` or `FERRY_MASTER_KEY`, looked
    /// up through `env` (the process environment, or a test's map).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<MasterKey, KeyError> {
        match (env(KEY_FILE_ENV), env(KEY_ENV)) {
            (Some(_), Some(_)) => Err(KeyError::Both),
            (Some(path), None) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| KeyError::File {
                        path: path.clone(),
                        reason: e.kind().to_string(),
                    })?);
                MasterKey::parse(&text)
            }
            (None, Some(text)) => MasterKey::parse(&Zeroizing::new(text)),
            (None, None) => Err(KeyError::Missing),
        }
    }

    /// Seals `value` as version `version` of credential `name`: nonce ‖
    /// ciphertext ‖ tag.
    pub fn seal(&self, name: &str, version: i64, value: &[u8]) -> Vec<u8> {
        let nonce = XNonce::generate();
        let aad = associated(name, version);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message under 256 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`seal`](Self::seal) made for the same name and version.
    pub fn open(&self, name: &str, version: i64, sealed: &[u8]) -> Result<SecretString, KeyError> {
        let unsealable = || KeyError::Unsealable {
            name: name.to_owned(),
            version,
        };
        if sealed.len() < NONCE_LEN {
            return Err(unsealable());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| unsealable())?;
        let aad = associated(name, version);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: body,
                        aad: &aad,
                    },
                )
                .map_err(|_| unsealable())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| unsealable())?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// A sealed known text: stored once per store, it tells at start whether
    /// a key is the one the store's values were sealed with.
    pub fn check_value(&self) -> Vec<u8> {
        self.seal(CHECK_NAME, 0, CHECK_TEXT.as_bytes())
    }

    /// Whether `stored` (a [`check_value`](Self::check_value)) was made with this key.
    pub fn matches(&self, stored: &[u8]) -> Result<(), KeyError> {
        use secrecy::ExposeSecret;
        match self.open(CHECK_NAME, 0, stored) {
            Ok(t) if t.expose_secret() == CHECK_TEXT => Ok(()),
            _ => Err(KeyError::Wrong),
        }
    }
}

/// The associated data: name and version, unambiguous (the name's length first).
fn associated(name: &str, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(name.len() + 24);
    aad.extend_from_slice(b"ferry-credential\0");
    aad.extend_from_slice(&(name.len() as u64).to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn key() -> MasterKey {
        MasterKey::parse(&MasterKey::generate()).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_name_and_version() {
        let k = key();
        let sealed = k.seal("shop_webhook", 3, b"whsec_abc");
        assert!(
            !sealed.windows(9).any(|w| w == b"whsec_abc"),
            "not in clear"
        );
        assert_eq!(
            k.open("shop_webhook", 3, &sealed).unwrap().expose_secret(),
            "whsec_abc"
        );
        // a fresh nonce each time
        assert_ne!(sealed, k.seal("shop_webhook", 3, b"whsec_abc"));
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = key().seal("a", 1, b"v");
        let err = key().open("a", 1, &sealed).unwrap_err();
        assert_eq!(
            err,
            KeyError::Unsealable {
                name: "a".into(),
                version: 1
            }
        );
    }

    #[test]
    fn altered_bytes_do_not_open() {
        let k = key();
        let sealed = k.seal("a", 1, b"value");
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open("a", 1, &bad).is_err(), "byte {i} altered");
        }
        assert!(
            k.open("a", 1, &sealed[..NONCE_LEN + 3]).is_err(),
            "cut short"
        );
        assert!(k.open("a", 1, b"").is_err());
    }

    #[test]
    fn another_name_or_version_does_not_open_it() {
        let k = key();
        let sealed = k.seal("a", 1, b"value");
        assert!(k.open("b", 1, &sealed).is_err());
        assert!(k.open("a", 2, &sealed).is_err());
        // the length prefix keeps ("ab", 1) apart from ("a", ...) variants
        assert_ne!(associated("ab", 1), associated("a", 1));
    }

    #[test]
    fn the_check_value_tells_the_right_key_from_a_wrong_one() {
        let k = key();
        let check = k.check_value();
        assert_eq!(k.matches(&check), Ok(()));
        assert_eq!(key().matches(&check), Err(KeyError::Wrong));
    }

    #[test]
    fn keys_come_from_the_environment_in_one_of_two_ways() {
        let text = MasterKey::generate();
        let t = text.to_string();
        let only_key = move |n: &str| (n == KEY_ENV).then(|| t.clone());
        assert!(MasterKey::from_env(&only_key).is_ok());
        let none = |_: &str| None;
        assert_eq!(MasterKey::from_env(&none).err(), Some(KeyError::Missing));
        let both = |_: &str| Some("x".to_owned());
        assert_eq!(MasterKey::from_env(&both).err(), Some(KeyError::Both));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{}\n", *text)).unwrap();
        let path = file.display().to_string();
        let from_file = move |n: &str| (n == KEY_FILE_ENV).then(|| path.clone());
        assert!(MasterKey::from_env(&from_file).is_ok());
        for bad in ["not base64!", "c2hvcnQ="] {
            assert!(matches!(MasterKey::parse(bad), Err(KeyError::Malformed(_))));
        }
    }
}
