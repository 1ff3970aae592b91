//! Alert channels and silence settings as the file gives them.

use std::path::Path;

use super::*;

const BASE: &str = r#"
[credentials]
pd = { env = "PD" }
[systems.erp]
base_url = "http://127.0.0.1:9"
alert_queue_depth = 10
[routes.orders]
source = { kind = "api", credentials = ["pd"] }
destination = { system = "erp", path = "/o" }
expect_traffic_every = "30s"
active = "Mon-Fri 08:00-18:00 Europe/Berlin"
"#;

fn parse(extra: &str) -> Result<Config, ConfigError> {
    let env = |k: &str| (k == "PD").then(|| "routing-key".to_owned());
    Config::parse(&format!("{BASE}{extra}"), "test", Path::new("/tmp"), &env)
}

#[test]
fn a_channel_is_a_system_and_a_route_of_its_own() {
    let cfg = parse(
        r#"
[alerts.pager]
kind = "pagerduty"
credential = "pd"
events = ["dead", "silence"]
routes = ["orders"]
[alerts.mail]
kind = "email"
url = "smtps://mail.example.com:465"
from = "ferry@example.com"
to = ["ops@example.com"]
"#,
    )
    .unwrap();
    let pager = &cfg.alerts["pager"];
    assert_eq!(pager.kind, AlertKind::PagerDuty);
    assert_eq!(pager.events, [AlertEvent::Dead, AlertEvent::Silence]);
    assert!(pager.takes(AlertEvent::Dead, Some("orders"), Some("erp")));
    assert!(!pager.takes(AlertEvent::Hold, None, Some("erp")));
    assert!(cfg.routes.contains_key("alert:pager") && cfg.systems.contains_key("alert:pager"));
    assert_eq!(
        cfg.systems["alert:pager"].base_url,
        "https://events.pagerduty.com/v2/enqueue"
    );
    assert_eq!(
        cfg.alerts["mail"].events.len(),
        AlertEvent::ALL.len(),
        "none listed: all"
    );
    assert!(cfg.systems["alert:mail"].email.is_some());
    let silence = cfg.routes["orders"].silence.as_ref().unwrap();
    assert_eq!(silence.every, std::time::Duration::from_secs(30));
    assert!(silence.active.is_some());
    assert_eq!(cfg.systems["erp"].alert.queue_depth, 10);
}

#[test]
fn bad_channels_say_what_to_fix() {
    let Err(ConfigError::Invalid(problems)) = parse(
        r#"
[alerts.a]
kind = "sms"
[alerts.b]
kind = "webhook"
url = "https://x.example/hook"
[alerts.c]
kind = "slack"
url = "https://hooks.example/x"
events = ["died"]
routes = ["nope"]
[alerts.d]
kind = "email"
url = "http://mail.example.com"
"#,
    ) else {
        panic!("invalid")
    };
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |s: &str| text.iter().any(|t| t.contains(s));
    assert!(has("alerts.a.kind: `sms`"), "{text:?}");
    assert!(has("alerts.b.credential"), "{text:?}");
    assert!(
        has("unknown event `died`") && has("unknown route `nope`"),
        "{text:?}"
    );
    assert!(has("alerts.d.url"), "{text:?}");
}
