//! The verdicts by kind of outcome: permanent statuses, server errors and
//! timeouts, the attempt and age budgets, auth, mapping and config errors,
//! and the token endpoint's failures. The helpers are the parent's.

use super::*;

#[test]
fn permanent_statuses_are_dead() {
    let none = HeaderMap::new();
    for (status, class) in [
        (400, ErrorClass::Rejected),
        (404, ErrorClass::NotFound),
        (405, ErrorClass::Rejected),
        (409, ErrorClass::Rejected),
        (410, ErrorClass::NotFound),
        (413, ErrorClass::Rejected),
        (422, ErrorClass::Rejected),
    ] {
        let why = expect_dead(run(&resp(status, &none, ""), &history(0)));
        assert_eq!(why.class, class, "{status}");
        assert!(why.explanation.starts_with("erp "), "{}", why.explanation);
        assert!(why.explanation.contains(&status.to_string()));
    }
    let v = run(
        &resp(422, &none, "{\"error\":\"unknown sku\"}"),
        &history(3),
    );
    let why = expect_dead(v);
    assert_eq!(
        why.explanation,
        "erp rejected the message (422): {\"error\":\"unknown sku\"}"
    );
    assert_eq!(
        why.hint,
        "fix the data or the mapping, then edit and replay."
    );
}

#[test]
fn body_excerpt_is_short_and_on_one_line() {
    let none = HeaderMap::new();
    let body = format!("line one\n\n  line two {}", "x".repeat(1_000));
    let why = expect_dead(run(&resp(400, &none, &body), &history(0)));
    let quoted = why.explanation.split_once(": ").unwrap().1;
    assert!(quoted.starts_with("line one line two xxx"));
    assert!(quoted.ends_with('…'));
    assert_eq!(quoted.chars().count(), 201);
}

#[test]
fn request_timeout_and_server_errors_retry() {
    let none = HeaderMap::new();
    let (_, counts, why) = expect_retry(run(&resp(408, &none, ""), &history(0)));
    assert!(counts);
    assert_eq!(why.class, ErrorClass::Timeout);
    for status in [500, 502, 503, 504, 599] {
        let v = run(&resp(status, &none, ""), &history(2));
        let (at, counts, why) = expect_retry(v);
        assert!(counts && at > NOW && at <= NOW + 4_000, "{status}");
        assert_eq!(why.class, ErrorClass::ServerError);
    }
    let v = run(&resp(503, &none, ""), &history(0));
    let why = expect_retry(v).2;
    assert_eq!(
        why.explanation,
        "erp answered 503 Service Unavailable: the server is temporarily unable to \
         handle the request."
    );
    assert_eq!(
        why.hint,
        "ferry retries automatically; if it persists, check erp's health."
    );
}

#[test]
fn last_attempt_gives_up() {
    let none = HeaderMap::new();
    let hist = History {
        budget_start_ms: NOW - 3 * HOUR - 12 * MIN,
        received_ms: NOW - 3 * HOUR - 12 * MIN,
        ..history(7)
    };
    let why = expect_dead(run(&resp(503, &none, ""), &hist));
    assert_eq!(why.class, ErrorClass::ServerError);
    assert!(
        why.explanation
            .starts_with("gave up after 8 attempts over 3h 12m: erp answered 503"),
        "{}",
        why.explanation
    );
    assert!(why.hint.contains("replay"));
    // One attempt earlier still retries.
    let (_, counts, _) = expect_retry(run(&resp(503, &none, ""), &history(6)));
    assert!(counts);
}

#[test]
fn max_age_exceeded_is_dead() {
    let old = History {
        budget_start_ms: NOW - 25 * HOUR,
        received_ms: NOW - 25 * HOUR,
        ..history(1)
    };
    let why = expect_dead(run(&Outcome::Timeout, &old));
    assert_eq!(why.class, ErrorClass::Timeout);
    assert!(
        why.explanation.contains("older than its 24h max age"),
        "{}",
        why.explanation
    );
    // Not yet old, but the next attempt would fall past the max age.
    let nearly = History {
        budget_start_ms: NOW - 24 * HOUR + 500,
        received_ms: NOW - 24 * HOUR + 500,
        ..history(1)
    };
    let v = run_with(
        &Outcome::Network("connection refused"),
        &nearly,
        &mut Fixed(u64::MAX),
    );
    assert!(expect_dead(v).explanation.contains("24h max age"));
}

