//! jq programs (the jaq crates), compiled once when the configuration is
//! loaded and run many times: a route's `ordering_key`, read at ingest, and
//! the batch body wrapper and result mapping of a destination's `batch`.
//! jaq's arithmetic is floating point: mappings keep money as strings.
//! Programs see only their input and `$now` (`jq_env` says what is left
//! out), and run on the `pool`'s threads, never on the async runtime, with
//! a deadline (`server.jq_timeout`) and a cap on their outputs. Inputs are
//! held to [`MAX_INPUT_DEPTH`] levels before jaq reads them.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;

pub use super::jq_env::MAX_INPUT_DEPTH;
use super::jq_env::{self, Env, Guard, Guarded, Overrun};
use super::jq_errors;
use super::json_depth;
use super::pool::{self, PoolError};

/// How long a run may take unless `server.jq_timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Outputs one run may give: a key is one value, a batch body one document.
pub const MAX_OUTPUTS: usize = 10_000;
/// Bytes of JSON one run may give, all outputs together.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// The variable every program may read: the time of the run, in seconds
/// since the epoch, from ferry's clock (so tests and replays see theirs).
pub const NOW: &str = "$now";

/// A compiled jq program and its source (for messages and equality).
pub struct Jq {
    code: String,
    filter: jaq_core::Filter<Guarded>,
    /// Names of the variables the caller binds (`$keys`), in order.
    vars: Vec<&'static str>,
    timeout: Duration,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JqError {
    /// Not a jq program; `at` is the line and column (from 1) of the
    /// first problem, where jaq points at one.
    #[error("`{code}` is not a jq program: {why}")]
    Compile {
        code: String,
        why: String,
        at: Option<(usize, usize)>,
    },
    #[error("the input is not JSON: {0}")]
    Input(String),
    #[error("`{code}` failed: {why}")]
    Run { code: String, why: String },
    /// Past the deadline, the output cap or the recursion limit: the
    /// program, or the program on this input, costs too much.
    #[error("`{code}` was stopped: {why}")]
    Overrun { code: String, why: String },
    /// No thread to run it on now (the pool's queue is full or its
    /// threads are stuck); nothing about this input.
    #[error("{0}")]
    Busy(String),
}

/// What a run gives back from the pool: each output as JSON text.
pub type Answer = Result<Vec<JsonText>, JqError>;

/// One output of a program, written from jaq's value (so `12.50` stays
/// `12.50` and a 64-bit id stays exact) and checked to be strict JSON: no
/// `NaN` or `Infinity`, no byte strings, only string keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `text` when it is strict JSON; the parser's reason when not.
    pub fn check(text: String) -> Result<JsonText, String> {
        match serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            Ok(_) => Ok(JsonText(text)),
            Err(e) => Err(format!("{e} in `{}`", super::clip(&text, 120))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// A parsed view, for values ferry reads itself (keys, batch results);
    /// numbers in it are `f64`/`i64`, so bodies never go through it.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// A run's input: raw bytes (a body as received) or a value built in Rust.
#[derive(Debug, Clone)]
pub enum Input {
    Bytes(Vec<u8>),
    Value(serde_json::Value),
}

impl Jq {
    pub fn compile(code: &str) -> Result<Jq, JqError> {
        Jq::compile_with(code, &[])
    }

    /// Compiles a program that may use the variables `vars` (`"$keys"`),
    /// given values in the same order at each run, besides `$now`.
    pub fn compile_with(code: &str, vars: &[&'static str]) -> Result<Jq, JqError> {
        let bad = |(why, at): (String, Option<usize>)| JqError::Compile {
            code: code.to_owned(),
            at: at.map(|offset| line_col(code, offset)),
            why: jq_env::reaching_out(code).unwrap_or(why),
        };
        let arena = Arena::default();
        let modules = Loader::new(jq_env::defs())
            .load(&arena, File { code, path: () })
            .map_err(|errs| bad(jq_errors::load(code, &errs)))?;
        let filter = Compiler::default()
            .with_funs(jq_env::funs())
            .with_global_vars([NOW].into_iter().chain(vars.iter().copied()))
            .compile(modules)
            .map_err(|errs| bad(jq_errors::compile(code, &errs)))?;
        Ok(Jq {
            code: code.to_owned(),
            filter,
            vars: vars.to_vec(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same program with another deadline per run.
    pub fn with_timeout(mut self, timeout: Duration) -> Jq {
        self.timeout = timeout;
        self
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every output of the program on `input`, run on the pool, with its
    /// variables bound to `vars` and `$now` to `now_ms`.
    pub async fn run(
        self: &Arc<Self>,
        input: Input,
        vars: Vec<serde_json::Value>,
        now_ms: i64,
    ) -> Answer {
        let jq = self.clone();
        let ran = pool::global()
            .run(self.timeout, move |deadline| {
                jq.eval(input, &vars, now_ms, deadline)
            })
            .await;
        self.settle(ran)
    }

    /// [`Jq::run`] for callers outside the async runtime (tests, the CLI).
    pub fn run_blocking(
        self: &Arc<Self>,
        input: Input,
        vars: Vec<serde_json::Value>,
        now_ms: i64,
    ) -> Answer {
        let jq = self.clone();
        let ran = pool::global().run_blocking(self.timeout, move |deadline| {
            jq.eval(input, &vars, now_ms, deadline)
        });
        self.settle(ran)
    }

    fn settle(&self, ran: Result<Answer, PoolError>) -> Answer {
        match ran {
            Ok(answer) => answer,
            Err(PoolError::Timeout | PoolError::Lost) => Err(self.overrun(self.past_deadline())),
            Err(e @ (PoolError::Busy(_) | PoolError::Exhausted(_))) => {
                Err(JqError::Busy(e.to_string()))
            }
        }
    }

    /// The one value the program gives for `json`, as a key: a string as
    /// itself, anything else as its JSON text. No output, `null` or more than
    /// one output is an error: a key must name one thing.
    pub async fn key(self: &Arc<Self>, json: &[u8], now_ms: i64) -> Result<String, JqError> {
        let out = self
            .run(Input::Bytes(json.to_vec()), Vec::new(), now_ms)
            .await?;
        self.one_key(out)
    }

    /// [`Jq::key`] outside the async runtime.
    pub fn key_blocking(self: &Arc<Self>, json: &[u8], now_ms: i64) -> Result<String, JqError> {
        let out = self.run_blocking(Input::Bytes(json.to_vec()), Vec::new(), now_ms)?;
        self.one_key(out)
    }

    fn one_key(&self, mut out: Vec<JsonText>) -> Result<String, JqError> {
        match (out.pop(), out.is_empty()) {
            (Some(v), true) if v.as_str() == "null" => {
                Err(self.failed("it gave no value (null or nothing)".into()))
            }
            (None, _) => Err(self.failed("it gave no value (null or nothing)".into())),
            // A string is the key itself; anything else its JSON text.
            (Some(v), true) => match v.value() {
                serde_json::Value::String(s) => Ok(s),
                _ => Ok(v.into_string()),
            },
            (Some(_), false) => Err(self.failed("it gave more than one value".into())),
        }
    }

    /// The run itself, on the calling thread (a pool thread): the depth
    /// check, jaq's reader, the program under its guard, the output caps.
    fn eval(
        &self,
        input: Input,
        vars: &[serde_json::Value],
        now_ms: i64,
        deadline: Instant,
    ) -> Answer {
        if vars.len() != self.vars.len() {
            return Err(self.failed(format!("it needs {} variables", self.vars.len())));
        }
        let guard = Guard::new(deadline);
        let run = AssertUnwindSafe(|| -> Answer {
            let input = match &input {
                Input::Bytes(b) => parse(b)?,
                Input::Value(v) => parse(v.to_string().as_bytes())?,
            };
            let mut bound = vec![Val::from(now_ms as f64 / 1000.0)];
            for v in vars {
                bound.push(parse(v.to_string().as_bytes())?);
            }
            self.outputs(input, bound, &guard)
        });
        match catch_unwind(run) {
            Ok(answer) => answer,
            Err(payload) => Err(self.overrun(match payload.downcast_ref::<Overrun>() {
                Some(Overrun::Deadline) => self.past_deadline(),
                Some(Overrun::Recursion) => {
                    "it recursed too deeply (a recursion that does not end?)".into()
                }
                None => "jq failed inside (a bug in jaq)".into(),
            })),
        }
    }

    fn outputs(&self, input: Val, vars: Vec<Val>, guard: &Guard) -> Answer {
        let env = Env {
            lut: &self.filter.lut,
            guard,
        };
        let ctx = Ctx::<Guarded>::new(env, Vars::new(vars));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for r in self.filter.id.run((ctx, input)) {
            if Instant::now() >= guard.deadline() {
                return Err(self.overrun(self.past_deadline()));
            }
            if out.len() >= MAX_OUTPUTS {
                return Err(self.overrun(format!("it gave more than {MAX_OUTPUTS} values")));
            }
            // Only errors come out of a main filter: jaq_std's `halt` is
            // not in ferry's environment, so nothing can end the process.
            let v = r.map_err(|e| match e.get_err() {
                Ok(e) => self.failed(e.to_string()),
                Err(_) => self.failed("it stopped abnormally".into()),
            })?;
            let text = v.to_string();
            bytes = bytes.saturating_add(text.len());
            if bytes > MAX_OUTPUT_BYTES {
                return Err(self.overrun(format!(
                    "its output is larger than {MAX_OUTPUT_BYTES} bytes"
                )));
            }
            out.push(
                JsonText::check(text)
                    .map_err(|e| self.failed(format!("its output is not JSON: {e}")))?,
            );
        }
        Ok(out)
    }

    fn past_deadline(&self) -> String {
        format!("it ran longer than {:?} (server.jq_timeout)", self.timeout)
    }

    fn overrun(&self, why: String) -> JqError {
        JqError::Overrun {
            code: self.code.clone(),
            why,
        }
    }

    fn failed(&self, why: String) -> JqError {
        JqError::Run {
            code: self.code.clone(),
            why,
        }
    }
}

/// jaq's reader, behind the depth check (it recurses per level).
fn parse(json: &[u8]) -> Result<Val, JqError> {
    json_depth::check(json, MAX_INPUT_DEPTH).map_err(|e| JqError::Input(e.to_string()))?;
    jaq_json::read::parse_single(json).map_err(|e| JqError::Input(e.to_string()))
}

/// The line and column (both from 1, the column in characters) of a byte
/// offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, col)
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
#[path = "jq_tests.rs"]
mod tests;
