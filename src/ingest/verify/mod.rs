//! Ingest stage 1: before a webhook body is parsed or stored, its raw bytes and
//! headers are checked here against the route's configured [`Scheme`] and
//! secrets. Only a request that passes goes on to `store.accept`, and only after
//! that durable write does the ingest handler answer 2xx; a request that fails
//! here is answered 4xx and nothing is stored. A route may carry several secrets
//! (a rotation overlap): the request is accepted if ANY of them matches, and
//! [`Verified::secret_index`] says which one did. [`Verified::event_id`] is the
//! scheme's delivery or event id, used for deduplication. Note that the Shopify
//! and GitHub ids travel in unsigned headers, so they are only as trustworthy
//! as the sender's TLS connection.
//!
//! All MAC and credential comparisons are constant time, errors never carry
//! secret material, and malformed input is an error, never a panic. The
//! `sign_*` helpers build the headers a sender would attach; ferry's demo,
//! bench and tests use them.

use axum::http::HeaderMap;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::{DecodeSliceError, Engine as _, alphabet};
use hmac::digest::{KeyInit, Update};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};

/// Standard-alphabet base64 that decodes input with or without padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const WH_ID: &str = "webhook-id";
const WH_TS: &str = "webhook-timestamp";
const WH_SIG: &str = "webhook-signature";
const STRIPE_SIG: &str = "Stripe-Signature";
const SHOPIFY_SIG: &str = "X-Shopify-Hmac-Sha256";
const SHOPIFY_ID: &str = "X-Shopify-Webhook-Id";
const GITHUB_SIG: &str = "X-Hub-Signature-256";
const GITHUB_ID: &str = "X-GitHub-Delivery";
const HUBSPOT_SIG: &str = "X-HubSpot-Signature-v3";
const HUBSPOT_TS: &str = "X-HubSpot-Request-Timestamp";
const AUTHORIZATION: &str = "Authorization";

pub use crate::config::scheme::{HmacAlgorithm, HmacSpec, Scheme, SigEncoding};

/// An inbound request as received, before any parsing of the body.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub method: &'a str,
    /// The full URL as the sender called it (only HubSpot v3 signs it).
    pub uri: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scheme's event/delivery id for deduplication, where it has one.
    pub event_id: Option<String>,
    /// Index into `secrets` of the secret that matched.
    pub secret_index: usize,
}

/// Why a request was rejected. No variant ever carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(String),
    #[error("malformed {header}: {reason}")]
    Malformed { header: String, reason: String },
    #[error("timestamp is {age_seconds}s old, outside the {tolerance_seconds}s tolerance")]
    Stale {
        age_seconds: i64,
        tolerance_seconds: i64,
    },
    #[error(
        "timestamp is {ahead_seconds}s in the future, outside the {tolerance_seconds}s tolerance"
    )]
    Future {
        ahead_seconds: i64,
        tolerance_seconds: i64,
    },
    #[error("signature does not match any configured secret")]
    Mismatch,
    #[error("no secret configured")]
    NoSecret,
    /// A configured secret is unusable (e.g. empty, or `whsec_` not base64).
    #[error("secret #{index} is invalid: {reason}")]
    InvalidSecret { index: usize, reason: &'static str },
}

fn malformed(header: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed {
        header: header.to_owned(),
        reason: reason.into(),
    }
}

