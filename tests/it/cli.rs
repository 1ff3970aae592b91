//! The binary's own contract: `check-config` reports every problem with its
//! location and exits non-zero; a second `serve` on one store is refused.

use std::process::Command;

use crate::common::*;

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.envs(secrets());
    c
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let out = ferry().arg("check-config").arg(&cfg).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok (8 credentials, 1 systems, 5 routes)")
    );
}

#[test]
fn check_config_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
[systems.erp]
base_url = "ftp://x"
timeout = "soon"

[routes.r]
source = { kind = "webhook", scheme = "stripe", credentials = ["missing"] }
destination = { system = "nowhere", path = "/x" }
"#,
    )
    .unwrap();
    let out = ferry().arg("check-config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "systems.erp.base_url",
        "systems.erp.timeout",
        "routes.r.source.credentials",
        "routes.r.destination.system",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    let out = ferry()
        .arg("check-config")
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().count(),
        1,
        "one line: why"
    );
}

#[test]
fn the_default_config_is_printed_and_documented() {
    let out = ferry()
        .args(["check-config", "--print-default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[routes.shop-orders]") && text.contains("# "));
}

#[test]
fn a_second_server_on_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    let mut first = ferry()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    // Wait until the first server holds the lock (its database exists).
    let db = dir.path().join("data/ferry.sqlite3");
    for _ in 0..200 {
        if db.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let second = ferry()
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already using"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_uploads_a_file_follows_the_job_and_reports_refused_lines() {
    let t = TestApp::spawn_with(Options {
        workers: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stock.ndjson");
    let mut lines: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"sku":"S{i}","qty":{i}}}"#))
        .collect();
    lines.insert(100, "{oops".into());
    std::fs::write(&file, lines.join("\n")).unwrap();
    let run = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "sync",
                "--route",
                "stock",
                "--poll-ms",
                "50",
                "--url",
                &t.base,
            ])
            .arg(&file)
            .env("FERRY_API_KEY", ERP_KEY)
            .output()
    };
    let out = run().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a refused line: {stdout}");
    assert!(
        stdout.contains("201 lines, 200 accepted, 0 already there, 1 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 101: the body is not valid JSON"),
        "{stdout}"
    );
    assert!(
        stdout.contains("done: 200 delivered, 0 dead, 1 lines refused"),
        "{stdout}"
    );
    assert_eq!(t.receiver.count(), 200);
    // The same command again resumes the same job: nothing is sent twice.
    let out = run().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 accepted, 200 already there"), "{stdout}");
    assert_eq!(t.receiver.count(), 200);
}
