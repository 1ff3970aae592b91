//! Embed tokens in the store, on both backends: kept by their SHA-256 with
//! their route, listed by route, revoked at once, adding and removing
//! audited on the route with the token's id (never the hash in full).

use super::*;

async fn embed_tokens(store: Store) {
    let t = |sha: &str, route: &str, at: i64| EmbedToken {
        token_sha256: sha.into(),
        route: route.into(),
        created_ms: at,
        created_by: "cli:ana".into(),
    };
    let stock = "aa".repeat(32);
    let orders = "bb".repeat(32);
    let stock2 = "cc".repeat(32);
    assert!(store.add_embed_token(t(&stock, "stock", T0)).await.unwrap());
    assert!(
        store
            .add_embed_token(t(&orders, "orders", T0 + 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_embed_token(t(&stock2, "stock", T0 + 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_embed_token(t(&stock, "orders", T0 + 3))
            .await
            .unwrap(),
        "a hash is kept once"
    );
    let kept = |sha: &str, route: &str, at: i64| EmbedToken {
        created_by: "ana".into(),
        ..t(sha, route, at)
    };
    assert_eq!(
        store.embed_token(&stock).await.unwrap(),
        Some(kept(&stock, "stock", T0))
    );
    assert_eq!(store.embed_token(&"dd".repeat(32)).await.unwrap(), None);
    assert_eq!(
        store.embed_tokens().await.unwrap(),
        [
            kept(&orders, "orders", T0 + 1),
            kept(&stock, "stock", T0),
            kept(&stock2, "stock", T0 + 2)
        ],
        "by route, oldest first"
    );
    assert!(
        store
            .remove_embed_token(&stock, "cli:ana", T0 + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_embed_token(&stock, "cli:ana", T0 + 11)
            .await
            .unwrap()
    );
    assert_eq!(store.embed_token(&stock).await.unwrap(), None);
    assert!(
        store.embed_token(&stock2).await.unwrap().is_some(),
        "only that one"
    );
    let audit = store.audit_of("stock", 10).await.unwrap();
    let entries: Vec<_> = audit
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.channel.as_str(),
                a.actor.as_str(),
                a.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("embed-remove", "cli", "ana", "token aaaaaaaaaaaa"),
            ("embed-add", "cli", "ana", "token cccccccccccc"),
            ("embed-add", "cli", "ana", "token aaaaaaaaaaaa"),
        ]
    );
}

#[tokio::test]
async fn embed_tokens_on_sqlite() {
    on_sqlite(embed_tokens).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_tokens_on_postgres() {
    on_postgres("embed_tokens_on_postgres", embed_tokens).await;
}
