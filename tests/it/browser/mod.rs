//! Browser tests: a real headless Chromium (Debian's `chromium`) driven
//! through its `chromedriver` by thirtyfour, for the operator console.
//!
//! `Browser::start()` spawns a chromedriver on a free port and opens one
//! Chromium session with a temp profile at a 1280x900 viewport; Drop quits
//! the session, kills chromedriver (and a Chromium that outlived it) and
//! removes the profile, also when the test panics. Helpers poll with a
//! deadline (`driver::WAIT`, 10 s) and panic with the page's URL and text:
//! wait for a DOM marker after an htmx swap, never sleep.
//!
//! Run them:
//!
//! ```text
//! apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation
//! cargo test --test it browser
//! ```
//!
//! Without `chromium` or `chromedriver` on PATH a browser test prints a note
//! and passes (skips); with `CI` set it fails instead (`.ci/run` installs
//! both and sets `CI`): `CI=1 cargo test --test it browser` checks that they
//! really ran.
//!
//! Regenerate the documentation's screenshots (`docs/screenshots/*.png`,
//! written by `Browser::doc_screenshot(name)` only when asked):
//!
//! ```text
//! FERRY_DOC_SCREENSHOTS=1 cargo test --test it browser
//! ```
//!
//! A new browser test: `let Some(b) = Browser::start().await else { return };`
//! then `b.goto(..)`, `b.fill(..)`, `b.click(..)`, `b.wait_for_text(..)`.

mod console;
mod driver;
mod http;

#[allow(unused_imports)]
pub use driver::{Browser, DESKTOP, LogEntry, PHONE, WAIT, doc_screenshot_path};

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The harness's own test page: a form that posts, a script (served as a
/// file, under a strict CSP like the console's) that changes the page
/// late, counts clicks and throws on request.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness page</title>
<script src="/app.js" defer></script></head>
<body>
<h1>Harness</h1>
<p id="spinner">loading</p>
<ul id="items"></ul>
<form id="greet" method="post" action="/greet">
  <label>Name <input id="name" name="name" placeholder="your name"></label>
  <button id="send" type="submit">Send</button>
</form>
<button id="count" type="button">Count</button> <output id="counter">0</output>
<button id="boom" type="button">Boom</button>
</body></html>"#;

const SCRIPT: &str = r#"
// Late on purpose: the harness must wait for these, not find them at once.
setTimeout(() => {
  document.getElementById('spinner').remove();
  for (const t of ['one', 'two']) {
    const li = document.createElement('li');
    li.textContent = t;
    document.getElementById('items').append(li);
  }
}, 300);
const counter = document.getElementById('counter');
document.getElementById('count').addEventListener('click', () => {
  setTimeout(() => { counter.textContent = String(Number(counter.textContent) + 1); }, 200);
});
document.getElementById('boom').addEventListener('click', () => {
  throw new Error('boom from the harness page');
});
"#;

fn page(title: &str, body: String) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>"
    );
    Html(html).into_response()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Site {
    addr: SocketAddr,
}