/// Verifies `req` against `scheme` with any of `secrets` (raw configured values,
/// e.g. `whsec_...`). Timestamped schemes reject `|now - ts| > tolerance_seconds`
/// (a negative tolerance counts as 0). Checks run cheapest first: headers and
/// their format, then the timestamp window, then one MAC per secret, so a stale
/// replay costs no HMAC. The event id is extracted only after a match.
pub fn verify(
    scheme: &Scheme,
    secrets: &[&[u8]],
    req: &Inbound<'_>,
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<Verified, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let (h, body) = (req.headers, req.body);
    let now_ms = now_unix.saturating_mul(1000);
    let sha256 = HmacAlgorithm::Sha256;
    let body_feed = |m: &mut dyn Update| m.update(body);
    let (secret_index, event_id) = match scheme {
        Scheme::StandardWebhooks => standard_webhooks(secrets, req, now_ms, tolerance_seconds)?,
        Scheme::Stripe => stripe(secrets, req, now_ms, tolerance_seconds)?,
        Scheme::Shopify => {
            let sig = required(h, SHOPIFY_SIG)?;
            let tag = decode_b64(sig, 32)
                .ok_or_else(|| malformed(SHOPIFY_SIG, "expected base64 HMAC-SHA256"))?;
            let id = optional(h, SHOPIFY_ID)?;
            let index = first_match(secrets, [tag].into_iter(), |s| {
                Ok(mac(sha256, s, &body_feed))
            })?;
            (index, id.and_then(non_empty))
        }
        Scheme::Github => {
            let sig = required(h, GITHUB_SIG)?;
            let tag = sig
                .strip_prefix("sha256=")
                .and_then(|hex| decode_hex(hex, 32))
                .ok_or_else(|| malformed(GITHUB_SIG, "expected sha256=<hex HMAC-SHA256>"))?;
            let id = optional(h, GITHUB_ID)?;
            let index = first_match(secrets, [tag].into_iter(), |s| {
                Ok(mac(sha256, s, &body_feed))
            })?;
            (index, id.and_then(non_empty))
        }
        Scheme::HubspotV3 => (hubspot_v3(secrets, req, now_ms, tolerance_seconds)?, None),
        Scheme::Hmac(spec) => {
            let tag = hmac_tag(spec, h)?;
            let alg = spec.algorithm;
            (
                first_match(secrets, [tag].into_iter(), |s| Ok(mac(alg, s, &body_feed)))?,
                None,
            )
        }
        Scheme::Basic => {
            let mut buf = [0u8; 768];
            let n = basic_credentials(h, &mut buf)?;
            (match_credential(secrets, &buf[..n])?, None)
        }
        Scheme::ApiKey { header } => (
            match_credential(secrets, required(h, header)?.as_bytes())?,
            None,
        ),
    };
    Ok(Verified {
        event_id,
        secret_index,
    })
}

/// The generic `hmac` scheme's MAC from its header (prefix stripped, decoded).
fn hmac_tag(spec: &HmacSpec, h: &HeaderMap) -> Result<Tag, VerifyError> {
    let raw = required(h, &spec.header)?;
    let value = match &spec.prefix {
        Some(p) => raw
            .strip_prefix(p.as_str())
            .ok_or_else(|| malformed(&spec.header, format!("expected prefix {p:?}")))?,
        None => raw,
    };
    let len = spec.algorithm.output_len();
    match spec.encoding {
        SigEncoding::Hex => decode_hex(value, len),
        SigEncoding::Base64 => decode_b64(value, len),
    }
    .ok_or_else(|| {
        let enc = if spec.encoding == SigEncoding::Hex {
            "hex"
        } else {
            "base64"
        };
        malformed(&spec.header, format!("expected a {enc} {len}-byte MAC"))
    })
}

/// `Authorization: Basic ...` decoded into `buf`; its length.
fn basic_credentials(h: &HeaderMap, buf: &mut [u8; 768]) -> Result<usize, VerifyError> {
    let raw = required(h, AUTHORIZATION)?;
    let token = match raw.trim().split_once(' ') {
        Some((word, token)) if word.eq_ignore_ascii_case("basic") => token.trim(),
        _ => return Err(malformed(AUTHORIZATION, "expected Basic credentials")),
    };
    B64.decode_slice(token, buf)
        .map_err(|_| malformed(AUTHORIZATION, "credentials are not base64 (or too long)"))
}

/// A MAC or decoded signature, held on the stack (64 bytes fits SHA-512).
#[derive(Clone, Copy)]
struct Tag {
    buf: [u8; 64],
    len: usize,
}

