//! Salesforce's daily quota, whole-system, on a manual clock shared by ferry
//! and a `SalesforceSim`: low-priority routes pause at `pause_low_at` of the
//! quota while normal routes go on; the quota's 403 `REQUEST_LIMIT_EXCEEDED`
//! holds everything until UTC midnight without spending a retry budget; after
//! midnight everything is delivered. Nothing sleeps; no wall-clock figure is
//! asserted.

use crate::common::*;
use ferry::clock::Clock;
use ferry::deliver::Step;
use ferry::sim::platform::salesforce::{SalesforceConfig, SalesforceSim};

const DAY: i64 = 86_400_000;
/// 20:00 UTC: the quota resets in four hours.
const START: i64 = T0 + 20 * 3_600_000;
const MIDNIGHT: i64 = T0 + DAY;
const QUOTA: u64 = 100;
/// Messages on the normal route and on the low one: more than the quota
/// together, and enough normal ones that they are still flowing when the
/// quota is spent, in whatever order the worker takes the two routes.
const NORMAL: usize = 80;
const LOW: usize = 60;
/// When the sim's usage reaches this, "another integration" of the same org
/// spends the rest of the quota, so ferry meets the 403 itself.
const OTHERS_SPEND_AT: u64 = 95;

#[tokio::test]
async fn low_priority_pauses_at_90_percent_and_the_spent_quota_waits_for_midnight() {
    let clock = Clock::manual(START);
    let sf = SalesforceSim::start(clock.clone(), SalesforceConfig { daily_quota: QUOTA })
        .await
        .unwrap();
    let t = TestApp::spawn_with(Options {
        clock: Some(clock.clone()),
        extra: format!(
            r#"
[systems.sf]
base_url = "{}/services/data/v60.0"
rate_limit = {{ per_second = 1, burst = 1, dialect = "salesforce", pause_low_at = 0.9 }}

[routes.accounts]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "sf", path = "/sobjects/Account/" }}

[routes.leads]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "sf", path = "/sobjects/Lead/", priority = "low" }}
"#,
            sf.url()
        ),
        ..Default::default()
    })
    .await;
    let ts = t.now_s();
    for i in 0..NORMAL {
        for route in ["accounts", "leads"] {
            if route == "leads" && i >= LOW {
                continue;
            }
            let r = t
                .signed(
                    route,
                    &format!("{route}_{i}"),
                    &format!(r#"{{"n":{i}}}"#),
                    ts,
                    WHSEC,
                )
                .await;
            assert_eq!(r.status(), 202);
        }
    }

    let http = reqwest::Client::new();
    let other = format!("{}/services/data/v60.0/sobjects/Contact/", sf.url());
    let mut others_spent = false;
    let mut seen_pause = None;
    let mut steps = 0;
    loop {
        let (a, l) = (t.stats("accounts").await, t.stats("leads").await);
        if (a.delivered + a.dead + l.delivered + l.dead) as usize >= NORMAL + LOW {
            break;
        }
        steps += 1;
        assert!(steps < 5_000, "ferry stopped making progress");
        if !others_spent && sf.used_today() >= OTHERS_SPEND_AT {
            for _ in OTHERS_SPEND_AT..QUOTA {
                let r = http.post(&other).body("{}").send().await.unwrap();
                assert_eq!(r.status(), 201);
            }
            others_spent = true;
        }
        if seen_pause.is_none() && clock.now_ms() < MIDNIGHT {
            let v = t.admin_json(reqwest::Method::GET, "/systems", None).await;
            let sys = v["systems"].as_array().unwrap().iter();
            let sf_status = sys.into_iter().find(|s| s["name"] == "sf").unwrap();
            if let Some(until) = sf_status["quota"]["low_paused_until_ms"].as_i64() {
                seen_pause = Some((until, sf_status["quota"]["used"].as_u64().unwrap()));
            }
        }
        if t.step().await == Step::Idle {
            let due = t.store.next_due("sf").await.unwrap().expect("work pending");
            t.clock.set(due.max(t.clock.now_ms()));
        }
    }

    // Replay the day as Salesforce counted it: the quota used before each request.
    let seen = sf.seen();
    let mut used = 0u64;
    let mut lows_before = vec![];
    let mut normals_before = vec![];
    let mut forbidden = vec![];
    for (i, s) in seen.iter().enumerate().filter(|(_, s)| s.at_ms < MIDNIGHT) {
        match (s.status, s.path.contains("/Lead/")) {
            (403, _) => forbidden.push(i),
            (_, true) => lows_before.push(used),
            (_, false) if s.path.contains("/Account/") => normals_before.push(used),
            _ => {}
        }
        if s.status != 403 {
            used += 1;
        }
    }
    let after: Vec<_> = seen.iter().filter(|s| s.at_ms >= MIDNIGHT).collect();
    println!(
        "salesforce: {} low and {} normal before midnight (last low at usage {:?}, last \
         normal at {:?}), 403s at {forbidden:?}, {} after midnight, pause seen {seen_pause:?}",
        lows_before.len(),
        normals_before.len(),
        lows_before.last(),
        normals_before.last(),
        after.len()
    );

    let (a, l) = (t.stats("accounts").await, t.stats("leads").await);
    assert_eq!((a.delivered, a.dead), (NORMAL as u64, 0), "{a:?}");
    assert_eq!((l.delivered, l.dead), (LOW as u64, 0), "{l:?}");
    // Low priority goes until 90% of the quota is used, then stops. The pause
    // is applied when a worker claims, so a low request claimed in the same
    // step as the answer that showed 90 may still go: at most one past it.
    let last_low = *lows_before.last().unwrap();
    assert!(
        (85..=90).contains(&last_low),
        "the last low-priority request before midnight went at usage {last_low}"
    );
    assert_eq!(seen_pause.map(|(until, _)| until), Some(MIDNIGHT));
    assert!(seen_pause.unwrap().1 >= 90);
    // Normal routes go on until the quota is spent: to the usage at which the
    // other integration spent the rest, then their next request met the 403.
    assert_eq!(*normals_before.last().unwrap() + 1, OTHERS_SPEND_AT);
    // ferry met one 403, and sent nothing more until midnight.
    assert_eq!(forbidden.len(), 1, "{forbidden:?}");
    assert!(
        seen[forbidden[0] + 1..].iter().all(|s| s.at_ms >= MIDNIGHT),
        "a request went to the spent quota before midnight"
    );
    assert_eq!(
        seen.len() - forbidden[0] - 1,
        after.len(),
        "everything after the 403 went after midnight"
    );
    assert!(after.iter().any(|s| s.path.contains("/Lead/")));
    assert!(
        after.iter().all(|s| s.status == 201),
        "the new day has room"
    );
    // The 403 was a rate limit, not a credential failure.
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_retried_total{route="accounts",class="rate_limited"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"class="auth""#), "{metrics}");
    sf.stop();
}
