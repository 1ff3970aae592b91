//! Export of a filtered message list: every matching message (across pages
//! read by keyset), as CSV with formulas defused or as NDJSON, over the
//! admin API and from the CLI.

use std::collections::HashSet;

use futures_util::StreamExt;
use reqwest::Method;

use crate::common::*;

fn message(i: usize, route: &str) -> ferry::store::NewMessage {
    ferry::store::NewMessage {
        id: format!("m{i:05}").into(),
        route: route.into(),
        system: "erp".into(),
        received_ms: T0 + i as i64,
        event_id: Some(if i == 7 {
            "=HYPERLINK(\"x\")".into()
        } else {
            format!("evt,{i}")
        }),
        headers: "{}".into(),
        body: bytes::Bytes::from_static(b"{}"),
        delivery_key: format!("k{i}"),
        dedupe: None,
        idempotency: None,
        ordering_key: None,
        entity_key: None,
        job_id: None,
    }
}

#[tokio::test]
async fn an_export_holds_every_matching_message_across_pages() {
    let t = TestApp::spawn().await;
    let n = 2_345;
    futures_util::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let store = t.store.clone();
            let route = if i % 5 == 0 { "gh" } else { "orders" };
            async move {
                store.accept(message(i, route)).await.unwrap();
            }
        })
        .await;
    let csv = t
        .admin(Method::GET, "/messages/export?format=csv&route=orders")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(rows[0].starts_with("id,route,system,state,received"));
    let ids: HashSet<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), n - n.div_ceil(5), "every orders message once");
    assert!(
        rows.iter().any(|r| r.contains(r#""evt,1""#)),
        "a comma is quoted"
    );
    assert!(
        rows.iter().any(|r| r.contains(r#""'=HYPERLINK(""x"")""#)),
        "a formula is defused"
    );

    let nd = t
        .admin(Method::GET, "/messages/export?format=ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    assert_eq!(lines[0]["id"], format!("m{:05}", n - 1), "newest first");
    assert_eq!(lines[0]["state"], "queued");

    let (status, p) = problem(
        t.admin(Method::GET, "/messages/export?format=xls")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{p}");
}

#[tokio::test]
async fn ferry_messages_export_writes_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    {
        let store = ferry::store::Store::open_sqlite(&dir.path().join("data")).unwrap();
        for i in 0..1_200 {
            store.accept(message(i, "orders")).await.unwrap();
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["messages", "export", "--format", "ndjson", "--config"])
        .arg(&cfg)
        .envs(secrets())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1_200);
}
