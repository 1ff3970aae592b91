//! Delivery over real HTTP to a scriptable receiver, on a manual clock: the
//! retry schedule, every Retry-After form, the 429 budget, permanent errors,
//! max attempts and max age, and the stable downstream Idempotency-Key.

use crate::common::*;
use ferry::deliver::Step;
use ferry::model::ErrorClass;
use ferry::sim::receiver::Reply;
use ferry::store::State;

fn pending_at(m: &ferry::store::MessageDetail) -> i64 {
    m.summary.next_attempt_ms.expect("a scheduled retry")
}

#[tokio::test]
async fn a_message_is_delivered_with_auth_and_a_stable_idempotency_key() {
    let t = TestApp::spawn().await;
    assert_eq!(t.webhook("evt_a", r#"{"order":42}"#).await.status(), 202);
    assert_eq!(t.step().await, Step::Worked(1));
    let got = t.receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/orders");
    assert_eq!(&got[0].body[..], br#"{"order":42}"#);
    assert_eq!(got[0].headers["authorization"], "Bearer erp-outbound-token");
    let key = got[0].idempotency_key().unwrap().to_owned();
    assert!(key.starts_with("ferry-"));
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Delivered);
    assert_eq!(m.delivery_key, key);
    assert_eq!(m.attempts.len(), 1);
    let auth = m.attempts[0]
        .request
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(auth.1, "[redacted]", "secrets never reach the attempt log");
    assert_eq!(t.step().await, Step::Idle);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_and_the_same_key() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(503), Reply::status(500), Reply::status(502)]);
    t.webhook("evt_b", "{}").await;
    let mut last_at = t.clock.now_ms();
    for n in 1..=3 {
        assert_eq!(t.step().await, Step::Worked(1));
        let m = t.only_message().await;
        assert_eq!(m.summary.state, State::Retrying);
        assert_eq!(m.summary.last_class, Some(ErrorClass::ServerError));
        assert_eq!(m.summary.attempts, n);
        let at = pending_at(&m);
        let now = t.clock.now_ms();
        // Full jitter: within (0, initial * 2^(n-1)].
        assert!(
            at > now && at <= now + 1000 * (1 << (n - 1)),
            "attempt {n}: due {} ms later",
            at - now
        );
        assert!(at >= last_at);
        // Nothing is sent before it is due.
        if at - now > 1 {
            t.clock.set(at - 1);
            assert_eq!(t.step().await, Step::Idle);
        }
        t.clock.set(at);
        last_at = at;
    }
    assert_eq!(t.step().await, Step::Worked(1));
    assert_eq!(t.only_message().await.summary.state, State::Delivered);
    let keys: Vec<_> = t
        .receiver
        .received()
        .iter()
        .map(|r| r.idempotency_key().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one key on every attempt: {keys:?}"
    );
    let m = t.only_message().await;
    assert_eq!(m.attempts.len(), 4);
    assert!(
        m.attempts[0].explanation.contains("503"),
        "{}",
        m.attempts[0].explanation
    );
    assert_eq!(m.attempts[0].response.as_ref().unwrap().status, 503);
}

async fn retry_after_is_honoured(value: &str, expect_wait_ms: i64) {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(429).header("retry-after", value)]);
    t.webhook("evt_ra", "{}").await;
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(m.summary.last_class, Some(ErrorClass::RateLimited));
    assert_eq!(m.summary.attempts, 0, "429 does not spend the budget");
    let due = pending_at(&m);
    assert_eq!(
        due - t.clock.now_ms(),
        expect_wait_ms,
        "Retry-After: {value}"
    );
    t.clock.set(due - 1);
    assert_eq!(
        t.step().await,
        Step::Idle,
        "no request before the time it named"
    );
    assert_eq!(t.receiver.count(), 1);
    t.clock.set(due);
    assert_eq!(t.step().await, Step::Worked(1));
    assert_eq!(t.only_message().await.summary.state, State::Delivered);
}

#[tokio::test]
async fn retry_after_in_seconds() {
    retry_after_is_honoured("120", 120_000).await;
}

#[tokio::test]
async fn retry_after_as_a_decimal() {
    retry_after_is_honoured("2.0", 2_000).await;
}

#[tokio::test]
async fn retry_after_as_an_http_date() {
    // T0 + 90 s, as an IMF-fixdate.
    let date = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((T0 + 90_000) as u64),
    );
    retry_after_is_honoured(&date, 90_000).await;
}

#[tokio::test]
async fn retry_after_on_a_503_is_honoured_too() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(503).header("retry-after", "30")]);
    t.webhook("evt_503", "{}").await;
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(pending_at(&m) - t.clock.now_ms(), 30_000);
    assert_eq!(m.summary.attempts, 1, "a 503 spends the budget");
}

