//! Per-entity order (`ordering_key`): updates to one entity reach the
//! destination in arrival order, entities in parallel, and a dead update
//! holds back only its own entity until an operator skips it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::*;
use ferry::deliver::Step;
use ferry::sim::receiver::{Received, Reply};
use reqwest::Method;

const KEYS: usize = 50;
const PER_KEY: usize = 20;

fn ordered_route() -> Options {
    Options {
        extra: r#"
[routes.updates]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "erp", path = "/stock", ordering_key = ".sku" }
"#
        .into(),
        ..Default::default()
    }
}

/// (sku, seq) of what the receiver saw, in arrival order.
fn seen(t: &TestApp) -> Vec<(String, u64)> {
    t.receiver
        .received()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (
                v["sku"].as_str().unwrap().to_owned(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn per_key(seen: &[(String, u64)]) -> BTreeMap<String, Vec<u64>> {
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, s) in seen {
        m.entry(k.clone()).or_default().push(*s);
    }
    m
}

/// One sender per key, each sending its updates one after another.
async fn send_updates(t: &Arc<TestApp>, keys: usize, per_key: usize) {
    let senders = (0..keys).map(|k| {
        let t = t.clone();
        tokio::spawn(async move {
            for seq in 0..per_key {
                let body = format!(r#"{{"sku":"K{k}","seq":{seq}}}"#);
                let id = format!("evt_{k}_{seq}");
                let r = t.signed("updates", &id, &body, t.now_s(), WHSEC).await;
                assert_eq!(r.status(), 202);
            }
        })
    });
    for s in futures_util::future::join_all(senders).await {
        s.unwrap();
    }
}

async fn drain(t: &TestApp) {
    while let Step::Worked(_) = t.step().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_arrive_in_order_per_key_and_a_dead_one_blocks_only_its_key() {
    let t = Arc::new(TestApp::spawn_with(ordered_route()).await);
    // K7's update 3 is refused for good; everything else is fine.
    t.receiver.set_responder(Arc::new(|r: &Received| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if v["sku"] == "K7" && v["seq"] == 3 {
            Reply::status(422).body(r#"{"error":"unknown warehouse"}"#)
        } else {
            Reply::status(200)
        }
    }));
    send_updates(&t, KEYS, PER_KEY).await;
    drain(&t).await;

    let got = per_key(&seen(&t));
    assert_eq!(got.len(), KEYS);
    for (key, seqs) in &got {
        let expected: Vec<u64> = if key == "K7" {
            (0..=3).collect()
        } else {
            (0..PER_KEY as u64).collect()
        };
        assert_eq!(seqs, &expected, "{key}: in arrival order, each once");
    }
    let stats = t.stats("updates").await;
    assert_eq!(
        (stats.delivered, stats.dead, stats.queued),
        (KEYS as u64 * PER_KEY as u64 - 17, 1, 16),
        "K7's later updates wait behind the dead one: {stats:?}"
    );
    // Visible: the dead one says what it holds up, the waiting ones carry the key.
    let dead = t
        .admin_json(Method::GET, "/messages?state=dead&route=updates", None)
        .await;
    let dead = &dead["messages"][0];
    assert_eq!(dead["ordering_key"], "K7");
    assert!(
        dead["last_hint"]
            .as_str()
            .unwrap()
            .contains("same ordering key wait behind"),
        "{dead}"
    );

    // The operator skips it: K7 resumes, in order.
    let id = dead["id"].as_str().unwrap();
    let r = t
        .admin(Method::POST, &format!("/messages/{id}/discard"))
        .json(&serde_json::json!({ "reason": "warehouse retired; stock corrected by hand" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drain(&t).await;
    let got = per_key(&seen(&t));
    assert_eq!(got["K7"], (0..PER_KEY as u64).collect::<Vec<_>>());
    let stats = t.stats("updates").await;
    assert_eq!(
        (stats.delivered, stats.queued),
        (KEYS as u64 * PER_KEY as u64 - 1, 0)
    );
}

#[tokio::test]
async fn a_body_without_the_ordering_key_is_refused_and_nothing_is_stored() {
    let t = TestApp::spawn_with(ordered_route()).await;
    let r = t
        .signed("updates", "evt_x", r#"{"qty":3}"#, t.now_s(), WHSEC)
        .await;
    let (status, problem) = problem(r).await;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "urn:ferry:problem:ordering-key");
    assert!(
        problem["detail"].as_str().unwrap().contains(".sku"),
        "{problem}"
    );
    assert_eq!(t.total_messages().await, 0);
}

/// The same with the real worker loops on the system clock: a delivered
/// update wakes the loop for the next one of its key, so a key's updates
/// follow each other without waiting for an idle poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_loops_keep_per_key_order() {
    const KEYS: usize = 10;
    const PER_KEY: usize = 20;
    let mut opts = ordered_route();
    opts.workers = true;
    let t = Arc::new(TestApp::spawn_with(opts).await);
    send_updates(&t, KEYS, PER_KEY).await;
    // A generous bound only keeps a broken build from hanging.
    for _ in 0..600 {
        if t.stats("updates").await.delivered as usize == KEYS * PER_KEY {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = per_key(&seen(&t));
    assert_eq!(got.len(), KEYS);
    for (key, seqs) in &got {
        assert_eq!(seqs, &(0..PER_KEY as u64).collect::<Vec<_>>(), "{key}");
    }
    t.shutdown.cancel();
}
