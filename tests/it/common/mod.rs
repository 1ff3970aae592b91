//! Test furniture: `TestApp` starts the real ferry app on port 0 with a fresh
//! SQLite store in a temp dir (or a given store, such as a PostgreSQL schema
//! shared by several instances) and a scriptable downstream (`Receiver`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry::app::App;
use ferry::clock::Clock;
use ferry::config::Config;
use ferry::deliver::{Deliverer, Step};
use ferry::sim::receiver::Receiver;
use ferry::store::{MessageFilter, RouteStats, Store};
use tokio_util::sync::CancellationToken;

mod pg_url;
pub use pg_url::postgres_test_url;

pub const ADMIN_TOKEN: &str = "admin-secret";
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const WHSEC_OLD: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const ERP_KEY: &str = "erp-client-key";
pub const OTHER_KEY: &str = "other-client-key";
/// Client keys of two more ERP clients (`A_KEY`, `B_KEY`), for routes a
/// test adds with credentials of its own.
pub const A_KEY: &str = "client-a-key";
pub const B_KEY: &str = "client-b-key";
/// 2026-01-01T00:00:00Z, the manual clock's start.
pub const T0: i64 = 1_767_225_600_000;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub store: Store,
    pub clock: Clock,
    pub deliverer: Arc<Deliverer>,
    pub receiver: Receiver,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub app: ferry::ingest::IngestState,
    _dir: tempfile::TempDir,
}

pub struct Options {
    /// Run the worker loop (system clock); otherwise tests call `step()`.
    pub workers: bool,
    /// Extra TOML appended to the base config (more systems or routes).
    pub extra: String,
    /// More lines for `[server]` (the edge's limits, say).
    pub server: String,
    /// Retry block of the `erp` system.
    pub retry: String,
    /// More lines for the `erp` system (a `rate_limit`, say).
    pub erp: String,
    /// A store to use instead of a fresh SQLite one (several instances).
    pub store: Option<Store>,
    /// A downstream to use instead of a fresh one (several instances).
    pub receiver: Option<Receiver>,
    /// The clock to use (a manual one shared with a simulated platform);
    /// default: the system clock with `workers`, else `Clock::manual(T0)`.
    pub clock: Option<Clock>,
    /// More lines for `[credentials]` (`{ store = ... }` ones, say).
    pub credentials: String,
    /// The master key (text form) to open the credential store with; the
    /// app then starts as `App::build` does, through `Vault::open`.
    pub master_key: Option<String>,
}

/// A fresh schema on the PostgreSQL server of `FERRY_TEST_POSTGRES_URL`, or
/// `None` (with a note) when that is not set.
pub struct PgScratch {
    /// The URL that selects the scratch schema.
    pub url: String,
    server_url: String,
    schema: String,
}

impl PgScratch {
    pub async fn new(test: &str) -> Option<PgScratch> {
        let server_url = postgres_test_url(test)?;
        let (url, schema) = ferry::store::postgres::scratch_schema(&server_url, "ferry_test")
            .await
            .expect("a scratch schema");
        Some(PgScratch {
            url,
            server_url,
            schema,
        })
    }

    /// One instance's connection to the shared schema.
    pub async fn store(&self) -> Store {
        Store::open_postgres(&self.url)
            .await
            .expect("PostgreSQL store")
    }

    pub async fn drop(self) {
        ferry::store::postgres::drop_scratch_schema(&self.server_url, &self.schema)
            .await
            .expect("drop the scratch schema");
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: false,
            extra: String::new(),
            server: String::new(),
            retry:
                r#"{ max_attempts = 5, initial_delay = "1s", max_delay = "1m", max_age = "1h" }"#
                    .into(),
            store: None,
            receiver: None,
            erp: String::new(),
            clock: None,
            credentials: String::new(),
            master_key: None,
        }
    }
}

