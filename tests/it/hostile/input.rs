//! Hostile input: bodies deep, malformed or costly enough to crash a parser
//! or stall a runtime thread, and jq programs that reach outside themselves.

use std::time::Duration;

use super::*;

/// An ERP route ordered by a jq key: every body is read by jq at ingest.
const ORDERED: &str = r#"
[routes.ordered]
source = { kind = "api", credentials = ["erp_client"] }
destination = { system = "erp", path = "/ordered", ordering_key = ".order.id" }

[routes.slowkey]
source = { kind = "api", credentials = ["erp_client"] }
destination = { system = "erp", path = "/slow", ordering_key = "reduce range(100000000) as $i (0; . + $i) | tostring" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_to_an_ordered_route_does_not_kill_the_process() {
    let mut f = Ferry::start("", ORDERED).await;
    // ~14 KB, 7,000 levels: this overflowed jq's stack and aborted ferry.
    let deep = format!(r#"{{"order":{{"id":1}},"x":{}}}"#, nested(7_000));
    let r = f.api("ordered", "deep-1", &deep).await;
    let (status, body) = problem(r).await;
    assert_eq!(status, 400, "{body}");
    f.assert_alive().await;
    assert_eq!(f.stored().await, 0, "nothing stored");
    // 129 levels is one past the default limit; 128 is fine.
    let (status, _) = problem(
        f.api(
            "ordered",
            "deep-2",
            &format!(r#"{{"order":{{"id":1}},"x":{}}}"#, nested(129)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let ok = f
        .api(
            "ordered",
            "deep-3",
            &format!(r#"{{"order":{{"id":1}},"x":{}}}"#, nested(120)),
        )
        .await;
    assert!(ok.status().is_success(), "{}", ok.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_to_a_webhook_is_refused() {
    let mut f = Ferry::start("", "").await;
    let r = f
        .webhook("evt_deep", &format!(r#"{{"x":{}}}"#, nested(1_500)))
        .await;
    // The orders route caps bodies at 4 KiB: either limit may answer, never a crash.
    assert!(matches!(r.status().as_u16(), 400 | 413), "{}", r.status());
    f.assert_alive().await;
    assert_eq!(f.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_inside_a_json_string_is_refused() {
    let mut f = Ferry::start("", "").await;
    let body: &[u8] = b"{\"name\":\"\xff\xfe\"}";
    let r = f
        .http
        .post(format!("{}/api/v1/routes/stock/messages", f.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "utf8-1")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.status(), 400);
    f.assert_alive().await;
    assert_eq!(f.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_ndjson_line_is_refused_alone() {
    let mut f = Ferry::start("", ORDERED).await;
    let lines = format!(
        "{{\"order\":{{\"id\":1}}}}\n{{\"order\":{{\"id\":2}},\"x\":{}}}\n{{\"order\":{{\"id\":3}}}}\n",
        nested(7_000)
    );
    let r = f
        .http
        .post(format!("{}/api/v1/routes/ordered/bulk", f.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "bulk-deep")
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 2, "{v}");
    assert_eq!(v["rejected"], 1, "{v}");
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_ndjson_line_in_one_byte_chunks_is_read_in_linear_time() {
    let mut f = Ferry::start("", ORDERED).await;
    // One 128 KiB line, sent a byte per chunk: the old scan re-read the
    // buffer for every chunk (3.7 s of CPU); now it finishes like any upload.
    let pad = "a".repeat(128 * 1024);
    let line = format!("{{\"order\":{{\"id\":7}},\"pad\":\"{pad}\"}}\n").into_bytes();
    let chunks = futures_util::stream::iter(
        line.into_iter()
            .map(|b| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b]))),
    );
    let r = f
        .http
        .post(format!("{}/api/v1/routes/ordered/bulk", f.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "bulk-long")
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 1, "{v}");
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_ordering_key_does_not_hold_healthz() {
    let mut f = Ferry::start("", ORDERED).await;
    let http = f.http.clone();
    let url = format!("{}/api/v1/routes/slowkey/messages", f.base);
    let slow = tokio::spawn(async move {
        let r = http
            .post(url)
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", "slow-1")
            .body(r#"{"a":1}"#)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    });
    // While jq runs on its pool, the runtime answers everyone else.
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.assert_alive().await;
    assert!(
        !slow.is_finished(),
        "healthz answered while the key still ran"
    );
    let status = slow.await.unwrap();
    // Past its deadline: refused as unprocessable, never a hang.
    assert_eq!(status, 422);
    f.assert_alive().await;
}

#[test]
fn jq_programs_cannot_reach_outside_themselves() {
    for program in [
        "env.ERP_TOKEN",
        "$ENV.ERP_TOKEN",
        "halt",
        "\"x\" | halt_error",
        "input",
        "[inputs]",
        "now",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "[routes.sneaky]\nsource = {{ kind = \"api\", credentials = [\"erp_client\"] }}\ndestination = {{ system = \"erp\", path = \"/s\", ordering_key = {program:?} }}\n"
        );
        let cfg = write_config(&dir, "http://127.0.0.1:9", free_port(), "", &extra);
        let (ok, out) = ferry_cmd(&["check-config", cfg.to_str().unwrap()], &[]);
        assert!(!ok, "`{program}` was accepted: {out}");
        assert!(out.contains("sneaky"), "the problem names the route: {out}");
    }
}
