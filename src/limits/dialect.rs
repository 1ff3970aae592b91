//! Rate-limit dialects: what a platform's response says about the budget it
//! has left, read from every answer so ferry holds back *before* the first
//! 429. Each system names its dialect (`rate_limit.dialect`); the reading is
//! turned into a hold on the system's shared budget (`pace`), so every worker
//! of every instance waits. `Retry-After`, when present, takes precedence
//! over all of them. A malformed header is ignored, never fatal.

use axum::http::HeaderMap;

use super::retry::parse_retry_after;

/// Which headers (or body) a platform reports its budget in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// IETF `RateLimit: "policy";r=<remaining>;t=<seconds>`.
    Ietf,
    /// Shopify REST `X-Shopify-Shop-Api-Call-Limit: used/size` (a leaky
    /// bucket) and GraphQL `extensions.cost.throttleStatus` in the body.
    Shopify,
    /// Salesforce `Sforce-Limit-Info: api-usage=used/limit` (a daily quota).
    Salesforce,
    /// HubSpot `X-HubSpot-RateLimit-Remaining` per
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`, and the daily remainder.
    Hubspot,
    /// GitHub `X-RateLimit-Remaining` until `X-RateLimit-Reset` (epoch s).
    Github,
}

impl Dialect {
    pub fn parse(name: &str) -> Option<Dialect> {
        Some(match name {
            "ietf" => Dialect::Ietf,
            "shopify" => Dialect::Shopify,
            "salesforce" => Dialect::Salesforce,
            "hubspot" => Dialect::Hubspot,
            "github" => Dialect::Github,
            _ => return None,
        })
    }
}

/// Shopify's standard-plan leak rate: a slot frees every 500 ms.
const SHOPIFY_LEAK_MS: i64 = 500;
/// A spent daily quota whose reset time the platform does not say (HubSpot's
/// daily budget resets at midnight in the account's time zone, which ferry
/// does not know): look again in an hour.
const DAILY_HOLD_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// How much of a daily quota the platform says is spent, and when ferry
/// expects it to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: u64,
    pub limit: u64,
    /// When the quota is expected to be fresh again (ms since the epoch).
    pub resets_at_ms: i64,
}

impl Usage {
    /// `used / limit`; a zero limit counts as spent.
    pub fn share(&self) -> f64 {
        match self.limit {
            0 => 1.0,
            l => self.used as f64 / l as f64,
        }
    }
}

/// Until when no request should go to the system, or `None` when its budget
/// has room. `Retry-After` wins over the dialect's own fields. A Salesforce
/// `REQUEST_LIMIT_EXCEEDED` answer holds until the quota resets whatever
/// dialect the system names: that body says so unambiguously.
pub fn hold_until(d: Option<Dialect>, headers: &HeaderMap, body: &str, now_ms: i64) -> Option<i64> {
    if let Some(delay) = retry_after(headers, now_ms) {
        return Some(now_ms.saturating_add(delay));
    }
    if salesforce_quota_exceeded(body) {
        return Some(next_utc_midnight(now_ms));
    }
    let wait_ms = match d? {
        Dialect::Ietf => ietf(
            header(headers, "ratelimit")?,
            header(headers, "ratelimit-policy").unwrap_or(""),
        ),
        Dialect::Shopify => shopify_rest(headers).or_else(|| shopify_graphql(body)),
        Dialect::Salesforce => {
            let u = salesforce_usage(headers, now_ms)?;
            return (u.used >= u.limit).then_some(u.resets_at_ms);
        }
        Dialect::Hubspot => hubspot(headers),
        Dialect::Github => github(headers, now_ms),
    }?;
    Some(now_ms.saturating_add(wait_ms))
}

fn retry_after(headers: &HeaderMap, now_ms: i64) -> Option<i64> {
    header(headers, "retry-after").and_then(|v| parse_retry_after(v, now_ms))
}

/// What [`hold_until`] read its hold from, in words for the admin API:
/// `Retry-After`, `daily API quota` or `<dialect> rate-limit headers`.
pub fn hold_source(d: Option<Dialect>, headers: &HeaderMap, body: &str) -> &'static str {
    if retry_after(headers, 0).is_some() {
        return "Retry-After";
    }
    if salesforce_quota_exceeded(body) {
        return "daily API quota (REQUEST_LIMIT_EXCEEDED)";
    }
    match d {
        Some(Dialect::Ietf) => "RateLimit header",
        Some(Dialect::Shopify) => "Shopify rate-limit answer",
        Some(Dialect::Salesforce) => "Sforce-Limit-Info daily quota",
        Some(Dialect::Hubspot) => "HubSpot rate-limit headers",
        Some(Dialect::Github) => "X-RateLimit headers",
        None => "rate-limit answer",
    }
}

/// The daily quota an answer reports, for dialects that have one
/// (Salesforce `api-usage`, HubSpot's daily headers); `None` otherwise.
pub fn daily_usage(d: Option<Dialect>, headers: &HeaderMap, now_ms: i64) -> Option<Usage> {
    match d? {
        Dialect::Salesforce => salesforce_usage(headers, now_ms),
        Dialect::Hubspot => {
            let limit = header(headers, "x-hubspot-ratelimit-daily").and_then(int)?;
            let left = header(headers, "x-hubspot-ratelimit-daily-remaining").and_then(int)?;
            Some(Usage {
                used: limit.saturating_sub(left.min(limit)) as u64,
                limit: limit as u64,
                resets_at_ms: now_ms.saturating_add(DAILY_HOLD_MS),
            })
        }
        _ => None,
    }
}

/// Salesforce's answer once the org's daily API quota is spent: 403 with
/// `[{"errorCode":"REQUEST_LIMIT_EXCEEDED", ...}]` (not a 429, and not a
/// credential problem).
pub fn salesforce_quota_exceeded(body: &str) -> bool {
    let Ok(serde_json::Value::Array(errors)) = serde_json::from_str(body.trim()) else {
        return false;
    };
    errors
        .iter()
        .any(|e| e.get("errorCode").and_then(|c| c.as_str()) == Some("REQUEST_LIMIT_EXCEEDED"))
}

/// The first UTC midnight strictly after `now_ms`. Salesforce's daily quota
/// is really a rolling 24-hour window (each request counts for 24 h from
/// when it was made), which answers do not describe; ferry approximates it
/// by a quota that resets at UTC midnight. That can resume early when the
/// day's requests came late; the next answer then shows the quota still
/// spent and ferry holds again.
pub fn next_utc_midnight(now_ms: i64) -> i64 {
    now_ms
        .div_euclid(DAY_MS)
        .saturating_add(1)
        .saturating_mul(DAY_MS)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

fn int(v: &str) -> Option<i64> {
    v.trim().parse().ok().filter(|n: &i64| *n >= 0)
}

/// Share of a window's quota under which what is left is spread evenly over
/// the rest of the window, instead of spent at full speed into a 429.
const SPREAD_BELOW: f64 = 0.1;

/// How long to wait before the next request, with `remaining` requests left
/// of `quota` (if known) for the next `left_ms`: the whole window when
/// spent; when nearly spent (under [`SPREAD_BELOW`] of the quota), an even
/// share of it, so the last requests spread over the window.
fn pace_out(remaining: i64, quota: Option<i64>, left_ms: i64) -> Option<i64> {
    if remaining == 0 {
        return Some(left_ms);
    }
    let quota = quota.filter(|q| *q > 0)?;
    ((remaining as f64) < SPREAD_BELOW * quota as f64)
        .then(|| left_ms / remaining.saturating_add(1))
}

/// `"default";r=0;t=30`: spent, more in 30 s; `r=5;t=30` of a policy with
/// `q=100` (from `RateLimit-Policy`): nearly spent, one request per 5 s.
/// Several policies: the longest wait.
fn ietf(value: &str, policies: &str) -> Option<i64> {
    let quotas: Vec<IetfItem> = policies.split(',').filter_map(IetfItem::parse).collect();
    let mut wait = None;
    for item in value.split(',').filter_map(IetfItem::parse) {
        let (Some(r), Some(t)) = (item.r, item.t) else {
            continue;
        };
        let quota = quotas
            .iter()
            .find(|p| p.name == item.name)
            .and_then(|p| p.q);
        wait = wait.max(pace_out(r, quota, t.saturating_mul(1000)));
    }
    wait
}

/// One item of an IETF `RateLimit` or `RateLimit-Policy` field.
struct IetfItem {
    name: String,
    r: Option<i64>,
    t: Option<i64>,
    q: Option<i64>,
}

impl IetfItem {
    /// `"name";r=..;t=..` or `"name";q=..;w=..`; `None` when a number is malformed.
    fn parse(item: &str) -> Option<IetfItem> {
        let mut parts = item.split(';');
        let name = parts.next()?.trim().trim_matches('"').to_owned();
        let mut it = IetfItem {
            name,
            r: None,
            t: None,
            q: None,
        };
        for param in parts {
            match param.trim().split_once('=') {
                Some(("r", v)) => it.r = Some(int(v)?),
                Some(("t", v)) => it.t = Some(int(v)?),
                Some(("q", v)) => it.q = Some(int(v)?),
                _ => {}
            }
        }
        Some(it)
    }
}

/// `32/40`: a full bucket waits for one slot to leak.
fn shopify_rest(headers: &HeaderMap) -> Option<i64> {
    let (used, size) = header(headers, "x-shopify-shop-api-call-limit")?.split_once('/')?;
    (int(used)? >= int(size)?).then_some(SHOPIFY_LEAK_MS)
}

/// Waits until the points the last query cost have been restored.
fn shopify_graphql(body: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let cost = v.get("extensions")?.get("cost")?;
    let status = cost.get("throttleStatus")?;
    let available = status.get("currentlyAvailable")?.as_f64()?;
    let restore = status.get("restoreRate")?.as_f64()?;
    let needed = cost.get("requestedQueryCost")?.as_f64()?;
    if available >= needed || restore <= 0.0 {
        return None;
    }
    Some(((needed - available) / restore * 1000.0).ceil() as i64)
}

/// `Sforce-Limit-Info: api-usage=10018/100000; ...`: the org's daily quota.
fn salesforce_usage(headers: &HeaderMap, now_ms: i64) -> Option<Usage> {
    let usage = header(headers, "sforce-limit-info")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("api-usage="))?;
    let (used, limit) = usage.split_once('/')?;
    Some(Usage {
        used: int(used)? as u64,
        limit: int(limit)? as u64,
        resets_at_ms: next_utc_midnight(now_ms),
    })
}

fn hubspot(headers: &HeaderMap) -> Option<i64> {
    if header(headers, "x-hubspot-ratelimit-daily-remaining").and_then(int) == Some(0) {
        return Some(DAILY_HOLD_MS);
    }
    let remaining = header(headers, "x-hubspot-ratelimit-remaining").and_then(int)?;
    let interval = header(headers, "x-hubspot-ratelimit-interval-milliseconds").and_then(int)?;
    let max = header(headers, "x-hubspot-ratelimit-max").and_then(int);
    pace_out(remaining, max, interval)
}

fn github(headers: &HeaderMap, now_ms: i64) -> Option<i64> {
    let remaining = header(headers, "x-ratelimit-remaining").and_then(int)?;
    let reset_s = header(headers, "x-ratelimit-reset").and_then(int)?;
    let limit = header(headers, "x-ratelimit-limit").and_then(int);
    pace_out(
        remaining,
        limit,
        reset_s.saturating_mul(1000).saturating_sub(now_ms).max(0),
    )
}

#[cfg(test)]
#[path = "dialect_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    const NOW: i64 = 1_767_225_600_000;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn hold(d: Dialect, pairs: &[(&str, &str)]) -> Option<i64> {
        hold_until(Some(d), &h(pairs), "", NOW).map(|t| t - NOW)
    }

    #[test]
    fn ietf_holds_only_a_spent_policy_for_its_reset() {
        // Samples from vectors/signatures.json `header_parsing.ietf_ratelimit`.
        assert_eq!(
            hold(Dialect::Ietf, &[("ratelimit", "\"default\";r=50;t=30")]),
            None
        );
        assert_eq!(
            hold(Dialect::Ietf, &[("ratelimit", "\"default\";r=0;t=30")]),
            Some(30_000)
        );
        assert_eq!(
            hold(
                Dialect::Ietf,
                &[("ratelimit", "\"burst\";r=0;t=2, \"daily\";r=0;t=600")]
            ),
            Some(600_000)
        );
        for bad in [
            "\"default\";r=x;t=30",
            "\"default\";r=0",
            "garbage",
            "\"d\";r=-1;t=5",
        ] {
            assert_eq!(hold(Dialect::Ietf, &[("ratelimit", bad)]), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_takes_precedence() {
        let pairs = [
            ("retry-after", "2.0"),
            ("ratelimit", "\"default\";r=0;t=30"),
        ];
        assert_eq!(hold(Dialect::Ietf, &pairs), Some(2_000));
        assert_eq!(
            hold_until(None, &h(&[("retry-after", "120")]), "", NOW),
            Some(NOW + 120_000),
            "even without a dialect"
        );
    }

    #[test]
    fn shopify_rest_waits_for_a_leak_when_the_bucket_is_full() {
        let limit = "x-shopify-shop-api-call-limit";
        assert_eq!(hold(Dialect::Shopify, &[(limit, "32/40")]), None);
        assert_eq!(hold(Dialect::Shopify, &[(limit, "40/40")]), Some(500));
        assert_eq!(hold(Dialect::Shopify, &[(limit, "forty/40")]), None);
    }

    #[test]
    fn shopify_graphql_waits_for_the_points_to_restore() {
        let body = |available: f64| {
            format!(
                r#"{{"data":{{}},"extensions":{{"cost":{{"requestedQueryCost":252,"actualQueryCost":12,
                "throttleStatus":{{"maximumAvailable":1000.0,"currentlyAvailable":{available},"restoreRate":50.0}}}}}}}}"#
            )
        };
        let at = |b: &str| {
            hold_until(Some(Dialect::Shopify), &HeaderMap::new(), b, NOW).map(|t| t - NOW)
        };
        assert_eq!(at(&body(988.0)), None, "the vector's sample has room");
        assert_eq!(at(&body(52.0)), Some(4_000), "200 points at 50/s");
        assert_eq!(at("not json"), None);
    }

    #[test]
    fn salesforce_holds_a_spent_daily_quota() {
        let info = "sforce-limit-info";
        assert_eq!(
            hold(Dialect::Salesforce, &[(info, "api-usage=10018/100000")]),
            None
        );
        assert_eq!(
            hold(
                Dialect::Salesforce,
                &[(info, "api-usage=10018/100000; api-bursts=1/750")]
            ),
            None
        );
        assert_eq!(
            hold(
                Dialect::Salesforce,
                &[(
                    info,
                    "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
                )]
            ),
            None
        );
        assert_eq!(
            hold(Dialect::Salesforce, &[(info, "api-usage=5000/5000")]),
            Some(DAY_MS),
            "NOW is a UTC midnight: held until the next one"
        );
        let late = NOW + DAY_MS - 1;
        let h5000 = h(&[(info, "api-usage=5000/5000")]);
        assert_eq!(
            hold_until(Some(Dialect::Salesforce), &h5000, "", late),
            Some(NOW + DAY_MS)
        );
        assert_eq!(hold(Dialect::Salesforce, &[(info, "api-usage=lots")]), None);
    }

    #[test]
    fn hubspot_holds_for_its_interval_or_the_day() {
        let spent = [
            ("x-hubspot-ratelimit-remaining", "0"),
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
            ("x-hubspot-ratelimit-max", "100"),
        ];
        assert_eq!(hold(Dialect::Hubspot, &spent), Some(10_000));
        assert_eq!(
            hold(
                Dialect::Hubspot,
                &[
                    ("x-hubspot-ratelimit-remaining", "7"),
                    ("x-hubspot-ratelimit-interval-milliseconds", "10000")
                ]
            ),
            None
        );
        assert_eq!(
            hold(
                Dialect::Hubspot,
                &[("x-hubspot-ratelimit-daily-remaining", "0")]
            ),
            Some(DAILY_HOLD_MS)
        );
    }

    #[test]
    fn github_holds_until_the_reset() {
        let reset = ((NOW + 90_000) / 1000).to_string();
        assert_eq!(
            hold(
                Dialect::Github,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset)
                ]
            ),
            Some(90_000)
        );
        assert_eq!(
            hold(
                Dialect::Github,
                &[
                    ("x-ratelimit-remaining", "12"),
                    ("x-ratelimit-reset", &reset)
                ]
            ),
            None
        );
    }

    #[test]
    fn a_nearly_spent_window_is_spread_not_rushed() {
        // IETF: 5 of 100 left for 30 s: one request per 5 s; 50 left: no wait.
        let policy = ("ratelimit-policy", "\"default\";q=100;w=60");
        assert_eq!(
            hold(
                Dialect::Ietf,
                &[("ratelimit", "\"default\";r=5;t=30"), policy]
            ),
            Some(5_000)
        );
        assert_eq!(
            hold(
                Dialect::Ietf,
                &[("ratelimit", "\"default\";r=50;t=30"), policy]
            ),
            None
        );
        // Without the policy's quota, "nearly spent" is unknown: only r=0 holds.
        assert_eq!(
            hold(Dialect::Ietf, &[("ratelimit", "\"default\";r=5;t=30")]),
            None
        );
        // HubSpot: 4 of 100 left in a 10 s interval.
        let hubspot = [
            ("x-hubspot-ratelimit-remaining", "4"),
            ("x-hubspot-ratelimit-max", "100"),
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ];
        assert_eq!(hold(Dialect::Hubspot, &hubspot), Some(2_000));
        // GitHub: 99 of 5000 left for an hour: one every 36 s.
        let reset = ((NOW + 3_600_000) / 1000).to_string();
        let github = [
            ("x-ratelimit-remaining", "99"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-reset", reset.as_str()),
        ];
        assert_eq!(hold(Dialect::Github, &github), Some(36_000));
    }
}
