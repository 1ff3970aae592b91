//! Webhook ingest over real HTTP: every scheme end to end, dedupe and its
//! window, and every kind of bad input answered with problem+json and nothing
//! stored.

use crate::common::*;
use ferry::ingest::verify;

#[tokio::test]
async fn a_signed_webhook_is_accepted_and_stored() {
    let t = TestApp::spawn().await;
    let resp = t.webhook("msg_1", r#"{"order":1}"#).await;
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    let m = t.only_message().await;
    assert_eq!(m.summary.id.as_str(), body["id"]);
    assert_eq!(m.summary.event_id.as_deref(), Some("msg_1"));
    assert_eq!(m.body, r#"{"order":1}"#);
    assert_eq!(m.summary.state, ferry::store::State::Queued);
}

#[tokio::test]
async fn a_rotated_out_secret_still_verifies_during_the_overlap() {
    let t = TestApp::spawn().await;
    let resp = t.webhook_at("msg_old", "{}", t.now_s(), WHSEC_OLD).await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn github_shopify_and_stripe_webhooks_are_verified() {
    let t = TestApp::spawn().await;
    let body = r#"{"id":"evt_1","action":"opened"}"#;
    let gh = t
        .http
        .post(format!("{}/in/gh", t.base))
        .header(
            "x-hub-signature-256",
            verify::sign_github("It's a Secret to Everybody", body.as_bytes()),
        )
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(gh.status(), 202);
    let shop = t
        .http
        .post(format!("{}/in/shopify", t.base))
        .header(
            "x-shopify-hmac-sha256",
            verify::sign_shopify("shopify-secret", body.as_bytes()),
        )
        .header(
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(shop.status(), 202);
    let stripe = t
        .http
        .post(format!("{}/in/stripe", t.base))
        .header(
            "stripe-signature",
            verify::sign_stripe("whsec_stripe_test_secret", t.now_s(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(stripe.status(), 202);
    assert_eq!(t.total_messages().await, 3);
    let events: Vec<_> = t
        .store
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.event_id.unwrap_or_default())
        .collect();
    assert!(
        events.contains(&"evt_1".to_owned()),
        "stripe event id from the body: {events:?}"
    );
    assert!(events.contains(&"72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned()));
}

#[tokio::test]
async fn a_duplicate_webhook_answers_200_and_stores_nothing() {
    let t = TestApp::spawn().await;
    let first = t.webhook("msg_dup", r#"{"n":1}"#).await;
    assert_eq!(first.status(), 202);
    let first_id = first.json::<serde_json::Value>().await.unwrap()["id"].clone();
    for _ in 0..3 {
        let again = t.webhook("msg_dup", r#"{"n":1}"#).await;
        assert_eq!(again.status(), 200);
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["status"], "duplicate");
        assert_eq!(body["id"], first_id);
    }
    assert_eq!(t.total_messages().await, 1);
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_duplicates_total{route="orders"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ferry_received_total{route="orders"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_dedupe_window_expires() {
    let t = TestApp::spawn().await;
    assert_eq!(t.webhook("msg_w", "{}").await.status(), 202);
    t.clock.advance(6 * 86_400_000);
    assert_eq!(
        t.webhook("msg_w", "{}").await.status(),
        200,
        "inside the 7-day window"
    );
    t.clock.advance(86_400_000 + 1);
    assert_eq!(
        t.webhook("msg_w", "{}").await.status(),
        202,
        "after the window it is new again"
    );
    assert_eq!(t.total_messages().await, 2);
    // The janitor's prune drops only expired keys.
    let pruned = t.store.prune(t.clock.now_ms()).await.unwrap();
    assert_eq!(pruned.dedupe_keys, 0);
    t.clock.advance(8 * 86_400_000);
    assert_eq!(
        t.store.prune(t.clock.now_ms()).await.unwrap().dedupe_keys,
        1
    );
}

async fn assert_nothing_stored(t: &TestApp) {
    assert_eq!(t.total_messages().await, 0, "bad input must not be stored");
}

#[tokio::test]
async fn a_tampered_body_is_401() {
    let t = TestApp::spawn().await;
    let sig = verify::sign_standard_webhooks(WHSEC, "m", t.now_s(), b"{\"a\":1}").unwrap();
    let resp = t
        .http
        .post(format!("{}/in/orders", t.base))
        .header("webhook-id", "m")
        .header("webhook-timestamp", t.now_s().to_string())
        .header("webhook-signature", sig)
        .body("{\"a\":2}")
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(status, 401);
    assert_eq!(p["type"], "urn:ferry:problem:bad-signature");
    assert!(p["detail"].as_str().unwrap().contains("standard-webhooks"));
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn a_missing_signature_is_401() {
    let t = TestApp::spawn().await;
    let resp = t
        .http
        .post(format!("{}/in/orders", t.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(status, 401);
    assert_eq!(p["type"], "urn:ferry:problem:missing-signature");
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_401() {
    let t = TestApp::spawn().await;
    for ts in [t.now_s() - 301, t.now_s() + 301] {
        let (status, p) = problem(t.webhook_at("m", "{}", ts, WHSEC).await).await;
        assert_eq!(status, 401);
        assert_eq!(p["type"], "urn:ferry:problem:stale-timestamp");
    }
    assert_eq!(
        t.webhook_at("m", "{}", t.now_s() - 299, WHSEC)
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let t = TestApp::spawn().await;
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
    let (status, p) = problem(t.webhook("big", &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(p["type"], "urn:ferry:problem:body-too-large");
    // Also when the sender does not declare a length (chunked).
    let head = raw_chunked(&t, &big).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert_nothing_stored(&t).await;
}

/// Sends `body` chunked (no Content-Length) over a raw socket; returns the status line.
async fn raw_chunked(t: &TestApp, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    // Signed, so it gets past the header checks made before the body.
    let ts = t.now_s();
    let sig =
        ferry::ingest::verify::sign_standard_webhooks(WHSEC, "big", ts, body.as_bytes()).unwrap();
    let mut req = format!(
        "POST /in/orders HTTP/1.1\r\nhost: x\r\nwebhook-id: big\r\nwebhook-timestamp: {ts}\r\n\
         webhook-signature: {sig}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for c in body.as_bytes().chunks(1000) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            c.len(),
            std::str::from_utf8(c).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let t = TestApp::spawn().await;
    let (status, p) = problem(t.webhook("m", "{not json").await).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:malformed-json");
    assert_nothing_stored(&t).await;
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let t = TestApp::spawn().await;
    let resp = t
        .http
        .post(format!("{}/in/nope", t.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(status, 404);
    assert!(p["detail"].as_str().unwrap().contains("nope"));
    let resp = t
        .http
        .post(format!("{}/in/stock", t.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 404, "an API route takes no webhooks");
    assert_nothing_stored(&t).await;
}
