//! Retention and housekeeping, on every backend: finished messages past
//! `[retention]` are deleted with their attempts (never one still owed an
//! attempt, never a dead one holding its ordering key), dedupe and
//! idempotency windows outlive their messages, retry and discard by filter
//! go in chunks without selecting a row twice, and a steady flow of 100k messages
//! with 1-minute retention leaves only the last minute's rows (on SQLite, in
//! a file of bounded size).

use std::time::Duration;

use ferry::config::Retention;
use ferry::store::*;

use super::{T0, msg, on_postgres, on_sqlite, record};

const MINUTE: i64 = 60_000;

fn retention() -> Retention {
    Retention {
        delivered: Duration::from_secs(60),
        dead: Duration::from_secs(120),
    }
}

fn with_keys(id: &str) -> NewMessage {
    let mut m = msg(id, Some(&format!("evt-{id}")));
    m.dedupe.as_mut().unwrap().expires_ms = T0 + 10 * MINUTE;
    m.idempotency = Some(IdempotencyRecord {
        client: "erp".into(),
        key: format!("idem-{id}"),
        fingerprint: b"fp".to_vec(),
        expires_ms: T0 + 10 * MINUTE,
        response: StoredResponse {
            status: 202,
            body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        },
    });
    m
}

async fn windows_outlive_messages(store: Store) {
    for id in ["done", "dies", "waits", "skip"] {
        assert_eq!(store.accept(with_keys(id)).await.unwrap(), Accepted::New);
    }
    let mut held = msg("held", None);
    held.ordering_key = Some("cust-1".into());
    let mut behind = msg("held2", None);
    behind.ordering_key = Some("cust-1".into());
    store.accept(held).await.unwrap();
    store.accept(behind).await.unwrap();
    for c in store.claim("erp", T0, 30_000, 10).await.unwrap() {
        let next = match c.message_id.as_str() {
            "done" => Next::Delivered,
            "skip" => Next::Skipped,
            "dies" | "held" => Next::Dead,
            _ => continue,
        };
        assert!(store.record(record(&c, T0, next)).await.unwrap());
    }
    let job = NewJob {
        id: "job_r".into(),
        route: "orders".into(),
        client: None,
        created_ms: T0,
    };
    store.start_job(job).await.unwrap();
    let upload = JobUpload {
        lines: 0,
        rejected: 0,
        errors: vec![],
        finished_ms: Some(T0),
    };
    store.end_job("job_r", upload).await.unwrap();

    // Skipped is a finished state, shown as such.
    let skipped = store.message("skip").await.unwrap().unwrap();
    assert_eq!(skipped.summary.state, ferry::store::State::Skipped);
    // Within retention nothing goes.
    let none = store
        .purge(Cutoffs::of(&retention(), T0 + 30_000))
        .await
        .unwrap();
    assert_eq!(none, Purged::default());
    // Past `delivered`: the delivered and the skipped message, their
    // attempts and the empty job.
    let p = store
        .purge(Cutoffs::of(&retention(), T0 + MINUTE + 1_000))
        .await
        .unwrap();
    assert_eq!((p.messages, p.attempts, p.jobs), (2, 2, 1));
    assert!(store.message("done").await.unwrap().is_none());
    assert!(store.message("skip").await.unwrap().is_none());
    assert!(store.job("job_r").await.unwrap().is_none());
    assert!(
        store.message("dies").await.unwrap().is_some(),
        "dead: kept longer"
    );
    // Past `dead`: the dead one, but not the one holding its key, nor work
    // still owed an attempt.
    let p = store
        .purge(Cutoffs::of(&retention(), T0 + 3 * MINUTE))
        .await
        .unwrap();
    assert_eq!((p.messages, p.attempts), (1, 1));
    assert!(store.message("dies").await.unwrap().is_none());
    for kept in ["held", "held2", "waits"] {
        assert!(store.message(kept).await.unwrap().is_some(), "{kept} kept");
    }

    // The windows outlive the messages: a duplicate still answers duplicate
    // and a replay still gets its stored response; nothing is stored.
    let mut dup = with_keys("done-again");
    dup.dedupe.as_mut().unwrap().key = "evt-done".into();
    dup.received_ms = T0 + 3 * MINUTE;
    assert_eq!(
        store.accept(dup).await.unwrap(),
        Accepted::Duplicate {
            original: "done".into()
        }
    );
    let mut replay = with_keys("x");
    replay.dedupe = None;
    replay.idempotency.as_mut().unwrap().key = "idem-dies".into();
    replay.received_ms = T0 + 3 * MINUTE;
    assert_eq!(
        store.accept(replay).await.unwrap(),
        Accepted::Replay(StoredResponse {
            status: 202,
            body: b"{\"id\":\"dies\"}".to_vec()
        })
    );
    for id in ["done-again", "x"] {
        assert!(
            store.message(id).await.unwrap().is_none(),
            "{id} not stored"
        );
    }
    // Then the keys expire and go, in chunks.
    let p = store.prune(T0 + 10 * MINUTE).await.unwrap();
    assert_eq!((p.dedupe_keys, p.idempotency_keys), (4, 4));
}