/// The max age runs from an operator's retry, and the explanation tells
/// reception and that retry apart (it used to call the retry's time "first
/// received").
#[test]
fn max_age_after_an_operators_retry_names_both_times() {
    let retried = History {
        budget_start_ms: NOW - 25 * HOUR,
        received_ms: NOW - 50 * HOUR,
        ..history(1)
    };
    let why = expect_dead(run(&Outcome::Timeout, &retried));
    assert!(
        why.explanation.contains(
            "older than its 24h max age (first received 2d 2h ago, retried by an operator 25h ago)"
        ),
        "{}",
        why.explanation
    );
    let fresh = History {
        budget_start_ms: NOW - HOUR,
        received_ms: NOW - 50 * HOUR,
        ..history(1)
    };
    expect_retry(run(&Outcome::Timeout, &fresh));
}

#[test]
fn retry_after_beyond_max_age_is_dead() {
    let hist = History {
        budget_start_ms: NOW - 23 * HOUR - HOUR / 2,
        received_ms: NOW - 23 * HOUR - HOUR / 2,
        ..history(0)
    };
    let h = headers(&[("retry-after", "7200")]);
    let why = expect_dead(run(&resp(429, &h, ""), &hist));
    assert_eq!(why.class, ErrorClass::RateLimited);
    assert!(
        why.explanation
            .starts_with("erp asked to wait 2h (Retry-After)")
    );
    assert!(why.explanation.contains("24h max age"));
    let h = headers(&[("retry-after", "1800")]);
    let (at, _, _) = expect_retry(run(&resp(429, &h, ""), &hist));
    assert_eq!(at, NOW + 1_800_000);
}

#[test]
fn retry_after_is_capped_by_max_hold() {
    for huge in [
        "100000000",
        "99999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let h = headers(&[("retry-after", huge)]);
        let (at, counts, _) = expect_retry(run(&resp(429, &h, ""), &history(0)));
        assert_eq!(at, NOW + HOUR, "Retry-After: {huge} is heard as max_hold");
        assert!(!counts);
    }
    let policy = RetryPolicy {
        max_hold_ms: 60_000,
        ..RetryPolicy::default()
    };
    let h = headers(&[("retry-after", "120")]);
    let v = decide(
        &resp(503, &h, ""),
        &Destination {
            system: "erp",
            policy: &policy,
            credential: None,
        },
        &history(0),
        NOW,
        &mut Fixed(0),
    );
    assert!(
        matches!(v, Verdict::Retry { at_ms, .. } if at_ms == NOW + 60_000),
        "{v:?}"
    );
}

#[test]
fn auth_is_retried_once_then_dead() {
    let none = HeaderMap::new();
    for status in [401, 403] {
        let (_, counts, why) = expect_retry(run(&resp(status, &none, ""), &history(0)));
        assert!(counts);
        assert_eq!(why.class, ErrorClass::Auth);
        assert!(why.explanation.contains("\"erp-token\""));
        let second = History {
            consecutive_auth: 1,
            ..history(1)
        };
        let why = expect_dead(run(&resp(status, &none, ""), &second));
        assert_eq!(why.class, ErrorClass::Auth);
        assert!(
            why.explanation.starts_with("credential rejected"),
            "{}",
            why.explanation
        );
        assert!(why.explanation.contains("erp-token") && why.hint.contains("erp-token"));
    }
    let second = History {
        consecutive_auth: 1,
        ..history(1)
    };
    let policy = RetryPolicy::default();
    let mut rng = StdRng::seed_from_u64(1);
    let v = decide(
        &resp(401, &none, ""),
        &Destination {
            system: "shop",
            policy: &policy,
            credential: None,
        },
        &second,
        NOW,
        &mut rng,
    );
    assert!(expect_dead(v).explanation.contains("the credential."));
}

