//! The attempts a seeded delivery is recorded with: the request and the
//! answer as `deliver` logs them, and the explanation its cause gives.

use super::*;

/// The request as `deliver` logs it (secrets redacted; the body excerpt
/// dropped once delivered).
pub(super) fn request_log(d: &Claimed, delivered: bool) -> RequestLog {
    let spec = spec(d.route.as_str());
    RequestLog {
        method: spec.method.into(),
        url: format!("https://{}.example.com{}", spec.system, spec.path),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("idempotency-key".into(), d.delivery_key.clone()),
            ("authorization".into(), "[redacted]".into()),
            ("user-agent".into(), "ferry/0.1".into()),
        ],
        body_excerpt: match delivered {
            true => String::new(),
            false => String::from_utf8_lossy(&d.body[..d.body.len().min(1024)]).into_owned(),
        },
    }
}

pub(super) fn response_log(status: u16, body: String, at_ms: i64) -> ResponseLog {
    ResponseLog {
        status,
        headers: vec![
            (
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ),
            ("date".into(), http_date(at_ms)),
            ("x-request-id".into(), format!("{:x}", mix(at_ms as u64))),
        ],
        body_excerpt: body,
    }
}

pub(super) fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// The attempt a claimed delivery gets: its outcome by its fate and how
/// many attempts it had.
pub(super) fn attempt(d: &Claimed, now_ms: i64) -> AttemptRecord {
    let spec = spec(d.route.as_str());
    let system = d.system.as_str();
    let h = hash_id(d.message_id.as_str());
    let k = d.attempts;
    let fate = fate(spec, h, d.received_ms, now_ms);
    let cause = match fate {
        Some(Fate::Flaky(c) | Fate::Dead(c) | Fate::Discarded(c)) => Some(c),
        None => None,
    };
    let (started_ms, duration_ms) = schedule(d.received_ms, h, k, cause);
    let end = started_ms + duration_ms;
    // A flaky delivery fails once or twice; one HubSpot throttled lately
    // is still retrying.
    let flaky_failures = 1 + (h >> 32) % 2;
    let failed = match fate {
        None => false,
        Some(Fate::Flaky(Cause::HubspotThrottled)) if d.received_ms > now_ms - THROTTLED_MS => true,
        Some(Fate::Flaky(_)) => u64::from(k) < flaky_failures,
        Some(_) => true,
    };
    let base = AttemptRecord {
        delivery_id: d.delivery_id,
        lease_until: d.lease_until,
        started_ms,
        duration_ms,
        request: request_log(d, !failed),
        response: None,
        class: None,
        explanation: "delivered".into(),
        hint: String::new(),
        next: Next::Delivered,
        failure_group: None,
    };
    let Some(cause) = cause.filter(|_| failed) else {
        let body = format!(r#"{{"id":"{}","status":"ok"}}"#, mix(h) % 1_000_000_000);
        return AttemptRecord {
            response: Some(response_log(201, body, end)),
            ..base
        };
    };
    let n = 1000 + (h >> 4) % 4000;
    let explanation = cause.explanation(system, n);
    let last = cause.permanent() || k + 1 >= MAX_ATTEMPTS;
    let throttled_now = cause == Cause::HubspotThrottled && d.received_ms > now_ms - THROTTLED_MS;
    let next = if throttled_now && k + 1 >= 3 {
        // Still throttled: due again within the next minutes.
        Next::Retry {
            at_ms: now_ms + 60_000 + (h % 600_000) as i64,
            counts_against_budget: true,
            rate_limited: true,
            auth: false,
        }
    } else if last {
        Next::Dead
    } else {
        Next::Retry {
            at_ms: schedule(d.received_ms, h, k + 1, Some(cause)).0,
            counts_against_budget: true,
            rate_limited: cause.class() == ErrorClass::RateLimited,
            auth: cause.class() == ErrorClass::Auth,
        }
    };
    AttemptRecord {
        response: cause
            .status()
            .map(|s| response_log(s, cause.response_body(n), end)),
        class: Some(cause.class()),
        failure_group: (next == Next::Dead)
            .then(|| group_key(cause.class(), system, d.route.as_str(), &explanation)),
        explanation,
        hint: cause.hint(system),
        next,
        ..base
    }
}
