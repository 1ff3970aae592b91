//! Signing in: the cookie's attributes, a new session at every sign-in,
//! `next` kept on the console, the idle end, sign-out, and the throttle
//! (the sixth wrong password within a minute is refused, even a right one,
//! per user and per address, until the minute has passed).

use ferry::store::Role;
use reqwest::StatusCode;

use super::*;

async fn attempt(t: &TestApp, name: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/console/login", t.base))
        .header("origin", &t.base)
        .form(&[
            ("username", name),
            ("password", password),
            ("next", "/console/audit"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sign_in_sets_a_strict_cookie_and_rotates_the_session() {
    let t = TestApp::spawn().await;
    add_user(&t, "omar", Role::Operator).await;
    let r = attempt(&t, "omar", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/audit");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "ferry_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let first = login(&t, "omar").await;
    let second = login(&t, "omar").await;
    assert_ne!(first.cookie, second.cookie, "a new token at every sign-in");
    assert_ne!(first.csrf, second.csrf);
    // Behind a TLS proxy the cookie is Secure.
    let r = client()
        .post(format!("{}/console/login", t.base))
        .header("origin", &t.base)
        .header("x-forwarded-proto", "https")
        .form(&[("username", "omar"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    // `next` never leaves the console.
    let r = client()
        .post(format!("{}/console/login", t.base))
        .header("origin", &t.base)
        .form(&[
            ("username", "omar"),
            ("password", "correct horse battery"),
            ("next", "//evil.example/console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console");
    // A sign-in form posted from another site is refused.
    let r = client()
        .post(format!("{}/console/login", t.base))
        .header("origin", "https://evil.example")
        .form(&[("username", "omar"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The audit names every sign-in.
    let audit = second.page(&t, "/console/audit").await;
    assert!(audit.contains("login"), "{audit}");
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_sign_out() {
    let t = TestApp::spawn().await;
    add_user(&t, "omar", Role::Operator).await;
    let s = login(&t, "omar").await;
    assert_eq!(s.get(&t, "/console").await.status(), StatusCode::OK);
    t.clock.advance(29 * 60_000);
    assert_eq!(
        s.get(&t, "/console").await.status(),
        StatusCode::OK,
        "used within 30 min"
    );
    t.clock.advance(31 * 60_000);
    assert_eq!(
        s.get(&t, "/console").await.status(),
        StatusCode::SEE_OTHER,
        "idle"
    );
    let s = login(&t, "omar").await;
    let out = s.act(&t, "/console/logout", &[]).await;
    assert!(out.status().is_success(), "{:?}", out.status());
    assert_eq!(out.headers()["hx-redirect"], "/console/login");
    assert_eq!(
        s.get(&t, "/console").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[tokio::test]
async fn the_sixth_wrong_password_in_a_minute_is_throttled() {
    let t = TestApp::spawn().await;
    add_user(&t, "omar", Role::Operator).await;
    for i in 1..=5 {
        let r = attempt(&t, "omar", &format!("wrong guess {i}")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Wrong user name or password")
        );
    }
    let r = attempt(&t, "omar", "correct horse battery").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the 6th, even right"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The address is throttled too: another name from it waits as well.
    add_user(&t, "vera", Role::Viewer).await;
    let r = attempt(&t, "vera", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "same address");
    t.clock.advance(61_000);
    let r = attempt(&t, "omar", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a minute later");
    // An unknown user is refused like a wrong password.
    let r = attempt(&t, "nobody", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
