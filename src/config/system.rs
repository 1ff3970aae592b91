//! Resolving one `[systems.<name>]` table: base URL and API version, auth,
//! timeouts, retry policy, rate limit (budget, concurrency, dialect) and queue
//! limit. Part of `resolve`, which owns the collected problems.

use std::time::Duration;

use super::raw::*;
use super::resolve::Ctx;
use super::*;
use crate::limits::breaker::Policy;

/// Messages waiting for one system past which ingest answers 503, unless the
/// system says otherwise: a destination that is down for a day at 1 msg/s
/// stays under it, and a runaway upload stops long before the disk fills.
pub const DEFAULT_MAX_QUEUE: u64 = 100_000;

pub(super) fn system(
    cx: &mut Ctx<'_>,
    name: &str,
    s: &RawSystem,
    default_concurrency: usize,
    known_credential: &dyn Fn(&str) -> bool,
) -> Option<System> {
    let loc = format!("systems.{name}");
    let base_url = base_url(cx, &loc, s);
    let proxy = proxy(cx, &loc, s);
    let auth = super::auth::auth(cx, &loc, s, known_credential);
    let timeout = cx.duration(
        &format!("{loc}.timeout"),
        s.timeout.as_ref(),
        Duration::from_secs(10),
    );
    let connect_timeout = cx.duration(
        &format!("{loc}.connect_timeout"),
        s.connect_timeout.as_ref(),
        Duration::from_secs(3),
    );
    let retry = retry_policy(cx, &loc, s);
    let max_concurrency = s
        .rate_limit
        .as_ref()
        .and_then(|r| r.max_concurrency)
        .unwrap_or(default_concurrency);
    let pause_low_at = check_limits(cx, &loc, s, max_concurrency);
    let breaker = breaker(cx, &loc, s.circuit_breaker.as_ref());
    let budget = budget(cx, &loc, name, s, &auth);
    Some(System {
        name: name.into(),
        base_url,
        api_version: s.api_version.clone(),
        next_api_version: next_api_version(cx, &loc, s),
        proxy,
        auth,
        timeout,
        connect_timeout,
        retry,
        max_concurrency: max_concurrency.max(1),
        max_queue: s.max_queue.unwrap_or(DEFAULT_MAX_QUEUE),
        dialect: s
            .rate_limit
            .as_ref()
            .and_then(|r| r.dialect.as_deref())
            .and_then(crate::limits::dialect::Dialect::parse),
        rate: s.rate_limit.as_ref().and_then(|r| {
            let per_second = r.per_second.filter(|p| *p > 0.0 && p.is_finite())?;
            Some(crate::limits::pace::Rate::new(
                per_second,
                r.burst.unwrap_or(1).max(1),
            ))
        }),
        breaker,
        pause_low_at,
        adaptive: s
            .rate_limit
            .as_ref()
            .and_then(|r| r.adaptive)
            .unwrap_or(false),
        budget,
        email: None,
        alert: super::alerts::thresholds(cx, &loc, s, s.max_queue.unwrap_or(DEFAULT_MAX_QUEUE)),
    })
}

/// `proxy`: an http(s) or socks5 URL with a host.
fn proxy(cx: &mut Ctx<'_>, loc: &str, s: &RawSystem) -> Option<reqwest::Url> {
    s.proxy
        .as_deref()
        .and_then(|p| match reqwest::Url::parse(p) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h")
                    && u.has_host() =>
            {
                Some(u)
            }
            _ => {
                cx.problem(
                    format!("{loc}.proxy"),
                    format!("`{p}` is not a proxy URL like http://proxy.internal:3128"),
                );
                None
            }
        })
}

