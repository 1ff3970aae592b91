//! Acked means durable: the real `ferry` binary is killed with SIGKILL while
//! webhooks are arriving and deliveries are in flight, then restarted. Every
//! message that got a 2xx is delivered; none gets two different downstream
//! keys, so a receiver that dedupes by Idempotency-Key applies each once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use ferry::sim::receiver::{Receiver, Reply};

/// Sends signed webhooks `from..to`, recording the ids that were acked.
async fn send(
    http: reqwest::Client,
    base: String,
    ids: std::ops::Range<usize>,
    acked: Arc<Mutex<HashSet<String>>>,
) {
    for i in ids {
        let id = format!("evt_{i:06}");
        if send_event(&http, &base, &id).await {
            acked.lock().unwrap().insert(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acked_message() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(5)));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&receiver.url(), &Options::default())
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let acked = Arc::new(Mutex::new(HashSet::new()));

    let mut child = start_ferry(&cfg);
    wait_ready(&http, &base).await;
    // Eight senders, 300 webhooks each; kill ferry while they are mid-way.
    let senders: Vec<_> = (0..8)
        .map(|s| {
            tokio::spawn(send(
                http.clone(),
                base.clone(),
                s * 300..(s + 1) * 300,
                acked.clone(),
            ))
        })
        .collect();
    eventually("600 webhooks acked", Duration::from_secs(60), async || {
        acked.lock().unwrap().len() >= 600
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let delivered_before_restart = receiver.count();
    for s in senders {
        s.await.unwrap();
    }
    let acked_at_kill = acked.lock().unwrap().len();

    let mut child = start_ferry(&cfg);
    wait_ready(&http, &base).await;
    // A second wave after the restart.
    send(http.clone(), base.clone(), 2400..2600, acked.clone()).await;
    let acked: HashSet<String> = acked.lock().unwrap().clone();

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
    child.kill().unwrap();
    child.wait().unwrap();

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
    for (id, keys) in &delivered {
        assert_eq!(
            keys.len(),
            1,
            "{id} reached the receiver under {} different keys",
            keys.len()
        );
    }
    let effects = receiver.effects();
    assert_eq!(
        effects.len(),
        delivered.len(),
        "one business effect per message after dedupe by key"
    );
    assert!(
        acked_at_kill >= 600 && delivered_before_restart > 0,
        "the kill landed mid-stream"
    );
    eprintln!(
        "acked {} (600+ before the kill), delivered {} distinct, {} requests in all ({} re-sent after the crash)",
        acked.len(),
        delivered.len(),
        receiver.count(),
        receiver.count() as usize - delivered.len()
    );
}
