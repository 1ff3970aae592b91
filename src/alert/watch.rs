//! The alert watcher: every second, the conditions now ([`conditions`]),
//! each channel's decision against its stored state (`alert::decide`), and
//! the alerts that follow as messages of the channel's route. Runs in every
//! instance: two instances deciding the same alert write the same dedupe
//! key (`alert:<channel>:<condition>#<seq>`), and the store keeps one.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::conditions::conditions;
use super::format::{Alert, body};
use super::{Condition, Decision, decide};
use crate::config::{AlertChannel, AlertEvent, Config};
use crate::model::{Chain, MessageId};
use crate::state::Shared;
use crate::store::{AlertState, DedupeKey, NewMessage, StoreError};

/// How often the watcher looks.
pub const EVERY: Duration = Duration::from_secs(1);

/// How long an alert's dedupe key is kept.
const DEDUPE_MS: i64 = 7 * 86_400_000;

/// The watcher of one instance.
pub struct Watcher {
    /// Silence is counted from here for a route that has had no message
    /// since: a fresh start is not a silence.
    started_ms: i64,
}

/// What one look did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Looked {
    pub sent: usize,
    pub suppressed: usize,
    pub resolved: usize,
}

impl Watcher {
    pub fn new(now_ms: i64) -> Watcher {
        Watcher { started_ms: now_ms }
    }

    /// Looks every [`EVERY`] until `shutdown`.
    pub async fn run(self, app: crate::state::AppState, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if app.config().alerts.is_empty() {
                continue;
            }
            if let Err(e) = self.look(&app).await {
                tracing::warn!(error = %Chain(&e), "The alert watcher could not look; it tries again in a second.");
            }
        }
    }

    /// One look: conditions, decisions, alerts.
    pub async fn look(&self, app: &Shared) -> Result<Looked, StoreError> {
        let config = app.config();
        let now = app.clock.now_ms();
        let conditions = conditions(app, &config, now, self.started_ms).await?;
        let states: BTreeMap<(String, String), AlertState> = app
            .store
            .alert_states()
            .await?
            .into_iter()
            .map(|s| ((s.channel.clone(), s.key.clone()), s))
            .collect();
        let mut looked = Looked::default();
        for channel in config.alerts.values() {
            let repeat = channel.repeat_every.as_millis() as i64;
            let mine: BTreeMap<&str, &Condition> = conditions
                .iter()
                .filter(|c| takes(channel, c))
                .map(|c| (c.key.as_str(), c))
                .collect();
            let mut keys: Vec<&str> = mine.keys().copied().collect();
            keys.extend(
                states
                    .iter()
                    .filter(|((ch, k), s)| {
                        ch == &channel.name && s.firing && !mine.contains_key(k.as_str())
                    })
                    .map(|((_, k), _)| k.as_str()),
            );
            for key in keys {
                let prev = states.get(&(channel.name.clone(), key.to_owned()));
                let current = mine.get(key).copied();
                let (decision, next) = decide(&channel.name, key, prev, current, now, repeat);
                let Some(next) = next else { continue };
                match decision {
                    Decision::Nothing => continue,
                    Decision::Suppress => {
                        let before = prev.map_or(0, |p| p.suppressed);
                        app.metrics.alert_suppressed(
                            &channel.name,
                            (next.suppressed - before).max(0) as u64,
                        );
                        looked.suppressed += 1;
                    }
                    Decision::Fire | Decision::FollowUp | Decision::Resolve => {
                        // A resolve repeats the condition as it was last seen.
                        let fallback;
                        let condition = match current {
                            Some(c) => c,
                            None => {
                                fallback = cleared(key, prev);
                                &fallback
                            }
                        };
                        let resolved = decision == Decision::Resolve;
                        let alert = Alert {
                            condition,
                            resolved,
                            follow_up: decision == Decision::FollowUp,
                            link: format!("{}{}", config.console.public_url, condition.link),
                            at_ms: now,
                        };
                        // What the channel does not take (a circuit's
                        // closing, say) only moves its state on.
                        if channel.events.contains(&alert.event()) {
                            send(app, &config, channel, &alert, next.seq).await?;
                            app.metrics
                                .alert_sent(&channel.name, alert.event().as_str());
                        }
                        if resolved {
                            looked.resolved += 1;
                        } else {
                            looked.sent += 1;
                        }
                    }
                }
                app.store.set_alert_state(next).await?;
            }
        }
        if looked.sent + looked.resolved > 0 {
            app.wake.notify();
        }
        Ok(looked)
    }
}

