//! `ferry credentials ...` and `ferry keys generate` as an operator runs
//! them: values on stdin, never printed; the master key required and
//! checked, a wrong or missing one a one-line error and a non-zero exit;
//! nothing readable at rest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A config whose store is a fresh SQLite folder.
pub fn config(dir: &Path, credentials: &str) -> PathBuf {
    let file = dir.join("ferry.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[credentials]\n{credentials}\n"
        ),
    )
    .unwrap();
    file
}

pub fn generate_key() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `ferry credentials ARGS` with `key` (none: no key) and `stdin`.
pub fn run(cfg: &Path, key: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.arg("credentials")
        .args(args)
        .envs(crate::common::secrets())
        .arg("--config")
        .arg(cfg)
        .env_remove("FERRY_MASTER_KEY")
        .env_remove("FERRY_MASTER_KEY_FILE")
        .env_remove("FERRY_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = key {
        c.env("FERRY_MASTER_KEY", k);
    }
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The command failed with exactly one line on stderr, which contains `want`.
fn one_line_error(out: &Output, want: &str) {
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{want:?} in {err}");
}

/// Every file under `dir`, concatenated.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn keys_generate_prints_a_fresh_32_byte_base64_key() {
    use base64::Engine;
    let (a, b) = (generate_key(), generate_key());
    assert_ne!(a, b);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&a)
        .unwrap();
    assert_eq!(bytes.len(), 32);
}

#[test]
fn set_rotate_list_remove_never_show_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let key = generate_key();
    let k = Some(key.as_str());
    let first = "whsec_Zmlyc3Qtc2VjcmV0LXZhbHVlLWZvci10ZXN0";
    let second = "whsec_c2Vjb25kLXNlY3JldC12YWx1ZS1mb3ItdGVzdA";
    let out = ok(&run(
        &cfg,
        k,
        &["set", "shop_hook", "--expires", "90d"],
        &format!("{first}\n"),
    ));
    assert!(out.contains("version 1"), "{out}");
    let out = ok(&run(
        &cfg,
        k,
        &["rotate", "shop_hook", "--grace", "24h"],
        second,
    ));
    assert!(out.contains("version 2"), "{out}");
    ok(&run(&cfg, k, &["set", "erp_token"], "tok-123-abc"));
    let list = ok(&run(&cfg, k, &["list"], ""));
    assert!(
        list.contains("shop_hook") && list.contains("v2,v1"),
        "{list}"
    );
    assert!(
        list.contains("erp_token") && list.contains("never"),
        "{list}"
    );
    assert!(list.contains("older accepted until"), "{list}");
    let json = ok(&run(&cfg, k, &["list", "--json"], ""));
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[1]["name"], "shop_hook");
    assert_eq!(listed[1]["versions"][0]["version"], 2);
    assert!(listed[1]["versions"][0]["expires_ms"].is_null());
    assert!(
        listed[1]["versions"][1]["expires_ms"].is_i64(),
        "v1 had --expires"
    );
    for text in [&list, &json] {
        for secret in [first, second, "tok-123-abc"] {
            assert!(!text.contains(secret), "a value was printed");
        }
    }
    // nothing readable at rest, nor the key
    let rest = all_bytes(&dir.path().join("data"));
    for secret in [first, second, "tok-123-abc", key.as_str()] {
        assert!(
            !contains(&rest, secret),
            "{secret} found in the database files"
        );
    }
    // remove
    ok(&run(&cfg, k, &["remove", "erp_token"], ""));
    one_line_error(
        &run(&cfg, k, &["remove", "erp_token"], ""),
        "no credential erp_token",
    );
    let list = ok(&run(&cfg, k, &["list"], ""));
    assert!(!list.contains("erp_token"), "{list}");
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let key = generate_key();
    let k = Some(key.as_str());
    one_line_error(&run(&cfg, None, &["list"], ""), "FERRY_MASTER_KEY");
    one_line_error(
        &run(&cfg, Some("short"), &["list"], ""),
        "master key is not valid",
    );
    ok(&run(&cfg, k, &["set", "a"], "value-a"));
    // another key than the store's first
    let other = generate_key();
    one_line_error(
        &run(&cfg, Some(&other), &["set", "b"], "v"),
        "does not match",
    );
    one_line_error(&run(&cfg, k, &["set", "b"], "\n"), "no value on stdin");
    one_line_error(&run(&cfg, k, &["set", "no/slash"], "v"), "may only use");
    one_line_error(
        &run(&cfg, k, &["rotate", "b", "--grace", "1h"], "v"),
        "use `ferry credentials set b`",
    );
    one_line_error(
        &run(&cfg, k, &["rotate", "a", "--grace", "soon"], "v"),
        "--grace",
    );
}

#[test]
fn serve_refuses_to_start_without_the_key_or_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "hook = { store = \"hook\" }");
    let serve = |key: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(["serve", "--config"])
            .arg(&cfg)
            .env_remove("FERRY_MASTER_KEY")
            .env_remove("FERRY_MASTER_KEY_FILE")
            .env_remove("FERRY_DATABASE_URL")
            .env("FERRY_LOG", "off");
        if let Some(k) = key {
            c.env("FERRY_MASTER_KEY", k);
        }
        c.output().unwrap()
    };
    // check-config does not need the store
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("check-config")
        .arg(&cfg)
        .env_remove("FERRY_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_line_error(&serve(None), "no master key");
    let key = generate_key();
    one_line_error(&serve(Some(&key)), "run `ferry credentials set hook`");
    ok(&run(&cfg, Some(&key), &["set", "hook"], "v"));
    one_line_error(&serve(Some(&generate_key())), "does not match");
}