#[tokio::test]
async fn rate_limits_do_not_spend_the_retry_budget() {
    let t = TestApp::spawn().await; // max_attempts = 5
    t.receiver
        .push((0..12).map(|_| Reply::status(429).header("retry-after", "1")));
    t.webhook("evt_429", "{}").await;
    for _ in 0..12 {
        assert_eq!(t.step().await, Step::Worked(1));
        t.clock.advance(1_000);
    }
    assert_eq!(t.step().await, Step::Worked(1));
    let m = t.only_message().await;
    assert_eq!(
        m.summary.state,
        State::Delivered,
        "12 rate limits and still delivered"
    );
    assert_eq!(m.attempts.len(), 13);
}

#[tokio::test]
async fn a_permanent_rejection_is_dead_at_once_with_the_reason() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(422).body(r#"{"error":"unknown sku ZZ-9"}"#)]);
    t.webhook("evt_422", "{}").await;
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Dead);
    assert_eq!(m.summary.last_class, Some(ErrorClass::Rejected));
    let why = m.summary.last_explanation.unwrap();
    assert!(
        why.contains("422") && why.contains("unknown sku ZZ-9"),
        "{why}"
    );
    assert!(!m.summary.last_hint.unwrap().is_empty());
    t.clock.advance(3_600_000);
    assert_eq!(t.step().await, Step::Idle, "never retried blindly");
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_dead_total{route="orders",class="rejected"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn not_found_is_permanent() {
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(404)]);
    t.webhook("evt_404", "{}").await;
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(
        (m.summary.state, m.summary.last_class),
        (State::Dead, Some(ErrorClass::NotFound))
    );
}

#[tokio::test]
async fn the_retry_budget_ends_in_dead() {
    let t = TestApp::spawn().await; // max_attempts = 5
    t.receiver.set_default(Reply::status(500));
    t.webhook("evt_budget", "{}").await;
    for _ in 0..5 {
        assert_eq!(t.step().await, Step::Worked(1));
        t.clock.advance(60_000);
    }
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Dead);
    assert_eq!(t.receiver.count(), 5);
    assert!(
        m.summary
            .last_explanation
            .unwrap()
            .contains("gave up after 5 attempts")
    );
    assert_eq!(t.step().await, Step::Idle);
}

#[tokio::test]
async fn max_age_ends_in_dead() {
    let t = TestApp::spawn_with(Options {
        retry:
            r#"{ max_attempts = 1000, initial_delay = "1s", max_delay = "10m", max_age = "1h" }"#
                .into(),
        ..Default::default()
    })
    .await;
    t.receiver.set_default(Reply::status(503));
    t.webhook("evt_age", "{}").await;
    let mut steps = 0;
    loop {
        t.step().await;
        steps += 1;
        let m = t.only_message().await;
        if m.summary.state == State::Dead {
            let why = m.summary.last_explanation.unwrap();
            assert!(why.contains("max age"), "{why}");
            break;
        }
        t.clock.set(pending_at(&m));
        assert!(steps < 500, "never went dead");
    }
    assert!(
        t.clock.now_ms() - T0 <= 3_600_000,
        "no attempt after the max age"
    );
}

#[tokio::test]
async fn a_network_error_is_retried() {
    let t = TestApp::spawn_with(Options {
        extra: r#"
[systems.gone]
base_url = "http://127.0.0.1:9"
connect_timeout = "500ms"

[routes.to-gone]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "gone", path = "/x" }
"#
        .into(),
        ..Default::default()
    })
    .await;
    let resp = t.signed("to-gone", "n1", "{}", t.now_s(), WHSEC).await;
    assert_eq!(resp.status(), 202);
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Retrying);
    assert_eq!(m.summary.last_class, Some(ErrorClass::Network));
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let t = TestApp::spawn().await; // erp timeout = 2s
    t.receiver
        .push([Reply::status(200).delay(std::time::Duration::from_secs(5))]);
    t.webhook("evt_slow", "{}").await;
    t.step().await;
    let m = t.only_message().await;
    assert_eq!(
        (m.summary.state, m.summary.last_class),
        (State::Retrying, Some(ErrorClass::Timeout))
    );
}