/// `retry`, with `rate_limit.max_hold` (a cap on how long a platform may hold
/// deliveries, applied where the retry schedule reads `Retry-After`).
fn retry_policy(cx: &mut Ctx<'_>, loc: &str, s: &RawSystem) -> RetryPolicy {
    let mut retry = RetryPolicy::default();
    if let Some(r) = &s.retry {
        let rl = format!("{loc}.retry");
        let ms = |d: Duration| d.as_millis() as i64;
        if let Some(n) = r.max_attempts {
            if n == 0 {
                cx.problem(format!("{rl}.max_attempts"), "must be at least 1");
            }
            retry.max_attempts = n.max(1);
        }
        let d = |v: i64| Duration::from_millis(v as u64);
        retry.initial_delay_ms = ms(cx.duration(
            &format!("{rl}.initial_delay"),
            r.initial_delay.as_ref(),
            d(retry.initial_delay_ms),
        ));
        retry.max_delay_ms = ms(cx.duration(
            &format!("{rl}.max_delay"),
            r.max_delay.as_ref(),
            d(retry.max_delay_ms),
        ));
        retry.max_age_ms = ms(cx.duration(
            &format!("{rl}.max_age"),
            r.max_age.as_ref(),
            d(retry.max_age_ms),
        ));
    }
    if let Some(h) = s.rate_limit.as_ref().and_then(|r| r.max_hold.as_ref()) {
        let at = format!("{loc}.rate_limit.max_hold");
        let hold = cx.duration(
            &at,
            Some(h),
            Duration::from_millis(retry.max_hold_ms as u64),
        );
        if hold.is_zero() {
            cx.problem(at, "must be longer than 0s");
        }
        retry.max_hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX).max(1);
    }
    retry
}

/// The rest of `rate_limit` and `max_queue`: each value's range, the
/// dialect's name, and `pause_low_at` (returned when usable: a share of a
/// daily quota that a daily-quota dialect reports).
fn check_limits(cx: &mut Ctx<'_>, loc: &str, s: &RawSystem, max_concurrency: usize) -> Option<f64> {
    if max_concurrency == 0 {
        cx.problem(
            format!("{loc}.rate_limit.max_concurrency"),
            "must be at least 1",
        );
    }
    if s.max_queue == Some(0) {
        cx.problem(format!("{loc}.max_queue"), "must be at least 1");
    }
    if let Some(rl) = &s.rate_limit {
        if rl.per_second.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            cx.problem(
                format!("{loc}.rate_limit.per_second"),
                "must be a positive number",
            );
        }
        if rl.burst == Some(0) {
            cx.problem(format!("{loc}.rate_limit.burst"), "must be at least 1");
        }
    }
    if let Some(d) = s.rate_limit.as_ref().and_then(|r| r.dialect.as_deref())
        && !["ietf", "shopify", "salesforce", "hubspot", "github"].contains(&d)
    {
        cx.problem(
            format!("{loc}.rate_limit.dialect"),
            format!("`{d}`: use ietf, shopify, salesforce, hubspot or github"),
        );
    }
    let pause_low_at = s.rate_limit.as_ref().and_then(|r| r.pause_low_at);
    let daily_dialect = s
        .rate_limit
        .as_ref()
        .and_then(|r| r.dialect.as_deref())
        .is_some_and(|d| ["salesforce", "hubspot"].contains(&d));
    if let Some(share) = pause_low_at {
        let at = format!("{loc}.rate_limit.pause_low_at");
        if !(share > 0.0 && share <= 1.0) {
            cx.problem(
                &at,
                "must be above 0 and at most 1 (a share of the daily quota)",
            );
        } else if !daily_dialect {
            cx.problem(
                &at,
                "needs a daily-quota dialect (`dialect = \"salesforce\"` or `\"hubspot\"`): \
                 the share is read from the platform's answers",
            );
        }
    }
    pause_low_at.filter(|s| *s > 0.0 && *s <= 1.0 && daily_dialect)
}

/// `rate_limit.scope`: the budget's key, the system's own or its credential's.
fn budget(cx: &mut Ctx<'_>, loc: &str, name: &str, s: &RawSystem, auth: &Auth) -> String {
    match s.rate_limit.as_ref().and_then(|r| r.scope.as_deref()) {
        None | Some("system") => name.to_owned(),
        Some("credential") => match auth.credential() {
            Some(c) => format!("credential:{c}"),
            None => {
                cx.problem(
                    format!("{loc}.rate_limit.scope"),
                    "`credential` needs an `auth` with a credential to share the budget of",
                );
                name.to_owned()
            }
        },
        Some(other) => {
            cx.problem(
                format!("{loc}.rate_limit.scope"),
                format!("`{other}`: use `system` or `credential`"),
            );
            name.to_owned()
        }
    }
}

