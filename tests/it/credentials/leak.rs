//! Secrets never leak: the real `ferry serve`, its credentials in the
//! encrypted store, OAuth2 (client credentials and a rotating refresh
//! token), Standard Webhooks signing and a webhook secret rotated mid-run,
//! with failures on every side (401s, 500s, a token endpoint down for a
//! while). Afterwards the database files, the captured logs (at debug),
//! every admin API answer and `/metrics` are searched for every secret
//! value: webhook secrets, client secrets and keys, every token sent
//! downstream, every refresh token, the master key. Zero hits.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry::sim::receiver::{Receiver, Reply};

use super::cli::{all_bytes, contains, generate_key, run};
use crate::common::*;
use crate::oauth::token_server::{Mode, TokenServer};

const HOOK_V1: &str = "whsec_bGVhay10ZXN0LWhvb2stc2VjcmV0LXZlcnNpb24tMQ==";
const HOOK_V2: &str = "whsec_bGVhay10ZXN0LWhvb2stc2VjcmV0LXZlcnNpb24tMg==";
const SIGN: &str = "whsec_bGVhay10ZXN0LXNpZ25pbmctc2VjcmV0LXZhbHVl";
const CLIENT: &str = "leak-test-client-secret-4c2a91";
const REFRESH0: &str = "rtok-5b3e-0";

fn extra(receiver: &str, token_url: &str) -> String {
    let retry = r#"retry = { max_attempts = 3, initial_delay = "200ms", max_delay = "1s", max_age = "1h" }"#;
    format!(
        r#"
[systems.api]
base_url = "{receiver}"
auth = {{ kind = "oauth2", token_url = "{token_url}", client_id = "leak", client_secret = "api_secret" }}
{retry}

[systems.hs]
base_url = "{receiver}"
auth = {{ kind = "oauth2-refresh", token_url = "{token_url}", client_id = "leak", client_secret = "api_secret", refresh_token = "hs_refresh" }}
{retry}

[systems.hooks]
base_url = "{receiver}"
auth = {{ kind = "standard-webhooks", credential = "signer" }}
{retry}

[routes.to_api]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["hook"] }}
destination = {{ system = "api", path = "/api" }}

[routes.to_hs]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["hook"] }}
destination = {{ system = "hs", path = "/hs" }}

