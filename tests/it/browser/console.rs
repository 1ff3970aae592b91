//! The console in a real Chromium: an operator signs in, finds a dead
//! message in its failure group, reads why, edits its payload and replays
//! it, sees it delivered and the action in the audit log; a viewer sees no
//! action and a forged one is refused (from the console's own page and
//! from another origin); a payload full of markup runs no script on any
//! page. These runs also take the README's screenshots
//! (`FERRY_DOC_SCREENSHOTS=1`).

use ferry::sim::receiver::Reply;
use ferry::store::Role;

use super::Browser;
use crate::common::*;
use crate::console::{HOSTILE, add_user, stock_message};

/// Half a day of traffic for the screenshots: deliveries every hour, and
/// dead ones from three causes; the last hour's unknown SKU is the message
/// the operator fixes (its id is returned).
async fn busy_day(t: &TestApp) -> String {
    t.receiver.set_responder(std::sync::Arc::new(|r| {
        let body = String::from_utf8_lossy(&r.body);
        if body.contains("TEA-1\"") {
            Reply::status(422).body(r#"{"error":"unknown sku TEA-1"}"#)
        } else if body.contains("\"qty\":-") {
            Reply::status(400).body(r#"{"error":"qty must be positive"}"#)
        } else if body.contains("LOCK") {
            Reply::status(409).body(r#"{"error":"order 1042 is being edited by another user"}"#)
        } else {
            Reply::status(200)
        }
    }));
    for hour in 0..12u64 {
        for i in 0..(4 + hour % 5) {
            stock_message(t, &format!(r#"{{"sku":"EARL-{hour}-{i}","qty":2}}"#)).await;
        }
        if hour % 4 == 1 {
            stock_message(t, &format!(r#"{{"sku":"MINT-{hour}","qty":-1}}"#)).await;
        }
        if hour % 5 == 2 {
            stock_message(t, &format!(r#"{{"sku":"LOCK-{hour}","qty":1}}"#)).await;
        }
        t.drain().await;
        t.clock.advance(3_600_000);
    }
    let id = stock_message(t, r#"{"sku":"TEA-1","qty":3}"#).await;
    t.drain().await;
    id
}

/// Signs `name` in through the login form and waits for the dashboard.
async fn sign_in(b: &Browser, t: &TestApp, name: &str) {
    b.goto(format!("{}/console", t.base)).await;
    b.wait_for("#login").await;
    assert!(
        b.url().await.contains("/console/login?next="),
        "sent to sign in"
    );
    b.fill("#username", name).await;
    b.fill("#password", "correct horse battery").await;
    b.click("#sign-in").await;
    b.wait_for("#summary").await;
    assert!(b.text("#whoami").await.contains(name));
}

#[tokio::test]
async fn an_operator_fixes_a_dead_message_from_its_failure_group() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let t = TestApp::spawn().await;
    let id = busy_day(&t).await;
    add_user(&t, "omar", Role::Operator).await;
    sign_in(&b, &t, "omar").await;
    b.doc_screenshot("dashboard").await;

    // The failure groups: one cause, with its explanation.
    b.click("a[href='/console/failures']").await;
    b.wait_for("#groups").await;
    let causes = b.texts("#groups tr.group .explain").await;
    assert_eq!(causes.len(), 3, "{causes:?}");
    b.doc_screenshot("failures").await;
    let key = b
        .eval("return [...document.querySelectorAll('#groups tr.group')].find(r => r.textContent.includes('unknown sku')).dataset.key")
        .await;
    b.click(&format!(
        "#groups tr.group[data-key='{}'] a",
        key.as_str().unwrap()
    ))
    .await;
    b.wait_for("#explanation").await;
    assert!(b.text("#hint").await.contains("edit and replay"));
    assert_eq!(b.text("#group-count").await, "1");
    assert!(b.text("#explanation").await.contains("unknown sku TEA-1"));

    // Its message: the payload, the attempt, then the edit and replay.
    b.click(&format!("a[href='/console/messages/{id}']")).await;
    b.wait_for("#edit-body").await;
    assert!(b.text("#payload").await.contains("TEA-1"));
    assert!(b.text("#attempts").await.contains("422"));
    b.doc_screenshot("message").await;
    b.fill("#edit-body", r#"{"sku":"TEA-01","qty":3}"#).await;
    b.fill(
        "#edit-form input[name=note]",
        "SKU renamed in the catalogue",
    )
    .await;
    b.click("#replay").await;
    b.wait_for("#notice").await;
    assert_eq!(b.text("#message-state").await, "queued");

    // Delivered once the worker runs.
    t.drain().await;
    b.goto(format!("{}/console/messages/{id}", t.base)).await;
    b.wait_for_text("#message-state", "delivered").await;
    assert!(b.text("#edited-payload").await.contains("TEA-01"));
    assert_eq!(
        &t.receiver.received().last().unwrap().body[..],
        br#"{"sku":"TEA-01","qty":3}"#
    );

    // The audit log names who did it.
    b.click("a[href='/console/audit']").await;
    b.wait_for("#audit").await;
    let audit = b.text("#audit").await;
    assert!(audit.contains("omar") && audit.contains("edit"), "{audit}");
    assert!(audit.contains("SKU renamed"), "{audit}");
    assert!(b.js_errors().await.is_empty(), "{:?}", b.js_errors().await);

    // On a phone the pages still read.
    b.set_phone_size().await;
    b.goto(format!("{}/console/failures", t.base)).await;
    b.wait_for("nav").await;
    let overflow = b
        .eval("return document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert_eq!(overflow, serde_json::json!(false), "no sideways scrolling");
}

#[tokio::test]
async fn a_viewer_sees_no_action_and_forged_ones_are_refused() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(422)]);
    let id = stock_message(&t, r#"{"sku":"TEA-1","qty":3}"#).await;
    t.drain().await;
    add_user(&t, "vera", Role::Viewer).await;
    sign_in(&b, &t, "vera").await;
    let key = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    for path in [
        format!("/console/messages/{id}"),
        format!("/console/failures/{key}"),
    ] {
        b.goto(format!("{}{path}", t.base)).await;
        b.wait_for("h1").await;
        let buttons = b
            .eval("return document.querySelectorAll('[hx-post]:not(#logout), #edit-body').length")
            .await;
        assert_eq!(
            buttons,
            serde_json::json!(0),
            "{path}: no action for a viewer"
        );
    }
    // A forged action from the console's own page, with the page's CSRF
    // token: refused for the role; without the token: refused too.
    b.goto(format!("{}/console/messages/{id}", t.base)).await;
    b.wait_for("h1").await;
    let forged = b
        .eval(&format!(
            "const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
             const post = (h) => fetch('/console/messages/{id}/retry', {{method: 'POST', headers: h}})
               .then(r => r.status);
             return Promise.all([post({{'X-CSRF-Token': token}}), post({{}})]);"
        ))
        .await;
    assert_eq!(forged, serde_json::json!([403, 403]));
    // From another origin: a page that posts a form to the console.
    let evil = evil_page(&format!("{}/console/messages/{id}/retry", t.base)).await;
    b.goto(&evil).await;
    b.wait_for("#sent").await;
    let state = t.store.message(&id).await.unwrap().unwrap().summary.state;
    assert_eq!(state.as_str(), "dead", "nothing was done");
}

/// A page on another origin that posts a form to `target` on load.
async fn evil_page(target: &str) -> String {
    let page = format!(
        r#"<!doctype html><html><body><p id="sent">sent</p>
<iframe name="out"></iframe>
<form id="f" method="post" action="{target}" target="out"><input name="reason" value="x"></form>
<script>document.getElementById('f').submit();</script></body></html>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_hostile_payload_runs_no_script_on_any_page() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(422)
        .header("content-type", "application/json")
        .body(
            r#"{"error":"<script>window.__xss=4</script><img src=x onerror=\"window.__xss=5\">"}"#,
        )]);
    let id = stock_message(&t, HOSTILE).await;
    t.drain().await;
    add_user(&t, "omar", Role::Operator).await;
    sign_in(&b, &t, "omar").await;
    let key = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    let pages = [
        "/console".to_owned(),
        "/console/failures".to_owned(),
        format!("/console/failures/{key}"),
        "/console/messages".to_owned(),
        format!("/console/messages/{id}"),
        "/console/audit".to_owned(),
        "/console/routes".to_owned(),
        "/console/systems".to_owned(),
        "/console/config".to_owned(),
    ];
    for path in &pages {
        b.goto(format!("{}{path}", t.base)).await;
        b.wait_for("main").await;
        let ran = b
            .eval("return window.__xss === undefined ? null : window.__xss")
            .await;
        assert_eq!(
            ran,
            serde_json::Value::Null,
            "{path}: a payload's script ran"
        );
        let injected = b
            .eval("return document.querySelectorAll('main script, main img[src=x], main [onerror], main a[href^=javascript]').length")
            .await;
        assert_eq!(
            injected,
            serde_json::json!(0),
            "{path}: markup from a payload"
        );
    }
    b.goto(format!("{}/console/messages/{id}", t.base)).await;
    let shown = b.text("#payload").await;
    assert!(shown.contains("<script>window.__xss=1</script>"), "{shown}");
    assert!(
        shown.contains("{{7*7}}"),
        "template syntax shown as written"
    );
    let attempts = b.text("#attempts").await;
    assert!(attempts.contains("<img src=x"), "the answer shown as text");
}