/// Retry by filter over more than one chunk: every match requeued once, one
/// audit entry per chunk, the dry run counts the same.
async fn retry_in_chunks(store: Store) {
    let n = CHUNK + 7;
    let accepts = (0..n).map(|i| store.accept(msg(&format!("r{i:04}"), None)));
    futures_util::future::try_join_all(accepts).await.unwrap();
    let claimed = store.claim("erp", T0, 30_000, n).await.unwrap();
    let records = claimed
        .iter()
        .map(|c| store.record(record(c, T0, Next::Dead)));
    futures_util::future::try_join_all(records).await.unwrap();
    let all = Selection::Filter(MessageFilter::default());
    assert_eq!(
        store.retry(all.clone(), "ops", T0 + 1, true).await.unwrap(),
        n as u64
    );
    assert_eq!(
        store
            .retry(all.clone(), "ops", T0 + 1, false)
            .await
            .unwrap(),
        n as u64
    );
    assert_eq!(store.retry(all, "ops", T0 + 2, false).await.unwrap(), 0);
    let audit = store.audit_log(10).await.unwrap();
    let retries: Vec<&str> = audit
        .iter()
        .filter(|a| a.action == "retry")
        .map(|a| a.detail.as_str())
        .collect();
    assert_eq!(
        retries,
        ["7 message(s) requeued", "500 message(s) requeued"],
        "newest first, one per chunk"
    );
    let due = store.claim("erp", T0 + 2, 30_000, n + 1).await.unwrap();
    assert_eq!(due.len(), n, "each requeued exactly once");
}

