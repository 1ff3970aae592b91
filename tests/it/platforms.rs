//! Rate limits against throttling platforms, whole-system, on a manual clock:
//! a Shopify-like leaky bucket fed a thousand messages, and a receiver that
//! answers 429 with `Retry-After` (every form) to a backlog for a while.
//! ferry and the simulated platform read the same manual clock: a paced send
//! jumps it to the send's granted time, and the test moves it to the next
//! due time when ferry is idle. Nothing sleeps; no wall-clock figure is asserted.

use std::sync::{Arc, Mutex};

use crate::common::*;
use ferry::clock::Clock;
use ferry::deliver::Step;
use ferry::sim::platform::shopify::{ShopifyConfig, ShopifySim};
use ferry::sim::receiver::{Received, Reply};
use ferry::store::State;

/// Shopify's standard REST budget (a 40-request bucket leaking 2 a second):
/// a thousand messages go through with (almost) no 429, at the leak rate.
#[tokio::test]
async fn a_thousand_messages_to_a_shopify_bucket_go_at_its_leak_rate_without_429s() {
    const N: usize = 1_000;
    let clock = Clock::manual(T0);
    let shop = ShopifySim::start(clock.clone(), ShopifyConfig::default())
        .await
        .unwrap();
    let t = TestApp::spawn_with(Options {
        clock: Some(clock.clone()),
        extra: format!(
            r#"
[systems.shop]
base_url = "{}/admin/api/2024-07"
rate_limit = {{ per_second = 2, burst = 40, dialect = "shopify" }}

[routes.stock-to-shop]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "shop", method = "POST", path = "/inventory_levels/set.json" }}
"#,
            shop.url()
        ),
        ..Default::default()
    })
    .await;
    ingest_many(&t, "stock-to-shop", "inv", N).await;

    let steps = drive(&t, "shop", async || {
        let s = t.stats("stock-to-shop").await;
        (s.delivered + s.dead) as usize >= N
    })
    .await;

    let stats = t.stats("stock-to-shop").await;
    let seen = shop.seen();
    let throttled = seen.iter().filter(|s| s.status == 429).count();
    let ok: Vec<_> = seen.iter().filter(|s| s.status == 201).collect();
    // The first 40 fill the bucket at once; from the 40th on it leaks 2/s.
    // (Sends granted within one step run concurrently, and the latest grant's
    // wait moves the shared clock, so the sim may stamp part of the burst up to
    // a horizon (1 s) late: the burst's end is the 40th success as seen.)
    let burst_end = ok[39].at_ms;
    let last = seen.last().unwrap().at_ms;
    let rate = (ok.len() - 40) as f64 / ((last - burst_end) as f64 / 1000.0);
    println!(
        "shopify bucket: {N} messages, {} requests, {throttled} answered 429 ({:.2}%), \
         sustained {rate:.3} req/s after the burst (leak 2/s) over {:.1} virtual s, \
         {steps} steps, {} dead",
        seen.len(),
        100.0 * throttled as f64 / seen.len() as f64,
        (last - burst_end) as f64 / 1000.0,
        stats.dead
    );
    assert_eq!((stats.delivered, stats.dead), (N as u64, 0), "{stats:?}");
    assert_eq!(ok.len(), N, "one successful request per message");
    assert!(
        throttled * 100 <= seen.len(),
        "{throttled} of {} requests met a 429",
        seen.len()
    );
    assert!(
        rate >= 0.95 * 2.0,
        "sustained {rate:.3} req/s, under 95% of the 2/s leak"
    );
}

/// One request the throttling receiver saw, on the manual clock.
#[derive(Debug, Clone, Copy)]
struct Hit {
    at_ms: i64,
    /// The worker step it arrived in.
    step: usize,
    /// For a 429: the time its `Retry-After` named.
    named_ms: Option<i64>,
}

/// A `Retry-After` form: the header value to send at `now_ms`, and the time
/// it names.
type Form = fn(i64) -> (String, i64);

