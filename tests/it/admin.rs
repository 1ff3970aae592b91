//! The operators' side: admin API (list, show, retry one, retry by filter with
//! a dry run, discard, audit) and the CLI acting on the same store.

use crate::common::*;
use ferry::sim::receiver::Reply;
use ferry::store::State;
use reqwest::Method;
use serde_json::{Value, json};

async fn dead_messages(t: &TestApp, n: usize) -> Vec<String> {
    t.receiver
        .push((0..n).map(|_| Reply::status(422).body("bad")));
    for i in 0..n {
        assert_eq!(t.webhook(&format!("evt_{i}"), "{}").await.status(), 202);
    }
    t.drain().await;
    let list: Value = t
        .admin_json(Method::GET, "/messages?state=dead", None)
        .await;
    let ids: Vec<String> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n);
    ids
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let t = TestApp::spawn().await;
    let resp = t
        .http
        .get(format!("{}/admin/api/v1/messages", t.base))
        .send()
        .await
        .unwrap();
    let (status, _) = problem(resp).await;
    assert_eq!(status, 401);
    let resp = t
        .http
        .get(format!("{}/admin/api/v1/messages", t.base))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn show_gives_the_attempt_timeline() {
    let t = TestApp::spawn().await;
    let id = dead_messages(&t, 1).await.remove(0);
    let m: Value = t
        .admin_json(Method::GET, &format!("/messages/{id}"), None)
        .await;
    assert_eq!(m["state"], "dead");
    assert_eq!(m["last_class"], "rejected");
    assert_eq!(m["attempts"][0]["response"]["status"], 422);
    assert_eq!(m["attempts"][0]["request"]["method"], "POST");
    let missing = t.admin(Method::GET, "/messages/nope").send().await.unwrap();
    assert_eq!(problem(missing).await.0, 404);
}

