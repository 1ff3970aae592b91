//! Daily quotas on injected times: the reset time, the usage readings, the
//! classification of Salesforce's spent-quota 403, and the low-priority pause.

use crate::deliver::retry::{self, ErrorClass, History, Outcome, RetryPolicy, Verdict};
use crate::limits::dialect::{self, Usage};
use crate::limits::dialect::{Dialect, daily_usage, next_utc_midnight, salesforce_quota_exceeded};
use axum::http::HeaderMap;
use axum::http::{HeaderName, HeaderValue};

/// 2026-01-01T00:00:00Z.
const MIDNIGHT: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;
const BODY: &str =
    r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

fn usage(used: u64, limit: u64) -> Usage {
    Usage {
        used,
        limit,
        resets_at_ms: MIDNIGHT + DAY,
    }
}

#[test]
fn the_quota_resets_at_the_next_utc_midnight() {
    assert_eq!(
        next_utc_midnight(MIDNIGHT),
        MIDNIGHT + DAY,
        "strictly after"
    );
    assert_eq!(next_utc_midnight(MIDNIGHT - 1), MIDNIGHT);
    assert_eq!(next_utc_midnight(MIDNIGHT + 13 * 3_600_000), MIDNIGHT + DAY);
    assert_eq!(next_utc_midnight(MIDNIGHT + DAY - 1), MIDNIGHT + DAY);
    assert_eq!(next_utc_midnight(-1), 0, "before the epoch too");
}

#[test]
fn answers_report_daily_usage() {
    let now = MIDNIGHT + 5_000;
    let sf = h(&[("sforce-limit-info", "api-usage=90/100; api-bursts=1/750")]);
    assert_eq!(
        daily_usage(Some(Dialect::Salesforce), &sf, now),
        Some(usage(90, 100))
    );
    assert_eq!(daily_usage(None, &sf, now), None, "only with the dialect");
    assert_eq!(daily_usage(Some(Dialect::Ietf), &sf, now), None);
    let hs = h(&[
        ("x-hubspot-ratelimit-daily", "250000"),
        ("x-hubspot-ratelimit-daily-remaining", "25000"),
    ]);
    let u = daily_usage(Some(Dialect::Hubspot), &hs, now).unwrap();
    assert_eq!((u.used, u.limit), (225_000, 250_000));
    assert!((u.share() - 0.9).abs() < 1e-9);
    assert_eq!(
        u.resets_at_ms,
        now + 3_600_000,
        "HubSpot's reset is not known: an hour"
    );
    let bad = h(&[("sforce-limit-info", "api-usage=lots/100")]);
    assert_eq!(daily_usage(Some(Dialect::Salesforce), &bad, now), None);
}

#[test]
fn a_spent_salesforce_quota_is_rate_limited_until_midnight_not_auth() {
    assert!(salesforce_quota_exceeded(BODY));
    assert!(!salesforce_quota_exceeded(
        r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
    ));
    assert!(!salesforce_quota_exceeded(
        "REQUEST_LIMIT_EXCEEDED but not JSON"
    ));
    let now = MIDNIGHT + 20 * 3_600_000;
    let headers = h(&[("sforce-limit-info", "api-usage=100/100")]);
    let outcome = Outcome::Response {
        status: 403,
        headers: &headers,
        body_excerpt: BODY,
    };
    let policy = RetryPolicy::default();
    // Even as the last attempt of the budget, after earlier 403s: not dead.
    let history = History {
        attempts: policy.max_attempts - 1,
        consecutive_auth: 1,
        consecutive_rate_limited: 3,
        budget_start_ms: now - 60_000,
        received_ms: now - 60_000,
    };
    let v = retry::decide(
        &outcome,
        &retry::Destination {
            system: "salesforce",
            policy: &policy,
            credential: Some("sf_token"),
        },
        &history,
        now,
        &mut rand::rng(),
    );
    let Verdict::Retry {
        at_ms,
        counts_against_budget,
        why,
    } = v
    else {
        panic!("{v:?}");
    };
    assert_eq!(at_ms, MIDNIGHT + DAY, "retried when the quota resets");
    assert!(!counts_against_budget);
    assert_eq!(why.class, ErrorClass::RateLimited);
    assert!(
        why.explanation.contains("daily API request quota"),
        "{why:?}"
    );
    // A reset past the message's max age: dead, saying why.
    let history = History {
        budget_start_ms: now - policy.max_age_ms + 60_000,
        received_ms: now - policy.max_age_ms + 60_000,
        ..History::default()
    };
    let v = retry::decide(
        &outcome,
        &retry::Destination {
            system: "sf",
            policy: &policy,
            credential: None,
        },
        &history,
        now,
        &mut rand::rng(),
    );
    let Verdict::Dead { why } = v else {
        panic!("{v:?}")
    };
    assert!(
        why.explanation.contains("daily quota resets in 4h"),
        "{why:?}"
    );
    // Any other 403 is still a credential problem.
    let other = Outcome::Response {
        status: 403,
        headers: &headers,
        body_excerpt: "[]",
    };
    let fresh = History {
        budget_start_ms: now,
        received_ms: now,
        ..History::default()
    };
    let to = retry::Destination {
        system: "sf",
        policy: &policy,
        credential: None,
    };
    let v = retry::decide(&other, &to, &fresh, now, &mut rand::rng());
    assert!(matches!(v, Verdict::Retry { why, .. } if why.class == ErrorClass::Auth));
}

#[test]
fn the_403_holds_the_system_until_midnight_whatever_its_dialect() {
    let now = MIDNIGHT + 3_600_000;
    let none = HeaderMap::new();
    assert_eq!(
        dialect::hold_until(None, &none, BODY, now),
        Some(MIDNIGHT + DAY)
    );
    assert_eq!(
        dialect::hold_until(Some(Dialect::Salesforce), &none, "[]", now),
        None
    );
}
