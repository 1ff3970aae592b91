//! The attack catalogue of issue 9, run against the real `ferry serve`
//! binary on a real SQLite store (a temp dir) with a scriptable downstream.
//! Each case is what an attacker (a client-key holder, a validly signed
//! sender, an anonymous peer on the port) tries, and asserts the outcome:
//! the status answered, nothing stored, nothing lost, the process alive and
//! other clients served. The cases are grouped by what they attack: input
//! (`input`), secrets (`secrets`), slow clients (`slow`), and the state ferry
//! keeps (`state`); `edge`, `jq` and `secrets_api` run the same attacks on
//! the app in process, where a case needs paused time or the store. Test names name the defect each one guards against.

mod input;
mod secrets;
mod slow;
mod state;

// The same attacks, closer up: against the app in process (paused clocks,
// the store at hand) where a case needs to look inside.
mod edge;
mod jq;
mod secrets_api;

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use crate::common::*;
use ferry::sim::receiver::Receiver;

/// One `ferry serve` process on its own port and data dir.
pub struct Ferry {
    pub base: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Ferry {
    /// Starts ferry on the test config with `extra` TOML appended (routes,
    /// systems) and `server` lines added to `[server]`.
    pub async fn start(server: &str, extra: &str) -> Ferry {
        Ferry::start_with_env(server, extra, &[]).await
    }

    pub async fn start_with_env(server: &str, extra: &str, env: &[(&str, &str)]) -> Ferry {
        let receiver = Receiver::start().await.expect("receiver");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = write_config(&dir, &receiver.url(), port, server, extra);
        let child = spawn(&cfg, env);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .build()
            .unwrap();
        wait_ready(&http, &base).await;
        Ferry {
            base,
            port,
            http,
            receiver,
            dir,
            child,
        }
    }

    /// Kills the process, keeping its data dir for a look afterwards.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The process still runs and answers `/healthz`.
    pub async fn assert_alive(&mut self) {
        assert!(self.alive(), "ferry exited");
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("healthz answered");
        assert_eq!(r.status(), 200);
    }

    pub fn admin(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}/admin/api/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let r = self.admin(path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// How many messages the store holds, through the admin API.
    pub async fn stored(&self) -> usize {
        let v = self.admin_json("/messages?limit=1000").await;
        v["messages"].as_array().map_or(0, Vec::len)
    }

    /// A signed Standard Webhook to route `orders` (id `id`, body `body`).
    pub async fn webhook(&self, id: &str, body: &str) -> reqwest::Response {
        post_signed(&self.http, &self.base, "orders", id, body, now_s(), WHSEC).await
    }

    /// An ERP call to route `route` with the client key `key`.
    pub async fn api(&self, route: &str, idem: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/routes/{route}/messages", self.base))
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", idem)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The test config on `port`, with `server` lines in `[server]` and
/// `extra` appended; returns its path.
pub fn write_config(
    dir: &tempfile::TempDir,
    receiver: &str,
    port: u16,
    server: &str,
    extra: &str,
) -> PathBuf {
    let text = config_text(
        receiver,
        &Options {
            extra: extra.to_owned(),
            ..Options::default()
        },
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
    .replace("workers = 16", &format!("workers = 16\n{server}"));
    let cfg = dir.path().join("ferry.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

pub fn spawn(cfg: &std::path::Path, env: &[(&str, &str)]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(cfg)
        .envs(secrets())
        .envs(env.iter().copied())
        .env_remove("FERRY_DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ferry")
}

/// Runs a `ferry` subcommand to its end: (exit success, stdout + stderr).
pub fn ferry_cmd(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .envs(secrets())
        .envs(env.iter().copied())
        .env_remove("FERRY_DATABASE_URL")
        .output()
        .expect("run ferry");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A JSON document nested `depth` arrays deep.
pub fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}
