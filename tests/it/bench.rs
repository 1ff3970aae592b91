//! `ferry bench --console` stays runnable: a small store on SQLite, two
//! timed runs, and every page it measures answered 200 (the figures
//! themselves are not judged here: the machines are noisy).

use std::process::Command;

/// Every page of the console bench's table, by its name there.
const PAGES: [&str; 9] = [
    "dashboard",
    "failure groups",
    "failure group (largest)",
    "messages, first page",
    "messages, dead",
    "messages, text search",
    "messages, older page",
    "message (5 attempts)",
    "JSON /admin/api/v1/failures",
];

#[test]
fn the_console_bench_measures_every_page() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "--console", "--messages", "2000", "--runs", "2"])
        .env_remove("FERRY_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("SQLite with 2000 messages"),
        "the header names the backend and N:\n{stdout}"
    );
    assert!(stderr.contains("seeded in"), "seeding is timed:\n{stderr}");
    for page in PAGES {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(page))
            .unwrap_or_else(|| panic!("no row for {page}:\n{stdout}"));
        let status = row[row.find(page).unwrap() + page.len()..]
            .split_whitespace()
            .next();
        assert_eq!(status, Some("200"), "{row}");
    }
    let groups = stdout.lines().find(|l| l.contains("store:")).unwrap();
    assert!(
        groups.contains("dead") && groups.contains("queued"),
        "{groups}"
    );
}
