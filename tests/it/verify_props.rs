//! Property test: every signature scheme's header parser, fed arbitrary
//! header bytes, bodies, clocks and tolerances, never panics (debug builds
//! check overflow): a malformed header is a `VerifyError`, never a crash.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferry::ingest::verify::{HmacAlgorithm, HmacSpec, Inbound, Scheme, SigEncoding, verify};
use proptest::prelude::*;

const NAMES: [&str; 14] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "stripe-signature",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-hub-signature-256",
    "x-github-delivery",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-signature",
    "authorization",
    "x-api-key",
    "content-type",
];

fn schemes() -> Vec<Scheme> {
    let mut all = vec![
        Scheme::StandardWebhooks,
        Scheme::Stripe,
        Scheme::Shopify,
        Scheme::Github,
        Scheme::HubspotV3,
        Scheme::Basic,
        Scheme::ApiKey {
            header: "x-api-key".into(),
        },
    ];
    for algorithm in [
        HmacAlgorithm::Sha1,
        HmacAlgorithm::Sha256,
        HmacAlgorithm::Sha512,
    ] {
        for encoding in [SigEncoding::Hex, SigEncoding::Base64] {
            for prefix in [None, Some("sha256=".to_owned())] {
                all.push(Scheme::Hmac(HmacSpec {
                    header: "x-signature".into(),
                    algorithm,
                    encoding,
                    prefix,
                }));
            }
        }
    }
    all
}

/// Values shaped like each scheme's header (timestamps at the edges of
/// `i64`, `t=..,v1=..` lists, `v1,<base64>`), and raw bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let num = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("999999999999999999".to_owned()),
        Just("99999999999999999999999999".to_owned()),
    ];
    prop_oneof![
        num.clone().prop_map(String::into_bytes),
        (num.clone(), "[0-9a-f]{0,70}")
            .prop_map(|(t, s)| format!("t={t},v1={s},v0=x").into_bytes()),
        "(v1,[A-Za-z0-9+/=]{0,50} ?){0,3}".prop_map(String::into_bytes),
        "(sha256=)?[0-9a-fA-F]{0,130}".prop_map(String::into_bytes),
        "(Basic |Bearer )?[A-Za-z0-9+/=:]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn no_scheme_panics_on_any_header(
        pairs in proptest::collection::vec((0..NAMES.len(), value()), 0..10),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        uri in "[ -~]{0,60}",
        now in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(1_767_225_600i64)],
        tolerance in prop_oneof![any::<i64>(), Just(300i64)],
        secret in prop_oneof![
            Just(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..40),
        ],
    ) {
        let mut headers = HeaderMap::new();
        for (i, v) in &pairs {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                headers.append(HeaderName::from_static(NAMES[*i]), v);
            }
        }
        let req = Inbound { method: "POST", uri: &uri, headers: &headers, body: &body };
        for scheme in schemes() {
            let _ = verify(&scheme, &[secret.as_slice()], &req, now, tolerance);
        }
    }
}
