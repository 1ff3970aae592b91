//! Holds: when a platform says "nothing before then" (`Retry-After`, or its
//! rate-limit dialect), `attempt::heed` holds the system's shared budget so
//! no worker sends early. This module bounds such a hold and keeps it
//! visible: a hold is capped at the system's `rate_limit.max_hold` (and at
//! its `retry.max_age`, past which no message waits anyway), and the hold in
//! force is remembered per system with where it came from, so the admin API
//! explains every delivery that waits unattempted ("held by shop's
//! Retry-After until 14:05 UTC") and `/metrics` shows `ferry_hold_until_seconds`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{System, SystemName};

/// What a hold in force says, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Until when nothing is sent (ms since the Unix epoch).
    pub until_ms: i64,
    /// What asked for it: `Retry-After`, `the shopify rate-limit headers`, ...
    pub source: String,
    /// Whether the platform asked for longer and the hold was cut to
    /// `max_hold` / `max_age`.
    pub capped: bool,
}

impl Hold {
    /// "held by shop's Retry-After until 14:05:07 UTC".
    pub fn explain(&self, system: &str) -> String {
        let capped = if self.capped {
            " (the platform asked for longer; capped by rate_limit.max_hold)"
        } else {
            ""
        };
        format!(
            "held by {system}'s {} until {}{capped}",
            self.source,
            utc_time(self.until_ms)
        )
    }
}

/// A spent daily quota waits for ferry's own reckoning of its reset (at
/// most a day, see `dialect::next_utc_midnight`), not for a number the
/// platform sent: `max_hold` does not cut it, `max_age` still does.
const DAY_MS: i64 = 86_400_000;

/// The longest a platform's hold may last from `now_ms` for `system`;
/// `daily` for a spent daily quota.
pub fn cap_ms(system: &System, now_ms: i64, daily: bool) -> i64 {
    let hold = if daily {
        DAY_MS
    } else {
        system.retry.max_hold_ms
    };
    let longest = hold.min(system.retry.max_age_ms).max(1);
    now_ms.saturating_add(longest)
}

/// Holds in force on this instance, per system.
#[derive(Debug, Default)]
pub struct Holds {
    by_system: Mutex<HashMap<SystemName, Hold>>,
}

impl Holds {
    /// Bounds a hold `system` was asked for until `until_ms` and remembers it;
    /// returns the bounded time.
    pub fn note(
        &self,
        system: &System,
        source: &str,
        daily: bool,
        until_ms: i64,
        now_ms: i64,
    ) -> i64 {
        let cap = cap_ms(system, now_ms, daily);
        let hold = Hold {
            until_ms: until_ms.min(cap),
            source: source.to_owned(),
            capped: until_ms > cap,
        };
        let until = hold.until_ms;
        let mut map = self.by_system.lock().expect("holds poisoned");
        match map.get(&system.name) {
            Some(h) if h.until_ms > now_ms && h.until_ms >= until => {}
            _ => {
                map.insert(system.name.clone(), hold);
            }
        }
        until
    }

    /// The hold in force on `system` at `now_ms`.
    pub fn current(&self, system: &str, now_ms: i64) -> Option<Hold> {
        let map = self.by_system.lock().expect("holds poisoned");
        map.get(system).filter(|h| h.until_ms > now_ms).cloned()
    }
}

/// `14:05:07 UTC`, with the date when it is not today's.
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (day, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(day);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe.saturating_add(era.saturating_mul(400)) + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_time(1_767_225_600_000 + 50_707_000),
            "2026-01-01 14:05:07 UTC"
        );
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        // Never panics at the edges.
        let _ = utc_time(i64::MAX);
        let _ = utc_time(i64::MIN);
    }
}
