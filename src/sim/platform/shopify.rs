//! A Shopify-like REST Admin API: any `GET`, `POST` or `PUT` under
//! `/admin/api/{version}/...`, throttled by a leaky bucket per shop (40
//! requests, leaking 2 a second, as on Shopify's standard plan). Every answer
//! says how full the bucket is (`X-Shopify-Shop-Api-Call-Limit: used/size`,
//! what ferry's `shopify` dialect reads); a full bucket answers 429 with
//! `Retry-After: 2.0` and Shopify's own error text. The "shop" is the
//! `X-Shopify-Access-Token` the request carries (one app's token belongs to
//! one shop), or a shared bucket when there is none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Method;

use axum::response::Response;
use axum::routing::any;
use serde_json::json;

use super::{Call, Recorder, Running, StartError, answer};
use crate::clock::Clock;

/// Shopify's answer to a request over the limit.
pub const THROTTLED_BODY: &str = r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#;

/// The bucket's size and leak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShopifyConfig {
    /// Requests the bucket holds (Shopify standard: 40).
    pub capacity: u32,
    /// Requests leaking out per second (Shopify standard: 2).
    pub leak_per_s: f64,
}

impl Default for ShopifyConfig {
    fn default() -> ShopifyConfig {
        ShopifyConfig {
            capacity: 40,
            leak_per_s: 2.0,
        }
    }
}

/// A leaky bucket on clock milliseconds: each request pours one in, the
/// bucket drains steadily, a request that would overflow it is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakyBucket {
    config: ShopifyConfig,
    /// Requests in the bucket at `last_ms` (fractional while leaking).
    level: f64,
    last_ms: i64,
}

impl LeakyBucket {
    pub fn new(config: ShopifyConfig) -> LeakyBucket {
        LeakyBucket {
            config,
            level: 0.0,
            last_ms: i64::MIN,
        }
    }

