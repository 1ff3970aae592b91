//! The store contract for scheduling: per-key order in claims, releasing a
//! blocked key, bulk jobs' progress, and a half-open breaker's shared probe
//! slot.

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

/// Releasing a blocked ordering key: the dead deliveries of (route, key),
/// and only those, are discarded with the reason, audited once as
/// `release-key` on `route/key`, and the key moves on; the filter's exact
/// `ordering_key` selects the same rows in lists.
async fn released_keys(store: Store) {
    let keyed = |id: &str, route: &str, key: &str| {
        let mut m = msg(id, None);
        m.route = route.into();
        m.ordering_key = Some(key.to_owned());
        m
    };
    for (id, route, key) in [
        ("r1", "orders", "A"),
        ("r2", "orders", "A"),
        ("r3", "orders", "AB"),
        ("r4", "orders", "B"),
        ("r5", "refunds", "A"),
    ] {
        store.accept(keyed(id, route, key)).await.unwrap();
    }
    let first = store.claim("erp", T0, 30_000, 10).await.unwrap();
    assert_eq!(first.len(), 4, "one head per (route, key): r1, r3, r4, r5");
    for c in &first {
        if c.message_id != "r3" {
            assert!(store.record(record(c, T0, Next::Dead)).await.unwrap());
        } else {
            assert!(store.record(record(c, T0, Next::Delivered)).await.unwrap());
        }
    }
    let of_key = |key: &str| MessageFilter {
        route: Some("orders".into()),
        ordering_key: Some(key.into()),
        ..Default::default()
    };
    let listed: Vec<String> = store
        .list(&of_key("A"))
        .await
        .unwrap()
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(listed, ["r2", "r1"], "exact key, this route only");
    assert!(
        store
            .claim("erp", T0 + 1_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "r2 waits behind dead r1"
    );
    assert_eq!(
        store
            .release_key("orders", "A", "bad data", "ops", T0 + 2_000, true)
            .await
            .unwrap(),
        1,
        "dry run: r1 would go"
    );
    assert_eq!(
        store.message("r1").await.unwrap().unwrap().summary.state,
        State::Dead
    );
    assert_eq!(
        store
            .release_key("orders", "A", "bad data", "ops", T0 + 2_000, false)
            .await
            .unwrap(),
        1
    );
    let r1 = store.message("r1").await.unwrap().unwrap();
    assert_eq!(r1.summary.state, State::Discarded);
    assert_eq!(r1.discard_reason.as_deref(), Some("bad data"));
    for untouched in ["r4", "r5"] {
        assert_eq!(
            store
                .message(untouched)
                .await
                .unwrap()
                .unwrap()
                .summary
                .state,
            State::Dead,
            "{untouched}: another key or route keeps its dead delivery"
        );
    }
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].action.as_str(),
            audit[0].target.as_str(),
            audit[0].actor.as_str()
        ),
        ("release-key", "orders/A", "ops")
    );
    assert!(
        audit[0].detail.contains("bad data"),
        "{:?}",
        audit[0].detail
    );
    let next = store.claim("erp", T0 + 2_000, 30_000, 10).await.unwrap();
    let next: Vec<String> = next.iter().map(|c| c.message_id.to_string()).collect();
    assert_eq!(next, ["r2"], "released: the key moves on");
    assert_eq!(
        store
            .release_key("orders", "A", "again", "ops", T0 + 3_000, false)
            .await
            .unwrap(),
        0,
        "nothing dead is left on the key"
    );
    assert_eq!(
        store
            .discard_matching(of_key("B"), "by filter", "ops", T0 + 3_000, false)
            .await
            .unwrap(),
        1,
        "a discard by filter honours the ordering key too"
    );
    assert_eq!(
        store.message("r4").await.unwrap().unwrap().summary.state,
        State::Discarded
    );
}

#[tokio::test]
async fn released_keys_on_sqlite() {
    on_sqlite(released_keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_keys_on_postgres() {
    on_postgres("released_keys_on_postgres", released_keys).await;
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
