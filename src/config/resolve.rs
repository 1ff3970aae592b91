//! Resolution of the raw config: every string checked and turned into its typed
//! form, every cross-reference (route → system, auth → credential) checked, and
//! every problem collected with its location rather than stopping at the first.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use secrecy::SecretString;

use super::raw::*;
use super::units::parse_duration;
use super::*;

pub(super) struct Ctx<'a> {
    problems: Vec<Problem>,
    pub(super) base_dir: &'a Path,
    env: EnvLookup<'a>,
    /// `server.jq_timeout`, given to every program compiled.
    pub(super) jq_timeout: Duration,
}

impl Ctx<'_> {
    pub(super) fn problem(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            location: location.into(),
            message: message.into(),
        });
    }

    pub(super) fn duration(
        &mut self,
        loc: &str,
        value: Option<&String>,
        default: Duration,
    ) -> Duration {
        match value.map(|v| parse_duration(v)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problem(loc, e);
                default
            }
        }
    }

    fn secret(
        &mut self,
        loc: &str,
        src: &RawSecretSource,
    ) -> Option<(SecretSource, Option<SecretString>)> {
        match (&src.env, &src.file, &src.store) {
            (None, None, Some(name)) => match crate::model::credential_name(name) {
                Ok(()) => Some((SecretSource::Store(name.clone()), None)),
                Err(why) => {
                    self.problem(loc, format!("store = \"{name}\": {why}"));
                    None
                }
            },
            (Some(var), None, None) => match (self.env)(var) {
                Some(v) if v.trim().is_empty() => {
                    // An empty secret would accept (or send) nothing at all: fail closed.
                    self.problem(loc, format!("environment variable {var} is empty"));
                    None
                }
                Some(v) => Some((SecretSource::Env(var.clone()), Some(v.into()))),
                None => {
                    self.problem(loc, format!("environment variable {var} is not set"));
                    None
                }
            },
            (None, Some(file), None) => {
                let path = self.base_dir.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(v) if v.trim().is_empty() => {
                        self.problem(loc, format!("{} is empty", path.display()));
                        None
                    }
                    Ok(v) => Some((
                        SecretSource::File(path),
                        Some(v.trim_end().to_owned().into()),
                    )),
                    Err(e) => {
                        self.problem(loc, format!("cannot read {}: {e}", path.display()));
                        None
                    }
                }
            }
            _ => {
                self.problem(loc, "give exactly one of `env`, `file` or `store`");
                None
            }
        }
    }

    pub(super) fn header_name(&mut self, loc: &str, name: &str) -> Option<HeaderName> {
        match HeaderName::try_from(name) {
            Ok(h) => Some(h),
            Err(_) => {
                self.problem(loc, format!("`{name}` is not a valid header name"));
                None
            }
        }
    }
}

/// The environment variable that selects PostgreSQL over the config file.
pub const DATABASE_URL_ENV: &str = "FERRY_DATABASE_URL";

/// The deepest JSON nesting a route accepts, and its default: deeper than
/// any real payload, and as deep as ferry's JSON handling (serde_json
/// values, jq) goes without running out of stack.
pub(super) const MAX_DEPTH: usize = 128;

/// Requests in flight toward one system at once, unless it says otherwise.
const DEFAULT_WORKERS: usize = 32;

pub fn resolve(
    raw: RawConfig,
    base_dir: &Path,
    env: EnvLookup<'_>,
) -> Result<Config, Vec<Problem>> {
    let mut cx = Ctx {
        problems: Vec::new(),
        base_dir,
        env,
        jq_timeout: crate::transform::jq::DEFAULT_TIMEOUT,
    };
    let server = server(&mut cx, &raw.server);
    cx.jq_timeout = server.jq_timeout;
    let retention = retention(&mut cx, &raw);
    let console = console(&mut cx, &raw, &server);
    let credentials = credentials(&mut cx, &raw);
    let mut systems = systems(&mut cx, &raw);
    let mut routes = routes(&mut cx, &raw, &server);
    let alerts = super::alerts::channels(&mut cx, &raw, &mut systems, &mut routes);
    if cx.problems.is_empty() {
        Ok(Config {
            server,
            retention,
            console,
            credentials,
            systems,
            routes,
            alerts,
        })
    } else {
        Err(cx.problems)
    }
}

