//! The console's actions over HTTP, as htmx sends them: edit and replay
//! (original kept, new downstream key, audited with the diff under the
//! user), a group retried and discarded with its count, a filter's preview,
//! a discard that needs a reason, and a group's status with its note.

use ferry::sim::receiver::Reply;
use ferry::store::Role;
use reqwest::StatusCode;

use super::*;

fn state_of(m: &ferry::store::MessageDetail) -> &'static str {
    m.summary.state.as_str()
}

#[tokio::test]
async fn an_edited_payload_is_replayed_under_a_new_key_and_audited() {
    let t = TestApp::spawn().await;
    t.receiver
        .push([Reply::status(422).body(r#"{"error":"unknown sku TEA-1"}"#)]);
    let id = stock_message(&t, r#"{"sku":"TEA-1","qty":3}"#).await;
    t.drain().await;
    let first_key = t.receiver.received()[0]
        .idempotency_key()
        .map(str::to_owned);
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    let bad = omar
        .act(
            &t,
            &format!("/console/messages/{id}/edit"),
            &[("body", "{not json")],
        )
        .await;
    let (status, p) = problem(bad).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (400, Some("urn:ferry:problem:bad-payload"))
    );
    let r = omar
        .act(
            &t,
            &format!("/console/messages/{id}/edit"),
            &[
                ("body", r#"{"sku":"TEA-01","qty":3}"#),
                ("note", "SKU renamed"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let to = r.headers()["hx-redirect"].to_str().unwrap();
    assert!(
        to.starts_with(&format!("/console/messages/{id}?done=")),
        "{to}"
    );
    t.drain().await;
    let m = t.store.message(&id).await.unwrap().unwrap();
    assert_eq!(state_of(&m), "delivered");
    let sent = t.receiver.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(&sent[1].body[..], br#"{"sku":"TEA-01","qty":3}"#);
    assert_ne!(
        sent[1].idempotency_key().map(str::to_owned),
        first_key,
        "a new key"
    );
    let page = omar.page(&t, &format!("/console/messages/{id}")).await;
    assert!(
        page.contains("TEA-1") && page.contains("TEA-01"),
        "original and edit"
    );
    assert!(
        page.contains("SKU renamed"),
        "the note in the message's audit"
    );
    let audit = omar.page(&t, "/console/audit").await;
    assert!(audit.contains("omar") && audit.contains("edit"), "{audit}");
    // The audit log says where each action came from.
    let r = t
        .admin(reqwest::Method::POST, &format!("/messages/{id}/retry"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.status());
    let log: serde_json::Value = t
        .admin(reqwest::Method::GET, "/audit")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let who: Vec<(String, String, String)> = log["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("action"), s("actor"), s("channel"))
        })
        .collect();
    let has = |a: &str, b: &str, c: &str| who.contains(&(a.into(), b.into(), c.into()));
    assert!(has("edit", "omar", "console"), "{who:?}");
    assert!(has("login", "omar", "console"), "{who:?}");
    assert!(has("retry", "admin-token", "api"), "{who:?}");
}

#[tokio::test]
async fn a_group_is_previewed_retried_discarded_and_marked() {
    let t = TestApp::spawn().await;
    t.receiver
        .set_default(Reply::status(422).body(r#"{"error":"unknown sku"}"#));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(stock_message(&t, &format!(r#"{{"sku":"S-{i}","qty":1}}"#)).await);
    }
    t.drain().await;
    let groups = t.store.failure_groups(&Default::default()).await.unwrap();
    assert_eq!(groups.len(), 1);
    let key = groups[0].key.clone();
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    let page = omar.page(&t, &format!("/console/failures/{key}")).await;
    assert!(page.contains("Retry 3 messages"), "{page}");
    // The list's filter preview counts before acting.
    let preview = omar
        .act(
            &t,
            "/console/messages/retry",
            &[("state", "dead"), ("dry_run", "on")],
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview = preview.text().await.unwrap();
    assert!(preview.contains("Retry 3 messages"), "{preview}");
    for id in &ids {
        assert_eq!(
            state_of(&t.store.message(id).await.unwrap().unwrap()),
            "dead"
        );
    }
    // The group's retry acts on all three.
    let r = omar
        .act(&t, &format!("/console/failures/{key}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["hx-redirect"].to_str().unwrap().contains("n=3"));
    for id in &ids {
        assert_eq!(
            state_of(&t.store.message(id).await.unwrap().unwrap()),
            "queued"
        );
    }
    t.drain().await;
    t.clock.advance(1_000);
    let r = omar
        .act(
            &t,
            &format!("/console/failures/{key}/status"),
            &[("status", "resolved"), ("note", "catalogue fixed")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let group = t.store.failure_group(&key).await.unwrap().unwrap();
    assert_eq!(
        group.status.as_str(),
        "resolved",
        "{group:?} now {}",
        t.clock.now_ms()
    );
    assert_eq!(group.count, 3, "a mark keeps its messages");
    let page = omar.page(&t, &format!("/console/failures/{key}")).await;
    assert!(
        page.contains("catalogue fixed") && page.contains("omar"),
        "{page}"
    );
    // A discard needs a reason.
    let (status, _) = problem(
        omar.act(&t, &format!("/console/failures/{key}/discard"), &[])
            .await,
    )
    .await;
    assert_eq!(status, 400);
    let r = omar
        .act(
            &t,
            &format!("/console/failures/{key}/discard"),
            &[("reason", "test orders")],
        )
        .await;
    assert!(r.headers()["hx-redirect"].to_str().unwrap().contains("n=3"));
    for id in &ids {
        assert_eq!(
            state_of(&t.store.message(id).await.unwrap().unwrap()),
            "discarded"
        );
    }
    let audit = omar.page(&t, "/console/audit").await;
    for action in ["retry", "discard", "group_status"] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
}

#[tokio::test]
async fn a_blocked_ordering_key_is_released_from_the_message_page() {
    let t = TestApp::spawn_with(Options {
        extra: r#"
[routes.ordered]
source = { kind = "api", credentials = ["erp_client"] }
destination = { system = "erp", path = "/stock", ordering_key = ".sku" }
"#
        .into(),
        ..Default::default()
    })
    .await;
    let send = |key: &'static str, body: &'static str| {
        t.http
            .post(format!("{}/api/v1/routes/ordered/messages", t.base))
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    t.receiver.push([Reply::status(422)]);
    let first: serde_json::Value = send("o-1", r#"{"sku":"K1","n":1}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t.drain().await;
    let second: serde_json::Value = send("o-2", r#"{"sku":"K1","n":2}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t.drain().await;
    let (first, second) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let state = |id: String| {
        let store = t.store.clone();
        async move {
            store
                .message(&id)
                .await
                .unwrap()
                .unwrap()
                .summary
                .state
                .as_str()
        }
    };
    assert_eq!(
        state(second.to_owned()).await,
        "queued",
        "held behind the dead one"
    );
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    let page = omar.page(&t, &format!("/console/messages/{first}")).await;
    assert!(page.contains("id=\"release-key\""), "{page}");
    let r = omar
        .act(
            &t,
            "/console/routes/ordered/ordering-keys/release",
            &[
                ("key", "K1"),
                ("message", first),
                ("reason", "superseded by hand"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()["hx-redirect"]
            .to_str()
            .unwrap()
            .contains("done=released&n=1")
    );
    t.drain().await;
    assert_eq!(state(first.to_owned()).await, "discarded");
    assert_eq!(state(second.to_owned()).await, "delivered");
    let audit = omar.page(&t, "/console/audit").await;
    assert!(
        audit.contains("release-key") && audit.contains("ordered/K1"),
        "{audit}"
    );
}
