//! The console's read-only pages: the audit log, routes (where each comes
//! from, where it goes, its mapping and counts), systems (circuit, hold,
//! request budget, daily quota, in-flight limit, queue), mappings and
//! their shadow comparisons, credentials (sources and versions, never a
//! value) and the running configuration with the last reload's result.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::{ago, count, rate, time, url_part};
use super::session::ConsoleUser;
use super::{Chrome, PageError, html};
use crate::config::{Auth, SecretSource, Source};
use crate::state::AppState;
use crate::store::{AuditEntry, RouteStats};
use crate::transform::{Emits, Transform};

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditRow>,
}

/// An audit entry as the page shows it: its time, and the page of what it
/// acted on when there is one.
pub struct AuditRow {
    pub at: String,
    pub e: AuditEntry,
    pub link: Option<String>,
}

impl AuditRow {
    pub fn of(e: AuditEntry) -> AuditRow {
        let message_id = e.target.len() == 36 && e.target.matches('-').count() == 4;
        let link = match e.action.as_str() {
            "retry" | "discard" | "edit" if message_id => {
                Some(format!("/console/messages/{}", e.target))
            }
            "group_status" => Some(format!("/console/failures/{}", url_part(&e.target))),
            _ => None,
        };
        AuditRow {
            at: time(e.at_ms),
            e,
            link,
        }
    }
}

pub async fn audit(
    State(app): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let entries = app
        .store
        .audit_log(q.limit.unwrap_or(200).min(1000))
        .await?;
    html(&AuditPage {
        chrome: Chrome::new(&user, "audit"),
        entries: entries.into_iter().map(AuditRow::of).collect(),
    })
}

struct RouteRow {
    name: String,
    source: String,
    destination: String,
    transform: String,
    ordering: bool,
    batch: bool,
    stats: RouteStats,
}

#[derive(Template)]
#[template(path = "console/routes.html")]
struct RoutesPage {
    chrome: Chrome,
    routes: Vec<RouteRow>,
}

fn transform_text(t: &Transform) -> String {
    match t {
        Transform::Passthrough => "passthrough".to_owned(),
        Transform::Mapping(m) => format!(
            "{} ({})",
            m.file.display(),
            match m.emits {
                Emits::Body => "body",
                Emits::Request => "request",
            }
        ),
    }
}

