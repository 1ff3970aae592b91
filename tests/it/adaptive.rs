//! Adaptive concurrency (`rate_limit.adaptive`), whole-system: a platform
//! that takes four requests at once and answers 429 to any beyond them. With
//! `max_concurrency = 32`, ferry's in-flight limit for it climbs from 1 and
//! settles near four instead of 32; everything is delivered, nothing dead.
//!
//! This runs the real worker loops on the system clock (the limit moves with
//! requests overlapping in time, which a stepped manual clock does not show).
//! It asserts only on the limit's trajectory and the outcome, never on speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use crate::common::*;
use axum::http::StatusCode;

/// Requests the platform serves at once.
const SWEET: usize = 4;
const MAX: usize = 32;
const N: usize = 300;

#[derive(Default)]
struct Narrow {
    in_flight: AtomicUsize,
    throttled: AtomicUsize,
}

/// Counts the request out when it is answered or its sender hangs up.
struct InFlight(Arc<Narrow>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

async fn narrow(axum::extract::State(n): axum::extract::State<Arc<Narrow>>) -> StatusCode {
    let now = n.in_flight.fetch_add(1, SeqCst) + 1;
    let _guard = InFlight(n.clone());
    if now > SWEET {
        n.throttled.fetch_add(1, SeqCst);
        return StatusCode::TOO_MANY_REQUESTS;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_settles_near_what_the_platform_takes_not_at_the_max() {
    let state = Arc::new(Narrow::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/x", axum::routing::post(narrow))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let t = TestApp::spawn_with(Options {
        workers: true,
        extra: format!(
            r#"
[systems.narrow]
base_url = "http://{addr}"
timeout = "5s"
retry = {{ max_attempts = 5, initial_delay = "10ms", max_delay = "50ms" }}
rate_limit = {{ max_concurrency = {MAX}, adaptive = true }}

[routes.narrow]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "narrow", path = "/x" }}
"#
        ),
        ..Default::default()
    })
    .await;
    let system = t.app.config().systems["narrow"].clone();
    assert_eq!(t.app.concurrency.limit(&system), 1, "starts at one");
    ingest_many(&t, "narrow", "n", N).await;

    // The limit, sampled until everything is delivered (a generous bound on
    // samples only keeps a broken build from hanging; no speed is asserted).
    let mut limits = vec![];
    for _ in 0..24_000 {
        limits.push(t.app.concurrency.limit(&system));
        let s = t.stats("narrow").await;
        if (s.delivered + s.dead) as usize >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = t.stats("narrow").await;
    let highest = *limits.iter().max().unwrap();
    let tail = &limits[limits.len() / 2..];
    let mut sorted = tail.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    println!(
        "adaptive: {} samples, highest limit {highest}, median of the second half {median}, \
         {} answered 429, {s:?}",
        limits.len(),
        state.throttled.load(SeqCst)
    );
    assert_eq!((s.delivered, s.dead), (N as u64, 0), "{s:?}");
    assert!(
        highest >= SWEET,
        "the limit climbed to the platform's width: {highest}"
    );
    assert!(
        highest <= 2 * SWEET,
        "the limit never went far past the platform's width: {highest}"
    );
    assert!(
        (SWEET - 2..=SWEET + 2).contains(&median),
        "it settled near {SWEET}, not at {MAX}: median {median}"
    );
    let metrics = t.metrics().await;
    let gauge = format!(
        "ferry_concurrency_limit{{system=\"narrow\"}} {}",
        t.app.concurrency.limit(&system)
    );
    assert!(metrics.contains(&gauge), "{gauge} in {metrics}");
    assert!(metrics.contains(&format!(
        "ferry_concurrency_limit{{system=\"erp\"}} {}",
        t.app.config().systems["erp"].max_concurrency
    )));
    let v = t.admin_json(reqwest::Method::GET, "/systems", None).await;
    let shown = v["systems"].as_array().unwrap().iter();
    let shown = shown.into_iter().find(|s| s["name"] == "narrow").unwrap();
    let shown = shown["concurrency_limit"].as_u64().unwrap() as usize;
    assert!((1..=2 * SWEET).contains(&shown), "admin shows {shown}");
    t.shutdown.cancel();
}
