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

/// A route that names its orders' entity for auto-resolve.
const ENTITY_ROUTE: &str = r#"
[routes.updates]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "erp", path = "/orders", entity_key = ".order" }
"#;

#[tokio::test]
async fn a_delivered_update_supersedes_the_dead_ones_of_its_order() {
    let t = TestApp::spawn_with(Options {
        extra: ENTITY_ROUTE.into(),
        ..Default::default()
    })
    .await;
    let ts = t.now_s();
    t.receiver
        .push((0..3).map(|_| Reply::status(422).body("stale")));
    for i in 0..3 {
        let body = format!(r#"{{"order":"ORD-1","rev":{i}}}"#);
        assert_eq!(
            t.signed("updates", &format!("u{i}"), &body, ts, WHSEC)
                .await
                .status(),
            202
        );
        // One at a time: each update is dead before the next arrives.
        t.drain().await;
    }
    let other = r#"{"order":"ORD-2","rev":0}"#;
    t.receiver.push([Reply::status(422).body("stale")]);
    assert_eq!(
        t.signed("updates", "o2", other, ts, WHSEC).await.status(),
        202
    );
    t.drain().await;
    assert_eq!(t.stats("updates").await.dead, 4);
    let groups: Value = t
        .admin_json(Method::GET, "/failures?route=updates", None)
        .await;
    assert_eq!(groups["groups"][0]["count"], 4);

    t.clock.advance(1_000);
    let body = r#"{"order":"ORD-1","rev":3}"#;
    assert_eq!(
        t.signed("updates", "u3", body, ts, WHSEC).await.status(),
        202
    );
    t.drain().await;

    let stats = t.stats("updates").await;
    assert_eq!((stats.delivered, stats.superseded, stats.dead), (1, 3, 1));
    let list: Value = t
        .admin_json(
            Method::GET,
            "/messages?state=superseded&route=updates",
            None,
        )
        .await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 3, "{list:#}");
    let groups: Value = t
        .admin_json(Method::GET, "/failures?route=updates", None)
        .await;
    assert_eq!(
        groups["groups"][0]["count"], 1,
        "the open list keeps ORD-2 only"
    );
}

#[tokio::test]
async fn a_group_is_resolved_with_an_audit_and_retried_with_a_preview() {
    let t = TestApp::spawn().await;
    t.receiver.push((0..4).map(answer));
    ingest_many(&t, "orders", "evt", 4).await;
    t.drain().await;
    // Messages 0 and 3 share the unknown-SKU cause.
    let list: Value = t.admin_json(Method::GET, "/failures", None).await;
    let skus = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["count"] == 2)
        .expect("the SKU group")
        .clone();
    let key = skus["key"].as_str().unwrap();

    // The failures end at the manual clock plus their attempts' duration.
    t.clock.advance(1_000);
    let path = format!("/failures/{key}/status");
    let bad = t
        .admin(Method::POST, &path)
        .json(&serde_json::json!({"status": "closed"}));
    assert_eq!(problem(bad.send().await.unwrap()).await.0, 400);
    let body = serde_json::json!({"status": "resolved", "note": "SKUs added", "actor": "ana"});
    let g: Value = t.admin_json(Method::POST, &path, Some(body)).await;
    assert_eq!(
        (g["status"].as_str(), g["mark"]["actor"].as_str()),
        (Some("resolved"), Some("ana"))
    );
    let open: Value = t.admin_json(Method::GET, "/failures", None).await;
    assert_eq!(
        open["groups"].as_array().unwrap().len(),
        2,
        "resolved leaves the open list"
    );
    let resolved: Value = t
        .admin_json(Method::GET, "/failures?status=resolved", None)
        .await;
    assert_eq!(resolved["groups"][0]["key"], key);
    let audit: Value = t.admin_json(Method::GET, "/audit", None).await;
    assert_eq!(audit["audit"][0]["action"], "group_status");
    assert_eq!(audit["audit"][0]["detail"], "resolved: SKUs added");

    let retry = format!("/failures/{key}/retry");
    let preview: Value = t
        .admin_json(
            Method::POST,
            &retry,
            Some(serde_json::json!({"dry_run": true})),
        )
        .await;
    assert_eq!(preview["matched"], 2);
    assert_eq!(t.stats("orders").await.dead, 4, "a preview changes nothing");
    let done: Value = t
        .admin_json(Method::POST, &retry, Some(serde_json::json!({})))
        .await;
    assert_eq!(done["requeued"], 2);
    t.drain().await;
    let stats = t.stats("orders").await;
    assert_eq!((stats.delivered, stats.dead), (2, 2));
    let discard = format!("/failures/{key}/discard");
    let none = t
        .admin(Method::POST, &discard)
        .json(&serde_json::json!({"reason": ""}));
    assert_eq!(problem(none.send().await.unwrap()).await.0, 400);
}

#[test]
fn the_cli_lists_shows_marks_and_retries_groups() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Two messages dead of one cause in the store the CLI will open.
    let key = rt.block_on(async {
        let store = ferry::store::Store::open_sqlite(&dir.path().join("data")).unwrap();
        let t = TestApp::spawn_with(Options {
            store: Some(store.clone()),
            ..Default::default()
        })
        .await;
        t.receiver.push([answer(0), answer(3)]);
        ingest_many(&t, "orders", "evt", 2).await;
        t.drain().await;
        let groups = store.failure_groups(&Default::default()).await.unwrap();
        assert_eq!(groups.len(), 1);
        t.shutdown.cancel();
        groups[0].key.clone()
    });
    let ferry = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .envs(secrets())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = ferry(&["failures", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&key) && out.contains("unknown sku #"),
        "{out}"
    );
    let (ok, out, _) = ferry(&["failures", "list", "--json", "--class", "rejected"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert!(ok && json[0]["count"] == 2, "{out}");
    let (ok, _, err) = ferry(&["failures", "list", "--status", "closed"]);
    assert!(!ok && err.contains("status `closed`"), "{err}");
    let (ok, out, _) = ferry(&["failures", "show", &key]);
    assert!(ok && out.contains("\"samples\""), "{out}");
    let (ok, _, err) = ferry(&["failures", "show", "nope"]);
    assert!(!ok && err.contains("no failure group nope"), "{err}");

    let (ok, out, err) = ferry(&["groups", "ack", &key, "--note", "on it", "--actor", "ana"]);
    assert!(ok && out.contains("acknowledged"), "{err}");
    let (ok, out, _) = ferry(&["failures", "list", "--status", "acknowledged"]);
    assert!(ok && out.contains(&key), "{out}");
    let (ok, out, _) = ferry(&["groups", "retry", &key, "--dry-run"]);
    assert!(
        ok && out.starts_with("2 message(s) would be retried"),
        "{out}"
    );
    let (ok, _, err) = ferry(&["groups", "discard", &key]);
    assert!(!ok && err.contains("--reason"), "{err}");
    let (ok, out, _) = ferry(&["groups", "retry", &key]);
    assert!(ok && out.starts_with("2 message(s) requeued"), "{out}");
    let (ok, _, err) = ferry(&["groups", "resolve", &key]);
    assert!(
        !ok && err.contains("no failure group"),
        "retried: nothing is dead: {err}"
    );
}
