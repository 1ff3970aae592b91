//! Hot reload of the real binary under traffic: webhooks flow while the
//! config is saved by rename (as editors do) with a new route path, then an
//! invalid config is saved, then SIGHUP asks for a reload of it. No request
//! fails, every acked message is delivered, the new path takes effect, the
//! invalid config is refused while the running one goes on, and the admin
//! API and the metrics say so.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::sim::receiver::Receiver;

use crate::common::*;

fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn metrics(http: &reqwest::Client, base: &str) -> String {
    let r = http.get(format!("{base}/metrics")).send().await;
    r.unwrap().text().await.unwrap()
}

async fn config_status(http: &reqwest::Client, base: &str) -> serde_json::Value {
    http.get(format!("{base}/admin/api/v1/config"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_traffic_lose_nothing_and_refuse_a_bad_config() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&receiver.url(), &Options::default())
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, &text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut child = start_ferry(&cfg);
    wait_ready(&http, &base).await;
    let first_hash = config_status(&http, &base).await["hash"].clone();

    // Senders run through every reload below.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (http, base, acked, failed, stop) = (
                http.clone(),
                base.clone(),
                acked.clone(),
                failed.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("evt_{s}_{i}");
                    if send_event(&http, &base, &id).await {
                        acked.lock().unwrap().insert(id);
                    } else {
                        failed.lock().unwrap().push(id);
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let acked_now = || acked.lock().unwrap().len();
    eventually("traffic flows", Duration::from_secs(20), async || {
        acked_now() >= 100
    })
    .await;

    // A valid change, saved by rename: the orders route's path.
    save(
        &cfg,
        &text.replace(r#"path = "/orders""#, r#"path = "/orders-v2""#),
    );
    eventually(
        "the rename-save is applied",
        Duration::from_secs(20),
        async || {
            let s = config_status(&http, &base).await;
            s["last_reload"]["result"] == "applied" && s["hash"] != first_hash
        },
    )
    .await;
    let applied_hash = config_status(&http, &base).await["hash"].clone();
    let at_switch = acked_now();
    eventually("traffic goes on", Duration::from_secs(20), async || {
        acked_now() >= at_switch + 100
    })
    .await;
    eventually(
        "the new path is used",
        Duration::from_secs(20),
        async || {
            receiver
                .received()
                .iter()
                .any(|r| r.path == "/api/orders-v2")
        },
    )
    .await;

    // An invalid config: refused, the running one stays.
    save(
        &cfg,
        &text.replace(r#"path = "/orders""#, r#"path = "orders-without-slash""#),
    );
    eventually(
        "the invalid config is refused",
        Duration::from_secs(20),
        async || config_status(&http, &base).await["last_reload"]["result"] == "refused",
    )
    .await;
    let s = config_status(&http, &base).await;
    assert_eq!(s["hash"], applied_hash);
    assert!(
        s["last_reload"]["reason"]
            .as_str()
            .unwrap()
            .contains("routes.orders.destination.path"),
        "{s}"
    );
    // SIGHUP asks again: still refused, counted again.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    eventually(
        "SIGHUP's reload is counted",
        Duration::from_secs(20),
        async || {
            metrics(&http, &base)
                .await
                .contains(r#"ferry_config_reloads_total{result="refused"} 2"#)
        },
    )
    .await;
    let at_refusal = acked_now();
    eventually(
        "traffic goes on after the refusal",
        Duration::from_secs(20),
        async || acked_now() >= at_refusal + 100,
    )
    .await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    assert!(
        failed.lock().unwrap().is_empty(),
        "requests failed: {:?}",
        failed.lock().unwrap()
    );
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    eventually(
        "every acked webhook is delivered",
        Duration::from_secs(60),
        async || {
            let delivered: HashSet<String> = receiver
                .received()
                .iter()
                .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .filter_map(|b| b["event"].as_str().map(str::to_owned))
                .collect();
            acked.iter().all(|id| delivered.contains(id))
        },
    )
    .await;
    let m = metrics(&http, &base).await;
    assert!(
        m.contains(r#"ferry_config_reloads_total{result="applied"} 1"#),
        "{m}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Kubernetes mounts a ConfigMap as `..data -> ..<timestamp>/` with
/// `ferry.toml -> ..data/ferry.toml`, and updates it by swapping `..data`:
/// the file's own mtime never changes. The folder watch and the content
/// hash see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&receiver.url(), &Options::default())
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"{}\"", dir.path().join("store").display()),
        );
    let root = dir.path().join("config");
    std::fs::create_dir_all(root.join("..2026_01_01")).unwrap();
    std::fs::write(root.join("..2026_01_01/ferry.toml"), &text).unwrap();
    symlink("..2026_01_01", root.join("..data")).unwrap();
    symlink("..data/ferry.toml", root.join("ferry.toml")).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = start_ferry(&root.join("ferry.toml"));
    wait_ready(&http, &base).await;
    let first = config_status(&http, &base).await["hash"].clone();

    std::fs::create_dir_all(root.join("..2026_01_02")).unwrap();
    std::fs::write(
        root.join("..2026_01_02/ferry.toml"),
        text.replace(r#"path = "/orders""#, r#"path = "/orders-swapped""#),
    )
    .unwrap();
    symlink("..2026_01_02", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    eventually("the swap is applied", Duration::from_secs(20), async || {
        let s = config_status(&http, &base).await;
        s["last_reload"]["result"] == "applied" && s["hash"] != first
    })
    .await;
    assert!(send_event(&http, &base, "evt_after_swap").await);
    eventually(
        "the new path is used",
        Duration::from_secs(20),
        async || {
            receiver
                .received()
                .iter()
                .any(|r| r.path == "/api/orders-swapped")
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
}
