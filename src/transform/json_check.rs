//! The JSON checks every ingest body (webhook, API call, each NDJSON line of
//! a bulk upload) passes before it is stored, and an operator's edited
//! payload before it replaces one: nesting no deeper than the
//! route's `max_depth`, valid UTF-8 throughout, and one well-formed JSON value.
//! The depth scan (`transform::json_depth`) is iterative and linear, so a body nested thousands deep
//! is refused without recursing anywhere; only then does serde_json look at
//! it (whose `IgnoredAny` skips strings without checking their UTF-8, hence
//! the separate check).

use serde::de::IgnoredAny;

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("the JSON nests deeper than this route's limit of {max} levels (at byte {at})")]
    TooDeep { max: usize, at: usize },
    #[error("the body is not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
}

impl JsonError {
    /// The problem type's slug.
    pub fn slug(&self) -> &'static str {
        match self {
            JsonError::TooDeep { .. } => "json-too-deep",
            JsonError::NotUtf8 { .. } => "not-utf8",
            JsonError::Malformed(_) => "malformed-json",
        }
    }
}

/// All three checks, cheapest first.
pub fn check(body: &[u8], max_depth: usize) -> Result<(), JsonError> {
    depth_within(body, max_depth)?;
    std::str::from_utf8(body).map_err(|e| JsonError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    serde_json::from_slice::<IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| JsonError::Malformed(e.to_string()))
}

/// Refuses nesting of arrays and objects deeper than `max` (the scan is
/// `transform::json_depth`, the same guard jq's inputs pass).
pub fn depth_within(bytes: &[u8], max: usize) -> Result<(), JsonError> {
    super::json_depth::check(bytes, max).map_err(|e| JsonError::TooDeep { max, at: e.offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn depth_counts_containers_not_brackets_in_strings() {
        assert!(check(&nested(128).into_bytes(), 128).is_ok());
        assert_eq!(
            check(&nested(129).into_bytes(), 128),
            Err(JsonError::TooDeep { max: 128, at: 128 })
        );
        let mixed = r#"{"a":[{"b":"[[[[\"{{{{"}]}"#;
        assert!(depth_within(mixed.as_bytes(), 3).is_ok());
        assert!(depth_within(mixed.as_bytes(), 2).is_err());
        // An escaped backslash before the closing quote ends the string.
        assert!(depth_within(br#"["\\",[[]]]"#, 3).is_ok());
        assert!(depth_within(br#"["\\",[[]]]"#, 2).is_err());
    }

    #[test]
    fn seven_thousand_levels_are_refused_without_recursion() {
        let deep = nested(7_000);
        assert!(matches!(
            check(deep.as_bytes(), 128),
            Err(JsonError::TooDeep { .. })
        ));
        // serde_json's IgnoredAny skips iteratively and would have let it
        // through, which is why the depth is ours to check.
        assert!(serde_json::from_slice::<IgnoredAny>(deep.as_bytes()).is_ok());
    }

    #[test]
    fn invalid_utf8_inside_a_string_is_refused() {
        let body = b"{\"name\":\"caf\xe9\"}";
        // serde_json skips strings it ignores without decoding them.
        assert!(serde_json::from_slice::<IgnoredAny>(body).is_ok());
        assert_eq!(check(body, 128), Err(JsonError::NotUtf8 { at: 12 }));
        assert!(check("{\"name\":\"café\"}".as_bytes(), 128).is_ok());
    }

    #[test]
    fn malformed_json_is_still_refused() {
        assert!(matches!(
            check(b"{\"a\":", 128),
            Err(JsonError::Malformed(_))
        ));
        assert!(matches!(check(b"]]]", 128), Err(JsonError::Malformed(_))));
        assert!(matches!(
            check(b"\"unterminated", 128),
            Err(JsonError::Malformed(_))
        ));
    }
}