#[tokio::test]
async fn a_manual_retry_redelivers_with_the_same_key_and_is_audited() {
    let t = TestApp::spawn().await;
    let id = dead_messages(&t, 1).await.remove(0);
    let first_key = t.receiver.received()[0]
        .idempotency_key()
        .unwrap()
        .to_owned();
    let resp = t
        .admin(Method::POST, &format!("/messages/{id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    t.drain().await;
    let got = t.receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].idempotency_key().unwrap(),
        first_key,
        "a replay carries the original key"
    );
    assert_eq!(
        t.store.message(&id).await.unwrap().unwrap().summary.state,
        State::Delivered
    );
    let audit: Value = t.admin_json(Method::GET, "/audit", None).await;
    assert_eq!(audit["audit"][0]["action"], "retry");
    assert_eq!(audit["audit"][0]["target"], id.as_str());
    // A delivered message in flight cannot be retried twice at once; an unknown one is 404.
    assert_eq!(
        t.admin(Method::POST, "/messages/nope/retry")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn bulk_retry_by_filter_with_a_dry_run_count() {
    let t = TestApp::spawn().await;
    dead_messages(&t, 3).await;
    let dry: Value = t
        .admin_json(
            Method::POST,
            "/messages/retry",
            Some(json!({ "route": "orders", "class": "rejected", "dry_run": true })),
        )
        .await;
    assert_eq!(dry["matched"], 3);
    assert_eq!(t.stats("orders").await.dead, 3, "a dry run changes nothing");
    let done: Value = t
        .admin_json(
            Method::POST,
            "/messages/retry",
            Some(json!({ "route": "orders", "state": "dead" })),
        )
        .await;
    assert_eq!(done["requeued"], 3);
    t.drain().await;
    assert_eq!(t.stats("orders").await.delivered, 3);
    let bad = t
        .admin(Method::POST, "/messages/retry")
        .json(&json!({ "state": "sleeping" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad).await.0, 400);
}

#[tokio::test]
async fn bulk_discard_by_filter_with_a_reason_and_a_dry_run_count() {
    let t = TestApp::spawn().await;
    dead_messages(&t, 3).await;
    let no_reason = t
        .admin(Method::POST, "/messages/discard")
        .json(&json!({ "route": "orders", "reason": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(no_reason).await.0, 400);
    let dry: Value = t
        .admin_json(
            Method::POST,
            "/messages/discard",
            Some(json!({ "route": "orders", "reason": "cancelled", "dry_run": true })),
        )
        .await;
    assert_eq!(dry["matched"], 3);
    assert_eq!(t.stats("orders").await.dead, 3, "a dry run changes nothing");
    let done: Value = t
        .admin_json(
            Method::POST,
            "/messages/discard",
            Some(json!({ "route": "orders", "state": "dead", "reason": "cancelled" })),
        )
        .await;
    assert_eq!(done["discarded"], 3);
    let stats = t.stats("orders").await;
    assert_eq!((stats.dead, stats.discarded), (0, 3));
    let audit: Value = t.admin_json(Method::GET, "/audit", None).await;
    assert_eq!(audit["audit"][0]["action"], "discard");
    assert_eq!(
        audit["audit"][0]["detail"],
        "3 message(s) discarded: cancelled"
    );
}

#[tokio::test]
async fn discard_needs_a_reason_and_stops_the_message() {
    let t = TestApp::spawn().await;
    let id = dead_messages(&t, 1).await.remove(0);
    let no_reason = t
        .admin(Method::POST, &format!("/messages/{id}/discard"))
        .json(&json!({ "reason": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(no_reason).await.0, 400);
    let ok = t
        .admin(Method::POST, &format!("/messages/{id}/discard"))
        .json(&json!({ "reason": "order cancelled in the ERP" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let m = t.store.message(&id).await.unwrap().unwrap();
    assert_eq!(m.summary.state, State::Discarded);
    assert_eq!(
        m.discard_reason.as_deref(),
        Some("order cancelled in the ERP")
    );
    let again = t
        .admin(Method::POST, &format!("/messages/{id}/discard"))
        .json(&json!({ "reason": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(again).await.0, 409);
    let routes: Value = t.admin_json(Method::GET, "/routes", None).await;
    assert_eq!(routes["routes"][0]["discarded"], 1);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let t = TestApp::spawn().await;
    assert_eq!(
        t.http
            .get(format!("{}/healthz", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        t.http
            .get(format!("{}/readyz", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    t.receiver.push([Reply::status(503)]);
    t.webhook("evt_m", "{}").await;
    ferry::app::upkeep(&t.app).await;
    let depth = r#"ferry_queue_depth{route="orders"}"#;
    assert!(
        t.metrics().await.contains(&format!("{depth} 1")),
        "one message queued"
    );
    t.step().await;
    t.clock.advance(10_000);
    t.step().await;
    t.store.maintain().await.unwrap();
    ferry::app::upkeep(&t.app).await;
    let metrics = t.metrics().await;
    for want in [
        &format!("{depth} 0") as &str,
        r#"ferry_received_total{route="orders"} 1"#,
        r#"ferry_retried_total{route="orders",class="server_error"} 1"#,
        r#"ferry_delivered_total{route="orders"} 1"#,
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }
}

#[test]
fn the_cli_lists_retries_and_discards_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Put one dead message in the store the CLI will open.
    let id = rt.block_on(async {
        let store = ferry::store::Store::open_sqlite(&dir.path().join("data")).unwrap();
        let id = "0190a0a0-0000-7000-8000-000000000001".to_owned();
        let msg = ferry::store::NewMessage {
            id: id.clone().into(),
            route: "orders".into(),
            system: "erp".into(),
            received_ms: T0,
            event_id: Some("e1".into()),
            headers: "{}".into(),
            body: bytes::Bytes::from_static(b"{}"),
            delivery_key: "ferry-k".into(),
            dedupe: None,
            idempotency: None,
            ordering_key: None,
            entity_key: None,
            job_id: None,
        };
        store.accept(msg).await.unwrap();
        id
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
    let (ok, out, err) = ferry(&["messages", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains(&id) && out.contains("queued"), "{out}");
    let (ok, out, _) = ferry(&["retry", "--state", "queued", "--dry-run"]);
    assert!(ok);
    assert!(
        out.contains('0'),
        "queued messages are not retryable by filter: {out}"
    );
    let (ok, _, err) = ferry(&["discard", &id, "--reason", "test data"]);
    assert!(ok, "{err}");
    let (ok, out, _) = ferry(&["messages", "show", &id]);
    assert!(ok);
    assert!(
        out.contains("\"discarded\"") && out.contains("test data"),
        "{out}"
    );
    let (ok, out, _) = ferry(&["retry", "--state", "discarded", "--dry-run"]);
    assert!(ok && out.starts_with("1 message"), "{out}");
    let (ok, _, err) = ferry(&["retry", &id]);
    assert!(ok, "{err}");
    let (ok, _, err) = ferry(&["discard", "nope", "--reason", "x"]);
    assert!(!ok && err.contains("no message nope"), "{err}");
}

#[tokio::test]
async fn an_unreadable_request_is_refused_with_a_problem() {
    let t = TestApp::spawn().await;
    for (body, ctype, status) in [
        ("{not json", "application/json", 400),
        (r#"{"dry_run":"yes"}"#, "application/json", 422),
        ("{}", "text/plain", 415),
    ] {
        let r = t
            .admin(Method::POST, "/messages/retry")
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let (got, p) = problem(r).await;
        assert_eq!(got, status, "{body}: {p}");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
    }
}
