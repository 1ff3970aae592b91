//! The low-level form of `ferry.toml`: plain serde structs that mirror the file,
//! strings left as written. `config::load` resolves this into the validated
//! [`Config`](super::Config); nothing outside `config` sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub retention: RawRetention,
    #[serde(default)]
    pub console: RawConsole,
    #[serde(default)]
    pub credentials: BTreeMap<String, RawSecretSource>,
    #[serde(default)]
    pub systems: BTreeMap<String, RawSystem>,
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoute>,
    /// Alert channels (`[alerts.<name>]`).
    #[serde(default)]
    pub alerts: BTreeMap<String, RawAlert>,
}

/// One alert channel: where alerts go, which events, from which routes
/// and systems, and how often a firing condition is repeated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub kind: String,
    pub url: Option<String>,
    /// The channel's secret: PagerDuty's routing key, the webhook's signing
    /// secret, the SMTP password.
    pub credential: Option<String>,
    pub events: Option<Vec<String>>,
    pub routes: Option<Vec<String>>,
    pub systems: Option<Vec<String>>,
    /// At most one follow-up of a firing condition per this interval.
    pub repeat_every: Option<String>,
    /// Requests a second toward the channel (default 1) and burst (5).
    pub per_second: Option<f64>,
    pub burst: Option<u32>,
    /// Email: the sender, the recipients, a private CA (PEM) and the SMTP
    /// user (whose password is `credential`).
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub ca_file: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub admin_token: Option<RawSecretSource>,
    pub workers: Option<usize>,
    pub log_format: Option<String>,
    pub jq_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub body_idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_unverified_bytes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub delivered: Option<String>,
    pub dead: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub session_idle: Option<String>,
    pub session_lifetime: Option<String>,
    pub secure_cookies: Option<bool>,
    /// Where operators reach the console (alerts link to it).
    pub public_url: Option<String>,
    /// Origins (`scheme://host[:port]`) whose pages may frame the
    /// read-only embed of a route's failures.
    pub embed_origins: Option<Vec<String>>,
}

/// Where a secret's value comes from. Values never live in the file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecretSource {
    pub env: Option<String>,
    pub file: Option<String>,
    /// A credential of the encrypted store (`ferry credentials set`),
    /// resolved at run time.
    pub store: Option<String>,
    /// A store credential's warning window: `credential_expiring` alerts
    /// this long before its `--expires` (default 7d).
    pub warn_before: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSystem {
    pub base_url: String,
    pub api_version: Option<String>,
    /// The version being prepared: its mappings run beside the live ones
    /// on every delivery, sending nothing (shadow mode).
    pub next_api_version: Option<String>,
    pub proxy: Option<String>,
    pub auth: Option<RawAuth>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub retry: Option<RawRetry>,
    pub rate_limit: Option<RawRateLimit>,
    pub max_queue: Option<u64>,
    pub circuit_breaker: Option<RawBreaker>,
    /// Alert thresholds: a hold longer than this, more waiting than this, a
    /// waiting message older than this.
    pub alert_hold: Option<String>,
    pub alert_queue_depth: Option<u64>,
    pub alert_oldest_waiting: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub enabled: Option<bool>,
    pub failure_ratio: Option<f64>,
    pub window: Option<String>,
    pub min_requests: Option<u32>,
    pub open_for: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub kind: String,
    pub credential: Option<String>,
    /// Header name for `kind = "header"`.
    pub name: Option<String>,
    /// OAuth2 (`kind = "oauth2"` or `"oauth2-refresh"`).
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    /// The credential holding the client secret.
    pub client_secret: Option<String>,
    /// `oauth2-refresh`: the store credential holding the refresh token.
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// `"post"` (default) or `"basic"`.
    pub client_auth: Option<String>,
    /// `"Authorization"` (default, `Bearer <token>`) or `"X-Shopify-Access-Token"`.
    pub header: Option<String>,
    /// A token's lifetime when the answer has no `expires_in`.
    pub default_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub initial_delay: Option<String>,
    pub max_delay: Option<String>,
    pub max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: Option<f64>,
    pub burst: Option<u32>,
    pub max_concurrency: Option<usize>,
    pub dialect: Option<String>,
    /// Share of a daily quota past which low-priority routes pause.
    pub pause_low_at: Option<f64>,
    /// Adaptive concurrency (AIMD) between 1 and `max_concurrency`.
    pub adaptive: Option<bool>,
    /// Whose budget `per_second`/`burst` is: the system's or its credential's.
    pub scope: Option<String>,
    /// The longest a `Retry-After` or dialect header may hold the system.
    pub max_hold: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub source: RawSource,
    pub transform: Option<RawTransform>,
    pub destination: RawDestination,
    /// Silence detection: traffic is expected at least this often.
    pub expect_traffic_every: Option<String>,
    /// When `expect_traffic_every` applies: `"Mon-Fri 08:00-18:00 Europe/Berlin"`.
    pub active: Option<String>,
}

/// `transform = "passthrough"`, `transform = "mappings/{api_version}/x.jq"`
/// or `transform = { file = "...", emits = "request" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTransform {
    File(String),
    Table(RawTransformTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransformTable {
    pub file: String,
    pub emits: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub kind: String,
    pub scheme: Option<String>,
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Dedupe key: `{ header = "X-Event-Id" }` or `"none"`; default: the scheme's event id.
    pub dedupe: Option<RawDedupe>,
    pub dedupe_window: Option<String>,
    pub idempotency_window: Option<String>,
    pub max_body: Option<String>,
    pub max_depth: Option<usize>,
    pub tolerance: Option<String>,
    /// Generic `hmac` scheme and `api-key` scheme: the header carrying the signature or key.
    pub header: Option<String>,
    pub algorithm: Option<String>,
    pub encoding: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDedupe {
    Keyword(String),
    Header { header: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub system: String,
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
    /// A jq expression naming the entity for auto-resolve (not ordering).
    pub entity_key: Option<String>,
    pub batch: Option<RawBatch>,
    /// `"normal"` (default) or `"low"`.
    pub priority: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    pub max_items: Option<usize>,
    pub max_bytes: Option<String>,
    pub max_wait: Option<String>,
    pub path: String,
    pub body: String,
    pub results: Option<String>,
}
