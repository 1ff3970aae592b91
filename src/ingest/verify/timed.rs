//! The timestamped schemes (Standard Webhooks, Stripe, HubSpot v3): their
//! headers, the time window a replay must fall inside, and the MAC over the
//! signed content. `verify` dispatches here; `precheck` reads the same
//! headers and window before the body.

use hmac::digest::Update;

use super::{
    HUBSPOT_SIG, HUBSPOT_TS, HmacAlgorithm, Inbound, STRIPE_SIG, Tag, VerifyError, WH_ID, WH_SIG,
    WH_TS, decode_b64, decode_hex, first_match, mac, malformed, non_empty, required,
    with_whsec_key,
};

/// Which secret matched, and the scheme's event id.
pub(super) type Matched = (usize, Option<String>);

/// standardwebhooks.com: `{id}.{timestamp}.{body}` under the `whsec_` key;
/// the event id is `webhook-id`.
pub(super) fn standard_webhooks(
    secrets: &[&[u8]],
    req: &Inbound<'_>,
    now_ms: i64,
    tolerance_seconds: i64,
) -> Result<Matched, VerifyError> {
    let (h, body) = (req.headers, req.body);
    let id = required(h, WH_ID)?;
    let ts_raw = required(h, WH_TS)?;
    let sig = required(h, WH_SIG)?;
    let ts = parse_ts(ts_raw).ok_or_else(|| malformed(WH_TS, "not a unix timestamp"))?;
    let candidates = standard_candidates(sig);
    if candidates.clone().next().is_none() {
        return Err(malformed(WH_SIG, "no well-formed v1 signature"));
    }
    check_window(now_ms, ts.saturating_mul(1000), tolerance_seconds)?;
    let feed = |m: &mut dyn Update| {
        for part in [id.as_bytes(), b".", ts_raw.as_bytes(), b".", body] {
            m.update(part);
        }
    };
    let index = first_match(secrets, candidates, |s| {
        with_whsec_key(s, |key| mac(HmacAlgorithm::Sha256, key, &feed))
    })?;
    Ok((index, non_empty(id)))
}

/// Stripe: `{t}.{body}` under the whole secret; the event id is the body's.
pub(super) fn stripe(
    secrets: &[&[u8]],
    req: &Inbound<'_>,
    now_ms: i64,
    tolerance_seconds: i64,
) -> Result<Matched, VerifyError> {
    let (h, body) = (req.headers, req.body);
    let raw = required(h, STRIPE_SIG)?;
    let hdr = StripeHeader::parse(raw).map_err(|r| malformed(STRIPE_SIG, r))?;
    let candidates = hdr.v1().filter_map(|s| decode_hex(s, 32));
    if candidates.clone().next().is_none() {
        return Err(malformed(STRIPE_SIG, "no well-formed v1 signature"));
    }
    check_window(now_ms, hdr.t.saturating_mul(1000), tolerance_seconds)?;
    let feed = |m: &mut dyn Update| {
        for part in [hdr.t_raw.as_bytes(), b".", body] {
            m.update(part);
        }
    };
    let index = first_match(secrets, candidates, |s| {
        Ok(mac(HmacAlgorithm::Sha256, s, &feed))
    })?;
    Ok((index, stripe_event_id(body)))
}

/// HubSpot v3: method, URI, body and the millisecond timestamp.
pub(super) fn hubspot_v3(
    secrets: &[&[u8]],
    req: &Inbound<'_>,
    now_ms: i64,
    tolerance_seconds: i64,
) -> Result<usize, VerifyError> {
    let h = req.headers;
    let sig = required(h, HUBSPOT_SIG)?;
    let ts_raw = required(h, HUBSPOT_TS)?;
    let tag =
        decode_b64(sig, 32).ok_or_else(|| malformed(HUBSPOT_SIG, "expected base64 HMAC-SHA256"))?;
    let ts_ms =
        parse_ts(ts_raw).ok_or_else(|| malformed(HUBSPOT_TS, "not a millisecond timestamp"))?;
    check_window(now_ms, ts_ms, tolerance_seconds)?;
    let feed = |m: &mut dyn Update| hubspot_feed(m, req.method, req.uri, req.body, ts_raw);
    first_match(secrets, [tag].into_iter(), |s| {
        Ok(mac(HmacAlgorithm::Sha256, s, &feed))
    })
}