pub fn secrets() -> HashMap<String, String> {
    [
        ("ADMIN", ADMIN_TOKEN),
        ("WHSEC", WHSEC),
        ("WHSEC_OLD", WHSEC_OLD),
        ("ERP_KEY", ERP_KEY),
        ("OTHER_KEY", OTHER_KEY),
        ("A_KEY", A_KEY),
        ("B_KEY", B_KEY),
        ("ERP_TOKEN", "erp-outbound-token"),
        ("GH", "It's a Secret to Everybody"),
        ("SHOPIFY", "shopify-secret"),
        ("STRIPE", "whsec_stripe_test_secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn config_text(receiver: &str, opts: &Options) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "data"
admin_token = {{ env = "ADMIN" }}
workers = 16
{server}

[credentials]
whsec = {{ env = "WHSEC" }}
whsec_old = {{ env = "WHSEC_OLD" }}
erp_client = {{ env = "ERP_KEY" }}
other_client = {{ env = "OTHER_KEY" }}
erp_token = {{ env = "ERP_TOKEN" }}
gh = {{ env = "GH" }}
shopify = {{ env = "SHOPIFY" }}
stripe = {{ env = "STRIPE" }}
{credentials}

[systems.erp]
base_url = "{receiver}/api"
auth = {{ kind = "bearer", credential = "erp_token" }}
timeout = "2s"
retry = {retry}
{erp}

[routes.orders]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec", "whsec_old"], max_body = "4KiB" }}
destination = {{ system = "erp", path = "/orders" }}

[routes.gh]
source = {{ kind = "webhook", scheme = "github", credentials = ["gh"] }}
destination = {{ system = "erp", path = "/gh" }}

[routes.shopify]
source = {{ kind = "webhook", scheme = "shopify", credentials = ["shopify"] }}
destination = {{ system = "erp", path = "/shopify" }}

[routes.stripe]
source = {{ kind = "webhook", scheme = "stripe", credentials = ["stripe"] }}
destination = {{ system = "erp", path = "/stripe" }}

[routes.stock]
source = {{ kind = "api", credentials = ["erp_client", "other_client"], max_body = "4KiB" }}
destination = {{ system = "erp", method = "PUT", path = "/stock" }}
{extra}
"#,
        retry = opts.retry,
        server = opts.server,
        erp = opts.erp,
        extra = opts.extra,
        credentials = opts.credentials
    )
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> TestApp {
        let receiver = match opts.receiver.clone() {
            Some(r) => r,
            None => Receiver::start().await.expect("receiver"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let env = secrets();
        let lookup = move |k: &str| env.get(k).cloned();
        let config = Config::parse(
            &config_text(&receiver.url(), &opts),
            "test.toml",
            dir.path(),
            &lookup,
        )
        .expect("test config is valid");
        let clock = match &opts.clock {
            Some(c) => c.clone(),
            None if opts.workers => Clock::System,
            None => Clock::manual(T0),
        };
        let store = match opts.store.clone() {
            Some(s) => s,
            None => Store::open_sqlite(&config.server.data_dir).expect("store"),
        };
        let app = match &opts.master_key {
            None => App::with_parts(config, store.clone(), clock.clone()).expect("app"),
            Some(key) => {
                let key = ferry::vault::MasterKey::parse(key);
                let vault = ferry::vault::Vault::open(&config, store.clone(), clock.clone(), key)
                    .await
                    .expect("the credential store opens");
                App::with_vault(config, store.clone(), clock.clone(), Arc::new(vault)).expect("app")
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let deliverer = app.deliverer();
        let state = app.ingest().clone();
        let sd = shutdown.clone();
        if opts.workers {
            tokio::spawn(async move { app.run(listener, sd).await });
        } else {
            tokio::spawn(async move { app.serve(listener, sd).await });
        }
        TestApp {
            addr,
            base: format!("http://{addr}"),
            store,
            clock,
            deliverer,
            receiver,
            // Idle connections go back before the server's keep-alive
            // (header_read_timeout, 5 s) closes them: a POST on a connection
            // the server is closing fails with IncompleteMessage.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            shutdown,
            app: state,
            _dir: dir,
        }
    }

    pub fn now_s(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    /// A signed Standard Webhooks request to route `orders`.
    pub async fn webhook(&self, id: &str, body: &str) -> reqwest::Response {
        self.webhook_at(id, body, self.now_s(), WHSEC).await
    }

    pub async fn webhook_at(
        &self,
        id: &str,
        body: &str,
        ts: i64,
        secret: &str,
    ) -> reqwest::Response {
        self.signed("orders", id, body, ts, secret).await
    }

    /// A Standard Webhooks request signed with `secret`, to any route.
    pub async fn signed(
        &self,
        route: &str,
        id: &str,
        body: &str,
        ts: i64,
        secret: &str,
    ) -> reqwest::Response {
        post_signed(&self.http, &self.base, route, id, body, ts, secret).await
    }

    /// An ERP API call to route `stock`.
    pub async fn api(&self, key: Option<&str>, client_key: &str, body: &str) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/api/v1/routes/stock/messages", self.base))
            .bearer_auth(client_key)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.unwrap()
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/admin/api/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// An admin API call answered with JSON (any status).
    pub async fn admin_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = self.admin(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// One worker step on the manual clock.
    pub async fn step(&self) -> Step {
        self.deliverer.run_once().await.expect("worker step")
    }

    /// Steps until nothing is due now.
    pub async fn drain(&self) -> usize {
        let mut n = 0;
        while let Step::Worked(k) = self.step().await {
            n += k;
        }
        n
    }

    pub async fn stats(&self, route: &str) -> RouteStats {
        self.store
            .stats()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.route == route)
            .unwrap_or_else(|| RouteStats {
                route: route.to_owned(),
                ..Default::default()
            })
    }

    pub async fn total_messages(&self) -> usize {
        self.store
            .list(&MessageFilter {
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }

    pub async fn only_message(&self) -> ferry::store::MessageDetail {
        let list = self.store.list(&MessageFilter::default()).await.unwrap();
        assert_eq!(list.len(), 1, "expected exactly one message, got {list:?}");
        self.store.message(&list[0].id).await.unwrap().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.receiver.stop();
    }
}

pub async fn problem(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        ct.as_deref(),
        Some("application/problem+json"),
        "status {status}"
    );
    (status, resp.json().await.unwrap())
}

/// A free TCP port on loopback (for a `ferry serve` process's config).
/// POSTs `body` to `{base}/in/{route}` as Standard Webhook `id`, signed at
/// `ts` with `secret`.
pub async fn post_signed(
    http: &reqwest::Client,
    base: &str,
    route: &str,
    id: &str,
    body: &str,
    ts: i64,
    secret: &str,
) -> reqwest::Response {
    let sig =
        ferry::ingest::verify::sign_standard_webhooks(secret, id, ts, body.as_bytes()).unwrap();
    http.post(format!("{base}/in/{route}"))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real `ferry serve` binary on `cfg`, with the test secrets.
pub fn start_ferry(cfg: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(cfg)
        .envs(secrets())
        .env_remove("FERRY_DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start ferry")
}

/// Waits until `ready` holds: it is asked at once, then after each yield to
/// the runtime (the first hundred times) or every 5 ms; panics naming
/// `what` when `within` has passed. For conditions in the world outside the
/// test (another task, a socket, a child process), never to time anything.
pub async fn eventually(what: &str, within: Duration, mut ready: impl AsyncFnMut() -> bool) {
    let give_up = std::time::Instant::now() + within;
    let mut asked = 0u32;
    while !ready().await {
        assert!(
            std::time::Instant::now() < give_up,
            "{what}: not within {within:?}"
        );
        if asked < 100 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        asked += 1;
    }
}

/// Waits until the ferry at `base` answers `/readyz` (its store is open).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let ready = async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    eventually(
        &format!("ferry at {base} comes up"),
        Duration::from_secs(10),
        ready,
    )
    .await;
}

/// Sends webhook `id` with body `{"event":"<id>"}` to route `orders`,
/// signed now; true when it was acked.
pub async fn send_event(http: &reqwest::Client, base: &str, id: &str) -> bool {
    let body = format!(r#"{{"event":"{id}"}}"#);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig =
        ferry::ingest::verify::sign_standard_webhooks(WHSEC, id, ts, body.as_bytes()).unwrap();
    http.post(format!("{base}/in/orders"))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Sends `n` signed Standard Webhooks to `route` (ids `<prefix>_<i>`, body
/// `{"n":i}`), 16 at a time; panics unless every one is acked with 202.
pub async fn ingest_many(t: &TestApp, route: &str, prefix: &str, n: usize) {
    use futures_util::StreamExt;
    let ts = t.now_s();
    let statuses: Vec<u16> = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let id = format!("{prefix}_{i}");
            let body = format!(r#"{{"n":{i}}}"#);
            t.signed(route, &id, &body, ts, WHSEC)
                .await
                .status()
                .as_u16()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 202),
        "every message acked: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 202)
            .take(5)
            .collect::<Vec<_>>()
    );
}

/// Steps ferry until `done` says so: when a step finds nothing due, the clock
/// moves to the next due time of `system`. Returns the steps taken.
pub async fn drive(t: &TestApp, system: &str, mut done: impl AsyncFnMut() -> bool) -> usize {
    let mut steps = 0;
    while !done().await {
        steps += 1;
        assert!(steps < 20_000, "ferry stopped making progress");
        if t.step().await == Step::Idle {
            let due = t
                .store
                .next_due(system)
                .await
                .unwrap()
                .expect("work is pending, so something is due");
            // Never back: a paced send may have moved the clock past `due`.
            t.clock.set(due.max(t.clock.now_ms()));
        }
    }
    steps
}
