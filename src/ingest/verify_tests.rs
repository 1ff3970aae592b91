//! Unit tests for `verify.rs`, driven by the published vectors in
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
    verify(scheme, &secrets, &req, now, TOL)
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

#[test]
fn generic_hmac_every_algorithm_encoding_and_prefix() {
    let (key, body) = (b"Jefe", b"what do ya want for nothing?");
    // RFC 2202 / RFC 4231 test case 2.
    let known = [
        (
            HmacAlgorithm::Sha1,
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ),
        (
            HmacAlgorithm::Sha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            HmacAlgorithm::Sha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (algorithm, hex_mac) in known {
        for encoding in [SigEncoding::Hex, SigEncoding::Base64] {
            for prefix in [None, Some("sha=".to_owned())] {
                let spec = HmacSpec {
                    header: "X-Signature".into(),
                    algorithm,
                    encoding,
                    prefix: prefix.clone(),
                };
                let sig = sign_hmac(&spec, key, body);
                let expected = match encoding {
                    SigEncoding::Hex => hex_mac.to_owned(),
                    SigEncoding::Base64 => STANDARD.encode(hex::decode(hex_mac).unwrap()),
                };
                assert_eq!(
                    sig,
                    format!("{}{expected}", prefix.as_deref().unwrap_or(""))
                );
                let scheme = Scheme::Hmac(spec);
                let h = headers(&[("x-signature", &sig)]);
                assert_eq!(check(&scheme, &["Jefe"], &h, body, 0), ok(0, None));
                assert_eq!(
                    check(&scheme, &["Jefe"], &h, b"tampered", 0),
                    Err(VerifyError::Mismatch)
                );
                assert_eq!(
                    check(&scheme, &["Jeff"], &h, body, 0),
                    Err(VerifyError::Mismatch)
                );
                let h = headers(&[("X-Signature", &format!("x{sig}"))]);
                malformed_on(check(&scheme, &["Jefe"], &h, body, 0), "X-Signature");
                let h = headers(&[("X-Signature", &sig[..sig.len() - 4])]);
                malformed_on(check(&scheme, &["Jefe"], &h, body, 0), "X-Signature");
                let r = check(&scheme, &["Jefe"], &HeaderMap::new(), body, 0);
                assert_eq!(r, Err(VerifyError::MissingHeader("X-Signature".into())));
            }
        }
    }
}

#[test]
fn names_and_from_str() {
    let spec = HmacSpec {
        header: "h".into(),
        algorithm: HmacAlgorithm::Sha1,
        encoding: SigEncoding::Hex,
        prefix: None,
    };
    let schemes = [
        (Scheme::StandardWebhooks, "standard-webhooks"),
        (Scheme::Stripe, "stripe"),
        (Scheme::Shopify, "shopify"),
        (Scheme::Github, "github"),
        (Scheme::HubspotV3, "hubspot-v3"),
        (Scheme::Hmac(spec), "hmac"),
        (Scheme::Basic, "basic"),
        (
            Scheme::ApiKey {
                header: "X-Api-Key".into(),
            },
            "api-key",
        ),
    ];
    for (scheme, name) in schemes {
        assert_eq!(scheme.name(), name);
    }
    assert_eq!("sha1".parse(), Ok(HmacAlgorithm::Sha1));
    assert_eq!("SHA256".parse(), Ok(HmacAlgorithm::Sha256));
    assert_eq!("sha512".parse(), Ok(HmacAlgorithm::Sha512));
    assert!("md5".parse::<HmacAlgorithm>().unwrap_err().contains("md5"));
    assert_eq!("hex".parse(), Ok(SigEncoding::Hex));
    assert_eq!("base64".parse(), Ok(SigEncoding::Base64));
    assert!("base32".parse::<SigEncoding>().is_err());
}

#[test]
fn basic_auth() {
    let auth = |v: &str| headers(&[("Authorization", v)]);
    let good = format!("Basic {}", STANDARD.encode("ferry:s3cret"));
    assert_eq!(
        check(&Scheme::Basic, &["ferry:s3cret"], &auth(&good), b"", 0),
        ok(0, None)
    );
    let lower = format!("basic {}", STANDARD.encode("ferry:s3cret"));
    assert_eq!(
        check(
            &Scheme::Basic,
            &["old:pw", "ferry:s3cret"],
            &auth(&lower),
            b"",
            0
        ),
        ok(1, None)
    );
    for wrong in ["ferry:s3cre", "ferry:s3cret!", "Ferry:s3cret"] {
        assert_eq!(
            check(&Scheme::Basic, &[wrong], &auth(&good), b"", 0),
            Err(VerifyError::Mismatch)
        );
    }
    let long = format!("Basic {}", "QUFB".repeat(400));
    for bad in ["Bearer abc", "Basic", "Basic !!!", "Basic=", "", &long] {
        malformed_on(
            check(&Scheme::Basic, &["ferry:s3cret"], &auth(bad), b"", 0),
            "Authorization",
        );
    }
    let r = check(&Scheme::Basic, &["ferry:s3cret"], &HeaderMap::new(), b"", 0);
    assert_eq!(r, Err(VerifyError::MissingHeader("Authorization".into())));
}

#[test]
fn api_key() {
    let scheme = Scheme::ApiKey {
        header: "X-Api-Key".into(),
    };
    let h = headers(&[("x-api-key", "k-123")]);
    assert_eq!(check(&scheme, &["k-123"], &h, b"", 0), ok(0, None));
    assert_eq!(check(&scheme, &["k-000", "k-123"], &h, b"", 0), ok(1, None));
    assert_eq!(
        check(&scheme, &["k-1234"], &h, b"", 0),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(&scheme, &["k-12"], &h, b"", 0),
        Err(VerifyError::Mismatch)
    );
    let r = check(&scheme, &["k-123"], &HeaderMap::new(), b"", 0);
    assert_eq!(r, Err(VerifyError::MissingHeader("X-Api-Key".into())));
    let mut h = HeaderMap::new();
    h.insert("x-api-key", HeaderValue::from_bytes(b"k-\xff").unwrap());
    malformed_on(check(&scheme, &["k-123"], &h, b"", 0), "X-Api-Key");
}

#[test]
fn hubspot_v3_round_trip_window_and_uri_decoding() {
    let (secret, now) = ("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", 1_700_000_000);
    let body = br#"[{"eventId":1,"subscriptionType":"contact.creation"}]"#;
    let hs = |sig: &str, ts_ms: i64| {
        headers(&[
            ("X-HubSpot-Signature-v3", sig),
            ("X-HubSpot-Request-Timestamp", &ts_ms.to_string()),
        ])
    };
    let run = |uri: &str, h: &HeaderMap, now: i64| {
        let req = Inbound {
            method: "POST",
            uri,
            headers: h,
            body,
        };
        verify(&Scheme::HubspotV3, &[secret.as_bytes()], &req, now, TOL)
    };
    let ts_ms = now * 1000 - 1234;
    let h = hs(&sign_hubspot_v3(secret, "POST", URI, body, ts_ms), ts_ms);
    assert_eq!(run(URI, &h, now), ok(0, None));
    assert_eq!(
        run("https://ferry.example.com/hooks/other", &h, now),
        Err(VerifyError::Mismatch)
    );
    let req = Inbound {
        method: "PUT",
        uri: URI,
        headers: &h,
        body,
    };
    assert_eq!(
        verify(&Scheme::HubspotV3, &[secret.as_bytes()], &req, now, TOL),
        Err(VerifyError::Mismatch)
    );

    // Millisecond window: 300.5 s old is stale (reported rounded up), 299.999 s is fine.
    for (ts_ms, want) in [
        (
            now * 1000 - 300_500,
            Err(VerifyError::Stale {
                age_seconds: 301,
                tolerance_seconds: 300,
            }),
        ),
        (
            now * 1000 + 301_000,
            Err(VerifyError::Future {
                ahead_seconds: 301,
                tolerance_seconds: 300,
            }),
        ),
        (now * 1000 - 299_999, ok(0, None)),
        (now * 1000 + 300_000, ok(0, None)),
    ] {
        let h = hs(&sign_hubspot_v3(secret, "POST", URI, body, ts_ms), ts_ms);
        assert_eq!(run(URI, &h, now), want);
    }

    // HubSpot signs the URI with the listed escapes decoded (either hex case), and only those.
    let decoded = "https://ferry.example.com/hooks?x=a:b/c?d@e!f$g'h(i)j*k,l;m%20n";
    let encoded =
        "https%3A//ferry.example.com/hooks?x=a%3Ab%2fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2cl%3Bm%20n";
    let h = hs(
        &sign_hubspot_v3(secret, "POST", decoded, body, ts_ms),
        ts_ms,
    );
    assert_eq!(run(encoded, &h, now), ok(0, None));
    assert_eq!(run(decoded, &h, now), ok(0, None));
    assert_eq!(
        run(&decoded.replace("%20", " "), &h, now),
        Err(VerifyError::Mismatch)
    );
    // sign_hubspot_v3 applies the same decoding, and a trailing lone '%' is kept.
    assert_eq!(
        sign_hubspot_v3(secret, "GET", encoded, b"", 1),
        sign_hubspot_v3(secret, "GET", decoded, b"", 1)
    );
    assert_ne!(
        sign_hubspot_v3(secret, "GET", "a%", b"", 1),
        sign_hubspot_v3(secret, "GET", "a", b"", 1)
    );

    let r = run(URI, &hs("AAAA", ts_ms), now);
    malformed_on(r, "X-HubSpot-Signature-v3");
    let sig = sign_hubspot_v3(secret, "POST", URI, body, ts_ms);
    let r = run(URI, &headers(&[("X-HubSpot-Signature-v3", &sig)]), now);
    assert_eq!(
        r,
        Err(VerifyError::MissingHeader(
            "X-HubSpot-Request-Timestamp".into()
        ))
    );
    let r = run(
        URI,
        &headers(&[
            ("X-HubSpot-Signature-v3", &sig),
            ("X-HubSpot-Request-Timestamp", "1.5e12"),
        ]),
        now,
    );
    malformed_on(r, "X-HubSpot-Request-Timestamp");
}

#[test]
fn event_ids_per_scheme() {
    let body = br#"{"id":"evt_9"}"#;
    let id_of = |scheme: &Scheme, secret: &str, h: &HeaderMap| {
        check(scheme, &[secret], h, body, 10).unwrap().event_id
    };
    let sw = std_headers(
        "msg_9",
        10,
        &sign_standard_webhooks("whsec_AAAA", "msg_9", 10, body).unwrap(),
    );
    assert_eq!(
        id_of(&Scheme::StandardWebhooks, "whsec_AAAA", &sw).as_deref(),
        Some("msg_9")
    );
    let st = headers(&[("Stripe-Signature", &sign_stripe("k", 10, body))]);
    assert_eq!(id_of(&Scheme::Stripe, "k", &st).as_deref(), Some("evt_9"));
    let sh = headers(&[
        ("X-Shopify-Hmac-Sha256", &sign_shopify("k", body)),
        ("X-Shopify-Webhook-Id", "wh-9"),
    ]);
    assert_eq!(id_of(&Scheme::Shopify, "k", &sh).as_deref(), Some("wh-9"));
    let gh = headers(&[
        ("X-Hub-Signature-256", &sign_github("k", body)),
        ("X-GitHub-Delivery", "gd-9"),
    ]);
    assert_eq!(id_of(&Scheme::Github, "k", &gh).as_deref(), Some("gd-9"));
    let hs = headers(&[
        (
            "X-HubSpot-Signature-v3",
            &sign_hubspot_v3("k", "POST", URI, body, 10_000),
        ),
        ("X-HubSpot-Request-Timestamp", "10000"),
    ]);
    assert_eq!(id_of(&Scheme::HubspotV3, "k", &hs), None);
    let mut bad_id = gh.clone();
    bad_id.insert(
        "x-github-delivery",
        HeaderValue::from_bytes(b"\xfe\xff").unwrap(),
    );
    malformed_on(
        check(&Scheme::Github, &["k"], &bad_id, body, 10),
        "X-GitHub-Delivery",
    );
}

#[test]
fn garbage_headers_are_malformed_never_panic() {
    let spec = HmacSpec {
        header: "X-Sig".into(),
        algorithm: HmacAlgorithm::Sha512,
        encoding: SigEncoding::Base64,
        prefix: Some("v=".into()),
    };
    let cases: [(Scheme, &str); 5] = [
        (Scheme::StandardWebhooks, "webhook-signature"),
        (Scheme::Stripe, "Stripe-Signature"),
        (Scheme::Shopify, "X-Shopify-Hmac-Sha256"),
        (Scheme::Github, "X-Hub-Signature-256"),
        (Scheme::Hmac(spec), "X-Sig"),
    ];
    let long = "v1,".repeat(2000);
    let garbage = [
        "",
        " ",
        ",",
        "=",
        "v1,",
        "v1,!!!!",
        "t=",
        "t=1,v1=",
        "sha256=",
        "sha256=zz",
        "v=",
        "%%%",
        "\t",
        &long,
    ];
    for (scheme, header) in &cases {
        for g in garbage {
            let mut h = std_headers("msg", 10, "v1,AAAA");
            h.insert(
                "x-hubspot-request-timestamp",
                HeaderValue::from_static("10000"),
            );
            h.insert(
                HeaderName::from_bytes(header.as_bytes()).unwrap(),
                HeaderValue::from_str(g).unwrap(),
            );
            malformed_on(check(scheme, &["whsec_AAAA"], &h, b"{}", 10), header);
        }
        let mut h = std_headers("msg", 10, "v1,AAAA");
        h.insert(
            HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_bytes(b"v1,\xff").unwrap(),
        );
        malformed_on(check(scheme, &["whsec_AAAA"], &h, b"{}", 10), header);
    }
    for ts in ["", "abc", "-1", "+1", "1.5", "99999999999999999999999"] {
        let mut h = std_headers("msg", 10, "v1,AAAA");
        h.insert("webhook-timestamp", HeaderValue::from_str(ts).unwrap());
        malformed_on(
            check(&Scheme::StandardWebhooks, &["whsec_AAAA"], &h, b"{}", 10),
            "webhook-timestamp",
        );
    }
    // Extreme clocks and tolerances saturate instead of overflowing.
    let h = std_headers(
        "m",
        999_999_999_999_999_999,
        &sign_standard_webhooks("whsec_AAAA", "m", 999_999_999_999_999_999, b"").unwrap(),
    );
    let req = Inbound {
        method: "POST",
        uri: URI,
        headers: &h,
        body: b"",
    };
    let at = |now, tol| verify(&Scheme::StandardWebhooks, &[b"whsec_AAAA"], &req, now, tol);
    assert!(matches!(at(i64::MIN, 300), Err(VerifyError::Future { .. })));
    assert!(matches!(
        at(0, -5),
        Err(VerifyError::Future {
            tolerance_seconds: 0,
            ..
        })
    ));
    assert!(at(i64::MAX, i64::MAX).is_ok());
}
