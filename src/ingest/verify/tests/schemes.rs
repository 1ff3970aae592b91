//! Unit tests for the generic, basic, api-key and HubSpot schemes, event ids
//! and garbage input; the helpers live in the parent test module.

use super::*;

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
