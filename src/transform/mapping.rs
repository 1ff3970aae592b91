//! A route's jq mapping file: loaded and compiled when the configuration
//! loads (a syntax error is reported as `file:line:column`), run on the jq
//! pool for each delivery. A mapping emits the request body (`emits =
//! "body"`, the default) or the whole request (`emits = "request"`): one
//! object `{"body", "path", "query", "headers"}` whose `path` fills the
//! destination path's `{name}` placeholders (URL-encoded) and whose
//! `headers` are added to the request (never `authorization` or the
//! idempotency header). No output means nothing to send (the delivery ends
//! `skipped`); more than one output, or a failure, is a `mapping` error with
//! jq's reason and an excerpt of the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::TransformError;
use super::jq::{Answer, Input, Jq, JqError, JsonText};

/// Bytes of the input quoted in a mapping error.
const INPUT_EXCERPT: usize = 200;

/// Headers a mapping may not set: ferry's own (credentials, the stable
/// idempotency key) and the ones that frame the HTTP message.
const FORBIDDEN_HEADERS: [&str; 7] = [
    "authorization",
    "idempotency-key",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "proxy-authorization",
];

/// What a path parameter or query value may leave unencoded (RFC 3986's
/// unreserved characters).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a mapping's one output is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Emits {
    /// The request body.
    #[default]
    Body,
    /// `{"body", "path", "query", "headers"}`.
    Request,
}

impl Emits {
    pub fn parse(s: &str) -> Option<Emits> {
        match s {
            "body" => Some(Emits::Body),
            "request" => Some(Emits::Request),
            _ => None,
        }
    }
}

/// A compiled mapping file.
#[derive(Debug)]
pub struct Mapping {
    /// The file, as resolved (relative to the config file's folder).
    pub file: PathBuf,
    /// The path as the config writes it, `{api_version}` left in (resolved
    /// against the config's folder): `ferry mapping diff` picks versions by it.
    pub template: Option<PathBuf>,
    pub emits: Emits,
    pub jq: Arc<Jq>,
}

impl PartialEq for Mapping {
    fn eq(&self, other: &Mapping) -> bool {
        self.file == other.file && self.emits == other.emits && self.jq == other.jq
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {why}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("{}: {why}", file.display())]
    Invalid { file: PathBuf, why: String },
}

/// What a mapping made of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    Send(Outgoing),
    /// No output: nothing to send for this message.
    Skip,
}

/// The request a delivery sends, as far as the transform decides it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outgoing {
    pub body: Bytes,
    /// Values for the destination path's `{name}` placeholders (as text).
    pub path: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Outgoing {
    /// Just a body, to the destination's path as configured.
    pub fn body(body: Bytes) -> Outgoing {
        Outgoing {
            body,
            ..Outgoing::default()
        }
    }

    /// `template` with its `{name}` placeholders filled (URL-encoded) and
    /// the query appended. Without path parameters the template is kept as
    /// it is; with them, a placeholder left unfilled or a parameter without
    /// a placeholder is an error (a mapping and a path that disagree).
    pub fn target(&self, template: &str) -> Result<String, String> {
        let mut path = template.to_owned();
        for (name, value) in &self.path {
            let placeholder = format!("{{{name}}}");
            if !path.contains(&placeholder) {
                return Err(format!(
                    "the mapping gives path parameter `{name}`, but the destination path `{template}` has no `{placeholder}`"
                ));
            }
            path = path.replace(
                &placeholder,
                &utf8_percent_encode(value, COMPONENT).to_string(),
            );
        }
        if !self.path.is_empty()
            && let Some(open) = path.find('{')
        {
            let name = path[open..].split('}').next().unwrap_or("{");
            return Err(format!(
                "the mapping gives no value for `{name}}}` in the destination path `{template}`"
            ));
        }
        if !self.query.is_empty() {
            let pairs: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, COMPONENT),
                        utf8_percent_encode(v, COMPONENT)
                    )
                })
                .collect();
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&pairs.join("&"));
        }
        Ok(path)
    }
}

impl Mapping {
    /// Reads and compiles `file`; runs get `timeout` each.
    pub fn load(file: &Path, emits: Emits, timeout: Duration) -> Result<Mapping, MappingError> {
        let code = std::fs::read_to_string(file).map_err(|source| MappingError::Read {
            file: file.to_owned(),
            source,
        })?;
        let jq = Jq::compile(&code).map_err(|e| match e {
            JqError::Compile {
                why,
                at: Some((line, column)),
                ..
            } => MappingError::Syntax {
                file: file.to_owned(),
                line,
                column,
                why,
            },
            JqError::Compile { why, .. } => MappingError::Invalid {
                file: file.to_owned(),
                why,
            },
            other => MappingError::Invalid {
                file: file.to_owned(),
                why: other.to_string(),
            },
        })?;
        Ok(Mapping {
            file: file.to_owned(),
            template: None,
            emits,
            jq: Arc::new(jq.with_timeout(timeout)),
        })
    }

    /// The same mapping, knowing the path it was chosen by.
    pub fn with_template(mut self, template: PathBuf) -> Mapping {
        self.template = Some(template);
        self
    }