fn retention(cx: &mut Ctx<'_>, raw: &RawConfig) -> Retention {
    Retention {
        delivered: cx.duration(
            "retention.delivered",
            raw.retention.delivered.as_ref(),
            Duration::from_secs(7 * 86_400),
        ),
        dead: cx.duration(
            "retention.dead",
            raw.retention.dead.as_ref(),
            Duration::from_secs(30 * 86_400),
        ),
    }
}

fn console(cx: &mut Ctx<'_>, raw: &RawConfig, server: &Server) -> Console {
    let c = &raw.console;
    let idle = cx.duration(
        "console.session_idle",
        c.session_idle.as_ref(),
        Duration::from_secs(30 * 60),
    );
    let lifetime = cx.duration(
        "console.session_lifetime",
        c.session_lifetime.as_ref(),
        Duration::from_secs(12 * 3600),
    );
    if idle.is_zero() || lifetime < idle {
        cx.problem(
            "console.session_lifetime",
            "must be at least `console.session_idle`, which must be above zero",
        );
    }
    let mut embed_origins = Vec::new();
    for (i, o) in c.embed_origins.iter().flatten().enumerate() {
        match embed_origin(o) {
            Ok(o) => embed_origins.push(o),
            Err(why) => cx.problem(format!("console.embed_origins[{i}]"), why),
        }
    }
    Console {
        session_idle: idle,
        session_lifetime: lifetime,
        secure_cookies: c.secure_cookies.unwrap_or(false),
        public_url: match &c.public_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                u.trim_end_matches('/').to_owned()
            }
            Some(u) => {
                cx.problem("console.public_url", format!("`{u}` is not an http(s) URL"));
                String::new()
            }
            None => format!("http://{}", server.listen),
        },
        embed_origins,
    }
}

/// An origin a page may be framed by: `http(s)://host[:port]` exactly as
/// a browser serialises it (lower-case host, no default port, no path,
/// query, fragment or user), so it goes into `frame-ancestors` as written
/// and can carry nothing else into the header.
pub(super) fn embed_origin(written: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(written)
        .map_err(|e| format!("`{written}` is not an origin (`https://host[:port]`): {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "`{written}` is not an origin: use `https://host[:port]` (or http)"
        ));
    }
    let origin = url.origin().ascii_serialization();
    if origin != written {
        return Err(format!(
            "`{written}` is not an origin as browsers send it (scheme, host and port only, no path or trailing `/`): write `{origin}`"
        ));
    }
    Ok(origin)
}

fn credentials(cx: &mut Ctx<'_>, raw: &RawConfig) -> BTreeMap<String, Credential> {
    let mut credentials = BTreeMap::new();
    for (name, src) in &raw.credentials {
        if let Some((source, value)) = cx.secret(&format!("credentials.{name}"), src) {
            credentials.insert(
                name.clone(),
                Credential {
                    name: name.clone(),
                    source,
                    value,
                    warn_before: cx.duration(
                        &format!("credentials.{name}.warn_before"),
                        src.warn_before.as_ref(),
                        Duration::from_secs(7 * 86_400),
                    ),
                },
            );
        }
    }
    credentials
}

/// Every system; systems drawing from one credential's budget must agree
/// on what it is.
fn systems(cx: &mut Ctx<'_>, raw: &RawConfig) -> BTreeMap<SystemName, Arc<System>> {
    let known_credential = |n: &str| raw.credentials.contains_key(n);
    let mut systems = BTreeMap::new();
    for (name, s) in &raw.systems {
        let default_concurrency = raw.server.workers.unwrap_or(DEFAULT_WORKERS).max(1);
        if let Some(sys) =
            super::system::system(cx, name, s, default_concurrency, &known_credential)
        {
            systems.insert(sys.name.clone(), Arc::new(sys));
        }
    }
    super::auth::refresh_tokens_in_store(cx, raw, &systems);
    let mut budgets: BTreeMap<&str, &System> = BTreeMap::new();
    for s in systems.values() {
        match budgets.get(s.budget.as_str()) {
            Some(first) if first.rate != s.rate => cx.problem(
                format!("systems.{}.rate_limit", s.name),
                format!(
                    "shares {}'s budget (scope = \"credential\") but declares another per_second or burst",
                    first.name
                ),
            ),
            Some(_) => {}
            None => {
                budgets.insert(&s.budget, s);
            }
        }
    }
    systems
}