/// 50 messages to a receiver that answers its first 40 requests with 429 and
/// `Retry-After` (in `form`), then 200: every request waits for every 429
/// ferry had heard of when it was sent, nothing is spent or lost.
async fn a_backlog_waits_out_every_retry_after(form: Form) {
    const N: usize = 50;
    const THROTTLED: usize = 40;
    let t = TestApp::spawn().await;
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (clock, hits, step) = (t.clock.clone(), hits.clone(), step.clone());
        t.receiver.set_responder(Arc::new(move |_: &Received| {
            let mut hits = hits.lock().unwrap();
            let at_ms = clock.now_ms();
            let step = step.load(std::sync::atomic::Ordering::SeqCst);
            if hits.len() < THROTTLED {
                let (value, named_ms) = form(at_ms);
                hits.push(Hit {
                    at_ms,
                    step,
                    named_ms: Some(named_ms),
                });
                Reply::status(429).header("retry-after", &value)
            } else {
                hits.push(Hit {
                    at_ms,
                    step,
                    named_ms: None,
                });
                Reply::status(200)
            }
        }));
    }
    ingest_many(&t, "orders", "evt", N).await;

    let mut stepped = 0;
    while {
        let s = t.stats("orders").await;
        ((s.delivered + s.dead) as usize) < N
    } {
        stepped += 1;
        assert!(stepped < 1_000, "ferry stopped making progress");
        step.store(stepped, std::sync::atomic::Ordering::SeqCst);
        if t.step().await == Step::Idle {
            let due = t
                .store
                .next_due("erp")
                .await
                .unwrap()
                .expect("work pending");
            t.clock.set(due.max(t.clock.now_ms()));
        }
    }

    let hits = hits.lock().unwrap().clone();
    let throttled_steps: std::collections::BTreeSet<_> = hits
        .iter()
        .filter(|h| h.named_ms.is_some())
        .map(|h| h.step)
        .collect();
    // A request may only be concurrent with a 429 it could not know of (one
    // in the same step); every 429 answered in an earlier step holds it.
    let mut named_before = i64::MIN;
    let mut early = Vec::new();
    for s in hits
        .iter()
        .map(|h| h.step)
        .collect::<std::collections::BTreeSet<_>>()
    {
        for h in hits.iter().filter(|h| h.step == s) {
            if h.at_ms < named_before {
                early.push((*h, named_before));
            }
        }
        let named = hits
            .iter()
            .filter(|h| h.step == s)
            .filter_map(|h| h.named_ms);
        named_before = named_before.max(named.max().unwrap_or(i64::MIN));
    }
    let last_named = hits.iter().filter_map(|h| h.named_ms).max().unwrap();
    let first_ok = hits.iter().find(|h| h.named_ms.is_none()).unwrap();
    println!(
        "retry-after {:?}: {} requests, {THROTTLED} answered 429 over {} steps, \
         last 429 named +{} ms, first 200 at +{} ms, all done at +{} ms",
        form(T0).0,
        hits.len(),
        throttled_steps.len(),
        last_named - T0,
        first_ok.at_ms - T0,
        t.clock.now_ms() - T0
    );
    assert!(
        early.is_empty(),
        "{} requests sent before a 429's time, first: {:?}",
        early.len(),
        &early[..early.len().min(3)]
    );
    assert!(
        throttled_steps.len() >= 3,
        "the throttling lasts several rounds: {throttled_steps:?}"
    );
    let stats = t.stats("orders").await;
    assert_eq!((stats.delivered, stats.dead), (N as u64, 0), "{stats:?}");
    assert_eq!(hits.len(), N + THROTTLED, "one request per message and 429");
    let effects = t.receiver.effects();
    assert_eq!(effects.len(), N);
    assert!(
        effects.values().all(|n| *n == 1),
        "exactly once: {effects:?}"
    );
    // 429s are not attempts against the budget (max_attempts = 5).
    let list = t
        .store
        .list(&ferry::store::MessageFilter::default())
        .await
        .unwrap();
    assert!(list.iter().all(|m| m.state == State::Delivered));
}

#[tokio::test]
async fn a_backlog_waits_out_retry_after_in_seconds() {
    a_backlog_waits_out_every_retry_after(|now| ("3".into(), now + 3_000)).await;
}

#[tokio::test]
async fn a_backlog_waits_out_retry_after_as_a_decimal() {
    a_backlog_waits_out_every_retry_after(|now| ("2.0".into(), now + 2_000)).await;
}

#[tokio::test]
async fn a_backlog_waits_out_retry_after_as_an_http_date() {
    // Three seconds on, rounded up to the whole second an HTTP-date can name.
    a_backlog_waits_out_every_retry_after(|now| {
        let named = (now + 3_000 + 999) / 1000 * 1000;
        let date = std::time::UNIX_EPOCH + std::time::Duration::from_millis(named as u64);
        (httpdate::fmt_http_date(date), named)
    })
    .await;
}
