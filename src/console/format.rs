//! How the console writes numbers and times: thousands separated
//! (`2,314`), instants as UTC dates, ages in words (`3 min ago`), and a
//! JSON payload laid out for reading without changing what it says.

/// `2314` → `2,314`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An instant in epoch milliseconds as `2026-12-02 14:05:07 UTC`.
pub fn time(ms: i64) -> String {
    crate::deliver::hold::utc_time(ms)
}

/// How long before `now` an instant was: `42 s ago`, `3 min ago`,
/// `5 h ago`, `2 d ago`; `in 3 min` when it is ahead.
pub fn ago(ms: i64, now_ms: i64) -> String {
    let d = now_ms - ms;
    let (n, ahead) = (d.unsigned_abs() / 1000, d < 0);
    if n == 0 {
        return "just now".to_owned();
    }
    let text = match n {
        0..60 => format!("{n} s"),
        60..3600 => format!("{} min", n / 60),
        3600..86_400 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A request budget as people say it: "2.0/s, burst 40".
pub fn rate(r: &crate::limits::pace::Rate) -> String {
    format!(
        "{:.1}/s, burst {}",
        1e6 / r.interval_us as f64,
        r.tolerance_us / r.interval_us.max(1) + 1
    )
}

/// `n` and its noun, singular or plural ("1 group", "2,314 groups").
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A stored payload laid out with two-space indentation when it is JSON,
/// with every number, string and key order exactly as written (jaq reads
/// and prints it; nothing passes through floating point); any other text
/// as it is.
pub fn payload(text: &str) -> String {
    crate::transform::diff::pretty(text).unwrap_or_else(|_| text.to_owned())
}

/// What a URL part leaves as it is: letters, digits and `-._~` (RFC 3986's
/// unreserved characters); everything else is percent-encoded.
const PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` percent-encoded for a path segment or a query value.
pub fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PART).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ages_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(2314), "2,314");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(ago(0, 42_000), "42 s ago");
        assert_eq!(ago(0, 185_000), "3 min ago");
        assert_eq!(ago(0, 5 * 3_600_000), "5 h ago");
        assert_eq!(ago(0, 50 * 3_600_000), "2 d ago");
        assert_eq!(ago(180_000, 0), "in 3 min");
    }

    #[test]
    fn payloads_keep_their_numbers_when_laid_out() {
        let p = payload(r#"{"price":12.50,"id":9007199254740993,"a":[1,{"b":null}]}"#);
        assert!(p.contains("12.50") && p.contains("9007199254740993"), "{p}");
        assert!(p.contains('\n'), "{p}");
        assert_eq!(payload("not json <b>"), "not json <b>");
    }
}
