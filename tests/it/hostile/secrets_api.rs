//! Issue 9, "secrets fail closed and stay secret": empty secrets are config
//! errors, the admin API refuses without a token, `Bearer` is case-blind,
//! credential headers are neither stored nor shown (and a migration scrubs old
//! rows), downstream cookies are redacted in attempts, configs cannot send
//! deliveries to another host, and one client cannot read another's bulk job.

use std::process::Command;

use crate::common::*;
use ferry::config::Config;
use ferry::sim::receiver::Reply;
use reqwest::Method;

const PARTNER_SECRET: &str = "shopify-secret";

fn parse(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let env = secrets();
    let lookup = move |k: &str| env.get(k).cloned();
    Config::parse(text, "t.toml", dir.path(), &lookup).map_err(|e| e.to_string())
}

fn with_erp(lines: &str) -> String {
    config_text(
        "http://127.0.0.1:9",
        &Options {
            erp: lines.into(),
            ..Default::default()
        },
    )
}

#[test]
fn an_empty_admin_token_file_is_a_check_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [("empty", ""), ("newline", "\n"), ("blank", "  \n")] {
        std::fs::write(dir.path().join(name), content).unwrap();
        let text = config_text("http://127.0.0.1:9", &Options::default()).replace(
            r#"admin_token = { env = "ADMIN" }"#,
            &format!(r#"admin_token = {{ file = "{name}" }}"#),
        );
        let cfg = dir.path().join("ferry.toml");
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .envs(secrets())
            .arg("check-config")
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("server.admin_token"), "{name}: {err}");
        assert!(err.contains("is empty"), "{name}: {err}");
    }
}

#[test]
fn an_empty_credential_env_var_is_a_config_error() {
    let text = config_text("http://127.0.0.1:9", &Options::default());
    let env = {
        let mut e = secrets();
        e.insert("ERP_KEY".into(), String::new());
        e
    };
    let dir = tempfile::tempdir().unwrap();
    let lookup = move |k: &str| env.get(k).cloned();
    let err = Config::parse(&text, "t.toml", dir.path(), &lookup)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("credentials.erp_client"), "{err}");
    assert!(err.contains("ERP_KEY is empty"), "{err}");
}

