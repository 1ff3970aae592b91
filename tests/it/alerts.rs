//! Alerts, on a manual clock against recording receivers: a storm of one
//! cause is one alert, then one follow-up per interval, then a resolve;
//! PagerDuty triggers and resolves under one `dedup_key`; a flaky channel
//! gets its alert later without slowing deliveries; a silent route alerts
//! once within its hours and resolves when traffic returns; a circuit's
//! opening and closing are one alert each.

use std::sync::Arc;

use ferry::alert::watch::Watcher;
use ferry::sim::receiver::{Receiver, Reply};
use ferry::store::{GroupStatus, StatusMark};
use serde_json::Value;

use crate::common::*;

async fn hook() -> Receiver {
    Receiver::start().await.expect("a receiver")
}

fn bodies(r: &Receiver) -> Vec<Value> {
    r.received()
        .iter()
        .map(|x| serde_json::from_slice(&x.body).unwrap())
        .collect()
}

/// `n` messages to route `stock`, sent 32 at a time.
async fn send(t: &Arc<TestApp>, n: usize, tag: &str) {
    let mut tasks = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(32).max(1)) {
        let (t, chunk, tag) = (t.clone(), chunk.to_vec(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in chunk {
                let body = format!(r#"{{"sku":"SKU-{tag}-{i}","qty":1}}"#);
                let r = t.api(Some(&format!("{tag}-{i}")), ERP_KEY, &body).await;
                assert!(r.status().is_success(), "{:?}", r.status());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn channel(name: &str, kind: &str, url: &str, more: &str) -> String {
    format!("\n[alerts.{name}]\nkind = \"{kind}\"\nurl = \"{url}\"\n{more}\n")
}

#[tokio::test]
async fn ten_thousand_deaths_of_one_cause_are_one_alert_then_one_follow_up_then_a_resolve() {
    let slack = hook().await;
    let t = Arc::new(
        TestApp::spawn_with(Options {
            extra: channel(
                "ops",
                "slack",
                &format!("{}/slack", slack.url()),
                "events = [\"dead\"]\nrepeat_every = \"1m\"",
            ),
            ..Default::default()
        })
        .await,
    );
    t.receiver
        .set_default(Reply::status(422).body(r#"{"error":"unknown sku"}"#));
    let watcher = Watcher::new(t.clock.now_ms());
    send(&t, 1, "first").await;
    t.drain().await;
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        1,
        "the first death alerts at once"
    );
    // The rest of the storm within the minute: held back.
    send(&t, 9_999, "storm").await;
    for _ in 0..5 {
        t.drain().await;
        t.clock.advance(5_000);
        let looked = watcher.look(&t.app).await.unwrap();
        assert_eq!(looked.sent, 0, "no alert within repeat_every");
    }
    t.drain().await;
    assert_eq!(slack.count(), 1, "one alert for the whole storm so far");
    let first = &bodies(&slack)[0];
    let text = first["text"].as_str().unwrap();
    assert!(
        text.contains("rejected") && text.contains("/console/failures/"),
        "{text}"
    );
    // After the interval: one follow-up with the final count.
    t.clock.advance(40_000);
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 1);
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        0,
        "nothing new, nothing sent"
    );
    t.drain().await;
    assert_eq!(slack.count(), 2);
    let follow = bodies(&slack)[1]["text"].as_str().unwrap().to_owned();
    assert!(follow.contains("10000"), "the running count: {follow}");
    // The group is resolved: a resolve.
    let key = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    let mark = StatusMark {
        status: GroupStatus::Resolved,
        note: "SKUs added".into(),
        actor: "ana".into(),
        at_ms: t.clock.now_ms(),
    };
    t.clock.advance(1_000);
    t.store.set_group_status(&key, mark).await.unwrap();
    assert_eq!(watcher.look(&t.app).await.unwrap().resolved, 1);
    t.drain().await;
    assert_eq!(slack.count(), 3);
    assert!(
        bodies(&slack)[2]["text"]
            .as_str()
            .unwrap()
            .contains("Resolved")
    );
    let metrics = t.metrics().await;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert_eq!(
        value(r#"ferry_alerts_sent_total{channel="ops",event="dead"}"#),
        3
    );
    // Every death but those alerted (the first, and the follow-up's news)
    // was held back.
    assert!(value(r#"ferry_alerts_suppressed_total{channel="ops"}"#) >= 9_000);
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_under_one_dedup_key() {
    let pd = hook().await;
    let t = Arc::new(
        TestApp::spawn_with(Options {
            extra: channel(
                "pager",
                "pagerduty",
                &format!("{}/v2/enqueue", pd.url()),
                "credential = \"gh\"",
            ),
            ..Default::default()
        })
        .await,
    );
    t.receiver.push([Reply::status(422)]);
    send(&t, 1, "pd").await;
    t.drain().await;
    let watcher = Watcher::new(t.clock.now_ms());
    watcher.look(&t.app).await.unwrap();
    t.drain().await;
    let key = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    t.clock.advance(1_000);
    let mark = StatusMark {
        status: GroupStatus::Resolved,
        note: String::new(),
        actor: "ana".into(),
        at_ms: t.clock.now_ms(),
    };
    t.store.set_group_status(&key, mark).await.unwrap();
    watcher.look(&t.app).await.unwrap();
    t.drain().await;
    let sent = bodies(&pd);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["event_action"], "trigger");
    assert_eq!(sent[1]["event_action"], "resolve");
    assert_eq!(sent[0]["dedup_key"], sent[1]["dedup_key"]);
    assert_eq!(sent[0]["dedup_key"], format!("ferry:dead:{key}"));
    assert!(!sent[0]["routing_key"].as_str().unwrap().is_empty());
    assert!(
        sent[0]["payload"]["custom_details"]["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/console/failures/{key}"))
    );
}

#[tokio::test]
async fn a_flaky_channel_gets_its_alert_later_and_deliveries_go_on() {
    let slack = hook().await;
    slack.push([Reply::status(503).header("retry-after", "30")]);
    let t = Arc::new(
        TestApp::spawn_with(Options {
            extra: channel("ops", "slack", &format!("{}/slack", slack.url()), ""),
            ..Default::default()
        })
        .await,
    );
    t.receiver.push([Reply::status(422)]);
    send(&t, 1, "flaky").await;
    t.drain().await;
    let watcher = Watcher::new(t.clock.now_ms());
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 1);
    t.drain().await;
    assert_eq!(slack.count(), 1, "tried once: 503");
    // Deliveries meanwhile are not held up by the channel.
    send(&t, 20, "meanwhile").await;
    t.drain().await;
    assert_eq!(t.stats("stock").await.delivered, 20);
    // After its Retry-After the alert arrives, once.
    t.clock.advance(31_000);
    t.drain().await;
    assert_eq!(slack.count(), 2);
    assert_eq!(
        slack.received()[1].body,
        slack.received()[0].body,
        "the same alert"
    );
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        0,
        "not sent twice"
    );
}

#[tokio::test]
async fn a_silent_route_alerts_once_within_its_hours_and_resolves_when_traffic_returns() {
    let hookr = hook().await;
    let t = Arc::new(
        TestApp::spawn_with(Options {
            extra: format!(
                r#"
[routes.quiet]
source = {{ kind = "api", credentials = ["erp_client"] }}
destination = {{ system = "erp", path = "/q" }}
expect_traffic_every = "10m"

[routes.office]
source = {{ kind = "api", credentials = ["erp_client"] }}
destination = {{ system = "erp", path = "/o" }}
expect_traffic_every = "10m"
active = "Mon-Fri 08:00-18:00 UTC"
{}"#,
                channel(
                    "ops",
                    "webhook",
                    &format!("{}/hook", hookr.url()),
                    "credential = \"whsec\"\nevents = [\"silence\"]"
                )
            ),
            ..Default::default()
        })
        .await,
    );
    // T0 is Thursday 2026-01-01 00:00 UTC: outside the office's hours.
    let watcher = Watcher::new(t.clock.now_ms());
    t.clock.advance(9 * 60_000);
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        0,
        "9 minutes is not silence"
    );
    t.clock.advance(2 * 60_000);
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        1,
        "11 minutes: the quiet route only"
    );
    t.clock.advance(30_000);
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 0, "one alert");
    t.drain().await;
    let sent = bodies(&hookr);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0]["event"].as_str(), sent[0]["route"].as_str()),
        (Some("silence"), Some("quiet"))
    );
    assert!(
        hookr.received()[0]
            .headers
            .contains_key("webhook-signature"),
        "signed"
    );
    // Traffic returns: a resolve.
    let r = t
        .http
        .post(format!("{}/api/v1/routes/quiet/messages", t.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", "q-1")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(watcher.look(&t.app).await.unwrap().resolved, 1);
    t.drain().await;
    assert_eq!(bodies(&hookr)[1]["type"], "alert.resolved");
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("ferry_route_last_received_timestamp_seconds{route=\"quiet\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_circuit_opening_and_closing_are_one_alert_each() {
    let slack = hook().await;
    let t = Arc::new(
        TestApp::spawn_with(Options {
            erp: r#"circuit_breaker = { failure_ratio = 0.5, window = "10s", min_requests = 5, open_for = "5s" }"#.into(),
            retry: r#"{ max_attempts = 8, initial_delay = "1s", max_delay = "2s", max_age = "1h" }"#.into(),
            extra: channel("ops", "slack", &format!("{}/slack", slack.url()), "events = [\"circuit_opened\", \"circuit_closed\"]"),
            ..Default::default()
        })
        .await,
    );
    t.receiver.set_default(Reply::status(503));
    send(&t, 10, "cb").await;
    t.step().await;
    let watcher = Watcher::new(t.clock.now_ms());
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 1, "opened");
    for _ in 0..20 {
        t.clock.advance(250);
        t.step().await;
        assert_eq!(
            watcher.look(&t.app).await.unwrap().sent,
            0,
            "still open: one alert"
        );
    }
    t.receiver.set_default(Reply::status(200));
    for _ in 0..40 {
        t.clock.advance(250);
        t.step().await;
        watcher.look(&t.app).await.unwrap();
    }
    t.drain().await;
    let sent: Vec<String> = bodies(&slack)
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("circuit is open"), "{sent:?}");
    assert!(sent[1].contains("Resolved"), "{sent:?}");
}

