//! Access over the admin API: only an admin token manages users and
//! tokens (an operator and a viewer are refused), a token is answered once
//! and works until revoked, a removed user's console session ends; and the
//! dashboard's activity for any reader.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;
use crate::console::login;

#[tokio::test]
async fn only_an_admin_token_manages_users_and_tokens() {
    let t = TestApp::spawn().await;
    let new_token = |name: &str, role: &str| {
        t.admin(Method::POST, "/tokens")
            .json(&json!({"name": name, "role": role}))
            .send()
    };
    let r = new_token("ops", "operator").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let ops: serde_json::Value = r.json().await.unwrap();
    let ops = ops["token"].as_str().unwrap().to_owned();
    assert!(ops.starts_with("ferry_"));
    let as_ops = |m: Method, path: &str| {
        t.http
            .request(m, format!("{}/admin/api/v1{path}", t.base))
            .bearer_auth(&ops)
    };
    // An operator acts on messages but cannot manage access.
    for (m, path) in [
        (Method::GET, "/users"),
        (Method::GET, "/tokens"),
        (Method::DELETE, "/tokens/ops"),
    ] {
        let (status, p) = problem(as_ops(m.clone(), path).send().await.unwrap()).await;
        assert_eq!(
            (status, p["type"].as_str()),
            (403, Some("urn:ferry:problem:forbidden-role")),
            "{m} {path}"
        );
    }
    let r = as_ops(Method::POST, "/tokens")
        .json(&json!({"name": "mine", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no admin token of its own making"
    );
    assert_eq!(
        as_ops(Method::GET, "/activity")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The admin adds a user, who signs in; removing the user ends it.
    let r = t
        .admin(Method::POST, "/users")
        .json(&json!({"name": "ana", "role": "operator", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (status, p) = problem(
        t.admin(Method::POST, "/users")
            .json(&json!({"name": "bob", "role": "operator", "password": "short"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (400, Some("urn:ferry:problem:bad-password"))
    );
    let ana = login(&t, "ana").await;
    let users: serde_json::Value = t
        .admin(Method::GET, "/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["accounts"][0]["name"], "ana");
    assert_eq!(users["accounts"][0]["created_by"], "admin-token");
    assert_eq!(
        t.admin(Method::DELETE, "/users/ana")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ana.get(&t, "/console").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        t.admin(Method::DELETE, "/users/ana")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // A revoked token is refused at once.
    assert_eq!(
        t.admin(Method::DELETE, "/tokens/ops")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        as_ops(Method::GET, "/messages")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let audit: serde_json::Value = t
        .admin(Method::GET, "/audit")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token-remove")
        .unwrap()
        .clone();
    assert_eq!(
        (entry["actor"].as_str(), entry["channel"].as_str()),
        (Some("admin-token"), Some("api"))
    );
}

#[tokio::test]
async fn the_activity_counts_each_route_over_the_last_hour_and_day() {
    let t = TestApp::spawn().await;
    t.receiver.push([ferry::sim::receiver::Reply::status(422)]);
    for i in 0..3 {
        let r = t
            .api(Some(&format!("a-{i}")), ERP_KEY, &format!(r#"{{"n":{i}}}"#))
            .await;
        assert!(r.status().is_success());
    }
    t.drain().await;
    let a: serde_json::Value = t
        .admin(Method::GET, "/activity")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stock = a["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "stock")
        .unwrap()
        .clone();
    assert_eq!(stock["last_hour"]["delivered"], 2, "{a}");
    assert_eq!(stock["last_hour"]["dead"], 1, "{a}");
    assert_eq!(stock["last_day"]["delivered"], 2, "{a}");
    assert_eq!(stock["waiting"], 0);
    assert_eq!(a["series"].as_array().unwrap().len(), 48);
}
