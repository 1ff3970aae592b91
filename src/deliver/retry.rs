//! Delivery stage 3: classify an attempt's outcome and schedule the next one.
//! A worker claims a message, transforms it, `connect` sends it, then
//! [`decide`] turns what that attempt observed into a [`Verdict`] (delivered,
//! retry at a given time, or dead) which the store records. Every verdict
//! except `Delivered` carries an [`Explained`]: an [`ErrorClass`], a
//! plain-language explanation for operations staff and a hint on what to do.
//!
//! The module is pure: the clock (`now_ms`, milliseconds since the Unix
//! epoch) and randomness (`rng`) are passed in, so verdicts are reproducible.
//!
//! Rules:
//! - Retries are bounded per destination system by [`RetryPolicy::max_attempts`]
//!   (budget-counted attempts) and [`RetryPolicy::max_age_ms`] (measured from
//!   when the message was first received, or last retried by an operator).
//! - Backoff uses full jitter: uniform in `[0, min(max_delay, initial * 2^(n-1))]`,
//!   then raised to at least 1 ms so the next attempt is always strictly after
//!   `now`. See [`backoff_ms`].
//! - A `Retry-After` header is honoured and never undercut up to the
//!   system's `max_hold` (default 1 h): the retry time is exactly
//!   `now + min(retry_after, max_hold)` (at least 1 ms); a longer one is heard
//!   as `max_hold`, so one header cannot park a message for years. If that is
//!   past the message's max age the message goes dead instead. Unparseable
//!   values are ignored.
//! - 429 and an open circuit breaker do not consume the retry budget; max age
//!   still applies. Without `Retry-After`, a 429 backs off on the number of
//!   consecutive 429s, an open circuit on the attempts counted so far.
//! - 2xx is delivered. 3xx, 4xx (except 401/403/408/429), mapping and
//!   configuration errors are permanent. 401/403 is retried once (the caller
//!   refreshes the credential); a second one in a row is dead.
//! - Salesforce's 403 `REQUEST_LIMIT_EXCEEDED` is not about the credential:
//!   it is `rate_limited` (no budget spent) and retried when the daily quota
//!   resets (the next UTC midnight, see `dialect::next_utc_midnight`).
//! - 5xx, 408, timeouts and network errors are retried within the budget.

use super::classify::{classify, explained};

use axum::http::{HeaderMap, header};
use rand::Rng;

pub use crate::limits::retry::{RetryPolicy, backoff_ms, parse_retry_after};
pub use crate::model::ErrorClass;

/// What one attempt observed.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The destination answered (any status).
    Response {
        status: u16,
        headers: &'a HeaderMap,
        body_excerpt: &'a str,
    },
    /// Connection refused, DNS failure, reset...; the error text.
    Network(&'a str),
    /// No answer in time.
    Timeout,
    /// The transform failed; the error text.
    Mapping(&'a str),
    /// The destination's configuration is unusable; the error text.
    Config(&'a str),
    /// The platform took a batch but refused this item of it, for this reason.
    ItemRejected { status: u16, reason: &'a str },
    /// Nothing sent: no credential to send with (the OAuth2 token endpoint
    /// failed, the signing secret is unusable); the reason, and whether the
    /// credential itself was refused (else the endpoint was down: retried
    /// within the budget, like a 5xx).
    Auth { reason: &'a str, rejected: bool },
}

/// Where the delivery stands before this attempt's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Budget-counted attempts before this one.
    pub attempts: u32,
    /// 429 answers in a row before this one.
    pub consecutive_rate_limited: u32,
    /// 401/403 answers in a row before this one.
    pub consecutive_auth: u32,
    /// Start of the retry budget and the max-age window: when ferry first
    /// received the message, or when an operator last retried it (ms since
    /// the Unix epoch).
    pub budget_start_ms: i64,
    /// When ferry first received the message, for the explanation.
    pub received_ms: i64,
}

/// A failure explained for operations staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub class: ErrorClass,
    /// What happened, naming the system and status.
    pub explanation: String,
    /// What to do about it.
    pub hint: String,
}

/// What the worker does next with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again at `at_ms` (always `> now_ms`).
    Retry {
        at_ms: i64,
        counts_against_budget: bool,
        why: Explained,
    },
    /// Stop retrying; the message needs an operator.
    Dead {
        why: Explained,
    },
}

/// Whether a failure may be retried.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Retry,
    Dead,
}

