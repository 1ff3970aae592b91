//! Resolving `[alerts.<name>]` channels, and the alert settings of routes
//! (silence: `expect_traffic_every`, `active`) and systems (thresholds:
//! `alert_hold`, `alert_queue_depth`, `alert_oldest_waiting`). Each channel
//! becomes a system and a route of its own, both named `alert:<name>` (a
//! name no user route or system can take): alerts are ferry's own durable
//! messages, delivered by the same workers with the channel's retries,
//! backoff, `Retry-After`, rate limit and circuit breaker, so a failing
//! channel holds only its own queue. Part of `resolve`.

use std::time::Duration;

use axum::http::Method;

use super::raw::*;
use super::resolve::Ctx;
use super::*;
use crate::limits::hours::Hours;

/// Where a channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Slack-compatible incoming webhooks (also Mattermost, Rocket.Chat).
    Slack,
    /// Microsoft Teams Workflows: an Adaptive Card.
    Teams,
    /// PagerDuty Events API v2: trigger and resolve by `dedup_key`.
    PagerDuty,
    /// A JSON webhook signed with Standard Webhooks.
    Webhook,
    /// Email over SMTP.
    Email,
}

impl AlertKind {
    fn parse(s: &str) -> Option<AlertKind> {
        Some(match s {
            "slack" | "mattermost" | "rocketchat" => AlertKind::Slack,
            "teams" => AlertKind::Teams,
            "pagerduty" => AlertKind::PagerDuty,
            "webhook" => AlertKind::Webhook,
            "email" => AlertKind::Email,
            _ => return None,
        })
    }
}

/// What can raise an alert (the names `events` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertEvent {
    Dead,
    CircuitOpened,
    CircuitClosed,
    Hold,
    QueueDepth,
    Silence,
    CredentialExpiring,
    ShadowDiff,
    ReloadRefused,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 9] = [
        AlertEvent::Dead,
        AlertEvent::CircuitOpened,
        AlertEvent::CircuitClosed,
        AlertEvent::Hold,
        AlertEvent::QueueDepth,
        AlertEvent::Silence,
        AlertEvent::CredentialExpiring,
        AlertEvent::ShadowDiff,
        AlertEvent::ReloadRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Dead => "dead",
            AlertEvent::CircuitOpened => "circuit_opened",
            AlertEvent::CircuitClosed => "circuit_closed",
            AlertEvent::Hold => "hold",
            AlertEvent::QueueDepth => "queue_depth",
            AlertEvent::Silence => "silence",
            AlertEvent::CredentialExpiring => "credential_expiring",
            AlertEvent::ShadowDiff => "shadow_diff",
            AlertEvent::ReloadRefused => "reload_refused",
        }
    }

    pub fn parse(s: &str) -> Option<AlertEvent> {
        AlertEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// One alert channel, resolved.
#[derive(Debug, Clone)]
pub struct AlertChannel {
    pub name: String,
    pub kind: AlertKind,
    /// The route and system its alerts are messages of (`alert:<name>`).
    pub route: RouteName,
    /// The channel's secret (PagerDuty routing key, webhook signing
    /// secret, SMTP password), by credential name.
    pub credential: Option<String>,
    /// The events it takes (all when the file lists none).
    pub events: Vec<AlertEvent>,
    /// Only alerts about these routes / systems (none: all).
    pub routes: Vec<String>,
    pub systems: Vec<String>,
    /// At most one follow-up of a firing condition per this interval.
    pub repeat_every: Duration,
}

impl AlertChannel {
    /// Whether the channel takes `event` about `route` / `system`. An alert
    /// about no route (a reload refused) passes a route filter; one about a
    /// route passes a system filter through the route's system.
    pub fn takes(&self, event: AlertEvent, route: Option<&str>, system: Option<&str>) -> bool {
        let of = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_none_or(|v| list.iter().any(|x| x == v))
        };
        self.events.contains(&event) && of(&self.routes, route) && of(&self.systems, system)
    }
}

