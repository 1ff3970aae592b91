//! Scale-out on PostgreSQL: several ferry instances share one database (a
//! fresh schema per test). Uniqueness lives in the database, so two instances
//! that receive the same webhook, or the same `Idempotency-Key`, at the same
//! moment still make one message. Skipped without `FERRY_TEST_POSTGRES_URL`.

use crate::common::*;

/// Two instances on one scratch schema, sharing one downstream.
async fn two_instances(test: &str) -> Option<(PgScratch, TestApp, TestApp)> {
    let pg = PgScratch::new(test).await?;
    let a = TestApp::spawn_with(Options {
        store: Some(pg.store().await),
        ..Options::default()
    })
    .await;
    let b = TestApp::spawn_with(Options {
        store: Some(pg.store().await),
        receiver: Some(a.receiver.clone()),
        ..Options::default()
    })
    .await;
    Some((pg, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_sent_to_two_instances_makes_one_message() {
    let Some((pg, a, b)) = two_instances("same_webhook_two_instances").await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (http, base) = match i % 2 {
            0 => (a.http.clone(), a.base.clone()),
            _ => (b.http.clone(), b.base.clone()),
        };
        let ts = a.now_s();
        tasks.push(tokio::spawn(async move {
            let body = r#"{"order":1}"#;
            let sig = ferry::ingest::verify::sign_standard_webhooks(
                WHSEC,
                "evt_same",
                ts,
                body.as_bytes(),
            )
            .unwrap();
            http.post(format!("{base}/in/orders"))
                .header("webhook-id", "evt_same")
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        99,
        "{statuses:?}"
    );
    assert_eq!(a.total_messages().await, 1);
    assert_eq!(b.total_messages().await, 1);
    let dupes = |m: String| m.contains("ferry_duplicates_total{route=\"orders\"}");
    assert!(
        dupes(a.metrics().await) && dupes(b.metrics().await),
        "both absorbed duplicates"
    );
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_to_two_instances_executes_once() {
    let Some((pg, a, b)) = two_instances("idempotency_two_instances").await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (http, base) = match i % 2 {
            0 => (a.http.clone(), a.base.clone()),
            _ => (b.http.clone(), b.base.clone()),
        };
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/routes/stock/messages"))
                .bearer_auth(ERP_KEY)
                .header("idempotency-key", "shared-key")
                .body(r#"{"sku":"B","qty":9}"#)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (status, replayed, r.bytes().await.unwrap())
        }));
    }
    let (mut fresh, mut replays, mut conflicts) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            (202, false, body) => fresh.push(body),
            (202, true, body) => replays.push(body),
            (409, _, _) => conflicts += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(fresh.len(), 1, "exactly one request executes");
    assert_eq!(fresh.len() + replays.len() + conflicts, 50);
    assert!(
        replays.iter().all(|r| *r == fresh[0]),
        "replays are byte-identical"
    );
    assert_eq!(a.total_messages().await, 1);

    // The same key with another body is refused on either instance.
    for t in [&a, &b] {
        let r = t
            .api(Some("shared-key"), ERP_KEY, r#"{"sku":"B","qty":10}"#)
            .await;
        assert_eq!(r.status(), 422);
    }
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_accepted_on_one_instance_is_delivered_by_another() {
    let Some((pg, a, b)) = two_instances("deliver_elsewhere").await else {
        return;
    };
    for i in 0..20 {
        let r = a
            .webhook(&format!("evt_{i}"), &format!(r#"{{"n":{i}}}"#))
            .await;
        assert_eq!(r.status(), 202);
    }
    // Only b's workers run; a's accepted messages are b's work too.
    assert_eq!(b.drain().await, 20);
    assert_eq!(a.receiver.count(), 20);
    assert_eq!(a.stats("orders").await.delivered, 20);
    assert_eq!(a.drain().await, 0, "nothing is left for a");
    pg.drop().await;
}

/// A destination's budget holds across instances: three instances with
/// their workers running share one request budget of R requests/s, and the
/// receiver never sees more than R (+5%).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_request_budget() {
    const R: f64 = 20.0;
    const N: usize = 80;
    let Some(pg) = PgScratch::new("three_instances_share_one_request_budget").await else {
        return;
    };
    let opts = |store, receiver| Options {
        workers: true,
        store: Some(store),
        receiver,
        erp: format!("rate_limit = {{ per_second = {R}, burst = 1 }}"),
        ..Options::default()
    };
    let a = TestApp::spawn_with(opts(pg.store().await, None)).await;
    let mut arrivals = a.receiver.subscribe();
    let b = TestApp::spawn_with(opts(pg.store().await, Some(a.receiver.clone()))).await;
    let c = TestApp::spawn_with(opts(pg.store().await, Some(a.receiver.clone()))).await;
    for i in 0..N {
        let t = [&a, &b, &c][i % 3];
        let r = t
            .webhook(&format!("evt_{i}"), &format!(r#"{{"n":{i}}}"#))
            .await;
        assert_eq!(r.status(), 202);
    }
    let mut at = Vec::with_capacity(N);
    while at.len() < N {
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), arrivals.recv()).await;
        at.push(
            got.expect("deliveries stalled")
                .expect("receiver stopped")
                .at,
        );
    }
    at.sort();
    let span = at[N - 1].duration_since(at[0]).as_secs_f64();
    let rate = (N - 1) as f64 / span;
    let busiest = at
        .iter()
        .map(|t0| {
            at.iter()
                .filter(|t| **t >= *t0 && t.duration_since(*t0).as_secs_f64() < 1.0)
                .count()
        })
        .max()
        .unwrap();
    eprintln!(
        "{N} deliveries in {span:.2} s: {rate:.1}/s against a budget of {R}/s; busiest second {busiest}"
    );
    assert!(rate <= R * 1.05, "{rate:.1} requests/s exceeds {R}/s");
    assert!(
        busiest as f64 <= (R * 1.05).ceil(),
        "{busiest} requests in one second"
    );
    // The last verdicts are recorded just after the receiver answered.
    for _ in 0..200 {
        if a.stats("orders").await.delivered == N as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(a.stats("orders").await.delivered, N as u64);
    assert_eq!(a.receiver.count(), N as u64, "nothing was sent twice");
    for t in [&a, &b, &c] {
        t.shutdown.cancel();
    }
    pg.drop().await;
}

/// A platform down for a while, behind two instances whose breakers are both
/// open: between them they send one probe per interval, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_send_one_probe_per_interval_between_them() {
    let Some(pg) = PgScratch::new("one_probe_two_instances").await else {
        return;
    };
    let clock = ferry::clock::Clock::manual(T0);
    // Five places each, so the first joint step gives each instance its own
    // share of the backlog whatever the timing (one claiming all twenty
    // would leave the other's breaker closed, free to send at the probe).
    let erp = r#"circuit_breaker = { failure_ratio = 0.5, window = "10s", min_requests = 3, open_for = "5s" }
rate_limit = { max_concurrency = 5 }"#;
    let retry = r#"{ max_attempts = 50, initial_delay = "1s", max_delay = "2s", max_age = "1h" }"#;
    let a = TestApp::spawn_with(Options {
        store: Some(pg.store().await),
        clock: Some(clock.clone()),
        erp: erp.into(),
        retry: retry.into(),
        ..Options::default()
    })
    .await;
    let b = TestApp::spawn_with(Options {
        store: Some(pg.store().await),
        receiver: Some(a.receiver.clone()),
        clock: Some(clock.clone()),
        erp: erp.into(),
        retry: retry.into(),
        ..Options::default()
    })
    .await;
    a.receiver
        .set_default(ferry::sim::receiver::Reply::status(503));
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.webhook(&format!("evt_{i}"), "{}").await.status(), 202);
    }
    // Both instances take part of the backlog, fail, and open their breakers.
    let (_, _) = tokio::join!(a.step(), b.step());
    let opened = a.receiver.count();
    let mut probes_at = Vec::new();
    let mut seen = opened;
    for _ in 0..120 {
        clock.advance(250);
        let (_, _) = tokio::join!(a.step(), b.step());
        let now = a.receiver.count();
        for _ in seen..now {
            probes_at.push(clock.now_ms());
        }
        seen = now;
    }
    assert!(probes_at.len() >= 4, "it kept probing: {probes_at:?}");
    assert!(
        probes_at.windows(2).all(|w| w[1] - w[0] >= 5_000),
        "one probe per 5 s across both instances: {probes_at:?}"
    );
    assert_eq!(a.stats("orders").await.dead, 0);
    pg.drop().await;
}
