//! The state ferry keeps, attacked: the in-flight idempotency guard, holds
//! a downstream can set, the queue a bulk upload can fill, replays of
//! signatures without timestamps, and a store file that is not what it
//! seems.

use std::time::Duration;

use ferry::sim::receiver::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Reads one HTTP response's status line from a raw connection.
async fn status_of(s: &mut TcpStream) -> u16 {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_409_does_not_release_the_in_flight_idempotency_guard() {
    let f = Ferry::start("", "").await;
    let body = r#"{"sku":"RACE","qty":1}"#;
    // The first request sends its headers and half its body, then waits.
    let mut first = TcpStream::connect(("127.0.0.1", f.port)).await.unwrap();
    let head = format!(
        "POST /api/v1/routes/stock/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ERP_KEY}\r\nIdempotency-Key: race-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    first.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The second and the third both meet the first in flight.
    for n in ["second", "third"] {
        let r = f.api("stock", "race-1", body).await;
        assert_eq!(r.status(), 409, "the {n} request overtook the first");
    }
    first.write_all(&body.as_bytes()[5..]).await.unwrap();
    assert_eq!(status_of(&mut first).await, 202);
    let replay = f.api("stock", "race-1", body).await;
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(f.stored().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_holds_the_system_at_most_max_hold_and_says_so() {
    let f = Ferry::start("", "").await;
    f.receiver
        .push([Reply::status(429).header("retry-after", "100000000")]);
    f.receiver.set_default(Reply::status(200));
    assert_eq!(f.webhook("evt_hold_1", r#"{"a":1}"#).await.status(), 202);
    let mut system = serde_json::Value::Null;
    for _ in 0..400 {
        let v = f.admin_json("/systems").await;
        let erp = v["systems"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "erp"))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if !erp["hold"].is_null() {
            system = erp;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let hold = &system["hold"];
    assert!(!hold.is_null(), "the hold shows in /systems: {system}");
    let until_ms = hold["until_ms"].as_i64().expect("until_ms");
    let cap = (now_s() + 3_600 + 5) * 1000;
    assert!(
        until_ms <= cap,
        "held until {until_ms}, past the 1 h cap {cap}"
    );
    // A message waiting behind the hold says why.
    assert_eq!(f.webhook("evt_hold_2", r#"{"a":2}"#).await.status(), 202);
    let list = f.admin_json("/messages").await;
    let text = list.to_string();
    assert!(
        text.contains("Retry-After"),
        "the wait is explained: {text}"
    );
    let metrics = f
        .http
        .get(format!("{}/metrics", f.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ferry_hold"), "a hold gauge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_upload_past_max_queue_is_503() {
    let extra = "\n[routes.sync]\nsource = { kind = \"api\", credentials = [\"erp_client\"] }\ndestination = { system = \"erp\", path = \"/sync\" }\n";
    // The erp system takes 5 queued at most, and it is down.
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Reply::status(503).header("retry-after", "3600"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(&dir, &receiver.url(), port, "", extra);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"2s\"\nmax_queue = 5");
    std::fs::write(&cfg, text).unwrap();
    let _child = KillOnDrop(spawn(&cfg, &[]));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let lines: String = (0..20).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let upload = |key: &'static str| {
        http.post(format!("{base}/api/v1/routes/sync/bulk"))
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", key)
            .body(lines.clone())
            .send()
    };
    let first = upload("bulk-1").await.unwrap();
    let second = upload("bulk-2").await.unwrap();
    let statuses = [first.status().as_u16(), second.status().as_u16()];
    assert!(statuses.contains(&503), "{statuses:?}");
    let refused = if statuses[0] == 503 { first } else { second };
    assert!(refused.headers().contains_key("retry-after"));
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BODY_HASH: &str = r#"
[routes.shop]
source = { kind = "webhook", scheme = "shopify", credentials = ["shopify"], dedupe = "body-hash" }
destination = { system = "erp", path = "/shop" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_shopify_webhook_is_absorbed_by_body_hash() {
    let f = Ferry::start("", BODY_HASH).await;
    let body = r#"{"id":820982911946154500,"total":"12.50"}"#;
    let send = || {
        f.http
            .post(format!("{}/in/shop", f.base))
            .header(
                "x-shopify-hmac-sha256",
                ferry::ingest::verify::sign_shopify("shopify-secret", body.as_bytes()),
            )
            .body(body)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 202);
    // An eavesdropper replays the signed request, without any event id.
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(f.stored().await, 1);
}

#[test]
fn a_zero_length_store_beside_its_lock_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "http://127.0.0.1:9", free_port(), "", "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("ferry.sqlite3"), b"").unwrap();
    std::fs::write(data.join("ferry.lock"), b"").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .envs(secrets())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ferry started on an emptied store");
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("ferry.sqlite3"),
        "the reason names the file: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_store_finds_a_corrupt_page() {
    let mut f = Ferry::start("", "").await;
    for i in 0..200 {
        let body = format!(r#"{{"n":{i},"pad":"{}"}}"#, "p".repeat(1000));
        assert_eq!(f.webhook(&format!("evt_c{i}"), &body).await.status(), 202);
    }
    f.stop();
    let cfg = f.dir.path().join("ferry.toml");
    let cfg = cfg.to_str().unwrap();
    let (ok, out) = ferry_cmd(&["check-store", "--config", cfg], &[]);
    assert!(ok, "a healthy store: {out}");
    // Garbage over pages in the middle of the file, once the WAL (whose
    // newer copies of pages would mask it) is folded back in.
    let db = f.db_path().join("ferry.sqlite3");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    let at = bytes.len() / 2;
    let end = (at + 8192).min(bytes.len());
    bytes[at..end].fill(0xA5);
    std::fs::write(&db, bytes).unwrap();
    let (ok, out) = ferry_cmd(&["check-store", "--config", cfg], &[]);
    assert!(!ok, "check-store passed a corrupt file: {out}");
}