/// A failed attempt before the budget and age checks: class, explanation and
/// advice (the whole hint when dead, what to check when retries keep failing).
pub(super) type Failure = (ErrorClass, String, String, Fate);

/// The system an attempt went to: its name (in explanations), its retry
/// policy, and the credential used (for the wording of an auth failure).
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub system: &'a str,
    pub policy: &'a RetryPolicy,
    pub credential: Option<&'a str>,
}

/// Decides what happens after an attempt toward `to`: delivered; dead when
/// the answer leaves no hope, a credential failed twice, the attempts are
/// spent or the next one would fall past the message's max age; else a
/// retry at the platform's `Retry-After`, the quota's reset or a backoff.
pub fn decide(
    outcome: &Outcome<'_>,
    to: &Destination<'_>,
    history: &History,
    now_ms: i64,
    rng: &mut impl Rng,
) -> Verdict {
    let Some((class, last, advice, fate)) = classify(outcome, to.system, to.credential) else {
        return Verdict::Delivered;
    };
    if fate == Fate::Dead {
        return Verdict::Dead {
            why: explained(class, last, advice),
        };
    }
    let f = Failed {
        class,
        last,
        advice,
        outcome,
        to,
        history,
        now_ms,
    };
    if let Some(spent) = f.spent() {
        return f.dead(spent);
    }
    let wait = f.wait(rng);
    let at_ms = now_ms.saturating_add(wait.delay_ms.max(1));
    if at_ms > f.deadline() {
        let why = f.too_old(&wait);
        return f.dead(why);
    }
    f.retry(at_ms)
}

/// A retryable failure, being judged.
struct Failed<'a> {
    class: ErrorClass,
    /// The explanation of this attempt's failure.
    last: String,
    advice: String,
    outcome: &'a Outcome<'a>,
    to: &'a Destination<'a>,
    history: &'a History,
    now_ms: i64,
}

/// When the next attempt may go, and what asked for that time.
struct Wait {
    delay_ms: i64,
    /// The platform's `Retry-After` (before the `max_hold` cap).
    asked_ms: Option<i64>,
    /// A spent daily quota's reset.
    quota_reset_ms: Option<i64>,
}