/// Whether `channel` takes condition `c`: its events (the firing one, or
/// the one its resolve is sent as), routes and systems, and never its own
/// failures (an alert about a channel goes to the others).
fn takes(channel: &AlertChannel, c: &Condition) -> bool {
    let own = channel.route.as_str();
    if c.route.as_deref() == Some(own) || c.system.as_deref() == Some(own) {
        return false;
    }
    let (route, system) = (c.route.as_deref(), c.system.as_deref());
    channel.takes(c.event, route, system)
        || c.resolved_as
            .is_some_and(|e| channel.takes(e, route, system))
}

/// A condition that has cleared, for its resolve: only its key is known.
fn cleared(key: &str, _prev: Option<&AlertState>) -> Condition {
    let (kind, what) = key.split_once(':').unwrap_or((key, ""));
    let (event, resolved_as, link) = match kind {
        "dead" => (AlertEvent::Dead, None, format!("/console/failures/{what}")),
        "circuit" => (
            AlertEvent::CircuitOpened,
            Some(AlertEvent::CircuitClosed),
            "/console/systems".to_owned(),
        ),
        "hold" => (AlertEvent::Hold, None, "/console/systems".to_owned()),
        "queue" => (AlertEvent::QueueDepth, None, "/console/systems".to_owned()),
        "silence" => (
            AlertEvent::Silence,
            None,
            format!("/console/messages?route={what}"),
        ),
        "shadow" => (AlertEvent::ShadowDiff, None, "/console/mappings".to_owned()),
        "credential" => (
            AlertEvent::CredentialExpiring,
            None,
            "/console/credentials".to_owned(),
        ),
        _ => (
            AlertEvent::ReloadRefused,
            None,
            "/console/config".to_owned(),
        ),
    };
    let on_route = matches!(kind, "dead" | "silence" | "shadow");
    Condition {
        key: key.to_owned(),
        event,
        resolved_as,
        route: (on_route && kind != "dead").then(|| what.to_owned()),
        system: matches!(kind, "circuit" | "hold" | "queue").then(|| what.to_owned()),
        title: format!("{} cleared ({what})", event.as_str().replace('_', " ")),
        reason: "The condition that raised this alert is over.".to_owned(),
        hint: "Nothing to do.".to_owned(),
        count: 0,
        link,
    }
}

/// Accepts the alert as a message of the channel's route.
async fn send(
    app: &Shared,
    config: &Config,
    channel: &AlertChannel,
    alert: &Alert<'_>,
    seq: i64,
) -> Result<(), StoreError> {
    let secret = channel
        .credential
        .as_ref()
        .and_then(|c| config.credentials.get(c))
        .and_then(|c| c.value.as_ref())
        .map(|v| secrecy::ExposeSecret::expose_secret(v).to_owned());
    let text = body(channel.kind, alert, secret.as_deref()).to_string();
    let dedupe = format!("{}:{}#{seq}", channel.route, alert.condition.key);
    let now = app.clock.now_ms();
    let msg = NewMessage {
        id: MessageId::generate(),
        route: channel.route.clone(),
        system: channel.route.as_str().into(),
        received_ms: now,
        event_id: Some(dedupe.clone()),
        headers: r#"{"content-type":"application/json"}"#.into(),
        body: Bytes::from(text),
        delivery_key: crate::access::sha256_hex(&dedupe)[..32].to_owned(),
        dedupe: Some(DedupeKey {
            key: dedupe,
            expires_ms: now + DEDUPE_MS,
        }),
        idempotency: None,
        // A condition's alerts go out in order: a resolve after its trigger.
        ordering_key: Some(alert.condition.key.clone()),
        entity_key: None,
        job_id: None,
    };
    app.store.accept(msg).await?;
    Ok(())
}
