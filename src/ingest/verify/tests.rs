//! Unit tests for `verify`, driven by the published vectors in
//! `tests/vectors/signatures.json` plus round trips through the `sign_*` helpers.

use super::*;
use axum::http::{HeaderName, HeaderValue};
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/signatures.json"
));
const TOL: i64 = 300;
const URI: &str = "https://ferry.example.com/hooks/crm";

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("signatures.json parses")
}

fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn check(
    scheme: &Scheme,
    secrets: &[&str],
    h: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, VerifyError> {
    let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    let req = Inbound {
        method: "POST",
        uri: URI,
        headers: h,
        body,
    };
    let verified = verify(scheme, &secrets, &req, now, TOL);
    agrees_with_precheck(scheme, h, now, &verified);
    verified
}

/// `precheck` (headers only, before the body) refuses exactly what `verify`
/// refuses on the headers, with the same error, and passes everything else.
fn agrees_with_precheck(
    scheme: &Scheme,
    h: &HeaderMap,
    now: i64,
    verified: &Result<Verified, VerifyError>,
) {
    let pre = precheck(scheme, h, now, TOL);
    match verified {
        Ok(_) | Err(VerifyError::Mismatch | VerifyError::InvalidSecret { .. }) => {
            assert_eq!(
                pre,
                Ok(()),
                "precheck refused what verify got past the headers"
            )
        }
        Err(VerifyError::NoSecret) => {}
        Err(e) => assert_eq!(pre.as_ref(), Err(e), "precheck and verify disagree"),
    }
}

fn ok(index: usize, id: Option<&str>) -> Result<Verified, VerifyError> {
    Ok(Verified {
        event_id: id.map(str::to_owned),
        secret_index: index,
    })
}

fn std_headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
    headers(&[
        ("webhook-id", id),
        ("webhook-timestamp", &ts.to_string()),
        ("webhook-signature", sig),
    ])
}

fn malformed_on(r: Result<Verified, VerifyError>, header: &str) {
    match r {
        Err(VerifyError::Malformed { header: h, .. }) => {
            assert!(h.eq_ignore_ascii_case(header), "{h}")
        }
        other => panic!("expected Malformed {header}, got {other:?}"),
    }
}

#[test]
fn standard_webhooks_published_vectors_sign_and_verify() {
    let v = vectors();
    let vecs = v["standard_webhooks"]["vectors"].as_array().unwrap();
    assert_eq!(vecs.len(), 2);
    for vec in vecs {
        let (secret, id, body) = (
            s(vec, "secret"),
            s(vec, "msg_id"),
            s(vec, "payload").as_bytes(),
        );
        let ts = vec["timestamp"].as_i64().unwrap();
        let sig = sign_standard_webhooks(secret, id, ts, body).unwrap();
        assert_eq!(sig, s(vec, "expected_signature"));
        let h = std_headers(id, ts, &sig);
        let scheme = Scheme::StandardWebhooks;
        assert_eq!(check(&scheme, &[secret], &h, body, ts), ok(0, Some(id)));
        // The bare base64 key (no whsec_ prefix) is the same secret.
        let bare = secret.strip_prefix("whsec_").unwrap();
        assert_eq!(check(&scheme, &[bare], &h, body, ts), ok(0, Some(id)));
        assert_eq!(
            check(&scheme, &[secret], &h, b"{}", ts),
            Err(VerifyError::Mismatch)
        );
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            check(&scheme, &[other], &h, body, ts),
            Err(VerifyError::Mismatch)
        );
    }
}

