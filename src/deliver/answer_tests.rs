//! What one answer says, read on hand-made answers.

use std::path::Path;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::config::Config;
use crate::store::ResponseLog;

const CONFIG: &str = r#"
[credentials]
k = { env = "K" }
sf = { env = "SF" }

[systems.crm]
base_url = "http://127.0.0.1:1"

[systems.sf]
base_url = "http://127.0.0.1:2"
auth = { kind = "bearer", credential = "sf" }
rate_limit = { dialect = "salesforce" }

[routes.contacts]
source = { kind = "api", credentials = ["k"] }
destination = { system = "crm", path = "/contacts" }

[routes.accounts]
source = { kind = "api", credentials = ["k"] }
destination = { system = "sf", path = "/accounts" }
"#;

/// 2026-01-01T00:00:00Z.
const MIDNIGHT: i64 = 1_767_225_600_000;

fn config() -> Config {
    Config::parse(CONFIG, "test", Path::new("/tmp"), &|k| {
        matches!(k, "K" | "SF").then(|| "x".into())
    })
    .unwrap()
}

fn answer(status: u16, pairs: &[(&str, &str)], body: &str) -> Sent {
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Sent::Response {
        status,
        headers,
        log: ResponseLog {
            body_excerpt: body.to_owned(),
            ..ResponseLog::default()
        },
        body: Default::default(),
    }
}

#[test]
fn a_timeout_or_503_is_back_pressure_a_refused_connection_is_nothing() {
    let c = config();
    let crm = &c.systems["crm"];
    let load = |sent: &Sent, ms| Reading::of(crm, sent, ms, MIDNIGHT).load;
    let ok = |rtt_ms| Some(Signal::Answered { rtt_ms });
    assert_eq!(load(&answer(429, &[], ""), 5), Some(Signal::BackPressure));
    assert_eq!(load(&answer(503, &[], ""), 5), Some(Signal::BackPressure));
    assert_eq!(load(&Sent::Timeout, 5), Some(Signal::BackPressure));
    assert_eq!(load(&answer(500, &[], ""), 5), ok(5));
    assert_eq!(load(&answer(201, &[], ""), 7), ok(7));
    assert_eq!(load(&Sent::Network("refused".into()), 5), None);
}

#[test]
fn health_comes_from_what_was_sent_and_nothing_from_what_was_not() {
    let c = config();
    let crm = &c.systems["crm"];
    let health = |sent: &Sent| Reading::of(crm, sent, 1, MIDNIGHT).health;
    assert_eq!(health(&answer(200, &[], "")), Some(Health::Up));
    assert_eq!(health(&answer(429, &[], "")), Some(Health::Busy));
    assert_eq!(health(&answer(502, &[], "")), Some(Health::Down));
    assert_eq!(health(&Sent::Timeout), Some(Health::Down));
    assert_eq!(health(&Sent::Network("dns".into())), Some(Health::Down));
    let refused = Reading::of(crm, &Sent::Refused("off host".into()), 0, MIDNIGHT);
    assert_eq!((refused.health, refused.load), (None, None));
}

#[test]
fn a_rejected_credential_is_re_read_but_not_for_a_spent_quota() {
    let c = config();
    let sf = &c.systems["sf"];
    let refresh = |sent: &Sent| Reading::of(sf, sent, 1, MIDNIGHT).refresh;
    assert_eq!(refresh(&answer(401, &[], "")), Some("sf"));
    assert_eq!(refresh(&answer(403, &[], "[]")), Some("sf"));
    let spent =
        r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
    assert_eq!(refresh(&answer(403, &[], spent)), None);
    assert_eq!(refresh(&answer(500, &[], "")), None);
    // A system without a credential has none to re-read.
    let crm = &c.systems["crm"];
    assert_eq!(
        Reading::of(crm, &answer(401, &[], ""), 1, MIDNIGHT).refresh,
        None
    );
}

#[test]
fn holds_and_usage_are_read_off_the_same_answer() {
    let c = config();
    let sf = &c.systems["sf"];
    let now = MIDNIGHT + 1_000;
    let r = Reading::of(
        sf,
        &answer(
            429,
            &[
                ("retry-after", "30"),
                ("sforce-limit-info", "api-usage=90/100"),
            ],
            "",
        ),
        1,
        now,
    );
    assert_eq!(
        r.hold,
        Some(AskedHold {
            until_ms: now + 30_000,
            source: "Retry-After"
        })
    );
    let usage = r.usage.unwrap();
    assert_eq!((usage.used, usage.limit), (90, 100));
    // A time already past asks for no hold.
    let past = Reading::of(sf, &answer(429, &[("retry-after", "0")], ""), 1, now);
    assert_eq!(past.hold, None);
    // Without a dialect, a usage header means nothing.
    let crm = &c.systems["crm"];
    let plain = Reading::of(
        crm,
        &answer(200, &[("sforce-limit-info", "api-usage=90/100")], ""),
        1,
        now,
    );
    assert_eq!((plain.usage, plain.hold), (None, None));
}