pub(super) fn hubspot_feed(m: &mut dyn Update, method: &str, uri: &str, body: &[u8], ts: &str) {
    m.update(method.as_bytes());
    // HubSpot decodes these escapes (and only these) before signing.
    let uri = uri.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i + 2 < uri.len() {
        let decoded = if uri[i] == b'%' {
            match (
                uri[i + 1].to_ascii_uppercase(),
                uri[i + 2].to_ascii_uppercase(),
            ) {
                (b'3', b'A') => Some(b':'),
                (b'2', b'F') => Some(b'/'),
                (b'3', b'F') => Some(b'?'),
                (b'4', b'0') => Some(b'@'),
                (b'2', b'1') => Some(b'!'),
                (b'2', b'4') => Some(b'$'),
                (b'2', b'7') => Some(b'\''),
                (b'2', b'8') => Some(b'('),
                (b'2', b'9') => Some(b')'),
                (b'2', b'A') => Some(b'*'),
                (b'2', b'C') => Some(b','),
                (b'3', b'B') => Some(b';'),
                _ => None,
            }
        } else {
            None
        };
        if let Some(c) = decoded {
            m.update(&uri[start..i]);
            m.update(&[c]);
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    m.update(&uri[start..]);
    m.update(body);
    m.update(ts.as_bytes());
}

/// A parsed `Stripe-Signature` header; `v1()` re-walks it so parsing never allocates.
pub(super) struct StripeHeader<'a> {
    pub(super) t: i64,
    pub(super) t_raw: &'a str,
    raw: &'a str,
}

impl<'a> StripeHeader<'a> {
    pub(super) fn parse(raw: &'a str) -> Result<Self, &'static str> {
        let mut t_raw = None;
        for item in raw.split(',') {
            match item.trim().split_once('=') {
                Some(("t", _)) if t_raw.is_some() => return Err("duplicate t="),
                Some(("t", v)) => t_raw = Some(v),
                Some(_) => {}
                None => return Err("expected comma-separated key=value pairs"),
            }
        }
        let t_raw = t_raw.ok_or("missing t=")?;
        let t = parse_ts(t_raw).ok_or("t= is not a unix timestamp")?;
        Ok(StripeHeader { t, t_raw, raw })
    }

    pub(super) fn v1(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        self.raw
            .split(',')
            .filter_map(|item| item.trim().strip_prefix("v1="))
    }
}

pub(super) fn standard_candidates(header: &str) -> impl Iterator<Item = Tag> + Clone + '_ {
    header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| decode_b64(sig, 32))
}

fn stripe_event_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        id: Option<String>,
    }
    serde_json::from_slice::<Event>(body)
        .ok()?
        .id
        .filter(|id| !id.is_empty())
}

/// Unsigned decimal only, so the signed text and the parsed value agree.
pub(super) fn parse_ts(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Rejects `ts_ms` further than the tolerance from `now_ms`, reporting whole seconds (rounded up).
pub(super) fn check_window(
    now_ms: i64,
    ts_ms: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let tolerance_seconds = tolerance_seconds.max(0);
    let tolerance_ms = tolerance_seconds.saturating_mul(1000);
    let age_ms = now_ms.saturating_sub(ts_ms);
    let ceil_s = |ms: i64| ms / 1000 + i64::from(ms % 1000 != 0);
    if age_ms > tolerance_ms {
        Err(VerifyError::Stale {
            age_seconds: ceil_s(age_ms),
            tolerance_seconds,
        })
    } else if age_ms < -tolerance_ms {
        Err(VerifyError::Future {
            ahead_seconds: ceil_s(age_ms.saturating_neg()),
            tolerance_seconds,
        })
    } else {
        Ok(())
    }
}