/// Every route, named well and sent to a known system; a webhook's body
/// must fit the budget of unverified bytes.
fn routes(cx: &mut Ctx<'_>, raw: &RawConfig, server: &Server) -> BTreeMap<RouteName, Arc<Route>> {
    let known_credential = |n: &str| raw.credentials.contains_key(n);
    let mut routes = BTreeMap::new();
    for (name, r) in &raw.routes {
        let loc = format!("routes.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            cx.problem(
                &loc,
                "route names may only use letters, digits, `-` and `_`",
            );
        }
        if !raw.systems.contains_key(&r.destination.system) {
            cx.problem(
                format!("{loc}.destination.system"),
                format!("unknown system `{}`", r.destination.system),
            );
        }
        if let Some(route) = super::route::route(
            cx,
            name,
            r,
            raw.systems.get(&r.destination.system),
            &known_credential,
        ) {
            routes.insert(route.name.clone(), Arc::new(route));
        }
    }
    for r in routes.values() {
        if matches!(r.source, Source::Webhook { .. })
            && r.max_body > server.edge.max_unverified_bytes
        {
            cx.problem(
                format!("routes.{}.source.max_body", r.name),
                format!(
                    "is larger than server.max_unverified_bytes ({} bytes): no webhook body this large could be read",
                    server.edge.max_unverified_bytes
                ),
            );
        }
    }
    routes
}

fn server(cx: &mut Ctx<'_>, s: &RawServer) -> Server {
    let listen = s.listen.as_deref().unwrap_or("127.0.0.1:8080");
    let listen = listen.parse().unwrap_or_else(|_| {
        cx.problem(
            "server.listen",
            format!("`{listen}` is not an address like 127.0.0.1:8080"),
        );
        ([127, 0, 0, 1], 8080).into()
    });
    let admin_token = s
        .admin_token
        .as_ref()
        .and_then(|src| cx.secret("server.admin_token", src))
        .and_then(|(source, v)| {
            if matches!(source, SecretSource::Store(_)) {
                cx.problem(
                    "server.admin_token",
                    "the admin token comes from `env` or `file`, not the credential store",
                );
            }
            v
        });
    let log_format = match s.log_format.as_deref() {
        None | Some("pretty") => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some(other) => {
            cx.problem(
                "server.log_format",
                format!("`{other}`: use `pretty` or `json`"),
            );
            LogFormat::Pretty
        }
    };
    let workers = s.workers.unwrap_or(DEFAULT_WORKERS);
    if workers == 0 {
        cx.problem("server.workers", "must be at least 1");
    }
    let database_url = (cx.env)(DATABASE_URL_ENV)
        .map(|url| (DATABASE_URL_ENV.to_owned(), url))
        .or_else(|| {
            s.database_url
                .clone()
                .map(|url| ("server.database_url".to_owned(), url))
        });
    let database_url = database_url.and_then(|(loc, url)| match super::database::parse(&url) {
        Ok(_) => Some(SecretString::from(url)),
        Err(e) => {
            cx.problem(loc, format!("not a usable PostgreSQL URL: {e}"));
            None
        }
    });
    let jq_timeout = cx.duration(
        "server.jq_timeout",
        s.jq_timeout.as_ref(),
        crate::transform::jq::DEFAULT_TIMEOUT,
    );
    if jq_timeout.is_zero() {
        cx.problem("server.jq_timeout", "must be more than zero");
    }
    Server {
        jq_timeout,
        listen,
        database_url,
        data_dir: cx
            .base_dir
            .join(s.data_dir.as_deref().unwrap_or("ferry-data")),
        admin_token,
        workers: workers.max(1),
        log_format,
        edge: super::edge::edge(cx, s),
    }
}
