//! Verification before the body is read: everything a scheme checks that
//! does not need the body or a secret (its headers are there and well
//! formed; a timestamped scheme's time lies within the tolerance). A webhook
//! that fails here is refused before ferry buffers a byte of its body, so a
//! stale replay or an unsigned upload costs neither memory nor an HMAC.
//! [`verify`](super::verify) repeats these checks (cheaply) on the whole request.

use axum::http::HeaderMap;

use super::*;

/// The header-only part of [`verify`](super::verify): the same errors, in
/// the same order, for every request `verify` would refuse on its headers;
/// `Ok` for every request it would accept.
pub fn precheck(
    scheme: &Scheme,
    h: &HeaderMap,
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let now_ms = now_unix.saturating_mul(1000);
    match scheme {
        Scheme::StandardWebhooks => {
            required(h, WH_ID)?;
            let ts_raw = required(h, WH_TS)?;
            let sig = required(h, WH_SIG)?;
            let ts = parse_ts(ts_raw).ok_or_else(|| malformed(WH_TS, "not a unix timestamp"))?;
            if standard_candidates(sig).next().is_none() {
                return Err(malformed(WH_SIG, "no well-formed v1 signature"));
            }
            check_window(now_ms, ts.saturating_mul(1000), tolerance_seconds)
        }
        Scheme::Stripe => {
            let raw = required(h, STRIPE_SIG)?;
            let hdr = StripeHeader::parse(raw).map_err(|r| malformed(STRIPE_SIG, r))?;
            if !hdr.v1().any(|s| decode_hex(s, 32).is_some()) {
                return Err(malformed(STRIPE_SIG, "no well-formed v1 signature"));
            }
            check_window(now_ms, hdr.t.saturating_mul(1000), tolerance_seconds)
        }
        Scheme::Shopify => {
            decode_b64(required(h, SHOPIFY_SIG)?, 32)
                .ok_or_else(|| malformed(SHOPIFY_SIG, "expected base64 HMAC-SHA256"))?;
            optional(h, SHOPIFY_ID).map(|_| ())
        }
        Scheme::Github => {
            required(h, GITHUB_SIG)?
                .strip_prefix("sha256=")
                .and_then(|hex| decode_hex(hex, 32))
                .ok_or_else(|| malformed(GITHUB_SIG, "expected sha256=<hex HMAC-SHA256>"))?;
            optional(h, GITHUB_ID).map(|_| ())
        }
        Scheme::HubspotV3 => {
            let sig = required(h, HUBSPOT_SIG)?;
            let ts_raw = required(h, HUBSPOT_TS)?;
            decode_b64(sig, 32)
                .ok_or_else(|| malformed(HUBSPOT_SIG, "expected base64 HMAC-SHA256"))?;
            let ts_ms = parse_ts(ts_raw)
                .ok_or_else(|| malformed(HUBSPOT_TS, "not a millisecond timestamp"))?;
            check_window(now_ms, ts_ms, tolerance_seconds)
        }
        Scheme::Hmac(spec) => hmac_tag(spec, h).map(|_| ()),
        Scheme::Basic => basic_credentials(h, &mut [0u8; 768]).map(|_| ()),
        Scheme::ApiKey { header } => required(h, header).map(|_| ()),
    }
}
