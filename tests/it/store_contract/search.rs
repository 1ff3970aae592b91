//! The message list's text search and system filter, on both backends:
//! case-insensitive text in ids, keys and the last explanation, with LIKE's
//! wildcards taken literally.

use super::*;

async fn search(store: Store) {
    for (id, system) in [("m1", "erp"), ("m2", "erp"), ("m3", "crm")] {
        let mut m = msg(id, None);
        m.system = system.into();
        m.ordering_key = (id == "m2").then(|| "Order-42".into());
        store.accept(m).await.unwrap();
    }
    let c = store.claim("erp", T0, 30_000, 10).await.unwrap();
    let m1 = c.iter().find(|d| d.message_id.as_str() == "m1").unwrap();
    let mut rec = record(m1, T0, Next::Dead);
    rec.explanation = "erp rejected it: unknown sku TEA_1%".into();
    assert!(store.record(rec).await.unwrap());
    let ids = async |f: MessageFilter| -> Vec<String> {
        let mut v: Vec<String> = store
            .list(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id.to_string())
            .collect();
        v.sort();
        v
    };
    let text = |t: &str| MessageFilter {
        text: Some(t.into()),
        ..MessageFilter::default()
    };
    assert_eq!(
        ids(text("tea_1%")).await,
        ["m1"],
        "case-insensitive, in the explanation"
    );
    assert_eq!(ids(text("_")).await, ["m1"], "a wildcard is literal");
    assert_eq!(ids(text("order-42")).await, ["m2"], "in the ordering key");
    assert_eq!(
        ids(text("ferry-m3")).await,
        ["m3"],
        "in the idempotency key"
    );
    assert!(ids(text("nothing like it")).await.is_empty());
    let crm = MessageFilter {
        system: Some("crm".into()),
        ..MessageFilter::default()
    };
    assert_eq!(ids(crm).await, ["m3"]);
}

#[tokio::test]
async fn search_on_sqlite() {
    on_sqlite(search).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_on_postgres() {
    on_postgres("search_on_postgres", search).await;
}