#[test]
fn standard_webhooks_negative_vectors_reject() {
    let v = vectors();
    let sw = &v["standard_webhooks"];
    let neg = sw["negative_vectors"].as_array().unwrap();
    let scheme = Scheme::StandardWebhooks;
    let (secret, id, ts) = (
        s(&neg[0], "secret"),
        s(&neg[0], "msg_id"),
        neg[0]["timestamp"].as_i64().unwrap(),
    );
    let body = s(&neg[0], "payload").as_bytes();
    let h = std_headers(id, ts, s(&neg[0], "signature_header"));
    assert_eq!(
        check(&scheme, &[secret], &h, body, ts),
        Err(VerifyError::Mismatch)
    );

    for vec in sw["vectors"].as_array().unwrap() {
        let (secret, id, body) = (
            s(vec, "secret"),
            s(vec, "msg_id"),
            s(vec, "payload").as_bytes(),
        );
        let ts = vec["timestamp"].as_i64().unwrap();
        let several = s(&neg[1], "signature_header");
        let h = std_headers(id, ts, several);
        assert_eq!(
            check(&scheme, &[secret], &h, body, ts),
            Err(VerifyError::Mismatch)
        );
        // Several signatures where exactly one is valid: accepted.
        let with_valid = format!("{several} {}", s(vec, "expected_signature"));
        let h = std_headers(id, ts, &with_valid);
        assert_eq!(check(&scheme, &[secret], &h, body, ts), ok(0, Some(id)));
        // Partial signature "v1,".
        let h = std_headers(id, ts, s(&neg[2], "signature_header"));
        assert!(check(&scheme, &[secret], &h, body, ts).is_err());
        // Any one of the three headers missing.
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = std_headers(id, ts, s(vec, "expected_signature"));
            h.remove(missing);
            let r = check(&scheme, &[secret], &h, body, ts);
            assert_eq!(r, Err(VerifyError::MissingHeader(missing.to_owned())));
        }
    }
    // Secret "whsec_" (empty key) is a construction error, never a panic.
    let err = VerifyError::InvalidSecret {
        index: 0,
        reason: "secret key is empty",
    };
    assert_eq!(
        sign_standard_webhooks("whsec_", id, ts, body),
        Err(err.clone())
    );
    let h = std_headers(id, ts, s(&neg[0], "signature_header"));
    assert_eq!(check(&scheme, &["whsec_"], &h, body, ts), Err(err));
}

