//! The store contract with several writers at once: claims from two
//! PostgreSQL instances, racing accepts of one key, wake-ups across instances
//! and a refused message inside a group commit.

use ferry::store::*;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_are_disjoint_across_instances() {
    let Some((a, url, schema)) = postgres("postgres_claims_are_disjoint").await else {
        return;
    };
    let scoped = format!("{url}?options=-csearch_path%3D{schema}");
    let b = Store::open_postgres(&scoped).await.unwrap();
    for i in 0..200 {
        a.accept(msg(&format!("m{i:03}"), None)).await.unwrap();
    }
    // Two instances claim at the same moment, many times over.
    let mut seen = std::collections::HashSet::new();
    loop {
        let (x, y) = tokio::join!(a.claim("erp", T0, 30_000, 7), b.claim("erp", T0, 30_000, 7));
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        for c in x.iter().chain(&y) {
            assert!(
                seen.insert(c.delivery_id),
                "claimed twice: {}",
                c.message_id
            );
        }
    }
    assert_eq!(seen.len(), 200);
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}

/// Accepts of one key racing each other (one group commit, or several):
/// one wins, every other names it.
async fn racing_accepts(store: Store) {
    let mut msgs: Vec<NewMessage> = (0..40)
        .map(|i| msg(&format!("r{i:02}"), Some("burst")))
        .collect();
    msgs.extend((0..10).map(|i| msg(&format!("u{i:02}"), Some(&format!("own{i}")))));
    let results = futures_util::future::join_all(msgs.into_iter().map(|m| store.accept(m))).await;
    let results: Vec<Accepted> = results.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..40).filter(|i| results[*i] == Accepted::New).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let original = format!("r{:02}", winners[0]);
    for r in &results[..40] {
        assert!(
            *r == Accepted::New
                || *r
                    == Accepted::Duplicate {
                        original: original.clone()
                    }
        );
    }
    assert!(results[40..].iter().all(|r| *r == Accepted::New));
    assert_eq!(store.stats().await.unwrap()[0].queued, 11);
}

#[tokio::test]
async fn racing_accepts_on_sqlite() {
    on_sqlite(racing_accepts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_accepts_on_postgres() {
    on_postgres("racing_accepts_on_postgres", racing_accepts).await;
}

/// A commit on one PostgreSQL instance wakes the others' workers through
/// LISTEN/NOTIFY (their own poll is not involved: only the signal is watched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_wake_other_instances() {
    let Some((a, url, schema)) = postgres("postgres_commits_wake_other_instances").await else {
        return;
    };
    let scoped = format!("{url}?options=-csearch_path%3D{schema}");
    let b = Store::open_postgres(&scoped).await.unwrap();
    let wake = ferry::model::Wake::default();
    let mut signals = wake.subscribe();
    b.wake_on_remote_work(wake);
    let limit = std::time::Duration::from_secs(10);
    // The listener signals once when it starts listening (work may be due).
    tokio::time::timeout(limit, signals.changed())
        .await
        .unwrap()
        .unwrap();
    a.accept(msg("woke", None)).await.unwrap();
    tokio::time::timeout(limit, signals.changed())
        .await
        .expect("no NOTIFY reached the other instance")
        .unwrap();
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}

/// One message PostgreSQL refuses (a NUL in a text column) fails alone: the
/// others committed in the same group still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_refused_message_does_not_fail_its_batch() {
    let Some((store, url, schema)) = postgres("postgres_one_refused_message").await else {
        return;
    };
    let mut msgs: Vec<NewMessage> = (0..20)
        .map(|i| msg(&format!("ok{i:02}"), Some(&format!("k{i}"))))
        .collect();
    msgs.insert(7, msg("bad", Some("nul\0key")));
    let results = futures_util::future::join_all(msgs.into_iter().map(|m| store.accept(m))).await;
    for (i, r) in results.iter().enumerate() {
        match i {
            7 => assert!(r.is_err(), "the refused message is not acked"),
            _ => assert_eq!(r.as_ref().unwrap(), &Accepted::New),
        }
    }
    assert_eq!(store.stats().await.unwrap()[0].queued, 20);
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}
