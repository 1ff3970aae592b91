//! jaq's load and compile errors as one reason and where it is: the first
//! problem, described in words, and its byte offset in the program (jaq's
//! errors hold slices of the source, so the offset is where the slice
//! starts). `check-config` turns the offset into `file:line:column`.

use jaq_core::compile::Undefined;
use jaq_core::load::{self, lex, parse};

/// The byte offset of `part` in `code`, when it is a slice of it.
fn offset(code: &str, part: &str) -> Option<usize> {
    let start = code.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    (at >= start && at <= start + code.len()).then(|| at - start)
}

/// What a token found looks like in a message: its first line, clipped.
fn found(part: &str) -> String {
    let first = part.lines().next().unwrap_or("");
    if first.is_empty() {
        "the end of the program".into()
    } else {
        format!("`{}`", super::clip(first, 40))
    }
}

fn lex_expect(e: &lex::Expect<&str>) -> String {
    match e {
        lex::Expect::Digit => "a digit".into(),
        lex::Expect::Ident => "an identifier".into(),
        // jaq's own `as_str` panics on delimiters it does not name.
        lex::Expect::Delim(d) => match *d {
            "(" => "a closing parenthesis".into(),
            "[" => "a closing bracket".into(),
            "{" => "a closing brace".into(),
            "\"" => "a closing quote".into(),
            other => format!("the end of `{}`", super::clip(other, 20)),
        },
        lex::Expect::Escape => "an escape sequence".into(),
        lex::Expect::Unicode => "a unicode escape".into(),
        lex::Expect::Token => "a token".into(),
        _ => "something else".into(),
    }
}

fn parse_expect(e: &parse::Expect<&str>) -> String {
    match e {
        parse::Expect::Just(s) => format!("`{s}`"),
        other => other.as_str().to_owned(),
    }
}

/// The first load (lex, parse, module) error of `code`.
pub(super) fn load<P>(code: &str, errs: &load::Errors<&str, P>) -> (String, Option<usize>) {
    for (_, e) in errs {
        match e {
            load::Error::Io(v) => {
                if let Some((path, why)) = v.first() {
                    return (
                        format!("cannot load module `{path}`: {why}"),
                        offset(code, path),
                    );
                }
            }
            load::Error::Lex(v) => {
                if let Some((expect, at)) = v.first() {
                    return (
                        format!("expected {}, found {}", lex_expect(expect), found(at)),
                        offset(code, at),
                    );
                }
            }
            load::Error::Parse(v) => {
                if let Some((expect, at)) = v.first() {
                    return (
                        format!("expected {}, found {}", parse_expect(expect), found(at)),
                        offset(code, at),
                    );
                }
            }
        }
    }
    ("it does not load".into(), None)
}

/// The first compile error of `code`: a name it uses that is not defined.
pub(super) fn compile<P>(
    code: &str,
    errs: &jaq_core::compile::Errors<&str, P>,
) -> (String, Option<usize>) {
    for (_, v) in errs {
        if let Some((name, undefined)) = v.first() {
            let what = match undefined {
                Undefined::Filter(arity) => format!("filter `{name}/{arity}`"),
                other => format!("{} `{name}`", other.as_str()),
            };
            return (format!("undefined {what}"), offset(code, name));
        }
    }
    ("it does not compile".into(), None)
}

#[cfg(test)]
mod tests {
    use crate::transform::jq::{Jq, JqError};

    fn at(code: &str) -> (String, Option<(usize, usize)>) {
        match Jq::compile(code) {
            Err(JqError::Compile { why, at, .. }) => (why, at),
            other => panic!("compiled: {other:?}"),
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let (why, pos) = at(".a |\n  .b | (");
        assert_eq!(pos, Some((2, 9)), "{why}");
        let (why, pos) = at("{\n  a: .x,\n  b: nosuch(1)\n}");
        assert!(why.contains("undefined filter `nosuch/1`"), "{why}");
        assert_eq!(pos, Some((3, 6)));
        let (why, pos) = at(".a | $nope");
        assert!(why.contains("variable"), "{why}");
        assert_eq!(pos, Some((1, 6)));
        let (why, pos) = at("\"abc");
        assert!(why.contains("closing quote"), "{why}");
        assert!(pos.is_some());
    }
}