impl Failed<'_> {
    /// An auth failure that is the credential's, not a token endpoint's outage.
    fn rejection(&self) -> bool {
        !matches!(
            self.outcome,
            Outcome::Auth {
                rejected: false,
                ..
            }
        )
    }

    fn counts(&self) -> bool {
        self.class != ErrorClass::RateLimited
    }

    fn since(&self, t: i64) -> String {
        human_duration(self.now_ms.saturating_sub(t).max(0))
    }

    fn deadline(&self) -> i64 {
        let max_age = self.to.policy.max_age_ms.max(0);
        self.history.budget_start_ms.saturating_add(max_age)
    }

    /// Why no attempt is left: a credential rejected twice in a row, or the
    /// retry budget's attempts used up.
    fn spent(&self) -> Option<String> {
        let (h, last) = (self.history, &self.last);
        if self.class == ErrorClass::Auth && h.consecutive_auth > 0 && self.rejection() {
            let times = h.consecutive_auth.saturating_add(1);
            return Some(format!(
                "credential rejected {times} times in a row: {last}"
            ));
        }
        let n = h.attempts.saturating_add(1);
        if self.counts() && n >= self.to.policy.max_attempts {
            let noun = if n == 1 { "attempt" } else { "attempts" };
            let age = self.since(h.budget_start_ms);
            return Some(format!("gave up after {n} {noun} over {age}: {last}"));
        }
        None
    }

    /// The platform's `Retry-After` (capped at `max_hold`), else a spent
    /// daily quota's reset (Salesforce's 403 REQUEST_LIMIT_EXCEEDED comes
    /// back when it resets, not after a backoff), else the backoff.
    fn wait(&self, rng: &mut impl Rng) -> Wait {
        let (policy, now_ms) = (self.to.policy, self.now_ms);
        let asked_ms = match self.outcome {
            Outcome::Response { headers, .. } => header_retry_after(headers, now_ms),
            _ => None,
        };
        let retry_after = asked_ms.map(|ra| ra.min(policy.max_hold_ms.max(1)));
        let quota_reset_ms = match self.outcome {
            Outcome::Response {
                status: 403,
                body_excerpt,
                ..
            } if crate::limits::dialect::salesforce_quota_exceeded(body_excerpt) => {
                Some(crate::limits::dialect::next_utc_midnight(now_ms).saturating_sub(now_ms))
            }
            _ => None,
        };
        let h = self.history;
        let backoff_n = match self.class {
            ErrorClass::RateLimited => h.consecutive_rate_limited.saturating_add(1),
            _ => h.attempts.saturating_add(1),
        };
        let delay_ms = retry_after
            .or(quota_reset_ms)
            .unwrap_or_else(|| backoff_ms(backoff_n, policy, rng));
        Wait {
            delay_ms,
            asked_ms,
            quota_reset_ms,
        }
    }

    /// Why the next attempt would come too late for the message's max age.
    fn too_old(&self, wait: &Wait) -> String {
        let (h, last, system) = (self.history, &self.last, self.to.system);
        let received = self.since(h.received_ms);
        let ago = if h.budget_start_ms > h.received_ms {
            // An operator's retry gave it a fresh window.
            let age = self.since(h.budget_start_ms);
            format!("first received {received} ago, retried by an operator {age} ago")
        } else {
            format!("first received {received} ago")
        };
        let max_age = human_duration(self.to.policy.max_age_ms.max(0));
        match wait.asked_ms {
            _ if self.now_ms > self.deadline() => {
                format!(
                    "the message is older than its {max_age} max age ({ago}); last failure: {last}"
                )
            }
            Some(ra) => format!(
                "{system} asked to wait {} (Retry-After), longer than the message's {max_age} \
                 max age allows ({ago}); last failure: {last}",
                human_duration(ra)
            ),
            None if wait.quota_reset_ms.is_some() => format!(
                "{system}'s daily quota resets in {}, later than the message's {max_age} \
                 max age allows ({ago}); last failure: {last}",
                human_duration(wait.delay_ms)
            ),
            None => format!(
                "the next attempt would fall past the message's {max_age} max age ({ago}); \
                 last failure: {last}"
            ),
        }
    }

    fn dead(self, explanation: String) -> Verdict {
        let hint = format!(
            "ferry stopped retrying; {}, then replay the message.",
            self.advice
        );
        Verdict::Dead {
            why: explained(self.class, explanation, hint),
        }
    }

    fn retry(self, at_ms: i64) -> Verdict {
        let advice = &self.advice;
        let hint = match self.class {
            ErrorClass::Auth if self.rejection() => format!(
                "ferry retries once with a refreshed credential; if it is rejected again, {advice}."
            ),
            _ if self.counts() => format!("ferry retries automatically; if it persists, {advice}."),
            _ => format!(
                "ferry retries automatically without using up the retry budget; \
                 if it persists, {advice}."
            ),
        };
        let counts_against_budget = self.counts();
        Verdict::Retry {
            at_ms,
            counts_against_budget,
            why: explained(self.class, self.last, hint),
        }
    }
}

/// The largest valid `Retry-After` among the header's values, in ms.
fn header_retry_after(headers: &HeaderMap, now_ms: i64) -> Option<i64> {
    headers
        .get_all(header::RETRY_AFTER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse_retry_after(v, now_ms))
        .max()
}

/// Short human duration: "250ms", "45s", "1.5s", "2m 5s", "1h 3m", "24h",
/// "3d 4h" (days from 48 h on). Negative values get a leading "-".
pub fn human_duration(ms: i64) -> String {
    const S: u64 = 1_000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (big, small, big_unit, small_unit) = match ms {
        _ if ms < S => return format!("{sign}{ms}ms"),
        _ if ms < M => {
            let tenths = ms % S / 100;
            return match tenths {
                0 => format!("{sign}{}s", ms / S),
                _ => format!("{sign}{}.{tenths}s", ms / S),
            };
        }
        _ if ms < H => (ms / M, ms % M / S, "m", "s"),
        _ if ms < 2 * D => (ms / H, ms % H / M, "h", "m"),
        _ => (ms / D, ms % D / H, "d", "h"),
    };
    match small {
        0 => format!("{sign}{big}{big_unit}"),
        _ => format!("{sign}{big}{big_unit} {small}{small_unit}"),
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
