use super::*;
use header::{HeaderName, HeaderValue};
use rand::{RngCore, SeedableRng, rngs::StdRng};

const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// An Rng that always yields the same word: `Fixed(u64::MAX)` drives
/// `random_range` to its upper bound, `Fixed(0)` to its lower bound.
struct Fixed(u64);

impl RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        self.0 as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(self.0 as u8);
    }
}

fn history(attempts: u32) -> History {
    History {
        attempts,
        budget_start_ms: NOW - MIN,
        received_ms: NOW - MIN,
        ..History::default()
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.append(name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn resp<'a>(status: u16, headers: &'a HeaderMap, body: &'a str) -> Outcome<'a> {
    Outcome::Response {
        status,
        headers,
        body_excerpt: body,
    }
}

fn run_with(outcome: &Outcome<'_>, history: &History, rng: &mut impl Rng) -> Verdict {
    let policy = RetryPolicy::default();
    decide(
        outcome,
        &Destination {
            system: "erp",
            policy: &policy,
            credential: Some("erp-token"),
        },
        history,
        NOW,
        rng,
    )
}

fn run(outcome: &Outcome<'_>, history: &History) -> Verdict {
    run_with(outcome, history, &mut StdRng::seed_from_u64(7))
}

fn expect_retry(v: Verdict) -> (i64, bool, Explained) {
    match v {
        Verdict::Retry {
            at_ms,
            counts_against_budget,
            why,
        } => (at_ms, counts_against_budget, why),
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn expect_dead(v: Verdict) -> Explained {
    match v {
        Verdict::Dead { why } => why,
        other => panic!("expected Dead, got {other:?}"),
    }
}

#[test]
fn backoff_stays_within_cap_and_grows() {
    let policy = RetryPolicy::default();
    let mut previous_mean = 0.0;
    for n in 1..=10u32 {
        let cap = (1_000i64 << (n - 1)).min(policy.max_delay_ms);
        let (mut max, mut sum) = (0, 0i64);
        for seed in 0..500 {
            let d = backoff_ms(n, &policy, &mut StdRng::seed_from_u64(seed));
            assert!((1..=cap).contains(&d), "n={n} d={d} cap={cap}");
            max = max.max(d);
            sum += d;
        }
        assert!(
            max > cap * 9 / 10,
            "n={n}: samples should reach near the cap"
        );
        let mean = sum as f64 / 500.0;
        assert!(mean > previous_mean, "n={n}: mean backoff should grow");
        previous_mean = mean;
    }
}

#[test]
fn backoff_upper_bound_doubles_and_lower_bound_is_one_ms() {
    let policy = RetryPolicy::default();
    let top = |n| backoff_ms(n, &policy, &mut Fixed(u64::MAX));
    assert_eq!(top(1), 1_000);
    assert_eq!(top(2), 2_000);
    assert_eq!(top(3), 4_000);
    for n in 1..10 {
        assert_eq!(top(n + 1), 2 * top(n));
    }
    assert_eq!(top(10), 512_000);
    assert_eq!(top(11), 600_000);
    assert_eq!(top(0), 1_000, "n = 0 acts as 1");
    for n in [1, 5, 20, u32::MAX] {
        assert_eq!(backoff_ms(n, &policy, &mut Fixed(0)), 1);
    }
}

#[test]
fn backoff_is_capped_by_max_delay() {
    let policy = RetryPolicy {
        max_delay_ms: 5_000,
        ..RetryPolicy::default()
    };
    for n in [4, 5, 30, 63, 64, 65, u32::MAX] {
        assert_eq!(backoff_ms(n, &policy, &mut Fixed(u64::MAX)), 5_000, "n={n}");
        for seed in 0..100 {
            let d = backoff_ms(n, &policy, &mut StdRng::seed_from_u64(seed));
            assert!((1..=5_000).contains(&d));
        }
    }
    let zero = RetryPolicy {
        initial_delay_ms: 0,
        ..RetryPolicy::default()
    };
    assert_eq!(backoff_ms(70, &zero, &mut Fixed(u64::MAX)), 1);
}

#[test]
fn retry_after_parses_every_form() {
    assert_eq!(parse_retry_after("120", NOW), Some(120_000));
    assert_eq!(parse_retry_after(" 120 ", NOW), Some(120_000));
    assert_eq!(parse_retry_after("0", NOW), Some(0));
    assert_eq!(parse_retry_after("2.0", NOW), Some(2_000));
    assert_eq!(parse_retry_after("1.5", NOW), Some(1_500));
    assert_eq!(parse_retry_after("0.0001", NOW), Some(1));
    assert_eq!(parse_retry_after("1.2345", NOW), Some(1_235));
    assert_eq!(parse_retry_after("1.2340", NOW), Some(1_234));
    assert_eq!(
        parse_retry_after("99999999999999999999", NOW),
        Some(i64::MAX)
    );

    // Wed, 21 Oct 2015 07:28:00 GMT is 1_445_412_480 s after the epoch.
    let now_2015 = 1_445_412_480_000 - 90_000;
    for date in [
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Wednesday, 21-Oct-15 07:28:00 GMT",
        "Wed Oct 21 07:28:00 2015",
    ] {
        assert_eq!(parse_retry_after(date, now_2015), Some(90_000), "{date}");
    }
    // Fri, 31 Dec 1999 23:59:59 GMT is 946_684_799 s after the epoch.
    let y2k = "Fri, 31 Dec 1999 23:59:59 GMT";
    assert_eq!(parse_retry_after(y2k, 946_684_799_000 - 5_500), Some(5_500));
    assert_eq!(parse_retry_after(y2k, now_2015), Some(0), "past date");

    for bad in [
        "",
        "   ",
        "-5",
        "-1.5",
        "NaN",
        "nan",
        "inf",
        "1e3",
        "1.2.3",
        ".",
        "+5",
        "12abc",
        "soon",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
    }
}

#[test]
fn retry_after_is_never_undercut() {
    let now_plus_90s = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((NOW + 90_000) as u64),
    );
    for (status, value, wait) in [
        (429, "120", 120_000),
        (429, "1.5", 1_500),
        (503, "30", 30_000),
        (502, "2.0", 2_000),
        (504, "7", 7_000),
        (503, now_plus_90s.as_str(), 90_000),
    ] {
        let h = headers(&[("retry-after", value)]);
        for seed in 0..300 {
            let hist = History {
                consecutive_rate_limited: (seed % 12) as u32,
                ..history((seed % 7) as u32)
            };
            let v = run_with(
                &resp(status, &h, ""),
                &hist,
                &mut StdRng::seed_from_u64(seed),
            );
            let (at, _, _) = expect_retry(v);
            assert!(at >= NOW + wait, "{status} {value}: {at} < now + {wait}");
        }
    }
    // Several values: the longest valid one wins; garbage is ignored.
    let h = headers(&[
        ("retry-after", "5"),
        ("retry-after", "soon"),
        ("retry-after", "60"),
    ]);
    let (at, _, _) = expect_retry(run(&resp(429, &h, ""), &history(0)));
    assert_eq!(at, NOW + 60_000);
    // A date in the past still schedules strictly after now.
    let h = headers(&[("retry-after", "Fri, 31 Dec 1999 23:59:59 GMT")]);
    let (at, _, _) = expect_retry(run(&resp(503, &h, ""), &history(0)));
    assert_eq!(at, NOW + 1);
}

#[test]
fn rate_limited_does_not_consume_budget() {
    let none = HeaderMap::new();
    for consecutive in [0, 7, 8, 20, 500] {
        let hist = History {
            consecutive_rate_limited: consecutive,
            ..history(8)
        };
        let v = run(&resp(429, &none, ""), &hist);
        let (at, counts, why) = expect_retry(v);
        assert!(!counts);
        assert!(at > NOW);
        assert_eq!(why.class, ErrorClass::RateLimited);
        assert!(why.explanation.contains("429 Too Many Requests"));
        assert!(why.hint.contains("does not use up") || why.hint.contains("without using up"));
    }
    // Without Retry-After the delay grows with the 429s in a row.
    let at = |consecutive| {
        let hist = History {
            consecutive_rate_limited: consecutive,
            ..history(0)
        };
        expect_retry(run_with(&resp(429, &none, ""), &hist, &mut Fixed(u64::MAX))).0
    };
    assert_eq!(at(0), NOW + 1_000);
    assert_eq!(at(3), NOW + 8_000);
    assert_eq!(at(40), NOW + 600_000);
}

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
