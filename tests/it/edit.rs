//! Edit and replay through the admin API and the CLI: a message the ERP
//! refused is corrected and sent again with the edited payload under a new
//! idempotency key; the original stays, the audit log names who changed
//! what (a path-level diff), and bad edits are refused with a problem.

use ferry::sim::receiver::Reply;
use reqwest::Method;

use crate::common::*;

#[tokio::test]
async fn a_refused_message_is_edited_and_replayed() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(422).body(r#"{"error":"qty must be a number"}"#)]);
    let r = t
        .webhook("evt_1", r#"{"order":9007199254740993,"qty":"2"}"#)
        .await;
    assert_eq!(r.status(), 202);
    t.drain().await;
    let m = t.only_message().await;
    assert_eq!(m.summary.state, ferry::store::State::Dead);
    let id = m.summary.id.to_string();
    let original_key = t.receiver.received()[0]
        .idempotency_key()
        .unwrap()
        .to_owned();

    let edited = t
        .admin_json(
            Method::POST,
            &format!("/messages/{id}/edit"),
            Some(serde_json::json!({"note": "qty as a number", "body": {"order": 1}})),
        )
        .await;
    assert_eq!(edited["edited"], id.as_str(), "{edited}");
    // Numbers in the edit are kept as written: send the raw text.
    let r = t
        .admin(Method::POST, &format!("/messages/{id}/edit"))
        .header("content-type", "application/json")
        .body(r#"{"note":"qty as a number","body":{"order":9007199254740993,"qty":2.50}}"#)
        .send()
        .await
        .unwrap();
    // Queued by the first edit: not editable until it is sent.
    assert_eq!(r.status(), 409);
    t.drain().await;
    let second = t.receiver.received();
    assert_eq!(second.len(), 2);
    assert_eq!(second[1].body, r#"{"order": 1}"#.replace(' ', ""));
    assert_eq!(
        second[1].idempotency_key(),
        Some(format!("{original_key}.edit1").as_str())
    );

    // Delivered: a replay with another edit is allowed, with the next key.
    let r = t
        .admin(Method::POST, &format!("/messages/{id}/edit"))
        .header("content-type", "application/json")
        .body(r#"{"note":"qty as a number","body":{"order":9007199254740993,"qty":2.50}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.drain().await;
    let third = &t.receiver.received()[2];
    assert_eq!(third.body, r#"{"order":9007199254740993,"qty":2.50}"#);
    assert_eq!(
        third.idempotency_key(),
        Some(format!("{original_key}.edit2").as_str())
    );

    let m = t
        .admin_json(Method::GET, &format!("/messages/{id}"), None)
        .await;
    assert_eq!(
        m["body"], r#"{"order":9007199254740993,"qty":"2"}"#,
        "the original is kept"
    );
    assert_eq!(m["edits"], 2);
    let audit = t.admin_json(Method::GET, "/audit", None).await;
    let entries = audit["audit"].as_array().unwrap().clone();
    let edits: Vec<_> = entries.iter().filter(|e| e["action"] == "edit").collect();
    assert_eq!(edits.len(), 2, "{audit}");
    let detail = edits
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(detail.contains("qty as a number"), "{detail}");
    assert!(detail.contains("+ $.qty: 2.50"), "{detail}");
    assert!(detail.contains("$.order: 1 → 9007199254740993"), "{detail}");
}

#[tokio::test]
async fn bad_edits_are_refused_with_a_problem() {
    let t = TestApp::spawn().await;
    let (status, p) = problem(
        t.admin(Method::POST, "/messages/nope/edit")
            .json(&serde_json::json!({"body": {}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{p}");
    t.receiver.push([Reply::status(422)]);
    t.webhook("evt_2", r#"{"a":1}"#).await;
    t.drain().await;
    let id = t.only_message().await.summary.id.to_string();
    for bad in [r#"{"note":"x"}"#, "not json", r#"{"body": "#] {
        let r = t
            .admin(Method::POST, &format!("/messages/{id}/edit"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        let (status, p) = problem(r).await;
        assert_eq!(status, 400, "{bad}: {p}");
    }
    let huge = format!(r#"{{"body": {{"pad": "{}"}}}}"#, "x".repeat(5000));
    let r = t
        .admin(Method::POST, &format!("/messages/{id}/edit"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, p) = problem(r).await;
    assert_eq!(status, 400);
    assert!(p["detail"].as_str().unwrap().contains("max_body"), "{p}");
}

#[tokio::test]
async fn ferry_messages_edit_replays_from_the_cli() {
    use ferry::store::{AttemptRecord, Next, Store};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    {
        let store = Store::open_sqlite(&dir.path().join("data")).unwrap();
        let msg = ferry::store::NewMessage {
            id: "m1".into(),
            route: "stock".into(),
            system: "erp".into(),
            received_ms: T0,
            event_id: None,
            headers: "{}".into(),
            body: bytes::Bytes::from_static(br#"{"sku":"A","qty":"x"}"#),
            delivery_key: "ferry-m1".into(),
            dedupe: None,
            idempotency: None,
            ordering_key: None,
            entity_key: None,
            job_id: None,
        };
        store.accept(msg).await.unwrap();
        let c = store.claim("erp", T0, 30_000, 1).await.unwrap().remove(0);
        let rec = AttemptRecord {
            delivery_id: c.delivery_id,
            lease_until: c.lease_until,
            started_ms: T0,
            duration_ms: 1,
            request: Default::default(),
            response: None,
            class: Some(ferry::model::ErrorClass::Rejected),
            explanation: "erp rejected it".into(),
            hint: "edit and replay".into(),
            next: Next::Dead,
            failure_group: Some("g1".into()),
        };
        assert!(store.record(rec).await.unwrap());
    }
    let body = dir.path().join("fixed.json");
    std::fs::write(&body, r#"{"sku":"A","qty":3}"#).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .envs(secrets())
            .output()
            .unwrap()
    };
    let out = run(&[
        "messages",
        "edit",
        "m1",
        "--file",
        body.to_str().unwrap(),
        "--note",
        "qty fixed",
        "--actor",
        "ana",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ferry-m1.edit1"));
    std::fs::write(&body, "{not json").unwrap();
    let out = run(&["messages", "edit", "m1", "--file", body.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // `ferry audit` shows it, from the CLI.
    let out = run(&["audit", "--target", "m1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        (line["action"].as_str(), line["actor"].as_str()),
        (Some("edit"), Some("ana"))
    );
    assert_eq!(line["channel"], "cli");
    let table = run(&["audit"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("ana"));
    let store = Store::open_sqlite(&dir.path().join("data")).unwrap();
    let m = store.message("m1").await.unwrap().unwrap();
    assert_eq!(m.edited_body.as_deref(), Some(r#"{"sku":"A","qty":3}"#));
    let audit = store.audit_log(5).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "edit"
            && a.actor == "ana"
            && a.detail.contains("$.qty: \"x\" → 3 (string → number)")),
        "{audit:?}"
    );
}
