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

/// What each kind of answer becomes (dead, retried, within which budget).
#[path = "retry_verdict_tests.rs"]
mod verdicts;