[routes.to_hooks]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["hook"] }}
destination = {{ system = "hooks", path = "/hooks" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_database_logs_admin_api_or_metrics() {
    let tokens = TokenServer::start(Some(2)).await;
    tokens.set(|s| {
        s.refresh = Some(REFRESH0.into());
        s.rotate = true;
    });
    let receiver = Receiver::start().await.unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    receiver.set_responder(Arc::new(move |_| {
        match count.fetch_add(1, Ordering::Relaxed) % 6 {
            1 => Reply::status(401),
            3 => Reply::status(500),
            _ => Reply::status(200),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(
        &receiver.url(),
        &Options {
            credentials: "hook = { store = \"hook\" }\napi_secret = { store = \"api_secret\" }\n\
                          hs_refresh = { store = \"hs_refresh\" }\nsigner = { store = \"sign\" }"
                .into(),
            extra: extra(&receiver.url(), &tokens.url),
            ..Options::default()
        },
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, text).unwrap();
    let key = generate_key();
    for (name, value) in [
        ("hook", HOOK_V1),
        ("api_secret", CLIENT),
        ("hs_refresh", REFRESH0),
        ("sign", SIGN),
    ] {
        let out = run(&cfg, Some(&key), &["set", name], value);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = dir.path().join("ferry.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .envs(secrets())
        .env("FERRY_MASTER_KEY", &key)
        .env_remove("FERRY_MASTER_KEY_FILE")
        .env_remove("FERRY_DATABASE_URL")
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(dir.path().join("ferry.out")).unwrap())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&http, &base).await;

    let send = async |round: &str, secret: &str| {
        for route in ["to_api", "to_hs", "to_hooks"] {
            for i in 0..6 {
                let id = format!("{round}-{route}-{i}");
                let body = format!(r#"{{"n":"{id}"}}"#);
                let r = post_signed(&http, &base, route, &id, &body, now(), secret).await;
                assert_eq!(r.status(), 202, "{id}");
            }
        }
    };
    send("a", HOOK_V1).await;
    tokens.set(|s| s.mode = Mode::Fail(503));
    send("b", HOOK_V1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokens.set(|s| s.mode = Mode::Issue);
    let out = run(
        &cfg,
        Some(&key),
        &["rotate", "hook", "--grace", "1h"],
        HOOK_V2,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the rotation arrives", Duration::from_secs(5), async || {
        post_signed(&http, &base, "to_api", "probe", "{}", now(), HOOK_V2)
            .await
            .status()
            == 202
    })
    .await;
    send("c", HOOK_V2).await;
    send("d", HOOK_V1).await;
    let forged = post_signed(&http, &base, "to_api", "forged", "{}", now(), SIGN).await;
    assert_eq!(forged.status(), 401);

    // every message settled: delivered or dead
    let admin = |path: &str| {
        http.get(format!("{base}/admin/api/v1{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    eventually(
        "every message settles",
        Duration::from_secs(30),
        async || {
            let list: serde_json::Value = admin("/messages?limit=1000")
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let items = list["messages"]
                .as_array()
                .or(list.as_array())
                .cloned()
                .unwrap_or_default();
            items.len() >= 73
                && items
                    .iter()
                    .all(|m| matches!(m["state"].as_str(), Some("delivered" | "dead")))
        },
    )
    .await;

    // everything an operator or a scraper can read
    let mut answers = String::new();
    let list: serde_json::Value = admin("/messages?limit=1000")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["messages"]
        .as_array()
        .or(list.as_array())
        .cloned()
        .unwrap_or_default();
    assert!(
        items.iter().any(|m| m["state"] == "dead"),
        "a run with failures"
    );
    answers.push_str(&list.to_string());
    for m in &items {
        let id = m["id"].as_str().unwrap();
        answers.push_str(
            &admin(&format!("/messages/{id}"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let creds: serde_json::Value = admin("/credentials").await.unwrap().json().await.unwrap();
    let hook = creds["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hook")
        .unwrap();
    assert_eq!(hook["source"], "store");
    let versions: Vec<_> = hook["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(
        versions,
        [Some(2), Some(1)],
        "both versions inside the grace"
    );
    answers.push_str(&creds.to_string());
    for path in [
        "/messages?state=dead",
        "/routes",
        "/systems",
        "/audit",
        "/config",
        "/routes/to_api/shadow",
    ] {
        answers.push_str(&admin(path).await.unwrap().text().await.unwrap());
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = std::fs::read(&log).unwrap();
    logs.extend(std::fs::read(dir.path().join("ferry.out")).unwrap());
    assert!(logs.len() > 1000, "debug logs were captured");
    let db = all_bytes(&dir.path().join("data"));

    let issued = tokens.script.lock().unwrap().issued;
    assert!(issued >= 3, "tokens were issued and sent: {issued}");
    let mut secrets: Vec<String> = [HOOK_V1, HOOK_V2, SIGN, CLIENT, REFRESH0, key.as_str()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    secrets.extend([HOOK_V1, HOOK_V2, SIGN].map(|s| s.trim_start_matches("whsec_").to_owned()));
    secrets.extend((1..=issued).map(|i| format!("tok-{i}")));
    secrets.extend((1..=issued + 1).map(|i| format!("rtok-5b3e-{i}")));
    secrets.extend(["erp-outbound-token", ERP_KEY, OTHER_KEY, ADMIN_TOKEN].map(str::to_owned));
    let mut hits = Vec::new();
    for s in &secrets {
        for (place, hay) in [
            ("the database files", &db),
            ("the logs", &logs),
            ("the admin API", &answers.as_bytes().to_vec()),
            ("/metrics", &metrics.as_bytes().to_vec()),
        ] {
            if contains(hay, s) {
                hits.push(format!("{s} in {place}"));
            }
        }
    }
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
