//! The store contract: one story that every backend must tell the same way.
//! Runs on SQLite always, and on PostgreSQL (a fresh schema per test) when
//! `FERRY_TEST_POSTGRES_URL` is set, as `.ci/run` does. Here: the story of
//! a message (accept, claim, record, lists, budgets, upkeep); in
//! `instances`, several writers and instances at once; in `scheduling`,
//! per-key order, bulk jobs and breaker probes.

use bytes::Bytes;
use ferry::limits::pace::Rate;
use ferry::model::ErrorClass;
use ferry::store::*;

mod console;
mod credentials;
mod edit;
mod embed;
mod failures;
mod instances;
mod retention;
mod scheduling;
mod search;
mod tls;
mod tokens;

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
        entity_key: None,
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
        failure_group: None,
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
            before: Some(page[1].id.to_string()),
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
            idempotency_keys: 0,
            sessions: 0
        }
    );
    let pruned = store.prune(T0 + 20_000).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            dedupe_keys: 1,
            idempotency_keys: 1,
            sessions: 0
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

/// Runs a contract story on a fresh SQLite store.
async fn on_sqlite<F: Future<Output = ()>>(story: impl FnOnce(Store) -> F) {
    let dir = tempfile::tempdir().unwrap();
    story(Store::open_sqlite(dir.path()).unwrap()).await;
}

/// Runs a contract story on a fresh PostgreSQL schema (dropped afterwards),
/// when a server is given.
async fn on_postgres<F: Future<Output = ()>>(test: &str, story: impl FnOnce(Store) -> F) {
    let Some((store, url, schema)) = postgres(test).await else {
        return;
    };
    story(store).await;
    ferry::store::postgres::drop_scratch_schema(&url, &schema)
        .await
        .unwrap();
}

/// A fresh PostgreSQL schema, or `None` (and a note) when no server is given.
async fn postgres(test: &str) -> Option<(Store, String, String)> {
    let url = crate::common::postgres_test_url(test)?;
    let (scoped, schema) = ferry::store::postgres::scratch_schema(&url, "ferry_contract")
        .await
        .unwrap();
    Some((Store::open_postgres(&scoped).await.unwrap(), url, schema))
}

#[tokio::test]
async fn the_story_on_sqlite() {
    on_sqlite(story).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_on_postgres() {
    on_postgres("the_story_on_postgres", story).await;
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
