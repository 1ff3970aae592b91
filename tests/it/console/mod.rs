//! The operators' console over real HTTP: who may see and do what, the
//! pages' content and safety (escaping, security headers), and the actions
//! (retry, edit and replay, group actions with their counts, discard),
//! audited under the signed-in user. The browser tests (`browser_console`)
//! drive the same pages in a real Chromium.

mod access;
mod actions;
mod embed;
mod escaping;
mod login;
mod users;

use reqwest::StatusCode;

use crate::common::*;

/// A signed-in console user: the session cookie and the page's CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// The payload full of markup and template syntax that every page must
/// show as text.
pub const HOSTILE: &str = r#"{"note":"<script>window.__xss=1</script>","name":"\"><img src=x onerror=\"window.__xss=2\">","url":"javascript:window.__xss=3","tpl":"{{7*7}} ${7*7}","sku":"<b>SKU</b>"}"#;

/// A user `name` with `role` (password `correct horse battery`), added in
/// the store as `ferry users add` does.
pub async fn add_user(t: &TestApp, name: &str, role: ferry::store::Role) {
    let phc = ferry::access::password::hash("correct horse battery").unwrap();
    let account = ferry::store::Account {
        name: name.into(),
        role,
        created_ms: t.clock.now_ms(),
        created_by: "test".into(),
    };
    assert!(
        t.store
            .add_account(ferry::store::AccountKind::User, account, &phc)
            .await
            .unwrap()
    );
}

/// A client that does not follow redirects (the test reads them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in through `POST /console/login` and reads the CSRF token from
/// the dashboard.
pub async fn login(t: &TestApp, name: &str) -> Session {
    let r = client()
        .post(format!("{}/console/login", t.base))
        .header("origin", &t.base)
        .form(&[
            ("username", name),
            ("password", "correct horse battery"),
            ("next", "/console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name}");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ferry_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = client()
        .get(format!("{}/console", t.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    Session { cookie, csrf }
}

/// The CSRF token in a page's `hx-headers` attribute.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("X-CSRF-Token")
        .expect("the page carries a CSRF token");
    let rest = &page[at..];
    let rest = &rest[rest.find(":&#34;").expect("token value") + 6..];
    rest[..rest.find("&#34;").unwrap()].to_owned()
}

impl Session {
    pub async fn get(&self, t: &TestApp, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", t.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub async fn page(&self, t: &TestApp, path: &str) -> String {
        let r = self.get(t, path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.text().await.unwrap()
    }

    /// An action as htmx sends it from a console page.
    pub async fn act(&self, t: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(format!("{}{path}", t.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("hx-request", "true")
            .header("sec-fetch-site", "same-origin")
            .header("origin", &t.base)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// A message to route `stock` (the ERP API route) with `body`, and its id.
pub async fn stock_message(t: &TestApp, body: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = format!(
        "console-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let r = t.api(Some(&key), ERP_KEY, body).await;
    assert!(r.status().is_success(), "{:?}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().expect("the message id").to_owned()
}
