//! Failures grouped by cause, through the real app: dead deliveries whose
//! downstream answers differ only in ids, SKUs and numbers land in one group
//! per cause, listed and shown by the admin API.

use crate::common::*;
use ferry::sim::receiver::Reply;
use reqwest::Method;
use serde_json::Value;

/// The downstream's answer for message `i`: one of three causes, each with
/// its own varying ids.
fn answer(i: usize) -> Reply {
    let body = match i % 3 {
        0 => format!(r#"{{"error":"unknown sku POT-{i}-{}"}}"#, i * 7),
        1 => format!(
            r#"{{"error":"customer C{i} is blocked since 2026-12-0{}"}}"#,
            i % 9
        ),
        _ => format!(
            r#"{{"error":"order 0190f2a4-8c1e-7c3a-9d2b-{:012x} has price {}.{} below minimum"}}"#,
            i,
            i,
            i % 100
        ),
    };
    Reply::status(422).body(&body)
}

#[tokio::test]
async fn five_hundred_dead_messages_of_three_causes_make_three_groups() {
    let t = TestApp::spawn().await;
    t.receiver.push((0..500).map(answer));
    ingest_many(&t, "orders", "evt", 500).await;
    t.drain().await;
    assert_eq!(t.stats("orders").await.dead, 500);

    let list: Value = t.admin_json(Method::GET, "/failures", None).await;
    let groups = list["groups"].as_array().unwrap();
    let mut counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![166, 167, 167], "{list:#}");
    let reasons: Vec<&str> = groups
        .iter()
        .map(|g| g["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&r#"erp rejected the message (422): {"error":"unknown sku #"}"#),
        "{reasons:?}"
    );
    for g in groups {
        assert_eq!(
            (g["route"].as_str(), g["system"].as_str()),
            (Some("orders"), Some("erp"))
        );
        assert_eq!(g["class"], "rejected");
        assert_eq!(g["samples"].as_array().unwrap().len(), 5);
        assert!(!g["hint"].as_str().unwrap().is_empty());
    }

    let key = groups[0]["key"].as_str().unwrap();
    let one: Value = t
        .admin_json(Method::GET, &format!("/failures/{key}"), None)
        .await;
    assert_eq!(one, groups[0]);
    let none = t
        .admin(Method::GET, "/failures/0000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(none).await.0, 404);
    let other: Value = t
        .admin_json(Method::GET, "/failures?system=crm", None)
        .await;
    assert_eq!(other["groups"].as_array().unwrap().len(), 0);
    let bad = t
        .admin(Method::GET, "/failures?class=weird")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad).await.0, 400);
}
