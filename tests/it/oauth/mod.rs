//! Outbound OAuth2 against a token endpoint written for the tests
//! (`token_server`): one token request for 50 concurrent deliveries, the
//! token reused until 75% of its life (manual clock), a new one on a 401
//! inside the same attempt, a failing or redirecting endpoint as class
//! `auth` with its reason, Shopify's header and Salesforce's answer without
//! `expires_in`, a rotated refresh token kept across a restart, and the
//! token requests per 10,000 deliveries.

mod instances;
pub mod token_server;

use std::time::Duration;

use ferry::model::{ErrorClass, State};
use ferry::sim::receiver::{Receiver, Reply};
use ferry::vault::MasterKey;
use secrecy::ExposeSecret;

use crate::common::*;
use token_server::{Mode, TokenServer};

pub const CLIENT_SECRET: &str = "client-secret-9f8e7d6c5b4a";

/// Options for an app whose system `api` authenticates with `auth` (the
/// inside of the table, after `token_url`), routed from webhook route `out`.
pub fn oauth_options(tokens: &TokenServer, receiver: &Receiver, auth: &str) -> Options {
    Options {
        receiver: Some(receiver.clone()),
        credentials:
            "api_secret = { store = \"api_secret\" }\nhs_refresh = { store = \"hs_refresh\" }"
                .into(),
        extra: format!(
            r#"
[systems.api]
base_url = "{}"
auth = {{ token_url = "{}", client_id = "ferry-client", client_secret = "api_secret", {auth} }}
rate_limit = {{ max_concurrency = 50 }}
retry = {{ max_attempts = 5, initial_delay = "1s", max_delay = "1m", max_age = "1h" }}

[routes.out]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "api", path = "/orders" }}
"#,
            receiver.url(),
            tokens.url
        ),
        ..Options::default()
    }
}

pub async fn oauth_app(tokens: &TokenServer, receiver: &Receiver, auth: &str) -> (TestApp, String) {
    let key = MasterKey::generate().to_string();
    let stored = [("api_secret", CLIENT_SECRET), ("hs_refresh", "rtok-5b3e-0")];
    let opts = oauth_options(tokens, receiver, auth);
    (
        crate::credentials::app_with_store(&key, &stored, opts).await,
        key,
    )
}

