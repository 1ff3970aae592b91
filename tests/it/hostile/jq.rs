//! jq at the edge and in delivery, against the real app: a body nested
//! deeper than any stack is refused and ferry lives on; a slow
//! `ordering_key` runs off the async runtime, so `/healthz` answers while it
//! runs (a current-thread runtime here: a program on it would hold it), and
//! is stopped at its deadline with 422; a batch body past its deadline makes
//! its deliveries dead with class `mapping`.

use crate::common::*;
use reqwest::Method;

fn keyed_routes() -> Options {
    Options {
        extra: r#"
[routes.updates]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "erp", path = "/stock", ordering_key = ".sku" }

[routes.slow]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "erp", path = "/stock", ordering_key = "last(range(1e12)) | tostring" }

[routes.spinning]
source = { kind = "api", credentials = ["erp_client"] }
destination = { system = "erp", path = "/items", batch = { max_items = 8, path = "/items/batch", body = "last(range(infinite))" } }
"#
        .into(),
        ..Default::default()
    }
}

async fn healthz(t: &TestApp) -> reqwest::StatusCode {
    t.http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_body_nested_7000_deep_is_refused_and_ferry_lives_on() {
    let t = TestApp::spawn_with(keyed_routes()).await;
    let deep = format!("{}{}", r#"{"sku":"#.repeat(7000), "}".repeat(7000));
    assert!(deep.len() < 60_000);
    let r = t
        .signed("updates", "evt_deep", &deep, t.now_s(), WHSEC)
        .await;
    let status = r.status().as_u16();
    assert!(status == 400 || status == 422, "{status}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{status}"
    );
    assert_eq!(healthz(&t).await, 200);
    assert_eq!(t.stats("updates").await.pending(), 0, "nothing was stored");
    let ok = t
        .signed("updates", "evt_ok", r#"{"sku":"A"}"#, t.now_s(), WHSEC)
        .await;
    assert_eq!(ok.status(), 202);
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ferry_jq_stuck_total"), "{metrics}");
}

#[tokio::test]
async fn a_slow_ordering_key_holds_no_runtime_thread_and_is_stopped() {
    let t = std::sync::Arc::new(TestApp::spawn_with(keyed_routes()).await);
    let pool = ferry::transform::pool::global();
    let slow = {
        let t = t.clone();
        tokio::spawn(async move {
            t.signed("slow", "evt_slow", r#"{"sku":"A"}"#, t.now_s(), WHSEC)
                .await
        })
    };
    // Until the program is running on the pool.
    eventually(
        "the program runs on the pool",
        std::time::Duration::from_secs(10),
        async || {
            assert!(!slow.is_finished(), "the request ended before jq started");
            pool.running() > 0
        },
    )
    .await;
    assert_eq!(healthz(&t).await, 200);
    assert!(
        !slow.is_finished(),
        "/healthz answered only after the jq request"
    );
    let r = slow.await.unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert!(
        p["detail"].as_str().unwrap().contains("ran longer than 1s"),
        "{p}"
    );
    assert_eq!(healthz(&t).await, 200);
}

#[tokio::test]
async fn a_batch_body_past_its_deadline_is_dead_with_class_mapping() {
    let t = TestApp::spawn_with(keyed_routes()).await;
    let r = t
        .http
        .post(format!("{}/api/v1/routes/spinning/bulk", t.base))
        .bearer_auth(ERP_KEY)
        .body("{\"n\":1}\n{\"n\":2}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    drive(&t, "erp", async || t.stats("spinning").await.pending() == 0).await;
    let stats = t.stats("spinning").await;
    assert_eq!((stats.delivered, stats.dead), (0, 2));
    assert!(t.receiver.received().is_empty(), "nothing was sent");
    let dead = t
        .admin_json(Method::GET, "/messages?state=dead&route=spinning", None)
        .await;
    assert_eq!(dead["messages"][0]["last_class"], "mapping");
    let why = dead["messages"][0]["last_explanation"].as_str().unwrap();
    assert!(why.contains("ran longer than"), "{why}");
}
