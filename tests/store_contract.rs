//! The store contract: one story that every backend must tell the same way.
//! Runs on SQLite always, and on PostgreSQL (a fresh schema per test) when
//! `FERRY_TEST_POSTGRES_URL` is set, as `.ci/run` does.

use bytes::Bytes;
use ferry::deliver::pace::Rate;
use ferry::deliver::retry::ErrorClass;
use ferry::store::*;

const T0: i64 = 1_767_225_600_000;

fn msg(id: &str, dedupe: Option<&str>) -> NewMessage {
    NewMessage {
        id: id.into(),
        route: "orders".into(),
        system: "erp".into(),
        received_ms: T0,
        event_id: dedupe.map(str::to_owned),
        headers: r#"{"content-type":"application/json"}"#.into(),
        body: Bytes::from(format!(r#"{{"id":"{id}"}}"#)),
        delivery_key: format!("ferry-{id}"),
        dedupe: dedupe.map(|k| DedupeKey {
            key: k.into(),
            expires_ms: T0 + 1_000,
        }),
        idempotency: None,
        ordering_key: None,
        job_id: None,
    }
}

fn record(c: &Claimed, at: i64, next: Next) -> AttemptRecord {
    AttemptRecord {
        delivery_id: c.delivery_id,
        lease_until: c.lease_until,
        started_ms: at,
        duration_ms: 5,
        request: RequestLog {
            method: "POST".into(),
            url: "http://erp/x".into(),
            ..Default::default()
        },
        response: Some(ResponseLog {
            status: 503,
            ..Default::default()
        }),
        class: (next != Next::Delivered).then_some(ErrorClass::ServerError),
        explanation: "erp answered 503".into(),
        hint: "wait".into(),
        next,
    }
}

async fn story(store: Store) {
    // accept + dedupe
    assert_eq!(
        store.accept(msg("m1", Some("e1"))).await.unwrap(),
        Accepted::New
    );
    assert_eq!(
        store.accept(msg("m1b", Some("e1"))).await.unwrap(),
        Accepted::Duplicate {
            original: "m1".into()
        }
    );
    assert_eq!(store.accept(msg("m2", None)).await.unwrap(), Accepted::New);
    // an expired dedupe key is taken over
    let mut late = msg("m3", Some("e1"));
    late.received_ms = T0 + 1_000;
    late.dedupe.as_mut().unwrap().expires_ms = T0 + 10_000;
    assert_eq!(store.accept(late).await.unwrap(), Accepted::New);

    // idempotency: replay and misuse
    let idem = |id: &str, fp: &[u8]| {
        let mut m = msg(id, None);
        m.idempotency = Some(IdempotencyRecord {
            client: "erp".into(),
            key: "k".into(),
            fingerprint: fp.to_vec(),
            expires_ms: T0 + 10_000,
            response: StoredResponse {
                status: 202,
                body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
            },
        });
        m
    };
    assert_eq!(store.accept(idem("m4", b"a")).await.unwrap(), Accepted::New);
    assert_eq!(
        store.accept(idem("m4b", b"a")).await.unwrap(),
        Accepted::Replay(StoredResponse {
            status: 202,
            body: b"{\"id\":\"m4\"}".to_vec()
        })
    );
    assert_eq!(
        store.accept(idem("m4c", b"b")).await.unwrap(),
        Accepted::KeyReused
    );
    assert_eq!(store.stats().await.unwrap()[0].queued, 4);

    // claim: due work in order, leased
    let claimed = store.claim("erp", T0 + 1_000, 30_000, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].message_id, "m1");
    assert_eq!(&claimed[0].body[..], br#"{"id":"m1"}"#);
    assert_eq!(claimed[0].delivery_key, "ferry-m1");
    let rest = store.claim("erp", T0 + 1_000, 30_000, 10).await.unwrap();
    assert_eq!(rest.len(), 2, "leased work is not claimed twice");
    assert!(
        store
            .claim("erp", T0 + 2_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // record: retry, delivered, dead
    let (a, b) = (&claimed[0], &claimed[1]);
    let retry = Next::Retry {
        at_ms: T0 + 5_000,
        counts_against_budget: true,
        rate_limited: false,
        auth: false,
    };
    // a platform's answer quoted in an explanation may hold a NUL character
    let mut quoted = record(a, T0 + 1_000, retry);
    quoted.explanation = "erp answered 503: \0bad".into();
    assert!(store.record(quoted).await.unwrap());
    let detail = store.message(&a.message_id).await.unwrap().unwrap();
    assert!(
        detail.attempts[0]
            .explanation
            .starts_with("erp answered 503: "),
        "the attempt is stored and readable: {:?}",
        detail.attempts[0].explanation
    );
    assert!(
        store
            .record(record(b, T0 + 1_000, Next::Delivered))
            .await
            .unwrap()
    );
    assert!(
        store
            .record(record(&rest[0], T0 + 1_000, Next::Dead))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record(record(b, T0 + 1_000, Next::Dead))
            .await
            .unwrap(),
        "a lost lease cannot record"
    );
    assert_eq!(store.next_due("erp").await.unwrap(), Some(T0 + 5_000));

    // an abandoned lease (a crashed worker) comes back after it expires
    let abandoned = &rest[1];
    let due = store.claim("erp", T0 + 30_999, 30_000, 10).await.unwrap();
    assert_eq!(
        due.len(),
        1,
        "only the scheduled retry is due; the lease still holds"
    );
    assert_eq!(due[0].message_id, a.message_id);
    assert_eq!(due[0].attempts, 1);
    assert!(
        store
            .record(record(&due[0], T0 + 30_999, Next::Dead))
            .await
            .unwrap()
    );
    let reclaimed = store.claim("erp", T0 + 31_000, 30_000, 10).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].message_id, abandoned.message_id);
    assert!(
        !store
            .record(record(abandoned, T0 + 31_000, Next::Delivered))
            .await
            .unwrap(),
        "the old lease is void"
    );
    assert!(
        store
            .record(record(&reclaimed[0], T0 + 31_000, Next::Dead))
            .await
            .unwrap()
    );

    // list, filters, detail
    let dead = store
        .list(&MessageFilter {
            state: Some(State::Dead),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 3);
    assert!(
        dead.iter()
            .all(|m| m.last_class == Some(ErrorClass::ServerError))
    );
    let page = store
        .list(&MessageFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = store
        .list(&MessageFilter {
            limit: Some(10),
            before: Some(page[1].id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len() + next.len(), 4, "pages do not overlap or skip");
    let detail = store.message(&a.message_id).await.unwrap().unwrap();
    assert_eq!(detail.attempts.len(), 2);
    assert_eq!(detail.attempts[0].outcome, "retrying");
    assert_eq!(detail.attempts[1].outcome, "dead");
    assert_eq!(detail.headers["content-type"], "application/json");
    assert!(store.message("nope").await.unwrap().is_none());

    // operator actions
    let filter = MessageFilter {
        state: Some(State::Dead),
        ..Default::default()
    };
    assert_eq!(
        store
            .retry(Selection::Filter(filter.clone()), "ops", T0 + 40_000, true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.stats().await.unwrap()[0].dead, 3, "dry run");
    assert_eq!(
        store
            .discard(&dead[0].id, "ops", "duplicate order", T0 + 40_000)
            .await
            .unwrap(),
        Discarded::Done
    );
    assert_eq!(
        store
            .discard(&b.message_id, "ops", "x", T0 + 40_000)
            .await
            .unwrap(),
        Discarded::NotDiscardable
    );
    assert_eq!(
        store.discard("nope", "ops", "x", T0).await.unwrap(),
        Discarded::NotFound
    );
    assert_eq!(
        store
            .retry(Selection::Filter(filter), "ops", T0 + 40_000, false)
            .await
            .unwrap(),
        2
    );
    let again = store.claim("erp", T0 + 40_000, 30_000, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|c| c.attempts == 0 && c.budget_start_ms == T0 + 40_000),
        "fresh budget"
    );
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["retry", "discard"]
    );
    assert_eq!(audit[1].detail, "duplicate order");

    // prune drops only expired keys
    let pruned = store.prune(T0 + 5_000).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            dedupe_keys: 0,
            idempotency_keys: 0
        }
    );
    let pruned = store.prune(T0 + 20_000).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            dedupe_keys: 1,
            idempotency_keys: 1
        }
    );
    // each system's queue is its own; a delivery handed back is not an attempt
    let mut crm = msg("c1", None);
    crm.system = "crm".into();
    crm.received_ms = T0 + 50_000;
    assert_eq!(store.accept(crm).await.unwrap(), Accepted::New);
    assert!(
        store
            .claim("erp", T0 + 60_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due("crm").await.unwrap(), Some(T0 + 50_000));
    let c = store.claim("crm", T0 + 60_000, 30_000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!(
        store
            .defer(c[0].delivery_id, c[0].lease_until, T0 + 70_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .defer(c[0].delivery_id, c[0].lease_until, T0 + 70_000)
            .await
            .unwrap(),
        "a handed-back lease is void"
    );
    assert!(
        store
            .claim("crm", T0 + 69_999, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let c = store.claim("crm", T0 + 70_000, 30_000, 10).await.unwrap();
    assert_eq!((c.len(), c[0].attempts), (1, 0));
    let detail = store.message("c1").await.unwrap().unwrap();
    assert!(detail.attempts.is_empty(), "no attempt was recorded");

    // request budgets: reservations are spaced by the interval, per key
    let rate = Rate::new(10.0, 1);
    let g = store.reserve("crm", T0, rate, 5, 1_000).await.unwrap();
    assert_eq!(g.count, 5);
    assert_eq!(g.send_at_us(4), (T0 + 400) * 1000);
    let g = store.reserve("crm", T0, rate, 20, 1_000).await.unwrap();
    assert_eq!(g.count, 6, "slots at 0.5 s ... 1.0 s fit the horizon");
    assert_eq!(g.send_at_us(0), (T0 + 500) * 1000);
    let g = store.reserve("crm", T0 + 10, rate, 1, 0).await.unwrap();
    assert_eq!((g.count, g.next_us), (0, (T0 + 1_100) * 1000));
    assert_eq!(
        store.reserve("erp", T0, rate, 1, 0).await.unwrap().count,
        1,
        "keys are separate"
    );
    // a platform's hold: nothing before its time, on an unlimited budget too
    for r in [rate, Rate::UNLIMITED] {
        store.hold("hold", T0 + 5_000, r).await.unwrap();
        let g = store.reserve("hold", T0, r, 3, 1_000).await.unwrap();
        assert_eq!((g.count, g.next_us), (0, (T0 + 5_000) * 1000));
        let g = store
            .reserve("hold", T0 + 4_500, r, 1, 1_000)
            .await
            .unwrap();
        assert_eq!((g.count, g.send_at_us(0)), (1, (T0 + 5_000) * 1000));
    }

    // queue depth counts only what is still owed an attempt
    let mut depth = store.queue_depth().await.unwrap();
    depth.sort_by(|a, b| a.system.cmp(&b.system));
    let pending = store.stats().await.unwrap()[0].pending();
    let per_system: Vec<(&str, u64)> = depth.iter().map(|d| (d.system.as_str(), d.depth)).collect();
    assert_eq!(per_system, vec![("crm", 1), ("erp", 2)]);
    assert!(depth.iter().all(|d| d.route == "orders"));
    assert_eq!(depth.iter().map(|d| d.depth).sum::<u64>(), pending);

    store.ping().await.unwrap();
    store.maintain().await.unwrap();
}

#[tokio::test]
async fn the_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    story(Store::open_sqlite(dir.path()).unwrap()).await;
}

/// A fresh PostgreSQL schema, or `None` (and a note) when no server is given.
async fn postgres(test: &str) -> Option<(Store, String, String)> {
    let Ok(url) = std::env::var("FERRY_TEST_POSTGRES_URL") else {
        eprintln!("{test}: FERRY_TEST_POSTGRES_URL is not set; skipped on PostgreSQL");
        return None;
    };
    let (scoped, schema) = ferry::store::postgres::scratch_schema(&url, "ferry_contract")
        .await
        .unwrap();
    Some((Store::open_postgres(&scoped).await.unwrap(), url, schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_on_postgres() {
    let Some((store, url, schema)) = postgres("the_story_on_postgres").await else {
        return;
    };
    story(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}

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

#[tokio::test]
async fn sqlite_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_sqlite(dir.path()).unwrap();
        store.accept(msg("kept", Some("e"))).await.unwrap();
    }
    let store = Store::open_sqlite(dir.path()).unwrap();
    assert_eq!(
        store.claim("erp", T0, 1_000, 10).await.unwrap()[0].message_id,
        "kept"
    );
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
    let dir = tempfile::tempdir().unwrap();
    racing_accepts(Store::open_sqlite(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_accepts_on_postgres() {
    let Some((store, url, schema)) = postgres("racing_accepts_on_postgres").await else {
        return;
    };
    racing_accepts(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
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
    let wake = ferry::deliver::Wake::default();
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
        let mut v: Vec<String> = c.iter().map(|c| c.message_id.clone()).collect();
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
    let dir = tempfile::tempdir().unwrap();
    ordered_claims(Store::open_sqlite(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_claims_on_postgres() {
    let Some((store, url, schema)) = postgres("ordered_claims_on_postgres").await else {
        return;
    };
    ordered_claims(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    jobs(Store::open_sqlite(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_postgres() {
    let Some((store, url, schema)) = postgres("jobs_on_postgres").await else {
        return;
    };
    jobs(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    probes(Store::open_sqlite(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_on_postgres() {
    let Some((store, url, schema)) = postgres("probes_on_postgres").await else {
        return;
    };
    probes(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}
