//! Outbound Standard Webhooks signatures (`auth = { kind =
//! "standard-webhooks" }`): ferry as the sender. Each delivery carries
//! `webhook-id` (its stable downstream key, the same on every retry),
//! `webhook-timestamp` (seconds, ferry's clock) and `webhook-signature`:
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` once per live
//! version of the secret, space-separated, so a receiver that has only the
//! old or only the new secret accepts it during a rotation. The secret is
//! `whsec_<base64>`: the prefix stripped, the rest base64-decoded.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Why a delivery could not be signed (the secret is unusable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the signing secret is not `whsec_` followed by base64")]
    NotWhsec,
    #[error("no value for the signing credential")]
    NoSecret,
}

/// `v1,<sig>` for one secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .filter(|k| !k.is_empty())
        .ok_or(SignError::NotWhsec)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError::NotWhsec)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Adds the three headers, signed with each of `secrets` (newest first).
pub fn sign(
    headers: &mut HeaderMap,
    secrets: &[SecretString],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<(), SignError> {
    if secrets.is_empty() {
        return Err(SignError::NoSecret);
    }
    let signatures = secrets
        .iter()
        .map(|s| signature(s.expose_secret(), id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    let value = |s: &str| HeaderValue::from_str(s).map_err(|_| SignError::NotWhsec);
    headers.insert("webhook-id", value(id)?);
    headers.insert("webhook-timestamp", value(&timestamp.to_string())?);
    let mut sig = value(&signatures.join(" "))?;
    sig.set_sensitive(true);
    headers.insert("webhook-signature", sig);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/signatures.json"
    ));

    #[test]
    fn signatures_match_the_published_vectors() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let vectors = v["standard_webhooks"]["vectors"].as_array().unwrap();
        assert!(!vectors.is_empty());
        for t in vectors {
            let got = signature(
                t["secret"].as_str().unwrap(),
                t["msg_id"].as_str().unwrap(),
                t["timestamp"].as_i64().unwrap(),
                t["payload"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
            assert_eq!(got, t["expected_signature"].as_str().unwrap());
        }
    }

    #[test]
    fn every_live_version_signs_space_separated() {
        let secrets: Vec<SecretString> = [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ]
        .into_iter()
        .map(SecretString::from)
        .collect();
        let mut h = HeaderMap::new();
        sign(&mut h, &secrets, "msg_1", 1_700_000_000, b"{}").unwrap();
        let sig = h["webhook-signature"].to_str().unwrap();
        let parts: Vec<_> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            signature(secrets[0].expose_secret(), "msg_1", 1_700_000_000, b"{}").unwrap()
        );
        assert_eq!(
            parts[1],
            signature(secrets[1].expose_secret(), "msg_1", 1_700_000_000, b"{}").unwrap()
        );
        assert_eq!(h["webhook-id"], "msg_1");
        assert_eq!(h["webhook-timestamp"], "1700000000");
        assert!(h["webhook-signature"].is_sensitive());
    }

    #[test]
    fn an_unusable_secret_is_an_error() {
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_"] {
            assert_eq!(
                signature(bad, "i", 1, b""),
                Err(SignError::NotWhsec),
                "{bad}"
            );
        }
        assert_eq!(
            sign(&mut HeaderMap::new(), &[], "i", 1, b""),
            Err(SignError::NoSecret)
        );
    }
}
