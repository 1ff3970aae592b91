//! Degrading gracefully, on a manual clock: the circuit breaker toward a
//! platform that keeps failing, and pacing to a platform's own limits.

mod common;

use common::*;
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
