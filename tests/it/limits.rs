//! Degrading gracefully, on a manual clock: the circuit breaker toward a
//! platform that keeps failing, and pacing to a platform's own limits.

use crate::common::*;
use ferry::deliver::Step;
use ferry::sim::receiver::Reply;
use reqwest::Method;

#[tokio::test]
async fn a_long_outage_opens_the_breaker_probes_once_per_interval_and_loses_nothing() {
    let t = TestApp::spawn_with(Options {
        erp: r#"circuit_breaker = { failure_ratio = 0.5, window = "10s", min_requests = 5, open_for = "5s" }"#.into(),
        retry: r#"{ max_attempts = 8, initial_delay = "1s", max_delay = "2s", max_age = "1h" }"#.into(),
        ..Default::default()
    })
    .await;
    t.receiver.set_default(Reply::status(503));
    for i in 0..10 {
        assert_eq!(t.webhook(&format!("evt_{i}"), "{}").await.status(), 202);
    }
    assert_eq!(t.step().await, Step::Worked(10));
    let systems = t.admin_json(Method::GET, "/systems", None).await;
    let erp = &systems["systems"][0];
    assert_eq!(erp["name"], "erp");
    assert_eq!(erp["circuit"]["state"], "open", "{systems}");
    assert_eq!(erp["queued"], 10, "messages wait; none is dead");
    assert_eq!(erp["circuit"]["probe_at_ms"], T0 + 5_000);
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_circuit_state{system="erp",state="open"} 1"#),
        "{metrics}"
    );

    // A minute of outage, looked at every 250 ms: probes only, one per interval.
    let mut sent_at = Vec::new();
    let mut seen = t.receiver.count();
    for _ in 0..240 {
        t.clock.advance(250);
        t.step().await;
        let now = t.receiver.count();
        assert!(now - seen <= 1, "one probe at a time");
        if now > seen {
            sent_at.push(t.clock.now_ms());
        }
        seen = now;
    }
    assert!(sent_at.len() >= 10, "it kept probing: {sent_at:?}");
    assert!(
        sent_at.windows(2).all(|w| w[1] - w[0] >= 5_000),
        "at most one probe per 5 s: {sent_at:?}"
    );
    assert!(sent_at[0] >= T0 + 5_000, "no request while open");
    assert_eq!(t.stats("orders").await.dead, 0);

    // The platform recovers: the next probe closes the breaker and the queue drains.
    t.receiver.set_default(Reply::status(200));
    for _ in 0..40 {
        t.clock.advance(250);
        t.step().await;
    }
    let stats = t.stats("orders").await;
    assert_eq!((stats.delivered, stats.dead), (10, 0), "{stats:?}");
    let systems = t.admin_json(Method::GET, "/systems", None).await;
    assert_eq!(systems["systems"][0]["circuit"]["state"], "closed");
    let metrics = t.metrics().await;
    assert!(metrics.contains(r#"ferry_circuit_changes_total{system="erp",state="closed"} 1"#));
}

/// Two systems sending with one credential whose platform budgets per token
/// (`scope = "credential"`) draw from one budget: together, not each, they
/// keep to 2 requests a second.
#[tokio::test]
async fn systems_sharing_a_credential_share_its_budget() {
    use std::sync::{Arc, Mutex};
    let clock = ferry::clock::Clock::manual(T0);
    let receiver = ferry::sim::receiver::Receiver::start().await.unwrap();
    let at: Arc<Mutex<Vec<i64>>> = Arc::default();
    let (seen, c) = (at.clone(), clock.clone());
    receiver.set_responder(Arc::new(move |_: &ferry::sim::receiver::Received| {
        seen.lock().unwrap().push(c.now_ms());
        Reply::status(200)
    }));
    let mut extra = String::new();
    for name in ["shop-a", "shop-b"] {
        extra.push_str(&format!(
            r#"
[systems.{name}]
base_url = "{url}/{name}"
auth = {{ kind = "bearer", credential = "erp_token" }}
rate_limit = {{ per_second = 2, burst = 1, scope = "credential" }}

[routes.to-{name}]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "{name}", path = "/stock" }}
"#,
            url = receiver.url()
        ));
    }
    let t = TestApp::spawn_with(Options {
        clock: Some(clock),
        receiver: Some(receiver),
        extra,
        ..Default::default()
    })
    .await;
    for i in 0..10 {
        for name in ["shop-a", "shop-b"] {
            let r = t
                .signed(
                    &format!("to-{name}"),
                    &format!("{name}-{i}"),
                    "{}",
                    t.now_s(),
                    WHSEC,
                )
                .await;
            assert_eq!(r.status(), 202);
        }
    }
    let mut steps = 0;
    while t.receiver.count() < 20 {
        steps += 1;
        assert!(steps < 1_000, "no progress");
        if t.step().await == Step::Idle {
            let due = [
                t.store.next_due("shop-a").await,
                t.store.next_due("shop-b").await,
            ]
            .into_iter()
            .filter_map(|d| d.unwrap())
            .min()
            .expect("work is due somewhere");
            t.clock.set(due.max(t.clock.now_ms()));
        }
    }
    // Sends granted in one step may be stamped a little late (each jump of the
    // shared manual clock is seen by requests still on their way), never
    // early: the last of 20 requests at 2/s with a burst of 1 cannot go before
    // 9.5 s; two budgets of 2/s would have finished by 4.5 s.
    let last = at.lock().unwrap().iter().copied().max().unwrap();
    assert!(
        last - T0 >= 9_500,
        "one budget of 2/s across both systems: done after {} ms",
        last - T0
    );
}