#[test]
fn standard_webhooks_spec_header_parses_v1_only() {
    let v = vectors();
    let ex = &v["standard_webhooks"]["spec_example_headers_parse_only"];
    let sig = s(ex, "webhook-signature");
    assert_eq!(
        standard_candidates(sig).count(),
        1,
        "v1a entry is not a v1 signature"
    );
    let ts: i64 = s(ex, "webhook-timestamp").parse().unwrap();
    let h = std_headers(s(ex, "webhook-id"), ts, sig);
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    assert_eq!(
        check(&Scheme::StandardWebhooks, &[secret], &h, b"{}", ts),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn rotation_accepts_any_secret_and_reports_which() {
    let (right, wrong) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    );
    let sig = sign_standard_webhooks(right, "msg_1", 1_700_000_000, b"{}").unwrap();
    let h = std_headers("msg_1", 1_700_000_000, &sig);
    let scheme = Scheme::StandardWebhooks;
    let at = |secrets: &[&str]| check(&scheme, secrets, &h, b"{}", 1_700_000_000);
    assert_eq!(at(&[wrong, right]), ok(1, Some("msg_1")));
    assert_eq!(at(&[right, wrong]), ok(0, Some("msg_1")));
    // An unusable secret does not block a good one, but is reported when nothing matches.
    assert_eq!(at(&["whsec_!!not-base64!!", right]), ok(1, Some("msg_1")));
    let invalid = at(&[wrong, "whsec_!!not-base64!!"]).unwrap_err();
    assert_eq!(
        invalid,
        VerifyError::InvalidSecret {
            index: 1,
            reason: "whsec_ secret is not valid base64"
        }
    );
    assert!(
        !invalid.to_string().contains("not-base64!!"),
        "secret leaked: {invalid}"
    );
    assert_eq!(at(&[]), Err(VerifyError::NoSecret));

    let sig = sign_github("new", b"x");
    let h = headers(&[("X-Hub-Signature-256", &sig)]);
    assert_eq!(
        check(&Scheme::Github, &["old", "new"], &h, b"x", 0),
        ok(1, None)
    );
    assert_eq!(
        check(&Scheme::Github, &["", "old"], &h, b"x", 0),
        Err(VerifyError::InvalidSecret {
            index: 0,
            reason: "secret is empty"
        })
    );
}

#[test]
fn timestamp_tolerance_past_and_future() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let ts = 1_700_000_000;
    let h = std_headers(
        "msg_1",
        ts,
        &sign_standard_webhooks(secret, "msg_1", ts, b"{}").unwrap(),
    );
    let stripe_h = headers(&[("Stripe-Signature", &sign_stripe("whsec_s", ts, b"{}"))]);
    for (scheme, h, secret) in [
        (Scheme::StandardWebhooks, &h, secret),
        (Scheme::Stripe, &stripe_h, "whsec_s"),
    ] {
        let at = |now| check(&scheme, &[secret], h, b"{}", now);
        assert_eq!(
            at(ts + 301),
            Err(VerifyError::Stale {
                age_seconds: 301,
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            at(ts - 301),
            Err(VerifyError::Future {
                ahead_seconds: 301,
                tolerance_seconds: 300
            })
        );
        for now in [ts - 300, ts, ts + 300] {
            assert!(at(now).is_ok(), "{} at {now}", scheme.name());
        }
    }
    let stale = VerifyError::Stale {
        age_seconds: 301,
        tolerance_seconds: 300,
    };
    assert_eq!(
        stale.to_string(),
        "timestamp is 301s old, outside the 300s tolerance"
    );
}

#[test]
fn github_published_vector() {
    let v = vectors();
    let vec = &v["github"]["vectors"][0];
    let (secret, body) = (s(vec, "secret"), s(vec, "payload").as_bytes());
    let sig = s(vec, "X-Hub-Signature-256");
    assert_eq!(sign_github(secret, body), sig);
    assert_eq!(sig, format!("sha256={}", s(vec, "signature_hex")));
    let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let h = headers(&[("X-Hub-Signature-256", sig), ("X-GitHub-Delivery", id)]);
    assert_eq!(
        check(&Scheme::Github, &[secret], &h, body, 0),
        ok(0, Some(id))
    );
    assert_eq!(
        check(&Scheme::Github, &[secret], &h, b"Hello, World?", 0),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(&Scheme::Github, &["other"], &h, body, 0),
        Err(VerifyError::Mismatch)
    );
    let no_id = headers(&[("x-hub-signature-256", sig)]);
    assert_eq!(
        check(&Scheme::Github, &[secret], &no_id, body, 0),
        ok(0, None)
    );
    let upper = headers(&[("X-Hub-Signature-256", &sig.replace("sha256=", "SHA256="))]);
    malformed_on(
        check(&Scheme::Github, &[secret], &upper, body, 0),
        "X-Hub-Signature-256",
    );
    let r = check(&Scheme::Github, &[secret], &HeaderMap::new(), body, 0);
    assert_eq!(
        r,
        Err(VerifyError::MissingHeader("X-Hub-Signature-256".into()))
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "missing header X-Hub-Signature-256"
    );
}

#[test]
fn shopify_third_party_vector() {
    let v = vectors();
    let vec = &v["shopify"]["vectors"][0];
    let (secret, body) = (s(vec, "secret"), s(vec, "payload").as_bytes());
    let sig = s(vec, "X-Shopify-Hmac-Sha256");
    assert_eq!(sign_shopify(secret, body), sig);
    let h = headers(&[
        ("X-Shopify-Hmac-Sha256", sig),
        ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37"),
    ]);
    assert_eq!(
        check(&Scheme::Shopify, &[secret], &h, body, 0),
        ok(0, Some("b54557e4-bdd9-4b37"))
    );
    assert_eq!(
        check(&Scheme::Shopify, &[secret], &h, b"{}", 0),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(&Scheme::Shopify, &["wrong"], &h, body, 0),
        Err(VerifyError::Mismatch)
    );
    let hex_sig = s(vec, "hex_equivalent");
    let h = headers(&[("X-Shopify-Hmac-Sha256", hex_sig)]);
    malformed_on(
        check(&Scheme::Shopify, &[secret], &h, body, 0),
        "X-Shopify-Hmac-Sha256",
    );
    // The same vector through the generic HMAC scheme, as hex.
    let spec = HmacSpec {
        header: "X-Sig".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SigEncoding::Hex,
        prefix: None,
    };
    assert_eq!(sign_hmac(&spec, secret.as_bytes(), body), hex_sig);
}

#[test]
fn stripe_docs_header_parses() {
    let v = vectors();
    let ex = &v["stripe"]["docs_example_header_parse_only"];
    let hdr = StripeHeader::parse(s(ex, "header")).unwrap();
    assert_eq!(hdr.t, ex["expect_parsed"]["t"].as_i64().unwrap());
    let want: Vec<&str> = ex["expect_parsed"]["v1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(hdr.v1().collect::<Vec<_>>(), want);
    let h = headers(&[("Stripe-Signature", s(ex, "header"))]);
    assert_eq!(
        check(&Scheme::Stripe, &["whsec_x"], &h, b"{}", hdr.t),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn stripe_round_trip_with_v0_and_event_id() {
    let (secret, ts) = ("whsec_test_secret", 1_492_774_577);
    let body = br#"{"id":"evt_1NG8Du2eZvKYlo2C","object":"event","data":{"object":{"id":"pi_1"}}}"#;
    let sig = sign_stripe(secret, ts, body);
    assert!(sig.starts_with("t=1492774577,v1="));
    let h = headers(&[("Stripe-Signature", &sig)]);
    assert_eq!(
        check(&Scheme::Stripe, &[secret], &h, body, ts),
        ok(0, Some("evt_1NG8Du2eZvKYlo2C"))
    );
    let v1 = sig.split_once(",v1=").unwrap().1;
    let zeros = "0".repeat(64);
    let full = format!(
        "t={ts},v1={zeros},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    );
    let h = headers(&[("Stripe-Signature", &full)]);
    assert_eq!(
        check(&Scheme::Stripe, &["whsec_old", secret], &h, body, ts),
        ok(1, Some("evt_1NG8Du2eZvKYlo2C"))
    );
    assert_eq!(
        check(&Scheme::Stripe, &[secret], &h, b"{}", ts),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(&Scheme::Stripe, &["whsec_other"], &h, body, ts),
        Err(VerifyError::Mismatch)
    );
    // The key is the whole secret string, not its base64 decoding.
    assert_eq!(
        check(&Scheme::Stripe, &["test_secret"], &h, body, ts),
        Err(VerifyError::Mismatch)
    );
    for body in [
        &b"not json"[..],
        br#"{"id":42}"#,
        br#"{"object":"event"}"#,
        br#"{"id":""}"#,
    ] {
        let h = headers(&[("Stripe-Signature", &sign_stripe(secret, ts, body))]);
        assert_eq!(check(&Scheme::Stripe, &[secret], &h, body, ts), ok(0, None));
    }
    let only_v0 = format!("t={ts},v0={zeros}");
    for bad in [
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=00",
        &only_v0,
        "t=1,t=1,v1=00",
        "t=-5,v1=00",
        "t=1,,v1=00",
    ] {
        let h = headers(&[("Stripe-Signature", bad)]);
        malformed_on(
            check(&Scheme::Stripe, &[secret], &h, body, ts),
            "Stripe-Signature",
        );
    }
}

mod schemes;