pub async fn routes(State(app): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    let stats = app.store.stats().await?;
    let config = app.config();
    let routes = config
        .routes
        .values()
        .map(|r| RouteRow {
            name: r.name.to_string(),
            source: match &r.source {
                Source::Webhook { scheme, .. } => format!("webhook ({})", scheme.name()),
                Source::Api { .. } => "ERP API".to_owned(),
                Source::Alerts => "ferry's alerts".to_owned(),
            },
            destination: format!(
                "{} {} {}",
                r.destination.system, r.destination.method, r.destination.path
            ),
            transform: transform_text(&r.transform),
            ordering: r.destination.ordering_key.is_some(),
            batch: r.destination.batch.is_some(),
            stats: stats
                .iter()
                .find(|s| s.route == r.name.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    html(&RoutesPage {
        chrome: Chrome::new(&user, "routes"),
        routes,
    })
}

struct SystemRow {
    name: String,
    base_url: String,
    api_version: String,
    auth: &'static str,
    circuit: String,
    hold: Option<String>,
    rate: String,
    quota: Option<String>,
    concurrency: String,
    queued: String,
}

#[derive(Template)]
#[template(path = "console/systems.html")]
struct SystemsPage {
    chrome: Chrome,
    systems: Vec<SystemRow>,
}

fn auth_kind(a: &Auth) -> &'static str {
    match a {
        Auth::None => "none",
        Auth::Basic { .. } => "basic",
        Auth::Bearer { .. } => "bearer",
        Auth::Header { .. } => "header",
        Auth::StandardWebhooks { .. } => "standard-webhooks",
        Auth::OAuth2(_) => "oauth2",
    }
}

pub async fn systems(
    State(app): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, PageError> {
    let depths = app.store.queue_depth().await?;
    let now = app.clock.now_ms();
    let config = app.config();
    let systems = config
        .systems
        .values()
        .map(|s| {
            let queued: u64 = depths
                .iter()
                .filter(|d| d.system == s.name)
                .map(|d| d.depth)
                .sum();
            let circuit = match app.breakers.status(&s.name, now) {
                None => "closed (no breaker)".to_owned(),
                Some(b) => format!(
                    "{} since {} · {} failures in {} requests{}",
                    b.state.as_str(),
                    ago(b.since_ms, now),
                    b.window_failures,
                    b.window_requests,
                    b.probe_at_ms
                        .map(|p| format!(" · next probe {}", ago(p, now)))
                        .unwrap_or_default()
                ),
            };
            SystemRow {
                name: s.name.to_string(),
                base_url: s.base_url.clone(),
                api_version: s.api_version.clone().unwrap_or_default(),
                auth: auth_kind(&s.auth),
                circuit,
                hold: app.holds.current(&s.name, now).map(|h| h.explain(&s.name)),
                rate: match s.rate {
                    Some(r) => format!("{} (budget {})", rate(&r), s.budget),
                    None => "no rate limit".to_owned(),
                },
                quota: app.quotas.status(&s.name, now).map(|q| {
                    let used = match (q.used, q.limit) {
                        (Some(u), Some(l)) => format!("{} of {} used", count(u), count(l)),
                        _ => "not reported yet".to_owned(),
                    };
                    match q.low_paused_until_ms {
                        Some(t) => format!("{used}; low-priority routes wait until {}", time(t)),
                        None => used,
                    }
                }),
                concurrency: format!(
                    "{} of {}{}",
                    app.concurrency.limit(s),
                    s.max_concurrency,
                    if s.adaptive { " (adaptive)" } else { "" }
                ),
                queued: count(queued),
            }
        })
        .collect();
    html(&SystemsPage {
        chrome: Chrome::new(&user, "systems"),
        systems,
    })
}

struct MappingRow {
    route: String,
    system: String,
    api_version: String,
    live: String,
    next_version: Option<String>,
    next: Option<String>,
    compared: u64,
    differing: u64,
    not_compared: u64,
    since: Option<String>,
    examples: Vec<(String, String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "console/mappings.html")]
struct MappingsPage {
    chrome: Chrome,
    mappings: Vec<MappingRow>,
}

pub async fn mappings(
    State(app): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, PageError> {
    let config = app.config();
    let mappings = config
        .routes
        .values()
        .filter(|r| r.transform.mapping().is_some() || r.shadow.is_some())
        .map(|r| {
            let system = config.systems.get(&r.destination.system);
            let next = r.shadow.as_ref().map(|m| m.file.display().to_string());
            let stats = app
                .shadows
                .view(&r.name)
                .filter(|s| Some(s.mapping.display().to_string()) == next);
            MappingRow {
                route: r.name.to_string(),
                system: r.destination.system.to_string(),
                api_version: system
                    .and_then(|s| s.api_version.clone())
                    .unwrap_or_default(),
                live: transform_text(&r.transform),
                next_version: system.and_then(|s| s.next_api_version.clone()),
                next,
                compared: stats.as_ref().map_or(0, |s| s.compared),
                differing: stats.as_ref().map_or(0, |s| s.differing),
                not_compared: stats.as_ref().map_or(0, |s| s.not_compared),
                since: stats.as_ref().map(|s| time(s.since_ms)),
                examples: stats
                    .map(|s| {
                        s.examples
                            .iter()
                            .map(|e| {
                                (
                                    e.message_id.to_string(),
                                    time(e.at_ms),
                                    e.changes.iter().map(ToString::to_string).collect(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    html(&MappingsPage {
        chrome: Chrome::new(&user, "mappings"),
        mappings,
    })
}

struct CredentialRow {
    name: String,
    source: String,
    /// (version, created, expires, accepted until, last used)
    versions: Vec<(i64, String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
struct CredentialsPage {
    chrome: Chrome,
    credentials: Vec<CredentialRow>,
}

pub async fn credentials(
    State(app): State<AppState>,
    user: ConsoleUser,
) -> Result<Response, PageError> {
    let config = app.config();
    let now = app.clock.now_ms();
    let stored = match config.store_credentials().next() {
        Some(_) => app.store.credential_versions().await?,
        None => Vec::new(),
    };
    let never = || "—".to_owned();
    let credentials = config
        .credentials
        .values()
        .map(|c| match &c.source {
            SecretSource::Env(var) => CredentialRow {
                name: c.name.clone(),
                source: format!("environment variable {var}"),
                versions: Vec::new(),
            },
            SecretSource::File(path) => CredentialRow {
                name: c.name.clone(),
                source: format!("file {}", path.display()),
                versions: Vec::new(),
            },
            SecretSource::Store(name) => CredentialRow {
                name: c.name.clone(),
                source: format!("credential store: {name}"),
                versions: stored
                    .iter()
                    .rev()
                    .filter(|v| &v.name == name && v.retire_ms.is_none_or(|r| now < r))
                    .map(|v| {
                        (
                            v.version,
                            time(v.created_ms),
                            v.expires_ms.map(time).unwrap_or_else(never),
                            v.retire_ms
                                .map(|r| format!("{} ({})", time(r), ago(r, now)))
                                .unwrap_or_else(|| "newest".to_owned()),
                            v.last_used_ms.map(|t| ago(t, now)).unwrap_or_else(never),
                        )
                    })
                    .collect(),
            },
        })
        .collect();
    html(&CredentialsPage {
        chrome: Chrome::new(&user, "credentials"),
        credentials,
    })
}

#[derive(Template)]
#[template(path = "console/config.html")]
struct ConfigPage {
    chrome: Chrome,
    file: Option<String>,
    hash: Option<String>,
    loaded: Option<String>,
    /// (when, result, reason)
    last_reload: Option<(String, String, String)>,
    restart_needed: Vec<&'static str>,
    backend: &'static str,
    listen: String,
    routes: usize,
    systems: usize,
}

pub async fn config(State(app): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    let config = app.config();
    let status = app.reloads.get().map(|r| r.status());
    html(&ConfigPage {
        chrome: Chrome::new(&user, "config"),
        file: status.as_ref().map(|s| s.file.display().to_string()),
        hash: status.as_ref().map(|s| s.hash.clone()),
        loaded: status.as_ref().map(|s| time(s.loaded_ms)),
        last_reload: status
            .as_ref()
            .and_then(|s| s.last_reload.as_ref())
            .map(|l| {
                (
                    time(l.at_ms),
                    l.result.to_owned(),
                    l.reason.clone().unwrap_or_default(),
                )
            }),
        restart_needed: status
            .as_ref()
            .map(|s| s.restart_needed.clone())
            .unwrap_or_default(),
        backend: app.store.backend(),
        listen: config.server.listen.to_string(),
        routes: config.routes.len(),
        systems: config.systems.len(),
    })
}
