//! Several instances on one PostgreSQL store: a rotation in the credential
//! store reaches each of them by itself within 5 s, and instances that need
//! a new OAuth2 token at the same moment refresh one at a time, so a
//! refresh token one of them rotated is never presented again by another.

use std::time::Duration;

use ferry::sim::receiver::Receiver;
use ferry::store::Supersede;
use ferry::vault::MasterKey;

use super::token_server::TokenServer;
use super::*;

const OLD: &str = "whsec_aW5zdGFuY2Utb2xkLXNlY3JldC0wMTIzNDU2Nzg5";
const NEW: &str = "whsec_aW5zdGFuY2UtbmV3LXNlY3JldC0wMTIzNDU2Nzg5";

/// Stores `stored` under a fresh key in `store`; returns the key.
async fn seed(store: &ferry::store::Store, stored: &[(&str, &str)]) -> String {
    let key = MasterKey::generate().to_string();
    let mk = MasterKey::parse(&key).unwrap();
    ferry::vault::unlock(store, &mk).await.unwrap();
    for (name, value) in stored {
        ferry::vault::put(store, &mk, name, value, T0, None, Supersede::All)
            .await
            .unwrap();
    }
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_every_instance_within_5_seconds() {
    let Some(pg) = PgScratch::new("a_rotation_reaches_every_instance_within_5_seconds").await
    else {
        return;
    };
    let key = seed(&pg.store().await, &[("hook", OLD)]).await;
    let opts = |receiver: Option<Receiver>| Options {
        receiver,
        credentials: "hook = { store = \"hook\" }".into(),
        extra: r#"
[routes.rotating]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["hook"] }
destination = { system = "erp", path = "/rotating" }
"#
        .into(),
        ..Options::default()
    };
    let a = crate::credentials::app_on(pg.store().await, &key, opts(None)).await;
    let b =
        crate::credentials::app_on(pg.store().await, &key, opts(Some(a.receiver.clone()))).await;
    for t in [&a, &b] {
        assert_eq!(
            t.signed("rotating", "before", "{}", t.now_s(), NEW)
                .await
                .status(),
            401
        );
    }
    let mk = MasterKey::parse(&key).unwrap();
    let until_ms = a.clock.now_ms() + 3_600_000;
    ferry::vault::put(
        &a.store,
        &mk,
        "hook",
        NEW,
        a.clock.now_ms(),
        None,
        Supersede::After { until_ms },
    )
    .await
    .unwrap();
    let rotated = std::time::Instant::now();
    for t in [&a, &b] {
        eventually("the rotation arrives", Duration::from_secs(5), async || {
            t.app.vault.snapshot().newest("hook").map(|v| v.version) == Some(2)
        })
        .await;
    }
    assert!(rotated.elapsed() < Duration::from_secs(5));
    for (i, t) in [&a, &b].into_iter().enumerate() {
        for (secret, id) in [(NEW, "new"), (OLD, "old")] {
            let id = format!("{id}-{i}");
            assert_eq!(
                t.signed("rotating", &id, "{}", t.now_s(), secret)
                    .await
                    .status(),
                202
            );
        }
    }
    a.shutdown.cancel();
    b.shutdown.cancel();
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_refresh_a_rotating_refresh_token_one_at_a_time() {
    let Some(pg) = PgScratch::new("instances_refresh_a_rotating_refresh_token_one_at_a_time").await
    else {
        return;
    };
    let tokens = TokenServer::start(Some(3600)).await;
    tokens.set(|s| {
        s.refresh = Some("rtok-5b3e-0".into());
        s.rotate = true;
        s.delay = Duration::from_millis(300);
    });
    let receiver = Receiver::start().await.unwrap();
    let key = seed(
        &pg.store().await,
        &[("api_secret", CLIENT_SECRET), ("hs_refresh", "rtok-5b3e-0")],
    )
    .await;
    let auth = r#"kind = "oauth2-refresh", refresh_token = "hs_refresh""#;
    // One place each, so a joint step splits the backlog between them.
    let opts = || {
        let mut o = oauth_options(&tokens, &receiver, auth);
        o.extra = o
            .extra
            .replace("max_concurrency = 50", "max_concurrency = 1");
        o
    };
    let a = crate::credentials::app_on(pg.store().await, &key, opts()).await;
    let b = crate::credentials::app_on(pg.store().await, &key, opts()).await;
    send(&a, ["a1".to_string()]).await;
    send(&b, ["b1".to_string()]).await;
    // The backlog is shared: each instance claims one, and both need a token.
    let (na, nb) = tokio::join!(a.step(), b.step());
    let steps = [na, nb];
    assert!(
        steps
            .iter()
            .all(|s| matches!(s, ferry::deliver::Step::Worked(1))),
        "{steps:?}"
    );
    assert_eq!(
        tokens.refused(),
        0,
        "no instance presented a spent refresh token"
    );
    let presented: Vec<_> = tokens
        .seen()
        .iter()
        .map(|s| s.form["refresh_token"].clone())
        .collect();
    assert_eq!(presented, ["rtok-5b3e-0", "rtok-5b3e-2"]);
    assert_eq!(a.stats("out").await.delivered, 2);
    a.shutdown.cancel();
    b.shutdown.cancel();
    pg.drop().await;
}