/// Where an email channel submits (`connect::smtp` checks the rest when
/// it builds the channel's mailer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChannel {
    /// `smtp://host:587` (STARTTLS), `smtps://host:465` (implicit TLS),
    /// `smtp+plain://127.0.0.1:2525` (loopback only).
    pub url: String,
    pub from: String,
    pub to: Vec<String>,
    pub ca_file: Option<std::path::PathBuf>,
    pub username: Option<String>,
    /// The credential holding the SMTP password.
    pub password: Option<String>,
}

/// A route's silence detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Traffic is expected at least this often.
    pub every: Duration,
    /// Only within these hours (always when `None`).
    pub active: Option<Hours>,
}

/// A system's alert thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertThresholds {
    pub hold: Duration,
    pub queue_depth: u64,
    pub oldest_waiting: Duration,
}

/// The prefix of a channel's route and system.
pub const PREFIX: &str = "alert:";

pub(super) fn thresholds(
    cx: &mut Ctx<'_>,
    loc: &str,
    s: &RawSystem,
    max_queue: u64,
) -> AlertThresholds {
    AlertThresholds {
        hold: cx.duration(
            &format!("{loc}.alert_hold"),
            s.alert_hold.as_ref(),
            Duration::from_secs(300),
        ),
        queue_depth: s.alert_queue_depth.unwrap_or(max_queue / 2).max(1),
        oldest_waiting: cx.duration(
            &format!("{loc}.alert_oldest_waiting"),
            s.alert_oldest_waiting.as_ref(),
            Duration::from_secs(900),
        ),
    }
}

pub(super) fn silence(cx: &mut Ctx<'_>, loc: &str, r: &RawRoute) -> Option<Silence> {
    let active = r.active.as_deref().and_then(|a| match Hours::parse(a) {
        Ok(h) => Some(h),
        Err(e) => {
            cx.problem(format!("{loc}.active"), e);
            None
        }
    });
    let Some(every) = &r.expect_traffic_every else {
        if r.active.is_some() {
            cx.problem(format!("{loc}.active"), "needs `expect_traffic_every`");
        }
        return None;
    };
    let every = cx.duration(
        &format!("{loc}.expect_traffic_every"),
        Some(every),
        Duration::ZERO,
    );
    if every.is_zero() {
        cx.problem(format!("{loc}.expect_traffic_every"), "must be above zero");
        return None;
    }
    Some(Silence { every, active })
}

