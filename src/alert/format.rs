//! Each channel kind's body for an alert, firing or resolved: Slack's
//! `{"text","blocks"}` (Mattermost and Rocket.Chat read `text`), a Teams
//! Workflows message with an Adaptive Card, a PagerDuty Events API v2
//! event (`trigger` / `resolve` under one stable `dedup_key` per
//! condition), and ferry's own JSON for a generic webhook (signed with
//! Standard Webhooks by the channel's system). Every alert carries the
//! plain-language reason, the suggested fix, the count and a deep link.

use serde_json::{Value, json};

use super::Condition;
use crate::config::{AlertEvent, AlertKind};

/// An alert as sent: the condition, whether it fires or resolves, and
/// whether it follows an earlier one.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    pub condition: &'a Condition,
    pub resolved: bool,
    pub follow_up: bool,
    /// The deep link, absolute.
    pub link: String,
    pub at_ms: i64,
}

impl Alert<'_> {
    /// The event this alert is sent as.
    pub fn event(&self) -> AlertEvent {
        match (self.resolved, self.condition.resolved_as) {
            (true, Some(e)) => e,
            _ => self.condition.event,
        }
    }

    fn headline(&self) -> String {
        let c = self.condition;
        match (self.resolved, self.follow_up) {
            (true, _) => format!("Resolved: {}", c.title),
            (false, true) => format!("Still happening ({} so far): {}", c.count, c.title),
            (false, false) => c.title.clone(),
        }
    }

    /// PagerDuty's `dedup_key`: one per condition, so trigger and resolve
    /// meet.
    pub fn dedup_key(&self) -> String {
        format!("ferry:{}", self.condition.key)
    }
}

/// The body toward `kind`; `secret` is PagerDuty's routing key.
pub fn body(kind: AlertKind, a: &Alert<'_>, secret: Option<&str>) -> Value {
    match kind {
        AlertKind::Slack => slack(a),
        AlertKind::Teams => teams(a),
        AlertKind::PagerDuty => pagerduty(a, secret.unwrap_or_default()),
        AlertKind::Webhook => webhook(a),
        AlertKind::Email => email(a),
    }
}

fn details(a: &Alert<'_>) -> Vec<(&'static str, String)> {
    let c = a.condition;
    let mut out = vec![("Event", a.event().as_str().to_owned())];
    if let Some(r) = &c.route {
        out.push(("Route", r.clone()));
    }
    if let Some(s) = &c.system {
        out.push(("System", s.clone()));
    }
    out.push(("Count", c.count.to_string()));
    out
}

fn slack(a: &Alert<'_>) -> Value {
    let c = a.condition;
    let icon = if a.resolved {
        ":white_check_mark:"
    } else {
        ":rotating_light:"
    };
    let text = format!(
        "{icon} {}\n{}\nFix: {}\n{}",
        a.headline(),
        c.reason,
        c.hint,
        a.link
    );
    let fields: Vec<Value> = details(a)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
        .collect();
    json!({
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&a.headline(), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{}\n*Fix:* {}", c.reason, c.hint)}},
            {"type": "section", "fields": fields},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in ferry"}, "url": a.link}
            ]}
        ]
    })
}

fn teams(a: &Alert<'_>) -> Value {
    let c = a.condition;
    let facts: Vec<Value> = details(a)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                     "color": if a.resolved { "Good" } else { "Attention" }, "text": a.headline()},
                    {"type": "TextBlock", "wrap": true, "text": c.reason},
                    {"type": "TextBlock", "wrap": true, "isSubtle": true, "text": format!("Fix: {}", c.hint)},
                    {"type": "FactSet", "facts": facts}
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in ferry", "url": a.link}]
            }
        }]
    })
}