/// Sends webhooks `ids` to route `out`, all at once, each acked.
pub async fn send(t: &TestApp, ids: impl IntoIterator<Item = String>) {
    let now = t.now_s();
    let sends = ids.into_iter().map(|id| async move {
        let r = t
            .signed("out", &id, &format!(r#"{{"order":"{id}"}}"#), now, WHSEC)
            .await;
        assert_eq!(r.status(), 202);
    });
    futures_util::future::join_all(sends).await;
}

fn bearer(r: &ferry::sim::receiver::Received) -> String {
    r.headers["authorization"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_50_concurrent_deliveries_until_it_is_nearly_expired() {
    let tokens = TokenServer::start(Some(100)).await;
    tokens.set(|s| s.delay = Duration::from_millis(200));
    let receiver = Receiver::start().await.unwrap();
    let (t, _) = oauth_app(
        &tokens,
        &receiver,
        r#"kind = "oauth2", scope = "orders.write", audience = "https://api.example""#,
    )
    .await;
    send(&t, (0..50).map(|i| format!("e{i}"))).await;
    assert_eq!(t.drain().await, 50);
    assert_eq!(tokens.requests(), 1, "one token request for all 50");
    let got = receiver.received();
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|r| bearer(r) == "Bearer tok-1"));
    let form = &tokens.seen()[0].form;
    for (k, v) in [
        ("grant_type", "client_credentials"),
        ("client_id", "ferry-client"),
        ("client_secret", CLIENT_SECRET),
        ("scope", "orders.write"),
        ("audience", "https://api.example"),
    ] {
        assert_eq!(form.get(k).map(String::as_str), Some(v), "{k}");
    }
    // reused before 75% of its 100 s
    t.clock.advance(74_000);
    send(&t, ["late".to_string()]).await;
    t.drain().await;
    assert_eq!(tokens.requests(), 1);
    assert_eq!(bearer(&receiver.received()[50]), "Bearer tok-1");
    // refreshed from there on, before it expires
    t.clock.advance(2_000);
    send(&t, ["later".to_string()]).await;
    t.drain().await;
    assert_eq!(tokens.requests(), 2);
    assert_eq!(bearer(&receiver.received()[51]), "Bearer tok-2");
}

#[tokio::test]
async fn a_401_gets_one_new_token_within_the_same_attempt() {
    let tokens = TokenServer::start(Some(3600)).await;
    let receiver = Receiver::start().await.unwrap();
    let (t, _) = oauth_app(&tokens, &receiver, r#"kind = "oauth2""#).await;
    receiver.push([Reply::status(401)]);
    send(&t, ["e1".to_string()]).await;
    t.drain().await;
    let got = receiver.received();
    assert_eq!(
        got.iter().map(bearer).collect::<Vec<_>>(),
        ["Bearer tok-1", "Bearer tok-2"]
    );
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Delivered);
    assert_eq!(m.attempts.len(), 1, "the refresh is inside the attempt");
    // a second 401 to the new token counts: class auth
    receiver.push([Reply::status(401), Reply::status(401)]);
    send(&t, ["e2".to_string()]).await;
    t.drain().await;
    assert_eq!(
        tokens.requests(),
        3,
        "one new token per refused attempt, no more"
    );
    let list = t.store.list(&Default::default()).await.unwrap();
    let e2 = list.iter().find(|m| m.state != State::Delivered).unwrap();
    assert_eq!(e2.last_class, Some(ErrorClass::Auth));
}

#[tokio::test]
async fn a_failing_or_redirecting_token_endpoint_is_class_auth_with_its_reason() {
    let tokens = TokenServer::start(Some(3600)).await;
    let receiver = Receiver::start().await.unwrap();
    let (t, _) = oauth_app(&tokens, &receiver, r#"kind = "oauth2""#).await;
    tokens.set(|s| s.mode = Mode::Fail(503));
    send(&t, ["down".to_string()]).await;
    t.drain().await;
    let m = t.only_message().await;
    assert_eq!(m.summary.state, State::Retrying);
    assert_eq!(m.summary.last_class, Some(ErrorClass::Auth));
    let why = m.summary.last_explanation.unwrap();
    assert!(
        why.contains("token endpoint") && why.contains("503"),
        "{why}"
    );
    assert!(
        why.contains("the token service is down for maintenance"),
        "{why}"
    );
    assert_eq!(receiver.count(), 0, "nothing was sent downstream");
    // a redirect is not followed
    tokens.set(|s| s.mode = Mode::Redirect);
    t.clock.advance(120_000);
    t.drain().await;
    let m = t.only_message().await;
    let why = m.summary.last_explanation.unwrap();
    assert!(why.contains("302"), "{why}");
    assert_eq!(
        tokens.requests(),
        2,
        "the redirect's target was never asked"
    );
    // back up: an operator's retry delivers (once the failure's hold is over)
    tokens.set(|s| s.mode = Mode::Issue);
    t.clock.advance(1_000);
    t.store
        .retry(
            ferry::store::Selection::One(m.summary.id.to_string()),
            "op",
            t.clock.now_ms(),
            false,
        )
        .await
        .unwrap();
    t.drain().await;
    assert_eq!(t.only_message().await.summary.state, State::Delivered);
    // the endpoint gone altogether, once the token needs renewing
    tokens.stop();
    t.clock.advance(2_800_000);
    send(&t, ["gone".to_string()]).await;
    t.drain().await;
    let list = t.store.list(&Default::default()).await.unwrap();
    let gone = list.iter().find(|m| m.state != State::Delivered).unwrap();
    assert_eq!(gone.last_class, Some(ErrorClass::Auth));
    let why = gone.last_explanation.as_deref().unwrap();
    assert!(why.contains("could not be reached"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_token_endpoint_is_asked_once_for_all_waiting_deliveries() {
    let tokens = TokenServer::start(Some(3600)).await;
    tokens.set(|s| {
        s.mode = Mode::Fail(503);
        s.delay = Duration::from_millis(100);
    });
    let receiver = Receiver::start().await.unwrap();
    let (t, _) = oauth_app(&tokens, &receiver, r#"kind = "oauth2""#).await;
    send(&t, (0..20).map(|i| format!("e{i}"))).await;
    t.drain().await;
    assert_eq!(
        tokens.requests(),
        1,
        "one request answered every waiting worker"
    );
    let list = t.store.list(&Default::default()).await.unwrap();
    assert_eq!(list.len(), 20);
    assert!(
        list.iter()
            .all(|m| m.state == State::Retrying && m.last_class == Some(ErrorClass::Auth))
    );
    // still down at the next attempt: an outage is not a rejected credential
    t.clock.advance(120_000);
    t.drain().await;
    let list = t.store.list(&Default::default()).await.unwrap();
    assert!(list.iter().all(|m| m.state == State::Retrying), "{list:?}");
    assert_eq!(tokens.requests(), 2);
    // back up: every delivery goes out with one new token
    tokens.set(|s| s.mode = Mode::Issue);
    t.clock.advance(120_000);
    t.drain().await;
    assert_eq!(t.stats("out").await.delivered, 20);
    assert_eq!(tokens.requests(), 3);
}

#[tokio::test]
async fn shopify_header_basic_client_auth_and_no_expires_in() {
    let tokens = TokenServer::start(None).await;
    let receiver = Receiver::start().await.unwrap();
    let auth = r#"kind = "oauth2", client_auth = "basic", header = "X-Shopify-Access-Token", default_ttl = "10m""#;
    let (t, _) = oauth_app(&tokens, &receiver, auth).await;
    send(&t, ["e1".to_string()]).await;
    t.drain().await;
    let r = &receiver.received()[0];
    assert_eq!(r.headers["x-shopify-access-token"], "tok-1");
    assert!(r.headers.get("authorization").is_none());
    let seen = &tokens.seen()[0];
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("ferry-client:{CLIENT_SECRET}"));
    assert_eq!(
        seen.authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    assert!(!seen.form.contains_key("client_secret"));
    // default_ttl: reused for 7.5 of its 10 minutes
    t.clock.advance(449_000);
    send(&t, ["e2".to_string()]).await;
    t.drain().await;
    assert_eq!(tokens.requests(), 1);
    t.clock.advance(2_000);
    send(&t, ["e3".to_string()]).await;
    t.drain().await;
    assert_eq!(tokens.requests(), 2);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_and_survives_a_restart() {
    let tokens = TokenServer::start(Some(3600)).await;
    tokens.set(|s| {
        s.refresh = Some("rtok-5b3e-0".into());
        s.rotate = true;
    });
    let receiver = Receiver::start().await.unwrap();
    let auth = r#"kind = "oauth2-refresh", refresh_token = "hs_refresh""#;
    let (t, key) = oauth_app(&tokens, &receiver, auth).await;
    send(&t, ["e1".to_string()]).await;
    t.drain().await;
    assert_eq!(tokens.seen()[0].form["refresh_token"], "rtok-5b3e-0");
    assert_eq!(bearer(&receiver.received()[0]), "Bearer tok-1");
    let snapshot = t.app.vault.snapshot();
    let newest = snapshot.newest("hs_refresh").unwrap();
    assert_eq!(
        newest.value.expose_secret(),
        "rtok-5b3e-2",
        "the rotated refresh token is stored"
    );
    // restart on the same store: the new instance refreshes with rtok-5b3e-2 (the first is refused)
    t.shutdown.cancel();
    let store = t.store.clone();
    let opts = oauth_options(&tokens, &receiver, auth);
    let t2 = crate::credentials::app_on(store, &key, opts).await;
    send(&t2, ["e2".to_string()]).await;
    t2.drain().await;
    assert_eq!(tokens.seen()[1].form["refresh_token"], "rtok-5b3e-2");
    assert_eq!(bearer(&receiver.received()[1]), "Bearer tok-2");
    let delivered = t2.stats("out").await.delivered;
    assert_eq!(delivered, 2);
}

/// The closing note's figure: token requests per 10,000 deliveries, with
/// 1-hour tokens, the deliveries spread over a day of (manual) time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_per_10000_deliveries() {
    let tokens = TokenServer::start(Some(3600)).await;
    let receiver = Receiver::start().await.unwrap();
    receiver.forget_requests();
    let (t, _) = oauth_app(&tokens, &receiver, r#"kind = "oauth2""#).await;
    let (rounds, per_round) = (100, 100);
    for round in 0..rounds {
        send(&t, (0..per_round).map(|i| format!("r{round}-{i}"))).await;
        t.drain().await;
        t.clock.advance(86_400_000 / rounds);
    }
    let delivered = t.stats("out").await.delivered;
    assert_eq!(delivered, rounds as u64 * per_round as u64);
    let n = tokens.requests();
    println!("oauth2 token requests per {delivered} deliveries: {n} (1 h tokens, 24 h of traffic)");
    // refreshed at 75% of the hour (2,700 s), the rounds 864 s apart: one
    // token request every fourth round
    assert_eq!(n, 25, "{n} token requests");
}
