//! Secrets fail closed and stay secret: tokens that are empty, mis-cased
//! or guessed by length; credentials kept with messages or attempts;
//! deliveries steered to another host or through a proxy; one client
//! reading another's work.

use std::time::Duration;

use ferry::sim::receiver::Reply;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_admin_token_file_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "").unwrap();
    let cfg = write_config(&dir, "http://127.0.0.1:9", free_port(), "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        r#"admin_token = { env = "ADMIN" }"#,
        &format!("admin_token = {{ file = {:?} }}", token.to_str().unwrap()),
    );
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = ferry_cmd(&["check-config", cfg.to_str().unwrap()], &[]);
    assert!(!ok, "check-config accepted an empty admin token: {out}");
    assert!(out.contains("admin_token"), "{out}");
    // serve refuses the same config: no window where the API is open.
    let mut child = spawn(&cfg, &[]);
    let status = child.wait().unwrap();
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_credential_from_env_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "http://127.0.0.1:9", free_port(), "", "");
    let (ok, out) = ferry_cmd(&["check-config", cfg.to_str().unwrap()], &[("ERP_KEY", "")]);
    assert!(!ok, "{out}");
    assert!(out.contains("erp_client"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_wants_a_token_in_any_case_of_bearer() {
    let f = Ferry::start("", "").await;
    let url = format!("{}/admin/api/v1/messages", f.base);
    let none = f.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["content-type"], "application/problem+json");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = f
            .http
            .get(&url)
            .header("authorization", format!("{scheme} {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    // Wrong tokens of every length are refused alike.
    for guess in ["a", "admin-secre", "admin-secret!", &"x".repeat(4096)] {
        let r = f.http.get(&url).bearer_auth(guess).send().await.unwrap();
        assert_eq!(r.status(), 401, "{guess}");
    }
    // The ERP's client key takes the lower-case scheme too.
    let r = f
        .http
        .post(format!("{}/api/v1/routes/stock/messages", f.base))
        .header("authorization", format!("bearer {ERP_KEY}"))
        .header("idempotency-key", "lower-1")
        .body(r#"{"sku":"A"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

const API_KEY_ROUTE: &str = r#"
[routes.keyed]
source = { kind = "webhook", scheme = "api-key", header = "X-Partner-Auth", credentials = ["shopify"] }
destination = { system = "erp", path = "/keyed" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_scheme_secret_is_never_stored_or_shown() {
    let f = Ferry::start("", API_KEY_ROUTE).await;
    let r = f
        .http
        .post(format!("{}/in/keyed", f.base))
        .header("x-partner-auth", "shopify-secret")
        .header("x-session-token", "tok-123456")
        .header("cookie", "sid=abcdef")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id: serde_json::Value = r.json().await.unwrap();
    let shown = f
        .admin(&format!("/messages/{}", id["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in ["shopify-secret", "tok-123456", "sid=abcdef"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    // Nor anywhere in the database files.
    for entry in std::fs::read_dir(f.db_path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        for secret in ["shopify-secret", "tok-123456"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the store's files"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_cookie_is_redacted_in_the_attempt() {
    let f = Ferry::start("", "").await;
    f.receiver.set_default(
        Reply::status(500)
            .header("set-cookie", "session=downstream-secret")
            .header("x-auth-token", "downstream-token"),
    );
    assert_eq!(f.webhook("evt_cookie", r#"{"a":1}"#).await.status(), 202);
    let mut shown = String::new();
    for _ in 0..200 {
        let list = f.admin_json("/messages").await;
        let id = list["messages"][0]["id"].as_str().unwrap().to_owned();
        let detail = f.admin_json(&format!("/messages/{id}")).await;
        if detail["attempts"].as_array().is_some_and(|a| !a.is_empty()) {
            shown = detail.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!shown.is_empty(), "an attempt was recorded");
    assert!(!shown.contains("downstream-secret"), "{shown}");
    assert!(!shown.contains("downstream-token"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_in_the_environment_is_not_used() {
    let proxy = Receiver::start().await.unwrap();
    proxy.set_default(Reply::status(200));
    let f = Ferry::start_with_env(
        "",
        "",
        &[
            ("HTTP_PROXY", &proxy.url()),
            ("http_proxy", &proxy.url()),
            ("ALL_PROXY", &proxy.url()),
        ],
    )
    .await;
    assert_eq!(f.webhook("evt_proxy", r#"{"a":1}"#).await.status(), 202);
    for _ in 0..400 {
        if f.receiver.count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(f.receiver.count(), 1, "delivered directly");
    assert_eq!(
        proxy.count(),
        0,
        "the proxy saw nothing, nor the bearer token"
    );
}

#[test]
fn a_base_url_or_api_version_that_changes_the_host_is_refused() {
    for (system, why) in [
        (
            "[systems.evil]\nbase_url = \"https://shop.example.com/{api_version}\"\napi_version = \"@attacker.example\"\n",
            "api_version",
        ),
        (
            "[systems.evil]\nbase_url = \"https://user:pass@shop.example.com/\"\n",
            "base_url",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(&dir, "http://127.0.0.1:9", free_port(), "", system);
        let (ok, out) = ferry_cmd(&["check-config", cfg.to_str().unwrap()], &[]);
        assert!(!ok, "accepted: {system}\n{out}");
        assert!(out.contains(why), "{out}");
    }
}

const BULK_ROUTE: &str = r#"
[routes.sync]
source = { kind = "api", credentials = ["erp_client", "other_client"] }
destination = { system = "erp", path = "/sync" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_read_another_clients_bulk_job() {
    let f = Ferry::start("", BULK_ROUTE).await;
    let r = f
        .http
        .post(format!("{}/api/v1/routes/sync/bulk", f.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "job-a")
        .body("{\"a\":1}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let status = r.headers()["location"].to_str().unwrap().to_owned();
    let mine = f
        .http
        .get(format!("{}{status}", f.base))
        .bearer_auth(ERP_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let theirs = f
        .http
        .get(format!("{}{status}", f.base))
        .bearer_auth(OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
}
