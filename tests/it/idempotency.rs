//! The ERP API's `Idempotency-Key` matrix (DESIGN.md contract 3) over real HTTP.

use crate::common::*;

#[tokio::test]
async fn same_key_same_body_replays_the_stored_response_byte_for_byte() {
    let t = TestApp::spawn().await;
    let first = t
        .api(Some("\"k-1\""), ERP_KEY, r#"{"sku":"A","qty":3}"#)
        .await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();
    for key in ["\"k-1\"", "k-1"] {
        let again = t.api(Some(key), ERP_KEY, r#"{"sku":"A","qty":3}"#).await;
        assert_eq!(again.status(), 202);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(
            again.bytes().await.unwrap(),
            first_body,
            "quoted and bare keys are the same key"
        );
    }
    assert_eq!(t.total_messages().await, 1);
}

#[tokio::test]
async fn same_key_different_body_is_422() {
    let t = TestApp::spawn().await;
    assert_eq!(
        t.api(Some("k-2"), ERP_KEY, r#"{"qty":1}"#).await.status(),
        202
    );
    let (status, p) = problem(t.api(Some("k-2"), ERP_KEY, r#"{"qty":2}"#).await).await;
    assert_eq!(status, 422);
    assert_eq!(p["type"], "urn:ferry:problem:idempotency-key-reused");
    assert_eq!(t.total_messages().await, 1);
}

#[tokio::test]
async fn a_missing_or_overlong_key_is_400() {
    let t = TestApp::spawn().await;
    let (status, p) = problem(t.api(None, ERP_KEY, "{}").await).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:idempotency-key-missing");
    let long = "k".repeat(256);
    let (status, p) = problem(t.api(Some(&long), ERP_KEY, "{}").await).await;
    assert_eq!(status, 400);
    assert!(p["detail"].as_str().unwrap().contains("256"));
    assert_eq!(
        t.api(Some(&"k".repeat(255)), ERP_KEY, "{}").await.status(),
        202
    );
    assert_eq!(t.total_messages().await, 1);
}

#[tokio::test]
async fn keys_are_scoped_per_client_credential() {
    let t = TestApp::spawn().await;
    assert_eq!(
        t.api(Some("shared"), ERP_KEY, r#"{"a":1}"#).await.status(),
        202
    );
    let other = t.api(Some("shared"), OTHER_KEY, r#"{"a":2}"#).await;
    assert_eq!(
        other.status(),
        202,
        "another client's key space is separate"
    );
    assert!(other.headers().get("idempotent-replayed").is_none());
    assert_eq!(t.total_messages().await, 2);
}

#[tokio::test]
async fn a_wrong_client_key_is_401_and_bad_json_400() {
    let t = TestApp::spawn().await;
    let (status, _) = problem(t.api(Some("k"), "wrong", "{}").await).await;
    assert_eq!(status, 401);
    let (status, p) = problem(t.api(Some("k"), ERP_KEY, "{oops").await).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:malformed-json");
    let (status, _) = problem(
        t.api(Some("k"), ERP_KEY, &format!("\"{}\"", "x".repeat(5000)))
            .await,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(t.total_messages().await, 0);
    // A failed request does not burn the key.
    assert_eq!(t.api(Some("k"), ERP_KEY, "{}").await.status(), 202);
}

#[tokio::test]
async fn keys_expire_after_the_published_window() {
    let t = TestApp::spawn().await;
    assert_eq!(
        t.api(Some("k-exp"), ERP_KEY, r#"{"v":1}"#).await.status(),
        202
    );
    t.clock.advance(23 * 3_600_000);
    assert_eq!(
        t.api(Some("k-exp"), ERP_KEY, r#"{"v":2}"#).await.status(),
        422
    );
    t.clock.advance(3_600_000 + 1);
    let fresh = t.api(Some("k-exp"), ERP_KEY, r#"{"v":2}"#).await;
    assert_eq!(fresh.status(), 202);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    assert_eq!(t.total_messages().await, 2);
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_key_make_exactly_one_message() {
    let t = TestApp::spawn().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, base) = (t.http.clone(), t.base.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/routes/stock/messages"))
                .bearer_auth(ERP_KEY)
                .header("idempotency-key", "\"burst\"")
                .body(r#"{"sku":"B","qty":9}"#)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let replayed = r.headers().contains_key("idempotent-replayed");
            let body = r.bytes().await.unwrap();
            (status, replayed, body)
        }));
    }
    let mut fresh = Vec::new();
    let mut replays = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            (202, false, body) => fresh.push(body),
            (202, true, body) => replays.push(body),
            (409, _, _) => conflicts += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(fresh.len(), 1, "exactly one request executes");
    assert_eq!(fresh.len() + replays.len() + conflicts, 50);
    assert!(
        replays.iter().all(|b| *b == fresh[0]),
        "replays are byte-identical"
    );
    assert_eq!(t.total_messages().await, 1);
}

#[tokio::test]
async fn a_retry_while_the_first_request_is_in_flight_is_409() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::spawn().await;
    // The first request's body is still uploading.
    let mut slow = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/routes/stock/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ERP_KEY}\r\nidempotency-key: slow\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{{\"qty\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    eventually(
        "the first request is in flight",
        std::time::Duration::from_secs(10),
        async || t.app.in_flight.holds("erp_client", "slow"),
    )
    .await;
    let (status, p) = problem(t.api(Some("slow"), ERP_KEY, r#"{"qty":1}"#).await).await;
    assert_eq!(status, 409);
    assert_eq!(p["type"], "urn:ferry:problem:request-in-progress");
    slow.write_all(b"12}").await.unwrap();
    let mut out = Vec::new();
    slow.read_to_end(&mut out).await.unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 202"));
    let replay = t.api(Some("slow"), ERP_KEY, r#"{"qty":12}"#).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(t.total_messages().await, 1);
}

/// Issue 9: `bool::then_some` built a guard for the refused second request
/// and dropped it at once, releasing the first request's entry, so a third
/// request ran alongside the first.
#[tokio::test]
async fn first_409_no_longer_releases_the_in_flight_guard() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::spawn().await;
    let mut first = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/routes/stock/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ERP_KEY}\r\nidempotency-key: race\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{{\"qty\":"
    );
    first.write_all(head.as_bytes()).await.unwrap();
    eventually(
        "the first request is in flight",
        std::time::Duration::from_secs(10),
        async || t.app.in_flight.holds("erp_client", "race"),
    )
    .await;
    for which in ["second", "third"] {
        let (status, p) = problem(t.api(Some("race"), ERP_KEY, r#"{"qty":12}"#).await).await;
        assert_eq!(
            status, 409,
            "the {which} request while the first is in flight"
        );
        assert_eq!(p["type"], "urn:ferry:problem:request-in-progress");
        assert!(t.app.in_flight.holds("erp_client", "race"));
    }
    assert_eq!(t.total_messages().await, 0, "nothing ran beside the first");
    first.write_all(b"12}").await.unwrap();
    let mut out = Vec::new();
    first.read_to_end(&mut out).await.unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 202"));
    let fourth = t.api(Some("race"), ERP_KEY, r#"{"qty":12}"#).await;
    assert_eq!(fourth.status(), 202);
    assert_eq!(fourth.headers()["idempotent-replayed"], "true");
    assert_eq!(t.total_messages().await, 1);
}