    fn leak(&mut self, now_ms: i64) {
        if self.last_ms != i64::MIN && now_ms > self.last_ms {
            let leaked = (now_ms - self.last_ms) as f64 * self.config.leak_per_s / 1000.0;
            self.level = (self.level - leaked).max(0.0);
        }
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Pours one request in: `Ok(used)` as the header shows it after this
    /// request, or `Err(used)` (the bucket is full) with nothing poured.
    pub fn pour(&mut self, now_ms: i64) -> Result<u32, u32> {
        self.leak(now_ms);
        let capacity = f64::from(self.config.capacity);
        if self.level + 1.0 > capacity + 1e-9 {
            return Err(self.used());
        }
        self.level += 1.0;
        Ok(self.used())
    }

    /// Whole requests in the bucket, rounded up (a slot partly drained is
    /// still taken), as Shopify's header counts them.
    pub fn used(&self) -> u32 {
        (self.level - 1e-9).ceil().max(0.0) as u32
    }
}

struct Shared {
    clock: Clock,
    config: ShopifyConfig,
    /// One bucket per shop; a `std` mutex: held only for arithmetic.
    buckets: Mutex<HashMap<String, LeakyBucket>>,
    recorder: Arc<Recorder>,
}

/// A running Shopify-like API.
#[derive(Clone)]
pub struct ShopifySim {
    running: Running,
}

running_accessors!(ShopifySim);

impl ShopifySim {
    /// Starts on 127.0.0.1, port 0; `clock` drives the buckets' leak.
    pub async fn start(clock: Clock, config: ShopifyConfig) -> Result<ShopifySim, StartError> {
        if config.capacity == 0 || !(config.leak_per_s > 0.0 && config.leak_per_s.is_finite()) {
            return Err(StartError::Settings(
                "a Shopify bucket needs a capacity and a positive leak rate",
            ));
        }
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(Shared {
            clock,
            config,
            buckets: Mutex::new(HashMap::new()),
            recorder: recorder.clone(),
        });
        let router = Router::new()
            .route("/admin/api/{version}/{*rest}", any(handle))
            .with_state(shared);
        Ok(ShopifySim {
            running: Running::start(router, recorder).await?,
        })
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    Path((version, rest)): Path<(String, String)>,
    call: Call,
) -> Response {
    let mut record = call.seen(&s.clock);
    let Call {
        method,
        headers,
        body,
        ..
    } = call;
    let success = match method {
        Method::POST => 201,
        Method::GET | Method::PUT => 200,
        _ => {
            record.status = 405;
            s.recorder.record(record, false);
            return answer(405, &[], r#"{"errors":"Not Found"}"#.to_owned());
        }
    };
    let shop = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let poured = s
        .buckets
        .lock()
        .expect("shopify buckets poisoned")
        .entry(shop)
        .or_insert_with(|| LeakyBucket::new(s.config))
        .pour(record.at_ms);
    let capacity = s.config.capacity;
    let (status, used, text) = match poured {
        Ok(used) => {
            let echo: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let text = json!({"api_version": version, "resource": rest, "received": echo});
            (success, used, text.to_string())
        }
        Err(used) => (429, used, THROTTLED_BODY.to_owned()),
    };
    let mut out = vec![(
        "x-shopify-shop-api-call-limit",
        format!("{used}/{capacity}"),
    )];
    if status == 429 {
        out.push(("retry-after", "2.0".to_owned()));
    }
    record.status = status;
    s.recorder.record(record, status == 429);
    answer(status, &out, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn a_burst_fills_the_bucket_then_it_refuses() {
        let mut b = LeakyBucket::new(ShopifyConfig::default());
        for i in 1..=40 {
            assert_eq!(b.pour(T0), Ok(i));
        }
        assert_eq!(b.pour(T0), Err(40));
        assert_eq!(b.pour(T0 + 499), Err(40), "not a whole slot leaked yet");
    }

    #[test]
    fn the_bucket_leaks_two_a_second() {
        let mut b = LeakyBucket::new(ShopifyConfig::default());
        for _ in 0..40 {
            b.pour(T0).unwrap();
        }
        assert_eq!(b.pour(T0 + 500), Ok(40), "one slot leaked in 500 ms");
        assert_eq!(b.pour(T0 + 500), Err(40));
        // Ten seconds idle: 20 leaked.
        assert_eq!(b.pour(T0 + 10_500), Ok(21));
        // Long idle: empty, never negative.
        assert_eq!(b.pour(T0 + 3_600_000), Ok(1));
    }

    #[test]
    fn steady_requests_at_the_leak_rate_never_overflow() {
        let mut b = LeakyBucket::new(ShopifyConfig {
            capacity: 4,
            leak_per_s: 2.0,
        });
        for i in 0..100 {
            assert!(b.pour(T0 + i * 500).is_ok(), "request {i}");
        }
        assert!(b.used() <= 1);
    }

    #[test]
    fn a_clock_going_back_leaks_nothing() {
        let mut b = LeakyBucket::new(ShopifyConfig::default());
        b.pour(T0).unwrap();
        assert_eq!(b.pour(T0 - 10_000), Ok(2));
    }

    #[tokio::test]
    async fn a_burst_over_the_bucket_gets_shopifys_429() {
        let clock = Clock::manual(T0);
        let sim = ShopifySim::start(
            clock.clone(),
            ShopifyConfig {
                capacity: 3,
                leak_per_s: 2.0,
            },
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/admin/api/2024-07/inventory_levels/set.json", sim.url());
        let mut last = None;
        for _ in 0..4 {
            last = Some(
                http.post(&url)
                    .header("x-shopify-access-token", "shop-a")
                    .header("idempotency-key", "k1")
                    .body(r#"{"inventory_item_id":1,"available":5}"#)
                    .send()
                    .await
                    .unwrap(),
            );
        }
        let r = last.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2.0");
        assert_eq!(r.headers()["x-shopify-shop-api-call-limit"], "3/3");
        assert_eq!(r.text().await.unwrap(), THROTTLED_BODY);

        // Another shop has its own bucket; time heals the first.
        let other = http
            .get(&url)
            .header("x-shopify-access-token", "shop-b")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
        assert_eq!(other.headers()["x-shopify-shop-api-call-limit"], "1/3");
        clock.advance(500);
        let healed = http
            .post(&url)
            .header("x-shopify-access-token", "shop-a")
            .send()
            .await
            .unwrap();
        assert_eq!(healed.status(), 201);
        assert_eq!(healed.headers()["x-shopify-shop-api-call-limit"], "3/3");

        let c = sim.counters();
        assert_eq!((c.requests, c.ok, c.throttled), (6, 5, 1));
        let seen = sim.seen();
        assert_eq!(seen[0].idempotency_key.as_deref(), Some("k1"));
        assert_eq!(seen[3].status, 429);
        assert_eq!(seen[5].at_ms, T0 + 500);
        sim.stop();
    }
}
