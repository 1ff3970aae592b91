//! The HTTP edge under hostile clients (issue 9): idle and half-sent
//! connections, stalled bodies, a process out of file descriptors, unsigned
//! uploads, deep or invalid JSON, replayed webhooks and a full queue. Each
//! case runs against the real app (in process on port 0, or the real `ferry
//! serve` binary under a small open-file limit) and asserts the answer, what
//! was stored, and that other clients are still served.

use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `n` connections that sent part of a request head and then nothing.
async fn half_sent(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /in/orders HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        open.push(s);
    }
    open
}

/// Whether the server still holds `s` open (no answer, no close).
fn still_open(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Reads an answer to its end (the server closes the connection).
async fn answer(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The head of a Standard Webhooks request to `orders`, signed for `body`,
/// declaring `body`'s length.
fn signed_head(t: &TestApp, id: &str, body: &str) -> String {
    let ts = t.now_s();
    let sig =
        ferry::ingest::verify::sign_standard_webhooks(WHSEC, id, ts, body.as_bytes()).unwrap();
    format!(
        "POST /in/orders HTTP/1.1\r\nhost: x\r\nwebhook-id: {id}\r\nwebhook-timestamp: {ts}\r\n\
         webhook-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
}

#[tokio::test]
async fn three_hundred_half_sent_requests_do_not_stop_a_signed_webhook() {
    let t = TestApp::spawn().await;
    let idle = half_sent(t.addr, 300).await;
    let resp = t.webhook("evt_through", r#"{"ok":true}"#).await;
    assert_eq!(resp.status(), 202);
    assert!(
        idle.iter().all(still_open),
        "answered while the idle clients are still connected"
    );
    assert_eq!(t.total_messages().await, 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let t = TestApp::spawn_with(Options {
        server: r#"header_read_timeout = "5s""#.into(),
        ..Default::default()
    })
    .await;
    let mut idle = half_sent(t.addr, 1).await;
    let started = tokio::time::Instant::now();
    let got = answer(idle.pop().unwrap()).await;
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(t.webhook("evt_after", "{}").await.status(), 202);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_webhook_body_is_answered_408() {
    let t = TestApp::spawn_with(Options {
        server: r#"header_read_timeout = "60s"
body_idle_timeout = "10s""#
            .into(),
        ..Default::default()
    })
    .await;
    let body = r#"{"stalled":"upload"}"#;
    let mut s = TcpStream::connect(t.addr).await.unwrap();
    s.write_all(signed_head(&t, "evt_stall", body).as_bytes())
        .await
        .unwrap();
    s.write_all(&body.as_bytes()[..5]).await.unwrap();
    let started = tokio::time::Instant::now();
    let got = answer(s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("application/problem+json"), "{got}");
    assert!(got.contains("urn:ferry:problem:body-timeout"), "{got}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(t.total_messages().await, 0);
    assert_eq!(t.webhook("evt_next", body).await.status(), 202);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_bulk_upload_is_cut_and_keeps_what_it_sent() {
    let t = TestApp::spawn_with(Options {
        server: r#"header_read_timeout = "60s""#.into(),
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/routes/stock/bulk HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ERP_KEY}\r\n\
         idempotency-key: stall\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let lines = "{\"n\":1}\n{\"n\":2}\n{\"n\":";
    s.write_all(format!("{:x}\r\n{lines}\r\n", lines.len()).as_bytes())
        .await
        .unwrap();
    let got = answer(s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("after line 2"), "{got}");
    assert_eq!(t.total_messages().await, 2);
}

#[tokio::test(start_paused = true)]
async fn a_spent_unverified_budget_is_503_until_the_stalled_reader_is_cut() {
    let t = TestApp::spawn_with(Options {
        server: r#"header_read_timeout = "60s"
max_unverified_bytes = "1MiB""#
            .into(),
        ..Default::default()
    })
    .await;
    // Well-formed but unverifiable headers, declaring the route's whole
    // 1 MiB, and then nothing: it holds the budget until it is cut.
    let mut hog = TcpStream::connect(t.addr).await.unwrap();
    let head = format!(
        "POST /in/shopify HTTP/1.1\r\nhost: x\r\nx-shopify-hmac-sha256: {}\r\ncontent-length: {}\r\n\r\n",
        ferry::ingest::verify::sign_shopify("not-the-secret", b"x"),
        1 << 20
    );
    hog.write_all(head.as_bytes()).await.unwrap();
    hog.write_all(b"{\"a\":").await.unwrap();
    eventually(
        "the hog's bytes are reserved",
        Duration::from_secs(10),
        async || {
            t.app
                .metrics
                .render()
                .contains("ferry_unverified_bytes 1048576")
        },
    )
    .await;
    let resp = t.webhook("evt_waits", "{}").await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let (status, p) = problem(resp).await;
    assert_eq!(status, 503);
    assert_eq!(p["type"], "urn:ferry:problem:unverified-bytes");
    let got = answer(hog).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert_eq!(t.webhook("evt_waits", "{}").await.status(), 202);
    assert!(t.app.metrics.render().contains("ferry_unverified_bytes 0"));
}

#[tokio::test]
async fn a_stale_or_unsigned_webhook_is_refused_before_its_body_is_read() {
    let t = TestApp::spawn().await;
    let stale = t.now_s() - 3600;
    for extra in [
        format!(
            "webhook-id: e\r\nwebhook-timestamp: {stale}\r\nwebhook-signature: v1,{}\r\n",
            "A".repeat(43) + "="
        ),
        String::new(),
    ] {
        let mut s = TcpStream::connect(t.addr).await.unwrap();
        // Declares 4 KiB and sends none of it: only an answer that needs no
        // body can come back.
        let head =
            format!("POST /in/orders HTTP/1.1\r\nhost: x\r\n{extra}content-length: 4096\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let got = answer(s).await;
        assert!(got.starts_with("HTTP/1.1 401"), "{got}");
        assert!(
            got.contains("stale-timestamp") || got.contains("missing-signature"),
            "{got}"
        );
    }
    assert_eq!(t.total_messages().await, 0);
}

#[tokio::test]
async fn the_connection_cap_pauses_accepts_and_the_listener_recovers() {
    let t = TestApp::spawn_with(Options {
        server: "max_connections = 8".into(),
        ..Default::default()
    })
    .await;
    let open = |m: &str| m.contains("ferry_http_connections 8");
    let idle = half_sent(t.addr, 8).await;
    eventually(
        "eight connections open",
        Duration::from_secs(10),
        async || open(&t.app.metrics.render()),
    )
    .await;
    let http = t.http.clone();
    let url = format!("{}/healthz", t.base);
    let waiting = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    // At the cap the ninth connection waits in the backlog (not refused).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served past the cap");
    assert!(
        t.app
            .metrics
            .render()
            .contains("ferry_http_connections_max 8")
    );
    drop(idle);
    assert_eq!(waiting.await.unwrap(), 200);
    for i in 0..20 {
        assert_eq!(t.webhook(&format!("evt_{i}"), "{}").await.status(), 202);
    }
    assert!(
        t.app
            .metrics
            .render()
            .contains("ferry_accept_errors_total 0")
    );
}

/// Starts `ferry serve` under an open-file limit of `nofile`, with more
/// `[server]` lines; returns the process and its base URL once it is ready.
async fn serve_limited(
    dir: &std::path::Path,
    nofile: u32,
    server: &str,
) -> (std::process::Child, String) {
    let port = free_port();
    let opts = Options {
        server: server.into(),
        ..Default::default()
    };
    let text = config_text("http://127.0.0.1:9", &opts)
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let cfg = dir.join("ferry.toml");
    std::fs::write(&cfg, text).unwrap();
    let child = std::process::Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .envs(secrets())
        .env_remove("FERRY_DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prlimit and ferry");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    (child, base)
}

async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[tokio::test]
async fn under_a_256_file_limit_300_idle_clients_do_not_stop_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve_limited(dir.path(), 256, r#"header_read_timeout = "1s""#).await;
    // The default cap: 256 - 64 kept back - 16 outbound places of `erp`.
    assert_eq!(metric(&base, "ferry_http_connections_max").await, 176.0);
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let idle = half_sent(addr, 300).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert!(
        send_event(&http, &base, "evt_limited").await,
        "webhook acked"
    );
    // The webhook waited in the backlog behind idle clients, and was answered
    // while the later of them are still connected.
    assert!(idle.iter().any(still_open));
    assert_eq!(metric(&base, "ferry_accept_errors_total").await, 0.0);
    assert!(child.try_wait().unwrap().is_none(), "ferry is alive");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn running_out_of_file_descriptors_does_not_end_the_accept_loop() {
    let dir = tempfile::tempdir().unwrap();
    // A cap far above what the limit allows: accept fails with EMFILE.
    let (mut child, base) = serve_limited(
        dir.path(),
        128,
        "header_read_timeout = \"1s\"\nmax_connections = 1000",
    )
    .await;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let idle = half_sent(addr, 200).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert!(
        send_event(&http, &base, "evt_emfile").await,
        "webhook acked"
    );
    drop(idle);
    assert!(metric(&base, "ferry_accept_errors_total").await > 0.0);
    assert!(child.try_wait().unwrap().is_none(), "ferry is alive");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn deep_json_and_invalid_utf8_are_400_and_store_nothing() {
    let t = TestApp::spawn().await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let (status, p) = problem(t.webhook("evt_deep", &deep).await).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:json-too-deep");
    let (status, p) = problem(t.api(Some("deep"), ERP_KEY, &deep).await).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:json-too-deep");
    let bad_utf8 = b"{\"sku\":\"caf\xe9\"}".to_vec();
    let resp = t
        .http
        .post(format!("{}/api/v1/routes/stock/messages", t.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "utf8")
        .body(bad_utf8)
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(status, 400);
    assert_eq!(p["type"], "urn:ferry:problem:not-utf8");
    // A bulk upload refuses such lines one by one and keeps the rest.
    let mut ndjson = format!("{{\"n\":1}}\n{deep}\n").into_bytes();
    ndjson.extend_from_slice(b"{\"s\":\"\xff\"}\n{\"n\":4}\n");
    let resp = t
        .http
        .post(format!("{}/api/v1/routes/stock/bulk", t.base))
        .bearer_auth(ERP_KEY)
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let errors = job["errors"].to_string();
    assert!(
        errors.contains("deeper than") && errors.contains("UTF-8"),
        "{errors}"
    );
    assert_eq!(t.total_messages().await, 2);
}

#[tokio::test]
async fn body_hash_dedupe_absorbs_a_replayed_shopify_webhook() {
    let t = TestApp::spawn_with(Options {
        extra: r#"
[routes.shop-hashed]
source = { kind = "webhook", scheme = "shopify", credentials = ["shopify"], dedupe = "body-hash" }
destination = { system = "erp", path = "/shop" }
"#
        .into(),
        ..Default::default()
    })
    .await;
    let send = |body: &'static str| {
        let sig = ferry::ingest::verify::sign_shopify("shopify-secret", body.as_bytes());
        t.http
            .post(format!("{}/in/shop-hashed", t.base))
            .header("x-shopify-hmac-sha256", sig)
            .body(body)
            .send()
    };
    // No X-Shopify-Webhook-Id: a captured request replayed as it was.
    assert_eq!(send(r#"{"order":1}"#).await.unwrap().status(), 202);
    let replay = send(r#"{"order":1}"#).await.unwrap();
    assert_eq!(replay.status(), 200);
    let v: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(v["status"], "duplicate");
    assert_eq!(send(r#"{"order":2}"#).await.unwrap().status(), 202);
    assert_eq!(t.total_messages().await, 2);
}

#[tokio::test]
async fn a_bulk_upload_past_max_queue_is_503_and_keeps_what_it_stored() {
    let t = TestApp::spawn_with(Options {
        erp: "max_queue = 10".into(),
        ..Default::default()
    })
    .await;
    let ndjson: String = (1..=25).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let upload = || {
        t.http
            .post(format!("{}/api/v1/routes/stock/bulk", t.base))
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", "full")
            .body(ndjson.clone())
            .send()
    };
    let resp = upload().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "5");
    let (status, p) = problem(resp).await;
    assert_eq!(status, 503);
    assert_eq!(p["type"], "urn:ferry:problem:queue-full");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("lines 1 to 10") && detail.contains("10 stored"),
        "{detail}"
    );
    assert_eq!(t.total_messages().await, 10, "what was accepted stays");
    // Still full: the next attempt is refused before a line is read.
    let (status, _) = problem(upload().await.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(t.total_messages().await, 10);
}
