//! Admin API tokens with roles: made with `ferry tokens add` (printed once,
//! stored hashed), a viewer reads but cannot act, an operator acts and is
//! named in the audit log, a removed or unknown token is refused, and
//! `server.admin_token` stays an admin token.

use ferry::sim::receiver::Reply;
use reqwest::StatusCode;

use crate::common::*;

fn ferry(args: &[&str], cfg: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .envs(secrets())
        .output()
        .unwrap()
}

#[tokio::test]
async fn roles_decide_what_a_token_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = ferry::sim::receiver::Receiver::start().await.unwrap();
    let port = free_port();
    let text = config_text(&receiver.url(), &Options::default())
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, text).unwrap();
    let add = |name: &str, role: &str| {
        let out = ferry(&["tokens", "add", name, "--role", role], &cfg);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let viewer = add("dashboards", "viewer");
    let operator = add("ops-oncall", "operator");
    assert!(viewer.starts_with("ferry_") && viewer.len() > 40);
    let out = ferry(&["tokens", "add", "x", "--role", "root"], &cfg);
    assert_eq!(out.status.code(), Some(1));
    let list = String::from_utf8(ferry(&["tokens", "list"], &cfg).stdout).unwrap();
    assert!(
        list.contains("dashboards") && list.contains("operator"),
        "{list}"
    );
    assert!(
        !list.contains(&viewer) && !list.contains(&operator),
        "never the tokens"
    );

    let mut child = start_ferry(&cfg);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    receiver.push([Reply::status(422)]);
    assert!(send_event(&http, &base, "evt_1").await);
    let dead = async |token: &str| {
        let r = http
            .get(format!("{base}/admin/api/v1/messages?state=dead"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            r.status(),
            r.json::<serde_json::Value>().await.unwrap_or_default(),
        )
    };
    eventually(
        "the message dies",
        std::time::Duration::from_secs(20),
        async || {
            dead(&viewer).await.1["messages"]
                .as_array()
                .is_some_and(|m| m.len() == 1)
        },
    )
    .await;
    let id = dead(&viewer).await.1["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = async |token: &str| {
        http.post(format!("{base}/admin/api/v1/messages/{id}/retry"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    };
    let (status, p) = problem(retry(&viewer).await).await;
    assert_eq!(status, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("viewer"), "{p}");
    assert_eq!(retry(&operator).await.status(), StatusCode::OK);
    assert_eq!(
        retry("ferry_not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The retried message may still be queued (409) or already delivered
    // again (a delivered message may be replayed: 200); either way the
    // admin token was let in.
    let admin = retry(ADMIN_TOKEN).await.status();
    assert!(
        admin == StatusCode::CONFLICT || admin == StatusCode::OK,
        "the admin token works: {admin}"
    );
    let audit: serde_json::Value = http
        .get(format!("{base}/admin/api/v1/audit"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Newest first: the operator's retry is the oldest; the admin token's,
    // when it found the message delivered again, is newer.
    let retries: Vec<&serde_json::Value> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "retry")
        .collect();
    assert_eq!(retries.last().unwrap()["actor"], "ops-oncall", "{audit}");
    if admin == StatusCode::OK {
        assert_eq!(retries.len(), 2, "{audit}");
        assert_eq!(retries[0]["actor"], "admin-token", "{audit}");
    }

    assert!(
        ferry(&["tokens", "remove", "ops-oncall"], &cfg)
            .status
            .success()
    );
    assert_eq!(retry(&operator).await.status(), StatusCode::UNAUTHORIZED);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn ferry_users_keeps_argon2id_hashes_of_passwords_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .envs(secrets())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = with_stdin(
        &["users", "add", "ana", "--role", "operator"],
        "too short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than 12"));
    let out = with_stdin(
        &["users", "add", "ana", "--role", "operator"],
        "a long passphrase here\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = with_stdin(&["users", "passwd", "ana"], "another long passphrase\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = ferry(&["users", "list"], &cfg);
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("ana") && list.contains("operator") && !list.contains("argon2"),
        "{list}"
    );
    let store = ferry::store::Store::open_sqlite(&dir.path().join("data")).unwrap();
    let (_, phc) = store.user("ana").await.unwrap().unwrap();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(ferry::access::password::verify(
        "another long passphrase",
        &phc
    ));
    assert!(!ferry::access::password::verify(
        "a long passphrase here",
        &phc
    ));
    let db = std::fs::read(dir.path().join("data/ferry.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&db).contains("another long passphrase"));
}
