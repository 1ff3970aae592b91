//! The read-only embed of one route's failures: with its embed token the
//! page renders the route's groups (and no other route's) without a
//! session, navigation, links or actions, escaped, and may be framed by
//! `console.embed_origins` (CSP `frame-ancestors`, no `X-Frame-Options`)
//! while every other console page may be framed by none; without a token,
//! or with a wrong or revoked one, it is 401. `ferry embed add|list|remove`
//! makes, lists and revokes the tokens.

use ferry::sim::receiver::Reply;
use ferry::store::EmbedToken;

use super::*;

const EMBEDDING: &str = r#"
[console]
embed_origins = ["https://erp.example.com", "http://10.0.0.5:8443"]
"#;

/// A new embed token for `route`, kept as `ferry embed add` keeps it.
async fn embed_token(t: &TestApp, route: &str) -> String {
    let token = ferry::access::embed_token();
    let kept = EmbedToken {
        token_sha256: ferry::access::sha256_hex(&token),
        route: route.into(),
        created_ms: t.clock.now_ms(),
        created_by: "cli:test".into(),
    };
    assert!(t.store.add_embed_token(kept).await.unwrap());
    token
}

async fn embed(t: &TestApp, query: &str) -> reqwest::Response {
    client()
        .get(format!("{}/console/embed/failures{query}", t.base))
        .send()
        .await
        .unwrap()
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_embed_shows_its_routes_failures_read_only_framed_by_the_configured_origins() {
    let t = TestApp::spawn_with(Options {
        extra: EMBEDDING.into(),
        ..Default::default()
    })
    .await;
    t.receiver.set_default(
        Reply::status(422)
            .body(r#"{"error":"<script>window.__xss=1</script> unknown sku <b>SKU</b>"}"#),
    );
    stock_message(&t, HOSTILE).await;
    stock_message(&t, r#"{"sku":"TEA-2"}"#).await;
    assert_eq!(t.webhook("evt_other", r#"{"n":1}"#).await.status(), 202);
    t.drain().await;
    let groups = t.store.failure_groups(&Default::default()).await.unwrap();
    let stock = groups.iter().find(|g| g.route == "stock").unwrap();
    let orders = groups.iter().find(|g| g.route == "orders").unwrap();
    let token = embed_token(&t, "stock").await;

    let r = embed(&t, &format!("?token={token}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
    let csp = header(&r, "content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains("frame-ancestors 'self' https://erp.example.com http://10.0.0.5:8443;"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(
        header(&r, "x-frame-options"),
        None,
        "CSP alone says who frames it"
    );
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let page = r.text().await.unwrap();
    assert!(page.contains("Failures of stock"), "{page}");
    assert!(
        page.contains(&format!("data-key=\"{}\"", stock.key)),
        "{page}"
    );
    assert!(
        !page.contains(&orders.key),
        "another route's groups are not shown"
    );
    assert!(page.contains("2 dead messages"), "{page}");
    for absent in [
        "<button", "hx-post", "hx-get", "<form", "<nav", "<script", "<a ", "csrf", "Sign out",
    ] {
        assert!(!page.contains(absent), "the embed holds {absent:?}");
    }
    for raw in ["<script>window.__xss", "<b>SKU</b>"] {
        assert!(!page.contains(raw), "raw {raw:?}");
    }
    assert!(
        page.contains("&#60;script&#62;window.__xss=1&#60;/script&#62;"),
        "{page}"
    );

    // Every other console page may be framed by none, embed origins or not.
    let login = client()
        .get(format!("{}/console/login", t.base))
        .send()
        .await
        .unwrap();
    let csp = header(&login, "content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&login, "x-frame-options"), Some("DENY"));

    for query in [
        String::new(),
        "?token=".to_owned(),
        "?token=embed_not-a-token".to_owned(),
        format!("?token={}", &token[..token.len() - 1]),
    ] {
        let r = embed(&t, &query).await;
        assert_eq!(
            header(&r, "content-security-policy").map(|c| c.contains("frame-ancestors 'self'")),
            Some(true)
        );
        let (status, p) = problem(r).await;
        assert_eq!(status, 401, "{query}: {p}");
    }
    let sha = ferry::access::sha256_hex(&token);
    assert!(
        t.store
            .remove_embed_token(&sha, "cli:test", t.clock.now_ms())
            .await
            .unwrap()
    );
    assert_eq!(
        problem(embed(&t, &format!("?token={token}")).await).await.0,
        401,
        "revoked"
    );
}

#[tokio::test]
async fn without_embed_origins_only_ferry_itself_may_frame_the_embed() {
    let t = TestApp::spawn().await;
    let token = embed_token(&t, "orders").await;
    let r = embed(&t, &format!("?token={token}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = header(&r, "content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'self';"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("Nothing is failing on orders"), "{page}");
}

fn ferry(args: &[&str], cfg: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("embed")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .envs(secrets())
        .env_remove("FERRY_DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn ferry_embed_adds_lists_and_removes_tokens_kept_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let out = ferry(&["add", "stock", "--actor", "ana"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("embed_") && token.len() > 40, "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("<iframe"));
    let out = ferry(&["add", "nowhere"], &cfg);
    assert_eq!(out.status.code(), Some(1), "an unknown route");

    let list = String::from_utf8(ferry(&["list"], &cfg).stdout).unwrap();
    let sha = ferry::access::sha256_hex(&token);
    assert!(
        list.contains(&sha[..12]) && list.contains("stock") && list.contains("ana"),
        "{list}"
    );
    assert!(
        !list.contains(&token) && !list.contains(&sha),
        "neither the token nor its hash"
    );

    // The token opens the page of a server on that store.
    let store = ferry::store::Store::open_sqlite(&dir.path().join("data")).unwrap();
    let kept = store
        .embed_token(&sha)
        .await
        .unwrap()
        .expect("kept by its hash");
    assert_eq!(
        (kept.route.as_str(), kept.created_by.as_str()),
        ("stock", "ana")
    );
    let t = TestApp::spawn_with(Options {
        store: Some(store.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(embed(&t, &format!("?token={token}")).await.status(), 200);

    let out = ferry(&["remove", &sha[..12], "--actor", "ana"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(embed(&t, &format!("?token={token}")).await.status(), 401);
    assert_eq!(ferry(&["remove", &sha[..12]], &cfg).status.code(), Some(1));
    let audit = store.audit_of("stock", 10).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.channel.as_str(), a.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("embed-remove", "cli", "ana"), ("embed-add", "cli", "ana")]
    );
    assert!(
        audit
            .iter()
            .all(|a| a.detail == format!("token {}", &sha[..12]))
    );
}
