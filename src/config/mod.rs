//! Configuration: `ferry.toml` (plus the env vars and files it names) parsed
//! into a [`RawConfig`](raw::RawConfig), then resolved and validated as a whole
//! into a [`Config`]. Everything downstream (ingest, store, deliver, admin) only
//! sees the resolved form. `ferry check-config` prints every [`Problem`] with its
//! location; `config.default.toml` (embedded) is the commented reference.

pub mod alerts;
mod auth;
mod batch;
pub mod database;
mod edge;
mod raw;
mod resolve;
mod route;
pub mod scheme;
mod system;
mod transform;
pub mod units;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use secrecy::SecretString;

pub use crate::model::{RouteName, SystemName};
pub use edge::Edge;
pub use system::same_origin;

use crate::limits::retry::RetryPolicy;
use scheme::Scheme;

/// The fully commented reference configuration, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../config.default.toml");

/// A validated configuration. Cheap to clone (routes and systems are shared).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub retention: Retention,
    pub console: Console,
    pub credentials: BTreeMap<String, Credential>,
    pub systems: BTreeMap<SystemName, Arc<System>>,
    pub routes: BTreeMap<RouteName, Arc<Route>>,
    /// Alert channels (`[alerts.<name>]`), each with its own route and
    /// system (`alert:<name>`) in `routes` and `systems`.
    pub alerts: BTreeMap<String, Arc<AlertChannel>>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite (`server.database_url`, or the
    /// `FERRY_DATABASE_URL` environment variable, which wins).
    pub database_url: Option<SecretString>,
    /// Bearer token for `/admin/api`; `None` leaves the admin API closed (403).
    pub admin_token: Option<SecretString>,
    /// The default of each system's `rate_limit.max_concurrency`: requests
    /// in flight toward one system at once. There is no cap across systems,
    /// so a system whose requests hang holds only its own places.
    pub workers: usize,
    pub log_format: LogFormat,
    /// How long one run of a jq program may take (`server.jq_timeout`).
    pub jq_timeout: Duration,
    /// The HTTP edge's limits (timeouts, connections, unverified bytes).
    pub edge: Edge,
}

/// How long finished messages are kept (`[retention]`), then deleted by the
/// janitor with their attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delivered and discarded messages, from when they got there.
    pub delivered: Duration,
    /// Dead messages, from when they died: longer, an operator may still act.
    pub dead: Duration,
}

/// The console's sessions (`[console]`).
/// The console's sessions and embedding (`[console]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    /// A session unused this long ends (`session_idle`, default 30 min).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however used
    /// (`session_lifetime`, default 12 h).
    pub session_lifetime: Duration,
    /// Marks the session cookie `Secure` even when the request did not come
    /// over TLS as far as ferry can tell (`secure_cookies`; a TLS proxy's
    /// `X-Forwarded-Proto: https` marks it anyway).
    pub secure_cookies: bool,
    /// The console's address as operators reach it, without a trailing
    /// slash (`public_url`; default `http://<server.listen>`): alerts link
    /// to its pages.
    pub public_url: String,
    /// The origins (`https://erp.example.com`, as the browser serialises
    /// them) whose pages may frame `/console/embed/failures`
    /// (`embed_origins`): its `frame-ancestors` is `'self'` and these;
    /// every other console page may be framed by none.
    pub embed_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where a secret comes from; kept so a rejected credential can be re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// The encrypted credential store, under this name (`vault` reads it
    /// at run time, with every version inside its grace window).
    Store(String),
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub name: String,
    pub source: SecretSource,
    /// `None` for a store credential: its versions live in `vault`.
    pub value: Option<SecretString>,
    /// How long before its `--expires` a store credential is alerted on
    /// (`warn_before`, default 7 days).
    pub warn_before: Duration,
}

#[derive(Debug, Clone)]
pub struct System {
    pub name: SystemName,
    /// With `{api_version}` already substituted.
    pub base_url: String,
    pub api_version: Option<String>,
    /// The version being prepared (`next_api_version`): routes toward this
    /// system run its mappings too, in shadow, sending nothing.
    pub next_api_version: Option<String>,
    /// The HTTP proxy deliveries go through (`proxy`); `None`: direct, and
    /// proxy environment variables are ignored.
    pub proxy: Option<reqwest::Url>,
    pub auth: Auth,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Deliveries in flight at once toward this system.
    pub max_concurrency: usize,
    /// Requests per second and burst (`rate_limit.per_second`, `burst`),
    /// shared by every worker of every instance; `None` leaves only the
    /// concurrency cap.
    pub rate: Option<crate::limits::pace::Rate>,
    /// Messages waiting for this system past which ingest answers 503
    /// (`max_queue`, default 100,000).
    pub max_queue: u64,
    /// Which rate-limit headers the platform answers with (`rate_limit.dialect`).
    pub dialect: Option<crate::limits::dialect::Dialect>,
    /// When to stop sending to a failing platform (`circuit_breaker`);
    /// `None` when `enabled = false`.
    pub breaker: Option<crate::limits::breaker::Policy>,
    /// Share of the daily quota (0 < x ≤ 1) at which low-priority routes to
    /// this system pause until the quota resets (`rate_limit.pause_low_at`);
    /// only set with a daily-quota dialect (salesforce, hubspot).
    pub pause_low_at: Option<f64>,
    /// The in-flight limit moves between 1 and `max_concurrency` with the
    /// system's answers (`rate_limit.adaptive`).
    pub adaptive: bool,
    /// The name of the request budget this system draws from: its own name,
    /// or `credential:<name>` with `rate_limit.scope = "credential"`, where
    /// the platform budgets per app or token and several systems (say, two
    /// API versions of one shop) send with the same credential.
    pub budget: String,
    /// When this system's state raises an alert.
    pub alert: AlertThresholds,
    /// An email alert channel's system sends by SMTP, not HTTP.
    pub email: Option<Arc<EmailChannel>>,
}

