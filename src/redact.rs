//! Redaction: which header names carry credentials, and the digest comparison
//! used for every presented secret. Pure and shared by ingest (headers kept
//! with a message), connect (headers in attempt records) and the store's scrub
//! migrations (SQLite v6, PostgreSQL v7 spell the same patterns in SQL), so the
//! rule lives in one place.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a redacted header's value is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Whether a header with this name may carry a credential: the auth and
/// cookie headers, every platform's signature header, and any name ending in
/// `-token`, `-secret`, `-key` or `-signature` (or mentioning a signature or
/// an HMAC). `Idempotency-Key` is a protocol header, not a secret, and is kept.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    if name == "idempotency-key" {
        return false;
    }
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "set-cookie"
            | "set-cookie2"
            | "api-key"
            | "x-api-key"
            | "apikey"
    ) || [
        "-token",
        "-secret",
        "-key",
        "-signature",
        "_token",
        "_secret",
        "_key",
    ]
    .iter()
    .any(|s| name.ends_with(s))
        || name.contains("signature")
        || name.contains("hmac")
}

/// A header value as kept for operators: redacted when the name is secret or
/// is the route's or system's own credential header.
pub fn header_value(name: &str, value: &[u8], own: Option<&str>) -> String {
    if is_secret_header(name) || own.is_some_and(|o| o.eq_ignore_ascii_case(name)) {
        REDACTED.to_owned()
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

/// Compares a presented secret with an expected one as SHA-256 digests in
/// constant time, so neither the content nor the length leaks through timing.
pub fn secret_eq(expected: &[u8], presented: &[u8]) -> bool {
    let a = Sha256::digest(expected);
    let b = Sha256::digest(presented);
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The token of an `Authorization: Bearer <token>` header, the scheme matched
/// case-insensitively (RFC 7235); `None` for another scheme or an empty token.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_secret() {
        for h in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "Set-Cookie2",
            "X-API-Key",
            "api-key",
            "X-Shopify-Access-Token",
            "x-client-secret",
            "x-my-key",
            "webhook-signature",
            "Stripe-Signature",
            "X-Shopify-Hmac-Sha256",
            "X-Hub-Signature-256",
            "X-HubSpot-Signature-v3",
            "x-access_token",
        ] {
            assert!(is_secret_header(h), "{h} should be redacted");
        }
    }

    #[test]
    fn ordinary_headers_are_kept() {
        for h in [
            "content-type",
            "user-agent",
            "webhook-id",
            "x-shopify-webhook-id",
            "idempotency-key",
            "Idempotency-Key",
            "www-authenticate",
            "x-request-id",
            "keyboard",
            "x-tokens-left",
        ] {
            assert!(!is_secret_header(h), "{h} should be kept");
        }
    }

    #[test]
    fn own_header_is_redacted_whatever_its_name() {
        assert_eq!(
            header_value("x-partner", b"s3cr3t", Some("X-Partner")),
            REDACTED
        );
        assert_eq!(
            header_value("x-other", b"plain", Some("X-Partner")),
            "plain"
        );
        assert_eq!(header_value("x-other", b"plain", None), "plain");
    }

    #[test]
    fn digests_compare_content_not_length() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abcd"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer x"), Some("x"));
        assert_eq!(bearer("bearer x"), Some("x"));
        assert_eq!(bearer("BEARER  x "), Some("x"));
        assert_eq!(bearer("Basic x"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
