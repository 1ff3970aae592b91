//! Business hours for silence detection: `"Mon-Fri 08:00-18:00 Europe/Berlin"`
//! (days as a range or a comma list, or `daily`; a time range within a day,
//! `24:00` for midnight at its end; an IANA time zone, UTC when left out).
//! [`Hours::window_start`] says whether an instant is inside the hours and
//! since when the current window runs, so a route quiet overnight is not
//! silent at 08:00 but at 08:00 plus its expected interval.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight, start inclusive, end exclusive.
    start_min: u32,
    end_min: u32,
    tz: TimeZone,
    text: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<usize, String> {
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l.starts_with(d) && d.len() <= l.len() && l.len() <= 9)
        .ok_or_else(|| format!("`{s}` is not a day (Mon, Tue, ... Sun)"))
}

fn minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a time like 08:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Hours {
    pub fn parse(text: &str) -> Result<Hours, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days_part, time_part, tz_part) = match parts.as_slice() {
            [d, t] => (*d, *t, None),
            [d, t, z] => (*d, *t, Some(*z)),
            _ => {
                return Err(format!(
                    "`{text}`: write days, hours and a time zone, like \"Mon-Fri 08:00-18:00 Europe/Berlin\""
                ));
            }
        };
        let mut days = [false; 7];
        if days_part.eq_ignore_ascii_case("daily") || days_part == "*" {
            days = [true; 7];
        } else {
            for item in days_part.split(',') {
                match item.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        let mut i = a;
                        loop {
                            days[i] = true;
                            if i == b {
                                break;
                            }
                            i = (i + 1) % 7;
                        }
                    }
                    None => days[day(item)?] = true,
                }
            }
        }
        let (a, b) = time_part
            .split_once('-')
            .ok_or_else(|| format!("`{time_part}`: write hours like 08:00-18:00"))?;
        let (start_min, end_min) = (minutes(a)?, minutes(b)?);
        if start_min >= end_min {
            return Err(format!(
                "`{time_part}`: the end must come after the start within the day (split a night into two days' hours)"
            ));
        }
        let tz = match tz_part {
            None => TimeZone::UTC,
            Some(z) => TimeZone::get(z).map_err(|_| format!("`{z}` is not a known time zone"))?,
        };
        Ok(Hours {
            days,
            start_min,
            end_min,
            tz,
            text: text.to_owned(),
        })
    }

    /// When the window `at_ms` is in began (epoch ms), or `None` outside
    /// the hours.
    pub fn window_start(&self, at_ms: i64) -> Option<i64> {
        let ts = Timestamp::from_millisecond(at_ms).ok()?;
        let local = ts.to_zoned_datetime(self.tz.clone());
        let weekday = match local.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        let minute = local.hour() as u32 * 60 + local.minute() as u32;
        if !self.days[weekday] || minute < self.start_min || minute >= self.end_min {
            return None;
        }
        let start = local
            .date()
            .at(
                (self.start_min / 60) as i8,
                (self.start_min % 60) as i8,
                0,
                0,
            )
            .to_zoned_datetime(self.tz.clone())
            .ok()?;
        Some(start.timestamp().as_millisecond())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn office_hours_in_berlin() {
        let h = Hours::parse("Mon-Fri 08:00-18:00 Europe/Berlin").unwrap();
        // 2026-12-01 is a Tuesday; Berlin is UTC+1 in December.
        assert_eq!(
            h.window_start(at("2026-12-01T07:30:00Z")),
            Some(at("2026-12-01T07:00:00Z"))
        );
        assert_eq!(
            h.window_start(at("2026-12-01T06:59:59Z")),
            None,
            "07:59 in Berlin"
        );
        assert_eq!(
            h.window_start(at("2026-12-01T17:00:00Z")),
            None,
            "18:00 in Berlin"
        );
        assert_eq!(
            h.window_start(at("2026-12-05T10:00:00Z")),
            None,
            "a Saturday"
        );
        // Summer time: UTC+2.
        assert_eq!(
            h.window_start(at("2026-07-01T06:30:00Z")),
            Some(at("2026-07-01T06:00:00Z"))
        );
    }

    #[test]
    fn days_lists_wraps_and_errors() {
        let h = Hours::parse("Sat-Mon 00:00-24:00").unwrap();
        assert!(
            h.window_start(at("2026-12-06T23:59:00Z")).is_some(),
            "Sunday"
        );
        assert!(
            h.window_start(at("2026-12-07T12:00:00Z")).is_some(),
            "Monday"
        );
        assert!(
            h.window_start(at("2026-12-08T12:00:00Z")).is_none(),
            "Tuesday"
        );
        let h = Hours::parse("mon,wed 09:00-10:00 UTC").unwrap();
        assert!(
            h.window_start(at("2026-12-02T09:30:00Z")).is_some(),
            "Wednesday"
        );
        for bad in [
            "Mon-Fri",
            "Mon-Fri 18:00-08:00",
            "Mon-Fry 08:00-18:00",
            "Mon 8-9",
            "Mon 08:00-18:00 Mars/Base",
        ] {
            assert!(Hours::parse(bad).is_err(), "{bad}");
        }
    }
}
