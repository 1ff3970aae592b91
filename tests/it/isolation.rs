//! Isolation: one destination down never slows another (DESIGN, contract 7).
//!
//! Why real worker loops on the system clock, and how it stays honest:
//! `Deliverer::run_once` (what `TestApp::step()` calls) spawns every due
//! attempt toward every system and returns only when all of them are
//! recorded, so in step mode a system whose requests time out holds each step
//! for its timeout, and on a manual clock the erp's deliveries per *virtual*
//! second would not change whatever the slow system did: such a measure could
//! not fail. Isolation is a property of the production path, the per-system
//! worker loops (`Deliverer::run`), which share the store and the runtime. So this test runs them
//! (`Options { workers: true }`), and makes the healthy system's rate a set
//! point rather than a measure of machine speed: `erp` is paced by ferry to
//! 200 requests/s, far below what a loaded 2-core box can do over loopback.
//! The slow system's requests time out after 200 ms (real time inside
//! reqwest; its receiver would answer after 5 s) and are retried quickly, so
//! it keeps as many requests in flight as ferry lets it. The rate of `erp`
//! is counted over the same real interval alone and then with `slow`
//! saturated, in one run, and only the ratio is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use ferry::sim::receiver::{Received, Receiver, Reply};

const WINDOW: Duration = Duration::from_secs(2);

/// The `erp` receiver's answers per second over `WINDOW`.
async fn erp_rate(t: &TestApp) -> f64 {
    let (c0, t0) = (t.receiver.count(), Instant::now());
    tokio::time::sleep(WINDOW).await;
    let (c1, t1) = (t.receiver.count(), Instant::now());
    (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
}

async fn a_timing_out_system_does_not_slow_a_healthy_one(slow_limits: &str) -> (f64, f64, usize) {
    let slow = Receiver::start().await.unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    {
        let arrived = arrived.clone();
        slow.set_responder(Arc::new(move |_: &Received| {
            arrived.fetch_add(1, Ordering::SeqCst);
            Reply::status(200).delay(Duration::from_secs(5))
        }));
    }
    let t = TestApp::spawn_with(Options {
        workers: true,
        erp: r#"rate_limit = { per_second = 200, burst = 1 }"#.into(),
        extra: format!(
            r#"
[systems.slow]
base_url = "{}"
timeout = "200ms"
retry = {{ max_attempts = 1000, initial_delay = "50ms", max_delay = "100ms", max_age = "1h" }}
{slow_limits}

[routes.to-slow]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "slow", path = "/x" }}
"#,
            slow.url()
        ),
        ..Default::default()
    })
    .await;
    // A backlog for erp that outlasts both windows at 200/s.
    ingest_many(&t, "orders", "erp", 2_500).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alone = erp_rate(&t).await;

    ingest_many(&t, "to-slow", "slow", 300).await;
    // Saturated: its requests keep arriving and none is ever answered in time.
    eventually("slow gets requests", Duration::from_secs(10), async || {
        arrived.load(Ordering::SeqCst) >= 16
    })
    .await;
    let before = arrived.load(Ordering::SeqCst);
    let with_slow = erp_rate(&t).await;
    let slow_requests = arrived.load(Ordering::SeqCst) - before;

    let erp = t.stats("orders").await;
    assert!(
        erp.queued + erp.delivering + erp.retrying > 0,
        "erp still had a backlog, so its rate was its pace: {erp:?}"
    );
    let slow_stats = t.stats("to-slow").await;
    assert_eq!(slow_stats.delivered, 0, "slow never answers in time");
    slow.stop();
    (alone, with_slow, slow_requests)
}

/// The slow system's breaker is kept closed (as before it trips, or with a
/// failure ratio under its threshold), so it keeps every request ferry lets
/// it have in flight: as many as its own `max_concurrency` (the default,
/// `server.workers`). Places are per system; none is shared, so the slow
/// system's hanging requests cannot take the healthy one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_that_times_out_does_not_slow_another() {
    let (alone, with_slow, slow_requests) = a_timing_out_system_does_not_slow_a_healthy_one(
        r#"circuit_breaker = { min_requests = 1000000 }"#,
    )
    .await;
    println!(
        "isolation: erp {alone:.1}/s alone, {with_slow:.1}/s with slow saturated \
         ({:.0}%); slow got {slow_requests} requests (all timed out) in the window",
        100.0 * with_slow / alone
    );
    assert!(alone > 150.0, "erp alone ran at its pace: {alone:.1}/s");
    assert!(
        slow_requests >= 8,
        "slow was kept busy during the window: {slow_requests} requests"
    );
    assert!(
        with_slow >= 0.9 * alone,
        "erp fell to {with_slow:.1}/s from {alone:.1}/s alone"
    );
}