/// Back-pressure: past a system's `max_queue`, ingest answers 503 with
/// `Retry-After` and stores nothing; once the queue drains it accepts again,
/// and everything it accepted is delivered.
#[tokio::test]
async fn a_full_queue_answers_503_until_it_drains() {
    let t = TestApp::spawn_with(Options {
        erp: "max_queue = 3".into(),
        ..Options::default()
    })
    .await;
    // Every ack, in order: the event ids ferry answered 2xx.
    let mut acked = Vec::new();
    let body = |id: &str| format!(r#"{{"event":"{id}"}}"#);
    for i in 0..3 {
        let id = format!("evt_{i}");
        assert_eq!(t.webhook(&id, &body(&id)).await.status(), 202);
        acked.push(id);
    }
    let full = t.webhook("evt_3", &body("evt_3")).await;
    assert_eq!(full.headers()["retry-after"], "5");
    let (status, p) = problem(full).await;
    assert_eq!(status, 503);
    assert_eq!(p["type"], "urn:ferry:problem:queue-full");
    assert!(p["detail"].as_str().unwrap().contains("max_queue"), "{p}");
    let api = t.api(Some("k1"), ERP_KEY, r#"{"sku":"A"}"#).await;
    assert_eq!(api.status(), 503, "the ERP API shares the system's queue");
    assert_eq!(t.total_messages().await, 3, "nothing refused was stored");
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_rejected_total{route="orders",reason="queue_full"} 1"#),
        "{metrics}"
    );

    // The janitor's count, not a guess, re-opens the queue.
    assert_eq!(t.drain().await, 3);
    assert_eq!(
        t.webhook("evt_3", &body("evt_3")).await.status(),
        503,
        "not counted again yet"
    );
    ferry::app::upkeep(&t.app).await;
    assert_eq!(t.webhook("evt_3", &body("evt_3")).await.status(), 202);
    acked.push("evt_3".to_owned());
    assert_eq!(t.drain().await, 1);
    assert_eq!(t.receiver.count(), 4);

    // Nothing accepted is lost: every acked message was delivered exactly
    // once, and nothing refused was.
    let mut delivered: Vec<String> = t
        .receiver
        .received()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["event"].as_str().unwrap().to_owned()
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, acked, "each acked message delivered once");
    let effects = t.receiver.effects();
    assert_eq!(effects.len(), 4);
    assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    let stats = t.stats("orders").await;
    assert_eq!((stats.delivered, stats.dead), (4, 0), "{stats:?}");
    assert_eq!(t.stats("stock").await.delivered, 0, "the refused API call");
}

/// A 429's `Retry-After` holds the whole system, not only the message that
/// met it: no request goes out before the time it named.
#[tokio::test]
async fn retry_after_holds_every_message_to_the_system() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(429).header("retry-after", "30")]);
    assert_eq!(t.webhook("evt_a", "{}").await.status(), 202);
    t.step().await;
    assert_eq!(t.webhook("evt_b", "{}").await.status(), 202);
    for _ in 0..3 {
        t.step().await;
        t.clock.advance(9_000);
    }
    assert_eq!(t.receiver.count(), 1, "nothing before the 30 s it named");
    let b = t
        .store
        .list(&ferry::store::MessageFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.event_id.as_deref() == Some("evt_b"))
        .unwrap();
    assert_eq!(b.attempts, 0, "waiting for the budget is not an attempt");
    assert!(
        t.store
            .message(&b.id)
            .await
            .unwrap()
            .unwrap()
            .attempts
            .is_empty()
    );
    t.clock.advance(3_000);
    t.drain().await;
    assert_eq!(t.receiver.count(), 3);
    assert_eq!(t.stats("orders").await.delivered, 2);
}

/// A dialect's "spent" reading holds the system before any 429: IETF
/// `RateLimit` with `r=0` waits `t` seconds.
#[tokio::test]
async fn a_spent_ietf_ratelimit_holds_before_the_first_429() {
    let t = TestApp::spawn_with(Options {
        erp: r#"rate_limit = { dialect = "ietf" }"#.into(),
        ..Options::default()
    })
    .await;
    t.receiver.push([
        Reply::status(200).header("ratelimit", "\"default\";r=3;t=10"),
        Reply::status(200).header("ratelimit", "\"default\";r=0;t=10"),
    ]);
    for id in ["evt_1", "evt_2"] {
        assert_eq!(t.webhook(id, "{}").await.status(), 202);
        t.step().await;
    }
    assert_eq!(t.receiver.count(), 2, "budget left after the first answer");
    assert_eq!(t.webhook("evt_3", "{}").await.status(), 202);
    t.step().await;
    t.clock.advance(9_999);
    t.step().await;
    assert_eq!(
        t.receiver.count(),
        2,
        "held for the 10 s the platform named"
    );
    t.clock.advance(1);
    t.drain().await;
    assert_eq!(t.receiver.count(), 3);
}

#[tokio::test]
async fn work_toward_a_removed_system_ends_dead_with_the_reason() {
    let receiver = ferry::sim::receiver::Receiver::start().await.unwrap();
    let before = TestApp::spawn_with(Options {
        receiver: Some(receiver.clone()),
        extra: format!(
            r#"
[systems.old]
base_url = "{}/old"

[routes.legacy]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "old", path = "/x" }}
"#,
            receiver.url()
        ),
        ..Default::default()
    })
    .await;
    let r = before
        .signed("legacy", "evt_old", "{}", before.now_s(), WHSEC)
        .await;
    assert_eq!(r.status(), 202);
    // The next configuration has neither the system nor its route.
    let after = TestApp::spawn_with(Options {
        receiver: Some(receiver.clone()),
        store: Some(before.store.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(after.step().await, Step::Worked(1));
    let m = after.only_message().await;
    assert_eq!(m.summary.state, State::Dead);
    assert_eq!(m.summary.last_class, Some(ErrorClass::Config));
    assert!(
        m.attempts[0]
            .explanation
            .contains("no longer in the configuration"),
        "{}",
        m.attempts[0].explanation
    );
    assert_eq!(receiver.count(), 0, "nothing was sent");
}
