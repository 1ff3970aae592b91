//! Honest health: a truncated or foreign database file refuses to start with
//! the reason; `ferry check-store` runs SQLite's integrity check and fails
//! on a corrupted page; `/readyz` answers 503 once the store's writer is gone.

use std::process::Command;

use crate::common::*;

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.envs(secrets());
    c
}

/// A config whose data directory is `dir/data`.
fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("ferry.toml");
    std::fs::write(&cfg, config_text("http://127.0.0.1:9", &Options::default())).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    cfg
}

fn run(args: &[&str], cfg: &std::path::Path) -> (Option<i32>, String) {
    let out = ferry()
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_zero_length_database_beside_its_lock_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(dir.path().join("data/ferry.sqlite3"), b"").unwrap();
    std::fs::write(dir.path().join("data/ferry.lock"), b"").unwrap();
    let (code, err) = run(&["serve"], &cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the database file is empty but ferry.lock exists"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let (code, err) = run(&["check-store"], &cfg);
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_file_that_is_not_sqlite_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(dir.path().join("data/ferry.sqlite3"), [0x42u8; 8192]).unwrap();
    let (code, err) = run(&["serve"], &cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[test]
fn check_store_passes_a_new_store_and_fails_a_corrupted_page() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    // A brand new data directory still works: migrate creates the store.
    let (code, out) = run(&["migrate"], &cfg);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["check-store"], &cfg);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("(integrity_check): ok"), "{out}");

    // Enough rows for many b-tree pages, then garbage over some of them.
    let db = dir.path().join("data/ferry.sqlite3");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE filler (id INTEGER PRIMARY KEY, v TEXT);
             CREATE INDEX filler_v ON filler (v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO filler SELECT i, printf('%0100d', i) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 200 * 4096, "{len}");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(len / 2 / 4096 * 4096 + 100))
            .unwrap();
        f.write_all(&[0xA5; 3000]).unwrap();
    }
    for args in [&["check-store"][..], &["check-store", "--quick"][..]] {
        let (code, out) = run(args, &cfg);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(out.contains("problem(s)"), "{out}");
    }
}

#[tokio::test]
async fn readyz_fails_once_the_writer_is_gone() {
    let t = TestApp::spawn().await;
    let readyz = || t.http.get(format!("{}/readyz", t.base)).send();
    assert_eq!(readyz().await.unwrap().status(), 200);
    let ferry::store::Store::Sqlite(s) = &t.store else {
        panic!("the test app runs on SQLite");
    };
    s.stop_writer();
    assert_eq!(readyz().await.unwrap().status(), 503);
    assert_eq!(
        t.http
            .get(format!("{}/healthz", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the process is alive, only not ready"
    );
}
