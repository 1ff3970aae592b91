//! jq programs (the jaq crates), compiled once when the configuration is
//! loaded and run many times: a route's `ordering_key`, read at ingest, and
//! the batch body wrapper and result mapping of a destination's `batch`.
//! jaq's arithmetic is floating point: mappings keep money as strings.

use std::fmt;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, unwrap_valr};
use jaq_json::Val;

/// A compiled jq program and its source (for messages and equality).
pub struct Jq {
    code: String,
    filter: jaq_core::Filter<JustLut<Val>>,
    /// Names of the variables the caller binds (`$keys`), in order.
    vars: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JqError {
    #[error("`{code}` is not a jq program: {why}")]
    Compile { code: String, why: String },
    #[error("the input is not JSON: {0}")]
    Input(String),
    #[error("`{code}` failed: {why}")]
    Run { code: String, why: String },
}

impl Jq {
    pub fn compile(code: &str) -> Result<Jq, JqError> {
        Jq::compile_with(code, &[])
    }

    /// Compiles a program that may use the variables `vars` (`"$keys"`),
    /// given values in the same order by [`Jq::run_value_with`].
    pub fn compile_with(code: &str, vars: &[&'static str]) -> Result<Jq, JqError> {
        let bad = |why: String| JqError::Compile {
            code: code.to_owned(),
            why,
        };
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errs| bad(describe(&errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(vars.iter().copied())
            .compile(modules)
            .map_err(|errs| bad(describe(&errs)))?;
        Ok(Jq {
            code: code.to_owned(),
            filter,
            vars: vars.to_vec(),
        })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Every output of the program on `input`, as JSON values.
    pub fn run(&self, input: Val) -> Result<Vec<serde_json::Value>, JqError> {
        self.run_bound(input, Vec::new())
    }

    fn run_bound(&self, input: Val, vars: Vec<Val>) -> Result<Vec<serde_json::Value>, JqError> {
        if vars.len() != self.vars.len() {
            return Err(self.failed(format!("it needs {} variables", self.vars.len())));
        }
        let ctx = Ctx::<JustLut<Val>>::new(&self.filter.lut, Vars::new(vars));
        self.filter
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .map(|r| {
                let v = r.map_err(|e| self.failed(e.to_string()))?;
                serde_json::from_str(&v.to_string())
                    .map_err(|e| self.failed(format!("its output is not JSON: {e}")))
            })
            .collect()
    }

    /// Runs the program on a JSON document.
    pub fn run_bytes(&self, json: &[u8]) -> Result<Vec<serde_json::Value>, JqError> {
        self.run(parse(json)?)
    }

    /// Runs the program on a JSON value built in Rust.
    pub fn run_value(&self, input: &serde_json::Value) -> Result<Vec<serde_json::Value>, JqError> {
        self.run(parse(input.to_string().as_bytes())?)
    }

    /// Runs a program compiled with [`Jq::compile_with`], binding its
    /// variables to `vars` in order.
    pub fn run_value_with(
        &self,
        input: &serde_json::Value,
        vars: &[serde_json::Value],
    ) -> Result<Vec<serde_json::Value>, JqError> {
        let vars = vars
            .iter()
            .map(|v| parse(v.to_string().as_bytes()))
            .collect::<Result<_, _>>()?;
        self.run_bound(parse(input.to_string().as_bytes())?, vars)
    }

    /// The one value the program gives for `json`, as a key: a string as
    /// itself, anything else as its JSON text. No output, `null` or more than
    /// one output is an error: a key must name one thing.
    pub fn key(&self, json: &[u8]) -> Result<String, JqError> {
        let mut out = self.run_bytes(json)?;
        match (out.pop(), out.is_empty()) {
            (Some(serde_json::Value::String(s)), true) => Ok(s),
            (Some(serde_json::Value::Null), true) | (None, _) => {
                Err(self.failed("it gave no value (null or nothing)".into()))
            }
            (Some(v), true) => Ok(v.to_string()),
            (Some(_), false) => Err(self.failed("it gave more than one value".into())),
        }
    }

    fn failed(&self, why: String) -> JqError {
        JqError::Run {
            code: self.code.clone(),
            why,
        }
    }
}

fn parse(json: &[u8]) -> Result<Val, JqError> {
    jaq_json::read::parse_single(json).map_err(|e| JqError::Input(e.to_string()))
}

fn describe(errs: &impl fmt::Debug) -> String {
    let s = format!("{errs:?}");
    if s.len() > 300 {
        format!("{}…", &s[..s.floor_char_boundary(300)])
    } else {
        s
    }
}

impl fmt::Debug for Jq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jq({:?})", self.code)
    }
}

impl PartialEq for Jq {
    fn eq(&self, other: &Jq) -> bool {
        self.code == other.code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_strings_or_json_text() {
        let jq = Jq::compile(".order.id").unwrap();
        assert_eq!(jq.key(br#"{"order":{"id":"A-1"}}"#).unwrap(), "A-1");
        assert_eq!(jq.key(br#"{"order":{"id":42}}"#).unwrap(), "42");
        let sku = Jq::compile(r#".sku + "@" + .warehouse"#).unwrap();
        assert_eq!(sku.key(br#"{"sku":"X","warehouse":"W1"}"#).unwrap(), "X@W1");
    }

    #[test]
    fn a_key_must_be_one_value() {
        let jq = Jq::compile(".id").unwrap();
        assert!(matches!(jq.key(b"{}"), Err(JqError::Run { .. })));
        assert!(matches!(jq.key(b"not json"), Err(JqError::Input(_))));
        let many = Jq::compile(".ids[]").unwrap();
        assert!(matches!(
            many.key(br#"{"ids":[1,2]}"#),
            Err(JqError::Run { .. })
        ));
    }

    #[test]
    fn bad_programs_are_refused_at_compile_time() {
        assert!(matches!(Jq::compile(".a |"), Err(JqError::Compile { .. })));
        assert!(matches!(
            Jq::compile("nosuchfn(1)"),
            Err(JqError::Compile { .. })
        ));
    }

    #[test]
    fn variables_are_bound_by_the_caller() {
        let jq =
            Jq::compile_with("[range(length) as $i | .[$i] + {k: $keys[$i]}]", &["$keys"]).unwrap();
        let out = jq
            .run_value_with(
                &serde_json::json!([{"a": 1}, {"a": 2}]),
                &[serde_json::json!(["x", "y"])],
            )
            .unwrap();
        assert_eq!(
            out,
            vec![serde_json::json!([{"a": 1, "k": "x"}, {"a": 2, "k": "y"}])]
        );
        assert!(matches!(Jq::compile("$keys"), Err(JqError::Compile { .. })));
    }

    #[test]
    fn programs_build_documents() {
        let wrap = Jq::compile("{inputs: map(.)}").unwrap();
        let out = wrap
            .run_value(&serde_json::json!([{"a": 1}, {"a": 2.5}]))
            .unwrap();
        assert_eq!(
            out,
            vec![serde_json::json!({"inputs": [{"a": 1}, {"a": 2.5}]})]
        );
    }
}
