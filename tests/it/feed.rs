//! The ERP failure feed (issue "Failures where operators already work"),
//! through the real app: `GET /api/v1/failures` with a client key shows
//! only the failure groups of the API routes that take its credential,
//! each with its dead messages; `POST /api/v1/failures/{id}/retry` retries
//! one of its dead messages or a whole group of its routes, audited as the
//! client; anything of another client's routes is a 404.

use crate::common::*;
use ferry::sim::receiver::Reply;
use serde_json::Value;

/// Two API routes of two ERP clients: `prices` takes client A's key,
/// `customers` client B's.
pub fn two_clients() -> Options {
    Options {
        credentials: "a_client = { env = \"A_KEY\" }\nb_client = { env = \"B_KEY\" }".into(),
        extra: r#"
[routes.prices]
source = { kind = "api", credentials = ["a_client"] }
destination = { system = "erp", method = "PUT", path = "/prices" }

[routes.customers]
source = { kind = "api", credentials = ["b_client"] }
destination = { system = "erp", method = "PUT", path = "/customers" }
"#
        .into(),
        ..Default::default()
    }
}

/// An ERP call to `route` with `key` and `Idempotency-Key: idem`; 202.
pub async fn send(t: &TestApp, route: &str, key: &str, idem: &str, body: &str) -> String {
    let r = t
        .http
        .post(format!("{}/api/v1/routes/{route}/messages", t.base))
        .bearer_auth(key)
        .header("idempotency-key", idem)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{route} {idem}");
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The feed as `key` sees it (`query` after `?`); the answer must be 200.
async fn feed(t: &TestApp, key: &str, query: &str) -> Value {
    let r = t
        .http
        .get(format!("{}/api/v1/failures?{query}", t.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "feed {query}");
    r.json().await.unwrap()
}

async fn retry(t: &TestApp, key: Option<&str>, id: &str) -> reqwest::Response {
    let mut req = t
        .http
        .post(format!("{}/api/v1/failures/{id}/retry", t.base));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_erp_failure_feed_a_client_key_sees_only_its_routes_failures_and_its_retry_is_audited_as_that_client()
 {
    let t = TestApp::spawn_with(two_clients()).await;
    t.receiver
        .set_default(Reply::status(422).body(r#"{"error":"unknown sku TEA-1"}"#));
    let a1 = send(&t, "prices", A_KEY, "a-1", r#"{"sku":"TEA-1"}"#).await;
    let a2 = send(&t, "prices", A_KEY, "a-2", r#"{"sku":"TEA-2"}"#).await;
    let b1 = send(&t, "customers", B_KEY, "b-1", r#"{"id":"C-1"}"#).await;
    t.drain().await;
    assert_eq!(t.stats("prices").await.dead, 2);
    assert_eq!(t.stats("customers").await.dead, 1);

    let a = feed(&t, A_KEY, "").await;
    assert_eq!(a["client"], "a_client");
    assert_eq!(a["routes"], serde_json::json!(["prices"]));
    let groups = a["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{a:#}");
    let g = &groups[0];
    assert_eq!(
        (
            g["route"].as_str(),
            g["system"].as_str(),
            g["class"].as_str()
        ),
        (Some("prices"), Some("erp"), Some("rejected"))
    );
    assert_eq!(
        (g["count"].as_u64(), g["status"].as_str()),
        (Some(2), Some("open"))
    );
    assert!(
        g["explanation"]
            .as_str()
            .unwrap()
            .contains("unknown sku TEA-1")
    );
    assert!(!g["hint"].as_str().unwrap().is_empty());
    assert!(g["first_seen_ms"].as_i64().unwrap() <= g["last_seen_ms"].as_i64().unwrap());
    let dead = g["messages"].as_array().unwrap();
    let ids: Vec<&str> = dead.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a2.as_str(), a1.as_str()], "newest first");
    assert_eq!(dead[0]["event_id"], "a-2", "the ERP's own Idempotency-Key");
    assert_eq!(dead[0]["attempts"], 1);
    assert!(dead[0]["received_ms"].as_i64().is_some());
    assert!(
        dead[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("rejected")
    );
    let a_group = g["key"].as_str().unwrap().to_owned();

    let b = feed(&t, B_KEY, "").await;
    assert_eq!(b["routes"], serde_json::json!(["customers"]));
    let b_groups = b["groups"].as_array().unwrap();
    assert_eq!(b_groups.len(), 1, "{b:#}");
    assert_eq!(b_groups[0]["messages"][0]["id"], b1.as_str());
    let b_group = b_groups[0]["key"].as_str().unwrap().to_owned();
    assert_eq!(feed(&t, A_KEY, "route=prices").await["groups"], a["groups"]);
    let erp = feed(&t, ERP_KEY, "").await;
    assert_eq!(erp["routes"], serde_json::json!(["stock"]));
    assert_eq!(erp["groups"], serde_json::json!([]));

    // Another client's route reads exactly as a route that does not exist.
    let refused = |q: &'static str| {
        let t = &t;
        async move {
            let r = t
                .http
                .get(format!("{}/api/v1/failures?{q}", t.base))
                .bearer_auth(A_KEY)
                .send()
                .await
                .unwrap();
            problem(r).await
        }
    };
    let (status, theirs) = refused("route=customers").await;
    assert_eq!(status, 404);
    let (_, none) = refused("route=nowhere").await;
    assert_eq!(theirs["type"], none["type"]);
    assert!(theirs["detail"].as_str().unwrap().contains("customers"));
    assert_eq!(
        refused("route=stock").await.0,
        404,
        "an API route of other keys"
    );
    assert_eq!(refused("status=weird").await.0, 400);

    for key in [None, Some("not-a-key")] {
        let mut req = t.http.get(format!("{}/api/v1/failures", t.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let (status, p) = problem(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{p}");
    }
    assert_eq!(problem(retry(&t, None, &a1).await).await.0, 401);

    // B's message and B's group are not A's to retry, nor to know of.
    for id in [
        b1.as_str(),
        b_group.as_str(),
        "0190f2a4-0000-7000-8000-000000000000",
    ] {
        let (status, p) = problem(retry(&t, Some(A_KEY), id).await).await;
        assert_eq!(status, 404, "{id}: {p}");
    }
    assert_eq!(t.stats("customers").await.dead, 1, "untouched");

    let r = retry(&t, Some(A_KEY), &a1).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, serde_json::json!({ "requeued": 1 }));
    let (status, p) = problem(retry(&t, Some(A_KEY), &a1).await).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:ferry:problem:not-dead"))
    );
    let audit = t.store.audit_of(&a1, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].action.as_str(),
            audit[0].channel.as_str(),
            audit[0].actor.as_str()
        ),
        ("retry", "client", "a_client")
    );
    assert!(t.store.audit_of(&b1, 10).await.unwrap().is_empty());
    // The group now holds A's other message only.
    let a = feed(&t, A_KEY, "").await;
    assert_eq!(a["groups"][0]["key"], a_group.as_str());
    assert_eq!(a["groups"][0]["count"], 1);
    assert_eq!(a["groups"][0]["messages"][0]["id"], a2.as_str());
}

#[tokio::test]
async fn a_group_key_retries_the_groups_dead_messages_audited_as_the_client() {
    let t = TestApp::spawn_with(two_clients()).await;
    t.receiver
        .set_default(Reply::status(422).body(r#"{"error":"price below minimum"}"#));
    for i in 0..3 {
        send(&t, "prices", A_KEY, &format!("p-{i}"), r#"{"sku":"TEA-1"}"#).await;
    }
    send(&t, "customers", B_KEY, "c-0", r#"{"id":"C-1"}"#).await;
    t.drain().await;
    let a = feed(&t, A_KEY, "status=open").await;
    let key = a["groups"][0]["key"].as_str().unwrap().to_owned();
    assert_eq!(a["groups"][0]["count"], 3);
    assert_eq!(a["groups"][0]["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        feed(&t, A_KEY, "status=resolved").await["groups"],
        serde_json::json!([])
    );

    let (status, _) = problem(retry(&t, Some(B_KEY), &key).await).await;
    assert_eq!(status, 404, "not B's group");
    let r = retry(&t, Some(A_KEY), &key).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({ "requeued": 3 })
    );
    // A retry by filter is audited with the filter as its target.
    let entry = t
        .store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "retry" && e.target.contains(&key))
        .expect("the group's retry is audited");
    assert_eq!(
        (entry.channel.as_str(), entry.actor.as_str()),
        ("client", "a_client")
    );
    assert!(entry.detail.contains('3'), "{entry:?}");

    t.receiver.set_default(Reply::status(200));
    t.drain().await;
    assert_eq!(t.stats("prices").await.delivered, 3);
    assert_eq!(t.stats("customers").await.dead, 1, "B's stays dead");
    assert_eq!(feed(&t, A_KEY, "").await["groups"], serde_json::json!([]));
    let again = retry(&t, Some(A_KEY), &key).await;
    assert_eq!(
        problem(again).await.0,
        404,
        "the group has no dead message left"
    );
}
