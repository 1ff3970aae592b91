//! Signing helpers: the header values a sender would put on a webhook, for
//! each scheme `verify` checks. `ferry demo`, `ferry bench` and the tests use
//! them to produce valid requests; they share the MAC code with verification,
//! so a signature ferry makes is one ferry accepts.

use super::*;

/// `v1,<base64>` for the Standard Webhooks `webhook-signature` header.
pub fn sign_standard_webhooks(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, VerifyError> {
    let ts = timestamp.to_string();
    let tag = with_whsec_key(secret.as_bytes(), |key| {
        mac(HmacAlgorithm::Sha256, key, &|m| {
            for part in [msg_id.as_bytes(), b".", ts.as_bytes(), b".", body] {
                m.update(part);
            }
        })
    })
    .map_err(|reason| VerifyError::InvalidSecret { index: 0, reason })?;
    Ok(format!("v1,{}", STANDARD.encode(tag.as_slice())))
}

/// `t=<timestamp>,v1=<hex>` for the `Stripe-Signature` header.
pub fn sign_stripe(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let tag = mac(HmacAlgorithm::Sha256, secret.as_bytes(), &|m| {
        for part in [ts.as_bytes(), b".", body] {
            m.update(part);
        }
    });
    format!("t={ts},v1={}", hex::encode(tag.as_slice()))
}

/// The `X-Shopify-Hmac-Sha256` value.
pub fn sign_shopify(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(
        mac(HmacAlgorithm::Sha256, secret.as_bytes(), &|m| {
            m.update(body)
        })
        .as_slice(),
    )
}

/// The `X-Hub-Signature-256` value (`sha256=<hex>`).
pub fn sign_github(secret: &str, body: &[u8]) -> String {
    let tag = mac(HmacAlgorithm::Sha256, secret.as_bytes(), &|m| {
        m.update(body)
    });
    format!("sha256={}", hex::encode(tag.as_slice()))
}

/// The `X-HubSpot-Signature-v3` value; send `timestamp_ms` as `X-HubSpot-Request-Timestamp`.
pub fn sign_hubspot_v3(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    let ts = timestamp_ms.to_string();
    let tag = mac(HmacAlgorithm::Sha256, secret.as_bytes(), &|m| {
        hubspot_feed(m, method, uri, body, &ts)
    });
    STANDARD.encode(tag.as_slice())
}

/// The value of `spec.header`: `prefix + encode(HMAC(secret, body))`.
pub fn sign_hmac(spec: &HmacSpec, secret: &[u8], body: &[u8]) -> String {
    let tag = mac(spec.algorithm, secret, &|m| m.update(body));
    let encoded = match spec.encoding {
        SigEncoding::Hex => hex::encode(tag.as_slice()),
        SigEncoding::Base64 => STANDARD.encode(tag.as_slice()),
    };
    format!("{}{encoded}", spec.prefix.as_deref().unwrap_or(""))
}
