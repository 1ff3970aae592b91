//! Per-entity order (`ordering_key`): updates to one entity reach the
//! destination in arrival order, entities in parallel, and a dead update
//! holds back only its own entity until an operator skips it (discards it,
//! or releases its key).

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

/// Releasing a blocked key through the admin API: the dead update of K1 is
/// discarded with the operator's reason (a dry run counts it first), the
/// later updates of K1 go in order, and the audit log names the operator's
/// token, `release-key` and `updates/K1`. A viewer may not; an unknown route
/// is a 404 problem.
#[tokio::test]
async fn releasing_a_blocked_key_lets_its_later_updates_go() {
    use ferry::store::{Account, AccountKind, Role};
    let t = Arc::new(TestApp::spawn_with(ordered_route()).await);
    t.receiver.set_responder(Arc::new(|r: &Received| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if v["sku"] == "K1" && v["seq"] == 1 {
            Reply::status(422).body(r#"{"error":"unknown warehouse"}"#)
        } else {
            Reply::status(200)
        }
    }));
    send_updates(&t, 2, 5).await;
    drain(&t).await;
    let stats = t.stats("updates").await;
    assert_eq!((stats.delivered, stats.dead, stats.queued), (6, 1, 3));

    let release = |key: &str, body: Option<serde_json::Value>| {
        let req = t.admin(
            Method::POST,
            &format!("/routes/updates/ordering-keys/{key}/release"),
        );
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
    };
    let dry = release("K1", Some(serde_json::json!({ "dry_run": true })))
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status(), 200);
    let dry: serde_json::Value = dry.json().await.unwrap();
    assert_eq!(dry, serde_json::json!({ "released": 1, "dry_run": true }));
    assert_eq!(
        t.stats("updates").await.dead,
        1,
        "a dry run changes nothing"
    );

    // A viewer reads but does not act.
    let viewer = Account {
        name: "dashboard".into(),
        role: Role::Viewer,
        created_ms: T0,
        created_by: "test".into(),
    };
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"viewer-token"));
    assert!(
        t.store
            .add_account(AccountKind::Token, viewer, &sha)
            .await
            .unwrap()
    );
    let r = t
        .http
        .post(format!(
            "{}/admin/api/v1/routes/updates/ordering-keys/K1/release",
            t.base
        ))
        .bearer_auth("viewer-token")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 403);
    let r = t
        .admin(Method::POST, "/routes/nope/ordering-keys/K1/release")
        .send()
        .await
        .unwrap();
    let (status, p) = problem(r).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (404, Some("urn:ferry:problem:not-found"))
    );

    let reason = "warehouse retired; stock corrected by hand";
    let r = release("K1", Some(serde_json::json!({ "reason": reason })))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: serde_json::Value = r.json().await.unwrap();
    assert_eq!(r, serde_json::json!({ "released": 1 }));
    drain(&t).await;
    let got = per_key(&seen(&t));
    assert_eq!(got["K1"], [0, 1, 2, 3, 4], "the rest of K1, in order");
    let stats = t.stats("updates").await;
    assert_eq!((stats.delivered, stats.dead, stats.queued), (9, 0, 0));

    let audit = t.admin_json(Method::GET, "/audit", None).await;
    let entry = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "release-key")
        .unwrap_or_else(|| panic!("no release-key entry: {audit}"))
        .clone();
    assert_eq!(entry["target"], "updates/K1", "{entry}");
    assert_eq!(entry["actor"], "admin-token", "{entry}");
    assert!(
        entry["detail"].as_str().unwrap().contains(reason),
        "{entry}"
    );
    // Nothing is left to release; no body takes the default reason.
    let again: serde_json::Value = release("K1", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, serde_json::json!({ "released": 0 }));
}

/// `ferry messages release-key` on the store the config names: a dry run
/// counts, the release discards the key's dead message and audits it under
/// `--actor`; a key with nothing dead is an error.
#[tokio::test]
async fn ferry_messages_release_key_releases_from_the_cli() {
    use ferry::store::{AttemptRecord, NewMessage, Next, State, Store};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    let text = config_text("http://127.0.0.1:9", &ordered_route());
    std::fs::write(&cfg, text).unwrap();
    {
        let store = Store::open_sqlite(&dir.path().join("data")).unwrap();
        for id in ["m1", "m2"] {
            let msg = NewMessage {
                id: id.into(),
                route: "updates".into(),
                system: "erp".into(),
                received_ms: T0,
                event_id: None,
                headers: "{}".into(),
                body: bytes::Bytes::from_static(br#"{"sku":"A 1"}"#),
                delivery_key: format!("ferry-{id}"),
                dedupe: None,
                idempotency: None,
                ordering_key: Some("A 1".into()),
                entity_key: None,
                job_id: None,
            };
            store.accept(msg).await.unwrap();
        }
        let c = store.claim("erp", T0, 30_000, 10).await.unwrap();
        assert_eq!(c.len(), 1, "m2 waits behind m1");
        let rec = AttemptRecord {
            delivery_id: c[0].delivery_id,
            lease_until: c[0].lease_until,
            started_ms: T0,
            duration_ms: 1,
            request: Default::default(),
            response: None,
            class: Some(ferry::model::ErrorClass::Rejected),
            explanation: "erp rejected it".into(),
            hint: "fix it".into(),
            next: Next::Dead,
            failure_group: None,
        };
        assert!(store.record(rec).await.unwrap());
    }
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["messages", "release-key", "--route", "updates"])
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .envs(secrets())
            .output()
            .unwrap()
    };
    let out = run(&["--key", "A 1", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 dead message(s) would be"), "{stdout}");
    let out = run(&["--key", "A 1", "--reason", "sku retired", "--actor", "ana"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--key", "A 1"]);
    assert_eq!(out.status.code(), Some(1), "nothing dead is left");
    let store = Store::open_sqlite(&dir.path().join("data")).unwrap();
    let m1 = store.message("m1").await.unwrap().unwrap();
    assert_eq!(m1.summary.state, State::Discarded);
    assert_eq!(m1.discard_reason.as_deref(), Some("sku retired"));
    let audit = store.audit_log(5).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "release-key" && a.actor == "ana" && a.target == "updates/A 1"),
        "{audit:?}"
    );
    let next = store.claim("erp", T0 + 1_000, 30_000, 10).await.unwrap();
    assert_eq!(next[0].message_id, "m2", "the key moves on");
}
