//! The path-level difference between two JSON documents, for `ferry mapping
//! diff` (two versions of a mapping on the same sample), golden tests and
//! shadow upgrades: `$.lines[0].price: "12.50" → 12.5 (string → number)`,
//! `+ $.tags: [...]`, `- $.note: ...`. Documents are read with jaq's reader,
//! so a number is compared by its text (`12.50` and `12.5` differ, as they
//! do on the wire) and key order does not count.

use std::fmt;

use jaq_json::Val;

use super::json_depth;

/// One difference, at a JSONPath-like location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        path: String,
        value: String,
    },
    Removed {
        path: String,
        value: String,
    },
    Changed {
        path: String,
        from: String,
        to: String,
        kinds: Option<(&'static str, &'static str)>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { path, value } => write!(f, "+ {path}: {value}"),
            Change::Removed { path, value } => write!(f, "- {path}: {value}"),
            Change::Changed {
                path,
                from,
                to,
                kinds,
            } => {
                write!(f, "{path}: {from} → {to}")?;
                match kinds {
                    Some((a, b)) => write!(f, " ({a} → {b})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The changes from `a` to `b` (both JSON text), in document order.
pub fn diff(a: &str, b: &str) -> Result<Vec<Change>, String> {
    let (a, b) = (read(a)?, read(b)?);
    let mut out = Vec::new();
    walk("$".into(), &a, &b, &mut out);
    Ok(out)
}

/// `text` indented two spaces per level, numbers and key order as written.
pub fn pretty(text: &str) -> Result<String, String> {
    let pp = jaq_json::write::Pp {
        indent: Some("  ".to_owned()),
        sep_space: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    jaq_json::write::write(&mut out, &pp, 0, &read(text)?).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// `text` written compactly, numbers and key order as written.
pub fn compact(text: &str) -> Result<String, String> {
    Ok(read(text)?.to_string())
}

fn read(text: &str) -> Result<Val, String> {
    json_depth::check(text.as_bytes(), super::jq::MAX_INPUT_DEPTH).map_err(|e| e.to_string())?;
    jaq_json::read::parse_single(text.as_bytes()).map_err(|e| e.to_string())
}

fn kind(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

/// A value as it reads in a change: JSON text, clipped.
fn shown(v: &Val) -> String {
    super::clip(&v.to_string(), 120)
}

/// `$.name` for a plain key, `$["odd key"]` for any other.
fn key_path(parent: &str, key: &Val) -> String {
    let name = match key {
        Val::TStr(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    };
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{name}")
    } else {
        format!("{parent}[{}]", serde_json::Value::String(name))
    }
}

fn walk(path: String, a: &Val, b: &Val, out: &mut Vec<Change>) {
    match (a, b) {
        (Val::Obj(x), Val::Obj(y)) => {
            for (k, va) in x.iter() {
                match y.get(k) {
                    Some(vb) => walk(key_path(&path, k), va, vb, out),
                    None => out.push(Change::Removed {
                        path: key_path(&path, k),
                        value: shown(va),
                    }),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Change::Added {
                    path: key_path(&path, k),
                    value: shown(vb),
                });
            }
        }
        (Val::Arr(x), Val::Arr(y)) => {
            for (i, pair) in x.iter().zip(y.iter()).enumerate() {
                walk(format!("{path}[{i}]"), pair.0, pair.1, out);
            }
            for (i, v) in x.iter().enumerate().skip(y.len()) {
                out.push(Change::Removed {
                    path: format!("{path}[{i}]"),
                    value: shown(v),
                });
            }
            for (i, v) in y.iter().enumerate().skip(x.len()) {
                out.push(Change::Added {
                    path: format!("{path}[{i}]"),
                    value: shown(v),
                });
            }
        }
        _ => {
            // Scalars (and values of different kinds) compare by their text:
            // `12.50` is not `12.5` on the wire.
            let (ta, tb) = (a.to_string(), b.to_string());
            if ta != tb {
                let (ka, kb) = (kind(a), kind(b));
                out.push(Change::Changed {
                    path,
                    from: super::clip(&ta, 120),
                    to: super::clip(&tb, 120),
                    kinds: (ka != kb).then_some((ka, kb)),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(a: &str, b: &str) -> Vec<String> {
        diff(a, b).unwrap().iter().map(Change::to_string).collect()
    }

    #[test]
    fn changes_are_named_by_path_with_their_kinds() {
        let a = r#"{"lines":[{"price":"12.50","qty":1}],"note":"x","id":9007199254740993}"#;
        let b = r#"{"id":9007199254740993,"lines":[{"price":12.5,"qty":1}],"tags":["a"]}"#;
        assert_eq!(
            lines(a, b),
            [
                r#"$.lines[0].price: "12.50" → 12.5 (string → number)"#,
                r#"- $.note: "x""#,
                r#"+ $.tags: ["a"]"#,
            ]
        );
    }

    #[test]
    fn numbers_compare_by_their_text() {
        assert_eq!(
            lines(r#"{"p":12.50}"#, r#"{"p":12.5}"#),
            ["$.p: 12.50 → 12.5"]
        );
        assert_eq!(
            lines("[9007199254740993]", "[9007199254740992]"),
            ["$[0]: 9007199254740993 → 9007199254740992"]
        );
        assert!(lines(r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#).is_empty());
        assert_eq!(
            lines(r#"{"odd key":[1,2]}"#, r#"{"odd key":[1]}"#),
            [r#"- $["odd key"][1]: 2"#]
        );
    }
}
