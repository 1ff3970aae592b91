//! How deeply a JSON document nests, read from its raw bytes without building
//! a value: the guard in front of every parser that recurses (jaq's reader
//! and evaluator, serde_json's tree). Ingest calls [`check`] on every body
//! and NDJSON line, and `transform::jq` calls it before jaq sees an input,
//! so a deep document is refused before anything could overflow a stack.
//! One pass, no recursion, no allocation: linear in the input. It judges
//! depth only; whether the bytes are JSON is the parser's job.

/// The default limit: ordinary documents nest a dozen levels at most.
pub const DEFAULT_MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JSON nests deeper than {max} levels (an opening bracket at byte {offset} is level {})", max + 1)]
pub struct DepthError {
    /// The limit passed.
    pub max: usize,
    /// Where the first bracket past the limit is.
    pub offset: usize,
}

/// Refuses `json` when its arrays and objects nest deeper than `max_depth`
/// (a scalar is depth 0, `[]` is 1, `[{}]` is 2). Brackets inside strings,
/// escaped quotes included, do not count. Bytes that are not JSON are
/// passed over, never a panic.
pub fn check(json: &[u8], max_depth: usize) -> Result<(), DepthError> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // Skip the string in a tight loop: to the next unescaped quote.
                i += 1;
                while i < json.len() {
                    match json[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(DepthError {
                        max: max_depth,
                        offset: i,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The deepest nesting in `json`, by the same reading as [`check`].
pub fn depth(json: &[u8]) -> usize {
    let mut deepest = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert_eq!(depth(b"1"), 0);
        assert_eq!(depth(b"[]"), 1);
        assert_eq!(depth(br#"[{"a":[1,{"b":2}]}]"#), 4);
        assert_eq!(depth(br#"{"a":{},"b":[[]]}"#), 3);
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        assert_eq!(depth(br#"["[[[{{{", "\"[[[", "\\", "]]]"]"#), 1);
        assert_eq!(depth(br#"{"k\"[": "v\\"}"#), 1);
        assert!(check(br#"["\\\"[[[[[[["]"#, 1).is_ok());
    }

    #[test]
    fn the_limit_is_inclusive() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check(deep(128).as_bytes(), DEFAULT_MAX_DEPTH).is_ok());
        let err = check(deep(129).as_bytes(), DEFAULT_MAX_DEPTH).unwrap_err();
        assert_eq!(err.offset, 128);
        assert_eq!(err.max, 128);
    }

    #[test]
    fn the_attack_body_is_refused_early() {
        // The issue's body: about 14 KB nested 7,000 levels.
        let body = format!("{}{}", r#"{"a":"#.repeat(7000), "}".repeat(7000));
        let err = check(body.as_bytes(), DEFAULT_MAX_DEPTH).unwrap_err();
        assert!(err.offset < 1000, "{err}");
    }

    /// A nested JSON value and its depth, built by the generator.
    fn nested() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<i32>().prop_map(serde_json::Value::from),
            "[\\[\\]{}\"\\\\a-z]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(12, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[\\[\\]{}\"\\\\a-z]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The reference: depth by walking the built value.
    fn reference(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(reference).max().unwrap_or(0),
            serde_json::Value::Object(o) => 1 + o.values().map(reference).max().unwrap_or(0),
            _ => 0,
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), max in 0usize..8) {
            let _ = check(&bytes, max);
            let d = depth(&bytes);
            prop_assert_eq!(check(&bytes, d).is_ok(), true);
        }

        #[test]
        fn depth_matches_the_value(v in nested()) {
            let text = serde_json::to_string(&v).unwrap();
            let d = reference(&v);
            prop_assert_eq!(depth(text.as_bytes()), d);
            prop_assert!(check(text.as_bytes(), d).is_ok());
            if d > 0 {
                prop_assert!(check(text.as_bytes(), d - 1).is_err());
            }
        }
    }
}
