//! Three real `ferry serve` processes on one PostgreSQL schema take 10,000
//! webhooks through a round-robin "load balancer" while one instance after
//! another is killed with SIGKILL and restarted. Every acked message is
//! delivered, each under one downstream key (so a receiver that dedupes by
//! `Idempotency-Key` applies it once), and no delivery is ever in flight twice
//! at once: a dead instance's leases expire and the others take its work.
//! Skipped without `FERRY_TEST_POSTGRES_URL`.

use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use ferry::sim::receiver::{Receiver, Reply};

const MESSAGES: usize = 10_000;
const SENDERS: usize = 16;
const INSTANCES: usize = 3;

/// Sends webhook `id` to the instances in turn until one acks it (a load
/// balancer retrying on another backend); gives up after a few rounds.
async fn send_one(http: &reqwest::Client, bases: &[String], id: &str, first: usize) -> bool {
    for attempt in 0..4 * bases.len() {
        if send_event(http, &bases[(first + attempt) % bases.len()], id).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_survive_repeated_sigkill() {
    let Some(pg) = PgScratch::new("three_instances_survive_repeated_sigkill").await else {
        return;
    };
    // The schema exists before the instances race to migrate it.
    drop(pg.store().await);
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(3)));
    let dir = tempfile::tempdir().unwrap();
    let mut cfgs = Vec::new();
    let mut bases = Vec::new();
    for i in 0..INSTANCES {
        let port = free_port();
        let text = config_text(&receiver.url(), &Options::default())
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
            .replace(
                "data_dir = \"data\"",
                &format!("data_dir = \"data{i}\"\ndatabase_url = \"{}\"", pg.url),
            )
            .replace(
                "timeout = \"2s\"",
                "timeout = \"1s\"\nconnect_timeout = \"1s\"",
            );
        let cfg = dir.path().join(format!("ferry{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        cfgs.push(cfg);
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let children: Arc<Mutex<Vec<Child>>> =
        Arc::new(Mutex::new(cfgs.iter().map(|c| start_ferry(c)).collect()));
    for b in &bases {
        wait_ready(&http, b).await;
    }

    let acked = Arc::new(Mutex::new(HashSet::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (http, bases, acked) = (http.clone(), bases.clone(), acked.clone());
            tokio::spawn(async move {
                for i in (s..MESSAGES).step_by(SENDERS) {
                    let id = format!("evt_{i:05}");
                    if send_one(&http, &bases, &id, i).await {
                        acked.lock().unwrap().insert(id);
                    }
                }
            })
        })
        .collect();

    // The killer: every 1.5 s one instance dies mid-stream and comes back.
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (children, cfgs, done) = (children.clone(), cfgs.clone(), done.clone());
        tokio::spawn(async move {
            let mut kills = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let victim = kills % INSTANCES;
                {
                    let mut c = children.lock().unwrap();
                    c[victim].kill().expect("SIGKILL");
                    c[victim].wait().unwrap();
                }
                kills += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
                children.lock().unwrap()[victim] = start_ferry(&cfgs[victim]);
            }
            kills
        })
    };
    for s in senders {
        s.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    let acked: HashSet<String> = acked.lock().unwrap().clone();

    // Leases of killed instances expire (9 s here) and the others take over.
    let mut delivered: HashMap<String, HashSet<String>> = HashMap::new();
    for _ in 0..600 {
        delivered.clear();
        for r in receiver.received() {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            let id = body["event"].as_str().unwrap().to_owned();
            delivered
                .entry(id)
                .or_default()
                .insert(r.idempotency_key().unwrap().to_owned());
        }
        if acked.iter().all(|id| delivered.contains_key(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for mut c in children.lock().unwrap().drain(..) {
        c.kill().unwrap();
        c.wait().unwrap();
    }

    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !delivered.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acked messages never delivered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        acked.len() >= MESSAGES * 99 / 100,
        "only {} of {MESSAGES} acked",
        acked.len()
    );
    for (id, keys) in &delivered {
        assert_eq!(
            keys.len(),
            1,
            "{id} reached the receiver under {} keys",
            keys.len()
        );
    }
    assert_eq!(
        receiver.effects().len(),
        delivered.len(),
        "one effect per message"
    );
    assert_eq!(
        receiver.max_overlap(),
        1,
        "a delivery was in flight twice at once"
    );
    assert!(kills >= 2, "only {kills} kills landed mid-stream");
    eprintln!(
        "acked {}, delivered {} distinct, {} requests in all, {kills} kills",
        acked.len(),
        delivered.len(),
        receiver.count()
    );
    pg.drop().await;
}