    /// The mapping file for API version `version`, by the template.
    pub fn for_version(&self, version: &str) -> Option<PathBuf> {
        let t = self.template.as_ref()?.to_string_lossy().into_owned();
        t.contains("{api_version}")
            .then(|| PathBuf::from(t.replace("{api_version}", version)))
    }

    /// What to send for `body`, run on the jq pool.
    pub async fn apply(&self, body: &[u8], now_ms: i64) -> Result<Prepared, TransformError> {
        let answer = self
            .jq
            .run(Input::Bytes(body.to_vec()), Vec::new(), now_ms)
            .await;
        self.prepare(body, answer)
    }

    /// [`Mapping::apply`] outside the async runtime (the CLI, tests).
    pub fn apply_blocking(&self, body: &[u8], now_ms: i64) -> Result<Prepared, TransformError> {
        let answer = self.outputs_blocking(body, now_ms);
        self.prepare(body, answer)
    }

    /// Every output of the mapping on `body`, as the CLI prints them.
    pub fn outputs_blocking(&self, body: &[u8], now_ms: i64) -> Answer {
        self.jq
            .run_blocking(Input::Bytes(body.to_vec()), Vec::new(), now_ms)
    }

    /// The one output as a request, none as a skip, else an error.
    fn prepare(&self, body: &[u8], answer: Answer) -> Result<Prepared, TransformError> {
        let mut out = answer.map_err(|e| self.failed(body, e))?;
        if out.len() > 1 {
            let why = format!(
                "{} gave {} outputs; a mapping gives one request (or none to skip the message)",
                self.file.display(),
                out.len()
            );
            return Err(TransformError::Mapping(self.with_input(why, body)));
        }
        let Some(one) = out.pop() else {
            return Ok(Prepared::Skip);
        };
        match self.emits {
            Emits::Body => Ok(Prepared::Send(Outgoing::body(Bytes::from(
                one.into_string(),
            )))),
            Emits::Request => request(&one).map(Prepared::Send).map_err(|why| {
                let why = format!("{}: {why}", self.file.display());
                TransformError::Mapping(self.with_input(why, body))
            }),
        }
    }

    fn failed(&self, body: &[u8], e: JqError) -> TransformError {
        let why = match e {
            JqError::Busy(why) => return TransformError::Busy(why),
            JqError::Run { why, .. } | JqError::Overrun { why, .. } => why,
            JqError::Input(why) => format!("the message is not JSON: {why}"),
            JqError::Compile { why, .. } => why,
        };
        let why = format!("{} failed: {why}", self.file.display());
        TransformError::Mapping(self.with_input(why, body))
    }

    fn with_input(&self, why: String, body: &[u8]) -> String {
        let input = String::from_utf8_lossy(&body[..body.len().min(INPUT_EXCERPT * 2)]);
        format!("{why} (input: {})", super::clip(&input, INPUT_EXCERPT))
    }
}

/// The shape of `emits = "request"`: each part kept as its JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestShape<'a> {
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(borrow, default)]
    path: BTreeMap<String, &'a RawValue>,
    #[serde(borrow, default)]
    query: BTreeMap<String, &'a RawValue>,
    #[serde(borrow, default)]
    headers: BTreeMap<String, &'a RawValue>,
}

/// The request a mapping with `emits = "request"` gave.
fn request(out: &JsonText) -> Result<Outgoing, String> {
    let shape: RequestShape = serde_json::from_str(out.as_str()).map_err(|e| {
        format!("its output must be an object with `body`, `path`, `query` and `headers`: {e}")
    })?;
    let mut path = Vec::new();
    for (name, v) in &shape.path {
        path.push((
            name.clone(),
            scalar(v).map_err(|e| format!("path.{name}: {e}"))?,
        ));
    }
    let mut query = Vec::new();
    for (name, v) in &shape.query {
        match v.get().trim_start().starts_with('[') {
            // A list repeats the parameter: `?tag=a&tag=b`.
            true => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(v.get()).map_err(|e| format!("query.{name}: {e}"))?;
                for item in items {
                    query.push((
                        name.clone(),
                        scalar(item).map_err(|e| format!("query.{name}: {e}"))?,
                    ));
                }
            }
            false => query.push((
                name.clone(),
                scalar(v).map_err(|e| format!("query.{name}: {e}"))?,
            )),
        }
    }
    let mut headers = Vec::new();
    for (name, v) in &shape.headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "headers.{name}: ferry sets this header itself; a mapping may not"
            ));
        }
        let value = scalar(v).map_err(|e| format!("headers.{name}: {e}"))?;
        let name = HeaderName::try_from(lower)
            .map_err(|_| format!("headers.{name}: not a header name"))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| format!("headers.{name}: not a header value"))?;
        headers.push((name, value));
    }
    Ok(Outgoing {
        body: Bytes::from(shape.body.map_or_else(String::new, |b| b.get().to_owned())),
        path,
        query,
        headers,
    })
}

/// A string as itself, a number or boolean as its JSON text (exact).
fn scalar(v: &RawValue) -> Result<String, String> {
    let text = v.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text).map_err(|e| e.to_string()),
        Some(b'{' | b'[') => Err(format!(
            "must be a string or a number, not `{}`",
            super::clip(text, 40)
        )),
        _ if text == "null" => Err("must be a string or a number, not null".into()),
        _ => Ok(text.to_owned()),
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
