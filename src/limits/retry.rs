//! The retry policy's pure parts: a system's limits ([`RetryPolicy`]), the
//! full-jitter backoff and the reading of a `Retry-After` header. What an
//! attempt's outcome means (`deliver::retry::decide`) builds on them.

use rand::Rng;

/// Retry limits for one destination system. Negative values act as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Budget-counted attempts after which the message is dead.
    pub max_attempts: u32,
    /// Backoff cap for the first retry; doubles per counted attempt.
    pub initial_delay_ms: i64,
    /// Upper bound on the backoff cap (not on `Retry-After`).
    pub max_delay_ms: i64,
    /// Age, from first receipt, after which the message is not retried.
    pub max_age_ms: i64,
    /// The longest a `Retry-After` or a dialect header may hold deliveries
    /// (`rate_limit.max_hold`): a platform asking for more is heard as this.
    pub max_hold_ms: i64,
}

impl Default for RetryPolicy {
    /// 8 attempts, 1 s initial delay, 10 min max delay, 24 h max age, 1 h max hold.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_delay_ms: 1_000,
            max_delay_ms: 10 * 60 * 1_000,
            max_age_ms: 24 * 60 * 60 * 1_000,
            max_hold_ms: 60 * 60 * 1_000,
        }
    }
}

/// Parses a `Retry-After` value into a delay in ms from `now_ms`.
///
/// Accepts delay-seconds (`"120"`), a non-negative decimal (`"1.5"`, rounded
/// up to a whole ms) and an HTTP-date in any form `httpdate` parses (IMF
/// fixdate, RFC 850, asctime); a date in the past gives `Some(0)`. Huge values
/// saturate at `i64::MAX` rather than being capped. Anything else (empty,
/// negative, NaN, exponents, garbage) gives `None`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(int) && all_digits(frac) && int.len() + frac.len() > 0 {
        let secs = int.bytes().fold(0i64, |acc, b| {
            acc.saturating_mul(10).saturating_add(i64::from(b - b'0'))
        });
        let mut ms = 0i64;
        for (i, b) in frac.bytes().enumerate() {
            let d = i64::from(b - b'0');
            match i {
                0..=2 => ms += d * 10i64.pow(2 - i as u32),
                _ if d > 0 => return Some(secs.saturating_mul(1000).saturating_add(ms + 1)),
                _ => {}
            }
        }
        return Some(secs.saturating_mul(1000).saturating_add(ms));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let date_ms = match date.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => return Some(0),
    };
    Some(date_ms.saturating_sub(now_ms).max(0))
}

/// Full-jitter backoff for the `n`-th counted attempt (`n` below 1 acts as 1).
///
/// Uniform in `[0, min(max_delay, initial_delay * 2^(n-1))]`, then raised to
/// at least 1 ms so a retry is never scheduled at `now` itself.
pub fn backoff_ms(n: u32, policy: &RetryPolicy, rng: &mut impl Rng) -> i64 {
    let max = policy.max_delay_ms.max(0);
    let initial = policy.initial_delay_ms.max(0);
    let factor = 1i64
        .checked_shl(n.max(1) - 1)
        .filter(|f| *f > 0)
        .unwrap_or(i64::MAX);
    let cap = initial.saturating_mul(factor).min(max);
    rng.random_range(0..=cap).max(1)
}