/// Discard by filter over more than one chunk: only the selected state is
/// touched (a queued message stays queued unless `queued` is named), every
/// match is discarded once with the reason, one audit entry per chunk, the
/// dry run counts the same, and a state it cannot apply to selects nothing.
async fn discard_in_chunks(store: Store) {
    let n = CHUNK + 3;
    let accepts = (0..n).map(|i| store.accept(msg(&format!("d{i:04}"), None)));
    futures_util::future::try_join_all(accepts).await.unwrap();
    let claimed = store.claim("erp", T0, 30_000, n).await.unwrap();
    let records = claimed
        .iter()
        .map(|c| store.record(record(c, T0, Next::Dead)));
    futures_util::future::try_join_all(records).await.unwrap();
    store.accept(msg("waiting", None)).await.unwrap();
    let dead = MessageFilter::default();
    let discard = |f: MessageFilter, dry: bool| {
        let store = store.clone();
        async move {
            store
                .discard_matching(f, "order cancelled in the ERP", "ops", T0 + 1, dry)
                .await
                .unwrap()
        }
    };
    assert_eq!(discard(dead.clone(), true).await, n as u64, "dry run");
    assert_eq!(
        store.stats().await.unwrap()[0].dead,
        n as u64,
        "dry run changes nothing"
    );
    assert_eq!(discard(dead.clone(), false).await, n as u64);
    assert_eq!(discard(dead, false).await, 0, "nothing dead is left");
    let stats = &store.stats().await.unwrap()[0];
    assert_eq!(
        (stats.dead, stats.discarded, stats.queued),
        (0, n as u64, 1)
    );
    let one = store.message("d0000").await.unwrap().unwrap();
    assert_eq!(one.summary.state, State::Discarded);
    let audit = store.audit_log(10).await.unwrap();
    let details: Vec<&str> = audit
        .iter()
        .filter(|a| a.action == "discard")
        .map(|a| a.detail.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "3 message(s) discarded: order cancelled in the ERP",
            "500 message(s) discarded: order cancelled in the ERP"
        ],
        "newest first, one per chunk"
    );
    for state in [State::Delivered, State::Discarded, State::Delivering] {
        let f = MessageFilter {
            state: Some(state),
            ..Default::default()
        };
        assert_eq!(
            discard(f, false).await,
            0,
            "{state:?} is never discarded by filter"
        );
    }
    let queued = MessageFilter {
        state: Some(State::Queued),
        ..Default::default()
    };
    assert_eq!(discard(queued, false).await, 1);
    assert!(
        store
            .claim("erp", T0 + 2, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The bench's preloaded keys are live dedupe keys like any other, pruned
/// in chunks once expired.
async fn preloaded_keys(store: Store) {
    let n = CHUNK as u64 * 2 + 3;
    store
        .preload_dedupe("orders", n, T0 + MINUTE)
        .await
        .unwrap();
    assert_eq!(
        store.accept(msg("late", Some("preload-7"))).await.unwrap(),
        Accepted::Duplicate {
            original: "preload".into()
        }
    );
    let p = store.prune(T0 + MINUTE).await.unwrap();
    assert_eq!(p.dedupe_keys, n);
}

/// `total` messages through, 1,000 every 10 s of manual time: accepted,
/// claimed, delivered, then pruned and purged by the janitor's calls with
/// 1-minute retention. `after_step` sees the step count (for file sizes).
pub async fn steady_flow(store: &Store, total: usize, mut after_step: impl FnMut(usize)) {
    const STEP: usize = 1_000;
    let mut now = T0;
    for step in 0..total / STEP {
        let accepts = (0..STEP).map(|i| {
            let mut m = with_keys(&format!("f{step:04}-{i:04}"));
            m.received_ms = now;
            m.dedupe.as_mut().unwrap().expires_ms = now + MINUTE;
            m.idempotency.as_mut().unwrap().expires_ms = now + MINUTE;
            store.accept(m)
        });
        for a in futures_util::future::try_join_all(accepts).await.unwrap() {
            assert_eq!(a, Accepted::New);
        }
        let claimed = store.claim("erp", now, 30_000, STEP).await.unwrap();
        assert_eq!(claimed.len(), STEP);
        let records = claimed
            .iter()
            .map(|c| store.record(record(c, now, Next::Delivered)));
        futures_util::future::try_join_all(records).await.unwrap();
        now += 10_000;
        store.prune(now).await.unwrap();
        store.purge(Cutoffs::of(&retention(), now)).await.unwrap();
        store.maintain().await.unwrap();
        after_step(step + 1);
    }
    // Only the last minute is left: 6 steps of 1,000.
    let stats = store.stats().await.unwrap();
    let left: u64 = stats.iter().map(|s| s.delivered).sum();
    assert!(left <= 6 * STEP as u64, "{left} delivered messages left");
    assert!(left >= 5 * STEP as u64, "{left}: retention took too much");
}

/// Messages through the steady flow: 100k in a release build; 30k in a debug
/// one, where 100k took 79 s (on SQLite: the file peaked at 7.5 MB against
/// a bound of 15 MB) and 30k takes about 25 s.
const FLOW: usize = if cfg!(debug_assertions) {
    30_000
} else {
    100_000
};

#[tokio::test]
async fn retention_on_sqlite() {
    on_sqlite(windows_outlive_messages).await;
    on_sqlite(retry_in_chunks).await;
    on_sqlite(discard_in_chunks).await;
    on_sqlite(preloaded_keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres() {
    on_postgres("retention_on_postgres", windows_outlive_messages).await;
    on_postgres("retention_on_postgres", retry_in_chunks).await;
    on_postgres("retention_on_postgres", discard_in_chunks).await;
    on_postgres("retention_on_postgres", preloaded_keys).await;
    on_postgres("retention_on_postgres", |s| async move {
        steady_flow(&s, FLOW, |_| {}).await;
    })
    .await;
}

/// The SQLite file (database plus WAL, after the janitor's checkpoint) stays
/// bounded under a steady flow: freed pages are reused. Bound: twice its size
/// once the first 10k messages have passed (when retention has begun to
/// delete), plus 1 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_stays_bounded_under_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).unwrap();
    let size = || {
        ["ferry.sqlite3", "ferry.sqlite3-wal"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let (mut first, mut largest) = (0, 0);
    steady_flow(&store, FLOW, |step| {
        let now = size();
        if step == 10 {
            first = now;
        }
        largest = largest.max(now);
    })
    .await;
    let bound = 2 * first + (1 << 20);
    eprintln!("store file: {first} bytes after 10k, at most {largest} over {FLOW}, bound {bound}");
    assert!(largest <= bound, "{largest} > {bound}");
}
