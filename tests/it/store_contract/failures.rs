//! Failure groups, on every backend: a dead delivery keeps the group its
//! record names, the listing counts each group with its first and last
//! time, its latest explanation, hint and samples, filters narrow it, and a
//! retried delivery leaves its group.

use ferry::model::{ErrorClass, State};
use ferry::store::*;

use super::{T0, msg, on_postgres, on_sqlite, record};

/// Three messages dead for two causes (two unknown SKUs, one timeout), one
/// still retrying.
async fn groups(store: Store) {
    for id in ["a", "b", "c", "d"] {
        store.accept(msg(id, None)).await.unwrap();
    }
    let claimed = store.claim("erp", T0, 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let sku = |s: &str| format!(r#"erp rejected the message (422): {{"error":"unknown sku {s}"}}"#);
    let reasons = [
        (ErrorClass::Rejected, sku("POT-GLASS-120"), Next::Dead),
        (ErrorClass::Rejected, sku("GIFT-BOX-25"), Next::Dead),
        (
            ErrorClass::Timeout,
            "erp did not answer in time.".to_owned(),
            Next::Dead,
        ),
        (
            ErrorClass::Rejected,
            sku("TEA-1"),
            Next::Retry {
                at_ms: T0 + 60_000,
                counts_against_budget: true,
                rate_limited: false,
                auth: false,
            },
        ),
    ];
    for (i, (c, (class, reason, next))) in claimed.iter().zip(reasons).enumerate() {
        let mut r = record(c, T0 + 10 * i as i64, next);
        r.class = Some(class);
        r.explanation = reason.clone();
        r.hint = format!("hint {i}");
        r.failure_group = Some(group_key(class, &c.system, &c.route, &reason));
        assert!(store.record(r).await.unwrap());
    }

    let all = store.failure_groups(&GroupFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    // Latest first: the timeout (recorded third) is newest.
    assert_eq!(all[0].class, Some(ErrorClass::Timeout));
    assert_eq!(all[0].samples, vec!["c".to_owned()]);
    let skus = &all[1];
    assert_eq!(skus.count, 2);
    assert_eq!(
        (skus.route.as_str(), skus.system.as_str()),
        ("orders", "erp")
    );
    assert_eq!(skus.first_seen_ms, T0 + 5);
    assert_eq!(skus.last_seen_ms, T0 + 15);
    assert_eq!(skus.samples, vec!["b".to_owned(), "a".to_owned()]);
    assert_eq!(skus.explanation, sku("GIFT-BOX-25"));
    assert_eq!(skus.hint, "hint 1");
    assert_eq!(
        skus.reason,
        r#"erp rejected the message (422): {"error":"unknown sku #"}"#
    );

    let one = store.failure_group(&skus.key).await.unwrap().unwrap();
    assert_eq!(&one, skus);
    assert!(
        store
            .failure_group("0000000000000000")
            .await
            .unwrap()
            .is_none()
    );

    let only = |f: GroupFilter| {
        let store = store.clone();
        async move { store.failure_groups(&f).await.unwrap().len() }
    };
    let class = |c| GroupFilter {
        class: Some(c),
        ..Default::default()
    };
    assert_eq!(only(class(ErrorClass::Timeout)).await, 1);
    assert_eq!(only(class(ErrorClass::Auth)).await, 0);
    let system = GroupFilter {
        system: Some("crm".into()),
        ..Default::default()
    };
    assert_eq!(only(system).await, 0);
    let route = GroupFilter {
        route: Some("orders".into()),
        ..Default::default()
    };
    assert_eq!(only(route).await, 2);

    // A retried delivery is no longer dead: it leaves its group.
    let n = store
        .retry(Selection::One("a".into()), "ops", T0 + 100, false)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let after = store.failure_group(&skus.key).await.unwrap().unwrap();
    assert_eq!(
        (after.count, after.samples.clone()),
        (1, vec!["b".to_owned()])
    );
}

#[tokio::test]
async fn failure_groups_on_sqlite() {
    on_sqlite(groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_groups_on_postgres() {
    on_postgres("failure_groups_on_postgres", groups).await;
}

/// Auto-resolve: a delivered message supersedes the dead ones of its entity
/// received before it, never a later one or another entity's.
async fn supersede(store: Store) {
    let plan = [
        ("a", "o1", 0),
        ("b", "o1", 1),
        ("c", "o2", 2),
        ("d", "o1", 3),
        ("e", "o1", 4),
    ];
    for (id, entity, at) in plan {
        let mut m = msg(id, None);
        m.entity_key = Some(entity.into());
        m.received_ms = T0 + at;
        store.accept(m).await.unwrap();
    }
    let claimed = store.claim("erp", T0 + 10, 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 5, "an entity key never holds a message back");
    for c in claimed.iter().filter(|c| c.message_id.as_str() != "d") {
        assert!(store.record(record(c, T0 + 20, Next::Dead)).await.unwrap());
    }
    let d = claimed
        .iter()
        .find(|c| c.message_id.as_str() == "d")
        .unwrap();
    assert!(
        store
            .record(record(d, T0 + 30, Next::Delivered))
            .await
            .unwrap()
    );
    let state = |id: &'static str| {
        let store = store.clone();
        async move { store.message(id).await.unwrap().unwrap().summary.state }
    };
    assert_eq!(state("a").await, State::Superseded);
    assert_eq!(state("b").await, State::Superseded);
    assert_eq!(state("c").await, State::Dead, "another entity");
    assert_eq!(
        state("e").await,
        State::Dead,
        "received after the delivered one"
    );
    let superseded = MessageFilter {
        state: Some(State::Superseded),
        ..Default::default()
    };
    assert_eq!(store.list(&superseded).await.unwrap().len(), 2);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats[0].superseded, stats[0].dead), (2, 2));
    // A superseded message may still be replayed by an operator.
    assert!(State::Superseded.retryable() && !State::Superseded.discardable());
}

#[tokio::test]
async fn supersede_on_sqlite() {
    on_sqlite(supersede).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_on_postgres() {
    on_postgres("supersede_on_postgres", supersede).await;
}

/// A group's status is set with its note, audited, filtered on, and a
/// resolved group reads as open again after a later failure.
async fn status(store: Store) {
    for id in ["a", "b"] {
        store.accept(msg(id, None)).await.unwrap();
    }
    let claimed = store.claim("erp", T0, 30_000, 10).await.unwrap();
    let key = group_key(ErrorClass::ServerError, "erp", "orders", "erp answered 503");
    let dead = |c: &Claimed, at: i64| {
        let mut r = record(c, at, Next::Dead);
        r.failure_group = Some(key.clone());
        r
    };
    assert!(store.record(dead(&claimed[0], T0 + 10)).await.unwrap());
    let mark = |status, at_ms| StatusMark {
        status,
        note: "erp maintenance".into(),
        actor: "ana".into(),
        at_ms,
    };
    store
        .set_group_status(&key, mark(GroupStatus::Resolved, T0 + 20))
        .await
        .unwrap();
    let g = store.failure_group(&key).await.unwrap().unwrap();
    assert_eq!(g.status, GroupStatus::Resolved);
    assert_eq!(g.mark, Some(mark(GroupStatus::Resolved, T0 + 20)));
    let by = |status| GroupFilter {
        status: Some(status),
        ..Default::default()
    };
    assert_eq!(
        store
            .failure_groups(&by(GroupStatus::Open))
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store
            .failure_groups(&by(GroupStatus::Resolved))
            .await
            .unwrap()
            .len(),
        1
    );
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(
        (
            audit[0].action.as_str(),
            audit[0].target.as_str(),
            audit[0].actor.as_str()
        ),
        ("group_status", key.as_str(), "ana")
    );
    assert_eq!(audit[0].detail, "resolved: erp maintenance");

    // A new failure after the resolve re-opens the group.
    assert!(store.record(dead(&claimed[1], T0 + 30)).await.unwrap());
    let g = store.failure_group(&key).await.unwrap().unwrap();
    assert_eq!((g.status, g.count), (GroupStatus::Open, 2));
    store
        .set_group_status(&key, mark(GroupStatus::Acknowledged, T0 + 40))
        .await
        .unwrap();
    let g = store.failure_group(&key).await.unwrap().unwrap();
    assert_eq!(g.status, GroupStatus::Acknowledged);

    // The group as a message filter: what a group retry selects.
    let of_group = MessageFilter {
        group: Some(key.clone()),
        state: Some(State::Dead),
        ..Default::default()
    };
    assert_eq!(store.list(&of_group).await.unwrap().len(), 2);
    let n = store
        .retry(Selection::Filter(of_group), "ana", T0 + 50, true)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn group_status_on_sqlite() {
    on_sqlite(status).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_status_on_postgres() {
    on_postgres("group_status_on_postgres", status).await;
}

/// With an `ordering_key` (no `entity_key`), a later delivery of the key
/// supersedes its dead ones too; here a dead one of class `config`, which
/// does not hold its key.
async fn supersede_by_ordering_key(store: Store) {
    let keyed = |id: &str, at: i64| {
        let mut m = msg(id, None);
        m.ordering_key = Some("K".into());
        m.received_ms = T0 + at;
        m
    };
    store.accept(keyed("a", 0)).await.unwrap();
    let a = store.claim("erp", T0 + 1, 30_000, 10).await.unwrap();
    let mut dead = record(&a[0], T0 + 2, Next::Dead);
    dead.class = Some(ErrorClass::Config);
    assert!(store.record(dead).await.unwrap());
    store.accept(keyed("b", 5)).await.unwrap();
    let b = store.claim("erp", T0 + 6, 30_000, 10).await.unwrap();
    assert_eq!(b.len(), 1, "a config failure does not hold its key");
    assert!(
        store
            .record(record(&b[0], T0 + 7, Next::Delivered))
            .await
            .unwrap()
    );
    let a = store.message("a").await.unwrap().unwrap();
    assert_eq!(a.summary.state, State::Superseded);
}

#[tokio::test]
async fn supersede_by_ordering_key_on_sqlite() {
    on_sqlite(supersede_by_ordering_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_by_ordering_key_on_postgres() {
    on_postgres(
        "supersede_by_ordering_key_on_postgres",
        supersede_by_ordering_key,
    )
    .await;
}