fn pagerduty(a: &Alert<'_>, routing_key: &str) -> Value {
    let c = a.condition;
    if a.resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": a.dedup_key(),
        });
    }
    let severity = match c.event {
        AlertEvent::Dead | AlertEvent::CircuitOpened | AlertEvent::Silence => "error",
        _ => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": a.dedup_key(),
        "payload": {
            "summary": truncate(&a.headline(), 1024),
            "source": "ferry",
            "severity": severity,
            "component": c.system,
            "group": c.route,
            "class": c.event.as_str(),
            "custom_details": {"reason": c.reason, "fix": c.hint, "count": c.count, "link": a.link},
        },
        "links": [{"href": a.link, "text": "Open in ferry"}],
        "client": "ferry",
        "client_url": a.link,
    })
}

fn webhook(a: &Alert<'_>) -> Value {
    let c = a.condition;
    json!({
        "type": if a.resolved { "alert.resolved" } else { "alert.firing" },
        "event": a.event().as_str(),
        "key": c.key,
        "follow_up": a.follow_up,
        "title": a.headline(),
        "reason": c.reason,
        "fix": c.hint,
        "count": c.count,
        "route": c.route,
        "system": c.system,
        "link": a.link,
        "at_ms": a.at_ms,
    })
}

/// `connect::smtp::Email`'s JSON: a subject, a text and an HTML part.
fn email(a: &Alert<'_>) -> Value {
    let c = a.condition;
    let facts: String = details(a)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    let text = format!(
        "{}\n\n{}\n\nFix: {}\n\n{facts}\n{}\n",
        a.headline(),
        c.reason,
        c.hint,
        a.link
    );
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let html = format!(
        "<h2>{}</h2><p>{}</p><p><strong>Fix:</strong> {}</p><p><a href=\"{}\">Open in ferry</a></p>",
        esc(&a.headline()),
        esc(&c.reason),
        esc(&c.hint),
        esc(&a.link)
    );
    json!({
        "subject": format!("[ferry] {}", truncate(&a.headline(), 180)),
        "text": text,
        "html": html,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond() -> Condition {
        Condition {
            key: "circuit:erp".into(),
            event: AlertEvent::CircuitOpened,
            resolved_as: Some(AlertEvent::CircuitClosed),
            route: None,
            system: Some("erp".into()),
            title: "erp's circuit opened".into(),
            reason: "9 of 10 requests failed".into(),
            hint: "check erp".into(),
            count: 1,
            link: "/console/systems".into(),
        }
    }

    #[test]
    fn every_kind_carries_reason_fix_and_link() {
        let c = cond();
        let a = Alert {
            condition: &c,
            resolved: false,
            follow_up: false,
            link: "https://ferry.example/console/systems".into(),
            at_ms: 1,
        };
        for kind in [
            AlertKind::Slack,
            AlertKind::Teams,
            AlertKind::PagerDuty,
            AlertKind::Webhook,
        ] {
            let text = body(kind, &a, Some("R0UT1NG")).to_string();
            for part in [
                "9 of 10 requests failed",
                "check erp",
                "https://ferry.example/console/systems",
            ] {
                assert!(text.contains(part), "{kind:?}: {part} in {text}");
            }
        }
        let pd = body(AlertKind::PagerDuty, &a, Some("R0UT1NG"));
        assert_eq!(pd["event_action"], "trigger");
        assert_eq!(pd["dedup_key"], "ferry:circuit:erp");
        assert_eq!(pd["routing_key"], "R0UT1NG");
        let resolved = Alert {
            resolved: true,
            ..a.clone()
        };
        let pd = body(AlertKind::PagerDuty, &resolved, Some("R0UT1NG"));
        assert_eq!(
            (pd["event_action"].as_str(), pd["dedup_key"].as_str()),
            (Some("resolve"), Some("ferry:circuit:erp"))
        );
        assert_eq!(resolved.event(), AlertEvent::CircuitClosed);
        assert_eq!(
            body(AlertKind::Webhook, &resolved, None)["event"],
            "circuit_closed"
        );
        assert!(
            body(AlertKind::Slack, &resolved, None)["text"]
                .as_str()
                .unwrap()
                .contains("Resolved")
        );
    }
}