#[tokio::test]
async fn an_email_alert_goes_through_a_local_smtp_server() {
    let smtp = ferry::sim::smtp::SmtpSim::start()
        .await
        .expect("an SMTP server");
    let t = Arc::new(
        TestApp::spawn_with(Options {
            extra: channel(
                "mail",
                "email",
                &smtp.url(),
                "from = \"ferry@example.com\"\nto = [\"ops@example.com\"]\nevents = [\"dead\"]",
            ),
            ..Default::default()
        })
        .await,
    );
    t.receiver
        .push([Reply::status(422).body(r#"{"error":"unknown sku"}"#)]);
    send(&t, 1, "mail").await;
    t.drain().await;
    let watcher = Watcher::new(t.clock.now_ms());
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 1);
    t.drain().await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let subject = mails[0].subject.clone().unwrap_or_default();
    assert!(
        subject.starts_with("[ferry]") && subject.contains("rejected"),
        "{subject}"
    );
    assert_eq!(mails[0].to, ["ops@example.com"]);
    assert!(mails[0].data.contains("/console/failures/"), "the link");
    assert_eq!(t.stats("alert:mail").await.delivered, 1);
}

#[tokio::test]
async fn a_credential_near_its_expiry_alerts_within_its_warning_window() {
    let slack = hook().await;
    let key = crate::credentials::cli::generate_key();
    let dir = tempfile::tempdir().unwrap();
    let store = ferry::store::Store::open_sqlite(dir.path()).unwrap();
    let mk = ferry::vault::MasterKey::parse(&key).unwrap();
    ferry::vault::unlock(&store, &mk).await.unwrap();
    let expires = T0 + 10 * 86_400_000;
    ferry::vault::put(
        &store,
        &mk,
        "shop_token",
        "s3cret-value",
        T0,
        Some(expires),
        ferry::store::Supersede::All,
    )
    .await
    .unwrap();
    let t = Arc::new(
        crate::credentials::app_on(
            store,
            &key,
            Options {
                credentials: "shop_token = { store = \"shop_token\", warn_before = \"14d\" }"
                    .into(),
                extra: channel(
                    "ops",
                    "slack",
                    &format!("{}/slack", slack.url()),
                    "events = [\"credential_expiring\"]",
                ),
                ..Default::default()
            },
        )
        .await,
    );
    let watcher = Watcher::new(t.clock.now_ms());
    assert_eq!(
        watcher.look(&t.app).await.unwrap().sent,
        1,
        "10 days left, warned 14 days before"
    );
    assert_eq!(watcher.look(&t.app).await.unwrap().sent, 0);
    t.drain().await;
    let text = bodies(&slack)[0]["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("shop_token") && text.contains("ferry credentials rotate"),
        "{text}"
    );
    assert!(!text.contains("s3cret-value"), "never the value");
    drop(dir);
}

#[tokio::test]
async fn a_long_hold_and_a_deep_queue_alert_and_resolve() {
    let slack = hook().await;
    let t = Arc::new(
        TestApp::spawn_with(Options {
            erp: "alert_queue_depth = 5\nalert_hold = \"5m\"".into(),
            extra: channel(
                "ops",
                "slack",
                &format!("{}/slack", slack.url()),
                "events = [\"hold\", \"queue_depth\"]",
            ),
            ..Default::default()
        })
        .await,
    );
    t.receiver
        .set_default(Reply::status(429).header("retry-after", "600"));
    send(&t, 8, "held").await;
    t.step().await;
    let watcher = Watcher::new(t.clock.now_ms());
    let sent = watcher.look(&t.app).await.unwrap().sent;
    t.drain().await;
    assert_eq!(sent, 2, "a 10-minute hold, 8 waiting: {:?}", bodies(&slack));
    let texts: Vec<String> = bodies(&slack)
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts.iter().any(|x| x.contains("holds ferry back")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|x| x.contains("8 messages wait for erp")),
        "{texts:?}"
    );
    // The hold ends and the queue drains: both resolve.
    t.receiver.set_default(Reply::status(200));
    t.clock.advance(601_000);
    t.drain().await;
    assert_eq!(t.stats("stock").await.delivered, 8);
    assert_eq!(watcher.look(&t.app).await.unwrap().resolved, 2);
}