impl Tag {
    fn new(bytes: &[u8]) -> Tag {
        let mut tag = Tag {
            buf: [0; 64],
            len: bytes.len(),
        };
        tag.buf[..bytes.len()].copy_from_slice(bytes);
        tag
    }
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn mac(alg: HmacAlgorithm, key: &[u8], feed: &dyn Fn(&mut dyn Update)) -> Tag {
    fn run<M: Mac + KeyInit + Update>(key: &[u8], feed: &dyn Fn(&mut dyn Update)) -> Tag {
        let mut m = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        feed(&mut m);
        Tag::new(&m.finalize().into_bytes())
    }
    match alg {
        HmacAlgorithm::Sha1 => run::<Hmac<Sha1>>(key, feed),
        HmacAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, feed),
        HmacAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, feed),
    }
}

/// Index of the first secret whose tag equals any candidate (compared in
/// constant time). Unusable secrets are skipped; if nothing matches and one was
/// unusable, that configuration error is reported instead of `Mismatch`.
fn first_match(
    secrets: &[&[u8]],
    candidates: impl Iterator<Item = Tag> + Clone,
    tag_for: impl Fn(&[u8]) -> Result<Tag, &'static str>,
) -> Result<usize, VerifyError> {
    let mut invalid = None;
    for (index, secret) in secrets.iter().enumerate() {
        let tag = if secret.is_empty() {
            Err("secret is empty")
        } else {
            tag_for(secret)
        };
        match tag {
            Ok(tag) => {
                let hit = candidates.clone().fold(Choice::from(0), |acc, c| {
                    acc | tag.as_slice().ct_eq(c.as_slice())
                });
                if bool::from(hit) {
                    return Ok(index);
                }
            }
            Err(reason) => {
                invalid.get_or_insert(VerifyError::InvalidSecret { index, reason });
            }
        }
    }
    Err(invalid.unwrap_or(VerifyError::Mismatch))
}

/// Compares SHA-256 digests so neither content nor length leaks through timing.
fn match_credential(secrets: &[&[u8]], presented: &[u8]) -> Result<usize, VerifyError> {
    let presented = Tag::new(&Sha256::digest(presented));
    first_match(secrets, [presented].into_iter(), |s| {
        Ok(Tag::new(&Sha256::digest(s)))
    })
}

/// Decodes a Standard Webhooks secret (`whsec_` optional) and hands the key to `f`.
fn with_whsec_key<R>(secret: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, &'static str> {
    const NOT_BASE64: &str = "whsec_ secret is not valid base64";
    let encoded = secret.strip_prefix(b"whsec_").unwrap_or(secret);
    let mut buf = [0u8; 128];
    let heap;
    let key = match B64.decode_slice(encoded, &mut buf) {
        Ok(n) => &buf[..n],
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            heap = B64.decode(encoded).map_err(|_| NOT_BASE64)?;
            &heap[..]
        }
        Err(DecodeSliceError::DecodeError(_)) => return Err(NOT_BASE64),
    };
    if key.is_empty() {
        return Err("secret key is empty");
    }
    Ok(f(key))
}

fn decode_b64(s: &str, len: usize) -> Option<Tag> {
    let mut tag = Tag {
        buf: [0; 64],
        len: 0,
    };
    tag.len = B64.decode_slice(s, &mut tag.buf).ok()?;
    (tag.len == len).then_some(tag)
}

fn decode_hex(s: &str, len: usize) -> Option<Tag> {
    let mut tag = Tag { buf: [0; 64], len };
    (len <= 64 && s.len() == 2 * len).then_some(())?;
    hex::decode_to_slice(s, &mut tag.buf[..len]).ok()?;
    Some(tag)
}

fn optional<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, VerifyError> {
    headers
        .get(name)
        .map(|v| std::str::from_utf8(v.as_bytes()).map_err(|_| malformed(name, "not valid UTF-8")))
        .transpose()
}

fn required<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, VerifyError> {
    optional(headers, name)?.ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

mod precheck;
mod sign;
mod timed;

pub use precheck::precheck;
pub use sign::*;
use timed::{
    StripeHeader, check_window, hubspot_feed, hubspot_v3, parse_ts, standard_candidates,
    standard_webhooks, stripe,
};

#[cfg(test)]
mod tests;
