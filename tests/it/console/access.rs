//! Who may reach the console and what they may do: every page and action
//! without a session is sent to the login page (or refused with 401), a
//! viewer reads but sees no action and is refused when it forges one, an
//! action without CSRF proof is refused, and the admin API still takes a
//! token.

use ferry::sim::receiver::Reply;
use ferry::store::Role;
use reqwest::StatusCode;

use super::*;

const PAGES: &[&str] = &[
    "/console",
    "/console/failures",
    "/console/failures/0123456789abcdef",
    "/console/messages",
    "/console/messages?state=dead",
    "/console/messages/export?format=csv",
    "/console/messages/msg_1",
    "/console/routes",
    "/console/systems",
    "/console/mappings",
    "/console/credentials",
    "/console/config",
    "/console/audit",
    "/console/users",
];

const ACTIONS: &[&str] = &[
    "/console/messages/msg_1/retry",
    "/console/messages/msg_1/discard",
    "/console/messages/msg_1/edit",
    "/console/messages/retry",
    "/console/messages/discard",
    "/console/failures/0123456789abcdef/retry",
    "/console/failures/0123456789abcdef/discard",
    "/console/failures/0123456789abcdef/status",
    "/console/routes/stock/ordering-keys/release",
    "/console/users",
    "/console/users/ada/remove",
    "/console/users/ada/password",
    "/console/tokens",
    "/console/tokens/ci/remove",
    "/console/logout",
];

#[tokio::test]
async fn without_a_session_pages_go_to_login_and_actions_are_refused() {
    let t = TestApp::spawn().await;
    for path in PAGES {
        let r = client()
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "GET {path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/console/login?next="), "GET {path} → {to}");
    }
    for path in ACTIONS {
        let r = client()
            .post(format!("{}{path}", t.base))
            .header("origin", &t.base)
            .form(&[("reason", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "POST {path}");
    }
    // A forged or stale cookie is no session either.
    let r = client()
        .get(format!("{}/console", t.base))
        .header("cookie", "ferry_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for path in [
        "/admin/api/v1/messages",
        "/admin/api/v1/failures",
        "/admin/api/v1/audit",
    ] {
        let r = t
            .http
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "GET {path}");
    }
}

#[tokio::test]
async fn a_viewer_reads_everything_sees_no_action_and_a_forged_one_is_refused() {
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(422)]);
    let id = stock_message(&t, r#"{"sku":"TEA-1","qty":3}"#).await;
    t.drain().await;
    let group = t.store.message(&id).await.unwrap().unwrap();
    assert_eq!(group.summary.state.as_str(), "dead");
    let key = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    add_user(&t, "vera", Role::Viewer).await;
    let vera = login(&t, "vera").await;
    for path in PAGES
        .iter()
        .filter(|p| !p.contains("0123") && !p.contains("msg_1") && !p.contains("users"))
    {
        vera.page(&t, path).await;
    }
    assert_eq!(
        vera.get(&t, "/console/users").await.status(),
        StatusCode::FORBIDDEN
    );
    let message = vera.page(&t, &format!("/console/messages/{id}")).await;
    let failure = vera.page(&t, &format!("/console/failures/{key}")).await;
    for (name, page) in [("message", &message), ("group", &failure)] {
        assert!(
            page.contains("unknown") || page.contains("422"),
            "{name}: the cause is shown"
        );
        assert!(
            !page.contains("hx-post=\"/console/messages/")
                && !page.contains("hx-post=\"/console/failures/"),
            "a viewer's {name} page has no action: {page}"
        );
    }
    for path in [
        format!("/console/messages/{id}/retry"),
        format!("/console/failures/{key}/retry"),
    ] {
        let (status, p) = problem(vera.act(&t, &path, &[]).await).await;
        assert_eq!(status, 403, "{path}: {p}");
        assert_eq!(p["type"], "urn:ferry:problem:forbidden-role", "{p}");
    }
    assert_eq!(
        t.store
            .message(&id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .state
            .as_str(),
        "dead",
        "nothing was done"
    );
}

#[tokio::test]
async fn an_action_without_csrf_proof_is_refused() {
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(422)]);
    let id = stock_message(&t, r#"{"sku":"TEA-1","qty":3}"#).await;
    t.drain().await;
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    let path = format!("{}/console/messages/{id}/retry", t.base);
    let no_token = client()
        .post(&path)
        .header("cookie", &omar.cookie)
        .header("sec-fetch-site", "same-origin")
        .header("origin", &t.base)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let cross_site = client()
        .post(&path)
        .header("cookie", &omar.cookie)
        .header("x-csrf-token", &omar.csrf)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross_site.status(),
        StatusCode::FORBIDDEN,
        "a cross-site request"
    );
    let wrong = client()
        .post(&path)
        .header("cookie", &omar.cookie)
        .header("x-csrf-token", "not-the-token")
        .header("sec-fetch-site", "same-origin")
        .header("origin", &t.base)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "a wrong CSRF token");
    assert_eq!(
        t.store
            .message(&id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .state
            .as_str(),
        "dead"
    );
    let ok = omar
        .act(&t, &format!("/console/messages/{id}/retry"), &[])
        .await;
    assert!(ok.status().is_success(), "{:?}", ok.status());
    assert_eq!(
        t.store
            .message(&id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .state
            .as_str(),
        "queued"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let t = TestApp::spawn().await;
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    for path in ["/console", "/console/failures", "/console/login"] {
        let r = omar.get(&t, path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains(" style="),
            "{path}: no inline script or style"
        );
    }
    let htmx = omar.get(&t, "/console/static/htmx-2.0.11.min.js").await;
    assert_eq!(htmx.status(), StatusCode::OK);
    assert!(htmx.text().await.unwrap().contains("htmx"));
}
