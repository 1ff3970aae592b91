//! A webhook secret rotated in the store while webhooks flow: the running
//! app picks the new version up by itself (no reload, no restart) within
//! seconds, accepts both versions during the grace window, and refuses the
//! old one once the window has passed (on the manual clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

use ferry::store::Supersede;
use ferry::vault::MasterKey;

use crate::common::*;

const OLD: &str = "whsec_b2xkLXJvdGF0aW5nLXNlY3JldC1mb3ItZmVycnk=";
const NEW: &str = "whsec_bmV3LXJvdGF0aW5nLXNlY3JldC1mb3ItZmVycnk=";
const FORGED: &str = "whsec_Zm9yZ2VkLXNlY3JldC1ub2JvZHktaGFzLWl0ISE=";
const TOTAL: usize = 5_000;
const SENDERS: usize = 100;
const GRACE_MS: i64 = 3_600_000;

/// An app whose route `rotating` verifies with store credential `hook`.
async fn app_with_stored_hook(key: &str) -> TestApp {
    let opts = Options {
        credentials: "hook = { store = \"hook\" }".into(),
        extra: r#"
[routes.rotating]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["hook"] }
destination = { system = "erp", path = "/rotating" }
"#
        .into(),
        ..Options::default()
    };
    super::app_with_store(key, &[("hook", OLD)], opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_mid_traffic_rejects_no_valid_and_accepts_no_forged_webhook() {
    let key = MasterKey::generate().to_string();
    let t = Arc::new(app_with_stored_hook(&key).await);
    let mk = MasterKey::parse(&key).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Each sender switches to the new secret at its own point after the
    // rotation reached the app; a fifth never switch inside the window.
    let switch_at: Vec<Option<usize>> = (0..SENDERS)
        .map(|_| (rng.random_range(0..5) > 0).then(|| rng.random_range(0..TOTAL / 2)))
        .collect();
    let forged: Vec<bool> = (0..TOTAL).map(|_| rng.random_range(0..20) == 0).collect();
    let wrong = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    let mut rotated_at = None;
    let mut seen_at: Option<(Instant, usize)> = None;
    let mut used = [0usize; 3];
    for (i, &forged) in forged.iter().enumerate() {
        tick.tick().await;
        if i == TOTAL / 2 {
            let until_ms = t.clock.now_ms() + GRACE_MS;
            ferry::vault::cli::put(
                &t.store,
                &mk,
                "hook",
                NEW,
                t.clock.now_ms(),
                None,
                Supersede::After { until_ms },
            )
            .await
            .unwrap();
            rotated_at = Some(Instant::now());
        }
        if rotated_at.is_some()
            && seen_at.is_none()
            && t.app.vault.snapshot().newest("hook").map(|v| v.version) == Some(2)
        {
            seen_at = Some((Instant::now(), i));
        }
        let sender = i % SENDERS;
        let secret = match (forged, seen_at, switch_at[sender]) {
            (true, _, _) => FORGED,
            (false, Some((_, seen)), Some(after)) if i >= seen + after * (TOTAL - seen) / TOTAL => {
                NEW
            }
            _ => OLD,
        };
        used[[OLD, NEW, FORGED]
            .iter()
            .position(|s| *s == secret)
            .unwrap()] += 1;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let (t, wrong) = (t.clone(), wrong.clone());
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"n":{i}}}"#);
            let status = t
                .signed("rotating", &format!("evt-{i}"), &body, t.now_s(), secret)
                .await
                .status();
            let ok = if secret == FORGED {
                status == 401
            } else {
                status == 202
            };
            if !ok {
                wrong.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "webhook {i} with {} answered {status}",
                    if secret == FORGED {
                        "a forged secret"
                    } else {
                        "a valid secret"
                    }
                );
            }
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (seen, _) = seen_at.expect("the rotation reached the app during the run");
    let took = seen - rotated_at.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the rotation took {took:?} to arrive"
    );
    assert!(
        used.iter().all(|n| *n > 100),
        "each secret was used: {used:?}"
    );
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "0 valid rejected, 0 forged accepted"
    );
    let queued = t.stats("rotating").await.queued;
    assert_eq!(
        queued as usize,
        TOTAL - used[2],
        "every valid webhook is stored once"
    );

    // inside the grace both work; past it only the new one
    let at = t.now_s();
    assert_eq!(
        t.signed("rotating", "late-old", "{}", at, OLD)
            .await
            .status(),
        202
    );
    t.clock.advance(GRACE_MS + 1_000);
    let at = t.now_s();
    assert_eq!(
        t.signed("rotating", "after-old", "{}", at, OLD)
            .await
            .status(),
        401
    );
    assert_eq!(
        t.signed("rotating", "after-new", "{}", at, NEW)
            .await
            .status(),
        202
    );
    // and the app noted the versions' use for `credentials list`
    let mut noted = false;
    for _ in 0..10 {
        t.app.vault.refresh().await.unwrap();
        let versions = t.store.credential_versions().await.unwrap();
        if versions.iter().all(|v| v.last_used_ms.is_some()) {
            noted = true;
            break;
        }
    }
    assert!(noted, "last used written back");
}

/// The ERP's client key in the store: during a rotation's grace both keys
/// are accepted (and scope idempotency keys to the same client), after it
/// only the new one.
#[tokio::test]
async fn a_rotated_erp_client_key_is_accepted_until_its_grace_ends() {
    let key = MasterKey::generate().to_string();
    let opts = Options {
        credentials: "client = { store = \"client\" }".into(),
        extra: r#"
[routes.erp_api]
source = { kind = "api", credentials = ["client"] }
destination = { system = "erp", path = "/stock" }
"#
        .into(),
        ..Options::default()
    };
    let t = super::app_with_store(&key, &[("client", "erp-key-old-71c3")], opts).await;
    let send = async |bearer: &str, idem: &str| {
        t.http
            .post(format!("{}/api/v1/routes/erp_api/messages", t.base))
            .bearer_auth(bearer)
            .header("idempotency-key", idem)
            .header("content-type", "application/json")
            .body(r#"{"sku":"A-1","qty":3}"#)
            .send()
            .await
            .unwrap()
    };
    let call = async |bearer: &str, idem: &str| send(bearer, idem).await.status().as_u16();
    assert_eq!(call("erp-key-old-71c3", "k1").await, 202);
    assert_eq!(call("erp-key-new-9a02", "k2").await, 401);
    let mk = MasterKey::parse(&key).unwrap();
    let until_ms = t.clock.now_ms() + GRACE_MS;
    ferry::vault::put(
        &t.store,
        &mk,
        "client",
        "erp-key-new-9a02",
        t.clock.now_ms(),
        None,
        Supersede::After { until_ms },
    )
    .await
    .unwrap();
    t.app.vault.refresh().await.unwrap();
    assert_eq!(call("erp-key-new-9a02", "k2").await, 202);
    assert_eq!(call("erp-key-old-71c3", "k3").await, 202);
    // one client identity: the same key and body replays whichever key sends it
    let replay = send("erp-key-new-9a02", "k1").await;
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    t.clock.advance(GRACE_MS);
    assert_eq!(call("erp-key-old-71c3", "k4").await, 401);
    assert_eq!(call("erp-key-new-9a02", "k4").await, 202);
}