/// The channels, and each one's system and route, added to `systems` and
/// `routes`.
pub(super) fn channels(
    cx: &mut Ctx<'_>,
    raw: &RawConfig,
    systems: &mut BTreeMap<SystemName, Arc<System>>,
    routes: &mut BTreeMap<RouteName, Arc<Route>>,
) -> BTreeMap<String, Arc<AlertChannel>> {
    let mut out = BTreeMap::new();
    for (name, a) in &raw.alerts {
        let loc = format!("alerts.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            cx.problem(
                &loc,
                "alert channel names may only use letters, digits, `-` and `_`",
            );
            continue;
        }
        let Some(kind) = AlertKind::parse(&a.kind) else {
            cx.problem(
                format!("{loc}.kind"),
                format!(
                    "`{}`: use slack, teams, pagerduty, webhook or email",
                    a.kind
                ),
            );
            continue;
        };
        if let Some(c) = &a.credential
            && !raw.credentials.contains_key(c)
        {
            cx.problem(
                format!("{loc}.credential"),
                format!("unknown credential `{c}`"),
            );
        }
        let needs_secret = matches!(kind, AlertKind::PagerDuty | AlertKind::Webhook);
        if needs_secret && a.credential.is_none() {
            cx.problem(
                format!("{loc}.credential"),
                match kind {
                    AlertKind::PagerDuty => {
                        "names the credential holding the PagerDuty routing key"
                    }
                    _ => "names the credential holding the webhook's signing secret (whsec_...)",
                },
            );
        }
        let mut events = Vec::new();
        for e in a.events.iter().flatten() {
            match AlertEvent::parse(e) {
                Some(ev) => events.push(ev),
                None => cx.problem(
                    format!("{loc}.events"),
                    format!(
                        "unknown event `{e}`: use {}",
                        AlertEvent::ALL.map(|e| e.as_str()).join(", ")
                    ),
                ),
            }
        }
        if events.is_empty() {
            events = AlertEvent::ALL.to_vec();
        }
        for r in a.routes.iter().flatten() {
            if !raw.routes.contains_key(r) {
                cx.problem(format!("{loc}.routes"), format!("unknown route `{r}`"));
            }
        }
        for s in a.systems.iter().flatten() {
            if !raw.systems.contains_key(s) {
                cx.problem(format!("{loc}.systems"), format!("unknown system `{s}`"));
            }
        }
        let url = match (&a.url, kind) {
            (Some(u), _) => u.clone(),
            (None, AlertKind::PagerDuty) => "https://events.pagerduty.com/v2/enqueue".to_owned(),
            (None, _) => {
                cx.problem(
                    format!("{loc}.url"),
                    "is required: where the channel's alerts go",
                );
                continue;
            }
        };
        let email = if kind == AlertKind::Email {
            match email(cx, &loc, &url, a) {
                Some(e) => Some(Arc::new(e)),
                None => continue,
            }
        } else {
            None
        };
        let repeat_every = cx.duration(
            &format!("{loc}.repeat_every"),
            a.repeat_every.as_ref(),
            Duration::from_secs(15 * 60),
        );
        let channel = format!("{PREFIX}{name}");
        let raw_system = RawSystem {
            // An email channel's system never speaks HTTP: its base URL
            // is shown, not used.
            base_url: if email.is_some() {
                "http://127.0.0.1".to_owned()
            } else {
                url.clone()
            },
            auth: (kind == AlertKind::Webhook).then(|| RawAuth {
                kind: "standard-webhooks".into(),
                credential: a.credential.clone(),
                ..Default::default()
            }),
            timeout: Some("10s".into()),
            rate_limit: Some(RawRateLimit {
                per_second: Some(a.per_second.unwrap_or(1.0)),
                burst: Some(a.burst.unwrap_or(5)),
                max_concurrency: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let known = |n: &str| raw.credentials.contains_key(n);
        let Some(mut system) = super::system::system(cx, &channel, &raw_system, 2, &known) else {
            continue;
        };
        if email.is_some() {
            system.base_url = url;
            system.email = email;
        }
        systems.insert(system.name.clone(), Arc::new(system));
        routes.insert(
            channel.as_str().into(),
            Arc::new(Route {
                name: channel.as_str().into(),
                source: Source::Alerts,
                destination: Destination {
                    system: channel.as_str().into(),
                    method: Method::POST,
                    path: String::new(),
                    headers: vec![(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    ordering_key: None,
                    entity_key: None,
                    batch: None,
                    priority: Priority::Normal,
                },
                max_body: 1 << 20,
                max_depth: super::resolve::MAX_DEPTH,
                transform: crate::transform::Transform::Passthrough,
                shadow: None,
                silence: None,
            }),
        );
        out.insert(
            name.clone(),
            Arc::new(AlertChannel {
                name: name.clone(),
                kind,
                route: channel.as_str().into(),
                credential: a.credential.clone(),
                events,
                routes: a.routes.clone().unwrap_or_default(),
                systems: a.systems.clone().unwrap_or_default(),
                repeat_every,
            }),
        );
    }
    out
}

fn email(cx: &mut Ctx<'_>, loc: &str, url: &str, a: &RawAlert) -> Option<EmailChannel> {
    if !["smtp://", "smtps://", "smtp+plain://"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        cx.problem(
            format!("{loc}.url"),
            format!("`{url}`: an email channel's url is smtp://host:587 (STARTTLS), smtps://host:465 or smtp+plain://127.0.0.1:port"),
        );
        return None;
    }
    let to = a.to.clone().unwrap_or_default();
    let (Some(from), false) = (a.from.clone(), to.is_empty()) else {
        cx.problem(
            loc,
            "an email channel needs `from` and `to` (a list of addresses)",
        );
        return None;
    };
    Some(EmailChannel {
        url: url.to_owned(),
        from,
        to,
        ca_file: a.ca_file.as_ref().map(|f| cx.base_dir.join(f)),
        username: a.username.clone(),
        password: a.credential.clone(),
    })
}
