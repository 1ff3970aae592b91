//! Outbound requests ignore `HTTP_PROXY` and friends (deliveries carry
//! credentials); a system's explicit `proxy` is used. Its own test binary,
//! because it sets process environment variables.

#[path = "it/common/mod.rs"]
#[allow(dead_code)] // this binary uses a few of the harness's helpers
mod common;

use common::*;
use ferry::sim::receiver::Receiver;

#[tokio::test]
async fn proxy_env_vars_are_ignored_and_an_explicit_proxy_is_used() {
    let proxy = Receiver::start().await.unwrap();
    // SAFETY: the only test in this binary, set before any client is built.
    unsafe {
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
            std::env::set_var(var, proxy.url());
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let direct = || reqwest::Client::builder().no_proxy().build().unwrap();
    let mut t = TestApp::spawn().await;
    // The test's own client must not use the proxy either.
    t.http = direct();
    assert_eq!(t.webhook("evt_direct", "{}").await.status(), 202);
    t.drain().await;
    assert_eq!(t.receiver.count(), 1, "the delivery went direct");
    assert_eq!(proxy.count(), 0, "the env proxy saw nothing");

    let mut t = TestApp::spawn_with(Options {
        erp: format!("proxy = \"{}\"", proxy.url()),
        ..Default::default()
    })
    .await;
    t.http = direct();
    assert_eq!(t.webhook("evt_proxied", "{}").await.status(), 202);
    t.drain().await;
    assert_eq!(proxy.count(), 1, "the configured proxy carried it");
    assert_eq!(t.receiver.count(), 0);
}
