use std::collections::HashMap;
use std::path::Path;

use super::*;

fn env_with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn full_env() -> impl Fn(&str) -> Option<String> {
    env_with(&[
        ("FERRY_ADMIN_TOKEN", "t"),
        (
            "SHOP_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("ERP_TOKEN", "e"),
        ("ERP_CLIENT_KEY", "k"),
        ("SHOP_TOKEN", "s"),
    ])
}

#[test]
fn the_embedded_default_is_valid() {
    let cfg = Config::parse(DEFAULT_TOML, "default", Path::new("/tmp"), &full_env()).unwrap();
    assert_eq!(cfg.routes.len(), 2);
    assert_eq!(
        cfg.systems["shop"].base_url,
        "https://example.myshopify.com/admin/api/2024-07"
    );
    assert_eq!(cfg.systems["erp"].retry.max_attempts, 8);
    assert_eq!(cfg.systems["erp"].max_concurrency, 8);
    match &cfg.routes["shop-orders"].source {
        Source::Webhook {
            dedupe,
            dedupe_window,
            ..
        } => {
            assert_eq!(*dedupe, Dedupe::SchemeEventId);
            assert_eq!(dedupe_window.as_secs(), 7 * 86_400);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_problem_is_reported_with_its_location() {
    let text = r#"
[systems.erp]
base_url = "not a url"
timeout = "ten"
auth = { kind = "bearer", credential = "missing" }

[routes.a]
source = { kind = "webhook", scheme = "carrier-pigeon", credentials = ["nope"] }
destination = { system = "ghost", path = "x" }
"#;
    let Err(ConfigError::Invalid(problems)) =
        Config::parse(text, "f.toml", Path::new("."), &env_with(&[]))
    else {
        panic!("expected problems");
    };
    let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    for want in [
        "systems.erp.base_url",
        "systems.erp.timeout",
        "systems.erp.auth.credential",
        "routes.a.destination.system",
        "routes.a.source.credentials",
        "routes.a.source.scheme",
    ] {
        assert!(locs.contains(&want), "{want} missing from {locs:?}");
    }
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let Err(ConfigError::Invalid(p)) = Config::parse(
        "[server]\nlisten = \n",
        "f.toml",
        Path::new("."),
        &env_with(&[]),
    ) else {
        panic!()
    };
    assert!(p[0].location.starts_with("f.toml:2:"), "{:?}", p);
}

#[test]
fn unknown_keys_are_rejected() {
    let Err(ConfigError::Invalid(p)) = Config::parse(
        "[server]\nlisen = \"x\"\n",
        "f.toml",
        Path::new("."),
        &env_with(&[]),
    ) else {
        panic!()
    };
    assert!(p[0].message.contains("lisen"), "{:?}", p);
}

#[test]
fn missing_env_secret_is_a_problem() {
    let text = "[credentials]\na = { env = \"NOT_SET_ANYWHERE\" }\n";
    let Err(ConfigError::Invalid(p)) = Config::parse(text, "f", Path::new("."), &env_with(&[]))
    else {
        panic!()
    };
    assert_eq!(p[0].location, "credentials.a");
    assert!(p[0].message.contains("NOT_SET_ANYWHERE"));
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s"), "hunter2\n").unwrap();
    let text = "[credentials]\na = { file = \"s\" }\n";
    let cfg = Config::parse(text, "f", dir.path(), &env_with(&[])).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(cfg.secret("a").unwrap().expose_secret(), "hunter2");
}

#[test]
fn store_credentials_are_resolved_at_run_time() {
    let text = r#"
[credentials]
a = { store = "shop.webhook-1" }
b = { store = "no spaces" }
c = { store = "x", env = "C" }

[server]
admin_token = { store = "admin" }
"#;
    let Err(ConfigError::Invalid(p)) =
        Config::parse(text, "f", Path::new("."), &env_with(&[("C", "v")]))
    else {
        panic!()
    };
    let at: Vec<_> = p.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        at,
        ["server.admin_token", "credentials.b", "credentials.c"],
        "{p:?}"
    );
    let good = "[credentials]\na = { store = \"shop.webhook-1\" }\n";
    let cfg = Config::parse(good, "f", Path::new("."), &env_with(&[])).unwrap();
    assert!(cfg.secret("a").is_none(), "no value at load time");
    assert_eq!(
        cfg.store_credentials().collect::<Vec<_>>(),
        [("a", "shop.webhook-1")]
    );
}

#[test]
fn oauth2_auth_is_resolved_and_checked() {
    let text = r#"
[credentials]
secret = { env = "S" }
refresh = { env = "R" }
stored = { store = "hs_refresh" }

[systems.good]
base_url = "https://api.example"
auth = { kind = "oauth2-refresh", token_url = "https://login.example/token", client_id = "c", client_secret = "secret", refresh_token = "stored", client_auth = "basic", header = "X-Shopify-Access-Token", default_ttl = "2h", scope = "s" }

[systems.bad]
base_url = "https://api.example"
auth = { kind = "oauth2", token_url = "ftp://x", client_secret = "nope", client_auth = "jwt" }

[systems.env_refresh]
base_url = "https://api.example"
auth = { kind = "oauth2-refresh", token_url = "https://login.example/token", client_id = "c", client_secret = "secret", refresh_token = "refresh" }
"#;
    let env = env_with(&[("S", "s"), ("R", "r")]);
    let Err(ConfigError::Invalid(p)) = Config::parse(text, "f", Path::new("."), &env) else {
        panic!()
    };
    let at: Vec<_> = p.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        at,
        [
            "systems.bad.auth",
            "systems.bad.auth.client_secret",
            "systems.bad.auth.token_url",
            "systems.bad.auth.client_auth",
            "systems.env_refresh.auth.refresh_token",
        ],
        "{p:?}"
    );
    let good = text.split("[systems.bad]").next().unwrap();
    let cfg = Config::parse(good, "f", Path::new("."), &env).unwrap();
    let Auth::OAuth2(o) = &cfg.systems["good"].auth else {
        panic!()
    };
    assert_eq!(o.client_auth, ClientAuth::Basic);
    assert_eq!(
        o.header,
        TokenHeader::Bare(HeaderName::from_static("x-shopify-access-token"))
    );
    assert_eq!(o.default_ttl, Duration::from_secs(7200));
    assert_eq!(
        o.grant,
        Grant::RefreshToken {
            refresh_token: "stored".into()
        }
    );
    assert_eq!(cfg.systems["good"].auth.credential(), Some("secret"));
}

#[test]
fn priority_pause_low_at_and_adaptive_resolve_and_are_checked() {
    let text = r#"
[credentials]
c = { env = "C" }

[systems.sf]
base_url = "https://example.my.salesforce.com"
rate_limit = { dialect = "salesforce", pause_low_at = 0.9, adaptive = true, max_concurrency = 8 }

[systems.plain]
base_url = "https://example.com"
rate_limit = { pause_low_at = 0.9 }

[systems.zero]
base_url = "https://example.com"
rate_limit = { dialect = "hubspot", pause_low_at = 0 }

[routes.leads]
source = { kind = "api", credentials = ["c"] }
destination = { system = "sf", path = "/x", priority = "low" }

[routes.odd]
source = { kind = "api", credentials = ["c"] }
destination = { system = "sf", path = "/x", priority = "urgent" }
"#;
    let Err(ConfigError::Invalid(problems)) =
        Config::parse(text, "f.toml", Path::new("."), &env_with(&[("C", "k")]))
    else {
        panic!("expected problems");
    };
    let at = |loc: &str| problems.iter().find(|p| p.location == loc);
    assert!(
        at("systems.plain.rate_limit.pause_low_at")
            .unwrap()
            .message
            .contains("daily-quota dialect")
    );
    assert!(
        at("systems.zero.rate_limit.pause_low_at")
            .unwrap()
            .message
            .contains("above 0")
    );
    assert!(
        at("routes.odd.destination.priority").is_some(),
        "{problems:?}"
    );
    assert!(
        at("systems.sf.rate_limit.pause_low_at").is_none(),
        "{problems:?}"
    );
    assert!(
        at("routes.leads.destination.priority").is_none(),
        "{problems:?}"
    );

    let ok = text.split("[systems.plain]").next().unwrap().to_owned()
        + r#"
[routes.leads]
source = { kind = "api", credentials = ["c"] }
destination = { system = "sf", path = "/x", priority = "low" }
"#;
    let cfg = Config::parse(&ok, "f.toml", Path::new("."), &env_with(&[("C", "k")])).unwrap();
    let sf = &cfg.systems["sf"];
    assert_eq!(
        (sf.pause_low_at, sf.adaptive, sf.max_concurrency),
        (Some(0.9), true, 8)
    );
    assert_eq!(cfg.routes["leads"].destination.priority, Priority::Low);
}

#[test]
fn a_credential_scoped_budget_is_shared_and_must_agree() {
    let text = |b_rate: &str| {
        format!(
            r#"
[credentials]
tok = {{ env = "C" }}

[systems.shop-a]
base_url = "https://a.example.com"
auth = {{ kind = "bearer", credential = "tok" }}
rate_limit = {{ per_second = 2, burst = 40, scope = "credential" }}

[systems.shop-b]
base_url = "https://b.example.com"
auth = {{ kind = "bearer", credential = "tok" }}
rate_limit = {{ {b_rate}, scope = "credential" }}

[systems.own]
base_url = "https://c.example.com"
rate_limit = {{ per_second = 2 }}
"#
        )
    };
    let env = env_with(&[("C", "k")]);
    let cfg = Config::parse(
        &text("per_second = 2, burst = 40"),
        "f",
        Path::new("."),
        &env,
    )
    .unwrap();
    assert_eq!(cfg.systems["shop-a"].budget, "credential:tok");
    assert_eq!(cfg.systems["shop-b"].budget, "credential:tok");
    assert_eq!(cfg.systems["own"].budget, "own");
    let Err(ConfigError::Invalid(problems)) =
        Config::parse(&text("per_second = 4"), "f", Path::new("."), &env)
    else {
        panic!("expected a problem");
    };
    assert_eq!(
        problems[0].location, "systems.shop-b.rate_limit",
        "{problems:?}"
    );
    let no_auth = text("per_second = 2, burst = 40").replace(
        "rate_limit = { per_second = 2 }",
        "rate_limit = { per_second = 2, scope = \"credential\" }",
    );
    let Err(ConfigError::Invalid(problems)) = Config::parse(&no_auth, "f", Path::new("."), &env)
    else {
        panic!("expected a problem");
    };
    assert_eq!(problems[0].location, "systems.own.rate_limit.scope");
}

#[test]
fn jq_programs_that_reach_outside_and_a_bad_jq_timeout_are_problems() {
    let text = r#"
[server]
jq_timeout = "0s"

[credentials]
k = { env = "K" }

[systems.erp]
base_url = "http://127.0.0.1:1"

[routes.a]
source = { kind = "api", credentials = ["k"] }
destination = { system = "erp", path = "/a", ordering_key = "env.K" }

[routes.b]
source = { kind = "api", credentials = ["k"] }
destination = { system = "erp", path = "/b", batch = { path = "/b/batch", body = "{inputs: ., at: now}" } }
"#;
    let Err(ConfigError::Invalid(problems)) =
        Config::parse(text, "f.toml", Path::new("."), &env_with(&[("K", "x")]))
    else {
        panic!("expected problems");
    };
    let find = |loc: &str| {
        problems
            .iter()
            .find(|p| p.location == loc)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| panic!("{loc} missing from {problems:?}"))
    };
    assert!(find("server.jq_timeout").contains("more than zero"));
    assert!(find("routes.a.destination.ordering_key").contains("`env` is not available"));
    assert!(find("routes.b.destination.batch.body").contains("use `$now`"));
    let fine = text
        .replace("jq_timeout = \"0s\"", "jq_timeout = \"250ms\"")
        .replace("env.K", ".k")
        .replace("at: now", "at: $now");
    let cfg = Config::parse(&fine, "f.toml", Path::new("."), &env_with(&[("K", "x")])).unwrap();
    assert_eq!(cfg.server.jq_timeout, Duration::from_millis(250));
    let key = cfg.routes["a"].destination.ordering_key.as_ref().unwrap();
    assert_eq!(key.timeout(), Duration::from_millis(250));
}

#[test]
fn embed_origins_are_origins_as_browsers_send_them() {
    let text = r#"
[console]
embed_origins = ["https://erp.example.com", "http://127.0.0.1:8443", "https://erp.example.com/", "https://ERP.example.com", "https://erp.example.com/page", "erp.example.com", "https://a.example; script-src *", "ftp://erp.example.com"]
"#;
    let Err(ConfigError::Invalid(problems)) =
        Config::parse(text, "f.toml", Path::new("."), &env_with(&[]))
    else {
        panic!("expected problems");
    };
    let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locs,
        (2..8)
            .map(|i| format!("console.embed_origins[{i}]"))
            .collect::<Vec<_>>()
    );
    assert!(
        problems[0]
            .message
            .contains("write `https://erp.example.com`"),
        "{problems:?}"
    );
    let good =
        "[console]\nembed_origins = [\"https://erp.example.com\", \"http://127.0.0.1:8443\"]\n";
    let cfg = Config::parse(good, "f.toml", Path::new("."), &env_with(&[])).unwrap();
    assert_eq!(
        cfg.console.embed_origins,
        ["https://erp.example.com", "http://127.0.0.1:8443"]
    );
    let none = Config::parse("", "f.toml", Path::new("."), &env_with(&[])).unwrap();
    assert!(none.console.embed_origins.is_empty());
}
