//! Property tests: every dialect's header parser, and `Retry-After`, fed
//! arbitrary header values (bytes, numbers at the edges of `i64`) and any
//! clock reading, never panic (debug builds check overflow).

use super::*;
use axum::http::{HeaderName, HeaderValue};
use proptest::prelude::*;

const NAMES: [&str; 14] = [
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-shopify-shop-api-call-limit",
    "sforce-limit-info",
    "x-hubspot-ratelimit-remaining",
    "x-hubspot-ratelimit-max",
    "x-hubspot-ratelimit-interval-milliseconds",
    "x-hubspot-ratelimit-daily",
    "x-hubspot-ratelimit-daily-remaining",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-used",
];

const DIALECTS: [Option<Dialect>; 6] = [
    None,
    Some(Dialect::Ietf),
    Some(Dialect::Shopify),
    Some(Dialect::Salesforce),
    Some(Dialect::Hubspot),
    Some(Dialect::Github),
];

/// Header values built to hit the parsers' arithmetic: huge and negative
/// numbers, the shapes each dialect expects, and plain garbage.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let num = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just(i64::MAX.to_string()),
        Just("99999999999999999999999".to_owned()),
        any::<f64>().prop_map(|f| f.to_string()),
    ];
    prop_oneof![
        num.clone().prop_map(String::into_bytes),
        (num.clone(), num.clone()).prop_map(|(a, b)| format!("{a}/{b}").into_bytes()),
        (num.clone(), num.clone(), num.clone())
            .prop_map(|(r, t, q)| { format!("\"default\";r={r};t={t};q={q}").into_bytes() }),
        (num.clone(), num).prop_map(|(a, b)| format!("api-usage={a}/{b}").into_bytes()),
        "[A-Za-z0-9 ,;=/\".:-]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn headers(pairs: &[(usize, Vec<u8>)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (i, v) in pairs {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            m.append(HeaderName::from_static(NAMES[i % NAMES.len()]), v);
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn no_dialect_panics_on_any_header(
        pairs in proptest::collection::vec((0..NAMES.len(), value()), 0..8),
        body in prop_oneof![Just(String::new()), ".{0,60}"],
        now in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(1_767_225_600_000i64)],
    ) {
        let h = headers(&pairs);
        for d in DIALECTS {
            let _ = hold_until(d, &h, &body, now);
            let _ = daily_usage(d, &h, now);
            let _ = hold_source(d, &h, &body);
        }
    }

    #[test]
    fn retry_after_never_panics(
        v in prop_oneof![
            value().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            "[0-9]{0,30}(\\.[0-9]{0,30})?",
            Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
            Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        ],
        now in any::<i64>(),
    ) {
        if let Some(ms) = parse_retry_after(&v, now) {
            prop_assert!(ms >= 0);
        }
    }

    #[test]
    fn a_huge_graphql_cost_saturates(available in any::<f64>(), restore in any::<f64>(), cost in any::<f64>()) {
        let body = format!(
            r#"{{"extensions":{{"cost":{{"requestedQueryCost":{cost:e},"throttleStatus":{{"currentlyAvailable":{available:e},"restoreRate":{restore:e}}}}}}}}}"#
        );
        let _ = hold_until(Some(Dialect::Shopify), &HeaderMap::new(), &body, i64::MAX);
    }
}
