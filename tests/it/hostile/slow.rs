//! Slow clients cannot starve the rest: idle half-sent requests, stalled
//! uploads and more connections than the process has file descriptors.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::*;

/// Opens `n` connections that send part of a request and then nothing.
async fn idle_half_sent(port: u16, n: usize, partial: &str) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s.write_all(partial.as_bytes()).await;
            held.push(s);
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_half_sent_requests_do_not_stop_ingest() {
    let mut f = Ferry::start("max_connections = 128\nheader_read_timeout = \"1s\"", "").await;
    // More idle connections than the cap: the listener keeps working, and
    // the header-read timeout frees their places.
    let held = idle_half_sent(f.port, 300, "POST /in/orders HTTP/1.1\r\nHost: x\r\n").await;
    let r = f.webhook("evt_after_idle", r#"{"a":1}"#).await;
    assert_eq!(
        r.status(),
        202,
        "a signed webhook is served beside 300 idle peers"
    );
    drop(held);
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_unsigned_uploads_are_cut_and_hold_nothing() {
    let mut f = Ferry::start(
        "body_idle_timeout = \"500ms\"\nmax_unverified_bytes = \"1MiB\"",
        "[routes.big]\nsource = { kind = \"webhook\", scheme = \"github\", credentials = [\"gh\"], max_body = \"1MiB\" }\ndestination = { system = \"erp\", path = \"/big\" }\n",
    )
    .await;
    // 50 uploads that promise 1 MiB and stall after 64 KiB, unsigned.
    let head = "POST /in/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: d\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 1048576\r\n\r\n";
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let _ = s.write_all(&vec![b' '; 64 * 1024]).await;
        stalled.push(s);
    }
    // Others are served meanwhile.
    let r = f.webhook("evt_beside_stalled", r#"{"a":1}"#).await;
    assert_eq!(r.status(), 202);
    // Each stalled upload gets an answer (408/413/503) or is closed.
    for mut s in stalled {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(15),
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
        )
        .await;
        assert!(read.is_ok(), "a stalled upload was never cut");
        let text = String::from_utf8_lossy(&buf);
        assert!(
            buf.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"),
            "{text}"
        );
    }
    f.assert_alive().await;
    assert_eq!(f.stored().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_headers_is_closed() {
    let mut f = Ferry::start("header_read_timeout = \"300ms\"", "").await;
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "the idle connection was kept open");
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_standard_webhook_is_refused_before_its_body_is_read() {
    let mut f = Ferry::start("", "").await;
    // Headers say the event is a day old; the body never comes.
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
    let head = format!(
        "POST /in/orders HTTP/1.1\r\nHost: x\r\nwebhook-id: evt_old\r\nwebhook-timestamp: {}\r\nwebhook-signature: v1,AAAA\r\nContent-Length: 4000\r\n\r\n",
        now_s() - 86_400
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut s, &mut buf),
    )
    .await
    .expect("answered without waiting for the body")
    .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    f.assert_alive().await;
}
