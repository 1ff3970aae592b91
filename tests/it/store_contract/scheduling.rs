//! The store contract for scheduling: per-key order in claims, bulk jobs'
//! progress, and a half-open breaker's shared probe slot.

use ferry::store::*;

use super::*;

/// Per-entity order: only the earliest delivery of each ordering key still
/// owed an attempt (or dead) can be claimed; a dead one holds its key until
/// an operator discards it; keys do not hold each other up.
async fn ordered_claims(store: Store) {
    let keyed = |id: &str, key: Option<&str>| {
        let mut m = msg(id, None);
        m.ordering_key = key.map(str::to_owned);
        m
    };
    // Accepted newest first: the order is the message ids', not the commits'.
    for (id, key) in [
        ("o3", Some("A")),
        ("o2", Some("A")),
        ("o1", Some("A")),
        ("o4", Some("B")),
        ("o5", None),
    ] {
        store.accept(keyed(id, key)).await.unwrap();
    }
    let ids = |c: &[Claimed]| {
        let mut v: Vec<String> = c.iter().map(|c| c.message_id.to_string()).collect();
        v.sort();
        v
    };
    let first = store.claim("erp", T0, 30_000, 10).await.unwrap();
    assert_eq!(ids(&first), ["o1", "o4", "o5"], "one head per key");
    assert!(
        store
            .claim("erp", T0 + 1_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "the next of a key waits while its head is in flight"
    );
    let o1 = first.iter().find(|c| c.message_id == "o1").unwrap();
    assert!(
        store
            .record(record(o1, T0 + 1_000, Next::Dead))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim("erp", T0 + 2_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "a dead head holds its key"
    );
    assert_eq!(
        store.next_due("erp").await.unwrap(),
        Some(T0 + 30_000),
        "what waits behind its key is not due (only the leases of o4 and o5 are)"
    );
    let listed = store.message("o2").await.unwrap().unwrap();
    assert_eq!(listed.summary.ordering_key.as_deref(), Some("A"));
    assert_eq!(
        store
            .discard("o1", "ops", "bad data", T0 + 3_000)
            .await
            .unwrap(),
        Discarded::Done
    );
    let next = store.claim("erp", T0 + 3_000, 30_000, 10).await.unwrap();
    assert_eq!(
        ids(&next),
        ["o2"],
        "skipped: the key moves on, one at a time"
    );
}

#[tokio::test]
async fn ordered_claims_on_sqlite() {
    on_sqlite(ordered_claims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_claims_on_postgres() {
    on_postgres("ordered_claims_on_postgres", ordered_claims).await;
}

/// Bulk sync jobs: a row per upload (resumable by id) and its messages'
/// progress by state.
async fn jobs(store: Store) {
    let job = NewJob {
        id: "job_1".into(),
        route: "orders".into(),
        client: Some("erp".into()),
        created_ms: T0,
    };
    assert!(store.start_job(job.clone()).await.unwrap());
    assert!(!store.start_job(job).await.unwrap(), "a resumed upload");
    for i in 0..3 {
        let mut m = msg(&format!("j{i}"), None);
        m.job_id = Some("job_1".into());
        store.accept(m).await.unwrap();
    }
    store.accept(msg("other", None)).await.unwrap();
    let view = store.job("job_1").await.unwrap().unwrap();
    assert_eq!((view.messages.queued, view.finished_ms), (3, None));
    assert!(!view.done());
    let claimed = store.claim("erp", T0, 30_000, 10).await.unwrap();
    for c in &claimed {
        assert!(store.record(record(c, T0, Next::Delivered)).await.unwrap());
    }
    let errors = vec![LineError {
        line: 2,
        error: "not JSON".into(),
    }];
    store
        .end_job(
            "job_1",
            JobUpload {
                lines: 4,
                rejected: 1,
                errors: errors.clone(),
                finished_ms: Some(T0 + 5),
            },
        )
        .await
        .unwrap();
    let view = store.job("job_1").await.unwrap().unwrap();
    assert_eq!(view.messages.delivered, 3, "only the job's own messages");
    assert!(view.done());
    assert_eq!((view.lines, view.rejected, view.errors), (4, 1, errors));
    assert!(store.job("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn jobs_on_sqlite() {
    on_sqlite(jobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_postgres() {
    on_postgres("jobs_on_postgres", jobs).await;
}

/// A half-open breaker's probe slot: one taker per interval.
async fn probes(store: Store) {
    assert_eq!(
        store.probe("crm", T0, 5_000).await.unwrap(),
        None,
        "free: taken"
    );
    assert_eq!(
        store.probe("crm", T0 + 1, 5_000).await.unwrap(),
        Some(T0 + 5_000),
        "taken until the interval ends"
    );
    assert_eq!(
        store.probe("erp", T0 + 1, 5_000).await.unwrap(),
        None,
        "per system"
    );
    assert_eq!(store.probe("crm", T0 + 5_000, 5_000).await.unwrap(), None);
}

#[tokio::test]
async fn probes_on_sqlite() {
    on_sqlite(probes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_postgres() {
    on_postgres("probes_on_postgres", probes).await;
}
