//! The conditions the watcher looks at, now: failure groups not resolved
//! (never an alert channel's own), circuits not closed, holds and queues
//! past a system's `alert_*` thresholds, routes silent past
//! `expect_traffic_every` within their `active` hours (counted across
//! instances through the store), shadow mappings that differ, and a
//! refused reload. Each is keyed by what it is about, so it is alerted and
//! resolved as one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Condition;
use crate::config::{AlertEvent, Config};
use crate::limits::breaker::CircuitState;
use crate::state::Shared;
use crate::store::{GroupFilter, GroupStatus, StoreError};

/// Everything that should make someone act, now.
pub async fn conditions(
    app: &Shared,
    config: &Config,
    now: i64,
    started_ms: i64,
) -> Result<Vec<Condition>, StoreError> {
    let mut out = Vec::new();
    let prefix = crate::config::alerts::PREFIX;
    for g in app.store.failure_groups(&GroupFilter::default()).await? {
        if g.status == GroupStatus::Resolved || g.count == 0 || g.route.starts_with(prefix) {
            continue;
        }
        out.push(Condition {
            key: format!("dead:{}", g.key),
            event: AlertEvent::Dead,
            resolved_as: None,
            route: Some(g.route.clone()),
            system: Some(g.system.clone()),
            title: format!(
                "{} dead on {} → {}: {}",
                g.count, g.route, g.system, g.explanation
            ),
            reason: g.explanation.clone(),
            hint: g.hint.clone(),
            count: g.count,
            link: format!("/console/failures/{}", g.key),
        });
    }
    // What waits, not the dashboard's whole day: this runs every second.
    let waiting_rows = app.store.waiting().await?;
    for s in config.systems.values() {
        let name = s.name.as_str();
        if let Some(b) = app.breakers.status(name, now)
            && b.state != CircuitState::Closed
        {
            out.push(Condition {
                key: format!("circuit:{name}"),
                event: AlertEvent::CircuitOpened,
                resolved_as: Some(AlertEvent::CircuitClosed),
                route: None,
                system: Some(name.to_owned()),
                title: format!("{name}'s circuit is open: ferry stopped sending to it"),
                reason: format!(
                    "{} of the last {} requests to {name} failed (no answer, a timeout or a 5xx).",
                    b.window_failures, b.window_requests
                ),
                hint: format!("Check {name}; ferry probes it and sends again once it answers. Messages wait, nothing is lost."),
                count: 1,
                link: "/console/systems".to_owned(),
            });
        }
        if let Some(h) = app.holds.current(name, now)
            && h.until_ms - now >= s.alert.hold.as_millis() as i64
        {
            out.push(Condition {
                key: format!("hold:{name}"),
                event: AlertEvent::Hold,
                resolved_as: None,
                route: None,
                system: Some(name.to_owned()),
                title: format!(
                    "{name} holds ferry back until {}",
                    crate::deliver::hold::utc_time(h.until_ms)
                ),
                reason: h.explain(name),
                hint: "Nothing is lost; if it lasts, ask the platform for a higher limit."
                    .to_owned(),
                count: 1,
                link: "/console/systems".to_owned(),
            });
        }
        let rows = waiting_rows
            .iter()
            .filter(|(_, system, _, _)| system == name);
        let waiting: u64 = rows.clone().map(|(_, _, n, _)| n).sum();
        let oldest = rows.filter_map(|(_, _, _, oldest)| *oldest).min();
        let too_old = oldest.is_some_and(|t| now - t >= s.alert.oldest_waiting.as_millis() as i64);
        if waiting >= s.alert.queue_depth || too_old {
            out.push(Condition {
                key: format!("queue:{name}"),
                event: AlertEvent::QueueDepth,
                resolved_as: None,
                route: None,
                system: Some(name.to_owned()),
                title: format!("{waiting} messages wait for {name}"),
                reason: format!(
                    "{waiting} messages wait for {name} (alert at {}), the oldest since {}.",
                    s.alert.queue_depth,
                    oldest.map_or_else(|| "-".to_owned(), crate::deliver::hold::utc_time)
                ),
                hint: format!("See why {name} is slow or refusing: its circuit, holds and the messages' last attempts."),
                count: waiting,
                link: format!("/console/messages?system={name}"),
            });
        }
    }
    out.extend(silences(app, config, now, started_ms).await?);
    for r in config.routes.values() {
        if let Some(s) = app.shadows.view(&r.name)
            && s.differing > 0
        {
            out.push(Condition {
                key: format!("shadow:{}", r.name),
                event: AlertEvent::ShadowDiff,
                resolved_as: None,
                route: Some(r.name.to_string()),
                system: Some(r.destination.system.to_string()),
                title: format!(
                    "{}'s next API version maps {} of {} messages differently",
                    r.name, s.differing, s.compared
                ),
                reason: format!(
                    "The shadow mapping {} gives another request than the live one.",
                    s.mapping.display()
                ),
                hint: "Compare the examples on the mappings page before switching api_version."
                    .to_owned(),
                count: s.differing,
                link: "/console/mappings".to_owned(),
            });
        }
    }
    if config.store_credentials().next().is_some() {
        out.extend(expiring(app, config, now).await?);
    }
    if let Some(reloads) = app.reloads.get()
        && let Some(last) = reloads.status().last_reload
        && last.result == "refused"
    {
        out.push(Condition {
            key: "reload:config".to_owned(),
            event: AlertEvent::ReloadRefused,
            resolved_as: None,
            route: None,
            system: None,
            title: "A configuration reload was refused; the previous config still runs".to_owned(),
            reason: last.reason.unwrap_or_default(),
            hint:
                "Fix the file (ferry check-config shows every problem); the next save reloads it."
                    .to_owned(),
            count: 1,
            link: "/console/config".to_owned(),
        });
    }
    Ok(out)
}