impl Site {
    /// Serves the test page on 127.0.0.1:0 until the test's runtime ends.
    async fn start() -> Site {
        let router = Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route(
                "/app.js",
                get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }),
            )
            .route(
                "/greet",
                axum::routing::post(|body: String| async move {
                    let name = form_field(&body, "name").unwrap_or_default();
                    let cookie = format!(
                        "greeted={}; Path=/; HttpOnly; SameSite=Strict",
                        utf8_percent_encode(&name, NON_ALPHANUMERIC)
                    );
                    (
                        StatusCode::SEE_OTHER,
                        [
                            (header::LOCATION, "/hello".to_owned()),
                            (header::SET_COOKIE, cookie),
                        ],
                    )
                }),
            )
            .route(
                "/hello",
                get(|headers: HeaderMap| async move {
                    let name = cookie_value(&headers, "greeted").unwrap_or_default();
                    page(
                        "Hello",
                        format!("<p id=\"hello\">Hello, {}</p>", escape(&name)),
                    )
                }),
            )
            .route(
                "/whoami",
                get(|headers: HeaderMap| async move {
                    let cookie = headers
                        .get(header::COOKIE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("(no cookie)")
                        .to_owned();
                    page("Who", format!("<p id=\"who\">{}</p>", escape(&cookie)))
                }),
            )
            .layer(axum::middleware::map_response(
                |mut resp: Response| async move {
                    resp.headers_mut().insert(
                        header::CONTENT_SECURITY_POLICY,
                        HeaderValue::from_static("default-src 'self'"),
                    );
                    resp
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Site { addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_drives_a_real_chromium() {
    let t0 = Instant::now();
    let Some(b) = Browser::start().await else {
        return;
    };
    let started = t0.elapsed();
    let site = Site::start().await;

    b.goto(site.url("/")).await;
    assert_eq!(b.url().await, site.url("/"));
    // eval runs under the page's `default-src 'self'` CSP.
    assert_eq!(b.eval("return document.title").await, "Harness page");
    // The script's late changes: waited for, not slept for.
    b.wait_gone("#spinner").await;
    assert_eq!(b.texts("#items li").await, ["one", "two"]);
    assert!(b.texts("#nothing-like-this").await.is_empty());
    assert_eq!(
        b.attr("#name", "placeholder").await.as_deref(),
        Some("your name")
    );
    assert_eq!(b.attr("#name", "data-none").await, None);
    b.click("#count").await;
    b.wait_for_text("#counter", "1").await;
    assert_eq!(b.text("#counter").await, "1");

    // The viewport: 1280x900, a phone's, and back.
    let viewport = "return [window.innerWidth, window.innerHeight]";
    assert_eq!(b.eval(viewport).await, serde_json::json!([1280, 900]));
    b.set_phone_size().await;
    assert_eq!(b.eval(viewport).await, serde_json::json!([390, 844]));
    b.set_desktop_size().await;
    assert_eq!(b.eval(viewport).await, serde_json::json!([1280, 900]));

    // A thrown error reaches js_errors (a failed favicon load does not).
    assert_eq!(b.js_errors().await, Vec::<String>::new());
    b.eval("console.log('a harmless note')").await;
    b.click("#boom").await;
    let deadline = Instant::now() + WAIT;
    while !b
        .js_errors()
        .await
        .iter()
        .any(|e| e.contains("boom from the harness page"))
    {
        assert!(
            Instant::now() < deadline,
            "no JS error reported: {:?}",
            b.console_log().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        b.console_log()
            .await
            .iter()
            .any(|e| e.message.contains("a harmless note") && e.level == "INFO"),
        "{:?}",
        b.console_log().await
    );

    // The form: a real POST, a 303 and a cookie set by the server.
    b.fill("#name", "first try").await;
    b.fill("#name", "Ada Lovelace").await;
    b.click("#send").await;
    b.wait_for_text("#hello", "Hello, Ada Lovelace").await;
    assert_eq!(b.url().await, site.url("/hello"));
    let cookie = b.cookie("greeted").await.expect("the greeted cookie");
    assert_eq!(cookie.value, "Ada%20Lovelace");
    assert_eq!(cookie.http_only, Some(true));
    assert_eq!(cookie.same_site, Some(thirtyfour::SameSite::Strict));
    assert_eq!(b.cookies().await.len(), 1);

    // Screenshots: a PNG of the 1280x900 viewport; doc screenshots only
    // when asked for.
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("sub/page.png");
    b.screenshot(&shot).await;
    assert_eq!(png_size(&std::fs::read(&shot).unwrap()), (1280, 900));
    if doc_screenshot_path("harness-never-written").is_none() {
        b.doc_screenshot("harness-never-written").await;
        let would_be = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/screenshots/harness-never-written.png");
        assert!(!would_be.exists());
    }
    eprintln!(
        "harness_drives_a_real_chromium: browser up in {started:?}, test done in {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_share_nothing() {
    let t0 = Instant::now();
    let (a, b) = tokio::join!(Browser::start(), Browser::start());
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    let site = Site::start().await;

    a.goto(site.url("/")).await;
    a.fill("#name", "Grace").await;
    a.click("#send").await;
    a.wait_for_text("#hello", "Hello, Grace").await;
    a.eval("localStorage.setItem('mark', 'a')").await;
    assert_eq!(
        a.cookie("greeted").await.expect("a's cookie").value,
        "Grace"
    );

    b.goto(site.url("/whoami")).await;
    assert_eq!(b.text("#who").await, "(no cookie)");
    assert!(b.cookies().await.is_empty(), "{:?}", b.cookies().await);
    assert_eq!(
        b.eval("return localStorage.getItem('mark')").await,
        serde_json::Value::Null
    );

    a.goto(site.url("/whoami")).await;
    assert_eq!(a.text("#who").await, "greeted=Grace");
    // An explicit, non-blocking quit (Drop would quit b synchronously).
    a.close().await;
    eprintln!("two_browsers_share_nothing: {:?}", t0.elapsed());
}
