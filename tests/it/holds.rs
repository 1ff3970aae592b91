//! Holds are bounded and never silent: a platform's `Retry-After` (or its
//! rate-limit headers) holds a system at most `rate_limit.max_hold`; the
//! hold shows in `/admin/api/v1/systems`, as `ferry_hold_until_seconds`, and
//! on every delivery that waits for it; holds stored by an earlier run are
//! bounded when the workers start.

use crate::common::*;
use ferry::sim::receiver::Reply;
use ferry::store::{MessageFilter, State};
use reqwest::Method;

const HOUR_MS: i64 = 3_600_000;

async fn id_of(t: &TestApp, event: &str) -> String {
    t.store
        .list(&MessageFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.event_id.as_deref() == Some(event))
        .unwrap()
        .id
        .into_string()
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_by_max_hold_and_shown() {
    let t = TestApp::spawn_with(Options {
        retry: r#"{ max_age = "24h" }"#.into(),
        ..Options::default()
    })
    .await;
    t.receiver
        .push([Reply::status(429).header("retry-after", "100000000")]);
    let start = t.clock.now_ms();
    assert_eq!(t.webhook("evt_a", "{}").await.status(), 202);
    t.step().await;
    assert_eq!(t.webhook("evt_b", "{}").await.status(), 202);
    t.step().await;
    assert_eq!(t.receiver.count(), 1, "the hold is honoured");

    let a = message_by(&t, "evt_a").await;
    assert_eq!(a.summary.state, State::Retrying, "capped, so not dead");
    assert_eq!(
        pending(&a),
        start + HOUR_MS,
        "retried after max_hold, not in 2030"
    );

    let systems = t.admin_json(Method::GET, "/systems", None).await;
    let erp = &systems["systems"][0];
    assert_eq!(erp["name"], "erp");
    assert_eq!(erp["hold"]["until_ms"], start + HOUR_MS, "{systems}");
    assert_eq!(erp["hold"]["source"], "Retry-After");
    assert_eq!(erp["hold"]["capped"], true);

    let b = id_of(&t, "evt_b").await;
    let shown = t
        .admin_json(Method::GET, &format!("/messages/{b}"), None)
        .await;
    let waiting = shown["waiting"].as_str().unwrap_or_default();
    assert!(
        waiting.starts_with("held by erp's Retry-After until ") && waiting.contains("UTC"),
        "{shown}"
    );
    let list = t.admin_json(Method::GET, "/messages", None).await;
    assert!(
        list["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["waiting"]
                .as_str()
                .is_some_and(|w| w.contains("held by erp"))),
        "{list}"
    );
    let metrics = t.metrics().await;
    let gauge = format!(
        "ferry_hold_until_seconds{{system=\"erp\"}} {}",
        (start + HOUR_MS) / 1000
    );
    assert!(metrics.contains(&gauge), "{metrics}");

    t.clock.set(start + HOUR_MS);
    t.drain().await;
    assert_eq!(
        t.stats("orders").await.delivered,
        2,
        "both go after an hour"
    );
}

#[tokio::test]
async fn max_hold_is_configurable_and_bounded_by_max_age() {
    let t = TestApp::spawn_with(Options {
        erp: r#"rate_limit = { max_hold = "5m" }"#.into(),
        ..Options::default()
    })
    .await;
    t.receiver
        .push([Reply::status(503).header("retry-after", "86400")]);
    let start = t.clock.now_ms();
    t.webhook("evt_a", "{}").await;
    t.step().await;
    let a = t.only_message().await;
    assert_eq!(pending(&a), start + 300_000);
    let systems = t.admin_json(Method::GET, "/systems", None).await;
    assert_eq!(systems["systems"][0]["hold"]["until_ms"], start + 300_000);

    let short_life = TestApp::spawn_with(Options {
        retry: r#"{ max_age = "2m" }"#.into(),
        ..Options::default()
    })
    .await;
    short_life
        .receiver
        .push([Reply::status(503).header("retry-after", "86400")]);
    let start = short_life.clock.now_ms();
    short_life.webhook("evt_a", "{}").await;
    short_life.step().await;
    let systems = short_life.admin_json(Method::GET, "/systems", None).await;
    assert_eq!(
        systems["systems"][0]["hold"]["until_ms"],
        start + 120_000,
        "no hold outlives the messages' max age"
    );
}

/// Deliveries deferred far out by a run before the cap (or with a longer
/// one) are due within `max_hold` once the workers start again.
#[tokio::test]
async fn holds_stored_before_a_restart_are_bounded() {
    stored_holds_are_bounded(TestApp::spawn().await).await;
}

#[tokio::test]
async fn holds_stored_before_a_restart_are_bounded_on_postgres() {
    let Some(pg) = PgScratch::new("holds_stored_before_a_restart_are_bounded_on_postgres").await
    else {
        return;
    };
    let t = TestApp::spawn_with(Options {
        store: Some(pg.store().await),
        ..Options::default()
    })
    .await;
    stored_holds_are_bounded(t).await;
    pg.drop().await;
}

async fn stored_holds_are_bounded(t: TestApp) {
    t.webhook("evt_a", "{}").await;
    let start = t.clock.now_ms();
    let claimed = t.store.claim("erp", start, 60_000, 10).await.unwrap();
    let far = start + 100_000_000_000;
    assert!(
        t.store
            .defer(claimed[0].delivery_id, claimed[0].lease_until, far)
            .await
            .unwrap()
    );
    let rate = ferry::limits::pace::Rate::UNLIMITED;
    let cap = start + HOUR_MS;
    assert_eq!(
        t.store.bound_waits("erp", "erp", cap, rate).await.unwrap(),
        1
    );
    assert_eq!(pending(&t.only_message().await), cap);
    assert_eq!(
        t.store.bound_waits("erp", "erp", cap, rate).await.unwrap(),
        0
    );
}

fn pending(m: &ferry::store::MessageDetail) -> i64 {
    m.summary.next_attempt_ms.expect("a scheduled attempt")
}

async fn message_by(t: &TestApp, event: &str) -> ferry::store::MessageDetail {
    let id = id_of(t, event).await;
    t.store.message(&id).await.unwrap().unwrap()
}
