//! What the console keeps and reads, on both backends: sessions (found by
//! their hash while neither idle nor past their end, ended by sign-out, a
//! new password or the user's removal, pruned once expired) and the
//! dashboard's activity (counts by state over the last hour and day, the
//! queue and its oldest message, the day's half-hour buckets).

use super::*;

const IDLE: i64 = 30 * 60_000;

async fn sessions(store: Store) {
    let ana = Account {
        name: "ana".into(),
        role: Role::Operator,
        created_ms: T0,
        created_by: "root".into(),
    };
    assert!(
        store
            .add_account(AccountKind::User, ana, "$argon2id$x")
            .await
            .unwrap()
    );
    let start = |token: &str, now_ms: i64| NewSession {
        token_sha256: token.into(),
        user: "ana".into(),
        csrf: format!("csrf-{token}"),
        now_ms,
        expires_ms: now_ms + 12 * 3_600_000,
        address: "10.0.0.7".into(),
    };
    store.start_session(start("s1", T0)).await.unwrap();
    let ana_now = Some(SessionUser {
        name: "ana".into(),
        role: Role::Operator,
        csrf: "csrf-s1".into(),
    });
    assert_eq!(store.session("s1", T0 + 1, IDLE).await.unwrap(), ana_now);
    assert_eq!(store.session("nope", T0 + 1, IDLE).await.unwrap(), None);
    // Used within the idle time, it lives on; unused for longer, it ends.
    assert_eq!(
        store.session("s1", T0 + IDLE - 1, IDLE).await.unwrap(),
        ana_now
    );
    assert_eq!(
        store.session("s1", T0 + 2 * IDLE - 2, IDLE).await.unwrap(),
        ana_now
    );
    assert_eq!(
        store.session("s1", T0 + 3 * IDLE, IDLE).await.unwrap(),
        None,
        "idle"
    );
    // However used, it ends at its absolute end.
    let mut at = T0;
    store.start_session(start("s2", T0)).await.unwrap();
    while at < T0 + 12 * 3_600_000 - IDLE / 2 {
        at += IDLE / 2;
        assert!(
            store.session("s2", at, IDLE).await.unwrap().is_some(),
            "at {at}"
        );
    }
    at += IDLE / 2;
    assert_eq!(
        store.session("s2", at, IDLE).await.unwrap(),
        None,
        "past its end"
    );
    // The user's current role counts, not the one at sign-in.
    store.start_session(start("s3", T0)).await.unwrap();
    store.end_session("s3").await.unwrap();
    assert_eq!(
        store.session("s3", T0 + 1, IDLE).await.unwrap(),
        None,
        "signed out"
    );
    store.start_session(start("s4", T0)).await.unwrap();
    store
        .set_password("ana", "$argon2id$y", "root", T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        store.session("s4", T0 + 3, IDLE).await.unwrap(),
        None,
        "new password"
    );
    store.start_session(start("s5", T0)).await.unwrap();
    store
        .remove_account(AccountKind::User, "ana", "root", T0 + 4)
        .await
        .unwrap();
    assert_eq!(
        store.session("s5", T0 + 5, IDLE).await.unwrap(),
        None,
        "removed"
    );
    let audit = store.audit_log(20).await.unwrap();
    let logins = audit.iter().filter(|a| a.action == "login").count();
    assert_eq!(logins, 5, "every sign-in is audited");
    assert!(audit.iter().any(|a| a.detail == "from 10.0.0.7"));
    let login = audit.iter().find(|a| a.action == "login").unwrap();
    assert_eq!(
        (login.actor.as_str(), login.channel.as_str()),
        ("ana", "console")
    );
    let removed = audit.iter().find(|a| a.action == "user-remove").unwrap();
    assert_eq!(
        (removed.actor.as_str(), removed.channel.as_str()),
        ("root", ""),
        "no channel given"
    );
    // Expired sessions are pruned.
    store.start_session(start("s6", T0)).await.unwrap();
    let pruned = store.prune(T0 + 13 * 3_600_000).await.unwrap();
    assert!(pruned.sessions >= 1, "{pruned:?}");
}

#[tokio::test]
async fn sessions_on_sqlite() {
    on_sqlite(sessions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_postgres() {
    on_postgres("sessions_on_postgres", sessions).await;
}

async fn activity(store: Store) {
    const HOUR: i64 = 3_600_000;
    // Two days ago: delivered, outside the day.
    let mut old = msg("a0", None);
    old.received_ms = T0 - 2 * 24 * HOUR;
    store.accept(old).await.unwrap();
    let c = store
        .claim("erp", T0 - 2 * 24 * HOUR, 30_000, 1)
        .await
        .unwrap();
    store
        .record(record(&c[0], T0 - 2 * 24 * HOUR, Next::Delivered))
        .await
        .unwrap();
    // Five hours ago: one delivered.
    let mut m = msg("a1", None);
    m.received_ms = T0 - 5 * HOUR;
    store.accept(m).await.unwrap();
    let c = store.claim("erp", T0 - 5 * HOUR, 30_000, 1).await.unwrap();
    store
        .record(record(&c[0], T0 - 5 * HOUR, Next::Delivered))
        .await
        .unwrap();
    // Ten minutes ago: one delivered, one dead, one retrying, one queued.
    for id in ["a2", "a3", "a4", "a5"] {
        let mut m = msg(id, None);
        m.received_ms = T0 - 10 * 60_000;
        store.accept(m).await.unwrap();
    }
    let now = T0 - 10 * 60_000;
    let c = store.claim("erp", now, 30_000, 3).await.unwrap();
    assert_eq!(c.len(), 3);
    store
        .record(record(&c[0], now, Next::Delivered))
        .await
        .unwrap();
    store.record(record(&c[1], now, Next::Dead)).await.unwrap();
    let retry = Next::Retry {
        at_ms: T0 + HOUR,
        counts_against_budget: true,
        rate_limited: false,
        auth: false,
    };
    store.record(record(&c[2], now, retry)).await.unwrap();

    let a = store.activity(T0).await.unwrap();
    assert_eq!(a.routes.len(), 1, "{a:?}");
    let r = &a.routes[0];
    assert_eq!((r.route.as_str(), r.system.as_str()), ("orders", "erp"));
    assert_eq!(
        (
            r.last_hour.delivered,
            r.last_hour.dead,
            r.last_hour.retrying,
            r.last_hour.queued
        ),
        (1, 1, 1, 1)
    );
    assert_eq!((r.last_day.delivered, r.last_day.dead), (2, 1));
    assert_eq!(r.waiting, 2, "one retrying, one queued");
    assert_eq!(r.oldest_waiting_ms, Some(T0 - 10 * 60_000));
    assert_eq!(
        store.waiting().await.unwrap(),
        vec![(
            "orders".to_owned(),
            "erp".to_owned(),
            2,
            Some(T0 - 10 * 60_000)
        )]
    );
    assert_eq!(a.series.len(), BUCKETS as usize);
    assert_eq!(a.series.last().unwrap().start_ms, T0 - BUCKET_MS);
    assert_eq!((a.series[47].delivered, a.series[47].failed), (1, 1));
    let five_hours_ago = 48 - 10; // the bucket 5 h before now
    assert_eq!(a.series[five_hours_ago].delivered, 1);
    assert_eq!(a.series.iter().map(|b| b.delivered).sum::<u64>(), 2);
}

#[tokio::test]
async fn activity_on_sqlite() {
    on_sqlite(activity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_on_postgres() {
    on_postgres("activity_on_postgres", activity).await;
}