#[tokio::test]
async fn the_admin_api_refuses_tokenless_requests_and_takes_lowercase_bearer() {
    let t = TestApp::spawn().await;
    let url = format!("{}/admin/api/v1/messages", t.base);
    let none = t.http.get(&url).send().await.unwrap();
    let (status, p) = problem(none).await;
    assert_eq!(status, 401, "{p}");
    for bad in [
        "Bearer ",
        "Bearer",
        "Basic admin-secret",
        "Bearer admin-secre",
    ] {
        let r = t.http.get(&url).header("authorization", bad).send().await;
        assert_eq!(r.unwrap().status(), 401, "{bad}");
    }
    for good in ["bearer admin-secret", "BEARER admin-secret"] {
        let r = t.http.get(&url).header("authorization", good).send().await;
        assert_eq!(r.unwrap().status(), 200, "{good}");
    }
    let r = t
        .http
        .post(format!("{}/api/v1/routes/stock/messages", t.base))
        .header("authorization", format!("bearer {ERP_KEY}"))
        .header("idempotency-key", "k1")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn the_api_key_secret_is_neither_shown_nor_stored() {
    let t = TestApp::spawn_with(Options {
        extra: r#"
[routes.partner]
source = { kind = "webhook", scheme = "api-key", header = "X-Partner", credentials = ["shopify"] }
destination = { system = "erp", path = "/partner" }
"#
        .into(),
        ..Default::default()
    })
    .await;
    let r = t
        .http
        .post(format!("{}/in/partner", t.base))
        .header("x-partner", PARTNER_SECRET)
        .header("x-client-token", "tok-123456")
        .header("cookie", "sid=cookie-999")
        .header("content-type", "application/json")
        .body(r#"{"n":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id: serde_json::Value = r.json().await.unwrap();
    let id = id["id"].as_str().unwrap();
    let shown = t
        .admin(Method::GET, &format!("/messages/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("x-partner"), "{shown}");
    for secret in [PARTNER_SECRET, "tok-123456", "cookie-999"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    t.shutdown.cancel();
    let data_dir = t.app.config().server.data_dir.clone();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in [PARTNER_SECRET, "tok-123456", "cookie-999"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in the store's files"
            );
        }
    }
}

#[tokio::test]
async fn the_scrub_migration_cleans_rows_stored_by_an_old_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.sqlite3");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            include_str!("../../../src/store/sqlite/schema.sql"),
            include_str!("../../../src/store/sqlite/v2.sql"),
            include_str!("../../../src/store/sqlite/v3.sql"),
            include_str!("../../../src/store/sqlite/v4.sql"),
        ] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch("PRAGMA user_version = 4").unwrap();
        c.execute(
            "INSERT INTO messages (id, route, received_ms, headers, body) VALUES ('m1', 'r', 0, ?1, x'7b7d')",
            [r#"{"x-api-key":"OLD-SECRET","x-shopify-hmac-sha256":"OLD-SIG","content-type":"application/json","idempotency-key":"k"}"#],
        )
        .unwrap();
        c.execute(
            "INSERT INTO attempts (delivery_id, started_ms, duration_ms, request, response, explanation, hint, outcome)
             VALUES (1, 0, 1, ?1, ?2, '', '', 'delivered')",
            [
                r#"{"method":"POST","url":"http://x","headers":[["x-shop-access-token","OLD-TOKEN"]],"body_excerpt":""}"#,
                r#"{"status":200,"headers":[["set-cookie","OLD-COOKIE"],["www-authenticate","Basic"]],"body_excerpt":""}"#,
            ],
        )
        .unwrap();
    }
    let store = ferry::store::Store::open_sqlite(dir.path()).expect("migrates");
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let headers: String = c
        .query_row("SELECT headers FROM messages WHERE id = 'm1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let h: serde_json::Value = serde_json::from_str(&headers).unwrap();
    assert_eq!(h["x-api-key"], "[redacted]");
    assert_eq!(h["x-shopify-hmac-sha256"], "[redacted]");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["idempotency-key"], "k");
    let (req, resp): (String, String) = c
        .query_row("SELECT request, response FROM attempts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        !req.contains("OLD-TOKEN") && req.contains("[redacted]"),
        "{req}"
    );
    assert!(!resp.contains("OLD-COOKIE"), "{resp}");
    assert!(
        resp.contains("www-authenticate") && resp.contains("Basic"),
        "{resp}"
    );
}

#[tokio::test]
async fn a_downstream_set_cookie_is_stored_redacted() {
    let receiver = ferry::sim::receiver::Receiver::start().await.unwrap();
    let t = TestApp::spawn_with(Options {
        extra: format!(
            r#"
[systems.hdr]
base_url = "{}"
auth = {{ kind = "header", name = "X-Erp-Pass", credential = "erp_token" }}

[routes.hdr]
source = {{ kind = "api", credentials = ["erp_client"] }}
destination = {{ system = "hdr", path = "/in" }}
"#,
            receiver.url()
        ),
        receiver: Some(receiver.clone()),
        ..Default::default()
    })
    .await;
    t.receiver.push([Reply::status(200)
        .header("set-cookie", "sid=downstream-cookie")
        .header("x-session-token", "downstream-token")
        .header("x-request-id", "req-42")]);
    let r = t
        .http
        .post(format!("{}/api/v1/routes/hdr/messages", t.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "c1")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    t.drain().await;
    assert_eq!(
        t.receiver.received()[0]
            .headers
            .get("x-erp-pass")
            .map(|v| v.as_bytes()),
        Some(&b"erp-outbound-token"[..]),
        "the credential went out"
    );
    let msg = t.only_message().await;
    let shown = t
        .admin(Method::GET, &format!("/messages/{}", msg.summary.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("set-cookie") && shown.contains("req-42"),
        "{shown}"
    );
    for secret in [
        "downstream-cookie",
        "downstream-token",
        "erp-outbound-token",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

#[test]
fn hostile_api_versions_base_urls_and_paths_are_refused() {
    let base = with_erp("");
    assert!(parse(&base).is_ok());
    let versioned = |v: &str| {
        base.replace(
            "base_url = \"http://127.0.0.1:9/api\"",
            &format!(
                "base_url = \"http://127.0.0.1:9/api/{{api_version}}\"\napi_version = \"{v}\""
            ),
        )
    };
    assert!(parse(&versioned("2024-07")).is_ok());
    for bad in ["@evil", "x/../..", "a b", "v1?x=1", ""] {
        let err = parse(&versioned(bad)).unwrap_err();
        assert!(err.contains("systems.erp.api_version"), "{bad}: {err}");
    }
    let err = parse(&base.replace("http://127.0.0.1:9/api", "http://user:pass@127.0.0.1:9/api"))
        .unwrap_err();
    assert!(
        err.contains("systems.erp.base_url") && err.contains("password"),
        "{err}"
    );
    let err = parse(&base.replace("http://127.0.0.1:9/api", "http://{api_version}.example.com"))
        .unwrap_err();
    assert!(err.contains("systems.erp.base_url"), "{err}");
    let err =
        parse(&base.replace("path = \"/orders\"", "path = \"//evil.example/x\"")).unwrap_err();
    assert!(err.contains("routes.orders.destination.path"), "{err}");
    let err = parse(&with_erp(r#"proxy = "not a url""#)).unwrap_err();
    assert!(err.contains("systems.erp.proxy"), "{err}");
    assert!(parse(&with_erp(r#"proxy = "http://127.0.0.1:3128""#)).is_ok());
}

#[test]
fn a_delivery_url_off_the_system_host_is_refused() {
    assert!(ferry::connect::same_origin("http://h:9/api", "http://h:9/api/x").is_ok());
    for url in [
        "http://other:9/x",
        "https://h:9/x",
        "http://h:10/x",
        "http://u@h:9/x",
    ] {
        assert!(
            ferry::connect::same_origin("http://h:9/api", url).is_err(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn one_client_cannot_read_another_clients_bulk_job() {
    let t = TestApp::spawn().await;
    let r = t
        .http
        .post(format!("{}/api/v1/routes/stock/bulk", t.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "bulk-a")
        .header("content-type", "application/x-ndjson")
        .body("{\"n\":1}\n{\"n\":2}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    let job = v["job"].as_str().unwrap().to_owned();
    let status = |key: &'static str| {
        t.http
            .get(format!("{}/api/v1/routes/stock/bulk/{job}", t.base))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(status(ERP_KEY).await.unwrap().status(), 200);
    let (code, p) = problem(status(OTHER_KEY).await.unwrap()).await;
    assert_eq!(code, 404, "{p}");
}

#[tokio::test]
async fn the_postgres_scrub_migration_cleans_rows_stored_by_an_old_schema() {
    let Some(pg) = PgScratch::new("postgres scrub").await else {
        return;
    };
    {
        let (c, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for sql in [
            include_str!("../../../src/store/postgres/schema.sql"),
            include_str!("../../../src/store/postgres/v2.sql"),
            include_str!("../../../src/store/postgres/v3.sql"),
            include_str!("../../../src/store/postgres/v4.sql"),
            include_str!("../../../src/store/postgres/v5.sql"),
        ] {
            c.batch_execute(sql).await.unwrap();
        }
        c.batch_execute(
            "CREATE TABLE ferry_schema (version INTEGER NOT NULL);
             INSERT INTO ferry_schema SELECT generate_series(1, 5);",
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO messages (id, route, received_ms, headers, body) VALUES ('m1', 'r', 0, $1, '\\x7b7d')",
            &[&r#"{"X-Api-Key":"OLD-SECRET","cookie":"OLD-COOKIE","content-type":"application/json"}"#],
        )
        .await
        .unwrap();
    }
    let store = pg.store().await;
    drop(store);
    let (c, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let headers: String = c
        .query_one("SELECT headers FROM messages WHERE id = 'm1'", &[])
        .await
        .unwrap()
        .get(0);
    let h: serde_json::Value = serde_json::from_str(&headers).unwrap();
    assert_eq!(h["X-Api-Key"], "[redacted]");
    assert_eq!(h["cookie"], "[redacted]");
    assert_eq!(h["content-type"], "application/json");
    drop(c);
    pg.drop().await;
}
