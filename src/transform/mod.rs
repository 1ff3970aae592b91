//! Transform: the stage between a claimed delivery and `connect`, turning the
//! stored body into what the destination's API version expects. A route's
//! `transform` is the passthrough (the body goes out as received) or a jq
//! mapping file (`mapping`), chosen per the destination system's
//! `api_version` and compiled when the configuration loads. A mapping runs
//! on the bounded jq pool (`pool`) for each delivery; its outputs are JSON
//! text written from jaq's values (`jq::JsonText`), never through
//! `serde_json::Value`, so numbers it does not compute on go out as written.

pub mod diff;
pub mod jq;
mod jq_env;
mod jq_errors;
pub mod json_check;
pub mod json_depth;
pub mod mapping;
pub mod pool;

use std::sync::Arc;

use bytes::Bytes;

pub use mapping::{Emits, Mapping, MappingError, Outgoing, Prepared};

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Transform {
    /// The body goes out exactly as it was received.
    #[default]
    Passthrough,
    /// A jq mapping file.
    Mapping(Arc<Mapping>),
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The mapping failed on this message (or gave more than one output):
    /// a `mapping` death, with jq's reason and an excerpt of the input.
    #[error("{0}")]
    Mapping(String),
    /// No jq thread for it now: try again shortly, nothing is wrong with it.
    #[error("{0}")]
    Busy(String),
}

impl Transform {
    /// What to send for `body`, at `now_ms` (the mapping's `$now`).
    pub async fn apply(&self, body: &Bytes, now_ms: i64) -> Result<Prepared, TransformError> {
        match self {
            Transform::Passthrough => Ok(Prepared::Send(Outgoing::body(body.clone()))),
            Transform::Mapping(m) => m.apply(body, now_ms).await,
        }
    }

    /// The mapping, when there is one.
    pub fn mapping(&self) -> Option<&Arc<Mapping>> {
        match self {
            Transform::Passthrough => None,
            Transform::Mapping(m) => Some(m),
        }
    }
}

/// The first `max` bytes of `text` (cut on a character boundary), with an
/// ellipsis when there was more: excerpts in messages stay short.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else {
        format!("{}…", &text[..text.floor_char_boundary(max)])
    }
}