/// The `circuit_breaker` table: on by default, with [`Policy::default`]'s values.
fn breaker(cx: &mut Ctx<'_>, loc: &str, b: Option<&RawBreaker>) -> Option<Policy> {
    let mut p = Policy::default();
    let Some(b) = b else { return Some(p) };
    let loc = format!("{loc}.circuit_breaker");
    if let Some(r) = b.failure_ratio {
        if r > 0.0 && r <= 1.0 {
            p.failure_ratio = r;
        } else {
            cx.problem(
                format!("{loc}.failure_ratio"),
                "must be above 0 and at most 1",
            );
        }
    }
    if let Some(n) = b.min_requests {
        if n == 0 {
            cx.problem(format!("{loc}.min_requests"), "must be at least 1");
        }
        p.min_requests = n.max(1);
    }
    let ms = |d: Duration| d.as_millis() as i64;
    let d = |v: i64| Duration::from_millis(v as u64);
    p.window_ms = ms(cx.duration(&format!("{loc}.window"), b.window.as_ref(), d(p.window_ms)));
    p.open_ms = ms(cx.duration(
        &format!("{loc}.open_for"),
        b.open_for.as_ref(),
        d(p.open_ms),
    ));
    for (field, v) in [("window", p.window_ms), ("open_for", p.open_ms)] {
        if v <= 0 {
            cx.problem(format!("{loc}.{field}"), "must be longer than zero");
        }
    }
    b.enabled.unwrap_or(true).then_some(p)
}

/// Whether an API version may be a folder and a URL segment.
fn version_ok(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `next_api_version`, checked like `api_version` and different from it.
fn next_api_version(cx: &mut Ctx<'_>, loc: &str, s: &RawSystem) -> Option<String> {
    let next = s.next_api_version.as_ref()?;
    if !version_ok(next) {
        cx.problem(
            format!("{loc}.next_api_version"),
            format!("`{next}`: an API version may only use letters, digits, `.`, `_` and `-`"),
        );
        return None;
    }
    if s.api_version.as_ref() == Some(next) {
        cx.problem(
            format!("{loc}.next_api_version"),
            "is the same as api_version: there is nothing to compare",
        );
        return None;
    }
    Some(next.clone())
}

/// The base URL with `{api_version}` substituted, checked: http(s), no
/// userinfo (credentials belong in `auth`), an `api_version` of only
/// `[A-Za-z0-9._-]`, and the same host after substitution as before.
fn base_url(cx: &mut Ctx<'_>, loc: &str, s: &RawSystem) -> String {
    let template = s.base_url.trim_end_matches('/');
    let mut base_url = template.to_owned();
    if let Some(v) = &s.api_version
        && !version_ok(v)
    {
        cx.problem(
            format!("{loc}.api_version"),
            format!("`{v}`: an API version may only use letters, digits, `.`, `_` and `-`"),
        );
        return base_url;
    }
    if base_url.contains("{api_version}") {
        match &s.api_version {
            Some(v) => base_url = base_url.replace("{api_version}", v),
            None => cx.problem(
                format!("{loc}.base_url"),
                "uses {api_version} but `api_version` is not set",
            ),
        }
    }
    let url = match reqwest::Url::parse(&base_url) {
        Ok(u) => u,
        Err(e) => {
            cx.problem(
                format!("{loc}.base_url"),
                format!("`{base_url}` is not a URL: {e}"),
            );
            return base_url;
        }
    };
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        cx.problem(
            format!("{loc}.base_url"),
            "must start with http:// or https://",
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        cx.problem(
            format!("{loc}.base_url"),
            "must not carry a user name or password: give credentials in `auth`",
        );
    }
    // The host as written, with a placeholder standing in for the version.
    let written = reqwest::Url::parse(&template.replace("{api_version}", "v"));
    if let Ok(written) = written
        && same_origin(written.as_str(), url.as_str()).is_err()
    {
        cx.problem(
            format!("{loc}.base_url"),
            format!(
                "substituting api_version moves the host from `{}` to `{}`",
                written.host_str().unwrap_or(""),
                url.host_str().unwrap_or("")
            ),
        );
    }
    base_url
}

/// Whether `url` keeps `base`'s scheme, host and port: a path (or an
/// `{api_version}` in it) must never send a delivery and its credentials
/// to another host.
pub fn same_origin(base: &str, url: &str) -> Result<(), String> {
    let (Ok(b), Ok(u)) = (reqwest::Url::parse(base), reqwest::Url::parse(url)) else {
        return Err(format!("`{url}` is not a URL"));
    };
    let origin = |x: &reqwest::Url| {
        (
            x.scheme().to_owned(),
            x.host_str().map(str::to_owned),
            x.port_or_known_default(),
        )
    };
    if origin(&b) != origin(&u) || !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "the delivery URL `{}` would leave the system's host `{}`; nothing was sent",
            u.host_str().unwrap_or(""),
            b.host_str().unwrap_or("")
        ));
    }
    Ok(())
}