/// The store's credentials the config names whose newest version expires
/// within the credential's `warn_before` (or has expired).
async fn expiring(app: &Shared, config: &Config, now: i64) -> Result<Vec<Condition>, StoreError> {
    let window: BTreeMap<&str, i64> = config
        .credentials
        .values()
        .filter_map(|c| match &c.source {
            crate::config::SecretSource::Store(s) => {
                Some((s.as_str(), c.warn_before.as_millis() as i64))
            }
            _ => None,
        })
        .collect();
    let versions = app.store.credential_versions().await?;
    Ok(versions
        .iter()
        .filter(|v| v.retire_ms.is_none())
        .filter_map(|v| Some((v, v.expires_ms?, *window.get(v.name.as_str())?)))
        .filter(|(_, exp, warn)| exp - now <= *warn)
        .map(|(v, exp, _)| (v, exp))
        .map(|(v, exp)| Condition {
            key: format!("credential:{}", v.name),
            event: AlertEvent::CredentialExpiring,
            resolved_as: None,
            route: None,
            system: None,
            title: format!(
                "Credential {} (version {}) expires {}",
                v.name,
                v.version,
                crate::deliver::hold::utc_time(exp)
            ),
            reason: format!(
                "The value stored for {} was set to expire at {}; after that the platform will refuse it.",
                v.name,
                crate::deliver::hold::utc_time(exp)
            ),
            hint: format!(
                "Rotate it: ferry credentials rotate {} --grace 24h (the old value stays accepted during the grace).",
                v.name
            ),
            count: 1,
            link: "/console/credentials".to_owned(),
        })
        .collect())
}

/// Routes with `expect_traffic_every` that have had nothing for longer,
/// within their active hours.
async fn silences(
    app: &Shared,
    config: &Config,
    now: i64,
    started_ms: i64,
) -> Result<Vec<Condition>, StoreError> {
    let watched: Vec<_> = config
        .routes
        .values()
        .filter(|r| r.silence.is_some())
        .collect();
    if watched.is_empty() {
        return Ok(Vec::new());
    }
    let seen = watched
        .iter()
        .filter_map(|r| {
            app.metrics
                .last_received_ms(&r.name)
                .map(|t| (r.name.to_string(), t))
        })
        .collect();
    let newest: BTreeMap<String, i64> = app.store.route_traffic(seen).await?.into_iter().collect();
    let mut out = Vec::new();
    for r in watched {
        let Some(s) = &r.silence else { continue };
        let window = match &s.active {
            Some(h) => match h.window_start(now) {
                Some(start) => start,
                None => continue,
            },
            None => i64::MIN,
        };
        let last = newest.get(r.name.as_str()).copied();
        let since = last.unwrap_or(i64::MIN).max(window).max(started_ms);
        let every = s.every.as_millis() as i64;
        if now - since < every {
            continue;
        }
        let quiet_for = humantime_short(Duration::from_millis(
            (now - last.unwrap_or(started_ms)).max(0) as u64,
        ));
        out.push(Condition {
            key: format!("silence:{}", r.name),
            event: AlertEvent::Silence,
            resolved_as: None,
            route: Some(r.name.to_string()),
            system: Some(r.destination.system.to_string()),
            title: format!("{} has received nothing for {quiet_for}", r.name),
            reason: format!(
                "Route {} expects traffic at least every {}{}; the last message came {}.",
                r.name,
                humantime_short(s.every),
                s.active.as_ref().map(|h| format!(" ({})", h.as_str())).unwrap_or_default(),
                last.map_or_else(|| "before ferry started".to_owned(), crate::deliver::hold::utc_time)
            ),
            hint: "Check that the sender still sends: its webhook subscription, its credentials, its own errors.".to_owned(),
            count: 1,
            link: format!("/console/messages?route={}", r.name),
        });
    }
    Ok(out)
}

/// A duration as people say it: `15m`, `2h`, `45s`.
pub fn humantime_short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}