#[test]
fn network_and_timeout_retry() {
    let v = run(&Outcome::Network("dns error: no such host"), &history(0));
    let (at, counts, why) = expect_retry(v);
    assert!(counts && at > NOW && at <= NOW + 1_000);
    assert_eq!(why.class, ErrorClass::Network);
    assert_eq!(
        why.explanation,
        "could not reach erp: dns error: no such host."
    );
    let (_, counts, why) = expect_retry(run(&Outcome::Timeout, &history(3)));
    assert!(counts);
    assert_eq!(why.class, ErrorClass::Timeout);
}

#[test]
fn mapping_and_config_errors_are_dead() {
    let why = expect_dead(run(&Outcome::Mapping("missing field `sku`"), &history(0)));
    assert_eq!(why.class, ErrorClass::Mapping);
    assert!(why.explanation.contains("missing field `sku`"));
    let why = expect_dead(run(&Outcome::Config("no base_url"), &history(0)));
    assert_eq!(why.class, ErrorClass::Config);
    assert!(why.explanation.contains("no base_url"));
}

#[test]
fn success_is_delivered_and_redirect_is_rejected() {
    let none = HeaderMap::new();
    for status in [200, 201, 202, 204, 299] {
        assert_eq!(
            run(&resp(status, &none, ""), &history(7)),
            Verdict::Delivered
        );
    }
    let h = headers(&[("location", "https://erp.example/v2/orders")]);
    for status in [301, 302, 307, 308] {
        let why = expect_dead(run(&resp(status, &h, ""), &history(0)));
        assert_eq!(why.class, ErrorClass::Rejected);
        assert!(why.explanation.contains("ferry does not follow redirects"));
        assert!(why.explanation.contains("https://erp.example/v2/orders"));
        assert!(why.hint.contains("base_url"));
    }
}

#[test]
fn error_class_round_trips() {
    for class in ErrorClass::ALL {
        assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
        assert_eq!(class.to_string(), class.as_str());
    }
    let mut names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ErrorClass::ALL.len());
    assert_eq!(ErrorClass::parse("Network"), None);
    assert_eq!(ErrorClass::parse("bogus"), None);
    assert_eq!(ErrorClass::RateLimited.as_str(), "rate_limited");
}

#[test]
fn human_durations() {
    for (ms, text) in [
        (0, "0ms"),
        (250, "250ms"),
        (1_500, "1.5s"),
        (45_000, "45s"),
        (125_000, "2m 5s"),
        (60 * MIN, "1h"),
        (63 * MIN, "1h 3m"),
        (24 * HOUR, "24h"),
        (52 * HOUR, "2d 4h"),
        (-45_000, "-45s"),
    ] {
        assert_eq!(human_duration(ms), text);
    }
}

#[test]
fn default_policy() {
    let p = RetryPolicy::default();
    assert_eq!(
        (
            p.max_attempts,
            p.initial_delay_ms,
            p.max_delay_ms,
            p.max_age_ms
        ),
        (8, 1_000, 10 * MIN, 24 * HOUR)
    );
}

#[test]
fn a_token_endpoint_outage_is_retried_in_the_budget_a_refusal_once() {
    let down = Outcome::Auth {
        reason: "the token endpoint answered 503",
        rejected: false,
    };
    let refused = Outcome::Auth {
        reason: "the token endpoint answered 401 (invalid_client)",
        rejected: true,
    };
    let after_one = History {
        consecutive_auth: 1,
        ..history(1)
    };
    let (_, counts, why) = expect_retry(run(&down, &after_one));
    assert!(counts, "an outage spends the budget like a 5xx");
    assert_eq!(why.class, ErrorClass::Auth);
    assert!(why.explanation.contains("503"), "{}", why.explanation);
    assert!(!why.hint.contains("retries once"), "{}", why.hint);
    let why = expect_dead(run(
        &down,
        &History {
            consecutive_auth: 4,
            ..history(7)
        },
    ));
    assert!(
        why.explanation.starts_with("gave up after 8 attempts"),
        "{}",
        why.explanation
    );
    let (_, _, why) = expect_retry(run(&refused, &history(0)));
    assert!(why.hint.contains("retries once"), "{}", why.hint);
    let why = expect_dead(run(&refused, &after_one));
    assert!(
        why.explanation.starts_with("credential rejected"),
        "{}",
        why.explanation
    );
}