pub use alerts::{AlertChannel, AlertEvent, AlertKind, AlertThresholds, EmailChannel, Silence};
pub use auth::{ClientAuth, Grant, OAuth2, TokenHeader};

/// How ferry authenticates toward a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        credential: String,
    },
    Bearer {
        credential: String,
    },
    Header {
        name: HeaderName,
        credential: String,
    },
    /// Signs each delivery per Standard Webhooks (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature` with every live version).
    StandardWebhooks {
        credential: String,
    },
    /// An OAuth2 access token, fetched and cached by `connect::oauth`.
    OAuth2(Arc<OAuth2>),
}

impl Auth {
    /// The credential the system sees (an OAuth2 client's secret).
    pub fn credential(&self) -> Option<&str> {
        match self {
            Auth::None => None,
            Auth::Basic { credential }
            | Auth::Bearer { credential }
            | Auth::StandardWebhooks { credential }
            | Auth::Header { credential, .. } => Some(credential),
            Auth::OAuth2(o) => Some(&o.client_secret),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: RouteName,
    pub source: Source,
    pub destination: Destination,
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// Deepest accepted nesting of JSON arrays and objects (`max_depth`).
    pub max_depth: usize,
    /// What the body becomes for the destination's API version (`transform`).
    pub transform: crate::transform::Transform,
    /// The same mapping for the system's `next_api_version`, run beside the
    /// live one on every delivery and compared, sending nothing.
    pub shadow: Option<Arc<crate::transform::Mapping>>,
    /// Silence detection (`expect_traffic_every`, `active`).
    pub silence: Option<Silence>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Webhook {
        scheme: Scheme,
        credentials: Vec<String>,
        dedupe: Dedupe,
        dedupe_window: Duration,
        /// Allowed clock skew for timestamped schemes.
        tolerance: Duration,
    },
    Api {
        credentials: Vec<String>,
        idempotency_window: Duration,
    },
    /// An alert channel's route: ferry writes its messages itself; nothing
    /// can be sent to it over HTTP.
    Alerts,
}

/// Which value identifies a webhook event for deduplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// The scheme's own event id (`webhook-id`, `X-Shopify-Webhook-Id`, ...).
    SchemeEventId,
    Header(HeaderName),
    /// A SHA-256 of the body (`dedupe = "body-hash"`): the replay defence
    /// of schemes that sign no timestamp (hmac, shopify, github), where a
    /// captured request stays valid forever.
    BodyHash,
    Off,
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub system: SystemName,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A jq expression naming the entity a message is about (`ordering_key`):
    /// messages with the same key are delivered one at a time, in arrival order.
    pub ordering_key: Option<std::sync::Arc<crate::transform::jq::Jq>>,
    /// A jq expression naming the entity for auto-resolve (`entity_key`):
    /// when a message is delivered, the older dead ones of its entity become
    /// `superseded`. Unlike `ordering_key` it never holds a message back.
    pub entity_key: Option<std::sync::Arc<crate::transform::jq::Jq>>,
    /// Send messages in batches to a bulk endpoint (`batch`).
    pub batch: Option<Batch>,
    /// `low` routes pause when their system's daily quota is nearly spent
    /// (`priority`; see `System::pause_low_at`).
    pub priority: Priority,
}

/// A route's claim on a shared daily quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Normal,
    /// Waits from the system's `pause_low_at` share of the quota until it resets.
    Low,
}

/// A destination's bulk endpoint: messages of the route go out together, up
/// to `max_items` and `max_bytes` of bodies, waiting at most `max_wait_ms`
/// for a batch to fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub max_items: usize,
    pub max_bytes: usize,
    pub max_wait_ms: i64,
    /// The bulk endpoint's path (POST), after the system's base URL.
    pub path: String,
    /// jq: the array of message bodies → the request body.
    pub body: std::sync::Arc<crate::transform::jq::Jq>,
    /// jq: `{status, request: [bodies], response}` → one entry per item,
    /// `null` where it was taken and the platform's reason where it was not.
    pub results: Option<std::sync::Arc<crate::transform::jq::Jq>>,
}

/// One thing wrong with a config file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// Where `${env}` lookups go: the process environment, or a fixed map (demo, tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Reads and validates a config file; relative paths resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base, &process_env)
    }

    /// Parses config text. `origin` names the file in problem locations.
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{origin}:{line}:{col}")
                }
                None => origin.to_owned(),
            };
            ConfigError::Invalid(vec![Problem {
                location,
                message: e.message().to_owned(),
            }])
        })?;
        resolve::resolve(raw, base_dir, env).map_err(ConfigError::Invalid)
    }

    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name)
    }

    pub fn secret(&self, credential: &str) -> Option<&SecretString> {
        self.credentials
            .get(credential)
            .and_then(|c| c.value.as_ref())
    }

    /// The credentials read from the encrypted store: (config name, store name).
    pub fn store_credentials(&self) -> impl Iterator<Item = (&str, &str)> {
        self.credentials.values().filter_map(|c| match &c.source {
            SecretSource::Store(s) => Some((c.name.as_str(), s.as_str())),
            _ => None,
        })
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod alerts_tests;
#[cfg(test)]
mod tests;
